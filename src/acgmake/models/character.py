"""A character from a generator and a seed, and where its face parts are (``face.json``).

Array in, array out: :func:`generate_character` gives a uint8 RGB image, :func:`face_info`
the normalised layout plus the colours found at the hint points. The stage in
``acgmake.stages.character`` only reads and writes the files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from acgmake.models.drawn import canonical_layout

SHIPPED_NAME = "drawn64.safetensors"


def shipped_checkpoint() -> Path:
    """The generator file that comes with acgmake (trained on the drawn set)."""
    return Path(__file__).with_name("weights") / SHIPPED_NAME


def generate_character(generator: Any, seed: int, *, truncation_psi: float = 0.7) -> np.ndarray:
    """The character for ``seed``: uint8 RGB, H x W x 3 at the generator's resolution.

    The latent comes from torch's CPU generator seeded with ``seed`` and the noise inputs are
    the generator's stored constants, so one seed always gives the same picture. It runs on
    one thread: CPU kernels split work differently with more threads, which changes the
    last bits of the result (and so, now and then, a pixel), and one small image gains
    little from more.
    """
    import torch

    from acgmake.models.stylegan2 import generate

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return generate(generator, [seed], truncation_psi=truncation_psi, noise_mode="const")[0]
    finally:
        torch.set_num_threads(threads)


def _hex(rgb: np.ndarray) -> str:
    return "#" + "".join(f"{int(v):02x}" for v in rgb)


def color_at(image: np.ndarray, point: list[float], radius: float = 0.02) -> str:
    """The median colour of ``image`` in a small square around the normalised ``point``."""
    height, width = image.shape[:2]
    x, y = point[0] * width, point[1] * height
    r = max(1, int(round(radius * max(width, height))))
    x0, x1 = max(0, int(x) - r), min(width, int(x) + r + 1)
    y0, y1 = max(0, int(y) - r), min(height, int(y) + r + 1)
    patch = image[y0:y1, x0:x1].reshape(-1, 3)
    return _hex(np.median(patch, axis=0).round())


def face_info(image: np.ndarray, layout: dict | None = None) -> dict:
    """``face.json`` for ``image``: boxes and hint points (normalised) plus sampled colours.

    ``layout`` defaults to the drawn set's canonical layout, which the shipped generator
    follows. ``colors`` mirrors ``points``: one ``#rrggbb`` per point (two for the eyes).
    """
    info = json.loads(json.dumps(layout or canonical_layout()))
    points = info["points"]
    info["colors"] = {
        name: [color_at(image, p) for p in point]
        if isinstance(point[0], list)
        else color_at(image, point)
        for name, point in points.items()
    }
    return info


def layout_from_metadata(metadata: dict[str, str]) -> dict | None:
    """The layout a generator file declares (metadata ``layout``), if it declares one."""
    text = metadata.get("layout")
    if not text:
        return None
    try:
        layout = json.loads(text)
    except ValueError:
        return None
    if not all(key in layout for key in ("face", "mouth", "eyes", "points")):
        return None
    return layout
