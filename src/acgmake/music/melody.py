"""Composing a song-worthy melody for phrases of morae: one note per mora, never fewer.

The way a hobbyist writes a vocaloid melody by hand, in steps:

- **form** — blank lines are sections; a section labelled chorus (or サビ), or sung twice, is
  a chorus and sits higher than the verses. A section sung again gets the same music; a
  second verse of the same shape keeps the first verse's rhythm and follows its tune where the
  words allow; within a section, repeated lines repeat.
- **rhythm** (:mod:`acgmake.music.rhythm`) — each line fills whole bars with the style's
  figures (eighths, sixteenths, syncopations), words start on beats, and the line ends on a
  long note on a beat followed by a rest.
- **harmony** — a chord per bar from a progression the style uses for verses or choruses; a
  line ends on a cadence: the tonic chord (approached through V or V7) at the end of a section
  and every second line, the dominant (a question) otherwise.
- **pitch** — chosen for the whole line at once among the scale notes in the voice's range:
  chord tones on strong beats, mostly steps, passing notes that move on by step, leaps
  recovered, an arch over the line, the final note resolving to the cadence, and the melody
  rising and falling with the words' pitch accent (a fall in the accent is not sung rising).
  Good lines are drawn at random among the best (seeded), so the same seed gives the same song.

The score starts with a bar of rest (Sinsy pads about a bar of silence to a score that starts
with a note, which would shift every label) and every line ends with a rest; sections are one
bar of rest apart.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field

import numpy as np

from acgmake.errors import UserError
from acgmake.music.rhythm import SPECIAL_MORAE, Rhythm, bars_needed, line_rhythm
from acgmake.music.style import DEFAULT_STYLE, Meter, Style, get_meter, get_style
from acgmake.text.kana import Phrase

VOICE_RANGE: tuple[int, int] = (64, 72)
"""Lowest and highest MIDI note the melody uses: E4–C5 for ``nitech_jp_song070_f001``.

Measured on this voice (F0 of the held part of ~450 quarter and half notes in 30 random
melodies, D4–D5): from E4 to C5, 68–88 % of the notes are sung within a semitone of the score,
median error within ±40 cents (B♭4: +68). D4 and D5 hit it only 34–55 % of the time, C4 and
below come out whispered (unvoiced), and notes above D5 are sung 1.5–5 semitones flat. Its
pitch decision tree asks only about notes from B3 to D5: the training songs lie there.
"""

#: The melody's range by name (``--range``): ``narrow`` is :data:`VOICE_RANGE`; ``wide``,
#: D4-D5, is what the voice sings cleanly once the sing stage corrects it. Measured by
#: ``benchmarks/range_report.py`` on held half notes: from C#4 to D5 the corrected notes have
#: their median pitch on the note, keep their voice (83-100% of frames) and a clean vowel (WORLD
#: aperiodicity 0.01-0.11), and 70-100% of their frames within 50 cents (84-100% from C#4 to
#: B4); C4 and below are whispered; from C5 up Sinsy sings 0.5-5 semitones flat, and past D5
#: the corrected notes lose voicing and steadiness.
VOICE_RANGES: dict[str, tuple[int, int]] = {"narrow": VOICE_RANGE, "wide": (62, 74)}

#: Keys used when the user leaves the key at "auto": all their notes in E4–C5 are sung in
#: tune (B♭4 and E♭4 are sung sharp by this voice), with the tonic G4 / E4 inside the range.
AUTO_KEYS = {"major": "G", "minor": "E"}
MODES = ("major", "minor")
BEATS_PER_BAR = 4
_SLOT_QL = 0.25  # a sixteenth note, in quarter lengths

_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
#: Tonics whose key signature has at most 7 sharps or flats (what notation programs show).
_PLAIN_KEYS = {
    "major": {"C", "G", "D", "A", "E", "B", "F#", "C#", "F", "Bb", "Eb", "Ab", "Db", "Gb", "Cb"},
    "minor": {"A", "E", "B", "F#", "C#", "G#", "D#", "A#", "D", "G", "C", "F", "Bb", "Eb", "Ab"},
}


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
    #: "major", "minor", "diminished" (triads) or "dominant-seventh" (MusicXML's kind names)
    quality: str

    @property
    def pitch_classes(self) -> frozenset[int]:
        third = 3 if self.quality in ("minor", "diminished") else 4
        fifth = 6 if self.quality == "diminished" else 7
        tones = {self.root, (self.root + third) % 12, (self.root + fifth) % 12}
        if self.quality == "dominant-seventh":
            tones.add((self.root + 10) % 12)
        return frozenset(tones)


@dataclass
class Melody:
    """A single-voice melody with a mora on every note, and the chords it was set to."""

    notes: list[Note]
    key: str  # tonic, e.g. "G", "Eb", "F#"
    mode: str  # "major" or "minor"
    tempo_bpm: int  # quarter notes per minute
    title: str = ""
    beats_per_bar: int = BEATS_PER_BAR  # beats felt per bar (6/8 has 2)
    phrase_lines: list[int] = field(default_factory=list)  # lyric line of each phrase
    chords: list[Chord] = field(default_factory=list)  # from the first bar to the last
    time_signature: str = "4/4"
    style: str = DEFAULT_STYLE
    #: "verse" or "chorus" for each section, in order
    section_roles: list[str] = field(default_factory=list)

    @property
    def bar_quarter_length(self) -> float:
        """The length of a bar in quarter notes (3 in 3/4 and in 6/8)."""
        return get_meter(self.time_signature).bar_quarter_length

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


#: Words in a section label that mark a chorus.
_CHORUS_LABELS = ("chorus", "サビ", "さび", "hook", "refrain", "リフレイン")


def compose_melody(
    phrases: list[Phrase],
    *,
    key: str = "auto",
    mode: str = "major",
    tempo_bpm: int | None = None,
    seed: int = 0,
    voice_range: tuple[int, int] = VOICE_RANGE,
    title: str = "",
    style: str = DEFAULT_STYLE,
    time_signature: str = "4/4",
) -> Melody:
    """A melody with one note per mora of ``phrases``; the same arguments give the same melody.

    ``tempo_bpm`` None takes the style's tempo. ``voice_range`` is the lowest and highest MIDI
    note to use (it must hold a fifth). Raises :class:`UserError` for an unknown key, mode,
    style or time signature, a tempo out of 30–300 bpm, or no phrases.
    """
    tonic, tonic_pc = parse_key(key, mode)
    chosen = get_style(style)
    meter = get_meter(time_signature)
    tempo = chosen.tempo_bpm if tempo_bpm is None else tempo_bpm
    if not 30 <= tempo <= 300:
        raise UserError(f"tempo {tempo} bpm is out of range; give 30 to 300 (e.g. 120)")
    if not phrases:
        raise UserError("there are no phrases to set to music")
    low, high = voice_range
    if high - low < 6:
        raise ValueError(f"voice range {voice_range} is too narrow for a melody (< a fifth)")

    rng = random.Random(seed)
    composer = _Composer(_PitchSpace(tonic_pc, mode, low, high), meter, chosen, rng)
    sections = _sections(phrases)
    roles = _roles(sections)
    notes: list[Note] = [Note(None, meter.bar_quarter_length)]  # a bar before the first line
    chords: list[tuple[float, float, int, str]] = [
        (0.0, meter.bar_quarter_length, *composer.space.triad(0))
    ]
    done: dict[tuple, list[_Line]] = {}  # the music of each section, by its words and role
    for index, (section, role) in enumerate(zip(sections, roles, strict=True)):
        if index:
            start = sum(note.quarter_length for note in notes)
            notes.append(Note(None, meter.bar_quarter_length))  # a bar between sections
            chords.append((start, meter.bar_quarter_length, *composer.space.triad(0)))
        words = (role, tuple(phrase.morae for phrase in section))
        lines = done.get(words)
        if lines is None:
            model = next((music for (other, _), music in done.items() if other == role), None)
            lines = composer.section(section, role, model)
            done[words] = lines
        for phrase, line in zip(section, lines, strict=True):
            start = sum(note.quarter_length for note in notes)
            notes.extend(line.notes(phrase.morae))
            chords.extend(
                (start + begin * _SLOT_QL, (end - begin) * _SLOT_QL, root, quality)
                for begin, end, root, quality in line.chords
            )
    return Melody(
        notes=_merge_rests(notes),
        key=tonic,
        mode=mode,
        tempo_bpm=int(tempo),
        title=title,
        beats_per_bar=meter.beats,
        phrase_lines=[phrase.line for phrase in phrases],
        chords=_merge_chords([Chord(*chord) for chord in chords]),
        time_signature=meter.text,
        style=chosen.name,
        section_roles=roles,
    )


def _sections(phrases: list[Phrase]) -> list[list[Phrase]]:
    sections: list[list[Phrase]] = []
    for phrase in phrases:
        if not sections or phrase.section != sections[-1][0].section:
            sections.append([])
        sections[-1].append(phrase)
    return sections


def _roles(sections: list[list[Phrase]]) -> list[str]:
    """ "chorus" or "verse" for each section: by its label, else a section sung more than once
    is the chorus, else (verse-chorus being the commonest form) every second section is."""
    labels = [section[0].label.lower() for section in sections]
    if any(labels):
        return [
            "chorus" if any(word in label for word in _CHORUS_LABELS) else "verse"
            for label in labels
        ]
    words = [tuple(phrase.morae for phrase in section) for section in sections]
    repeated = {w for w in words if words.count(w) > 1}
    if repeated:
        return ["chorus" if w in repeated else "verse" for w in words]
    return ["chorus" if index % 2 else "verse" for index in range(len(sections))]


@dataclass
class _Line:
    """The music of one line: its rhythm, a pitch per mora and its chords (in slots)."""

    rhythm: Rhythm
    pitches: list[int]
    chords: list[tuple[int, int, int, str]]  # (start slot, end slot, root pitch class, quality)
    cadence: str

    def notes(self, morae: tuple[str, ...]) -> list[Note]:
        onsets = self.rhythm.onsets
        notes = [Note(None, onsets[0] * _SLOT_QL)]
        for mora, slots, midi in zip(morae, self.rhythm.durations, self.pitches, strict=True):
            notes.append(Note(midi, slots * _SLOT_QL, mora, "single"))
        notes.append(Note(None, (self.rhythm.window_slots - self.rhythm.end) * _SLOT_QL))
        return notes


class _Composer:
    """Composes sections one after the other, remembering where the last line ended."""

    def __init__(self, space: _PitchSpace, meter: Meter, style: Style, rng: random.Random):
        self.space = space
        self.meter = meter
        self.style = style
        self.rng = rng
        self.previous_midi: int | None = None

    def section(self, section: list[Phrase], role: str, model: list[_Line] | None) -> list[_Line]:
        """The music of a section; ``model`` is an earlier section of the same role whose
        rhythm and tune it follows where its lines have the same number of morae."""
        needed = [bars_needed(len(phrase.morae), self.meter, self.style) for phrase in section]
        # Lines of a section take the same number of bars, unless that would more than
        # double a short line: regular 2- and 4-bar phrases.
        longest = max(needed)
        bars = [longest if longest <= 2 * need else need for need in needed]
        progression = self._progression(role)
        lines: list[_Line] = []
        bar_in_section = 0
        for index, phrase in enumerate(section):
            last = index == len(section) - 1
            cadence = "end" if last else "full" if index % 2 == 1 else "half"
            same = next(
                (
                    (other, line)
                    for other, line in zip(section, lines, strict=False)
                    if other.morae == phrase.morae and line.cadence == cadence
                ),
                None,
            )
            if same is not None:
                lines.append(same[1])
                bar_in_section += bars[index]
                self.previous_midi = same[1].pitches[-1]
                continue
            template = None
            if model is not None and index < len(model):
                if len(model[index].pitches) == len(phrase.morae):
                    template = (model[index], 1.2)
            if template is None:
                template = next(
                    (
                        (line, 0.6)
                        for other, line in zip(section, lines, strict=False)
                        if len(other.morae) == len(phrase.morae)
                        and line.cadence == cadence
                        and (section.index(other) - index) % 2 == 0
                    ),
                    None,
                )
            line = self._line(
                phrase, role, index, bars[index], cadence, progression, bar_in_section, template
            )
            lines.append(line)
            bar_in_section += bars[index]
            self.previous_midi = line.pitches[-1]
        return lines

    def _progression(self, role: str) -> tuple[int, ...]:
        options = self.style.progressions[(self.space.mode, role)]
        return options[int(self.rng.random() * len(options))]

    def _line(
        self,
        phrase: Phrase,
        role: str,
        index: int,
        bars: int,
        cadence: str,
        progression: tuple[int, ...],
        bar_in_section: int,
        template: tuple[_Line, float] | None,
    ) -> _Line:
        starts = frozenset(phrase.starts)
        if template is not None and template[0].rhythm.window_slots == bars * self.meter.bar_slots:
            rhythm = template[0].rhythm
        else:
            template = template if template and template[1] > 1 else None
            rhythm = self._rhythm(phrase.morae, starts, bars)
        chords = self._chords(rhythm, cadence, progression, bar_in_section)
        pitches = self._pitches(phrase, rhythm, chords, role, index, cadence, template)
        return _Line(
            rhythm, pitches, [(a, b, *self.space.triad_of(c)) for a, b, c in chords], cadence
        )

    def _rhythm(self, morae: tuple[str, ...], starts: frozenset[int], bars: int) -> Rhythm:
        while True:
            try:
                return line_rhythm(morae, starts, bars, self.meter, self.style, self.rng)
            except ValueError:
                bars *= 2  # only for lines far denser than the style expects

    def _chords(
        self, rhythm: Rhythm, cadence: str, progression: tuple[int, ...], bar_in_section: int
    ) -> list[tuple[int, int, tuple[int, bool]]]:
        """(start, end, (degree, seventh)) chords over the line's window: a chord per bar from
        the progression, and the cadence: the chord the last note lands on is I (full) or V
        (half), the one before it leads there (V or V7 to I; IV, ii or I to V)."""
        bar = self.meter.bar_slots
        bars = rhythm.window_slots // bar
        chords = [
            [b * bar, (b + 1) * bar, progression[(bar_in_section + b) % len(progression)], False]
            for b in range(bars)
        ]
        final = rhythm.onsets[-1]
        final_bar = final // bar
        full = cadence in ("full", "end")
        home = 0 if full else 4
        seventh = full and self.style.seventh_dominant
        if final % bar:
            # The last note lands mid-bar: the bar's first part leads to the cadence chord.
            leading = chords[final_bar]
            lead = 4 if full else (leading[2] if leading[2] in (0, 1, 3, 5) else 3)
            chords[final_bar] = [leading[0], final, lead, seventh and lead == 4]
            chords.insert(final_bar + 1, [final, leading[1], home, False])
            after = final_bar + 2
        else:
            chords[final_bar][2] = home
            if final_bar:
                before = chords[final_bar - 1]
                if full:
                    if before[2] not in (3, 1):
                        before[2] = 4
                    before[3] = seventh and before[2] == 4
                elif before[2] in (4, 6):
                    before[2] = 3
            after = final_bar + 1
        for chord in chords[after:]:
            chord[2], chord[3] = home, False
        return [(start, end, (degree, seventh)) for start, end, degree, seventh in chords]

    def _pitches(
        self,
        phrase: Phrase,
        rhythm: Rhythm,
        chords: list[tuple[int, int, tuple[int, bool]]],
        role: str,
        index: int,
        cadence: str,
        template: tuple[_Line, float] | None,
    ) -> list[int]:
        """A pitch per mora, drawn from the whole line's costs (see the module docstring)."""
        space, meter = self.space, self.meter
        morae = phrase.morae
        count = len(morae)
        accent = phrase.accent if len(phrase.accent) == count else ""
        starts = set(phrase.starts)
        top = len(space.notes) - 1
        center = top * (0.68 if role == "chorus" else 0.34)
        center += (0.0, 0.4, 0.2, -0.2)[index % 4]
        arch = self.style.arch * (0.6 + 0.4 * self.rng.random())

        options: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # midi, step, chord tone
        unary: list[np.ndarray] = []
        for i, onset in enumerate(rhythm.onsets):
            degree, seventh = next(c for s, e, c in chords if s <= onset < e)
            midi, step, tone = space.candidates(degree, seventh)
            options.append((midi, step, tone))
            strength = meter.strength(onset)
            cost = np.zeros(len(midi))
            long = rhythm.durations[i] >= meter.beat_slots
            cost += np.where(
                tone, 0.0, {3.0: 4.0, 2.0: 3.0, 1.5: 2.2}.get(strength, 0.5) + 1.5 * long
            )
            progress = i / max(1, count - 1)
            target = center + arch * (math.sin(math.pi * min(1.0, progress * 1.15)) - 0.5)
            cost += 0.3 * np.abs(step - target)
            if template is not None:
                model = np.array([space.step_of(m) for m in template[0].pitches])
                cost += template[1] * np.abs(step - model[i])
            if i == 0 and self.previous_midi is not None:
                gap = np.abs(step - space.step_of(self.previous_midi))
                cost += 0.35 * np.maximum(0, gap - 2)
            if i == count - 1:
                cost += space.cadence_cost(midi, cadence)
            unary.append(cost)

        def pair(i: int) -> np.ndarray:
            before, here = options[i - 1][1], options[i][1]
            move = here[None, :] - before[:, None]
            size = np.abs(move)
            mora = morae[i]
            cost = np.choose(np.minimum(size, 5), [0.7, 0.0, 0.7, 1.6, 2.4, 3.6])
            if mora in SPECIAL_MORAE:
                cost = np.where(size == 0, 0.0, cost + (2.0 if mora in "っッ" else 0.4))
            leap = np.abs(options[i][0][None, :] - options[i - 1][0][:, None])
            cost = cost + np.where(leap > 9, 50.0, 0.0)
            if accent:
                was, now = accent[i - 1], accent[i]
                if i not in starts:
                    if (was, now) == ("L", "H"):
                        cost += np.where(move < 0, 2.5, np.where(move == 0, 0.8, -0.2))
                    elif (was, now) == ("H", "L"):
                        cost += np.where(move > 0, 3.0, np.where(move == 0, 1.0, -0.2))
                elif (was, now) == ("H", "L"):
                    cost += np.where(move > 0, 1.0, 0.0)
                elif (was, now) == ("L", "H"):
                    cost += np.where(move < 0, 0.6, 0.0)
            return cost

        def triple(i: int) -> np.ndarray:
            first, second, third = (options[j][1] for j in (i - 2, i - 1, i))
            earlier = second[None, :, None] - first[:, None, None]
            move = third[None, None, :] - second[None, :, None]
            recovered = (earlier * move < 0) & (np.abs(move) <= 2)
            cost = np.where((np.abs(earlier) >= 3) & ~recovered, 1.2, 0.0)
            passing = ~options[i - 1][2][None, :, None] & (np.abs(move) != 1)
            cost = cost + np.where(passing, 1.5, 0.0)
            if morae[i] not in SPECIAL_MORAE:
                cost = cost + np.where((earlier == 0) & (move == 0), 0.8, 0.0)
            return cost

        return [
            int(options[i][0][choice])
            for i, choice in enumerate(
                _sample_path(unary, pair, triple, self.style.temperature, self.rng)
            )
        ]


def _sample_path(unary, pair, triple, temperature: float, rng: random.Random) -> list[int]:
    """Indices of one candidate per note, drawn with probability proportional to
    exp(-total cost / temperature), the cost being the sum of per-note, per-pair and
    per-triple terms: forward sums over pairs of notes, then a draw walking back."""
    count = len(unary)
    scale = -1.0 / temperature
    if count == 1:
        return [_draw_index(unary[0] * scale, rng)]
    # alpha[i][p, q]: log weight of the notes up to i with note i-1 = p and note i = q.
    alphas = [(unary[0][:, None] + unary[1][None, :] + pair(1)) * scale]
    steps: list[np.ndarray] = [np.zeros(0)]
    for i in range(2, count):
        step = (unary[i][None, None, :] + pair(i)[None, :, :] + triple(i)) * scale
        steps.append(step)
        alphas.append(_logsumexp(alphas[-1][:, :, None] + step, axis=0))
    last = alphas[-1]
    flat = _draw_index(last.ravel(), rng)
    p, q = divmod(flat, last.shape[1])
    path = [q, p]
    for i in range(count - 1, 1, -1):
        weights = alphas[i - 2][:, path[-1]] + steps[i - 1][:, path[-1], path[-2]]
        path.append(_draw_index(weights, rng))
    return list(reversed(path))


def _draw_index(log_weights: np.ndarray, rng: random.Random) -> int:
    weights = np.exp(log_weights - log_weights.max())
    cumulative = np.cumsum(weights)
    return int(min(np.searchsorted(cumulative, rng.random() * cumulative[-1]), len(weights) - 1))


def _logsumexp(values: np.ndarray, axis: int) -> np.ndarray:
    top = values.max(axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return np.squeeze(top, axis=axis) + np.log(np.exp(values - top).sum(axis=axis))


def _merge_chords(chords: list[Chord]) -> list[Chord]:
    merged: list[Chord] = []
    for chord in chords:
        if chord.quarter_length <= 0:
            continue
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


class _PitchSpace:
    """The scale notes inside the voice range, numbered by scale step (0 = the lowest)."""

    def __init__(self, tonic_pc: int, mode: str, low: int, high: int) -> None:
        self.mode = mode
        self.tonic_pc = tonic_pc
        self.low, self.high = low, high
        scale = _SCALES[mode]
        #: (midi, degree) of every scale note in range, low to high
        self.notes = [
            (midi, scale.index((midi - tonic_pc) % 12))
            for midi in range(low, high + 1)
            if (midi - tonic_pc) % 12 in scale
        ]
        if len(self.notes) < 4:
            raise ValueError("the voice range holds fewer than 4 notes of the scale")
        self._steps = {midi: step for step, (midi, _) in enumerate(self.notes)}

    def step_of(self, midi: int) -> int:
        """The scale step of ``midi`` (a raised 7th counts as its natural 7th)."""
        return self._steps.get(midi, self._steps.get(midi - 1, 0))

    def triad(self, degree: int) -> tuple[int, str]:
        """(root pitch class, quality) of the triad on scale ``degree`` (0 = the tonic)."""
        return self.triad_of((degree, False))

    def triad_of(self, chord: tuple[int, bool]) -> tuple[int, str]:
        """(root pitch class, MusicXML kind) of (degree, seventh): V7 when seventh is set."""
        degree, seventh = chord
        scale = _SCALES[self.mode]
        third = (scale[(degree + 2) % 7] - scale[degree]) % 12
        fifth = (scale[(degree + 4) % 7] - scale[degree]) % 12
        if self.mode == "minor" and degree == 4:
            third = 4  # the major dominant of harmonic minor
        quality = "diminished" if fifth == 6 else "major" if third == 4 else "minor"
        if seventh and degree == 4:
            quality = "dominant-seventh"
        return (self.tonic_pc + scale[degree]) % 12, quality

    def candidates(self, degree: int, seventh: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(midi, step, is chord tone) of every note usable over the chord on ``degree``."""
        root, quality = self.triad_of((degree, seventh))
        tones = Chord(0, 0, root, quality).pitch_classes
        midis, steps, chord_tones = [], [], []
        for step, (midi, note_degree) in enumerate(self.notes):
            if self.mode == "minor" and degree == 4:
                # Harmonic minor over the dominant: the raised 7th, and no 6th (it would make
                # an augmented second with the raised 7th).
                if note_degree == 5:
                    continue
                if note_degree == 6:
                    midi += 1
                    if midi > self.high:
                        continue
            midis.append(midi)
            steps.append(step)
            chord_tones.append(midi % 12 in tones)
        return np.array(midis), np.array(steps), np.array(chord_tones)

    def cadence_cost(self, midis: np.ndarray, cadence: str) -> np.ndarray:
        """How badly each note ends a line: a section ends on the tonic, a full cadence on
        the tonic (or its third or fifth), a half cadence on the 2nd, 7th or 5th degree (notes
        of the V chord)."""
        scale = _SCALES[self.mode]
        costs = {
            "end": {0: 0.0, 2: 6.0, 4: 8.0},
            "full": {0: 0.0, 2: 2.0, 4: 3.0},
            "half": {1: 0.0, 4: 0.6, 6: 1.0},
        }[cadence]
        result = []
        for midi in midis:
            offset = (int(midi) - self.tonic_pc) % 12
            degree = scale.index(offset) if offset in scale else 6  # a raised 7th
            result.append(costs.get(degree, 25.0))
        return np.array(result)
