"""Line art from a picture: XDoG line extraction and cleaning.

The eXtended Difference of Gaussians (Winnemöller, Kyprianidis and Olsen, "XDoG: An eXtended
difference-of-Gaussians compendium", Computers & Graphics 36(6), 2012) turns a picture into
ink lines: the difference of two blurs is large on the dark side of every edge, and a soft
threshold (a ``tanh`` ramp) turns that into strokes with antialiased borders. Colorize uses
the lines as the barriers its hint colours flood up to, and draws them back on top.

Every image here is a numpy array; lines are float32 in [0, 1] with 1 = paper, 0 = ink.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image
from scipy import ndimage

#: PNG text a stage writes into character.png when it turned the character into line art (a
#: sketch simplifier does): colorize then colours it as line art, whatever face.json says.
LINE_ART_KEY = "acgmake:line-art"

#: Generated characters are 64-128 px; lines extracted at that size are blocky, so pictures
#: are enlarged to this many pixels on the longer side first.
WORKING_SIZE_PX = 512


def to_gray(image: np.ndarray) -> np.ndarray:
    """The image's luminance as float32 in [0, 1] (RGB by Rec. 601 weights, RGBA on white)."""
    image = np.asarray(image)
    scale = 255.0 if image.dtype == np.uint8 else 1.0
    pixels = image.astype(np.float32) / scale
    if pixels.ndim == 2:
        return pixels
    if pixels.shape[2] == 4:
        alpha = pixels[..., 3:4]
        pixels = pixels[..., :3] * alpha + (1.0 - alpha)
    return pixels[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def to_working_size(image: np.ndarray, size_px: int = WORKING_SIZE_PX) -> np.ndarray:
    """``image`` enlarged (Lanczos) so its longer side is ``size_px``; larger images unchanged.

    Returns a new uint8 array (or the same array when no enlarging is needed).
    """
    height, width = image.shape[:2]
    longer = max(height, width)
    if longer >= size_px:
        return image
    factor = size_px / longer
    new_size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.asarray(Image.fromarray(image).resize(new_size, Image.LANCZOS))


def xdog(
    image: np.ndarray,
    *,
    sigma: float = 1.4,
    k: float = 1.6,
    tau: float = 0.995,
    epsilon: float = -0.004,
    phi: float = 150.0,
) -> np.ndarray:
    """XDoG line drawing of ``image`` (RGB/RGBA/gray, uint8 or float in [0, 1]).

    ``sigma`` is the blur (in pixels) that sets the line width, ``k`` the ratio of the second
    blur, ``tau`` how much of the wider blur is taken away (1 gives a pure difference of
    Gaussians: edges only; below 1 dark areas fill in like ink), ``epsilon`` the level under
    which a pixel becomes ink and ``phi`` the steepness of the ramp (higher = harder lines).
    The defaults suit a portrait at :data:`WORKING_SIZE_PX`: lines about 3 px wide, flat
    areas of any colour left as paper.

    Returns float32 in [0, 1], the image's shape without channels, 1 = paper and 0 = ink.
    """
    gray = to_gray(image)
    # Stretch contrast first so the thresholds mean the same on dull and vivid pictures.
    low, high = np.percentile(gray, (1, 99))
    if high - low > 1e-3:
        gray = np.clip((gray - low) / (high - low), 0.0, 1.0)
    narrow = cv2.GaussianBlur(gray, (0, 0), sigma)
    wide = cv2.GaussianBlur(gray, (0, 0), sigma * k)
    difference = narrow - tau * wide
    lines = np.where(difference >= epsilon, 1.0, 1.0 + np.tanh(phi * (difference - epsilon)))
    return lines.astype(np.float32)


def clean_lines(
    lines: np.ndarray,
    *,
    threshold: float = 0.5,
    min_speckle_px: int = 24,
    close_gaps_px: int = 3,
) -> np.ndarray:
    """A boolean ink mask from XDoG ``lines`` (True = ink).

    Ink is where ``lines`` is below ``threshold``; blobs of fewer than ``min_speckle_px``
    pixels are dropped (noise, not strokes); gaps in a stroke up to ``close_gaps_px + 1``
    pixels wide are closed (a morphological closing) so that regions seal and hint colours
    cannot leak through (0 = off). The default closes a one-pixel gap of a 128 px picture
    enlarged to :data:`WORKING_SIZE_PX`.
    """
    ink = lines < threshold
    if close_gaps_px > 0:
        disk = _disk(close_gaps_px)
        # Pad so that strokes ending at the border do not shrink away from it.
        padded = np.pad(ink, close_gaps_px, mode="edge")
        ink = ndimage.binary_closing(padded, structure=disk)[
            close_gaps_px:-close_gaps_px, close_gaps_px:-close_gaps_px
        ]
    if min_speckle_px > 0:
        ink = remove_specks(ink, min_speckle_px)
    return ink


def remove_specks(mask: np.ndarray, min_px: int) -> np.ndarray:
    """``mask`` without its 8-connected blobs smaller than ``min_px`` pixels."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if count == 0:
        return mask.copy()
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_px
    keep[0] = False
    return keep[labels]


def soft_lines(lines: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """The antialiased XDoG ``lines`` kept only where the cleaned ``ink`` mask has strokes.

    Specks dropped by :func:`clean_lines` become paper; the soft edges of kept strokes stay.
    Returns float32 in [0, 1], 1 = paper.
    """
    near_ink = ndimage.binary_dilation(ink, structure=np.ones((3, 3), bool))
    # Closed gaps are ink in the mask but paper in the XDoG image: draw them too.
    kept = np.where(ink, np.minimum(lines, 0.25), np.where(near_ink, lines, 1.0))
    return kept.astype(np.float32)


def line_art(
    image: np.ndarray, *, size_px: int = WORKING_SIZE_PX, **xdog_options: float
) -> tuple[np.ndarray, np.ndarray]:
    """Soft lines and the ink mask of ``image`` at working size (see :func:`to_working_size`).

    The blur, the speck size and the gaps closed grow with the enlargement: a 64 px picture's
    one-pixel lines, noise and gaps are twice as wide at working size as a 128 px picture's.
    ``xdog_options`` override :func:`xdog`'s. Returns ``(lines, ink)``: float32 lines
    (1 = paper) and a boolean mask (True = ink), both at working size.
    """
    image = np.asarray(image)
    working = to_working_size(image, size_px)
    scale = enlargement(image, working)
    relative = float(np.clip(scale / 4, 0.75, 2.0))  # the defaults are tuned at 4x (128 px)
    # The blur grows with the enlargement: a soft 64 px picture needs it for its lines to
    # come out whole (at some cost in detail: small eyes come out as blobs of ink).
    lines = xdog(working, **{"sigma": 1.4 * relative, **xdog_options})
    ink = clean_lines(
        lines,
        min_speckle_px=round(24 * max(relative, 1.0) ** 2),
        close_gaps_px=max(3, round(0.75 * scale)),
    )
    return soft_lines(lines, ink), ink


def enlargement(original: np.ndarray, working: np.ndarray) -> float:
    """How many working pixels wide one pixel of the original picture became."""
    return max(working.shape[:2]) / max(original.shape[:2])


def _disk(radius: int) -> np.ndarray:
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return x * x + y * y <= radius * radius


# ---------------------------------------------------------------------------------------------
# Scans and drawings: ink on paper


#: How line art is read: ``xdog`` for coloured or photo-like pictures (lines are found),
#: ``scan`` for drawings and scans (the ink is taken as it is), ``auto`` picks one.
LINE_MODES = ("auto", "xdog", "scan")


def is_line_art(image: np.ndarray) -> bool:
    """Whether ``image`` looks like ink on paper rather than a coloured picture.

    Line art is grey (almost no pixel has colour) with mostly light paper, or is drawn on a
    transparent layer (as digital line art often is).
    """
    image = np.asarray(image)
    if image.ndim == 2:
        return True
    if image.shape[2] == 4 and np.mean(image[..., 3] < 128) > 0.2:
        return True
    rgb = image[..., :3].astype(np.int16)
    chroma = rgb.max(axis=2) - rgb.min(axis=2)
    gray = to_gray(image)
    return bool(np.percentile(chroma, 97) < 40 and np.mean(gray > 0.6) > 0.5)


def flatten_paper(gray: np.ndarray, *, line_px: int = 15) -> np.ndarray:
    """``gray`` divided by its paper: the light level around each pixel, lines left out.

    A scan's paper is rarely evenly lit; after this, paper is about 1 everywhere and ink
    keeps its darkness relative to the paper around it. ``line_px`` is wider than the
    widest line. Returns float32 in [0, 1].
    """
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (line_px, line_px))
    paper = cv2.GaussianBlur(cv2.dilate(gray, kernel), (0, 0), line_px / 2)
    return np.clip(gray / np.maximum(paper, 0.05), 0.0, 1.0).astype(np.float32)


def scan_line_art(
    image: np.ndarray,
    *,
    size_px: int = WORKING_SIZE_PX,
    threshold: float | None = None,
    min_speckle_px: int | None = None,
    close_gaps_px: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Soft lines and the ink mask of a drawing or scan, at working size.

    The paper is flattened (:func:`flatten_paper`), ink is what is darker than ``threshold``
    (default: Otsu's threshold of the page, kept within 0.45..0.85), blobs smaller than
    ``min_speckle_px`` (dust, paper grain) are dropped and gaps up to ``close_gaps_px + 1``
    pixels are closed so regions seal. Sizes default to values that grow with the
    enlargement of a small drawing. The lines keep the drawing's own antialiased strokes.
    Returns ``(lines, ink)`` as :func:`line_art` does.
    """
    image = np.asarray(image)
    working = to_working_size(image, size_px)
    scale = enlargement(image, working)
    gray = flatten_paper(to_gray(working))
    if threshold is None:
        level, _ = cv2.threshold(
            np.round(gray * 255).astype(np.uint8), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU
        )
        threshold = float(np.clip(level / 255.0, 0.45, 0.85))
    if min_speckle_px is None:
        min_speckle_px = round(12 * max(scale, 1.0) ** 2)
    if close_gaps_px is None:
        close_gaps_px = max(1, round(0.75 * scale))
    ink = clean_lines(
        gray, threshold=threshold, min_speckle_px=min_speckle_px, close_gaps_px=close_gaps_px
    )
    # Paper stays paper: the stroke's soft edge is kept next to kept ink only.
    lines = soft_lines(np.clip((gray - 0.15) / (threshold + 0.1 - 0.15), 0.0, 1.0), ink)
    return lines, ink


def extract_line_art(
    image: np.ndarray, *, mode: str = "auto", size_px: int = WORKING_SIZE_PX
) -> tuple[np.ndarray, np.ndarray, str]:
    """Lines and ink of ``image`` by ``mode`` (see :data:`LINE_MODES`), checked for sense.

    Returns ``(lines, ink, mode used)``. Raises UserError for a page with no lines (empty,
    or one colour all over) or one that is mostly ink (all black, or a photo read as a scan).
    """
    from acgmake.errors import UserError

    image = np.asarray(image)
    if mode not in LINE_MODES:
        raise UserError(f"unknown line mode {mode!r}; choose one of {', '.join(LINE_MODES)}")
    gray = to_gray(image)
    if float(gray.max()) < 0.12:
        raise UserError(
            "the picture is all black: there is no paper to colour; give line art drawn dark "
            "on a light page"
        )
    dark = float(np.mean(gray < 0.2))
    if dark > 0.6:
        raise UserError(
            f"the picture is mostly black ({dark:.0%} of it); give line art drawn dark on a "
            "light page"
        )
    if float(gray.max() - gray.min()) < 0.04:
        raise UserError(
            "the picture is empty (one flat colour, no lines); give line art or a character picture"
        )
    if mode == "auto":
        mode = "scan" if is_line_art(image) else "xdog"
    lines, ink = (scan_line_art if mode == "scan" else line_art)(image, size_px=size_px)
    share = float(ink.mean())
    if share < 0.002:
        raise UserError(
            f"no lines found in the picture ({mode} line extraction); give line art drawn "
            "darker, or try --line-art xdog or --line-art scan"
        )
    if share > 0.5:
        raise UserError(
            f"the picture is mostly ink ({share:.0%} of it is dark); give line art drawn "
            "dark on a light page, or try --line-art xdog for a coloured picture"
        )
    return lines, ink, mode
