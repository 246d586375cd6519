"""The expressions of one character colorized in the same colours, so nothing flickers.

The rest expression is colorized (:func:`acgmake.image.colorize.colorize_layers`). Every other
expression (a mouth shape, the blink) is the rest expression's colorization, pixel for pixel,
except where its picture differs from the rest picture (the mouth, the eyes: the *changed*
part). There each pixel takes the colour that the most alike nearby pixels of the rest
picture were painted (:func:`transfer_colours`), so a variant can only use colours the rest
expression has: an open mouth is painted like the lips and lines around it, a closed eye like
the skin and lashes, and no hint meant for an open eye lands on a closed lid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np
from scipy import ndimage

from acgmake.image.colorize import RGB, colorize_layers
from acgmake.image.face import Face
from acgmake.image.hints import Hints
from acgmake.image.lineart import WORKING_SIZE_PX, to_working_size


def changed_part(
    picture: np.ndarray,
    rest: np.ndarray,
    *,
    size_px: int = WORKING_SIZE_PX,
    threshold: int = 28,
    margin_px: int = 10,
) -> np.ndarray:
    """Where ``picture`` differs from ``rest`` (same size, uint8), at working size.

    A pixel differs when a channel changes by more than ``threshold``; specks are dropped,
    holes filled, and the part grown by ``margin_px`` so it takes in the lines around it.
    Returns a bool mask.
    """
    a = to_working_size(np.ascontiguousarray(picture[..., :3]), size_px).astype(np.int16)
    b = to_working_size(np.ascontiguousarray(rest[..., :3]), size_px).astype(np.int16)
    differs = np.abs(a - b).max(axis=2) > threshold
    differs = ndimage.binary_opening(differs, iterations=2)
    differs = ndimage.binary_fill_holes(ndimage.binary_closing(differs, iterations=4))
    return ndimage.binary_dilation(differs, iterations=margin_px)


def transfer_colours(
    picture: np.ndarray,
    rest: np.ndarray,
    rest_colored: np.ndarray,
    where: np.ndarray,
    *,
    neighbours: int = 8,
    reach_px: int = 48,
    position_weight: float = 0.35,
) -> np.ndarray:
    """The colorized colour of each ``where`` pixel of ``picture``, taken from ``rest``.

    Each pixel is matched to the pixels of the rest picture most like it in colour (CIELAB)
    and near it (``position_weight`` Lab units per pixel apart, within ``reach_px`` of the
    changed part), and gets the mean of the colours they were painted in ``rest_colored``.
    All three pictures are at working size; returns RGBA float32 for the ``where`` pixels.
    """
    from scipy.spatial import cKDTree

    height, width = where.shape
    near = ndimage.binary_dilation(where, iterations=reach_px)
    yy, xx = np.mgrid[:height, :width]

    def features(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        lab = cv2.cvtColor(image[..., :3].astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
        lab = cv2.GaussianBlur(lab, (0, 0), 1.0)
        place = np.stack([yy[mask], xx[mask]], axis=1) * position_weight
        return np.hstack([lab[mask], place])

    tree = cKDTree(features(rest, near))
    distances, found = tree.query(features(picture, where), k=neighbours)
    weights = 1.0 / (distances + 1.0)
    painted = rest_colored[near].astype(np.float32)[found]
    return (painted * weights[..., None]).sum(axis=1) / weights.sum(axis=1, keepdims=True)


def colorize_expressions(
    pictures: Sequence[np.ndarray],
    *,
    reference: tuple[np.ndarray, np.ndarray] | None = None,
    face: Face | None = None,
    hints: Hints | None = None,
    palette: Mapping[str, RGB] | None = None,
    feather_px: float = 2.0,
    **options,
) -> list[np.ndarray]:
    """Each of ``pictures`` (the rest expression first, all one size) colorized, RGBA uint8.

    ``reference`` is a picture of the character and its colorization (``character.png`` and
    ``colored.png``), whose colours every expression takes; without it the rest expression
    is colorized with ``face``, ``hints``, ``palette`` and ``options`` (those of
    :func:`acgmake.image.colorize.colorize_layers`) and is the reference. The changed part
    of each picture (:func:`changed_part`) is blended in with a ``feather_px`` soft edge.
    """
    if reference is None:
        first = np.asarray(pictures[0])
        painting = colorize_layers(first, face=face, hints=hints, palette=palette, **options)
        reference = (first, painting.composite())
    original, colored = np.asarray(reference[0]), np.asarray(reference[1])
    height, width = original.shape[:2]
    size_px = max(colored.shape[:2])
    original_working = to_working_size(np.ascontiguousarray(original[..., :3]), size_px)
    results = []
    for picture in pictures:
        picture = np.ascontiguousarray(np.asarray(picture)[..., :3])
        if picture.shape[:2] != (height, width):  # a plugin resized character.png
            picture = cv2.resize(picture, (width, height), interpolation=cv2.INTER_AREA)
        changed = changed_part(picture, original, size_px=size_px)
        if not changed.any():
            results.append(colored.copy())
            continue
        working = to_working_size(picture, size_px)
        own = colored.astype(np.float32)
        own[changed] = transfer_colours(working, original_working, colored, changed)
        weight = cv2.GaussianBlur(changed.astype(np.float32), (0, 0), feather_px)[..., None]
        weight = np.where(changed[..., None], weight, 0.0)
        mixed = colored.astype(np.float32) * (1.0 - weight) + own * weight
        results.append(np.clip(mixed + 0.5, 0, 255).astype(np.uint8))
    return results
