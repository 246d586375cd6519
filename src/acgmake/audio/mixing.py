"""Mixing the sung vocals over the backing band: a vocal chain, the balance, the master.

The vocal chain is what a mix engineer puts on a lead vocal, written here with scipy (the
usual plug-in host, pedalboard, is GPL-3 and acgmake is MIT): a high-pass at 90 Hz (rumble,
breath pops), a cut of 2.5 dB at 300 Hz (the boxy "mud" that masks the band), a 2 dB presence
lift at 3.2 kHz and 2 dB of air above 10 kHz (words cut through) — RBJ-cookbook biquads — a
3:1 feed-forward compressor that evens out the phrases, then a convolution reverb with a
synthetic, decorrelated stereo room, so the dry mono voice sits in a space. The vocals are
brought to a fixed level before the chain so the compressor's threshold means the same for
any voice or volume.

The balance is set by measured loudness, not by peak: the processed vocals sit
``vocal_level_db`` LU above the backing. Then :func:`acgmake.audio.loudness.master` brings the
sum to the loudness target under the true-peak ceiling. The stems are the two parts with the
gain the master applied and the limiter's gain at each moment: together they are the song
(to float rounding), and a DAW that loads them gets the mix as heard.

Everything works a block at a time on float32 (the filters carry their state across blocks,
the reverb is an FFT convolution by blocks written into the voice's own array), so a
five-minute song costs the processed voice and the backing in memory (two float32 stereo
arrays, 115 MB each) and little more: the sum, the limited song and the stems are computed
block by block as they are written (:meth:`Mix.blocks`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from acgmake.audio.loudness import SILENCE_DB, Frames, Mastered, integrated_loudness, master

#: Where the vocals are brought before the chain, so its thresholds are in known territory.
CHAIN_INPUT_LUFS = -20.0
#: Samples worked on at a time (about 1.4 s at 48 kHz).
_BLOCK = 1 << 16


@dataclass(frozen=True)
class Mix:
    """The song and its stems, and what was measured on the way.

    The song and the stems are float32 stereo, computed a block at a time as they are read
    (:meth:`blocks`), so they are never held whole; ``song``, ``vocals`` and ``backing`` give
    each of them whole.
    """

    voice: np.ndarray  # the processed vocals, float32 (samples, 2), before the balance
    band: np.ndarray  # the backing as given, float32 (samples, channels)
    band_gain: np.float32  # what the balance did to the backing
    vocals_lufs: float  # the processed vocals alone, before the master gain
    backing_lufs: float  # the backing alone, after the balance, before the master gain
    mastered: Mastered
    sample_rate: int

    @property
    def length(self) -> int:
        return self.mastered.frames.count

    def blocks(self, size: int = _BLOCK) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(song, vocals stem, backing stem) ``size`` samples at a time: the stems are the
        processed vocals and the balanced backing with the master's gain and its limiter's,
        so that they add up to the song."""
        apply = self.mastered.apply
        assert apply is not None
        for start in range(0, self.length, size):
            stop = min(self.length, start + size)
            song = self.mastered.frames.read(start, stop)
            vocals = apply(_part(self.voice, start, stop), start)
            backing = apply(_part(self.band, start, stop) * self.band_gain, start)
            yield song, vocals, backing

    @property
    def song(self) -> np.ndarray:
        return np.concatenate([song for song, _, _ in self.blocks()])

    @property
    def vocals(self) -> np.ndarray:  # processed vocals as mixed into the song
        return np.concatenate([vocals for _, vocals, _ in self.blocks()])

    @property
    def backing(self) -> np.ndarray:  # backing as mixed into the song
        return np.concatenate([backing for _, _, backing in self.blocks()])

    def report(self) -> dict[str, float]:
        """The measurements, rounded, for mix.json."""
        master_gain = self.mastered.gain_db
        return {
            "loudness_lufs": round(self.mastered.loudness_lufs, 2),
            "true_peak_dbtp": round(self.mastered.true_peak_dbtp, 2),
            "limiter_reduction_db": round(self.mastered.limiter_reduction_db, 2),
            "master_gain_db": round(master_gain, 2),
            "vocals_lufs": round(self.vocals_lufs + master_gain, 2),
            "backing_lufs": round(self.backing_lufs + master_gain, 2),
            "duration_s": round(self.length / self.sample_rate, 3),
        }


def _part(samples: np.ndarray, start: int, stop: int) -> np.ndarray:
    """``samples[start:stop]``, with silence where ``samples`` ends before ``stop``."""
    if stop <= len(samples):
        return samples[start:stop]
    out = np.zeros((stop - start, *samples.shape[1:]), samples.dtype)
    have = samples[start:stop]
    out[: len(have)] = have
    return out


def vocal_chain(vocals: np.ndarray, sample_rate: int, *, reverb: float = 0.2) -> np.ndarray:
    """The vocals (mono or stereo) through EQ, compression and reverb: float32 (samples, 2).

    ``reverb`` is the reverb's wet level, 0 (dry) to 1. The voice enters the chain at
    ``CHAIN_INPUT_LUFS`` and leaves it a few dB quieter (the compressor's work); silence stays
    silence. The chain works in the result's own array, a block at a time: the memory it
    needs beyond the result is a few MB.
    """
    from scipy.signal import butter, sosfilt

    mono = np.asarray(vocals, dtype=np.float32)
    if mono.ndim == 2:
        mono = mono.mean(axis=1)
    level = integrated_loudness(mono, sample_rate)
    out = np.zeros((len(mono), 2), np.float32)
    if level <= SILENCE_DB:
        return out
    gain = np.float32(10 ** ((CHAIN_INPUT_LUFS - level) / 20))
    equaliser = np.vstack(
        [
            butter(2, 90.0, "highpass", fs=sample_rate, output="sos"),
            peaking_filter(300.0, -2.5, 1.0, sample_rate),
            peaking_filter(3200.0, 2.0, 0.8, sample_rate),
            high_shelf_filter(10000.0, 2.0, 0.7, sample_rate),
        ]
    )
    dry = out[:, 0]  # the dry voice is made in the left channel, then copied to the right
    state = np.zeros((len(equaliser), 2))
    for start in range(0, len(mono), _BLOCK):
        filtered, state = sosfilt(equaliser, mono[start : start + _BLOCK] * gain, zi=state)
        dry[start : start + len(filtered)] = filtered
    _compress_in_place(
        dry, sample_rate, threshold_db=-24.0, ratio=3.0, attack_ms=5.0, release_ms=120.0
    )
    out[:, 1] = dry
    wet = min(max(reverb, 0.0), 1.0)
    if wet > 0:
        _add_room(out, sample_rate, wet)
    return out


def peaking_filter(frequency_hz: float, gain_db: float, q: float, sample_rate: int) -> np.ndarray:
    """A peaking EQ biquad (RBJ Audio EQ Cookbook) as one second-order section."""
    a = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * frequency_hz / sample_rate
    alpha = np.sin(w0) / (2 * q)
    b = [1 + alpha * a, -2 * np.cos(w0), 1 - alpha * a]
    den = [1 + alpha / a, -2 * np.cos(w0), 1 - alpha / a]
    return np.array([[*(np.array(b) / den[0]), 1.0, den[1] / den[0], den[2] / den[0]]])


def high_shelf_filter(
    frequency_hz: float, gain_db: float, q: float, sample_rate: int
) -> np.ndarray:
    """A high-shelf biquad (RBJ Audio EQ Cookbook) as one second-order section."""
    a = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * frequency_hz / sample_rate
    cos, alpha = np.cos(w0), np.sin(w0) / (2 * q)
    root = 2 * np.sqrt(a) * alpha
    b = [
        a * ((a + 1) + (a - 1) * cos + root),
        -2 * a * ((a - 1) + (a + 1) * cos),
        a * ((a + 1) + (a - 1) * cos - root),
    ]
    den = [
        (a + 1) - (a - 1) * cos + root,
        2 * ((a - 1) - (a + 1) * cos),
        (a + 1) - (a - 1) * cos - root,
    ]
    return np.array([[*(np.array(b) / den[0]), 1.0, den[1] / den[0], den[2] / den[0]]])


def _compress_in_place(
    signal: np.ndarray,
    sample_rate: int,
    *,
    threshold_db: float,
    ratio: float,
    attack_ms: float,
    release_ms: float,
    knee_db: float = 6.0,
) -> None:
    """A feed-forward compressor with a soft knee: ``signal`` (mono float32, an array or a
    view, changed in place a block at a time) turned down above ``threshold_db`` by
    ``ratio``.

    The gain is computed on 1 ms blocks (peak level, smoothed with separate attack and
    release times) and interpolated back to every sample, which is how fast a vocal
    compressor needs to move and keeps the per-sample work vectorised.
    """
    block = max(1, sample_rate // 1000)
    count = int(np.ceil(len(signal) / block))
    step = max(1, _BLOCK // block) * block
    loudest = np.empty(count, np.float32)  # the peak of each 1 ms block
    for start in range(0, len(signal), step):
        part = np.abs(signal[start : start + step])
        whole = len(part) // block * block
        first = start // block
        loudest[first : first + whole // block] = part[:whole].reshape(-1, block).max(axis=1)
        if whole < len(part):
            loudest[-1] = part[whole:].max()
    peak_db = 20 * np.log10(np.maximum(loudest, 1e-9))
    over = peak_db - threshold_db
    # Soft knee: quadratic over the knee's width, then the ratio's straight line.
    reduction = np.where(
        over <= -knee_db / 2,
        0.0,
        np.where(
            over >= knee_db / 2,
            over * (1 - 1 / ratio),
            (1 - 1 / ratio) * (over + knee_db / 2) ** 2 / (2 * knee_db),
        ),
    )
    attack = np.exp(-1.0 / max(attack_ms, 1e-3))  # per 1 ms block
    release = np.exp(-1.0 / max(release_ms, 1e-3))
    smoothed = np.empty(count)
    state = 0.0
    for i, target in enumerate(reduction.tolist()):
        coefficient = attack if target > state else release
        state = coefficient * state + (1 - coefficient) * target
        smoothed[i] = state
    centres = (np.arange(count) + 0.5) * block
    for start in range(0, len(signal), _BLOCK):
        part = signal[start : start + _BLOCK]
        gain_db = np.interp(np.arange(start, start + len(part)), centres, -smoothed)
        part[:] = part * 10 ** (gain_db / 20)


def _room_impulse(sample_rate: int, decay_s: float) -> np.ndarray:
    """The room's impulse response, stereo (2, samples), each channel of unit energy.

    Exponentially decaying noise, independent in each channel (a wide, decorrelated image),
    darkened as it decays the way air and walls absorb highs; fixed (seeded), so a mix is
    repeatable.
    """
    from scipy.signal import butter, sosfilt

    length = int(decay_s * sample_rate)
    t = np.arange(length) / sample_rate
    rng = np.random.default_rng(0)
    # 60 dB down after decay_s (RT60); the highs fade about twice as fast as the lows.
    envelope = 10 ** (-3 * t / decay_s)
    low = sosfilt(
        butter(2, 2500.0, "lowpass", fs=sample_rate, output="sos"),
        rng.standard_normal((2, length)),
        axis=1,
    )
    high = rng.standard_normal((2, length)) - low
    impulse = envelope * (low + high * envelope)
    impulse[:, : int(0.004 * sample_rate)] *= np.linspace(0, 1, int(0.004 * sample_rate))
    impulse /= np.sqrt((impulse**2).sum(axis=1, keepdims=True))
    return impulse


def room_reverb(
    dry: np.ndarray, sample_rate: int, *, decay_s: float = 1.1, predelay_ms: float = 18.0
) -> np.ndarray:
    """The reverberation alone (no dry signal) of a mid-sized bright room, stereo (N, 2).

    The impulse response is exponentially decaying noise, independent in each channel (a wide,
    decorrelated image), darkened as it decays the way air and walls absorb highs, with a
    short pre-delay so the words stay clear; it is fixed (seeded), so a mix is repeatable.
    """
    out = np.zeros((len(dry), 3), np.float32)
    out[:, 0] = dry
    _add_room(out, sample_rate, 1.0, decay_s=decay_s, predelay_ms=predelay_ms, into=(1, 2))
    return np.ascontiguousarray(out[:, 1:])


def _add_room(
    out: np.ndarray,
    sample_rate: int,
    level: float,
    *,
    decay_s: float = 1.1,
    predelay_ms: float = 18.0,
    into: tuple[int, int] = (0, 1),
) -> None:
    """Add ``level`` times the room's reverberation (:func:`room_reverb`) of the dry voice in
    ``out[:, 0]`` to the channels ``into`` of ``out`` (float32), in place.

    An overlap-add FFT convolution in float32, a block at a time from the end backwards: a
    block's reverberation lands at or after the block, where the dry voice has already been
    read, so the dry voice needs no copy of its own.
    """
    from scipy import fft

    impulse = _room_impulse(sample_rate, decay_s)
    length = impulse.shape[1]
    size = 1 << max(17, (2 * length - 1).bit_length())  # at least twice the impulse
    spectrum = fft.rfft(impulse, n=size, axis=1).astype(np.complex64)
    step = size - length + 1  # dry samples a block: their convolution fills one FFT
    delay = int(predelay_ms * sample_rate / 1000)
    count = len(out)
    scale = np.float32(level)
    channels = list(into)
    for start in reversed(range(0, count, step)):
        dry = out[start : start + step, 0]
        first = start + delay
        if first >= count or not dry.any():
            continue  # silence reverberates as silence
        wet = fft.irfft(fft.rfft(dry, n=size) * spectrum, n=size, axis=1)
        last = min(count, first + len(dry) + length - 1)
        if channels == [0, 1]:
            out[first:last] += wet[:, : last - first].T * scale
        else:
            for row, channel in enumerate(channels):
                out[first:last, channel] += wet[row, : last - first] * scale


def mix_song(
    vocals: np.ndarray,
    backing: np.ndarray,
    sample_rate: int,
    *,
    vocal_level_db: float = 2.0,
    reverb: float = 0.2,
    loudness_lufs: float = -14.0,
    true_peak_dbtp: float = -1.0,
) -> Mix:
    """The vocals (raw, mono) over the backing (stereo), balanced and mastered.

    Both start at the same instant (sample 0); the song lasts as long as the longer.
    ``vocal_level_db``: how many LU the processed vocals sit above the backing.
    """
    return balance_and_master(
        vocal_chain(vocals, sample_rate, reverb=reverb),
        backing,
        sample_rate,
        vocal_level_db=vocal_level_db,
        loudness_lufs=loudness_lufs,
        true_peak_dbtp=true_peak_dbtp,
    )


def balance_and_master(
    voice: np.ndarray,
    backing: np.ndarray,
    sample_rate: int,
    *,
    vocal_level_db: float = 2.0,
    loudness_lufs: float = -14.0,
    true_peak_dbtp: float = -1.0,
) -> Mix:
    """The processed vocals (:func:`vocal_chain`) over the backing, balanced and mastered
    (see :func:`mix_song`). Neither is copied: the result reads both as it is written."""
    band = np.asarray(backing, dtype=np.float32)
    if band.ndim == 1:
        band = np.stack([band, band], axis=1)
    length = max(len(voice), len(band))

    def padded(samples: np.ndarray) -> Frames:
        return Frames(lambda start, stop: _part(samples, start, stop), length, samples.shape[1])

    vocals_lufs = integrated_loudness(padded(voice), sample_rate)
    backing_lufs = integrated_loudness(padded(band), sample_rate)
    band_gain = np.float32(1.0)
    if backing_lufs > SILENCE_DB and vocals_lufs > SILENCE_DB:
        band_gain = np.float32(10 ** ((vocals_lufs - vocal_level_db - backing_lufs) / 20))
        backing_lufs = vocals_lufs - vocal_level_db

    def song(start: int, stop: int) -> np.ndarray:
        return _part(voice, start, stop) + _part(band, start, stop) * band_gain

    mastered = master(
        Frames(song, length, 2),
        sample_rate,
        loudness_lufs=loudness_lufs,
        true_peak_dbtp=true_peak_dbtp,
    )
    return Mix(voice, band, band_gain, vocals_lufs, backing_lufs, mastered, sample_rate)
