"""Changing a signal's sample rate (polyphase filtering, scipy's ``resample_poly``).

A long signal is resampled a block at a time, each block with enough of its neighbours that
the result equals resampling it whole: memory then follows the block, not the song (scipy
works in float64, and a five-minute song at 48 kHz is 115 MB a channel in float64).
"""

from __future__ import annotations

import math

import numpy as np

#: Input samples resampled at a time (about 1.4 s at 48 kHz).
_BLOCK = 1 << 16


def resample(samples: np.ndarray, rate: int, target: int, *, dtype=np.float64) -> np.ndarray:
    """``samples`` (along axis 0, mono or multichannel) at ``target`` Hz instead of ``rate``,
    as ``dtype`` (float64 unless asked; computed in float64 either way); ``samples`` itself
    when the rates are equal."""
    if rate == target:
        return samples
    from scipy.signal import resample_poly

    divisor = math.gcd(rate, target)
    up, down = target // divisor, rate // divisor
    data = np.asarray(samples)
    count = data.shape[0]
    if count <= 2 * _BLOCK:
        return resample_poly(np.asarray(data, dtype=np.float64), up, down, axis=0).astype(
            dtype, copy=False
        )
    # resample_poly's filter reaches 10 * max(up, down) samples either way at the upsampled
    # rate; each block takes that much context (in whole multiples of ``down`` input samples,
    # so its first output sample falls on the same grid as the whole signal's).
    reach = 10 * max(up, down) // up + 2
    context = -(-reach // down) * down
    block = _BLOCK // down * down
    total = -(-count * up // down)  # what resample_poly gives: ceil(count * up / down)
    out = np.empty((total, *data.shape[1:]), dtype)
    for start in range(0, count, block):
        end = min(count, start + block)
        lead, tail = min(start, context), min(count - end, context)
        piece = np.asarray(data[start - lead : end + tail], dtype=np.float64)
        made = resample_poly(piece, up, down, axis=0)
        first = start * up // down
        last = total if end == count else end * up // down
        skip = lead * up // down
        out[first:last] = made[skip : skip + last - first]
    return out
