"""A backing band for a score: bass, piano, pad and drums from its chords and tempo, as MIDI.

The chords are the score's chord symbols (MusicXML ``<harmony>``, music21 ``ChordSymbol``),
each lasting until the next, so a chord carries over the rests between phrases. A score
without chord symbols (a user's own) gets chords chosen from its melody: per half bar, the
triad of the key that holds the most of the melody's notes, heavier on the beat.

The arrangement follows the pop songs the voice was made for, at two feels chosen by tempo:
``pop`` (8-beat: kick on 1 and 3, snare on 2 and 4, eighth-note hi-hat, an eighth-note bass on
the root, piano chords on every beat, a pad holding each chord) and ``ballad`` (a
side-stick on 3, hi-hat in quarters, bass in half notes, piano arpeggios). Chords lie below the
singer (the piano around G3–F#4, the pad around E3–D#4), in close position, each chord in
the inversion nearest the one before so one leads smoothly to the next. The band plays the
intro bar, fills into the first sung bar, keeps time through the rests, and ends with a hit
on the final chord.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from acgmake.errors import UserError

if TYPE_CHECKING:
    import pretty_midi

#: The band's parts, and their General MIDI programs (0-based) in the default soundfont.
PARTS = ("bass", "piano", "pad", "drums")
PROGRAMS = {"bass": 33, "piano": 0, "pad": 89}  # Fingered Bass, Acoustic Grand, Warm Pad
STYLES = ("auto", "pop", "ballad")
#: Below this tempo (quarter notes a minute) "auto" plays a ballad.
BALLAD_BELOW_BPM = 90.0
# General MIDI percussion keys.
KICK, SNARE, SIDE_STICK, CLOSED_HAT, PEDAL_HAT, CRASH = 36, 38, 37, 42, 44, 49
# Where each part's notes lie: below the singer's E4–C5, each a register of its own.
_BASS_LOW, _PIANO_LOW, _PAD_LOW = 36, 55, 52  # lowest MIDI note (C2, G3, E3); an octave up
_MAJOR, _MINOR = (0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10)


@dataclass(frozen=True)
class ChordSpan:
    """A chord from ``start`` to ``end`` (quarter lengths from the start of the score)."""

    start: float
    end: float
    root: int  # pitch class, 0 = C
    pitch_classes: tuple[int, ...]  # root first
    bass: int  # pitch class the bass plays (the root, or a slash chord's bass)


@dataclass
class Harmony:
    """What the band needs from a score: its chords, metre, tempo and where singing is."""

    chords: list[ChordSpan]
    tempo_bpm: float
    beats_per_bar: int
    length: float  # the score's length in quarter lengths
    first_note: float  # where the first sung note starts (quarter lengths)
    last_note_end: float  # where the last sung note ends
    tonic: int  # pitch class of the key's tonic
    mode: str  # "major" or "minor"
    chords_from_score: bool = True  # False when they were chosen from the melody
    notes: list[tuple[float, float, int]] = field(default_factory=list)  # (start, end, midi)

    def transposed(self, semitones: int) -> Harmony:
        """The same harmony ``semitones`` higher (lower when negative)."""
        if not semitones:
            return self
        shift = [
            ChordSpan(
                c.start,
                c.end,
                (c.root + semitones) % 12,
                tuple((p + semitones) % 12 for p in c.pitch_classes),
                (c.bass + semitones) % 12,
            )
            for c in self.chords
        ]
        notes = [(s, e, m + semitones) for s, e, m in self.notes]
        return Harmony(
            shift,
            self.tempo_bpm,
            self.beats_per_bar,
            self.length,
            self.first_note,
            self.last_note_end,
            (self.tonic + semitones) % 12,
            self.mode,
            self.chords_from_score,
            notes,
        )


def read_harmony(path: str | Path) -> Harmony:
    """The chords, key, tempo and metre of the MusicXML score at ``path``.

    Reads the sung part (checked as :func:`acgmake.music.musicxml.read_score` does). Raises
    :class:`UserError` for a score that cannot be read or has no notes.
    """
    from music21 import converter, harmony, key

    from acgmake.music.musicxml import read_score, sinsy_xml

    score = read_score(path)  # the checks and the clear errors for a bad score
    parsed = converter.parseData(sinsy_xml(path).decode("utf-8"), format="musicxml")
    part = parsed.parts[0] if hasattr(parsed, "parts") and parsed.parts else parsed
    flat = part.flatten()
    notes = [
        (n.offset, n.offset + n.quarter_length, int(n.midi))
        for n in score.notes
        if n.midi is not None
    ]
    last = score.notes[-1]
    length = last.offset + last.quarter_length
    keys = list(flat.getElementsByClass(key.Key))
    if keys:
        tonic, mode = keys[0].tonic.pitchClass, keys[0].mode
    else:
        signatures = list(flat.getElementsByClass(key.KeySignature))
        if signatures:
            tonic, mode = signatures[0].asKey("major").tonic.pitchClass, "major"
        else:
            found = flat.analyze("key")
            tonic, mode = found.tonic.pitchClass, found.mode
    mode = mode if mode in ("major", "minor") else "major"

    symbols = []
    for symbol in flat.getElementsByClass(harmony.ChordSymbol):
        pitches = [p.pitchClass for p in symbol.pitches]
        if not pitches or isinstance(symbol, harmony.NoChord):
            continue
        root = symbol.root().pitchClass
        ordered = [root] + [p for p in dict.fromkeys(pitches) if p != root]
        bass = symbol.bass().pitchClass if symbol.bass() is not None else root
        symbols.append((float(symbol.offset), root, tuple(ordered), bass))
    harmony_of_score = Harmony(
        [],
        score.tempo_bpm,
        score.beats_per_bar,
        length,
        notes[0][0],
        notes[-1][1],
        tonic,
        mode,
        bool(symbols),
        notes,
    )
    if symbols:
        symbols.sort()
        harmony_of_score.chords = [
            ChordSpan(start, next_start, root, pcs, bass)
            for (start, root, pcs, bass), next_start in zip(
                symbols, [s[0] for s in symbols[1:]] + [length], strict=True
            )
            if next_start > start
        ]
    else:
        harmony_of_score.chords = harmonise(
            notes, tonic=tonic, mode=mode, beats_per_bar=score.beats_per_bar, length=length
        )
    if not harmony_of_score.chords:
        raise UserError(f"{Path(path).name} has no notes to set chords to")
    return harmony_of_score


def harmonise(
    notes: list[tuple[float, float, int]],
    *,
    tonic: int,
    mode: str,
    beats_per_bar: int,
    length: float,
) -> list[ChordSpan]:
    """Chords for a melody without chord symbols: per half bar, the key's triad (I, IV, V, vi,
    ii, iii / i, iv, V, VI, III, VII) that holds the most melody, by duration, with notes on
    the half bar's first beat counting double; a half bar with no melody keeps the chord before.

    ``notes`` are (start, end, midi) in quarter lengths. The last sung half bar takes the tonic.
    """
    scale = _MAJOR if mode == "major" else _MINOR
    degrees = (0, 3, 4, 5, 1, 2) if mode == "major" else (0, 3, 4, 5, 2, 6)
    triads = []
    for degree in degrees:
        pcs = tuple((tonic + scale[(degree + step) % 7]) % 12 for step in (0, 2, 4))
        if mode == "minor" and degree == 4:  # the dominant of harmonic minor: a major V
            pcs = (pcs[0], (pcs[0] + 4) % 12, pcs[2])
        triads.append(pcs)
    span = max(1.0, beats_per_bar / 2)
    chords: list[ChordSpan] = []
    last_sung = max((end for _, end, _ in notes), default=0.0)
    start = 0.0
    while start < length - 1e-9:
        end = min(start + span, length)
        weights = [0.0] * len(triads)
        for note_start, note_end, midi in notes:
            overlap = min(end, note_end) - max(start, note_start)
            if overlap <= 0:
                continue
            weight = overlap * (2.0 if abs(note_start - start) < 1e-6 else 1.0)
            for index, triad in enumerate(triads):
                if midi % 12 in triad:
                    weights[index] += weight
        if max(weights) == 0:
            chosen = (chords[-1].pitch_classes) if chords else triads[0]
        elif start < last_sung <= end + 1e-9:
            chosen = triads[0]  # end where the song comes home
        else:
            # Ties go to the earlier triad in the list: the tonic, then IV, then V.
            chosen = triads[max(range(len(triads)), key=lambda i: (weights[i], -i))]
        chords.append(ChordSpan(start, end, chosen[0], chosen, chosen[0]))
        start = end
    return chords


def arrange(
    harmony: Harmony,
    *,
    seed: int = 0,
    style: str = "auto",
    parts: tuple[str, ...] = PARTS,
    start_s: float = 0.0,
) -> pretty_midi.PrettyMIDI:
    """The backing band as a ``pretty_midi.PrettyMIDI``: one instrument per part in ``parts``.

    Times are in seconds from the start of the audio: the score's first beat is at
    ``start_s`` (where the singing's first beat is, e.g. after Sinsy's padding).
    ``seed`` varies the velocities and the kick pattern a little, and the feel: each note
    sounds a few milliseconds off the grid, as a band plays (:attr:`_Band.FEEL_MS`).
    """
    if style not in STYLES:
        raise UserError(f"unknown style {style!r}; use one of: {', '.join(STYLES)}")
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise UserError(
            f"unknown part(s) {', '.join(unknown) or '(none given)'}; choose from: "
            + ", ".join(PARTS)
        )
    if style == "auto":
        style = "ballad" if harmony.tempo_bpm < BALLAD_BELOW_BPM else "pop"
    band = _Band(harmony, parts, random.Random(seed), start_s, feel=random.Random(f"feel {seed}"))
    bar = float(harmony.beats_per_bar)
    # The band plays to the bar line after the last sung note, then hits the final chord.
    band_end = -(-harmony.last_note_end // bar) * bar
    chords = _cover(harmony.chords, band_end)
    piano, pad = _comp(band, chords, style)
    _drums(band, style, entry=(harmony.first_note // bar) * bar, end=band_end)

    # The ending: everyone on the final chord, held, with a crash.
    final = _final_chord(harmony, chords)
    end = band_end + min(bar, max(harmony.length - band_end, 2.0))
    for key in _voice(final.pitch_classes, _PIANO_LOW, piano):
        band.add("piano", key, band_end, end, 72)
    for key in _voice(final.pitch_classes, _PAD_LOW, pad):
        band.add("pad", key, band_end, end, 62)
    band.add("bass", _BASS_LOW + (final.bass - _BASS_LOW) % 12, band_end, end, 96)
    band.add("drums", KICK, band_end, band_end + 1.0, 104)
    band.add("drums", CRASH, band_end, end, 100)
    return band.midi


class _Band:
    """The MIDI file being written: one instrument per part, notes added in quarter lengths."""

    #: Channel volume (CC 7) and pan (CC 10) of each part: the band's balance, kept in the
    #: MIDI file so a DAW plays it the same.
    LEVELS = {"bass": (104, 64), "piano": (92, 52), "pad": (74, 76), "drums": (100, 64)}
    #: How far off the grid each part's notes sound (ms, the spread of a normal law, cut at
    #: twice that): a drummer keeps time best, a pianist's chords roll a little; the pad's
    #: slow attack hides any. What DAWs' "humanize" does, and what sequenced backing lacks.
    FEEL_MS = {"drums": 4.0, "bass": 6.0, "piano": 8.0, "pad": 0.0}

    def __init__(
        self,
        harmony: Harmony,
        parts: tuple[str, ...],
        rng: random.Random,
        start_s: float,
        feel: random.Random | None = None,
    ) -> None:
        import pretty_midi

        self.rng, self.start_s, self.feel = rng, start_s, feel
        self.beat_s = 60.0 / harmony.tempo_bpm
        self.midi = pretty_midi.PrettyMIDI(initial_tempo=harmony.tempo_bpm)
        self.midi.time_signature_changes.append(
            pretty_midi.TimeSignature(harmony.beats_per_bar, 4, 0.0)
        )
        self.beats_per_bar = harmony.beats_per_bar
        self.instruments = {}
        for part in parts:
            if part == "drums":
                instrument = pretty_midi.Instrument(0, is_drum=True, name="drums")
            else:
                instrument = pretty_midi.Instrument(PROGRAMS[part], name=part)
            level, pan = self.LEVELS[part]
            instrument.control_changes += [
                pretty_midi.ControlChange(7, level, 0.0),
                pretty_midi.ControlChange(10, pan, 0.0),
            ]
            self.instruments[part] = instrument
            self.midi.instruments.append(instrument)

    def add(self, part: str, key: int, start: float, end: float, strength: int) -> None:
        """A note from ``start`` to ``end`` (quarter lengths), about ``strength`` loud."""
        import pretty_midi

        if part in self.instruments and end > start:
            velocity = max(1, min(127, strength + self.rng.randint(-6, 6)))
            spread = self.FEEL_MS[part] / 1000.0 if self.feel is not None else 0.0
            off = max(-2 * spread, min(2 * spread, self.feel.gauss(0, spread))) if spread else 0.0
            at = max(0.0, self.start_s + start * self.beat_s + off)
            self.instruments[part].notes.append(
                pretty_midi.Note(velocity, int(key), at, self.start_s + end * self.beat_s + off)
            )


def _comp(band: _Band, chords: list[ChordSpan], style: str) -> tuple[list[int], list[int]]:
    """Bass, piano and pad through the chords; returns the last piano and pad voicings."""
    piano: list[int] = []
    pad: list[int] = []
    for chord in chords:
        piano = _voice(chord.pitch_classes, _PIANO_LOW, piano)
        pad = _voice(chord.pitch_classes, _PAD_LOW, pad)
        for key in pad:
            band.add("pad", key, chord.start, chord.end, 58)
        bass = _BASS_LOW + (chord.bass - _BASS_LOW) % 12
        # A broken chord for the ballad: up the voicing and to the octave above its middle.
        arpeggio = [*piano, piano[min(1, len(piano) - 1)] + 12]
        beat = chord.start
        while beat < chord.end - 1e-9:
            for step, eighth in enumerate((0.0, 0.5)):
                at = beat + eighth
                if at >= chord.end - 1e-9:
                    break
                if style == "pop":  # eighth-note bass; the piano on the beat
                    band.add("bass", bass, at, at + 0.45, 92 if step == 0 else 78)
                    if step == 0:
                        accent = 64 if beat % band.beats_per_bar == 0 else 54
                        for key in piano:
                            band.add("piano", key, at, at + 0.9, accent)
                else:  # ballad: arpeggio in eighths held to the chord's end, bass in halves
                    index = int(round((at - chord.start) * 2))
                    band.add("piano", arpeggio[index % len(arpeggio)], at, chord.end, 58)
                    if step == 0 and (beat - chord.start) % 2 == 0:
                        band.add("bass", bass, at, min(at + 1.9, chord.end), 88)
            beat += 1.0
    return piano, pad


def _drums(band: _Band, style: str, *, entry: float, end: float) -> None:
    """The kit from the first bar to ``end``: hi-hat alone in the intro, a fill into the bar
    the singing starts in (``entry``), a crash on it, then the groove."""
    bar = band.beats_per_bar
    position = 0.0
    bars_played = 0
    while position < end - 1e-9:
        intro = position < entry
        for index in range(bar):
            beat = position + index
            if style == "pop":
                band.add("drums", CLOSED_HAT, beat, beat + 0.25, 72)
                band.add("drums", CLOSED_HAT, beat + 0.5, beat + 0.75, 52)
                if intro:
                    continue
                band.add("drums", KICK if index % 2 == 0 else SNARE, beat, beat + 0.5, 96)
                # Every other bar, most often, a push on the "and" of 2.
                if index == 1 and bars_played % 2 == 1 and band.rng.random() < 0.7:
                    band.add("drums", KICK, beat + 0.5, beat + 1.0, 84)
            else:
                band.add("drums", PEDAL_HAT if intro else CLOSED_HAT, beat, beat + 0.5, 62)
                if not intro and index == 0:
                    band.add("drums", KICK, beat, beat + 1.0, 92)
                if not intro and index == 2:
                    band.add("drums", SIDE_STICK, beat, beat + 1.0, 80)
        if intro and position + bar >= entry - 1e-9 and bar >= 2:
            last_beat = position + bar - 1
            for sixteenth in range(4):
                at = last_beat + sixteenth / 4
                band.add("drums", SNARE, at, at + 0.25, 70 + 8 * sixteenth)
        if position == entry:
            band.add("drums", CRASH, position, position + bar, 96)
        bars_played += 0 if intro else 1
        position += bar


def _cover(chords: list[ChordSpan], until: float) -> list[ChordSpan]:
    """The chords from 0 to ``until`` without gaps: the first chord also plays before itself
    (the intro), and each chord holds until the next."""
    ordered = sorted(chords, key=lambda c: c.start)
    covered = []
    for index, chord in enumerate(ordered):
        start = 0.0 if index == 0 else chord.start
        end = ordered[index + 1].start if index + 1 < len(ordered) else until
        end = min(end, until)
        if end > start:
            covered.append(ChordSpan(start, end, chord.root, chord.pitch_classes, chord.bass))
    return covered or ordered[-1:]


def _final_chord(harmony: Harmony, chords: list[ChordSpan]) -> ChordSpan:
    """The chord the song ends on: the last chord under the singing if it is the tonic chord,
    else the tonic triad (the cadence a listener expects)."""
    last = chords[-1]
    if last.root == harmony.tonic:
        return last
    third = 4 if harmony.mode == "major" else 3
    pcs = (harmony.tonic, (harmony.tonic + third) % 12, (harmony.tonic + 7) % 12)
    return ChordSpan(last.end, last.end, harmony.tonic, pcs, harmony.tonic)


def _voice(pitch_classes: tuple[int, ...], low: int, previous: list[int]) -> list[int]:
    """MIDI keys for a chord in the octave from ``low``, in close position; of the chord's
    inversions there, the one nearest ``previous`` (smooth voice leading)."""
    keys = sorted(low + (pc - low) % 12 for pc in pitch_classes[:4])
    if not previous:
        return keys
    options = [keys]
    for turn in range(1, len(keys)):
        options.append(sorted(keys[turn:] + [k + 12 for k in keys[:turn]]))
        options.append(
            sorted([k - 12 for k in keys[len(keys) - turn :]] + keys[: len(keys) - turn])
        )
    # Stay within a sixth of the register's middle: no drifting out of it over a song.
    options = [o for o in options if low - 3 <= o[0] and o[-1] <= low + 15] or [keys]
    centre = sum(previous) / len(previous)
    return min(options, key=lambda o: (abs(sum(o) / len(o) - centre), o))
