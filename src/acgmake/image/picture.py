"""Reading a user's or a stage's picture file: one place that says what a bad one is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: The most pixels a picture may have (a 5000x5000 square, a 6000x4000 photo). Colorizing takes
#: about 120 bytes a pixel, so this keeps it under 3 GB; a PNG of a few hundred KB can declare
#: 9000x9000 pixels (10 GB). Checked from the file's header, before the pixels are decoded.
MAX_PICTURE_PIXELS = 25_000_000


def read_picture(
    path: Path, what: str, *, max_pixels: int = MAX_PICTURE_PIXELS
) -> tuple[np.ndarray, dict[str, Any]]:
    """The picture at ``path`` as uint8 RGB, or RGBA when it has transparency, and its
    PNG text and other info. UserError naming ``what`` it should be when it is not one, or
    when it has more than ``max_pixels`` pixels (a strip of N pictures may pass N times
    :data:`MAX_PICTURE_PIXELS`)."""
    from PIL import Image

    from acgmake.errors import UserError

    def too_large(size: str) -> UserError:
        return UserError(
            f"the {what} {path} is {size}; acgmake reads pictures of at most "
            f"{max_pixels / 1e6:g} megapixels (e.g. {_square(max_pixels)}) — scale it down "
            "first (line art needs no more than 4096x4096)"
        )

    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise too_large(f"{width}x{height} pixels ({width * height / 1e6:.0f} megapixels)")
            image.load()
            if image.mode in ("I", "I;16", "I;16L", "I;16B", "F"):
                # 16-bit or float grey (a scanner's or a painting program's export): PIL's
                # conversion to RGB clips it to white, so bring it to 8 bits here.
                image = Image.fromarray(_eight_bits(np.asarray(image)))
            clear = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            return np.asarray(image.convert("RGBA" if clear else "RGB")), dict(image.info)
    except Image.DecompressionBombError:  # PIL's own limit, far above ours
        raise too_large(f"over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels") from None
    except (OSError, ValueError) as error:
        raise UserError(
            f"cannot read the {what} {path}: it is not an image acgmake can open ({error}); "
            "give a PNG or JPEG"
        ) from None


def _eight_bits(grey: np.ndarray) -> np.ndarray:
    """A 16-bit, 32-bit or float grey picture as uint8: 0..65535 (or 0..1 for floats, or
    0..255 when nothing is above it) to 0..255."""
    values = np.nan_to_num(grey.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    top = float(values.max()) if values.size else 0.0
    full = 1.0 if grey.dtype.kind == "f" and top <= 1.0 else 255.0 if top <= 255 else 65535.0
    return np.clip(np.round(values * (255.0 / full)), 0, 255).astype(np.uint8)


def _square(pixels: int) -> str:
    side = int(pixels**0.5) // 100 * 100
    return f"{side}x{side}"


#: An expressions strip holds seven pictures side by side, each within the picture limit.
STRIP_PIXELS = 7 * MAX_PICTURE_PIXELS
