"""Phoneme labels (``phonemes.lab``) and per-mora timing (``timing.json``).

``phonemes.lab`` uses the HTK label format that Sinsy, HTS and NNSVS use: one phoneme a line,
``start end name`` with times in units of 100 ns. ``timing.json`` gives each sung mora its
start and end in seconds, grouped into the lyric lines (each with the section it is in), for
lip sync and karaoke, plus the song's title and the credits its voice asks for.

:meth:`Timing.read` is the one reader of ``timing.json``: it checks the file's size, nesting,
types, ranges and order and names what is wrong in one line (with :mod:`acgmake.formats`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from acgmake.errors import UserError
from acgmake.formats import (
    FormatProblem,
    checked_integer,
    checked_list,
    checked_number,
    checked_object,
    checked_span,
    checked_text,
    checked_value,
    read_json_file,
)
from acgmake.music import MAX_BAR_QUARTERS, MAX_SCORE_NOTES, MIN_TEMPO_BPM

HTK_UNITS_PER_SECOND = 10_000_000
VOWELS = frozenset("aiueo")
#: Phonemes Sinsy's Japanese voice uses for silence and pauses.
SILENCES = frozenset({"sil", "pau", "br"})

#: timing.json for the longest score acgmake sings (5,000 morae) is well under 1 MB.
MAX_TIMING_BYTES = 8 * 1024 * 1024
#: timing.json nests four deep (the file, its lines, a line's morae, a mora).
MAX_TIMING_DEPTH = 8
#: Times in timing.json lie within an hour (the longest score sung is 20 minutes).
MAX_TIMING_S = 3600.0
#: The beat grid's tempo: a score's tempos (20–400), and faster grids a hand-made file or a
#: plugin may beat (an hour at 2,000 bpm is still only 120,000 beats).
MAX_TIMING_TEMPO_BPM = 2000.0
_TIMING_REMEDY = "make it again with `acgmake sing`"


@dataclass(frozen=True)
class Phoneme:
    start_s: float
    end_s: float
    name: str

    @property
    def is_vowel(self) -> bool:
        """True for a sung vowel (a, i, u, e, o, also devoiced A, I, U, E, O) or the moraic N."""
        return self.name.lower() in VOWELS or self.name == "N"


def write_lab(path: Path, phonemes: list[Phoneme]) -> None:
    units = HTK_UNITS_PER_SECOND
    lines = [f"{round(p.start_s * units)} {round(p.end_s * units)} {p.name}" for p in phonemes]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_audacity_labels(path: Path, phonemes: list[Phoneme]) -> None:
    """Write phonemes as an Audacity label track: ``start<TAB>end<TAB>name``, in seconds.

    Audacity (File > Import > Labels), Sonic Visualiser and most DAWs' marker importers read
    it; :func:`read_lab` reads it back too.
    """
    lines = [f"{p.start_s:.6f}\t{p.end_s:.6f}\t{p.name}" for p in phonemes]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_lab(path: Path) -> list[Phoneme]:
    """Read an HTK label file; a file in seconds (Audacity-style, with dots) also reads."""
    phonemes = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) < 3:
            raise UserError(f"{path}, line {number}: expected 'start end phoneme', got {line!r}")
        try:
            if "." in parts[0] or "." in parts[1]:
                start, end = float(parts[0]), float(parts[1])
            else:
                start = int(parts[0]) / HTK_UNITS_PER_SECOND
                end = int(parts[1]) / HTK_UNITS_PER_SECOND
        except ValueError:
            raise UserError(f"{path}, line {number}: times must be numbers, got {line!r}") from None
        name = parts[2].split("-")[-1].split("+")[0] if "-" in parts[2] else parts[2]
        phonemes.append(Phoneme(start, end, name))
    return phonemes


@dataclass
class Mora:
    text: str
    start_s: float
    end_s: float
    midi: int


@dataclass
class Line:
    text: str
    start_s: float
    end_s: float
    morae: list[Mora] = field(default_factory=list)
    #: "verse" or "chorus" (from the score's section marks); "" when the score names none
    section: str = ""
    #: Per mora, the (start, stop) of the characters of ``text`` it lights up, when the line
    #: shows the lyrics as written (:func:`acgmake.text.shown.as_written`); empty when
    #: ``text`` is the morae spelled out. Not part of timing.json.
    chars: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class Timing:
    """When each mora is sung, plus the beat grid the animation moves to."""

    tempo_bpm: float
    beats_per_bar: int
    first_beat_s: float
    duration_s: float
    lines: list[Line] = field(default_factory=list)
    #: Semitones the singing was moved from the score (mora ``midi`` values are as sung).
    pitch_shift: int = 0
    #: The song's title (the score's), for the title card; "" when it has none.
    title: str = ""
    #: Attribution lines the singing asks for (the voice's licence), for the credits.
    credits: list[str] = field(default_factory=list)

    def beat_times(self) -> list[float]:
        """Times of every beat from the first to the end of the song, in seconds."""
        step = 60.0 / self.tempo_bpm
        count = int((self.duration_s - self.first_beat_s) / step) + 1
        return [self.first_beat_s + i * step for i in range(max(count, 0))]

    def line_at(self, time_s: float) -> Line | None:
        """The line being sung at ``time_s``, or the next one if between lines."""
        for line in self.lines:
            if time_s < line.end_s:
                return line
        return None

    def write(self, path: Path) -> None:
        data = asdict(self)
        for line in data["lines"]:
            del line["chars"]
        Path(path).write_text(
            json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )

    @classmethod
    def read(cls, path: Path) -> Timing:
        """The timing in ``path``; UserError naming the file and what is wrong with it when
        it is too large, not JSON, nested too deep, or has a value of the wrong type, out of
        range, not finite, or times that end before they start or run backwards."""
        raw = read_json_file(
            path,
            what="a timing file",
            max_bytes=MAX_TIMING_BYTES,
            max_depth=MAX_TIMING_DEPTH,
            remedy=_TIMING_REMEDY,
        )
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: Any, *, source: str = "timing.json") -> Timing:
        """The timing a ``timing.json`` value holds; :class:`UserError` naming ``source`` and
        what is wrong when it is not one. Files written before sections, title and credits
        existed read with none."""
        return checked_value(
            raw, cls._checked, source=source, what="a timing file", remedy=_TIMING_REMEDY
        )

    @classmethod
    def _checked(cls, raw: Any) -> Timing:
        top = checked_object(raw, "the file")
        seconds = (0.0, MAX_TIMING_S)
        lines = []
        last_start, morae_count = 0.0, 0
        for i, value in enumerate(checked_list(top.get("lines"), "lines", MAX_SCORE_NOTES)):
            where = f"lines[{i}]"
            item = checked_object(value, where)
            morae = []
            for j, mora_value in enumerate(
                checked_list(item.get("morae"), f"{where}.morae", MAX_SCORE_NOTES)
            ):
                at = f"{where}.morae[{j}]"
                mora = checked_object(mora_value, at)
                start, end = checked_span(mora, at, seconds)
                if start < last_start:
                    raise FormatProblem(
                        f"{at} starts at {start:g} s, before the mora sung before it "
                        f"({last_start:g} s)"
                    )
                last_start = start
                morae.append(
                    Mora(
                        checked_text(mora.get("text"), f"{at}.text", 200),
                        start,
                        end,
                        checked_integer(mora.get("midi"), f"{at}.midi", (0, 127)),
                    )
                )
            morae_count += len(morae)
            if morae_count > MAX_SCORE_NOTES:
                raise FormatProblem(f"it has more than {MAX_SCORE_NOTES} morae")
            start, end = checked_span(item, where, seconds)
            lines.append(
                Line(
                    checked_text(item.get("text"), f"{where}.text", 20_000),
                    start,
                    end,
                    morae,
                    checked_text(item.get("section", ""), f"{where}.section", 100),
                )
            )
        credits = checked_list(top.get("credits", []), "credits", 100)
        return cls(
            checked_number(
                top.get("tempo_bpm"), "tempo_bpm", (MIN_TEMPO_BPM, MAX_TIMING_TEMPO_BPM)
            ),
            checked_integer(top.get("beats_per_bar"), "beats_per_bar", (1, MAX_BAR_QUARTERS)),
            checked_number(top.get("first_beat_s"), "first_beat_s", seconds),
            checked_number(top.get("duration_s"), "duration_s", seconds),
            lines,
            checked_integer(top.get("pitch_shift", 0), "pitch_shift", (-48, 48)),
            checked_text(top.get("title", ""), "title", 1000),
            [checked_text(c, f"credits[{i}]", 1000) for i, c in enumerate(credits)],
        )
