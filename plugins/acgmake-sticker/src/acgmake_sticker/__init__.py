"""acgmake-upscale: a stage that enlarges the character image before it is colorized."""

from __future__ import annotations

import click

from acgmake import Param, Stage, hookimpl

__version__ = "0.1.0"


def upscale(ctx) -> None:
    """Lanczos-resize ``character`` by the factor, then sharpen the edges a little."""
    from PIL import Image, ImageFilter

    factor = ctx.params["upscale_factor"]
    with Image.open(ctx.input("character")) as image:
        image = image.convert("RGB")
        size = (image.width * factor, image.height * factor)
        larger = image.resize(size, Image.Resampling.LANCZOS)
    sharper = larger.filter(ImageFilter.UnsharpMask(radius=factor, percent=60, threshold=2))
    sharper.save(ctx.output("character"), format="PNG")


@hookimpl
def register_stages(register):
    register(
        Stage(
            "upscale",
            needs=("character",),
            makes=("character",),
            run=upscale,
            version="1",
            params=(
                Param(
                    "upscale_factor",
                    2,
                    "How many times larger to make the character.",
                    type=click.IntRange(1, 8),
                ),
            ),
            help="Enlarge the character image (Lanczos + unsharp mask) before colorizing.",
        )
    )
