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


def _disk(radius: float) -> np.ndarray:
    size = 2 * max(1, round(radius)) + 1
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def _grown(mask: np.ndarray, radius: float) -> np.ndarray:
    """``mask`` grown by ``radius`` pixels (a distance transform: fast for any radius)."""
    outside = (~mask.astype(bool)).astype(np.uint8)
    return cv2.distanceTransform(outside, cv2.DIST_L2, 5) <= radius


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
    holes filled, and the part grown by ``margin_px`` (of a 512 px picture; in proportion
    for a larger one) so it takes in the lines around it. Returns a bool mask.
    """
    a = to_working_size(np.ascontiguousarray(picture[..., :3]), size_px).astype(np.int16)
    b = to_working_size(np.ascontiguousarray(rest[..., :3]), size_px).astype(np.int16)
    scale = max(a.shape[:2]) / WORKING_SIZE_PX
    differs = (np.abs(a - b).max(axis=2) > threshold).astype(np.uint8)
    differs = cv2.morphologyEx(differs, cv2.MORPH_OPEN, _disk(2 * scale))
    differs = cv2.morphologyEx(differs, cv2.MORPH_CLOSE, _disk(4 * scale))
    differs = ndimage.binary_fill_holes(differs).astype(np.uint8)
    return _grown(differs, margin_px * scale)


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
    changed part; both in pixels of a 512 px picture, in proportion for a larger one, whose
    rest pixels are sampled as densely as a 512 px picture's), and gets the mean of the
    colours they were painted in ``rest_colored``. All three pictures are at working size;
    returns RGBA float32 for the ``where`` pixels.
    """
    from scipy.spatial import cKDTree

    height, width = where.shape
    scale = max(height, width) / WORKING_SIZE_PX
    near = _grown(where, reach_px * scale)
    # Every ``scale``-th row and column (rounded: a 768 px picture keeps two of three).
    rows = np.unique(np.round(np.arange(0, height, max(scale, 1.0))).astype(int))
    columns = np.unique(np.round(np.arange(0, width, max(scale, 1.0))).astype(int))
    grid = np.ix_(rows[rows < height], columns[columns < width])
    sampled = np.zeros_like(near)
    sampled[grid] = near[grid]
    yy, xx = np.mgrid[:height, :width]

    def features(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        lab = cv2.cvtColor(image[..., :3].astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
        lab = cv2.GaussianBlur(lab, (0, 0), max(1.0, scale))
        place = np.stack([yy[mask], xx[mask]], axis=1) * (position_weight / max(scale, 1.0))
        return np.hstack([lab[mask], place])

    tree = cKDTree(features(rest, sampled))
    # Both cores: this is the stage's one long step, and nothing else runs beside it.
    distances, found = tree.query(features(picture, where), k=neighbours, workers=2)
    weights = 1.0 / (distances + 1.0)
    painted = rest_colored[sampled].astype(np.float32)[found]
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
    of each picture (:func:`changed_part`) is blended in with a ``feather_px`` soft edge
    (of a 512 px picture; in proportion for a larger one).
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
        if colored.shape[2] == 4:
            # An expression changes the character, never its backdrop: what a latent edit
            # draws beside the face (a shadow beside the neck) stays out.
            changed &= colored[..., 3] > 0
        if not changed.any():
            results.append(colored.copy())
            continue
        working = to_working_size(picture, size_px)
        own = colored.astype(np.float32)
        own[changed] = transfer_colours(working, original_working, colored, changed)
        feather = feather_px * max(1.0, size_px / WORKING_SIZE_PX)
        weight = cv2.GaussianBlur(changed.astype(np.float32), (0, 0), feather)[..., None]
        weight = np.where(changed[..., None], weight, 0.0)
        mixed = colored.astype(np.float32) * (1.0 - weight) + own * weight
        results.append(np.clip(mixed + 0.5, 0, 255).astype(np.uint8))
    return results
