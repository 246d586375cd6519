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
sum to the loudness target under the true-peak ceiling. The stems are the two parts at the
gain the master applied, before its limiter: together they are the song, and a DAW that loads
them gets the mix as heard.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from acgmake.audio.loudness import SILENCE_DB, Mastered, integrated_loudness, master

#: Where the vocals are brought before the chain, so its thresholds are in known territory.
CHAIN_INPUT_LUFS = -20.0


@dataclass(frozen=True)
class Mix:
    """The song and its stems (float32 stereo) and what was measured on the way."""

    song: np.ndarray
    vocals: np.ndarray  # processed vocals at the song's gain (pre-limiter)
    backing: np.ndarray  # backing at the song's gain (pre-limiter)
    vocals_lufs: float  # the processed vocals alone, before the master gain
    backing_lufs: float  # the backing alone, after the balance, before the master gain
    mastered: Mastered
    sample_rate: int

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
            "duration_s": round(len(self.song) / self.sample_rate, 3),
        }


def vocal_chain(vocals: np.ndarray, sample_rate: int, *, reverb: float = 0.2) -> np.ndarray:
    """The vocals (mono or stereo) through EQ, compression and reverb: float32 (samples, 2).

    ``reverb`` is the reverb's wet level, 0 (dry) to 1. The voice enters the chain at
    ``CHAIN_INPUT_LUFS`` and leaves it a few dB quieter (the compressor's work); silence stays
    silence.
    """
    from scipy.signal import butter, sosfilt

    mono = np.asarray(vocals, dtype=np.float32)
    if mono.ndim == 2:
        mono = mono.mean(axis=1)
    level = integrated_loudness(mono, sample_rate)
    if level <= SILENCE_DB:
        return np.zeros((len(mono), 2), np.float32)
    mono = mono * np.float32(10 ** ((CHAIN_INPUT_LUFS - level) / 20))
    equaliser = np.vstack(
        [
            butter(2, 90.0, "highpass", fs=sample_rate, output="sos"),
            peaking_filter(300.0, -2.5, 1.0, sample_rate),
            peaking_filter(3200.0, 2.0, 0.8, sample_rate),
            high_shelf_filter(10000.0, 2.0, 0.7, sample_rate),
        ]
    )
    dry = sosfilt(equaliser, mono).astype(np.float32)
    dry = compress(dry, sample_rate, threshold_db=-24.0, ratio=3.0, attack_ms=5.0, release_ms=120.0)
    stereo = np.stack([dry, dry], axis=1)
    wet = min(max(reverb, 0.0), 1.0)
    if wet > 0:
        stereo = stereo + wet * room_reverb(dry, sample_rate)
    return np.ascontiguousarray(stereo, dtype=np.float32)


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


def compress(
    signal: np.ndarray,
    sample_rate: int,
    *,
    threshold_db: float,
    ratio: float,
    attack_ms: float,
    release_ms: float,
    knee_db: float = 6.0,
) -> np.ndarray:
    """A feed-forward compressor with a soft knee: ``signal`` (mono float32) turned down above
    ``threshold_db`` by ``ratio``.

    The gain is computed on 1 ms blocks (peak level, smoothed with separate attack and
    release times) and interpolated back to every sample, which is how fast a vocal
    compressor needs to move and keeps the per-sample work vectorised.
    """
    block = max(1, sample_rate // 1000)
    count = int(np.ceil(len(signal) / block))
    padded = np.pad(np.abs(signal), (0, count * block - len(signal)))
    peak_db = 20 * np.log10(np.maximum(padded.reshape(count, block).max(axis=1), 1e-9))
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
    gain_db = np.interp(np.arange(len(signal)), centres, -smoothed)
    return (signal * 10 ** (gain_db / 20)).astype(np.float32)


def room_reverb(
    dry: np.ndarray, sample_rate: int, *, decay_s: float = 1.1, predelay_ms: float = 18.0
) -> np.ndarray:
    """The reverberation alone (no dry signal) of a mid-sized bright room, stereo (N, 2).

    The impulse response is exponentially decaying noise, independent in each channel (a wide,
    decorrelated image), darkened as it decays the way air and walls absorb highs, with a
    short pre-delay so the words stay clear; it is fixed (seeded), so a mix is repeatable.
    """
    from scipy.signal import butter, oaconvolve, sosfilt

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
    delay = int(predelay_ms * sample_rate / 1000)
    wet = np.stack([oaconvolve(dry, channel)[: len(dry)] for channel in impulse], axis=1)
    wet = np.pad(wet, ((delay, 0), (0, 0)))[: len(dry)]
    return wet.astype(np.float32)


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
    voice = vocal_chain(vocals, sample_rate, reverb=reverb)
    band = np.asarray(backing, dtype=np.float32)
    if band.ndim == 1:
        band = np.stack([band, band], axis=1)
    length = max(len(voice), len(band))
    voice = np.pad(voice, ((0, length - len(voice)), (0, 0)))
    band = np.pad(band, ((0, length - len(band)), (0, 0)))
    vocals_lufs = integrated_loudness(voice, sample_rate)
    backing_lufs = integrated_loudness(band, sample_rate)
    if backing_lufs > SILENCE_DB and vocals_lufs > SILENCE_DB:
        band = band * np.float32(10 ** ((vocals_lufs - vocal_level_db - backing_lufs) / 20))
        backing_lufs = vocals_lufs - vocal_level_db
    mastered = master(
        voice + band, sample_rate, loudness_lufs=loudness_lufs, true_peak_dbtp=true_peak_dbtp
    )
    gain = np.float32(10 ** (mastered.gain_db / 20))
    return Mix(
        mastered.samples,
        voice * gain,
        band * gain,
        vocals_lufs,
        backing_lufs,
        mastered,
        sample_rate,
    )
