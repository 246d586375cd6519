"""How well a composed melody fits its lyrics, measured: the figures issue reports quote.

- **mora coverage** — sung notes whose lyric is the mora the lyrics ask for, in order, over
  all morae (1.0: none dropped, none added, one mora per note);
- **in range** — the share of notes inside the voice's comfortable range (E4–C5);
- **accent agreement** — within each accent phrase, where the words' pitch accent rises (L→H)
  or falls (H→L) from one mora to the next, the share of those steps where the melody moves
  the same way; compared with the same composer deaf to the accent (the same lyrics, seeds
  and styles with the accent taken away) and with chance (moving up or down as often as the
  melody does anyway);
- **compose time** — seconds from phrases to a melody.

``python -m acgmake.music.report [LYRICS...]`` (or ``benchmarks/compose_report.py``) prints
them for the example lyrics.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from acgmake.music.melody import VOICE_RANGE, Melody, compose_melody
from acgmake.text.kana import Phrase


@dataclass
class Agreement:
    """Accent steps (rises and falls inside accent phrases) and how the melody moved on them."""

    steps: int = 0
    agreeing: int = 0  # the melody moved the accent's way
    contradicting: int = 0  # it moved the other way
    rises: int = 0  # accent steps that rise (the others fall)
    melody_steps: int = 0  # consecutive notes inside lines
    melody_up: int = 0
    melody_down: int = 0

    def add(self, other: Agreement) -> None:
        for name in (f.name for f in dataclasses.fields(self)):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def share(self) -> float:
        return self.agreeing / self.steps if self.steps else 0.0

    @property
    def chance(self) -> float:
        """Agreement expected if the melody moved up and down at its own rates, at random."""
        if not self.steps or not self.melody_steps:
            return 0.0
        up = self.melody_up / self.melody_steps
        down = self.melody_down / self.melody_steps
        falls = self.steps - self.rises
        return (self.rises * up + falls * down) / self.steps


def accent_agreement(phrases: list[Phrase], melody: Melody) -> Agreement:
    """How often the melody's steps follow the lyrics' pitch accent (see the module doc)."""
    result = Agreement()
    sung = iter(melody.sung_notes())
    for phrase in phrases:
        notes = [next(sung) for _ in phrase.morae]
        accent = phrase.accent if len(phrase.accent) == len(notes) else ""
        starts = set(phrase.starts)
        for index in range(1, len(notes)):
            move = notes[index].midi - notes[index - 1].midi
            result.melody_steps += 1
            result.melody_up += move > 0
            result.melody_down += move < 0
            if not accent or index in starts or accent[index] == accent[index - 1]:
                continue
            rising = accent[index] == "H"
            result.steps += 1
            result.rises += rising
            result.agreeing += (move > 0) if rising else (move < 0)
            result.contradicting += (move < 0) if rising else (move > 0)
    return result


def mora_coverage(phrases: list[Phrase], melody: Melody) -> float:
    """Morae sung on a note of their own, in order, over all morae (1.0 is perfect)."""
    wanted = [mora for phrase in phrases for mora in phrase.morae]
    sung = [note.lyric for note in melody.sung_notes()]
    matching = sum(a == b for a, b in zip(wanted, sung, strict=False))
    return matching / max(len(wanted), len(sung))


def share_in_range(melody: Melody, voice_range: tuple[int, int] = VOICE_RANGE) -> float:
    """The share of sung notes within ``voice_range`` (MIDI numbers, inclusive)."""
    notes = melody.sung_notes()
    low, high = voice_range
    return sum(low <= note.midi <= high for note in notes) / len(notes)


def register_by_role(phrases: list[Phrase], melody: Melody) -> dict[str, float]:
    """The mean MIDI pitch of the verses' and the choruses' notes."""
    roles: dict[int, str] = {}
    for phrase in phrases:
        roles.setdefault(phrase.section, "")
    section_roles = dict(zip(sorted(roles), melody.section_roles, strict=False))
    pitches: dict[str, list[int]] = {}
    sung = iter(melody.sung_notes())
    for phrase in phrases:
        role = section_roles.get(phrase.section, "verse")
        pitches.setdefault(role, []).extend(next(sung).midi for _ in phrase.morae)
    return {role: sum(values) / len(values) for role, values in pitches.items()}


def main(argv: list[str] | None = None) -> int:
    """Print the figures for the lyrics files given (default: the repository's examples/)."""
    from acgmake.text.lyrics import read_lyrics

    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])]
    if not paths:
        paths = sorted((Path(__file__).resolve().parents[3] / "examples").glob("*.txt"))
        if not paths:
            print(
                "no lyrics files given, and no examples/ beside this acgmake (it is installed, "
                "not a checkout): give lyrics files, e.g. python -m acgmake.music.report a.txt",
                file=sys.stderr,
            )
            return 2
    styles, seeds = ("ballad", "pop", "upbeat"), range(5)
    total, deaf = Agreement(), Agreement()
    print(
        f"{'lyrics':<14}{'morae':>6}{'coverage':>10}{'in range':>10}{'agree':>8}"
        f"{'deaf':>7}{'chance':>8}{'verse':>7}{'chorus':>8}{'ms/song':>9}"
    )
    for path in paths:
        started = time.perf_counter()
        phrases = read_lyrics(path)
        read_s = time.perf_counter() - started
        blind = [dataclasses.replace(p, accent="") for p in phrases]
        here, here_deaf = Agreement(), Agreement()
        coverage, in_range, seconds, registers = [], [], [], {"verse": [], "chorus": []}
        for style in styles:
            for seed in seeds:
                started = time.perf_counter()
                melody = compose_melody(phrases, seed=seed, style=style)
                seconds.append(time.perf_counter() - started)
                coverage.append(mora_coverage(phrases, melody))
                in_range.append(share_in_range(melody))
                here.add(accent_agreement(phrases, melody))
                for role, pitch in register_by_role(phrases, melody).items():
                    registers[role].append(pitch)
                here_deaf.add(
                    accent_agreement(phrases, compose_melody(blind, seed=seed, style=style))
                )
        total.add(here)
        deaf.add(here_deaf)
        mean = lambda values: sum(values) / len(values) if values else float("nan")  # noqa: E731
        print(
            f"{path.name:<14}{sum(len(p.morae) for p in phrases):>6}{min(coverage):>10.3f}"
            f"{min(in_range):>10.3f}{here.share:>8.2f}{here_deaf.share:>7.2f}"
            f"{here.chance:>8.2f}{mean(registers['verse']):>7.1f}{mean(registers['chorus']):>8.1f}"
            f"{1000 * (read_s + mean(seconds)):>9.0f}"
        )
    print(
        f"all: accent agreement {total.share:.3f} over {total.steps} accent steps "
        f"(contradicted {total.contradicting / max(1, total.steps):.3f}); accent-deaf composer "
        f"{deaf.share:.3f}; chance {total.chance:.3f}"
    )
    print(
        f"({len(styles)} styles x {len(seeds)} seeds per lyrics; coverage and in-range are the "
        "worst melody's; ms/song = reading the lyrics + one composition)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
