"""Song styles and time signatures: what the composer is told about rhythm, tempo and chords.

A style is a handful of numbers a songwriter would recognise: a tempo, how many morae a beat
usually carries, which rhythm figures a beat is filled with (and how often), how long a line's
last note is held, and the chord progressions its verses and choruses use.
"""

from __future__ import annotations

from dataclasses import dataclass

from acgmake.errors import UserError


@dataclass(frozen=True)
class Meter:
    """A time signature, counted in sixteenth-note slots."""

    text: str  # as written in the score, e.g. "4/4", "6/8"
    beats: int  # beats felt per bar (6/8 has two)
    beat_slots: int  # sixteenths per beat: 4, or 6 for a dotted-quarter beat

    @property
    def bar_slots(self) -> int:
        return self.beats * self.beat_slots

    @property
    def bar_quarter_length(self) -> float:
        return self.bar_slots / 4

    @property
    def compound(self) -> bool:
        return self.beat_slots == 6

    def strength(self, slot: int) -> float:
        """How strong a note starting ``slot`` sixteenths into a bar falls: 3 on the downbeat,
        2 on the bar's other strong beat, 1.5 on a beat, 1 on an eighth, 0.5 in between."""
        slot %= self.bar_slots
        if slot == 0:
            return 3.0
        if slot % self.beat_slots == 0:
            beat = slot // self.beat_slots
            return 2.0 if self.beats == 4 and beat == 2 else 1.5
        return 1.0 if slot % 2 == 0 else 0.5


METERS = {
    "4/4": Meter("4/4", 4, 4),
    "3/4": Meter("3/4", 3, 4),
    "2/4": Meter("2/4", 2, 4),
    "6/8": Meter("6/8", 2, 6),
}

#: Rhythm figures that fill one simple beat (four sixteenths): where notes start in it. An
#: empty figure holds the note before (or rests before the line's first note).
SIMPLE_FIGURES = (
    (),
    (0,),
    (0, 2),
    (2,),  # the note before is held over the beat: a syncopation
    (0, 3),
    (0, 2, 3),
    (0, 1, 2),
    (0, 1, 2, 3),
    (2, 3),
    (3,),
)
#: The same for a compound beat (six sixteenths, a dotted quarter in 6/8).
COMPOUND_FIGURES = ((), (0,), (0, 4), (0, 2, 4), (0, 2), (0, 3, 4), (0, 2, 3, 4), (2, 4), (4,))


@dataclass(frozen=True)
class Style:
    """How a style sets words to music."""

    name: str
    description: str
    tempo_bpm: int  # quarter notes per minute, unless the user gives a tempo
    density: float  # morae a beat usually carries
    figures: dict[tuple[int, ...], float]  # simple-beat figure -> how often it is used
    compound_figures: dict[tuple[int, ...], float]
    final_beats: tuple[int, int]  # shortest and longest last note of a line, in beats
    arch: float  # how far a line rises above its register, in scale steps
    temperature: float  # how freely the composer picks among good choices
    #: Chord progressions (scale degrees from 0, one chord per bar) by (mode, section role).
    progressions: dict[tuple[str, str], tuple[tuple[int, ...], ...]]
    seventh_dominant: bool = True  # the chord before a full cadence is a V7
    #: The voice range the style asks for (acgmake.music.melody.VOICE_RANGES): "narrow",
    #: where the voice is at its best, or "wide", all it sings cleanly once corrected.
    voice_range: str = "narrow"


_MAJOR_VERSE = ((0, 5, 3, 4), (0, 4, 5, 3), (0, 2, 3, 4), (5, 3, 0, 4), (0, 3, 4, 0))
_MAJOR_CHORUS = ((3, 4, 2, 5), (5, 3, 4, 0), (0, 4, 5, 3), (3, 4, 0, 5), (0, 4, 5, 2, 3, 0, 3, 4))
_MINOR_VERSE = ((0, 5, 2, 6), (0, 3, 6, 2), (0, 6, 5, 4), (0, 3, 4, 0))
_MINOR_CHORUS = ((5, 6, 0, 0), (5, 6, 4, 0), (3, 4, 0, 5), (0, 5, 3, 4))

STYLES = {
    "ballad": Style(
        name="ballad",
        description="slow, long notes, eighths and quarters, lines held at their ends",
        tempo_bpm=76,
        density=1.3,
        figures={
            (): 0.7,
            (0,): 1.0,
            (0, 2): 1.6,
            (2,): 0.25,
            (0, 3): 0.35,
            (0, 2, 3): 0.25,
            (0, 1, 2): 0.15,
            (0, 1, 2, 3): 0.03,
            (2, 3): 0.03,
            (3,): 0.01,
        },
        compound_figures={
            (): 0.6,
            (0,): 0.8,
            (0, 4): 1.4,
            (0, 2, 4): 1.2,
            (0, 2): 0.4,
            (0, 3, 4): 0.3,
            (0, 2, 3, 4): 0.1,
            (2, 4): 0.1,
            (4,): 0.1,
        },
        final_beats=(2, 4),
        arch=1.5,
        temperature=0.6,
        progressions={
            ("major", "verse"): _MAJOR_VERSE + ((0, 4, 5, 2, 3, 0, 3, 4),),
            ("major", "chorus"): _MAJOR_CHORUS,
            ("minor", "verse"): _MINOR_VERSE,
            ("minor", "chorus"): _MINOR_CHORUS,
        },
        voice_range="wide",  # a ballad's chorus climbs: the octave D4-D5
    ),
    "pop": Style(
        name="pop",
        description="mid-tempo J-pop: eighths with some sixteenths and syncopation",
        tempo_bpm=120,
        density=1.7,
        figures={
            (): 0.35,
            (0,): 0.8,
            (0, 2): 2.0,
            (2,): 0.5,
            (0, 3): 0.4,
            (0, 2, 3): 0.6,
            (0, 1, 2): 0.4,
            (0, 1, 2, 3): 0.15,
            (2, 3): 0.15,
            (3,): 0.05,
        },
        compound_figures={
            (): 0.4,
            (0,): 0.6,
            (0, 4): 1.2,
            (0, 2, 4): 1.6,
            (0, 2): 0.5,
            (0, 3, 4): 0.4,
            (0, 2, 3, 4): 0.3,
            (2, 4): 0.3,
            (4,): 0.2,
        },
        final_beats=(2, 3),
        arch=1.2,
        temperature=0.7,
        progressions={
            ("major", "verse"): _MAJOR_VERSE,
            ("major", "chorus"): _MAJOR_CHORUS,
            ("minor", "verse"): _MINOR_VERSE,
            ("minor", "chorus"): _MINOR_CHORUS,
        },
    ),
    "upbeat": Style(
        name="upbeat",
        description="fast and driving: sixteenths, syncopations, short line ends",
        tempo_bpm=152,
        density=2.2,
        figures={
            (): 0.2,
            (0,): 0.5,
            (0, 2): 1.5,
            (2,): 0.9,
            (0, 3): 0.5,
            (0, 2, 3): 1.1,
            (0, 1, 2): 0.9,
            (0, 1, 2, 3): 0.6,
            (2, 3): 0.5,
            (3,): 0.3,
        },
        compound_figures={
            (): 0.2,
            (0,): 0.3,
            (0, 4): 0.8,
            (0, 2, 4): 1.6,
            (0, 2): 0.6,
            (0, 3, 4): 0.8,
            (0, 2, 3, 4): 0.9,
            (2, 4): 0.6,
            (4,): 0.4,
        },
        final_beats=(1, 2),
        arch=1.0,
        temperature=0.8,
        progressions={
            ("major", "verse"): ((5, 3, 4, 0), (0, 4, 5, 3), (3, 4, 2, 5), (0, 3, 4, 4)),
            ("major", "chorus"): ((3, 4, 2, 5), (3, 4, 0, 0), (5, 3, 4, 0), (0, 4, 5, 3)),
            ("minor", "verse"): ((0, 6, 5, 6), (0, 5, 2, 6), (0, 3, 6, 2)),
            ("minor", "chorus"): ((5, 6, 0, 0), (5, 6, 4, 0), (3, 4, 0, 5)),
        },
        seventh_dominant=False,
    ),
}
DEFAULT_STYLE = "pop"


def get_style(name: str) -> Style:
    """The style called ``name``; raises :class:`UserError` naming the known ones."""
    try:
        return STYLES[name.strip().lower()]
    except KeyError:
        raise UserError(f"unknown style {name!r}; use one of {', '.join(STYLES)}") from None


def get_meter(text: str) -> Meter:
    """The time signature written ``text`` (``"4/4"``); raises :class:`UserError` otherwise."""
    try:
        return METERS[text.strip().replace(" ", "")]
    except KeyError:
        raise UserError(
            f"unsupported time signature {text!r}; use one of {', '.join(METERS)}"
        ) from None
