"""The clip's background from the user's own picture: read safely, cropped to the frame, and
drawn in one of three looks.

- ``photo``: the picture as it is, a touch blurred and hazed so the character stands out;
- ``soft``: blurred and lightened, a dreamy pastel wash;
- ``cartoon``: an anime-style backdrop from a photo, as CartoonGAN-like tools aim for:
  edge-preserving smoothing flattens texture, colours are quantised to a few flat tones
  (k-means in Lab) and the outlines are inked in a dark shade of the colour they border.

Every function takes and returns RGB uint8 arrays; the work runs once per clip (well under
2 s for 1920x1080 on one core), never per frame.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import cv2
import numpy as np

from acgmake.errors import UserError
from acgmake.pipeline import user_path

STYLES = ("photo", "soft", "cartoon")
#: A background picture larger than this (file or pixels) is refused before it is decoded.
MAX_BACKGROUND_BYTES = 50 * 1024 * 1024
MAX_BACKGROUND_PIXELS = 64_000_000
FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WebP", "MPO": "JPEG"}  # MPO: phones' JPEG


def read_background(path: Path, *, at_least: tuple[int, int] = (0, 0)) -> np.ndarray:
    """The picture at ``path`` (PNG, JPEG or WebP) as RGB uint8, or RGBA if it has
    transparency, turned upright as its EXIF orientation says.

    A JPEG is decoded at the smallest power-of-two reduction still covering ``at_least``
    (width, height). Raises UserError, with what to do, for a missing file, a file over
    50 MB, a picture over 64 megapixels, or a file that is not such a picture.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        with _opened(path) as image:
            if image.format in ("JPEG", "MPO") and min(at_least) > 0:
                # Cover the frame either way round (the EXIF turn may swap width and height).
                side = max(at_least)
                image.draft("RGB", (side, side))
            image = ImageOps.exif_transpose(image)
            has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            return np.asarray(image.convert("RGBA" if has_alpha else "RGB"))
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError) as error:
        raise _unreadable(path, error) from None


def _unreadable(path: Path, error: Exception) -> UserError:
    """The one line for a background picture that cannot be opened or decoded."""
    from PIL import UnidentifiedImageError

    if isinstance(error, OSError) and not isinstance(error, UnidentifiedImageError):
        return UserError(f"cannot read background picture {path}: {error}")
    return UserError(
        f"background picture {path} is not a picture acgmake can read; give a PNG, "
        "JPEG or WebP picture"
    )


def check_background(path: str | Path) -> None:
    """UserError now, before any stage runs, for a background that :func:`read_background`
    would refuse (reads only the file's header). An empty path is no background."""
    if str(path):
        with _opened(user_path(path)):
            pass


@contextlib.contextmanager
def _opened(path: Path):
    """The picture at ``path`` opened (header only) and checked: there, at most 50 MB and
    64 megapixels, PNG, JPEG or WebP."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise UserError(f"background picture {path} does not exist; check the path")
    size = path.stat().st_size
    if size > MAX_BACKGROUND_BYTES:
        raise UserError(
            f"background picture {path} is {size / 1048576:.0f} MB; it can be at most "
            f"{MAX_BACKGROUND_BYTES // 1048576} MB — save it smaller (a JPEG of 4K or less)"
        )
    try:
        image = Image.open(path)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError) as error:
        raise _unreadable(path, error) from None
    with image:
        if image.format not in FORMATS:
            raise UserError(
                f"background picture {path} is {image.format or 'an unknown'} format; "
                "give a PNG, JPEG or WebP picture"
            )
        width, height = image.size
        if width * height > MAX_BACKGROUND_PIXELS:
            raise UserError(
                f"background picture {path} is {width}x{height} pixels "
                f"({width * height / 1e6:.0f} megapixels); it can be at most "
                f"{MAX_BACKGROUND_PIXELS // 1_000_000} megapixels — scale it down first"
            )
        yield image


def cover(picture: np.ndarray, width: int, height: int) -> np.ndarray:
    """``picture`` scaled to cover ``width`` x ``height`` and cropped about its centre."""
    rows, columns = picture.shape[:2]
    factor = max(width / columns, height / rows)
    # Crop the source to the frame's shape first, then resize just that.
    crop_w, crop_h = min(columns, width / factor), min(rows, height / factor)
    x0, y0 = round((columns - crop_w) / 2), round((rows - crop_h) / 2)
    part = picture[y0 : y0 + round(crop_h), x0 : x0 + round(crop_w)]
    if part.shape[1] == width and part.shape[0] == height:
        return np.ascontiguousarray(part)
    method = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    return cv2.resize(part, (width, height), interpolation=method)


def photo(picture: np.ndarray) -> np.ndarray:
    """The picture a touch out of focus and hazed (lower contrast, a little darker), so a
    character in front of it stands out."""
    short = min(picture.shape[:2])
    blurred = cv2.GaussianBlur(picture, (0, 0), max(0.6, short * 0.0018))
    mean = np.asarray(cv2.mean(blurred)[:3], np.float32)
    # 85% of the contrast, about the picture's mean colour, and 6% darker.
    hazed = (blurred.astype(np.float32) * 0.85 + mean * 0.15) * 0.94
    return np.clip(hazed + 0.5, 0, 255).astype(np.uint8)


def soft(picture: np.ndarray) -> np.ndarray:
    """The picture well out of focus and lightened: a pastel wash of its colours."""
    short = min(picture.shape[:2])
    small = cv2.resize(picture, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    blurred = cv2.GaussianBlur(small, (0, 0), max(1.0, short * 0.004))
    blurred = cv2.resize(blurred, picture.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    return cv2.addWeighted(blurred, 0.7, np.full_like(blurred, 255), 0.3, 0.0)


def cartoon(
    picture: np.ndarray, *, colours: int = 12, work_px: int = 960, seed: int = 0
) -> np.ndarray:
    """``picture`` (RGB uint8) drawn as an anime-style backdrop of the same size: flat
    areas of ``colours`` tones with dark ink outlines.

    The slow steps run on a copy at most ``work_px`` wide or high: two passes of a
    bilateral filter (edge-preserving smoothing), k-means on the smoothed colours in Lab,
    and Canny edges. At full size each pixel takes its nearest tone (a lookup table of Lab,
    so the borders stay sharp) and the edges, thickened, are inked over in a dark shade of
    the tone under them.
    """
    rows, columns = picture.shape[:2]
    factor = min(1.0, work_px / max(rows, columns))
    small = picture
    if factor < 1:
        size = (max(1, round(columns * factor)), max(1, round(rows * factor)))
        small = cv2.resize(picture, size, interpolation=cv2.INTER_AREA)
    small = cv2.medianBlur(small, 3)  # the grain a bilateral filter would keep
    for _ in range(2):
        small = cv2.bilateralFilter(small, 9, 45, 6)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB)
    tones = _kmeans(lab.reshape(-1, 3).astype(np.float32), colours, seed=seed)
    # Anime backgrounds are a little more vivid than the photo: more chroma (a, b).
    tones[:, 1:] = np.clip((tones[:, 1:] - 128) * 1.15 + 128, 0, 255)
    # Where a gradient crosses from one tone to the next, a little blur keeps the border
    # smooth rather than ragged with the noise left in it.
    lab = cv2.GaussianBlur(lab, (0, 0), 1.2)
    full = lab if factor == 1 else cv2.resize(lab, (columns, rows), interpolation=cv2.INTER_LINEAR)
    labels = cv2.medianBlur(_nearest(full, tones), 5)  # no specks of a lone tone
    palette = cv2.cvtColor(tones.astype(np.uint8)[None], cv2.COLOR_LAB2RGB)[0]
    flat = palette[labels]
    ink = _ink(small, (columns, rows))
    dark = (flat.astype(np.float32) * 0.28).astype(np.uint8)
    weight = ink[..., None].astype(np.float32) / 255
    return (flat * (1 - weight) + dark * weight + 0.5).astype(np.uint8)


def _kmeans(points: np.ndarray, count: int, *, seed: int, iterations: int = 12) -> np.ndarray:
    """``count`` centres of ``points`` (n, 3) float32 by k-means (k-means++ start) on a
    sample of them; the same for the same seed."""
    rng = np.random.default_rng(seed)
    if len(points) > 20000:
        points = points[rng.choice(len(points), 20000, replace=False)]
    centres = [points[rng.integers(len(points))]]
    distance = ((points - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, count):
        total = distance.sum()
        pick = rng.choice(len(points), p=distance / total) if total > 0 else 0
        centres.append(points[pick])
        distance = np.minimum(distance, ((points - points[pick]) ** 2).sum(axis=1))
    centres = np.array(centres, np.float32)
    for _ in range(iterations):
        nearest = ((points[:, None, :] - centres[None]) ** 2).sum(axis=2).argmin(axis=1)
        for index in range(count):
            members = points[nearest == index]
            if len(members):
                centres[index] = members.mean(axis=0)
    return centres


def _nearest(lab: np.ndarray, tones: np.ndarray) -> np.ndarray:
    """The index of the nearest of ``tones`` for every pixel of ``lab`` (uint8 Lab), by a
    32x32x32 lookup table (fast at any size)."""
    grid = (np.arange(32, dtype=np.float32) * 8 + 4)[:, None]
    cells = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), axis=-1).reshape(-1, 3)
    table = ((cells[:, None, :] - tones[None]) ** 2).sum(axis=2).argmin(axis=1).astype(np.uint8)
    quantised = (lab >> 3).astype(np.int32)
    index = (quantised[..., 0] << 10) | (quantised[..., 1] << 5) | quantised[..., 2]
    return table[index]


def _ink(smoothed: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Ink lines for a picture of ``size`` (width, height) from its smoothed copy: Canny
    edges of its lightness and colour without the short specks, thickened and softened;
    uint8 0 (none) .. 255 (ink)."""
    # Edges of lightness and of hue: a yellow wall against a pale sky differs in hue more.
    lab = cv2.cvtColor(smoothed, cv2.COLOR_RGB2LAB)
    grey = lab[..., 0]
    edges = cv2.Canny(grey, 30, 90, L2gradient=True)
    for channel in (1, 2):
        chroma = cv2.convertScaleAbs(lab[..., channel], alpha=2.0, beta=-128.0)
        edges |= cv2.Canny(chroma, 30, 90, L2gradient=True)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(edges, connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= max(8, round(min(grey.shape) * 0.02))
    keep[0] = False
    edges = np.where(keep[labels], 255, 0).astype(np.uint8)
    width, height = size
    scale = width / grey.shape[1]
    if scale != 1:
        edges = cv2.resize(edges, size, interpolation=cv2.INTER_LINEAR)
    thickness = max(1, round(min(width, height) / 700))
    edges = cv2.dilate(edges, np.ones((thickness, thickness), np.uint8))
    edges = cv2.GaussianBlur(edges, (0, 0), 0.6)
    return cv2.convertScaleAbs(edges, alpha=1.6)


def backdrop(
    picture: np.ndarray, *, style: str = "photo", under: np.ndarray, seed: int = 0
) -> np.ndarray:
    """The background of a clip: ``picture`` (RGB or RGBA uint8) cropped to cover
    ``under`` (the frame's own background, RGB uint8, whose size it takes), drawn in
    ``style`` (:data:`STYLES`), and laid over ``under`` where it is transparent."""
    if style not in STYLES:
        raise UserError(f"--background-style must be one of {', '.join(STYLES)}; got {style!r}")
    height, width = under.shape[:2]
    picture = cover(picture, width, height)
    alpha = picture[..., 3:] if picture.shape[2] == 4 else None
    rgb = np.ascontiguousarray(picture[..., :3])
    if style == "cartoon":
        rgb = cartoon(rgb, seed=seed)
    elif style == "soft":
        rgb = soft(rgb)
    else:
        rgb = photo(rgb)
    if alpha is None:
        return rgb
    weight = alpha.astype(np.float32) / 255
    return (rgb * weight + under * (1 - weight) + 0.5).astype(np.uint8)
