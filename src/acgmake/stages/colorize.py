"""The ``colorize`` and ``colorize_expressions`` stages: line art or a character picture plus
colour hints become a coloured picture (transparent background) and its layers."""

from __future__ import annotations

import click

from acgmake import Artifact, Param, Stage, hookimpl

#: The better of the two on held-out drawn characters (benchmarks/colorize_report.py); kept
#: here, not imported, so that `acgmake --help` does not load numpy and OpenCV.
DEFAULT_METHOD = "neural"

#: Hints images are small; anything far larger is the wrong file.
MAX_HINTS_BYTES = 64 * 1024 * 1024


@hookimpl
def register_artifacts(register):
    register(Artifact("colored", "colored.png", "the colored character, transparent background"))
    register(
        Artifact(
            "layers",
            "colored.ora",
            "colored.png as layers (flats, shadow, light, lines) for Krita, GIMP or MyPaint "
            "(OpenRaster)",
        )
    )
    register(
        Artifact(
            "hints",
            "hints.png",
            "colour hints: dots and strokes of colour on a transparent layer the size of the "
            "line art (PNG)",
            max_bytes=MAX_HINTS_BYTES,
        )
    )
    register(
        Artifact(
            "expressions",
            "expressions.png",
            "the character's mouth shapes (rest, a, i, u, e, o) and blink, side by side",
        )
    )
    register(
        Artifact(
            "colored_expressions",
            "colored_expressions.png",
            "the expressions strip colorized in the colours of colored.png, transparent background",
        )
    )


def _settings(ctx, width: int, height: int):
    """Face, hints and palette of a colorize run, checked before the slow part."""
    from acgmake.errors import UserError
    from acgmake.image.colorize import default_palette, parse_palette
    from acgmake.image.face import Face
    from acgmake.image.hints import read_hints

    palette = parse_palette(ctx.params["palette"])  # a typo fails at once
    face_path, hints_path = ctx.input("face"), ctx.input("hints")
    face = Face.read(face_path) if face_path else None
    hints = read_hints(hints_path, (width, height)) if hints_path else None
    if palette and face is None:
        raise UserError(
            "--palette names regions of a character, but there is no face.json saying where "
            "they are; for your own line art draw a hints image and give --hints hints.png"
        )
    if face is not None and hints is None and face.picture is None:
        # A generated character without a hints image: a preset chosen by the seed.
        palette = {**default_palette(ctx.seed), **palette}
    return face, hints, palette


def _options(ctx, line_art: bool = False) -> dict:
    """colorize_layers' options; ``line_art``: the character is line art (see
    :func:`_is_line_art`), read as a scan unless ``--line-art`` says otherwise."""
    mode = ctx.params["line_art"]
    return {
        "method": ctx.params["method"],
        "gap_px": ctx.params["fill_gap"],
        "lines_mode": "scan" if line_art and mode == "auto" else mode,
    }


def _is_line_art(picture, info: dict, face) -> bool:
    """Whether the character is line art to colour though it has a face.json: a stage said it
    turned it into line art (PNG text ``acgmake:line-art``, e.g. a sketch simplifier), or it is
    the user's own picture (``--character``) and grey ink on light paper."""
    import numpy as np

    from acgmake.image.colorize import on_paper
    from acgmake.image.lineart import LINE_ART_KEY, is_line_art

    if info.get(LINE_ART_KEY):
        return True
    if face is None or face.picture is None:
        return False
    return is_line_art(np.round(on_paper(picture)).astype(np.uint8))


def _record_model(ctx, method: str | None = None) -> None:
    if (method or ctx.params["method"]) == "neural":
        from acgmake.models.colorizer import SHIPPED

        ctx.use_asset(
            SHIPPED,
            name="hint colorizer colorizer128 (trained by acgmake on its drawn characters)",
            license="MIT",
        )


def colorize(ctx) -> None:
    import numpy as np
    from PIL import Image

    from acgmake.image.colorize import Painting, colorize_layers, default_palette
    from acgmake.image.openraster import write_ora
    from acgmake.image.picture import read_picture

    picture, info = read_picture(ctx.input("character"), "picture")
    face, hints, palette = _settings(ctx, picture.shape[1], picture.shape[0])
    line_art = _is_line_art(picture, info, face)
    own = face is not None and face.picture is not None
    if face is not None and hints is not None and not line_art and ctx.params["line_art"] == "auto":
        # Hints on a finished character (generated, or the user's own): the regions they are
        # painted on take their colours, in place; the rest keeps the colours it had.
        from acgmake.image.recolor import hinted_palette

        asked = hinted_palette(picture, face, hints)
        if asked:
            base = {} if own else default_palette(ctx.seed)
            palette, hints = {**base, **palette, **asked}, None
    if own and not line_art and hints is None and not palette:
        # The user's own character keeps its own colours unless asked for others.
        rgba = (
            picture
            if picture.shape[2] == 4
            else np.dstack([picture, np.full(picture.shape[:2], 255, np.uint8)])
        )
        Image.fromarray(rgba).save(ctx.output("colored"), format="PNG")
        write_ora(ctx.output("layers"), [("picture", rgba)], rgba)
        return
    if face is not None and hints is None and line_art:
        # Line art to colour: the preset chosen by the seed, at face.json's points.
        palette = {**default_palette(ctx.seed), **palette}
    options = _options(ctx, line_art)
    painting = colorize_layers(picture, face=face, hints=hints, palette=palette, **options)
    if isinstance(painting, Painting):  # a recoloured character uses no network
        _record_model(ctx)
    if face is None:
        # The artist's own line art is coloured at a working size; the layers go back to
        # the size of their file, so they stack over it in Krita or GIMP. (A generated
        # character, with its face.json, stays at the working size animate expects.)
        painting = painting.resized(*picture.shape[:2])
    merged = painting.composite()
    Image.fromarray(merged).save(ctx.output("colored"), format="PNG")
    write_ora(ctx.output("layers"), painting.layers(), merged)


def colorize_expressions(ctx) -> None:
    import numpy as np
    from PIL import Image

    from acgmake.image.colorize import default_palette
    from acgmake.image.expressions import colorize_expressions as colorize_all
    from acgmake.image.face import Face, split_expressions
    from acgmake.image.hints import read_hints
    from acgmake.image.picture import STRIP_PIXELS, read_picture

    strip = read_picture(ctx.input("expressions"), "expressions strip", max_pixels=STRIP_PIXELS)
    pictures = split_expressions(strip[0])
    height, each = pictures[0].shape[:2]
    face = Face.read(ctx.input("face"))
    character, colored = ctx.input("character"), ctx.input("colored")
    if character is not None and colored is not None:
        # The colours of colored.png, whatever palette and method made it.
        reference = (read_picture(character, "picture")[0], read_picture(colored, "picture")[0])
        results = colorize_all(pictures, reference=reference)
    else:
        hints_path = ctx.input("hints")
        results = colorize_all(
            pictures,
            face=face,
            hints=read_hints(hints_path, (each, height)) if hints_path else None,
            palette=default_palette(ctx.seed),
            method=DEFAULT_METHOD,
        )
        _record_model(ctx, DEFAULT_METHOD)
    strip = Image.fromarray(np.hstack(results))
    strip.save(ctx.output("colored_expressions"), format="PNG", compress_level=3)  # see upscale


def _params() -> tuple[Param, ...]:
    return (
        Param(
            "palette",
            "",
            "Colours by region of a character with face.json, e.g. hair=#8fd3ff,eyes=#3a6,"
            "skin=#ffe0cc,clothes=#445, or a preset (sky, sakura, chestnut, midnight, mint, "
            "honey) optionally followed by overrides; empty = a preset chosen by the seed.",
        ),
        Param(
            "method",
            DEFAULT_METHOD,
            "flat: each area one colour from its hint; neural: the hint colorizer network "
            "also colours areas without a hint and adds shading",
            type=click.Choice(["flat", "neural"]),
        ),
        Param(
            "fill_gap",
            8.0,
            "gaps in the lines up to this wide hold a colour in (pixels of the picture, or "
            "of 512 px for a smaller one)",
            type=click.FloatRange(0.0, 64.0),
        ),
        Param(
            "line_art",
            "auto",
            "how lines are found: xdog for a coloured picture, scan for a drawing or scan "
            "(dark lines on light paper or on transparency), auto to tell by the picture",
            type=click.Choice(["auto", "xdog", "scan"]),
        ),
    )


@hookimpl
def register_stages(register):
    register(
        Stage(
            "colorize",
            cost_s=0.9,
            needs=("character",),
            uses=("face", "hints"),
            makes=("colored", "layers"),
            run=colorize,
            # 2: line art from scans, hints images, gap-aware fill, the neural method, layers;
            # 3: regions found again on a small copy when they leak; no clothes on the face;
            # 4: a generated character is recoloured in place at its own size;
            # 5: line art: the exterior stays clear through any gap, layers at its own size,
            # neural shade only, outlines tinted by the character on both sides.
            # 6: the user's own character (--character) keeps its colours; line art with a
            # face.json (acgmake:line-art, or a grey picture of the user's) coloured as line art;
            # hints on a character with face.json recolour the regions they are painted on
            # 7: a speck cut off by the picture's edge is not kept floating (transparent)
            # 8: paint of a region plainly another touching region's colour goes to it
            version="8",
            params=_params(),
            help="Colour line art or the character from colour hints (--hints hints.png, or "
            "--palette with face.json); writes colored.png (transparent background) and "
            "colored.ora (flats, shadow, light and lines layers).",
        )
    )
    register(
        Stage(
            "colorize_expressions",
            cost_s=1.2,
            needs=("expressions", "face"),
            # character.png and colored.png give the colours; without them the rest
            # expression is colorized with the seed's palette (and hints.png if there).
            uses=("hints", "character", "colored"),
            makes=("colored_expressions",),
            run=colorize_expressions,
            # 3: the recoloured characters of colorize version 4; 4: never over the backdrop
            version="4",
            help="Colour the character's expressions strip (rest, a, i, u, e, o, blink) in "
            "the colours of colored.png, so the mouth and blinks do not flicker.",
        )
    )
