"""Reading a user's or a stage's picture file: one place that says what a bad one is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def read_picture(path: Path, what: str) -> tuple[np.ndarray, dict[str, Any]]:
    """The picture at ``path`` as uint8 RGB, or RGBA when it has transparency, and its
    PNG text and other info. UserError naming ``what`` it should be when it is not one."""
    from PIL import Image

    from acgmake.errors import UserError

    try:
        with Image.open(path) as image:
            image.load()
            clear = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            return np.asarray(image.convert("RGBA" if clear else "RGB")), dict(image.info)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise UserError(
            f"cannot read the {what} {path}: it is not an image acgmake can open ({error}); "
            "give a PNG or JPEG"
        ) from None
