"""A backing band for a score: bass, piano, pad and drums from its chords and tempo, as MIDI.

The chords are the score's chord symbols (MusicXML ``<harmony>``, music21 ``ChordSymbol``),
each lasting until the next, so a chord carries over the rests between phrases. A score
without chord symbols (a user's own) gets chords chosen from its melody: per half bar, the
triad of the key that holds the most of the melody's notes, heavier on the beat.

The arrangement follows the pop songs the voice was made for, in three styles chosen by tempo
(``ballad`` below 90 bpm, ``upbeat`` from 140, ``pop`` between), each with three grooves, as
an arranger keyboard or Band-in-a-Box has: a verse groove, a bigger chorus groove (more
notes, louder, cymbals on the bar lines, a fuller piano and pad) and a lighter "lift" in
half time for a pre-chorus (a verse between a verse and a chorus). The score's sections
(rehearsal marks, :attr:`Harmony.sections`) say which plays where; a score without them plays
the verse groove throughout. The drums play a fill (a snare and tom run, chosen by the seed)
into each new section, which starts with a crash. Chords lie below the singer (the piano
around G3–F#4, the pad around E3–D#4), in close position, each chord in the inversion nearest
the one before so one leads smoothly to the next. The band plays an intro of up to two bars
before the singing (where the score has the bars of rest for it), keeps time through the
rests, and after the last sung bar plays an outro bar (IV, V) that resolves onto the final
chord, held with a crash.
"""

from __future__ import annotations

import math
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
STYLES = ("auto", "pop", "ballad", "upbeat")
#: Below this tempo (quarter notes a minute) "auto" plays a ballad.
BALLAD_BELOW_BPM = 90.0
#: From this tempo on "auto" plays upbeat (the compose stage's upbeat style is 152 bpm).
UPBEAT_FROM_BPM = 140.0
#: Bars the band plays before the singing, at most (fewer where the score has no room).
INTRO_BARS = 2
# General MIDI percussion keys.
KICK, SIDE_STICK, SNARE, HAND_CLAP = 36, 37, 38, 39
CLOSED_HAT, PEDAL_HAT, OPEN_HAT, CRASH, RIDE = 42, 44, 46, 49, 51
FLOOR_TOM, LOW_TOM, LOW_MID_TOM, HIGH_MID_TOM, HIGH_TOM = 43, 45, 47, 48, 50
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
    #: where each section begins: (offset, "verse" or "chorus"), as
    #: :attr:`acgmake.music.musicxml.Score.sections`; empty when the score marks none
    sections: list[tuple[float, str]] = field(default_factory=list)

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
            list(self.sections),
        )


def read_harmony(path: str | Path) -> Harmony:
    """The chords, key, tempo, metre and sections of the MusicXML score at ``path``.

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
        list(score.sections),
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
    ``seed`` varies the velocities, the kick's pushes and the fills, and the feel: each note
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
        style = auto_style(harmony.tempo_bpm)
    band = _Band(harmony, parts, random.Random(seed), start_s, feel=random.Random(f"feel {seed}"))
    form = _Form.of(harmony)
    chords = _cover(harmony.chords, form.start, form.song_end)
    final = _final_chord(harmony, chords)
    chords += _cadence(harmony, form.song_end, form.ending)
    piano, pad = _comp(band, chords, form, _GROOVES[style])
    _drums(band, form, _GROOVES[style])

    # The ending: everyone on the final chord, held a bar, with a crash.
    end = form.ending + max(float(harmony.beats_per_bar), 2.0)
    for key in _voice(final.pitch_classes, _PIANO_LOW, piano):
        band.add("piano", key, form.ending, end, 72)
    for key in _voice(final.pitch_classes, _PAD_LOW, pad):
        band.add("pad", key, form.ending, end, 62)
    band.add("bass", _BASS_LOW + (final.bass - _BASS_LOW) % 12, form.ending, end, 96)
    band.add("drums", KICK, form.ending, form.ending + 1.0, 104)
    band.add("drums", CRASH, form.ending, end, 100)
    return band.midi


def auto_style(tempo_bpm: float) -> str:
    """The style ``auto`` plays at ``tempo_bpm``: ballad, pop or upbeat."""
    if tempo_bpm < BALLAD_BELOW_BPM:
        return "ballad"
    return "upbeat" if tempo_bpm >= UPBEAT_FROM_BPM else "pop"


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


#: A hit held until the part's next note (or the chord's end).
HOLD = 0.0


@dataclass(frozen=True)
class _Hit:
    """A note a groove plays in every bar: on which beats, how far into the beat, what, how
    loud and how long (quarter lengths), and how often (drawn from the seed)."""

    beats: str  # "all", "first", "on" (1, 3, ...), "back" (2, 4, ...), "middle" (3 of 4)
    offset: float
    #: a drum key; for the bass "root" or "octave"; for the piano "chord", "full" (with the
    #: root below) or "arpeggio" (the next note up the chord, held to the chord's end)
    sound: int | str
    strength: int
    length: float = 0.5
    chance: float = 1.0


@dataclass(frozen=True)
class _Groove:
    """How the band plays a bar in one kind of section."""

    drums: tuple[_Hit, ...]
    bass: tuple[_Hit, ...]
    piano: tuple[_Hit, ...]
    pad: int  # how loud the pad holds each chord
    fill: int  # how loud a fill starts (it rises by a third)
    full: bool = False  # the pad doubles its root an octave down: a bigger sound
    crash_every: int = 0  # a crash on every so many bars of the section (0: its first only)


#: Each style's grooves: "verse", "chorus" (bigger: more notes, louder, cymbals) and "lift"
#: (half time, lighter: a pre-chorus, and the intro's time-keeping).
_GROOVES: dict[str, dict[str, _Groove]] = {
    "pop": {  # 8-beat
        "verse": _Groove(
            drums=(
                _Hit("all", 0.0, CLOSED_HAT, 72, 0.25),
                _Hit("all", 0.5, CLOSED_HAT, 52, 0.25),
                _Hit("on", 0.0, KICK, 94),
                _Hit("back", 0.0, SNARE, 94),
                _Hit("back", 0.5, KICK, 82, chance=0.35),
            ),
            bass=(_Hit("all", 0.0, "root", 90, 0.45), _Hit("all", 0.5, "root", 76, 0.45)),
            piano=(_Hit("all", 0.0, "chord", 56, 0.9),),
            pad=56,
            fill=74,
        ),
        "lift": _Groove(
            drums=(
                _Hit("all", 0.0, CLOSED_HAT, 64, 0.25),
                _Hit("first", 0.0, KICK, 90),
                _Hit("middle", 0.0, SNARE, 90),
                _Hit("back", 0.5, KICK, 74, chance=0.3),
            ),
            bass=(_Hit("first", 0.0, "root", 86, HOLD), _Hit("middle", 0.0, "root", 80, HOLD)),
            piano=(_Hit("first", 0.0, "chord", 54, HOLD), _Hit("middle", 0.0, "chord", 50, HOLD)),
            pad=54,
            fill=70,
        ),
        "chorus": _Groove(  # the ride in eighths, a clap on the snare, an octave-jumping bass
            drums=(
                _Hit("all", 0.0, RIDE, 86),
                _Hit("all", 0.5, RIDE, 68),
                _Hit("on", 0.0, KICK, 104),
                _Hit("back", 0.5, KICK, 88, chance=0.6),
                _Hit("back", 0.0, SNARE, 108),
                _Hit("back", 0.0, HAND_CLAP, 76),
            ),
            bass=(
                _Hit("all", 0.0, "root", 100, 0.45),
                _Hit("on", 0.5, "root", 86, 0.45),
                _Hit("back", 0.5, "octave", 90, 0.45),
            ),
            piano=(_Hit("all", 0.0, "full", 68, HOLD), _Hit("back", 0.5, "chord", 62, HOLD)),
            pad=66,
            fill=82,
            full=True,
            crash_every=2,
        ),
    },
    "ballad": {
        "verse": _Groove(  # a side-stick on 3, the piano in arpeggios
            drums=(
                _Hit("all", 0.0, CLOSED_HAT, 62),
                _Hit("first", 0.0, KICK, 84, 1.0),
                _Hit("middle", 0.0, SIDE_STICK, 80, 1.0),
            ),
            bass=(_Hit("first", 0.0, "root", 88, HOLD), _Hit("middle", 0.0, "root", 82, HOLD)),
            piano=(_Hit("all", 0.0, "arpeggio", 58), _Hit("all", 0.5, "arpeggio", 54)),
            pad=58,
            fill=62,
        ),
        "lift": _Groove(  # all but bare: a soft kick, the pedal hat, the arpeggio in quarters
            drums=(_Hit("first", 0.0, KICK, 70, 1.0), _Hit("back", 0.0, PEDAL_HAT, 58)),
            bass=(_Hit("first", 0.0, "root", 80, HOLD),),
            piano=(_Hit("all", 0.0, "arpeggio", 54),),
            pad=56,
            fill=58,
        ),
        "chorus": _Groove(  # a full backbeat, block chords on the beat, a fuller pad
            drums=(
                _Hit("all", 0.0, CLOSED_HAT, 70, 0.25),
                _Hit("all", 0.5, CLOSED_HAT, 50, 0.25),
                _Hit("on", 0.0, KICK, 100),
                _Hit("back", 0.5, KICK, 80, chance=0.3),
                _Hit("back", 0.0, SNARE, 100),
            ),
            bass=(_Hit("on", 0.0, "root", 100, HOLD), _Hit("back", 0.5, "root", 86, HOLD)),
            piano=(_Hit("all", 0.0, "full", 68, HOLD),),
            pad=68,
            fill=72,
            full=True,
            crash_every=4,
        ),
    },
    "upbeat": {  # four on the floor
        "verse": _Groove(  # the hi-hat on the off-beats, piano stabs between the beats
            drums=(
                _Hit("all", 0.0, KICK, 98),
                _Hit("back", 0.0, SNARE, 92),
                _Hit("all", 0.0, CLOSED_HAT, 50, 0.25),
                _Hit("all", 0.5, CLOSED_HAT, 74, 0.25),
            ),
            bass=(_Hit("all", 0.0, "root", 90, 0.45), _Hit("all", 0.5, "root", 74, 0.45)),
            piano=(_Hit("all", 0.5, "chord", 58, 0.3),),
            pad=56,
            fill=78,
        ),
        "lift": _Groove(
            drums=(
                _Hit("all", 0.0, CLOSED_HAT, 64, 0.25),
                _Hit("all", 0.5, CLOSED_HAT, 48, 0.25),
                _Hit("first", 0.0, KICK, 92),
                _Hit("middle", 0.0, SNARE, 92),
            ),
            bass=(_Hit("all", 0.0, "root", 84, HOLD),),
            piano=(_Hit("first", 0.0, "chord", 56, HOLD), _Hit("middle", 0.0, "chord", 52, HOLD)),
            pad=56,
            fill=74,
        ),
        "chorus": _Groove(  # sixteenth hats and an open hat off the beat, an octave bass
            drums=(
                _Hit("all", 0.0, KICK, 106),
                _Hit("back", 0.0, SNARE, 104),
                _Hit("back", 0.0, HAND_CLAP, 84),
                _Hit("all", 0.0, CLOSED_HAT, 72, 0.25),
                _Hit("all", 0.25, CLOSED_HAT, 54, 0.25),
                _Hit("all", 0.5, OPEN_HAT, 80, 0.25),
                _Hit("all", 0.75, CLOSED_HAT, 56, 0.25),
            ),
            bass=(_Hit("all", 0.0, "root", 100, 0.45), _Hit("all", 0.5, "octave", 90, 0.45)),
            piano=(_Hit("all", 0.0, "full", 72, 0.4), _Hit("all", 0.5, "chord", 66, 0.4)),
            pad=68,
            fill=84,
            full=True,
            crash_every=2,
        ),
    },
}
#: The cymbals that keep time: all the drums play in the intro.
_TIME_KEEPERS = (CLOSED_HAT, PEDAL_HAT, OPEN_HAT, RIDE)
#: The fills, a sixteenth a note over the last two beats before a new section (the last four
#: when the fill is one beat long); None rests.
_FILLS = (
    (SNARE, SNARE, SNARE, SNARE, SNARE, SNARE, SNARE, SNARE),
    (SNARE, SNARE, SNARE, SNARE, HIGH_TOM, HIGH_TOM, LOW_TOM, FLOOR_TOM),
    (SNARE, SNARE, HIGH_TOM, HIGH_TOM, LOW_MID_TOM, LOW_MID_TOM, FLOOR_TOM, FLOOR_TOM),
    (SNARE, None, SNARE, SNARE, SNARE, HIGH_MID_TOM, LOW_TOM, FLOOR_TOM),
)
#: How much louder a note on a bar's first beat is than the groove's hit.
_DOWNBEAT_ACCENT = 6


@dataclass(frozen=True)
class _Form:
    """Where the band plays what, in quarter lengths from the score's start: the intro from
    ``start`` to ``entry`` (the bar line the singing comes in at), the sections, the outro
    from ``song_end`` (the bar line after the last sung note) to ``ending``, where everyone
    hits the final chord."""

    start: float
    entry: float
    sections: tuple[tuple[float, str], ...]  # (bar line, "verse", "lift" or "chorus")
    song_end: float
    ending: float

    @classmethod
    def of(cls, harmony: Harmony) -> _Form:
        """The form of ``harmony``'s song: sections start at the bar line nearest their first
        note (a note in a bar's second half is a pickup into the next bar)."""
        bar = harmony.beats_per_bar

        def bar_line(offset: float) -> float:
            return math.floor(offset / bar + 0.5) * bar

        entry = bar_line(harmony.first_note)
        song_end = max(entry, math.ceil(harmony.last_note_end / bar - 1e-9) * bar)
        marks: list[tuple[float, str]] = []
        for offset, role in sorted(harmony.sections, key=lambda section: section[0]):
            line = max(entry, bar_line(offset))
            if line >= song_end:
                continue
            if marks and marks[-1][0] == line:
                marks.pop()
            marks.append((line, role))
        if not marks or marks[0][0] > entry:
            marks.insert(0, (entry, "verse"))
        roles = [role for _, role in marks]
        sections = []
        for index, (line, role) in enumerate(marks):
            groove = "chorus" if role == "chorus" else "verse"
            # A verse between a verse and a chorus is a pre-chorus (Japanese pop's B melody).
            if groove == "verse" and 0 < index < len(marks) - 1:
                if roles[index - 1] != "chorus" and roles[index + 1] == "chorus":
                    groove = "lift"
            sections.append((line, groove))
        start = max(0.0, entry - INTRO_BARS * bar)
        return cls(start, entry, tuple(sections), song_end, song_end + bar)

    def section_at(self, at: float) -> tuple[float, str]:
        """(where it starts, which groove) of the section playing at ``at``: ``"intro"``
        before the entry, the last section's through the outro."""
        if at < self.entry - 1e-9:
            return self.start, "intro"
        return next(s for s in reversed(self.sections) if s[0] <= at + 1e-9)

    def changes(self) -> list[float]:
        """The bar lines a new part of the song starts on, each after a fill: each section's
        (the first only after an intro) and the ending."""
        starts = [line for line, _ in self.sections if line > self.start]
        return [*starts, self.ending]


def _comp(
    band: _Band, chords: list[ChordSpan], form: _Form, grooves: dict[str, _Groove]
) -> tuple[list[int], list[int]]:
    """Bass, piano and pad through the chords, each section in its groove; returns the last
    piano and pad voicings."""
    piano: list[int] = []
    pad: list[int] = []
    boundaries = [line for line, _ in form.sections] + [form.song_end]
    for chord in _split(chords, boundaries):
        groove = grooves[_groove_name(form.section_at(chord.start)[1])]
        piano = _voice(chord.pitch_classes, _PIANO_LOW, piano)
        pad = _voice(chord.pitch_classes, _PAD_LOW, pad)
        pad_root = _PAD_LOW - 12 + (chord.root - _PAD_LOW) % 12
        for key in [pad_root, *pad] if groove.full else pad:
            band.add("pad", key, chord.start, chord.end, groove.pad)
        bass = _BASS_LOW + (chord.bass - _BASS_LOW) % 12
        piano_root = _PIANO_LOW - 12 + (chord.root - _PIANO_LOW) % 12
        sounds = {
            "root": [bass],
            "octave": [bass + 12],
            "chord": piano,
            "full": [piano_root, *piano],  # the left hand adds the root below
            # A broken chord: up the voicing and to the octave above its middle.
            "arpeggio": [*piano, piano[min(1, len(piano) - 1)] + 12],
        }
        _play(band, "bass", groove.bass, chord, sounds)
        _play(band, "piano", groove.piano, chord, sounds)
    return piano, pad


def _play(
    band: _Band, part: str, hits: tuple[_Hit, ...], chord: ChordSpan, sounds: dict[str, list[int]]
) -> None:
    """The part's ``hits`` through ``chord``; the chord sounds at once where none lands within
    an eighth of its start (a chord change between the groove's notes)."""
    times = _times(hits, chord.start, chord.end, band)
    if not times or times[0][0] > chord.start + 0.5 + 1e-9:
        times.insert(0, (chord.start, hits[0], hits[0].strength))
    steps = 0
    for index, (at, hit, strength) in enumerate(times):
        if hit.sound == "arpeggio":
            arpeggio = sounds["arpeggio"]
            band.add(part, arpeggio[steps % len(arpeggio)], at, chord.end, strength)
            steps += 1
            continue
        following = times[index + 1][0] if index + 1 < len(times) else chord.end
        end = min(at + hit.length, chord.end) if hit.length else following
        for key in sounds[str(hit.sound)]:
            band.add(part, key, at, end, strength)


def _drums(band: _Band, form: _Form, grooves: dict[str, _Groove]) -> None:
    """The kit from the intro to the ending: only the time-keeping cymbals in the intro, each
    section's groove, a fill in the last one or two beats before each new part of the song
    and a crash on its first beat (and on every so many bars of a chorus)."""
    bar = band.beats_per_bar
    changes = form.changes()
    position = form.start
    while position < form.ending - 1e-9:
        section_start, name = form.section_at(position)
        groove = grooves[_groove_name(name)]
        hits = groove.drums
        if name == "intro":
            hits = tuple(hit for hit in hits if hit.sound in _TIME_KEEPERS)
        groove_until = position + bar
        if any(abs(change - groove_until) < 1e-9 for change in changes):
            beats = band.rng.choice((1, 2)) if bar >= 3 else 1
            groove_until -= beats
            _fill(band, groove_until, beats, groove.fill)
        for at, hit, strength in _times(hits, position, groove_until, band):
            band.add("drums", int(hit.sound), at, at + hit.length, strength)
        bars_in = round((position - section_start) / bar)
        every = groove.crash_every
        if name != "intro" and (bars_in == 0 or (every and bars_in % every == 0)):
            band.add("drums", CRASH, position, position + bar, 96)
        position += bar


def _fill(band: _Band, start: float, beats: int, strength: int) -> None:
    """A run of sixteenths on the snare and toms from ``start``, ``beats`` long, rising by a
    third from ``strength``, over a kick on its first note: one of :data:`_FILLS`, by seed."""
    notes = band.rng.choice(_FILLS)[-4 * beats :]
    band.add("drums", KICK, start, start + 0.5, strength + 10)
    for index, key in enumerate(notes):
        if key is not None:
            at = start + index / 4
            rise = strength * index // (3 * max(1, len(notes) - 1))
            band.add("drums", key, at, at + 0.25, strength + rise)


def _times(
    hits: tuple[_Hit, ...], start: float, end: float, band: _Band
) -> list[tuple[float, _Hit, int]]:
    """(when, which hit, how loud) of each of ``hits`` from ``start`` to ``end`` (quarter
    lengths), in time order; a note on a bar's first beat is accented."""
    bar = band.beats_per_bar
    found = []
    bar_start = math.floor(start / bar + 1e-9) * bar
    while bar_start < end - 1e-9:
        for beat in range(bar):
            for hit in hits:
                at = bar_start + beat + hit.offset
                if not (start - 1e-9 <= at < end - 1e-9 and _on_beat(hit.beats, beat, bar)):
                    continue
                if hit.chance < 1 and band.rng.random() >= hit.chance:
                    continue
                accent = _DOWNBEAT_ACCENT if beat == 0 and hit.offset == 0 else 0
                found.append((at, hit, hit.strength + accent))
        bar_start += bar
    return sorted(found, key=lambda time: time[0])


def _on_beat(beats: str, beat: int, beats_per_bar: int) -> bool:
    """Whether a hit on ``beats`` plays on ``beat`` (0-based) of the bar."""
    if beats == "first":
        return beat == 0
    if beats == "on":
        return beat % 2 == 0
    if beats == "back":
        return beat % 2 == 1
    if beats == "middle":
        return beats_per_bar >= 2 and beat == beats_per_bar // 2
    return True


def _groove_name(section: str) -> str:
    """The groove a part of the song plays: the intro keeps the lift's time."""
    return "lift" if section == "intro" else section


def _cover(chords: list[ChordSpan], start: float, until: float) -> list[ChordSpan]:
    """The chords from ``start`` to ``until`` without gaps: the first chord also plays before
    itself (the intro), and each chord holds until the next."""
    ordered = sorted(chords, key=lambda c: c.start)
    covered = []
    for index, chord in enumerate(ordered):
        begin = 0.0 if index == 0 else chord.start
        end = ordered[index + 1].start if index + 1 < len(ordered) else until
        begin, end = max(begin, start), min(end, until)
        if end > begin:
            covered.append(ChordSpan(begin, end, chord.root, chord.pitch_classes, chord.bass))
    return covered or ordered[-1:]


def _split(chords: list[ChordSpan], lines: list[float]) -> list[ChordSpan]:
    """``chords`` cut at each of ``lines`` they hold across (where the groove changes)."""
    pieces = []
    for chord in chords:
        cuts = [chord.start, *(x for x in lines if chord.start < x < chord.end), chord.end]
        pieces += [
            ChordSpan(begin, end, chord.root, chord.pitch_classes, chord.bass)
            for begin, end in zip(cuts, cuts[1:], strict=False)
        ]
    return pieces


def _cadence(harmony: Harmony, start: float, end: float) -> list[ChordSpan]:
    """The outro's chords from ``start`` to ``end``: IV then V (iv, V in minor), the span split
    at its middle beat, leading to the tonic chord the song ends on."""
    third = 4 if harmony.mode == "major" else 3
    tonic = harmony.tonic
    subdominant = ((tonic + 5) % 12, (tonic + 5 + third) % 12, tonic)
    dominant = ((tonic + 7) % 12, (tonic + 11) % 12, (tonic + 2) % 12)
    middle = start + (end - start) // 2
    spans = [(start, middle, subdominant), (middle, end, dominant)]
    return [ChordSpan(s, e, pcs[0], pcs, pcs[0]) for s, e, pcs in spans if e > s]


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
