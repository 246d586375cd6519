"""How close a colorization is to the true colours: PSNR and CIEDE2000 colour difference."""

from __future__ import annotations

import numpy as np


def delta_e(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel CIEDE2000 colour difference between RGB(A) uint8 pictures ``a`` and ``b``.

    Returns float ΔE00 per pixel (about 1 is just noticeable, above 5 plainly different).
    """
    from skimage.color import deltaE_ciede2000, rgb2lab

    lab_a = rgb2lab(a[..., :3].astype(np.float32) / 255.0)
    lab_b = rgb2lab(b[..., :3].astype(np.float32) / 255.0)
    return deltaE_ciede2000(lab_a, lab_b)


def mean_delta_e(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean CIEDE2000 ΔE between ``a`` and ``b`` over ``mask`` (bool) or every pixel."""
    difference = delta_e(a, b)
    return float(difference[mask].mean() if mask is not None else difference.mean())


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio (dB, peak 255) of the RGB of ``a`` against ``b`` over
    ``mask`` or every pixel; infinite when they are equal."""
    difference = a[..., :3].astype(np.float64) - b[..., :3].astype(np.float64)
    squared = (difference**2).mean(axis=2)
    mse = float(squared[mask].mean() if mask is not None else squared.mean())
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))
