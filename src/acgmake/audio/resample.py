"""Changing a signal's sample rate (polyphase filtering, scipy's ``resample_poly``)."""

from __future__ import annotations

import math

import numpy as np


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``samples`` (along axis 0, mono or multichannel) at ``target`` Hz instead of ``rate``:
    float64, ``samples`` itself when the rates are equal."""
    if rate == target:
        return samples
    from scipy.signal import resample_poly

    divisor = math.gcd(rate, target)
    return resample_poly(np.asarray(samples, dtype=np.float64), target // divisor,
                         rate // divisor, axis=0)  # fmt: skip
