"""The ``colorize`` stage: paint the character with a palette, background transparent."""

from __future__ import annotations

from acgmake import Artifact, Param, Stage, hookimpl


@hookimpl
def register_artifacts(register):
    register(Artifact("colored", "colored.png", "the colored character, transparent background"))


def colorize(ctx) -> None:
    import numpy as np
    from PIL import Image

    from acgmake.errors import UserError
    from acgmake.image.colorize import colorize as paint_character
    from acgmake.image.colorize import default_palette, parse_palette
    from acgmake.image.face import Face

    # Check the palette before the slow part, so a typo fails at once.
    palette = {**default_palette(ctx.seed), **parse_palette(ctx.params["palette"])}
    path = ctx.input("character")
    try:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"))
    except OSError as error:
        raise UserError(f"cannot read the character picture {path}: {error}") from None
    face = Face.read(ctx.input("face"))
    colored = paint_character(rgb, face, palette)
    Image.fromarray(colored).save(ctx.output("colored"), optimize=False)


@hookimpl
def register_stages(register):
    register(
        Stage(
            "colorize",
            needs=("character", "face"),
            makes=("colored",),
            run=colorize,
            version="1",
            params=(
                Param(
                    "palette",
                    "",
                    "Colours by region, e.g. hair=#8fd3ff,eyes=#3a6,skin=#ffe0cc,clothes=#445, "
                    "or a preset (sky, sakura, chestnut, midnight, mint, honey) optionally "
                    "followed by overrides; empty = a preset chosen by the seed.",
                ),
            ),
            help="Color the character's line art from palette hints; the background becomes "
            "transparent.",
        )
    )
