"""Composing a singable melody for phrases of morae: one note per mora, in 4/4.

The shape follows children's and pop songs, which is what the bundled voice was trained on:

- **rhythm** — mostly eighth notes, a few quarters on beats, a long phrase-final note that
  lands on a beat, then a rest; each phrase fills whole bars. Phrases with the same number of
  morae at the same place in a section share a rhythm (and a tune), so a second verse sings
  like the first, and repeated lines sing the same.
- **harmony** — a chord per half bar from a common progression, ending on a cadence: the last
  phrase of a section (and every second phrase) ends on the tonic chord, the others on the
  dominant (a question and its answer).
- **pitch** — chord tones on beats, stepwise motion between them, leaps recovered by a step the
  other way, an arch over the phrase, and a phrase-final note approached by step that resolves
  to the cadence chord (the tonic at the end of a section).

The score starts with a bar of rest (Sinsy pads about a bar of silence to a score that starts
with a note, which would shift every label) and every phrase ends with a rest; sections are
one bar of rest apart.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from dataclasses import dataclass, field

from acgmake.errors import UserError
from acgmake.text.kana import Phrase

VOICE_RANGE: tuple[int, int] = (64, 72)
"""Lowest and highest MIDI note the melody uses: E4–C5 for ``nitech_jp_song070_f001``.

Measured on this voice (F0 of the held part of ~450 quarter and half notes in 30 random
melodies, D4–D5): from E4 to C5, 68–88 % of the notes are sung within a semitone of the score,
median error within ±40 cents (B♭4: +68). D4 and D5 hit it only 34–55 % of the time, C4 and
below come out whispered (unvoiced), and notes above D5 are sung 1.5–5 semitones flat. Its
pitch decision tree asks only about notes from B3 to D5: the training songs lie there.
"""

#: Keys used when the user leaves the key at "auto": all their notes in E4–C5 are sung in
#: tune (B♭4 and E♭4 are sung sharp by this voice), with the tonic G4 / E4 inside the range.
AUTO_KEYS = {"major": "G", "minor": "E"}
MODES = ("major", "minor")
BEATS_PER_BAR = 4
_SLOTS_PER_BAR = 8  # eighth notes
_SLOT_QL = 0.5  # an eighth note, in quarter lengths

_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
#: Tonics whose key signature has at most 7 sharps or flats (what notation programs show).
_PLAIN_KEYS = {
    "major": {"C", "G", "D", "A", "E", "B", "F#", "C#", "F", "Bb", "Eb", "Ab", "Db", "Gb", "Cb"},
    "minor": {"A", "E", "B", "F#", "C#", "G#", "D#", "A#", "D", "G", "C", "F", "Bb", "Eb", "Ab"},
}
#: Chord roots (scale degrees from 0) that may follow each chord, most usual first. In minor,
#: 6 is the subtonic (VII) and 4 the major dominant of harmonic minor.
_PROGRESSIONS = {
    "major": {0: (3, 4, 5, 1), 1: (4, 3), 2: (5, 3), 3: (0, 4, 1), 4: (0, 5), 5: (3, 1, 4)},
    "minor": {0: (3, 5, 6, 4), 1: (4,), 2: (5, 3, 6), 3: (0, 4, 6), 4: (0, 5), 5: (6, 3, 2)},
}
#: Chords that lead to the dominant (IV, ii, vi / iv, VI, VII), most usual first.
_PREDOMINANTS = {"major": (3, 1, 5), "minor": (3, 5, 6)}


@dataclass(frozen=True)
class Note:
    """A note (``midi`` set) or a rest (``midi`` is None); durations in quarter lengths."""

    midi: int | None
    quarter_length: float
    lyric: str = ""
    syllabic: str = ""  # MusicXML <syllabic>: "single" for a whole mora on one note

    @property
    def is_rest(self) -> bool:
        return self.midi is None


@dataclass(frozen=True)
class Chord:
    """The harmony under the melody from ``offset`` for ``quarter_length`` (quarter lengths)."""

    offset: float
    quarter_length: float
    root: int  # pitch class, 0 = C
    quality: str  # "major", "minor" or "diminished" (a triad)

    @property
    def pitch_classes(self) -> frozenset[int]:
        third = 4 if self.quality == "major" else 3
        fifth = 6 if self.quality == "diminished" else 7
        return frozenset({self.root, (self.root + third) % 12, (self.root + fifth) % 12})


@dataclass
class Melody:
    """A single-voice melody in 4/4 with a mora on every note, and the chords it was set to."""

    notes: list[Note]
    key: str  # tonic, e.g. "G", "Eb", "F#"
    mode: str  # "major" or "minor"
    tempo_bpm: int
    title: str = ""
    beats_per_bar: int = BEATS_PER_BAR
    phrase_lines: list[int] = field(default_factory=list)  # lyric line of each phrase
    chords: list[Chord] = field(default_factory=list)  # none over the rests between phrases

    def sung_notes(self) -> list[Note]:
        """The notes that carry a mora, in order (rests left out)."""
        return [note for note in self.notes if not note.is_rest]

    @property
    def quarter_length(self) -> float:
        return sum(note.quarter_length for note in self.notes)

    @property
    def duration_s(self) -> float:
        """How long the melody lasts at its tempo, in seconds."""
        return self.quarter_length * 60.0 / self.tempo_bpm


def parse_key(key: str, mode: str) -> tuple[str, int]:
    """The tonic as written in scores (``"Eb"``) and its pitch class (0 = C) for ``key``.

    ``key`` is a note name such as ``C``, ``g``, ``Eb``, ``F#`` (``E-`` and ``B♭`` also read),
    or ``auto`` for the key that suits the bundled voice. Raises :class:`UserError` otherwise.
    """
    if mode not in MODES:
        raise UserError(f"unknown mode {mode!r}; use major or minor")
    text = key.strip()
    if text.lower() in ("", "auto"):
        text = AUTO_KEYS[mode]
    match = re.fullmatch(r"([A-Ga-g])([#♯b♭-]?)", text)
    if not match:
        raise UserError(f"unknown key {key!r}; give a note name such as C, G, Eb or F#")
    letter = match.group(1).upper()
    accidental = {"#": "#", "♯": "#", "b": "b", "♭": "b", "-": "b"}.get(match.group(2), "")
    tonic = letter + accidental
    if tonic not in _PLAIN_KEYS[mode]:
        other = _enharmonic(tonic)
        raise UserError(
            f"{tonic} {mode} needs more than 7 sharps or flats; use {other} {mode}, "
            "which sounds the same"
        )
    pitch_class = (_LETTER_PC[letter] + {"#": 1, "b": -1, "": 0}[accidental]) % 12
    return tonic, pitch_class


def _enharmonic(tonic: str) -> str:
    pitch_class = (_LETTER_PC[tonic[0]] + {"#": 1, "b": -1}.get(tonic[1:], 0)) % 12
    names = ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
    return names[pitch_class]


def compose_melody(
    phrases: list[Phrase],
    *,
    key: str = "auto",
    mode: str = "major",
    tempo_bpm: int = 120,
    seed: int = 0,
    voice_range: tuple[int, int] = VOICE_RANGE,
    title: str = "",
) -> Melody:
    """A melody with one note per mora of ``phrases``; the same arguments give the same melody.

    ``voice_range`` is the lowest and highest MIDI note to use (at least an octave's worth of
    scale notes fits a fifth or more). Raises :class:`UserError` for an unknown key or mode, a
    tempo out of 30–300 bpm, or no phrases.
    """
    tonic, tonic_pc = parse_key(key, mode)
    if not 30 <= tempo_bpm <= 300:
        raise UserError(f"tempo {tempo_bpm} bpm is out of range; give 30 to 300 (e.g. 120)")
    if not phrases:
        raise UserError("there are no phrases to set to music")
    low, high = voice_range
    if high - low < 6:
        raise ValueError(f"voice range {voice_range} is too narrow for a melody (< a fifth)")

    rng = random.Random(seed)
    space = _PitchSpace(tonic_pc, mode, low, high)
    notes: list[Note] = [Note(None, BEATS_PER_BAR)]  # a bar of rest before the first phrase
    chords: list[Chord] = []
    sections = [phrase.section for phrase in phrases]
    tunes: dict[tuple, _Tune] = {}  # reuse: same line text, or same shape at the same place
    previous_midi: int | None = None
    position = 0
    for index, phrase in enumerate(phrases):
        last_in_section = index + 1 == len(phrases) or sections[index + 1] != phrase.section
        if index > 0 and phrase.section != sections[index - 1]:
            notes.append(Note(None, BEATS_PER_BAR))  # a bar of rest between sections
            position = 0
        start = sum(note.quarter_length for note in notes)  # phrases start on a bar line
        cadence = "full" if last_in_section or position % 2 == 1 else "half"
        count = len(phrase.morae)
        by_text = ("text", phrase.morae, cadence)
        by_place = ("place", count, cadence, position)
        tune = tunes.get(by_text) or tunes.get(by_place)
        if tune is None:
            tune = _compose_tune(count, cadence, space, rng, previous_midi)
        tunes.setdefault(by_text, tune)
        tunes.setdefault(by_place, tune)
        notes.extend(tune.notes(phrase.morae))
        chords.extend(tune.chords_from(start, space))
        previous_midi = tune.pitches[-1]
        position += 1
    return Melody(
        notes=_merge_rests(notes),
        key=tonic,
        mode=mode,
        tempo_bpm=int(tempo_bpm),
        title=title,
        phrase_lines=[phrase.line for phrase in phrases],
        chords=_merge_chords(chords),
    )


@dataclass
class _Tune:
    """The music of one phrase: rhythm in eighth-note slots and a pitch per mora."""

    pickup: int  # slots of rest before the first note
    durations: list[int]  # slots per note
    rest: int  # slots of rest after the last note
    pitches: list[int]
    chords: list[int]  # root scale degree of each half bar, rests included

    def notes(self, morae: tuple[str, ...]) -> list[Note]:
        notes = [Note(None, self.pickup * _SLOT_QL)] if self.pickup else []
        for mora, slots, midi in zip(morae, self.durations, self.pitches, strict=True):
            notes.append(Note(midi, slots * _SLOT_QL, mora, "single"))
        notes.append(Note(None, self.rest * _SLOT_QL))
        return notes

    def chords_from(self, offset: float, space: _PitchSpace) -> list[Chord]:
        """The phrase's chords placed at ``offset``, from its first note to its last."""
        half_ql = 2.0
        first = self.pickup * _SLOT_QL
        last = (self.pickup + sum(self.durations)) * _SLOT_QL
        chords = []
        for half, degree in enumerate(self.chords):
            begin, end = max(half * half_ql, first), min((half + 1) * half_ql, last)
            if end > begin:
                root, quality = space.triad(degree)
                chords.append(Chord(offset + begin, end - begin, root, quality))
        return chords


def _merge_chords(chords: list[Chord]) -> list[Chord]:
    merged: list[Chord] = []
    for chord in chords:
        previous = merged[-1] if merged else None
        if (
            previous
            and (previous.root, previous.quality) == (chord.root, chord.quality)
            and math.isclose(previous.offset + previous.quarter_length, chord.offset)
        ):
            merged[-1] = Chord(
                previous.offset,
                previous.quarter_length + chord.quarter_length,
                chord.root,
                chord.quality,
            )
        else:
            merged.append(chord)
    return merged


def _merge_rests(notes: list[Note]) -> list[Note]:
    merged: list[Note] = []
    for note in notes:
        if note.is_rest and merged and merged[-1].is_rest:
            merged[-1] = Note(None, merged[-1].quarter_length + note.quarter_length)
        elif note.quarter_length > 0:
            merged.append(note)
    return merged


# ---------------------------------------------------------------------------------------------
# Rhythm


def _phrase_rhythm(count: int, rng: random.Random) -> tuple[int, list[int], int]:
    """(pickup rest, slots per note, rest after) for ``count`` morae, filling whole bars.

    Every mora but the last is an eighth or a quarter; the last is a quarter to a whole note
    that starts on a beat where it can and does not cross a bar line.
    """
    best: tuple[float, int, int, int, int, int] | None = None
    shortest = math.ceil((count + 2) / _SLOTS_PER_BAR)  # eighths, a final quarter, an eighth rest
    for bars in (shortest, shortest + 1):
        total = bars * _SLOTS_PER_BAR
        for pickup, final, lengthened in itertools.product(
            (0, 1, 2), (2, 3, 4, 6, 8), range(count)
        ):
            start_final = pickup + count - 1 + lengthened
            rest = total - start_final - final
            if rest < 1 or start_final % _SLOTS_PER_BAR + final > _SLOTS_PER_BAR:
                continue
            score = 3.0 if start_final % 4 == 0 else 1.5 if start_final % 2 == 0 else -2.0
            score += {2: 0.0, 3: 0.3, 4: 1.0, 6: 0.6, 8: -0.3}[final]
            score -= 3.0 * max(0.0, lengthened / max(1, count - 1) - 0.25)  # mostly eighths
            score += 0.8 if 2 <= rest <= 4 else -0.8 if rest == 1 else -0.5 * (rest - 4)
            score -= (0.0, 0.4, 0.6)[pickup] + 1.0 * (bars - shortest)
            score += 0.6 * rng.random()
            if best is None or score > best[0]:
                best = (score, bars, pickup, final, lengthened, rest)
    assert best is not None  # bars = shortest + 1 always fits
    _, _, pickup, final, lengthened, rest = best
    durations = _lengthen(count, pickup, lengthened, rng) + [final]
    return pickup, durations, rest


def _lengthen(count: int, pickup: int, lengthened: int, rng: random.Random) -> list[int]:
    """Slots of the ``count - 1`` non-final notes, ``lengthened`` of them quarters on beats."""
    others = count - 1
    if lengthened == 0:
        return [1] * others
    if math.comb(others, lengthened) <= 200:
        choices = list(itertools.combinations(range(others), lengthened))
    else:
        choices = [_subset(others, lengthened, rng) for _ in range(60)]
    best: tuple[float, tuple[int, ...]] | None = None
    for chosen in choices:
        onset, score, previous = pickup, 0.0, -2
        for index in range(others):
            if index in chosen:
                if onset % _SLOTS_PER_BAR == _SLOTS_PER_BAR - 1:
                    score -= 100.0  # would cross the bar line
                score += 1.0 if onset % 2 == 0 else -1.0
                score += 0.5 if onset % 4 == 0 else 0.0
                score -= 0.3 if previous == index - 1 else 0.0
                previous = index
                onset += 2
            else:
                onset += 1
        score += 0.4 * rng.random()
        if best is None or score > best[0]:
            best = (score, chosen)
    assert best is not None
    return [2 if index in best[1] else 1 for index in range(others)]


def _subset(size: int, count: int, rng: random.Random) -> tuple[int, ...]:
    """``count`` distinct indices below ``size``, sorted (a partial Fisher–Yates shuffle, so
    the result depends only on ``rng.random()``, stable across Python versions)."""
    pool = list(range(size))
    for i in range(count):
        j = i + int(rng.random() * (size - i))
        pool[i], pool[j] = pool[j], pool[i]
    return tuple(sorted(pool[:count]))


# ---------------------------------------------------------------------------------------------
# Harmony and pitch


class _PitchSpace:
    """The scale notes inside the voice range, numbered by scale step for step sizes."""

    def __init__(self, tonic_pc: int, mode: str, low: int, high: int) -> None:
        self.mode = mode
        self.tonic_pc = tonic_pc
        self.low, self.high = low, high
        scale = _SCALES[mode]
        # (midi, degree, step) for every scale note in range; step counts scale steps from C-1.
        self.notes = [
            (midi, degree, (midi - tonic_pc) // 12 * 7 + degree)
            for midi in range(low, high + 1)
            for degree, offset in enumerate(scale)
            if (midi - tonic_pc) % 12 == offset
        ]
        if len(self.notes) < 4:
            raise ValueError("the voice range holds fewer than 4 notes of the scale")
        steps = [step for _, _, step in self.notes]
        self.middle = (min(steps) + max(steps)) / 2

    def triad(self, degree: int) -> tuple[int, str]:
        """(root pitch class, quality) of the triad on scale ``degree`` (0 = the tonic)."""
        scale = _SCALES[self.mode]
        third = (scale[(degree + 2) % 7] - scale[degree]) % 12
        fifth = (scale[(degree + 4) % 7] - scale[degree]) % 12
        if self.mode == "minor" and degree == 4:
            third = 4  # the major dominant of harmonic minor
        quality = "diminished" if fifth == 6 else "major" if third == 4 else "minor"
        return (self.tonic_pc + scale[degree]) % 12, quality

    def candidates(self, chord: int) -> list[tuple[int, int, bool]]:
        """(midi, step, is chord tone) for every note usable over the chord with root ``chord``."""
        tones = {chord % 7, (chord + 2) % 7, (chord + 4) % 7}
        result = []
        for midi, degree, step in self.notes:
            if self.mode == "minor" and chord == 4:
                # Harmonic minor over the dominant: raise the 7th, avoid the 6th (it would
                # make an augmented second with the raised 7th).
                if degree == 5:
                    continue
                if degree == 6:
                    midi += 1
                    if midi > self.high:
                        continue
            result.append((midi, step, degree in tones))
        return result

    def final_note(self, cadence: str) -> tuple[int, int]:
        """(midi, step) of the phrase-final note: the tonic (or a tonic-chord tone) for a full
        cadence, the 2nd degree (or a dominant-chord tone) for a half cadence."""
        preferences = (0, 2, 4) if cadence == "full" else (1, 6, 4)
        chord = 0 if cadence == "full" else 4
        for degree in preferences:
            options = [
                (midi, step)
                for midi, step, _ in self.candidates(chord)
                if self._degree(step) == degree
            ]
            if options:
                # Close to the lower middle of the range: endings settle down.
                return min(options, key=lambda o: abs(o[1] - (self.middle - 1)))
        raise AssertionError("no chord tone in range")  # a fifth always holds one

    @staticmethod
    def _degree(step: int) -> int:
        return step % 7


def _phrase_chords(
    half_bars: int, final_half: int, cadence: str, mode: str, rng: random.Random
) -> list[int]:
    """The chord root (scale degree) of each half bar, ending on the cadence.

    Worked out backwards from the end: a full cadence is approached through the dominant
    (often preceded by IV or ii), a half cadence through a predominant or the tonic; the
    bars before wander through common progressions from the tonic (or vi/IV now and then).
    """
    end = 0 if cadence == "full" else 4
    chords = [end] * half_bars
    predominants = _PREDOMINANTS[mode]
    if final_half >= 1:
        chords[final_half - 1] = (
            4 if cadence == "full" else rng.choices((*predominants, 0), (3, 2, 1, 2))[0]
        )
    if final_half >= 2:
        chords[final_half - 2] = (
            rng.choices(predominants + (0,), (3, 2, 1, 2))[0]
            if cadence == "full"
            else rng.choice((0, 5))
        )
    moves = _PROGRESSIONS[mode]
    current = 0
    for half in range(final_half - 2):
        if half == 0:
            current = 0 if rng.random() < 0.7 else rng.choice((5, 3))
        elif rng.random() > 0.35:  # else hold the chord for a whole bar
            options = moves[current]
            weights = [len(options) - i for i in range(len(options))]
            current = rng.choices(options, weights)[0]
        chords[half] = current
    return chords


def _compose_tune(
    count: int, cadence: str, space: _PitchSpace, rng: random.Random, previous: int | None
) -> _Tune:
    pickup, durations, rest = _phrase_rhythm(count, rng)
    onsets = list(itertools.accumulate([pickup] + durations[:-1]))
    total = pickup + sum(durations) + rest
    chords = _phrase_chords(total // 4, onsets[-1] // 4, cadence, space.mode, rng)
    final_midi, final_step = space.final_note(cadence)
    arch = rng.choice((1.0, 1.5, 2.0))  # how high the phrase rises above the middle
    lift = rng.choice((-0.5, 0.0, 0.5))

    pitches: list[int] = []
    steps: list[int] = []
    chord_tone: list[bool] = []
    prev_midi = previous
    prev_step = next((s for m, _, s in space.notes if m == previous), None)
    for index in range(count - 1):
        onset = onsets[index]
        chord = chords[onset // 4]
        progress = index / max(1, count - 1)
        target = space.middle - 0.5 + lift + arch * math.sin(math.pi * progress)
        options, costs = [], []
        for midi, step, is_chord_tone in space.candidates(chord):
            cost = 0.35 * abs(step - target)
            if not is_chord_tone:
                cost += 3.5 if onset % 4 == 0 else 2.5 if onset % 2 == 0 else 0.4
            if prev_step is not None and prev_midi is not None:
                move = step - prev_step
                if abs(midi - prev_midi) > 7:
                    continue  # no leaps wider than a fifth
                cost += {0: 0.9, 1: 0.0, 2: 0.5, 3: 1.3, 4: 2.0}.get(abs(move), 9.0)
                if chord_tone and not chord_tone[-1] and abs(move) != 1:
                    cost += 2.0  # a passing or neighbour note moves on by step
                if len(steps) >= 2 and abs(steps[-1] - steps[-2]) >= 3:
                    leap = steps[-1] - steps[-2]
                    cost += -0.3 if abs(move) == 1 and move * leap < 0 else 1.2
                if len(pitches) >= 2 and midi == pitches[-1] == pitches[-2]:
                    cost += 1.5
            if index == count - 2:  # approach the final note by step
                cost += 1.2 * max(0, abs(step - final_step) - 1)
                cost += 0.6 if step == final_step else 0.0
            options.append((midi, step, is_chord_tone))
            costs.append(cost)
        midi, step, is_chord_tone = _pick(options, costs, rng)
        pitches.append(midi)
        steps.append(step)
        chord_tone.append(is_chord_tone)
        prev_midi, prev_step = midi, step
    pitches.append(final_midi)
    return _Tune(pickup, durations, rest, pitches, chords)


def _pick(options: list, costs: list[float], rng: random.Random, temperature: float = 0.5):
    """One of ``options``, the cheaper the likelier (a softmax over negative costs)."""
    lowest = min(costs)
    weights = [math.exp(-(cost - lowest) / temperature) for cost in costs]
    return rng.choices(options, weights)[0]
