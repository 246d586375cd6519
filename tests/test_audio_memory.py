"""The audio stages work a block at a time: each blockwise computation equals the whole-signal
one it replaced, and a long mix holds nothing whole-song twice."""

from __future__ import annotations

import io
import math
import tracemalloc

import numpy as np
import pytest
from scipy.io import wavfile
from scipy.ndimage import minimum_filter1d, uniform_filter1d
from scipy.signal import oaconvolve, resample_poly

from acgmake.audio import mixing
from acgmake.audio.loudness import (
    Frames,
    integrated_loudness,
    limit_true_peak,
    master,
    sample_peaks,
    true_peak_db,
)
from acgmake.audio.resample import resample
from acgmake.audio.soundfont import SoundFont, default_soundfont

RATE = 48000


def peaky(seconds: float, *, seed: int = 0, channels: int = 2) -> np.ndarray:
    """Noise with drum-like spikes every half second, float32: the limiter has work."""
    rng = np.random.default_rng(seed)
    signal = 0.05 * rng.standard_normal((int(seconds * RATE), channels))
    for start in range(RATE // 4, len(signal) - 300, RATE // 2):
        signal[start : start + 200] *= rng.uniform(4, 20)
    return signal.astype(np.float32)


@pytest.mark.parametrize(("rate", "target"), [(48000, 16000), (24000, 48000), (44100, 48000)])
def test_resampling_by_blocks_equals_resampling_whole(rate, target):
    signal = np.random.default_rng(1).standard_normal((300_001, 2)).astype(np.float32)
    divisor = math.gcd(rate, target)
    whole = resample_poly(signal.astype(np.float64), target // divisor, rate // divisor, axis=0)
    made = resample(signal, rate, target)
    assert made.shape == whole.shape
    assert np.array_equal(made, whole)
    assert resample(signal, rate, target, dtype=np.float32).dtype == np.float32


def dense_peaks(samples: np.ndarray) -> np.ndarray:
    """Each sample's largest 4x-oversampled magnitude, oversampling the whole at once."""
    up = np.abs(resample_poly(samples.astype(np.float32), 4, 1, axis=0))
    return up.max(axis=1).reshape(len(samples), 4).max(axis=1)


def dense_limit(samples: np.ndarray, ceiling_dbtp: float) -> tuple[np.ndarray, float]:
    """The limiter as it was before it worked by blocks: whole arrays, every pass."""
    frames = samples.astype(np.float32)
    ceiling = 10 ** (ceiling_dbtp / 20)
    reduction_db = 0.0
    ahead, behind = int(0.002 * RATE), int(0.08 * RATE)
    for _ in range(4):
        peaks = dense_peaks(frames)
        if peaks.max() <= ceiling * 1.0001:
            break
        need = np.minimum(1.0, ceiling * 0.999 / np.maximum(peaks, 1e-12))
        held = minimum_filter1d(need, size=ahead + behind + 1, origin=(behind - ahead) // 2)
        gain = np.minimum(uniform_filter1d(held, size=2 * ahead + 1), need).astype(np.float32)
        frames = frames * gain[:, None]
        reduction_db = max(reduction_db, -20 * math.log10(float(gain.min())))
    return frames, reduction_db


def test_true_peaks_by_blocks_equal_oversampling_whole():
    signal = peaky(4.0)
    assert np.array_equal(sample_peaks(signal), dense_peaks(signal))
    assert true_peak_db(signal, RATE) == pytest.approx(
        20 * math.log10(dense_peaks(signal).max()), abs=1e-9
    )


def test_the_limiter_equals_the_whole_array_limiter():
    signal = peaky(4.0) * np.float32(3.0)
    limited, reduction_db = limit_true_peak(signal, RATE, -1.0)
    expected, expected_db = dense_limit(signal, -1.0)
    assert reduction_db == pytest.approx(expected_db, abs=1e-6)
    assert reduction_db > 3.0
    assert np.abs(limited - expected).max() < 1e-6
    assert true_peak_db(limited, RATE) <= -1.0 + 0.01


def test_loudness_of_frames_equals_loudness_of_the_array():
    signal = peaky(5.0)
    frames = Frames(lambda start, stop: signal[start:stop], len(signal), 2)
    assert integrated_loudness(frames, RATE) == integrated_loudness(signal, RATE)
    done = master(signal, RATE, loudness_lufs=-12.0)
    assert integrated_loudness(done.samples, RATE) == pytest.approx(done.loudness_lufs, abs=1e-9)
    assert true_peak_db(done.samples, RATE) == pytest.approx(done.true_peak_dbtp, abs=1e-4)


def test_the_reverb_by_fft_blocks_equals_a_whole_convolution():
    rng = np.random.default_rng(2)
    dry = (0.1 * rng.standard_normal(5 * RATE)).astype(np.float32)
    dry[2 * RATE : 3 * RATE] = 0  # a pause the reverb skips, still ringing from before
    impulse = mixing._room_impulse(RATE, 1.1)
    delay = int(18.0 * RATE / 1000)  # as the reverb computes it (0.018 * RATE is 863.99)
    expected = np.stack([oaconvolve(dry, channel)[: len(dry)] for channel in impulse], axis=1)
    expected = np.pad(expected, ((delay, 0), (0, 0)))[: len(dry)]
    made = mixing.room_reverb(dry, RATE)
    assert made.dtype == np.float32 and made.shape == (len(dry), 2)
    assert np.abs(made - expected).max() < 1e-5 * np.abs(expected).max()


def test_the_stems_are_written_as_scipy_writes_them(tmp_path):
    from acgmake.stages.mix import _FloatWav

    samples = np.random.default_rng(3).standard_normal((1000, 2)).astype(np.float32)
    expected = io.BytesIO()
    wavfile.write(expected, RATE, samples)
    with _FloatWav(tmp_path / "stem.wav", RATE, 2, len(samples)) as stem:
        stem.write(samples[:300])
        stem.write(samples[300:])
    assert (tmp_path / "stem.wav").read_bytes() == expected.getvalue()


def test_a_long_mix_holds_the_voice_and_the_band_once():
    seconds = 40.0
    rng = np.random.default_rng(4)
    vocals = (0.1 * rng.standard_normal(int(seconds * RATE))).astype(np.float32)
    band = peaky(seconds + 1.0)
    tracemalloc.start()
    try:
        voice = mixing.vocal_chain(vocals, RATE)
        chain_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        result = mixing.balance_and_master(voice, band, RATE)
        for _ in result.blocks():
            pass
        mix_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    stereo = voice.nbytes  # one whole-song float32 stereo array
    # The chain makes its result and a few MB of blocks; balancing, mastering and writing
    # make a few MB of blocks and the limiter's gains, never a second song.
    assert chain_peak < stereo + 16e6
    assert mix_peak < stereo + 16e6
    assert result.length == len(band)
    song = result.song
    assert integrated_loudness(song, RATE) == pytest.approx(-14.0, abs=0.1)
    assert true_peak_db(song, RATE) <= -1.0 + 0.01


def test_a_voice_is_as_long_as_its_length_says():
    soundfont = SoundFont(default_soundfont())
    for program, key in ((0, 60), (33, 40), (89, 64)):
        for region in soundfont.regions(0, program, key, 100):
            for held_s, cut_s in ((0.5, None), (2.0, 0.3), (0.01, None)):
                played = soundfont.play(region, held_s, RATE, cut_s)
                assert len(played) == soundfont.voice_length(region, held_s, RATE, cut_s)


def test_pitch_tracking_in_pieces_equals_tracking_the_whole_song():
    from acgmake.voice.intonation import track_f0
    from acgmake.voice.pitch_correction import _track_f0_in_pieces

    # 70 s of sung-like phrases (a harmonic tone with vibrato), 3 s on and 1 s of pause.
    t = np.arange(70 * RATE) / RATE
    f0 = 330 * 2 ** ((np.floor(t / 4) % 5) / 12 + 0.02 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    tone = sum(np.sin(k * phase) / k for k in range(1, 6)) * 0.2
    tone *= (t % 4) < 3
    signal = tone.astype(np.float32)
    times, whole = track_f0(signal, RATE, low_hz=150, high_hz=800)
    piece_times, pieces = _track_f0_in_pieces(signal, RATE, low_hz=150, high_hz=800)
    assert np.array_equal(piece_times, times)
    assert np.array_equal(pieces > 0, whole > 0)
    assert np.abs(pieces - whole).max() < 1e-6
