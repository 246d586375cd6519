"""acgmake-simplify: a rough pencil sketch made into clean line art, by the method of
"Learning to Simplify" (Simo-Serra, Iizuka, Sasaki and Ishikawa, SIGGRAPH 2016).

``acgmake simplify rough.png -o clean.png`` writes dark, clean lines on white at the sketch's
size: a fully convolutional network (:mod:`acgmake_simplify.model`, trained by this package's
own command on acgmake's drawn set roughened as a pencil would draw it) keeps the strokes that
are lines and drops the doubled strokes, wobble, smudges, construction lines and paper. The
stage refines ``character``: in ``acgmake song --character sketch.png --also simplify`` the
user's rough sketch is read as line art (a coloured picture's lines found by XDoG first),
cleaned and marked as line art (PNG text ``acgmake:line-art``), and colorize then colours the
clean lines. Its held-out precision and recall are in the README.
"""

from __future__ import annotations

import click

from acgmake import Param, Stage, StageContext, UserError, hookimpl

__version__ = "0.1.0"

#: The side the network reads a sketch at by default: its training portraits were 256-384 px,
#: so strokes have the width it knows there.
DEFAULT_SIZE_PX = 384
#: PNG text that says how character.png was enlarged (acgmake.stages.upscale.UPSCALER_KEY):
#: kept, so that the expressions strip is enlarged to the same size.
UPSCALER_KEY = "acgmake:upscaler"


def simplify_picture(picture, *, threshold: float = 0.5, size_px: int = DEFAULT_SIZE_PX,
                     keep_size: bool = True):  # fmt: skip
    """Clean line art of ``picture`` (uint8 grey, RGB or RGBA: a rough sketch, or a coloured
    picture whose lines XDoG finds first): uint8 grey, 255 = paper, 0 = line.

    The network reads the picture with its longer side at ``size_px`` (0: as it is), tile by
    tile; a pixel is line where the network is more than ``threshold`` sure, with a soft edge.
    With ``keep_size`` the result has the picture's own size, else the working size.
    """
    import cv2
    import numpy as np

    from acgmake.image.lineart import is_line_art, line_art, to_gray
    from acgmake_simplify.model import load, simplify_gray

    picture = np.asarray(picture)
    height, width = picture.shape[:2]
    longer = max(height, width)
    scale = size_px / longer if size_px else 1.0
    working = (max(8, round(width * scale)), max(8, round(height * scale)))
    if picture.ndim == 3 and not is_line_art(picture):
        # A coloured picture: its lines, as colorize would find them, are the rough.
        gray, _ = line_art(picture, size_px=max(working))
    else:
        gray = to_gray(picture)
    if gray.shape[::-1] != working:
        shrinking = gray.shape[1] > working[0]
        gray = cv2.resize(gray, working, interpolation=cv2.INTER_AREA if shrinking
                          else cv2.INTER_CUBIC)  # fmt: skip
    ink = simplify_gray(load(), np.ascontiguousarray(gray, dtype=np.float32))
    if keep_size and ink.shape != (height, width):
        ink = cv2.resize(ink, (width, height), interpolation=cv2.INTER_CUBIC)
    # A ramp 0.2 wide around the threshold: crisp lines with antialiased edges.
    line = np.clip((ink - threshold) / 0.2 + 0.5, 0.0, 1.0)
    return np.round(255.0 * (1.0 - line)).astype(np.uint8)


def simplify(ctx: StageContext) -> None:
    from PIL import Image, PngImagePlugin

    from acgmake.image.lineart import LINE_ART_KEY
    from acgmake.image.picture import read_picture
    from acgmake_simplify.model import WEIGHTS

    picture, info = read_picture(ctx.input("character"), "sketch or character picture")
    ctx.use_asset(WEIGHTS, name="acgmake-simplify network", license="MIT",
                  credit="Sketch simplification after Simo-Serra et al., Learning to Simplify "
                  "(SIGGRAPH 2016)")  # fmt: skip
    clean = simplify_picture(
        picture,
        threshold=ctx.params["simplify_threshold"],
        size_px=ctx.params["simplify_size"],
        keep_size=ctx.params["simplify_keep_size"],
    )
    text = PngImagePlugin.PngInfo()
    text.add_text(LINE_ART_KEY, "simplified")  # colorize colours it as line art
    if isinstance(info.get(UPSCALER_KEY), str):
        text.add_text(UPSCALER_KEY, info[UPSCALER_KEY])
    Image.fromarray(clean).save(ctx.output("character"), format="PNG", pnginfo=text)


def _check_size(value: int) -> None:
    if value and not 64 <= value <= 4096:
        raise UserError(f"--simplify-size must be 0 (as it is) or 64 to 4096 pixels; got {value}")


@hookimpl
def register_stages(register):
    register(
        Stage(
            "simplify",
            cost_s=1.0,
            needs=("character",),
            makes=("character",),
            run=simplify,
            version="1",
            optional=True,
            params=(
                Param(
                    "simplify_threshold",
                    0.5,
                    "how sure the network must be that a pixel "
                    "is line (0.05-0.95): lower keeps fainter strokes, higher only the surest",
                    type=click.FloatRange(0.05, 0.95),
                ),
                Param(
                    "simplify_size",
                    DEFAULT_SIZE_PX,
                    "pixels on the longer side the "
                    "network reads the sketch at (0: as it is); it learnt on 256-384 px "
                    "portraits, whose strokes are 2-5 px wide",
                    type=int,
                    check=_check_size,
                ),
                Param(
                    "simplify_keep_size",
                    True,
                    "write the clean lines at the sketch's own size (else at --simplify-size)",
                ),
            ),
            help="Clean line art from a rough pencil sketch (Learning to Simplify): the "
            "strokes that are lines, once each, dark on white. Example: acgmake simplify "
            "rough.png -o clean.png; your sketch sings: acgmake song lyrics.txt --character "
            "sketch.png --also simplify",
        )
    )
