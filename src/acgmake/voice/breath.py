"""Breaths between phrases, in the singing voice's own breath.

A singer breathes in before a phrase; a synthesized vocal that does not sounds spliced. Sinsy
sings a breath (the ``br`` phoneme its voices are trained with) where a note carries a breath
mark and the next note follows without a rest, taking the time from the end of the marked
note. Between phrases the score has a rest, where Sinsy sings nothing; so the voice's breath is
taken from a two-note phrase sung for it (:func:`voice_breath`: "あ" with a breath mark, then
"あ", at the song's middle pitch) and laid into the singing before each phrase that follows
enough silence (:func:`add_breaths`), ending just before the phrase's first sound, at the level
the voice breathes at (``level_db`` moves it).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from acgmake.voice.labels import Timing

#: A phrase gets a breath when this much silence comes before it.
MIN_GAP_S = 0.6
#: The breath laid in is at most this long (the voice's own is about 0.3-0.4 s).
MAX_BREATH_S = 0.45
#: It ends this long before the phrase's first sound, and fades in and out over _FADE_S.
_BEFORE_ONSET_S = 0.03
_FADE_S = 0.04
#: The two-note phrase the breath is taken from: each note this many quarter notes at 120 bpm.
_NOTE_QUARTERS = 2


@dataclass(frozen=True)
class Breath:
    """The voice's breath: float32 samples at ``sample_rate``."""

    samples: np.ndarray
    sample_rate: int


def breath_score(midi: int) -> str:
    """A score of two half notes "あ" at ``midi`` (120 bpm), the first with a breath mark, after
    a bar of rest: Sinsy sings the breath between them (from 2.5 s to 3.0 s)."""
    pitch = pitch_xml(midi)
    lyric = "<lyric><syllabic>single</syllabic><text>あ</text></lyric>"
    mark = "<notations><articulations><breath-mark/></articulations></notations>"
    note = f"<note>{pitch}<duration>{_NOTE_QUARTERS}</duration><type>half</type>{lyric}"
    rest = "<note><rest/><duration>4</duration><type>whole</type></note>"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<score-partwise version="3.1"><part-list><score-part id="P1"><part-name>Voice'
        '</part-name></score-part></part-list><part id="P1">'
        '<measure number="1"><attributes><divisions>1</divisions><key><fifths>0</fifths></key>'
        "<time><beats>4</beats><beat-type>4</beat-type></time><clef><sign>G</sign><line>2"
        '</line></clef></attributes><direction placement="above"><direction-type><metronome>'
        "<beat-unit>quarter</beat-unit><per-minute>120</per-minute></metronome></direction-type>"
        f'<sound tempo="120"/></direction>{rest}</measure>'
        f'<measure number="2">{note}{mark}</note>{note}</note></measure>'
        f'<measure number="3">{rest}</measure></part></score-partwise>\n'
    )


def pitch_xml(midi: int) -> str:
    """The MusicXML ``<pitch>`` of MIDI note ``midi`` (black keys as sharps)."""
    names = ["C", "C", "D", "D", "E", "F", "F", "G", "G", "A", "A", "B"]
    alter = "<alter>1</alter>" if midi % 12 in (1, 3, 6, 8, 10) else ""
    return f"<pitch><step>{names[midi % 12]}</step>{alter}<octave>{midi // 12 - 1}</octave></pitch>"


def cut_breath(samples: np.ndarray, sample_rate: int, midi: int) -> np.ndarray | None:
    """The breath in what Sinsy sang for :func:`breath_score` at ``midi``: the longest
    unvoiced stretch between the two notes (2.0-3.0 s), where the first note's voice has
    stopped and the second's has not begun, without the attack of the second (frames more
    than 8 dB over the stretch's median level). None when there is no breath there (a voice
    without one)."""
    from acgmake.voice.intonation import search_band, track_f0

    start, end = round(2.0 * sample_rate), round(3.0 * sample_rate)
    if len(samples) < end:
        return None
    part = np.asarray(samples[start:end], dtype=np.float64)
    low_hz, high_hz = search_band([midi])
    times, f0 = track_f0(part, sample_rate, low_hz=low_hz, high_hz=high_hz)
    unvoiced = np.concatenate([[False], f0 <= 0, [False]])
    edges = np.flatnonzero(np.diff(unvoiced.astype(np.int8)))
    runs = list(zip(edges[::2], edges[1::2], strict=True))
    if not runs:
        return None
    first, last = max(runs, key=lambda run: run[1] - run[0])
    hop = len(part) / max(len(f0), 1)
    window = round(0.01 * sample_rate)
    breath = part[round(first * hop) + window : round(last * hop) - window]
    if len(breath) < 10 * window:
        return None
    db = _levels_db(breath, window)
    # The first note's last voice and the second's attack are louder than the breath: keep
    # the longest stretch within 8 dB of the stretch's median.
    steady = np.concatenate([[False], db <= np.median(db) + 8, [False]])
    edges = np.flatnonzero(np.diff(steady.astype(np.int8)))
    first, last = max(zip(edges[::2], edges[1::2], strict=True), key=lambda r: r[1] - r[0])
    breath = breath[first * window : last * window]
    sung = 20 * np.log10(np.sqrt(np.mean(part[: len(part) // 4] ** 2)) + 1e-12)
    breath_db = 20 * np.log10(np.sqrt(np.mean(breath**2)) + 1e-12) if len(breath) else -200.0
    if len(breath) < 0.1 * sample_rate or breath_db < sung - 50:
        return None  # too short or silent: no breath sung
    # Air has nothing below a few hundred hertz: what is there is the synthesis's rumble.
    from scipy.signal import butter, sosfiltfilt

    high_pass = butter(2, 200.0, btype="highpass", fs=sample_rate, output="sos")
    breath = sosfiltfilt(high_pass, breath[-round(MAX_BREATH_S * sample_rate) :])
    return breath.astype(np.float32)


def voice_breath(voice: Path, midi: int, sample_rate: int, *, timeout_s: float = 60.0):
    """The breath of the Sinsy ``voice`` (a :class:`Breath` at ``sample_rate``), or None when
    it sings none."""
    from acgmake.audio.resample import resample
    from acgmake.voice import sinsy

    with tempfile.TemporaryDirectory(prefix="acgmake-breath-") as folder:
        score = Path(folder) / "breath.musicxml"
        score.write_text(breath_score(midi), encoding="utf-8")
        singing = sinsy.sing(score, voice_path=voice, timeout_s=timeout_s)
    samples = np.asarray(singing.samples, dtype=np.float32)
    if singing.sample_rate != sample_rate:
        samples = resample(samples, singing.sample_rate, sample_rate, dtype="float32")
    cut = cut_breath(samples, sample_rate, midi)
    return None if cut is None else Breath(cut, sample_rate)


def add_breaths(
    samples: np.ndarray, timing: Timing, breath: Breath, *, level_db: float = 0.0
) -> int:
    """Lay ``breath`` into ``samples`` (in place, at ``breath.sample_rate``) before each line
    of ``timing`` that follows at least :data:`MIN_GAP_S` of silence, ending just before the
    line's first sound. Returns how many breaths were laid in."""
    rate = breath.sample_rate
    gain = 10 ** (level_db / 20)
    fade = round(_FADE_S * rate)
    count = 0
    previous_end = 0.0
    for line in timing.lines:
        gap_start, first = previous_end, line.start_s
        previous_end = line.end_s
        if first - gap_start < MIN_GAP_S:
            continue
        onset = _onset(samples, rate, gap_start + 0.1, first)
        end = round((onset - _BEFORE_ONSET_S) * rate)
        length = min(len(breath.samples), end - round((gap_start + 0.15) * rate))
        if length < round(0.12 * rate) or end > len(samples):
            continue
        sound = breath.samples[-length:] * gain
        envelope = np.ones(length, dtype=np.float32)
        ramp = np.linspace(0.0, 1.0, min(fade, length // 2), dtype=np.float32)
        envelope[: len(ramp)] = ramp
        envelope[length - len(ramp) :] = np.minimum(envelope[length - len(ramp) :], ramp[::-1])
        samples[end - length : end] += sound * envelope
        count += 1
    np.clip(samples, -1.0, 1.0, out=samples)
    return count


def _onset(samples: np.ndarray, rate: int, earliest_s: float, note_s: float) -> float:
    """When the phrase starting at ``note_s`` is first heard: Sinsy starts a consonant before
    its note. The first 10 ms from 0.3 s before the note to 0.1 s after it louder than 20 dB
    under the note's own level (its loudest in its first 0.3 s), above 200 Hz; ``note_s``
    when none is."""
    from scipy.signal import butter, sosfiltfilt

    window = round(0.01 * rate)
    begin = max(round(earliest_s * rate), round((note_s - 0.3) * rate))
    search_end = round((note_s + 0.1) * rate)
    stop = min(len(samples), round((note_s + 0.3) * rate))
    if stop - begin < 2 * window or search_end <= begin:
        return note_s
    # Above the synthesis's low rumble, which is there before any sound is sung.
    high_pass = butter(2, 200.0, btype="highpass", fs=rate, output="sos")
    part = sosfiltfilt(high_pass, np.asarray(samples[begin:stop], dtype=np.float64))
    db = _levels_db(part, window)
    searched = db[: (search_end - begin) // window]
    loud = np.flatnonzero(searched > db.max() - 20)
    return (begin + int(loud[0]) * window) / rate if loud.size else note_s


def _levels_db(samples: np.ndarray, window: int) -> np.ndarray:
    """The level (dB of RMS) of each whole ``window`` of ``samples``."""
    frames = len(samples) // window
    blocks = np.asarray(samples[: frames * window], dtype=np.float64).reshape(frames, window)
    return 20 * np.log10(np.sqrt(np.mean(blocks**2, axis=1)) + 1e-12)
