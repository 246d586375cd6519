"""Loudness (ITU-R BS.1770-4, via pyloudnorm), true peak, and a true-peak limiter.

Streaming services play songs at about -14 LUFS integrated and ask for true peaks at or below
-1 dBTP (the peaks between samples that a lossy encoder or a D/A converter brings out).
:func:`master` reaches a loudness target with a true-peak ceiling the way a mastering engineer
would: a gain to the target, a look-ahead limiter that holds the 4x-oversampled peak under the
ceiling, and the gain corrected for what the limiter took away, measured again each time.

Arrays are (samples,) or (samples, channels) float, at ``sample_rate``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: What BS.1770-4 and EBU R128 oversample by to estimate the true peak at 48 kHz.
TRUE_PEAK_OVERSAMPLING = 4
#: A floor for silence, in LUFS / dB.
SILENCE_DB = -120.0


def integrated_loudness(samples: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS (BS.1770-4 gated), or ``SILENCE_DB`` for silence.

    pyloudnorm's K-weighting filters and gating, computed a block at a time (the filters
    carry their state across blocks; each 400 ms gating block's energy comes from running
    sums), so memory stays a few MB however long the song is. Agrees with
    ``pyloudnorm.Meter.integrated_loudness`` to within 1e-6 LU.
    """
    import pyloudnorm
    from scipy.signal import lfilter

    data = np.asarray(samples)
    frames = data if data.ndim == 2 else data[:, None]
    count, channels = frames.shape
    block = int(0.4 * sample_rate)
    if count < block:  # shorter than one gating block: measured as if followed by silence
        frames = np.concatenate([frames, np.zeros((block - count, channels), frames.dtype)])
        count = block
    # pyloudnorm's block bounds, with its float arithmetic, so the figures agree exactly.
    blocks = int(np.round((count / sample_rate - 0.4) / (0.4 * 0.25))) + 1
    steps = np.arange(blocks) * 0.25
    lower = (0.4 * steps * sample_rate).astype(np.int64)
    upper = np.minimum((0.4 * (steps + 1) * sample_rate).astype(np.int64), count)
    points = np.unique(np.concatenate([lower, upper]))
    sums = np.zeros((len(points), channels))  # sum of squares of the samples before a point
    filters = [(f.b, f.a, f.passband_gain) for f in pyloudnorm.Meter(sample_rate)._filters.values()]
    states = [np.zeros((max(len(a), len(b)) - 1, channels)) for b, a, _ in filters]
    running, next_point = np.zeros(channels), 0
    for start in range(0, count, _LOUDNESS_BLOCK):
        weighted = frames[start : start + _LOUDNESS_BLOCK].astype(np.float64)
        for k, (b, a, gain) in enumerate(filters):
            weighted, states[k] = lfilter(b, a, weighted, axis=0, zi=states[k])
            weighted *= gain
        cumulative = np.cumsum(weighted * weighted, axis=0) + running
        end = start + len(weighted)
        while next_point < len(points) and points[next_point] <= end:
            at = points[next_point] - start
            sums[next_point] = running if at == 0 else cumulative[at - 1]
            next_point += 1
        running = cumulative[-1]
    energy = (sums[np.searchsorted(points, upper)] - sums[np.searchsorted(points, lower)]) / (
        0.4 * sample_rate
    )
    weights = np.array([1.0, 1.0, 1.0, 1.41, 1.41][:channels])
    with np.errstate(divide="ignore"):
        loudness = -0.691 + 10.0 * np.log10(energy @ weights)
        above = loudness >= -70.0
        if not above.any():
            return SILENCE_DB
        relative = -0.691 + 10.0 * np.log10(weights @ energy[above].mean(axis=0)) - 10.0
        kept = (loudness > relative) & (loudness > -70.0)
        if not kept.any():
            return SILENCE_DB
        value = -0.691 + 10.0 * np.log10(weights @ energy[kept].mean(axis=0))
    return float(value) if math.isfinite(value) else SILENCE_DB


#: Samples K-weighted at a time for the loudness (about 1.4 s at 48 kHz).
_LOUDNESS_BLOCK = 1 << 16


def true_peak_db(samples: np.ndarray, sample_rate: int) -> float:
    """The true peak in dBTP: the largest magnitude of the signal 4x oversampled."""
    peak = float(sample_peaks(samples).max()) if len(samples) else 0.0
    return 20 * math.log10(peak) if peak > 0 else SILENCE_DB


#: Samples oversampled at a time (about 1.4 s at 48 kHz), and the context each block takes
#: from its neighbours: the interpolation filter reaches 10 samples either way.
_PEAK_BLOCK = 1 << 16
_PEAK_CONTEXT = 64


def sample_peaks(samples: np.ndarray) -> np.ndarray:
    """For each sample, the largest magnitude of the 4x-oversampled signal (all channels)
    from it to the next: float32 (samples,). Oversampled a block at a time with enough
    context that the result equals oversampling the whole signal at once, so memory stays a
    few MB however long the song is."""
    from scipy.signal import resample_poly

    data = np.asarray(samples, dtype=np.float32)
    frames = data if data.ndim == 2 else data[:, None]
    count = len(frames)
    peaks = np.empty(count, np.float32)
    for start in range(0, count, _PEAK_BLOCK):
        end = min(count, start + _PEAK_BLOCK)
        lead, tail = min(start, _PEAK_CONTEXT), min(count - end, _PEAK_CONTEXT)
        block = frames[start - lead : end + tail]
        up = resample_poly(block, TRUE_PEAK_OVERSAMPLING, 1, axis=0)
        up = np.abs(
            up[lead * TRUE_PEAK_OVERSAMPLING : (lead + end - start) * TRUE_PEAK_OVERSAMPLING]
        )
        peaks[start:end] = up.max(axis=1).reshape(end - start, TRUE_PEAK_OVERSAMPLING).max(axis=1)
    return peaks


def limit_true_peak(
    samples: np.ndarray,
    sample_rate: int,
    ceiling_dbtp: float,
    *,
    lookahead_s: float = 0.002,
    release_s: float = 0.08,
) -> tuple[np.ndarray, float]:
    """(limited samples, largest gain reduction in dB): the true peak held at ``ceiling_dbtp``.

    The gain each sample needs comes from the oversampled peak around it; it is held for the
    release time and ramped over the look-ahead (a moving average of a moving minimum, which
    never lets the gain exceed what any sample needs), so the limiter reacts before a peak
    and recovers smoothly after it. Channels share one gain, so the stereo image stays put.
    """
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    data = np.asarray(samples, dtype=np.float32)
    frames = data if data.ndim == 2 else data[:, None]
    ceiling = 10 ** (ceiling_dbtp / 20)
    reduction_db = 0.0
    for _ in range(4):  # the limited signal's own inter-sample peaks are checked again
        peaks = sample_peaks(frames)
        if peaks.max() <= ceiling * 1.0001:
            break
        need = np.minimum(1.0, ceiling * 0.999 / np.maximum(peaks, 1e-12))
        ahead = max(1, int(lookahead_s * sample_rate))
        behind = max(ahead, int(release_s * sample_rate))
        # A minimum over [i - behind, i + ahead], then a mean over [i - ahead, i + ahead].
        size = ahead + behind + 1
        held = minimum_filter1d(need, size=size, origin=(behind - ahead) // 2)
        gain = uniform_filter1d(held, size=2 * ahead + 1)
        gain = np.minimum(gain, need).astype(np.float32)
        frames = frames * gain[:, None]
        reduction_db = max(reduction_db, -20 * math.log10(max(float(gain.min()), 1e-12)))
    limited = frames if data.ndim == 2 else frames[:, 0]
    return limited.astype(np.float32), reduction_db


@dataclass(frozen=True)
class Mastered:
    """What :func:`master` did and measured."""

    samples: np.ndarray
    gain_db: float  # the gain applied before the limiter
    loudness_lufs: float  # integrated loudness of ``samples``
    true_peak_dbtp: float  # true peak of ``samples``
    limiter_reduction_db: float  # the most the limiter turned down any moment


def master(
    samples: np.ndarray,
    sample_rate: int,
    *,
    loudness_lufs: float = -14.0,
    true_peak_dbtp: float = -1.0,
) -> Mastered:
    """``samples`` at ``loudness_lufs`` integrated with true peaks at most ``true_peak_dbtp``.

    The gain is corrected up to five times for what the limiter removed, until the measured
    loudness is within 0.1 LU of the target.
    """
    measured = integrated_loudness(samples, sample_rate)
    if measured <= SILENCE_DB:
        raise ValueError("cannot master silence")
    gain_db = loudness_lufs - measured
    for _ in range(5):
        scaled = np.asarray(samples, dtype=np.float32) * np.float32(10 ** (gain_db / 20))
        limited, reduction_db = limit_true_peak(scaled, sample_rate, true_peak_dbtp)
        reached = integrated_loudness(limited, sample_rate)
        if abs(reached - loudness_lufs) < 0.1:
            break
        gain_db += loudness_lufs - reached
    return Mastered(
        limited,
        gain_db,
        reached,
        true_peak_db(limited, sample_rate),
        reduction_db,
    )
