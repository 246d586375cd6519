"""Loudness (ITU-R BS.1770-4, via pyloudnorm), true peak, and a true-peak limiter.

Streaming services play songs at about -14 LUFS integrated and ask for true peaks at or below
-1 dBTP (the peaks between samples that a lossy encoder or a D/A converter brings out).
:func:`master` reaches a loudness target with a true-peak ceiling the way a mastering engineer
would: a gain to the target, a look-ahead limiter that holds the 4x-oversampled peak under the
ceiling, and the gain corrected for what the limiter took away, measured again each time.

Arrays are (samples,) or (samples, channels) float, at ``sample_rate``. Everything works a
block at a time, so a whole song is never copied: the functions also take :class:`Frames`, a
signal read in blocks that need not exist whole (the mix's sum of vocals and band, the
limited song). The limiter oversamples the signal once, keeps the largest oversampled peak of
every 64 samples, and oversamples again only where the ceiling is within reach.

Memory for a five-minute song stays a few MB beyond the signal itself; time is one
oversampled pass and one K-weighted pass per loudness measured.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

#: What BS.1770-4 and EBU R128 oversample by to estimate the true peak at 48 kHz.
TRUE_PEAK_OVERSAMPLING = 4
#: A floor for silence, in LUFS / dB.
SILENCE_DB = -120.0


@dataclass(frozen=True)
class Frames:
    """A long signal read a block at a time: ``read(start, stop)`` gives its frames
    ``[start, stop)`` (``0 <= start <= stop <= count``) as an array (stop - start, channels)."""

    read: Callable[[int, int], np.ndarray]
    count: int
    channels: int

    @classmethod
    def of(cls, samples: np.ndarray | Frames) -> Frames:
        """``samples`` (an array, mono or multichannel, or already Frames) as Frames."""
        if isinstance(samples, Frames):
            return samples
        data = np.asarray(samples)
        frames = data if data.ndim == 2 else data.reshape(len(data), 1)
        return cls(lambda start, stop: frames[start:stop], len(frames), frames.shape[1])

    def array(self, *, mono: bool = False) -> np.ndarray:
        """The whole signal as one float32 array ((count,) when ``mono``)."""
        out = np.empty((self.count, self.channels), np.float32)
        for start in range(0, self.count, _BLOCK):
            stop = min(self.count, start + _BLOCK)
            out[start:stop] = self.read(start, stop)
        return out[:, 0] if mono else out


#: Samples worked on at a time (about 1.4 s at 48 kHz).
_BLOCK = 1 << 16


def integrated_loudness(samples: np.ndarray | Frames, sample_rate: int) -> float:
    """Integrated loudness in LUFS (BS.1770-4 gated), or ``SILENCE_DB`` for silence.

    pyloudnorm's K-weighting filters and gating, computed a block at a time (the filters
    carry their state across blocks; each 400 ms gating block's energy comes from running
    sums), so memory stays a few MB however long the song is. Agrees with
    ``pyloudnorm.Meter.integrated_loudness`` to within 1e-6 LU.
    """
    import pyloudnorm
    from scipy.signal import sosfilt

    source = Frames.of(samples)
    count, channels = source.count, source.channels
    read = source.read
    block = int(0.4 * sample_rate)
    if count < block:  # shorter than one gating block: measured as if followed by silence
        short = np.asarray(read(0, count))
        padded = np.concatenate([short, np.zeros((block - count, channels), short.dtype)])
        read, count = (lambda start, stop: padded[start:stop]), block
    # pyloudnorm's block bounds, with its float arithmetic, so the figures agree exactly.
    blocks = int(np.round((count / sample_rate - 0.4) / (0.4 * 0.25))) + 1
    steps = np.arange(blocks) * 0.25
    lower = (0.4 * steps * sample_rate).astype(np.int64)
    upper = np.minimum((0.4 * (steps + 1) * sample_rate).astype(np.int64), count)
    points = np.unique(np.concatenate([lower, upper]))
    sums = np.zeros((len(points), channels))  # sum of squares of the samples before a point
    # The K-weighting (a high shelf, then a high-pass) as one cascade of biquads.
    cascade = np.array(
        [
            np.concatenate([np.asarray(f.b) * f.passband_gain, f.a]) / f.a[0]
            for f in pyloudnorm.Meter(sample_rate)._filters.values()
        ]
    )
    state = np.zeros((len(cascade), 2, channels))
    running, next_point = np.zeros(channels), 0
    for start in range(0, count, _LOUDNESS_BLOCK):
        chunk = np.asarray(read(start, min(count, start + _LOUDNESS_BLOCK)), dtype=np.float64)
        weighted, state = sosfilt(cascade, chunk, axis=0, zi=state)
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


#: Samples K-weighted at a time (about 1.4 s at 48 kHz).
_LOUDNESS_BLOCK = 1 << 16


def true_peak_db(samples: np.ndarray | Frames, sample_rate: int) -> float:
    """The true peak in dBTP: the largest magnitude of the signal 4x oversampled."""
    source = Frames.of(samples)
    peak = float(_cell_peaks(source).max()) if source.count else 0.0
    return 20 * math.log10(peak) if peak > 0 else SILENCE_DB


#: Samples oversampled at a time (about 1.4 s at 48 kHz), and the context each block takes
#: from its neighbours: the interpolation filter reaches 10 samples either way.
_PEAK_BLOCK = 1 << 16
_PEAK_CONTEXT = 64
#: The limiter keeps the largest oversampled peak of each run of this many samples.
_CELL = 64


def sample_peaks(samples: np.ndarray | Frames) -> np.ndarray:
    """For each sample, the largest magnitude of the 4x-oversampled signal (all channels)
    from it to the next: float32 (samples,). Oversampled a block at a time with enough
    context that the result equals oversampling the whole signal at once, so memory stays a
    few MB however long the song is."""
    source = Frames.of(samples)
    return _peaks(source, 0, source.count)


def _peaks(source: Frames, start: int, stop: int) -> np.ndarray:
    """:func:`sample_peaks` of ``source``'s samples [start, stop) only (float32)."""
    from scipy.signal import resample_poly

    factor = TRUE_PEAK_OVERSAMPLING
    peaks = np.empty(stop - start, np.float32)
    for first in range(start, stop, _PEAK_BLOCK):
        last = min(stop, first + _PEAK_BLOCK)
        lead, tail = min(first, _PEAK_CONTEXT), min(source.count - last, _PEAK_CONTEXT)
        block = np.asarray(source.read(first - lead, last + tail), dtype=np.float32)
        # Channels as rows: each is oversampled along contiguous memory.
        up = resample_poly(np.ascontiguousarray(block.T), factor, 1, axis=1)
        up = np.abs(up[:, lead * factor : (lead + last - first) * factor])
        loudest = up.max(axis=0) if len(up) > 1 else up[0]
        # The largest of each sample's ``factor`` oversampled values, without a slow reduce
        # over a short axis.
        each = loudest[0::factor]
        for phase in range(1, factor):
            each = np.maximum(each, loudest[phase::factor])
        peaks[first - start : last - start] = each
    return peaks


def _cell_peaks(source: Frames) -> np.ndarray:
    """The largest oversampled peak of each ``_CELL`` samples (the last cell may be short):
    float32, one oversampled pass over the signal."""
    cells = np.empty(-(-source.count // _CELL), np.float32)
    step = _PEAK_BLOCK // _CELL * _CELL
    for first in range(0, source.count, step):
        last = min(source.count, first + step)
        peaks = _peaks(source, first, last)
        whole = len(peaks) // _CELL * _CELL
        cells[first // _CELL : (first + whole) // _CELL] = (
            peaks[:whole].reshape(-1, _CELL).max(axis=1)
        )
        if whole < len(peaks):
            cells[-1] = peaks[whole:].max()
    return cells


#: Runs of limiter gain: (first sample, float32 gains), the gain being 1 everywhere else.
_Runs = list[tuple[int, np.ndarray]]


@dataclass(frozen=True)
class _Limited:
    """A signal scaled and true-peak limited: its gains, and what was measured on the way."""

    source: Frames
    scale: np.float32
    passes: tuple[_Runs, ...]  # the limiter's gains, applied one pass after the other
    reduction_db: float
    true_peak: float  # the largest oversampled magnitude of the result

    def read(self, start: int, stop: int) -> np.ndarray:
        return self.apply(self.source.read(start, stop), start)

    def apply(self, block: np.ndarray, start: int) -> np.ndarray:
        """``block`` (frames ``start ..`` of any signal as long as the source, e.g. one part
        of a mix) times the scale and the limiter's gains there: what the limiter did to the
        whole, done to the part, so that the parts so treated add up to the result."""
        frames = np.asarray(block, dtype=np.float32) * self.scale
        if frames.ndim == 1:
            frames = frames[:, None]
        stop = start + len(frames)
        for runs, ends in zip(self.passes, self._ends, strict=True):
            # A pass's runs are in order and apart: those that reach into [start, stop).
            for index in range(int(np.searchsorted(ends, start, side="right")), len(runs)):
                first, gain = runs[index]
                if first >= stop:
                    break
                low, high = max(start, first), min(stop, first + len(gain))
                frames[low - start : high - start] *= gain[low - first : high - first, None]
        return frames

    @cached_property
    def _ends(self) -> list[np.ndarray]:
        return [np.array([first + len(gain) for first, gain in runs]) for runs in self.passes]

    @property
    def frames(self) -> Frames:
        return Frames(self.read, self.source.count, self.source.channels)


def _limit(
    source: Frames,
    cells: np.ndarray,
    scale: np.float32,
    sample_rate: int,
    ceiling_dbtp: float,
    lookahead_s: float,
    release_s: float,
) -> _Limited:
    """``source`` times ``scale``, limited as :func:`limit_true_peak` says, given the
    ``source``'s :func:`_cell_peaks`.

    Where the scaled cell peaks stay below the ceiling and no gain has changed the signal
    within a cell of it, the limiter's gain is 1 and the peaks are the cell peaks scaled:
    only the rest is oversampled again, so a pass costs what the loud moments cost.
    """
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    count = source.count
    ceiling = 10 ** (ceiling_dbtp / 20)
    # Below this a sample's gain is certainly 1 (the need is 1), with room for rounding.
    safe = ceiling * 0.999 * (1 - 1e-5)
    ahead = max(1, int(lookahead_s * sample_rate))
    behind = max(ahead, int(release_s * sample_rate))
    size = ahead + behind + 1  # a minimum over [i - behind, i + ahead] ...
    origin = (behind - ahead) // 2
    reach = size + 2 * ahead + 4  # ... then a mean over [i - ahead, i + ahead]: what a gain sees
    scaled_cells = cells * scale
    passes: list[_Runs] = []
    reduction_db = 0.0

    def hot_regions(passes: list[_Runs]) -> list[tuple[int, int]]:
        """Sample ranges to look at closely: cells that may pass the safe level, and cells
        next to a gain below 1 (whose oversampled peaks the gain has changed)."""
        hot = scaled_cells > safe
        for runs in passes:
            for first, gain in runs:
                hot[max(0, first // _CELL - 1) : (first + len(gain) - 1) // _CELL + 2] = True
        edges = np.flatnonzero(np.diff(np.concatenate([[0], hot.view(np.int8), [0]])))
        return [(int(a) * _CELL, min(count, int(b) * _CELL)) for a, b in edges.reshape(-1, 2)]

    def measure(passes: list[_Runs]) -> tuple[list[tuple[int, int]], list[np.ndarray], float]:
        """The hot regions, their exact peaks, and the true peak of the whole signal."""
        regions = hot_regions(passes)
        reader = _Limited(source, scale, tuple(passes), 0.0, 0.0).frames
        exact = [_peaks(reader, a, b) for a, b in regions]
        loudest = max((float(p.max()) for p in exact if len(p)), default=0.0)
        cold = np.ones(len(cells), bool)
        for a, b in regions:
            cold[a // _CELL : -(-b // _CELL)] = False
        if cold.any():
            loudest = max(loudest, float(scaled_cells[cold].max()))
        return regions, exact, loudest

    for _ in range(4):  # the limited signal's own inter-sample peaks are checked again
        regions, exact, loudest = measure(passes)
        if loudest <= ceiling * 1.0001:
            return _Limited(source, scale, tuple(passes), reduction_db, loudest)
        # Hot regions close enough to share a gain are worked on together: a gain depends
        # on the need up to ``reach`` away, and the need is 1 outside the hot regions.
        groups: list[list[int]] = []
        for index, (a, _b) in enumerate(regions):
            if groups and a - regions[groups[-1][-1]][1] < 4 * reach:
                groups[-1].append(index)
            else:
                groups.append([index])
        runs: _Runs = []
        lowest = 1.0
        for group in groups:
            low = max(0, regions[group[0]][0] - 2 * reach)
            high = min(count, regions[group[-1]][1] + 2 * reach)
            need = np.ones(high - low, np.float32)
            for index in group:
                a, b = regions[index]
                need[a - low : b - low] = np.minimum(
                    1.0, ceiling * 0.999 / np.maximum(exact[index], 1e-12)
                )
            held = minimum_filter1d(need, size=size, origin=origin)
            gain = uniform_filter1d(held, size=2 * ahead + 1)
            gain = np.minimum(gain, need).astype(np.float32)
            # Keep where the gain is below 1 (it is exactly 1 beyond ``reach`` of the need).
            below = np.flatnonzero(gain < 1.0)
            if below.size:
                first, last = int(below[0]), int(below[-1]) + 1
                runs.append((low + first, gain[first:last].copy()))
                lowest = min(lowest, float(gain[first:last].min()))
        passes.append(runs)
        reduction_db = max(reduction_db, -20 * math.log10(max(lowest, 1e-12)))
    loudest = measure(passes)[2]
    return _Limited(source, scale, tuple(passes), reduction_db, loudest)


def limit_true_peak(
    samples: np.ndarray | Frames,
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
    source = Frames.of(samples)
    limited = _limit(
        source,
        _cell_peaks(source),
        np.float32(1.0),
        sample_rate,
        ceiling_dbtp,
        lookahead_s,
        release_s,
    )
    mono = not isinstance(samples, Frames) and np.ndim(samples) == 1
    return limited.frames.array(mono=mono), limited.reduction_db


@dataclass(frozen=True)
class Mastered:
    """What :func:`master` did and measured. ``frames`` is the mastered signal, computed a
    block at a time as it is read; ``samples`` is all of it at once."""

    frames: Frames
    gain_db: float  # the gain applied before the limiter
    loudness_lufs: float  # integrated loudness of ``samples``
    true_peak_dbtp: float  # true peak of ``samples``
    limiter_reduction_db: float  # the most the limiter turned down any moment
    mono: bool = False
    #: ``apply(block, start)``: the gain and the limiter's gains at frames ``start ..`` done
    #: to ``block`` (a part of what was mastered): parts so treated add up to ``frames``.
    apply: Callable[[np.ndarray, int], np.ndarray] | None = None

    @property
    def samples(self) -> np.ndarray:
        """The mastered signal as float32, shaped as the input was."""
        return self.frames.array(mono=self.mono)


def master(
    samples: np.ndarray | Frames,
    sample_rate: int,
    *,
    loudness_lufs: float = -14.0,
    true_peak_dbtp: float = -1.0,
) -> Mastered:
    """``samples`` at ``loudness_lufs`` integrated with true peaks at most ``true_peak_dbtp``.

    The gain is corrected up to five times for what the limiter removed, until the measured
    loudness is within 0.1 LU of the target. Nothing is computed whole: the result's
    ``frames`` apply the gain and the limiter's as they are read.
    """
    source = Frames.of(samples)
    measured = integrated_loudness(source, sample_rate)
    if measured <= SILENCE_DB:
        raise ValueError("cannot master silence")
    cells = _cell_peaks(source)
    gain_db = loudness_lufs - measured
    for _ in range(5):
        scale = np.float32(10 ** (gain_db / 20))
        limited = _limit(source, cells, scale, sample_rate, true_peak_dbtp, 0.002, 0.08)
        reached = integrated_loudness(limited.frames, sample_rate)
        if abs(reached - loudness_lufs) < 0.1:
            break
        gain_db += loudness_lufs - reached
    peak = limited.true_peak
    return Mastered(
        limited.frames,
        gain_db,
        reached,
        20 * math.log10(peak) if peak > 0 else SILENCE_DB,
        limited.reduction_db,
        mono=not isinstance(samples, Frames) and np.ndim(samples) == 1,
        apply=limited.apply,
    )
