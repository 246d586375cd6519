"""The ``upscale`` and ``upscale_expressions`` stages: the generated character and its
expressions strip enlarged by an anime super-resolution network (:mod:`acgmake.image.upscale`)
before they are colorized, so the clip shows clean lines at 512-1000 px instead of a 64 px
picture blown up.

``upscale`` refines ``character``; the size and upscaler it used are written into
character.png's PNG text (``acgmake:upscaler``), and ``upscale_expressions`` enlarges every
frame of ``expressions`` the same way, so the mouth and blink frames stay pixel for pixel
the resting face outside the parts that move.
"""

from __future__ import annotations

import click

from acgmake import Param, Stage, hookimpl

#: Kept here, not imported, so that `acgmake --help` does not load numpy and OpenCV.
UPSCALER_NAMES = ("realesrgan", "waifu2x", "none")
DEFAULT_SIZE_PX = 1024  # acgmake.image.upscale.DEFAULT_SIZE_PX
#: The PNG text key that says how character.png was enlarged: "NAME SIZE".
UPSCALER_KEY = "acgmake:upscaler"
#: The PNG text key that names the pixels character.png was enlarged from (:func:`pixels_id`),
#: so that upscale_expressions can take its rest frame from character.png when it is the same.
SOURCE_KEY = "acgmake:upscaled-from"


def pixels_id(picture) -> str:
    """A fingerprint of a picture's pixels (shape and bytes)."""
    import hashlib

    digest = hashlib.sha256(repr(picture.shape).encode())
    digest.update(picture.tobytes())
    return digest.hexdigest()[:32]


def size_for_clip(width: int, height: int) -> int:
    """The upscale size that suits a ``width`` x ``height`` clip: the clip shows the character
    at up to about the frame's shorter side (the bust fills 72-76% of a landscape frame's
    height and the camera comes up to ~1.2x closer; 92% of a portrait frame's width), so a
    720p clip gets a 768 px character and 1080p and larger the full 1024 px. Larger pictures
    cost time in every stage after this one and show no more detail."""
    return min(DEFAULT_SIZE_PX, -(-min(width, height) // 256) * 256)


def _size_of_the_clip(given, stages) -> dict[str, int]:
    """When animate runs, the character is enlarged to the size its clip shows it
    (:func:`size_for_clip` of animate's ``--size``), not always to 1024 px."""
    if "animate" not in stages:
        return {}
    from acgmake.stages.animate import DEFAULT_SIZE, parse_size

    size = given.get("animate", {}).get("size", DEFAULT_SIZE)
    return {"upscale_size": size_for_clip(*parse_size(size))}


def _save(picture, path, note: str | None, source: str | None = None) -> None:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    if note:
        info.add_text(UPSCALER_KEY, note)
    if source:
        info.add_text(SOURCE_KEY, source)
    # Level 3: half the time of the default level 6, for files a quarter larger.
    Image.fromarray(picture).save(path, format="PNG", pnginfo=info, compress_level=3)


def _record(ctx, name: str, size_px: int, passes_from: int) -> None:
    from acgmake.image.upscale import UPSCALERS, model_files, plan_passes

    upscaler = UPSCALERS[name]
    for factor in sorted(set(plan_passes(passes_from, size_px, upscaler.factors))):
        param, weights = model_files(upscaler, factor)
        ctx.use_asset(param, name=f"{upscaler.title} x{factor} (network)")
        ctx.use_asset(
            weights,
            name=f"{upscaler.title} x{factor} (weights)",
            license=upscaler.license,
            credit=upscaler.credit,
        )


def _parse_note(note: str) -> tuple[str, int]:
    """The upscaler and size a character.png's PNG text names; UserError for any other text
    (a picture from elsewhere can say anything there)."""
    from acgmake.errors import UserError

    name, _, size_text = note.partition(" ")
    if name in UPSCALER_NAMES[:-1] and size_text.isdigit() and 64 <= int(size_text) <= 4096:
        return name, int(size_text)
    raise UserError(
        f"character.png says it was enlarged as {note[:60]!r}, which acgmake does not know; "
        "run `acgmake upscale` on the model's picture again, or remove that PNG text"
    )


def upscale_character(ctx) -> None:
    from acgmake.image.picture import read_picture
    from acgmake.image.upscale import upscale

    name, size_px = ctx.params["upscaler"], ctx.params["upscale_size"]
    picture, _ = read_picture(ctx.input("character"), "character picture")
    if name == "none" or 4 * max(picture.shape[:2]) >= 3 * size_px:
        # Nearly that large already (a picture of the user's): enlarging it by a few percent
        # would cost seconds and change the artist's lines for nothing the clip shows.
        _save(picture, ctx.output("character"), None)
        return
    _record(ctx, name, size_px, max(picture.shape[:2]))
    enlarged = upscale(picture, size_px=size_px, upscaler=name)
    _save(enlarged, ctx.output("character"), f"{name} {size_px}", pixels_id(picture[..., :3]))


def upscale_expressions(ctx) -> None:
    import numpy as np

    from acgmake.image.face import split_expressions
    from acgmake.image.picture import STRIP_PIXELS, read_picture
    from acgmake.image.upscale import upscale_frames

    strip, _ = read_picture(ctx.input("expressions"), "expressions strip", max_pixels=STRIP_PIXELS)
    frames = split_expressions(strip)
    note, first = None, None
    character = ctx.input("character")
    if character is not None:
        pixels, info = read_picture(character, "character picture")
        note = info.get(UPSCALER_KEY)
        if info.get(SOURCE_KEY) == pixels_id(frames[0]):
            # The rest frame is the picture the upscale stage enlarged: take its result
            # instead of running the network over the whole picture again.
            first = pixels[..., :3]
    if not note:  # character.png was not enlarged: neither is its strip
        _save(strip, ctx.output("expressions"), None)
        return
    name, size_px = _parse_note(note)
    _record(ctx, name, size_px, max(frames[0].shape[:2]))
    enlarged = np.hstack(
        upscale_frames(
            frames,
            size_px=size_px,
            upscaler=name,
            first=first,
            progress=lambda done, total: ctx.progress(done, total, "frames"),
            workers=lambda: ctx.cores,
        )
    )
    _save(enlarged, ctx.output("expressions"), note)


@hookimpl
def register_stages(register):
    register(
        Stage(
            "upscale",
            cost_s=0.4,
            needs=("character",),
            makes=("character",),
            run=upscale_character,
            version="2",  # 2: a picture 3/4 as large as the size is kept as it is
            params=(
                Param(
                    "upscaler",
                    "realesrgan",
                    "anime super-resolution network: realesrgan (Real-ESRGAN "
                    "realesr-animevideov3: clean lines, flat colour), waifu2x (upconv_7 anime "
                    "art: sharper, a little noisier, slower) or none (keep the model's size)",
                    type=click.Choice(UPSCALER_NAMES),
                ),
                Param(
                    "upscale_size",
                    DEFAULT_SIZE_PX,
                    "pixels on the character's longer side after upscaling (a picture "
                    "at least 3/4 as large is kept as it is); not given, a run that makes "
                    "the clip uses the size the clip shows: 768 for 1280x720, 1024 for 1080p "
                    "and larger",
                    type=click.IntRange(64, 4096),
                ),
            ),
            derive=_size_of_the_clip,
            help="Enlarge the character with an anime super-resolution network (Real-ESRGAN "
            "or waifu2x) to the size the clip shows it.",
        )
    )
    register(
        Stage(
            "upscale_expressions",
            cost_s=1.3,
            needs=("expressions",),
            uses=("character",),
            makes=("expressions",),
            run=upscale_expressions,
            version="1",
            help="Enlarge each frame of the expressions strip exactly as character.png was "
            "enlarged (its PNG text says how), so the mouths match the face.",
        )
    )
