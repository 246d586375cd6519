"""Phoneme labels (``phonemes.lab``) and per-mora timing (``timing.json``).

``phonemes.lab`` uses the HTK label format that Sinsy, HTS and NNSVS use: one phoneme a line,
``start end name`` with times in units of 100 ns. ``timing.json`` gives each sung mora its
start and end in seconds, grouped into the lyric lines (each with the section it is in), for
lip sync and karaoke, plus the song's title and the credits its voice asks for.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from acgmake.errors import UserError

HTK_UNITS_PER_SECOND = 10_000_000
VOWELS = frozenset("aiueo")
#: Phonemes Sinsy's Japanese voice uses for silence and pauses.
SILENCES = frozenset({"sil", "pau", "br"})


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
        Path(path).write_text(
            json.dumps(asdict(self), ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )

    @classmethod
    def read(cls, path: Path) -> Timing:
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
            lines = [
                Line(
                    text=line["text"],
                    start_s=line["start_s"],
                    end_s=line["end_s"],
                    morae=[Mora(**mora) for mora in line["morae"]],
                    section=str(line.get("section", "")),
                )
                for line in raw["lines"]
            ]
            # Files written before sections, title and credits existed read with none.
            return cls(
                raw["tempo_bpm"],
                raw["beats_per_bar"],
                raw["first_beat_s"],
                raw["duration_s"],
                lines,
                int(raw.get("pitch_shift", 0)),
                str(raw.get("title", "")),
                [str(credit) for credit in raw.get("credits", [])],
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise UserError(f"{path} is not a timing file acgmake can read ({error})") from None
