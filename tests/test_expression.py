"""Expressive pitch drawn over the corrected notes: portamento, overshoot, preparation, falls."""

from __future__ import annotations

import numpy as np
import pytest

from acgmake.voice.expression import FLAT, PRESETS, expression_cents, preset_for
from acgmake.voice.labels import Mora

FRAME_S = 0.005


def _sung(morae: list[Mora]) -> tuple[np.ndarray, np.ndarray]:
    """Frame times and a pitch (cents from A4) that sits exactly on each written note and
    jumps at the boundaries, NaN (unvoiced) between notes that do not touch."""
    times = np.arange(0.0, morae[-1].end_s + 0.3, FRAME_S)
    cents = np.full_like(times, np.nan)
    for mora in morae:
        cents[(times >= mora.start_s) & (times < mora.end_s)] = (mora.midi - 69) * 100.0
    return times, cents


def _body(times: np.ndarray, mora: Mora) -> np.ndarray:
    return (times >= mora.start_s + 0.08) & (times < mora.end_s)


def test_a_leap_glides_as_an_s_curve_then_overshoots_and_settles():
    before, after = Mora("か", 0.0, 0.6, 64), Mora("え", 0.6, 1.4, 69)  # a fourth up
    times, sung = _sung([before, after])
    pop = PRESETS["pop"]
    added = expression_cents(times, sung, np.zeros_like(times), [before, after], pop)
    pitch = sung + added
    window = (times >= 0.6 - 0.6 * 0.08) & (times < 0.6 + 0.4 * 0.08)
    # Mid-glide, the pitch is between the notes, rising.
    middle = pitch[window][len(pitch[window]) // 2 - 2 : len(pitch[window]) // 2 + 2]
    assert (-500 < middle).all() and (middle < 0).all()
    # It leaves a little below the first note (preparation) and goes past the second
    # (overshoot), by about the preset's amount, then settles on it.
    assert added[(times > 0.4) & (times < 0.55)].min() == pytest.approx(-0.5 * 15, abs=2)
    assert added[(times > 0.63) & (times < 0.9)].max() == pytest.approx(15, abs=2)
    assert np.abs(added[(times > 1.0) & (times < 1.15)]).max() < 1
    # The bodies' medians stay on the notes; the last note of the phrase falls at its end.
    for mora in (before, after):
        assert abs(np.median(added[_body(times, mora)])) < 5
    tail = (times >= 1.4 - 0.12) & (times < 1.4)
    assert added[tail][-1] < -0.8 * pop.fall_cents * 0.9


def test_a_step_glides_faster_than_a_leap_and_a_ballad_slower_than_upbeat():
    def glide_frames(style, interval: int) -> int:
        """Frames from leaving the first note (a tenth of the way) to reaching the second."""
        notes = [Mora("か", 0.0, 0.6, 64), Mora("え", 0.6, 1.2, 64 + interval)]
        times, sung = _sung(notes)
        pitch = sung + expression_cents(times, sung, np.zeros_like(times), notes, style)
        low, step = (64 - 69) * 100.0, interval * 100.0
        left = np.flatnonzero(pitch > low + 0.1 * step)[0]
        reached = np.flatnonzero(pitch > low + 0.9 * step)[0]
        return int(reached - left)

    assert glide_frames(PRESETS["pop"], 1) < glide_frames(PRESETS["pop"], 5)
    assert glide_frames(PRESETS["upbeat"], 5) < glide_frames(PRESETS["ballad"], 5)


def test_flat_adds_nothing_and_a_note_no_voice_sings_is_left_alone():
    notes = [Mora("か", 0.0, 0.6, 64), Mora("え", 0.6, 1.4, 69)]
    times, sung = _sung(notes)
    assert not expression_cents(times, sung, np.zeros_like(times), notes, FLAT).any()
    out_of_range = [Mora("か", 0.0, 0.6, 64), Mora("え", 0.6, 1.4, 120)]
    times, sung = _sung(out_of_range)
    added = expression_cents(times, sung, np.zeros_like(times), out_of_range, PRESETS["pop"])
    assert not added[times >= 0.45].any()


def test_presets_follow_the_tempo_and_options_override_them():
    assert preset_for("auto", 76).name == "ballad"
    assert preset_for("auto", 120).name == "pop"
    assert preset_for("auto", 152).name == "upbeat"
    assert preset_for("none", 120) is FLAT
    ballad = PRESETS["ballad"]
    assert ballad.vibrato_cents > PRESETS["pop"].vibrato_cents > PRESETS["upbeat"].vibrato_cents
    custom = ballad.with_options(10.0, None)
    assert (custom.vibrato_cents, custom.portamento_ms) == (10.0, ballad.portamento_ms)


def test_dynamics_start_a_phrase_soft_accent_the_downbeat_and_ease_off_its_end():
    from acgmake.voice.expression import apply_dynamics, dynamics_db
    from acgmake.voice.labels import Line, Timing

    # 120 bpm, 4/4, first beat at 1 s: a phrase of quarter notes from the bar's second beat
    # (1.5 s) to the next bar's second beat, the last held.
    starts = [1.5, 2.0, 2.5, 3.0, 3.5]
    morae = [Mora("ら", s, s + 0.5, 67) for s in starts]
    morae[-1] = Mora("ら", 3.5, 4.5, 67)
    timing = Timing(120.0, 4, 1.0, 6.0, [Line("ららららら", 1.5, 4.5, morae)])
    pop = PRESETS["pop"]
    times = np.arange(0.0, 6.0, FRAME_S)
    gain = dynamics_db(times, timing, pop)

    def at(t: float) -> float:
        return float(gain[int(round(t / FRAME_S))])

    assert at(1.5) == pytest.approx(-pop.soft_start_db * 0.85, abs=0.4)  # soft at the start
    # Beats at 1.0, 1.5, 2.0, 2.5 s, the next bar at 3.0 s.
    assert at(2.7) == pytest.approx(0.0, abs=0.05)  # grown by 0.4 s in: the fourth beat
    assert at(3.2) == pytest.approx(pop.accent_db, abs=0.05)  # the bar's first beat
    assert at(2.2) == pytest.approx(pop.accent_db / 2, abs=0.05)  # its third beat
    assert at(4.45) == pytest.approx(-pop.ease_off_db * 0.95, abs=0.2)  # the end eases off
    assert at(0.5) == pytest.approx(0.0, abs=1e-9) and at(5.5) == pytest.approx(0.0, abs=1e-9)
    assert not dynamics_db(times, timing, FLAT).any()
    # Applied to the samples: the accented note is that much louder than the one before.
    rate = 8000
    samples = np.full(6 * rate, 0.1, np.float32)
    apply_dynamics(samples, rate, timing, pop)
    ratio = samples[int(3.25 * rate)] / samples[int(2.75 * rate)]
    assert 20 * np.log10(ratio) == pytest.approx(pop.accent_db, abs=0.05)
