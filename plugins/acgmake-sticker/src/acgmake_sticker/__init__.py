"""acgmake-sticker: a stage that gives the colored character a sticker-style outline."""

from __future__ import annotations

import click

from acgmake import Param, Stage, hookimpl

__version__ = "0.1.0"


def sticker(ctx) -> None:
    """Draw a soft-edged outline of ``sticker_px`` pixels around the character's shape."""
    import cv2
    import numpy as np
    from PIL import Image, ImageFilter

    width_px = ctx.params["sticker_px"]
    colour = ctx.params["sticker_colour"]
    with Image.open(ctx.input("colored")) as image:
        character = image.convert("RGBA")
    shape = np.asarray(character.getchannel("A"))
    if width_px:
        # Grow the shape by the outline's width with a round brush (a dilation by a disc:
        # the outline stays as wide round corners and points, as a cut sticker's does).
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width_px + 1,) * 2)
        shape = cv2.dilate(shape, disc)
    grown = Image.fromarray(shape).filter(ImageFilter.GaussianBlur(0.6))  # a soft edge
    outline = Image.new("RGBA", character.size, colour)
    outline.putalpha(grown)
    outline.alpha_composite(character)
    if not np.asarray(outline.getchannel("A")).any():
        from acgmake.errors import UserError

        raise UserError("colored.png is fully transparent: there is no character to outline")
    outline.save(ctx.output("colored"), format="PNG")


@hookimpl
def register_stages(register):
    register(
        Stage(
            "sticker",
            cost_s=0.5,
            needs=("colored",),
            makes=("colored",),
            run=sticker,
            version="2",  # 2: a round brush
            params=(
                Param(
                    "sticker_px",
                    12,
                    "Width of the outline in pixels of colored.png (0: none).",
                    type=click.IntRange(0, 64),
                ),
                Param(
                    "sticker_colour",
                    "white",
                    "Colour of the outline: a name or #rrggbb.",
                ),
            ),
            help="Outline the colored character like a sticker (white by default).",
        )
    )
