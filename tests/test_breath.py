"""Breaths before phrases, in the bundled voice's own breath (sung by the real Sinsy)."""

from __future__ import annotations

import numpy as np
import pytest

from acgmake.voice import sinsy
from acgmake.voice.breath import MIN_GAP_S, Breath, add_breaths, voice_breath
from acgmake.voice.intonation import track_f0
from acgmake.voice.labels import Line, Mora, Timing

RATE = 48000


def _db(samples: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.asarray(samples, np.float64) ** 2)) + 1e-12))


@pytest.fixture(scope="module")
def breath() -> Breath:
    found = voice_breath(sinsy.check_voice(None), 67, RATE)
    assert found is not None
    return found


def test_the_voice_breathes_a_noise_well_under_its_singing(breath):
    seconds = len(breath.samples) / RATE
    assert 0.15 <= seconds <= 0.45
    # A breath is unvoiced: no pitch anywhere in it.
    _, f0 = track_f0(breath.samples, RATE)
    assert (f0 > 0).mean() < 0.1
    # Its energy lies above 1 kHz (air, not a hum), and it is 15-40 dB under the voice's
    # singing level (Sinsy sings at about -32 dBFS here).
    spectrum = np.abs(np.fft.rfft(breath.samples * np.hanning(len(breath.samples)))) ** 2
    frequencies = np.fft.rfftfreq(len(breath.samples), 1 / RATE)
    assert spectrum[frequencies > 1000].sum() > 0.7 * spectrum.sum()
    assert -72 < _db(breath.samples) < -47


def _song(gaps: list[float]) -> tuple[np.ndarray, Timing]:
    """Phrases of a 220 Hz tone at -20 dBFS, 1 s each, with ``gaps`` of silence before them."""
    lines, pieces, at = [], [], 0.0
    for gap in gaps:
        pieces.append(np.zeros(round(gap * RATE), np.float32))
        at += gap
        tone = 0.14 * np.sin(2 * np.pi * 220 * np.arange(RATE) / RATE)
        pieces.append(tone.astype(np.float32))
        mora = Mora("あ", at, at + 1.0, 57)
        lines.append(Line("あ", at, at + 1.0, [mora]))
        at += 1.0
    samples = np.concatenate([*pieces, np.zeros(RATE // 2, np.float32)])
    return samples, Timing(120.0, 4, 0.0, len(samples) / RATE, lines)


def test_breaths_go_before_phrases_after_a_rest_and_end_before_them(breath):
    samples, timing = _song([1.0, 0.3, 1.2])
    before = samples.copy()
    assert add_breaths(samples, timing, breath) == 2  # not into the 0.3 s gap
    changed = np.flatnonzero(samples != before)
    for line in (timing.lines[0], timing.lines[2]):
        near = changed[(changed > (line.start_s - 1.0) * RATE) & (changed < line.start_s * RATE)]
        assert near.size
        # Within the rest, ending just before the phrase is heard.
        assert line.start_s - 0.1 < near[-1] / RATE < line.start_s
        assert near[0] / RATE > line.start_s - MIN_GAP_S
    gap = (changed > 2.0 * RATE) & (changed < 2.3 * RATE)
    assert not gap.any()
    # The singing itself is untouched.
    sung = slice(round(1.0 * RATE), round(2.0 * RATE))
    assert np.array_equal(samples[sung], before[sung])


def test_the_breath_level_moves_it_by_that_many_db(breath):
    samples, timing = _song([1.0])
    louder, _ = _song([1.0])
    add_breaths(samples, timing, breath)
    add_breaths(louder, timing, breath, level_db=6.0)
    rest = slice(0, RATE)
    assert _db(louder[rest]) - _db(samples[rest]) == pytest.approx(6.0, abs=0.1)
