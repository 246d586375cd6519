"""The singing styles' expression presets (:mod:`acgmake.voice.expression` draws them); kept
apart so that the command line lists them without loading numpy."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Expression:
    """How a song is sung beyond the notes (cents, Hz, milliseconds, dB)."""

    name: str
    vibrato_cents: float
    vibrato_hz: tuple[float, float]
    portamento_ms: float
    overshoot_cents: float
    fall_cents: float
    #: Dynamics (dB): a note on the bar's first beat this much louder (half on a 4/4 bar's
    #: third beat), a phrase starting this much softer and growing over its first 0.4 s, and
    #: its last note easing off by this much.
    accent_db: float = 0.0
    soft_start_db: float = 0.0
    ease_off_db: float = 0.0

    def with_options(self, vibrato: float | None, portamento: float | None) -> Expression:
        """This preset with the depth and the glide the user gave (None: the preset's)."""
        return replace(
            self,
            vibrato_cents=self.vibrato_cents if vibrato is None else float(vibrato),
            portamento_ms=self.portamento_ms if portamento is None else float(portamento),
        )


PRESETS: dict[str, Expression] = {
    "ballad": Expression("ballad", 35.0, (4.8, 5.6), 120.0, 20.0, 120.0, 1.0, 4.0, 3.0),
    "pop": Expression("pop", 25.0, (5.2, 6.2), 80.0, 15.0, 80.0, 2.0, 3.0, 2.0),
    "upbeat": Expression("upbeat", 15.0, (5.8, 6.6), 50.0, 10.0, 50.0, 3.0, 2.0, 1.0),
}
#: Nothing beyond the written notes: corrected and flat.
FLAT = Expression("none", 0.0, (5.2, 6.2), 0.0, 0.0, 0.0)
#: ``auto`` picks the preset from the score's tempo: slower than this a ballad, from
#: _UPBEAT_BPM upbeat, pop between (the compose stage's styles are 76, 120 and 152 bpm).
_BALLAD_BELOW_BPM = 96.0
_UPBEAT_BPM = 140.0


def preset_for(name: str, tempo_bpm: float) -> Expression:
    """The preset called ``name`` (ballad, pop, upbeat), or for ``auto`` the one that fits
    ``tempo_bpm``; ``none`` for :data:`FLAT`."""
    if name == "none":
        return FLAT
    if name == "auto":
        if tempo_bpm < _BALLAD_BELOW_BPM:
            return PRESETS["ballad"]
        return PRESETS["upbeat"] if tempo_bpm >= _UPBEAT_BPM else PRESETS["pop"]
    return PRESETS[name]
