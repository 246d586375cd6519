"""The rhythm of a line: where each mora's note starts, in sixteenth-note slots.

A line fills a window of whole bars. Each beat of it gets a rhythm figure (a quarter, two
eighths, eighth and two sixteenths, a syncopation, a held beat...) chosen with the style's
weights, so that exactly one note starts per mora; the line's last mora gets a long note on a
beat and a rest follows it. Figures are scored for how words sit on them: a word (accent
phrase) starts on a beat, ん, っ and ー stay off the strongest beats, っ (a closure) is never
held long. Among the good rhythms one is drawn at random (seeded): the sum over all figure
choices is worked out beat by beat, then a rhythm is sampled backwards from it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from acgmake.music.style import COMPOUND_FIGURES, SIMPLE_FIGURES, Meter, Style

#: Morae that extend the syllable before them; they sit badly on a strong beat.
SPECIAL_MORAE = frozenset("んンっッーぁぃぅぇぉァィゥェォ")
_CLOSURES = frozenset("っッ")
_NEG = -1e9


@dataclass(frozen=True)
class Rhythm:
    """Where the notes of one line start in its window of whole bars (sixteenth slots)."""

    window_slots: int
    onsets: tuple[int, ...]  # one per mora, increasing
    final_slots: int  # length of the last note

    @property
    def durations(self) -> tuple[int, ...]:
        """Each note's length in slots: to the next note, and the last one's own length."""
        inner = tuple(b - a for a, b in zip(self.onsets, self.onsets[1:], strict=False))
        return inner + (self.final_slots,)

    @property
    def end(self) -> int:
        """The slot where the last note ends and the rest before the next line begins."""
        return self.onsets[-1] + self.final_slots


def bars_needed(count: int, meter: Meter, style: Style) -> int:
    """How many bars a line of ``count`` morae takes in ``style``: 1, 2, 4, 6, 8... bars."""
    beats = (count - 1) / style.density + style.final_beats[0] + 0.5
    bars = math.ceil(beats / meter.beats)
    for size in (1, 2, 4, 6, 8, 12, 16, 24, 32):
        if size >= bars:
            return size
    return bars


def line_rhythm(
    morae: tuple[str, ...],
    starts: frozenset[int],
    bars: int,
    meter: Meter,
    style: Style,
    rng: random.Random,
) -> Rhythm:
    """A rhythm with one note per mora of ``morae`` in ``bars`` bars (see the module doc).

    ``starts`` are the indices of morae that begin a word (an accent phrase).
    """
    count = len(morae)
    figures = _figures(meter, style)
    beats = bars * meter.beats
    slots = meter.beat_slots

    # forward[b][c]: log of the summed weight of all ways to fill beats 0..b-1 with c notes
    forward = [[_NEG] * count for _ in range(beats + 1)]
    forward[0][0] = 0.0
    for beat in range(beats):
        for placed in range(count):
            here = forward[beat][placed]
            if here <= _NEG / 2:
                continue
            for figure, weight in figures:
                after = placed + len(figure)
                if after > count - 1:
                    continue
                score = here + _figure_score(figure, weight, beat, placed, morae, starts, meter)
                forward[beat + 1][after] = _logaddexp(forward[beat + 1][after], score)

    # The last note: on a beat, held for the style's length, then a rest of an eighth or more.
    low, high = style.final_beats
    endings: list[tuple[float, int, int]] = []  # (score, beat, length in slots)
    for beat in range(beats):
        if forward[beat][count - 1] <= _NEG / 2:
            continue
        for length_beats in range(low, high + 1):
            length = length_beats * slots
            rest = beats * slots - beat * slots - length
            if rest < 2:
                continue
            strength = meter.strength(beat * slots)
            score = forward[beat][count - 1] + {3.0: 2.0, 2.0: 1.0}.get(strength, -0.7)
            score += 0.4 * (length_beats - low)  # longer, when there is room
            score -= 0.6 * max(0.0, rest / meter.bar_slots - 1.0) * meter.beats  # idle bars
            if (beat * slots) // meter.bar_slots != (beat * slots + length - 1) // meter.bar_slots:
                score -= 0.8  # held over a bar line
            endings.append((score, beat, length))
    if not endings:
        raise ValueError(f"{count} morae do not fit in {bars} bars")
    chosen = _draw([score for score, _, _ in endings], style.temperature, rng)
    _, final_beat, final_length = endings[chosen]

    # Walk back from the last note, drawing each beat's figure by the weight of its paths.
    onsets: list[int] = [final_beat * slots]
    placed = count - 1
    for beat in range(final_beat - 1, -1, -1):
        options, scores = [], []
        for figure, weight in figures:
            before = placed - len(figure)
            if before < 0 or forward[beat][before] <= _NEG / 2:
                continue
            score = forward[beat][before]
            score += _figure_score(figure, weight, beat, before, morae, starts, meter)
            options.append((figure, before))
            scores.append(score)
        figure, placed = options[_draw(scores, 1.0, rng)]
        onsets.extend(beat * slots + offset for offset in reversed(figure))
    assert placed == 0, "the walk back must use every mora"
    return Rhythm(beats * slots, tuple(reversed(onsets)), final_length)


def _figures(meter: Meter, style: Style) -> list[tuple[tuple[int, ...], float]]:
    chosen = style.compound_figures if meter.compound else style.figures
    shapes = COMPOUND_FIGURES if meter.compound else SIMPLE_FIGURES
    return [(shape, math.log(chosen[shape])) for shape in shapes if chosen.get(shape, 0) > 0]


def _figure_score(
    figure: tuple[int, ...],
    weight: float,
    beat: int,
    placed: int,
    morae: tuple[str, ...],
    starts: frozenset[int],
    meter: Meter,
) -> float:
    """How well ``figure`` on ``beat`` fits the morae from ``placed`` on (log scale)."""
    slot = beat * meter.beat_slots
    if placed == 0 and not figure:
        # A beat of rest before the line is a breath; more leaves the bar idle.
        return -0.2 if beat == 0 else -1.2
    score = weight
    if placed == 0:
        score += 0.3 if figure[0] in (0, 2) else -0.5  # the line starts on a beat or an "and"
    if not figure:
        held = morae[placed - 1]
        if held in _CLOSURES:
            score -= 4.0  # a closure is a short silence, not a held note
        elif placed in starts:
            score += 0.5  # long notes on word ends
        else:
            score -= 0.3
        if slot % meter.bar_slots == 0:
            score -= 0.3  # tied over the bar line
    for index, offset in enumerate(figure):
        mora = placed + index
        strength = meter.strength(slot + offset)
        if morae[mora] in SPECIAL_MORAE and strength >= 1.5:
            score -= 1.0 + 0.3 * (strength - 1.5)
        if mora in starts and mora:
            score += 0.6 if strength >= 1.5 else 0.1 if strength == 1.0 else -0.4
    return score


def _draw(scores: list[float], temperature: float, rng: random.Random) -> int:
    """An index drawn with probability proportional to exp(score / temperature)."""
    top = max(scores)
    weights = [math.exp((score - top) / temperature) for score in scores]
    pick = rng.random() * sum(weights)
    for index, weight in enumerate(weights):
        pick -= weight
        if pick <= 0:
            return index
    return len(weights) - 1


def _logaddexp(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    if b <= _NEG / 2:
        return a
    return a + math.log1p(math.exp(b - a))
