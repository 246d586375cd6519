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


#: How much a channel must change for a pixel to count as changed (:func:`changed_part`).
CHANGE_THRESHOLD = 28


def changed_part(
    picture: np.ndarray,
    rest: np.ndarray,
    *,
    size_px: int = WORKING_SIZE_PX,
    threshold: int = CHANGE_THRESHOLD,
    margin_px: int = 10,
    scale: float | None = None,
) -> np.ndarray:
    """Where ``picture`` differs from ``rest`` (same size, uint8), at working size.

    A pixel differs when a channel changes by more than ``threshold``; specks are dropped,
    holes filled, and the part grown by ``margin_px`` (of a 512 px picture; in proportion
    for a larger one: ``scale`` says how much larger when the pictures are a crop of it) so
    it takes in the lines around it. Returns a bool mask.
    """
    a = to_working_size(np.ascontiguousarray(picture[..., :3]), size_px).astype(np.int16)
    b = to_working_size(np.ascontiguousarray(rest[..., :3]), size_px).astype(np.int16)
    if scale is None:
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
    scale: float | None = None,
    origin: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """The colorized colour of each ``where`` pixel of ``picture``, taken from ``rest``.

    Each pixel is matched to the pixels of the rest picture most like it in colour (CIELAB)
    and near it (``position_weight`` Lab units per pixel apart, within ``reach_px`` of the
    changed part; both in pixels of a 512 px picture, in proportion for a larger one, whose
    rest pixels are sampled as densely as a 512 px picture's), and gets the mean of the
    colours they were painted in ``rest_colored``. All three pictures are at working size;
    returns RGBA float32 for the ``where`` pixels. When the pictures are a crop, ``scale`` is
    the whole picture's size over 512 px and ``origin`` the crop's top left corner in it.
    """
    from scipy.spatial import cKDTree

    height, width = where.shape
    if scale is None:
        scale = max(height, width) / WORKING_SIZE_PX
    near = _grown(where, reach_px * scale)
    # Every ``scale``-th row and column of the whole picture (rounded: a 768 px picture
    # keeps two of three).
    top, left = origin
    rows = np.unique(np.round(np.arange(0, top + height, max(scale, 1.0))).astype(int)) - top
    columns = np.unique(np.round(np.arange(0, left + width, max(scale, 1.0))).astype(int)) - left
    grid = np.ix_(rows[(rows >= 0) & (rows < height)], columns[(columns >= 0) & (columns < width)])
    sampled = np.zeros_like(near)
    sampled[grid] = near[grid]
    yy, xx = np.mgrid[top : top + height, left : left + width]

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
    original = np.ascontiguousarray(original[..., :3])
    # At working size already (the colorizer's size), a picture is worked on in a crop around
    # what changed, wide enough for every step to see all it would in the whole picture
    # (the same result; a mouth frame is a tenth of the picture).
    crops = max(height, width) >= size_px and colored.shape[:2] == (height, width)
    scale = max(height, width, size_px) / WORKING_SIZE_PX
    reach = int(np.ceil(_CROP_REACH_PX * max(scale, 1.0)))
    feather = feather_px * max(1.0, size_px / WORKING_SIZE_PX)
    results = []
    for picture in pictures:
        picture = np.ascontiguousarray(np.asarray(picture)[..., :3])
        if picture.shape[:2] != (height, width):  # a plugin resized character.png
            picture = cv2.resize(picture, (width, height), interpolation=cv2.INTER_AREA)
        if not crops:  # the whole picture, enlarged to the colorizer's size
            results.append(
                _colorize_part(
                    picture,
                    original,
                    colored,
                    size_px=size_px,
                    scale=scale,
                    origin=(0, 0),
                    feather_px=feather,
                )
            )
            continue
        # What changed_part counts as different (an enlarged strip differs from the rest
        # frame by a little around the mouth's box, where the network ran again).
        differs = np.abs(picture.astype(np.int16) - original).max(axis=2) > CHANGE_THRESHOLD
        if not differs.any():
            results.append(colored.copy())
            continue
        rows, columns = np.flatnonzero(differs.any(axis=1)), np.flatnonzero(differs.any(axis=0))
        top, left = max(int(rows[0]) - reach, 0), max(int(columns[0]) - reach, 0)
        bottom = min(int(rows[-1]) + 1 + reach, height)
        right = min(int(columns[-1]) + 1 + reach, width)
        result = colored.copy()
        result[top:bottom, left:right] = _colorize_part(
            picture[top:bottom, left:right],
            original[top:bottom, left:right],
            colored[top:bottom, left:right],
            size_px=1,  # a crop is at working size already, not a small picture to enlarge
            scale=scale,
            origin=(top, left),
            feather_px=feather,
        )
        results.append(result)
    return results


#: How far beyond the pixels that differ a step of :func:`_colorize_part` looks, at most, in
#: pixels of a 512 px picture: the mask's closing (4) and growing (10), the colour search's
#: reach (48) and blur (3 sigma of 1), the feather (4 sigma of 2), and to spare.
_CROP_REACH_PX = 80


def _colorize_part(
    picture: np.ndarray,
    original: np.ndarray,
    colored: np.ndarray,
    *,
    size_px: int,
    scale: float,
    origin: tuple[int, int],
    feather_px: float,
) -> np.ndarray:
    """One expression's pixels (of a crop at ``origin`` of a picture ``scale`` x 512 px, or
    the whole picture, enlarged to ``size_px``) coloured as :func:`colorize_expressions`
    says, with a ``feather_px`` soft edge."""
    changed = changed_part(picture, original, size_px=size_px, scale=scale)
    if colored.shape[2] == 4:
        # An expression changes the character, never its backdrop: what a latent edit
        # draws beside the face (a shadow beside the neck) stays out.
        changed &= colored[..., 3] > 0
    if not changed.any():
        return colored.copy()
    working = to_working_size(picture, size_px)
    original_working = to_working_size(original, size_px)
    own = colored.astype(np.float32)
    own[changed] = transfer_colours(
        working, original_working, colored, changed, scale=scale, origin=origin
    )
    weight = cv2.GaussianBlur(changed.astype(np.float32), (0, 0), feather_px)[..., None]
    weight = np.where(changed[..., None], weight, 0.0)
    mixed = colored.astype(np.float32) * (1.0 - weight) + own * weight
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
