"""Lining Sinsy's labels up with its singing: phoneme boundaries and per-mora timing.

Sinsy's monophone labels give each note's phonemes the note's own start and end: ``k`` and
``a`` of か both span the whole note. In the audio (measured on the bundled voice) the
consonant starts at the note's start and the vowel up to ~220 ms later (median 60–75 ms on
the examples): a ``k`` or ``t`` is a silent closure, ``s`` and ``sh`` are noise, ``n`` and
``m`` are a dip in the voice's formant-band energy; and the last vowel before a rest fades
out 10–180 ms before the rest begins. :func:`align_phonemes` puts each consonant/vowel
boundary where that energy comes back up and ends such a vowel where it has faded, which is
what lip sync needs (the mouth opens on the vowel, closes with the sound).
:func:`build_timing` gives every mora its note's time in the audio, grouped into lines.
"""

from __future__ import annotations

import math

import numpy as np

from acgmake.music.musicxml import Score
from acgmake.voice.labels import SILENCES, Line, Mora, Phoneme, Timing

_VOWELS = frozenset("aiueoAIUEO") | {"N"}
_CLOSURE = "cl"
_UNKNOWN = "xx"  # Sinsy's label for a note it has no phoneme for
_HOP_S = 0.0025
_WINDOW_S = 0.015
_ANALYSIS_RATE = 16000
#: A consonant/vowel boundary is placed no later than this share of the note.
_MAX_CONSONANT_SHARE = 0.6
#: Where no dip is heard (r, y, w before a vowel), a typical glide length.
_GLIDE_S = 0.06


def note_spans(phonemes: list[Phoneme]) -> list[tuple[float, float, list[Phoneme]]]:
    """(start_s, end_s, phonemes) of each sung note in Sinsy's labels, in order.

    A note is a run of phonemes sharing one start and end; pauses and silences are left out.
    """
    spans: list[tuple[float, float, list[Phoneme]]] = []
    for phoneme in phonemes:
        if phoneme.name in SILENCES:
            continue
        if (
            spans
            and math.isclose(spans[-1][0], phoneme.start_s)
            and math.isclose(spans[-1][1], phoneme.end_s)
        ):
            spans[-1][2].append(phoneme)
        else:
            spans.append((phoneme.start_s, phoneme.end_s, [phoneme]))
    return spans


def align_phonemes(phonemes: list[Phoneme], samples: np.ndarray, sample_rate: int) -> list[Phoneme]:
    """Sinsy's labels with each note's consonant/vowel boundary placed where it is heard.

    Pauses and one-phoneme notes keep their times; in a note such as ``k a`` the consonant
    ends and the vowel starts where the 300–3000 Hz energy rises back after the consonant's
    dip; a closing ``cl`` (っ) starts where the vowel's energy falls away.
    """
    times, energy = formant_energy_db(samples, sample_rate)
    aligned: list[Phoneme] = []
    index = 0
    while index < len(phonemes):
        group = [phonemes[index]]
        while index + len(group) < len(phonemes) and _same_span(
            group[0], phonemes[index + len(group)]
        ):
            group.append(phonemes[index + len(group)])
        index += len(group)
        if group[0].name == _UNKNOWN:  # a note without a lyric: Sinsy leaves it silent
            aligned.extend(Phoneme(p.start_s, p.end_s, "pau") for p in group)
            continue
        if len(group) == 1 or group[0].name in SILENCES:
            aligned.extend(group)
            continue
        aligned.extend(_split_note(group, times, energy))
    return _end_before_pauses(aligned, times, energy)


def formant_energy_db(samples: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(frame times in s, energy in dB) of the 300–3000 Hz band, 15 ms frames every 2.5 ms.

    The band holds a sung vowel's first formants; consonants (closures, noise, nasals) dip.
    """
    from scipy.signal import butter, resample_poly, sosfiltfilt

    signal = np.asarray(samples, dtype=np.float64)
    rate = sample_rate
    if sample_rate > _ANALYSIS_RATE:
        divisor = math.gcd(_ANALYSIS_RATE, sample_rate)
        signal = resample_poly(signal, _ANALYSIS_RATE // divisor, sample_rate // divisor)
        rate = _ANALYSIS_RATE
    window, hop = int(rate * _WINDOW_S), int(rate * _HOP_S)
    if len(signal) <= window + 30:
        return np.zeros(0), np.zeros(0)
    band = sosfiltfilt(butter(4, [300, 3000], "bandpass", fs=rate, output="sos"), signal)
    power = np.concatenate([[0.0], np.cumsum(band * band)])
    starts = np.arange(0, len(band) - window, hop)
    energy = (power[starts + window] - power[starts]) / window
    return (starts + window / 2) / rate, 10 * np.log10(np.maximum(energy, 1e-12))


def _same_span(a: Phoneme, b: Phoneme) -> bool:
    return math.isclose(a.start_s, b.start_s) and math.isclose(a.end_s, b.end_s)


def _split_note(group: list[Phoneme], times: np.ndarray, energy: np.ndarray) -> list[Phoneme]:
    start, end = group[0].start_s, group[0].end_s
    names = [p.name for p in group]
    first_vowel = next((i for i, name in enumerate(names) if name in _VOWELS), None)
    if first_vowel is None:  # e.g. a lone "cl" or an unknown "xx": nothing to place
        return _spread(names, start, end)
    lead, vowel, tail = names[:first_vowel], names[first_vowel], names[first_vowel + 1 :]
    onset = _vowel_onset(times, energy, start, end) if lead else start
    if tail and all(name == _CLOSURE for name in tail):
        closure = _closure_start(times, energy, onset, end)
        return (
            _spread(lead, start, onset)
            + [Phoneme(onset, closure, vowel)]
            + _spread(tail, closure, end)
        )
    return _spread(lead, start, onset) + _spread([vowel, *tail], onset, end)


def _spread(names: list[str], start: float, end: float) -> list[Phoneme]:
    """``names`` one after another, sharing ``start``–``end`` equally."""
    if not names:
        return []
    step = (end - start) / len(names)
    return [Phoneme(start + i * step, start + (i + 1) * step, n) for i, n in enumerate(names)]


def _vowel_onset(times: np.ndarray, energy: np.ndarray, start: float, end: float) -> float:
    duration = end - start
    latest = start + _MAX_CONSONANT_SHARE * duration
    fallback = start + min(_GLIDE_S, 0.3 * duration)
    search = np.flatnonzero((times >= start - 0.02) & (times <= min(latest, start + 0.3)))
    body = (times >= start + 0.5 * duration) & (times <= end - 0.01)
    if search.size == 0 or not body.any():
        return fallback
    plateau = float(np.median(energy[body]))
    dip = search[int(np.argmin(energy[search]))]
    if energy[dip] > plateau - 3.0:
        return fallback  # no consonant dip to be heard: a glide such as r, y, w
    after = search[search >= dip]
    risen = after[energy[after] > plateau - 9.0]
    onset = float(times[risen[0]]) if risen.size else fallback
    return min(max(onset, start + 0.015), latest)


def _end_before_pauses(
    phonemes: list[Phoneme], times: np.ndarray, energy: np.ndarray
) -> list[Phoneme]:
    """Sinsy fades a vowel out 20–150 ms before the rest that follows it: end the vowel (and
    start the pause) where its energy has fallen 20 dB, so a mouth closes with the sound."""
    result = list(phonemes)
    for i in range(len(result) - 1):
        vowel, pause = result[i], result[i + 1]
        if vowel.name not in _VOWELS or pause.name not in SILENCES:
            continue
        if not math.isclose(vowel.end_s, pause.start_s):
            continue
        inside = np.flatnonzero((times >= vowel.start_s) & (times <= vowel.end_s))
        if inside.size < 4:
            continue
        sustained = float(np.median(energy[inside]))
        loud = inside[energy[inside] > sustained - 20.0]
        if not loud.size:
            continue
        earliest = vowel.start_s + 0.5 * (vowel.end_s - vowel.start_s)
        fade = min(max(float(times[loud[-1]]), earliest), vowel.end_s)
        result[i] = Phoneme(vowel.start_s, fade, vowel.name)
        result[i + 1] = Phoneme(fade, pause.end_s, pause.name)
    return result


def _closure_start(times: np.ndarray, energy: np.ndarray, start: float, end: float) -> float:
    """Where a vowel followed by ``cl`` (っ) falls silent."""
    earliest = start + 0.3 * (end - start)
    inside = np.flatnonzero((times >= start) & (times <= end))
    if inside.size == 0:
        return earliest
    loud = inside[energy[inside] > energy[inside].max() - 15.0]
    closure = float(times[loud[-1]]) if loud.size else earliest
    return min(max(closure, earliest), end - 0.01)


def build_timing(score: Score, phonemes: list[Phoneme], duration_s: float) -> Timing:
    """When each mora of ``score`` is sung in the audio, from Sinsy's labels for it.

    ``phonemes`` are Sinsy's labels as it gave them (one span per note). Each sung note of the
    score with a lyric is one mora (Sinsy leaves a note without a lyric silent); a rest ends
    a line.
    When the labels and the score disagree in their number of notes, times come from the
    score's tempo, placed where Sinsy's first note is.
    """
    spans = note_spans(phonemes)
    sung = score.sung_notes()
    seconds_per_quarter = 60.0 / score.tempo_bpm
    if spans and sung:
        score_start = spans[0][0] - sung[0].offset * seconds_per_quarter
    else:
        score_start = 0.0
    if len(spans) == len(sung):
        times = [(start, end) for start, end, _ in spans]
    else:
        times = [
            (
                score_start + note.offset * seconds_per_quarter,
                score_start + (note.offset + note.quarter_length) * seconds_per_quarter,
            )
            for note in sung
        ]

    lines: list[Line] = []
    current: list[Mora] = []
    section = ""  # the section of the line being gathered: the last mark at its first note
    sung_index = 0
    for note in score.notes:
        if note.is_rest:
            _close_line(lines, current, section)
            current = []
            continue
        start, end = times[sung_index]
        sung_index += 1
        if not note.lyric:
            continue  # Sinsy leaves a note without a lyric silent
        if not current:
            section = _section_at(score.sections, note.offset)
        current.append(Mora(note.lyric, round(start, 4), round(end, 4), int(note.midi or 0)))
    _close_line(lines, current, section)
    return Timing(
        tempo_bpm=score.tempo_bpm,
        beats_per_bar=score.beats_per_bar,
        first_beat_s=round(max(0.0, score_start), 4),
        duration_s=round(duration_s, 4),
        lines=lines,
        title=score.title,
    )


def _section_at(sections: list[tuple[float, str]], offset: float) -> str:
    """The role of the section that ``offset`` (quarter lengths) is in; "" before any mark."""
    role = ""
    for start, name in sections:
        if start > offset + 1e-6:
            break
        role = name
    return role


def _close_line(lines: list[Line], morae: list[Mora], section: str = "") -> None:
    if morae:
        text = "".join(mora.text for mora in morae)
        lines.append(Line(text, morae[0].start_s, morae[-1].end_s, list(morae), section))
