"""Expressive pitch on top of the corrected notes: vibrato, portamento, overshoot and
preparation at note changes, and a fall at the end of a phrase.

Pitch correction puts every held note on its written pitch; a singer does not sing so. What
singers do, and what singing editors let users draw (OpenUtau's vibrato and pitch curves,
VOCALOID's portamento and vibrato, NNSVS/ENUNU's variance), is drawn here as a curve of cents
added to the corrected pitch:

- vibrato on long notes (see :func:`acgmake.voice.pitch_correction.vibrato_cents`);
- portamento: the move from one note to the next takes ``portamento_ms`` on a leap (three
  semitones or more) or a slur (a held vowel, ー, on a new note), half that on a step, as an
  S-curve from the note before to the note after (most of it late in the note before);
- overshoot and preparation: on a change of two semitones or more, the pitch goes a little past
  the new note and settles (a damped bump after the arrival), having dipped a little the other
  way just before leaving;
- a fall at the end of a phrase (a note followed by a rest, at least 0.5 s long): the pitch
  drops over the note's last 15 % (at most 150 ms) as the singer lets go;
- dynamics (:func:`dynamics_db`): a phrase starts a little soft and grows over its first
  0.4 s, notes inside it on the bar's first beat are accented (its third beat in 4/4 half as
  much), and the phrase's last note eases off; the mix's compressor keeps some of it, as it does a
  singer's.

Each changes only the start and end of a note, never its body, so every note's median pitch
stays on the written note (``acgmake.voice.intonation`` checks it). Style presets
(:data:`PRESETS`) set the amounts: a ballad sings with wide, slow vibrato and slow glides,
upbeat songs tight.
"""

from __future__ import annotations

import numpy as np

from acgmake.voice.intonation import is_tracked
from acgmake.voice.styles import FLAT, PRESETS, Expression, preset_for

__all__ = [
    "FLAT",
    "PRESETS",
    "Expression",
    "apply_dynamics",
    "dynamics_db",
    "expression_cents",
    "preset_for",
]


#: Two notes closer than this are sung legato (one glides into the next).
_LEGATO_GAP_S = 0.03
_LEAP_SEMITONES = 3
#: The most of a note a move to or from it takes.
_MOVE_SHARE = 0.25
_OVERSHOOT_MIN_SEMITONES = 2
#: The overshoot peaks this long after the arrival, and the preparation this long before
#: leaving; each lasts five times that.
_BUMP_S = 0.045
_FALL_MIN_S = 0.5
_FALL_SHARE = 0.15
_FALL_MAX_S = 0.15


def expression_cents(
    times: np.ndarray, sung_cents: np.ndarray, shift: np.ndarray, morae: list, style: Expression
) -> np.ndarray:
    """Cents to add to ``shift`` (the correction, per frame at ``times``) for the portamento,
    overshoot, preparation and phrase-end falls of ``style``. ``sung_cents`` is the pitch as
    Sinsy sang it (cents from A4; NaN where unvoiced), from which the glides are drawn."""
    out = np.zeros_like(times)
    for index, mora in enumerate(morae):
        following = morae[index + 1] if index + 1 < len(morae) else None
        if following is not None and following.start_s - mora.end_s < _LEGATO_GAP_S:
            _glide(times, sung_cents, shift, out, mora, following, style)
        else:
            _fall(times, out, mora, style)
    return out


def _written_cents(midi: int) -> float:
    return (midi - 69) * 100.0


def _glide(times, sung_cents, shift, out, before, after, style: Expression) -> None:
    """The move from ``before`` to ``after``: portamento, preparation and overshoot."""
    if not (is_tracked(before.midi) and is_tracked(after.midi)):
        return
    interval = after.midi - before.midi
    if interval == 0 and after.text not in ("ー", "ｰ"):
        return
    slur = after.text in ("ー", "ｰ")
    leap = abs(interval) >= _LEAP_SEMITONES or slur
    length = style.portamento_ms / 1000.0 * (1.0 if leap else 0.5)
    # The move takes at most a quarter of either note, so short notes keep their bodies on
    # their pitch (a fast song sung with a ballad's slow glides).
    leaving = after.start_s - min(0.6 * length, _MOVE_SHARE * (before.end_s - before.start_s))
    arrival = after.start_s + min(0.4 * length, _MOVE_SHARE * (after.end_s - after.start_s))
    if length > 0 and interval != 0:
        inside = (times >= leaving) & (times < arrival) & np.isfinite(sung_cents)
        if inside.any():
            u = (times[inside] - leaving) / (arrival - leaving)
            curve = u * u * (3 - 2 * u)  # smoothstep from the note before to the note after
            wanted = _written_cents(before.midi) + interval * 100.0 * curve
            now = sung_cents[inside] + shift[inside] + out[inside]
            # Drawn fully in the middle of the move, joined to the singing at its ends.
            weight = np.sin(np.pi * u)
            out[inside] += weight * (wanted - now)
    if abs(interval) >= _OVERSHOOT_MIN_SEMITONES and style.overshoot_cents > 0:
        amount = style.overshoot_cents * min(abs(interval), 5) / 5 * np.sign(interval)
        _bump(times, out, arrival, amount, max_s=0.5 * (after.end_s - arrival))
        _bump(times, out, leaving, -0.5 * amount, max_s=0.3 * (leaving - before.start_s), back=True)


def _bump(times, out, at: float, amount: float, *, max_s: float, back: bool = False) -> None:
    """A damped bump of peak ``amount`` cents, ``_BUMP_S`` after ``at`` (or before, ``back``),
    over at most ``max_s``."""
    span = min(5 * _BUMP_S, max_s)
    if span <= 0:
        return
    lo, hi = (at - span, at) if back else (at, at + span)
    inside = (times >= lo) & (times < hi)
    t = (at - times[inside]) if back else (times[inside] - at)
    shape = (t / _BUMP_S) * np.exp(1 - t / _BUMP_S)
    shape *= np.minimum(1.0, (span - t) / (0.3 * span))  # gone by the end of its span
    out[inside] += amount * shape


def _fall(times, out, mora, style: Expression) -> None:
    """The fall at the end of a phrase's last note."""
    length = mora.end_s - mora.start_s
    if style.fall_cents <= 0 or length < _FALL_MIN_S or not is_tracked(mora.midi):
        return
    span = min(_FALL_SHARE * length, _FALL_MAX_S)
    start = mora.end_s - span
    inside = (times >= start) & (times < mora.end_s)
    u = (times[inside] - start) / span
    out[inside] -= style.fall_cents * u * u


#: The gain of :func:`dynamics_db` changes over this long at the edges of notes.
_DYNAMICS_SMOOTHING_S = 0.03
#: How far before its note a mora's gain starts (Sinsy starts consonants before the note).
_CONSONANT_S = 0.06
_SOFT_START_S = 0.4


def dynamics_db(times: np.ndarray, timing, style: Expression) -> np.ndarray:
    """Gain in dB at ``times`` (seconds) for the dynamics of ``style`` over the lines of
    ``timing``: 0 outside the singing (see the module's description)."""
    out = np.zeros_like(times)
    if not (style.accent_db or style.soft_start_db or style.ease_off_db):
        return out
    beat_s = 60.0 / timing.tempo_bpm if timing.tempo_bpm > 0 else 0.5
    bar = max(1, timing.beats_per_bar)

    def within(start: float, stop: float) -> slice:  # the frames of [start, stop), sorted
        return slice(*np.searchsorted(times, (start, stop)))

    for line in timing.lines:
        for index, mora in enumerate(line.morae):
            inside = within(mora.start_s - _CONSONANT_S, mora.end_s)
            beat = (mora.start_s - timing.first_beat_s) / beat_s
            on_beat = abs(beat - round(beat)) < 0.1
            position = round(beat) % bar
            # Inside the phrase: its start grows from soft, its end eases off.
            inner = 0 < index < len(line.morae) - 1
            if inner and on_beat and position == 0:
                out[inside] += style.accent_db
            elif inner and on_beat and bar == 4 and position == 2:
                out[inside] += style.accent_db / 2
            if index == len(line.morae) - 1 and len(line.morae) > 1:
                span = np.clip(
                    (times[inside] - mora.start_s) / max(mora.end_s - mora.start_s, 1e-3), 0, 1
                )
                out[inside] -= style.ease_off_db * span
        start = line.start_s - _CONSONANT_S
        growing = within(start, start + _SOFT_START_S)
        out[growing] -= style.soft_start_db * (1 - (times[growing] - start) / _SOFT_START_S)
    from scipy.ndimage import uniform_filter1d

    step = float(times[1] - times[0]) if len(times) > 1 else 0.005
    return uniform_filter1d(out, size=max(1, round(_DYNAMICS_SMOOTHING_S / step)))


def apply_dynamics(samples: np.ndarray, rate: int, timing, style: Expression) -> None:
    """``samples`` (float32, in place) with :func:`dynamics_db` of ``style``."""
    frame_s = 0.005
    times = np.arange(0.0, len(samples) / rate + frame_s, frame_s)
    gain_db = dynamics_db(times, timing, style)
    if not gain_db.any():
        return
    block = 1 << 18  # a block at a time: no whole-song float64 copy
    for first in range(0, len(samples), block):
        at = np.arange(first, min(first + block, len(samples))) / rate
        samples[first : first + len(at)] *= (10 ** (np.interp(at, times, gain_db) / 20)).astype(
            np.float32
        )
