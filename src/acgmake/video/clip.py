"""The clip's frames from the run folder's files: what the animate stage draws.

:func:`clip_renderer` reads the colored character (or its expressions strip), its face
layout, the timing and the phonemes, and sets up a :class:`~acgmake.video.frames.FrameRenderer`
for the whole clip: the song, then the credits for ``end_card_s`` after the last sung line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from acgmake.errors import UserError
from acgmake.image.face import Face
from acgmake.video.backdrop import read_background
from acgmake.video.expressions import (
    BLINK,
    CharacterSprite,
    drawn_blink,
    drawn_expressions,
    scale_rgba,
    split_strip,
)
from acgmake.video.frames import FrameRenderer, Look, layout_for
from acgmake.video.lipsync import mouth_shapes
from acgmake.voice.labels import Timing, read_lab


def read_rgba(path: Path) -> np.ndarray:
    """The picture at ``path`` as straight RGBA uint8; UserError if it cannot be read."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGBA"))
    except OSError as error:
        raise UserError(f"cannot read the picture {path}: {error}") from None


def drawn_box(images: Sequence[np.ndarray]) -> tuple[float, float, float, float]:
    """The box (normalised x0, y0, x1, y1) where any of the RGBA ``images`` is not
    transparent: the character without the empty canvas around it."""
    height, width = images[0].shape[:2]
    opaque = np.zeros((height, width), bool)
    for image in images:
        opaque |= image[..., 3] > 0
    rows, columns = np.flatnonzero(opaque.any(axis=1)), np.flatnonzero(opaque.any(axis=0))
    if rows.size == 0:
        return 0.0, 0.0, 1.0, 1.0
    return (
        columns[0] / width,
        rows[0] / height,
        (columns[-1] + 1) / width,
        (rows[-1] + 1) / height,
    )


def clip_frame_count(timing: Timing, song_s: float, fps: float, end_card_s: float) -> int:
    """Frames in the clip: the song, or longer to keep the credits ``end_card_s`` on screen
    after the last sung line."""
    last_sung = timing.lines[-1].end_s if timing.lines else song_s
    return max(1, math.ceil(max(song_s, last_sung + end_card_s) * fps - 1e-6))


def clip_renderer(
    *,
    colored: Path,
    face: Path,
    timing: Path,
    phonemes: Path,
    song_s: float,
    width: int,
    height: int,
    fps: float,
    end_card_s: float = 4.0,
    expressions: Path | None = None,
    blink: str = "drawn",
    credits: Sequence[str] = (),
    seed: int = 0,
    look: Look | None = None,
    background: Path | None = None,
    background_style: str = "photo",
) -> FrameRenderer:
    """The renderer of the clip (``renderer.frame_count`` frames at ``fps``).

    The mouths come from the ``expressions`` strip (colored_expressions.png) when given,
    else they are drawn over ``colored``. The blink is drawn (eyelids over the open eyes)
    unless ``blink`` is ``"model"`` and there is a strip: the shipped model's closed-eye edit
    only half closes the eyes (benchmarks/steering_report.py). ``credits`` follow
    timing.json's own. ``background`` is a picture of the user's (PNG, JPEG or WebP) drawn
    in ``background_style`` (:data:`acgmake.video.backdrop.STYLES`) instead of the sky.

    The pictures are scaled once, here, to the size the layout shows them at (a 1024-pixel
    character in a 720p frame is drawn from a copy of about 560 pixels), so each frame
    only resizes the sprite by the few percent the motion asks.
    """
    look = look or Look()
    layout_face = Face.read(face)
    sung = Timing.read(timing)
    if expressions is not None:
        images = split_strip(read_rgba(expressions))
    else:
        images = [read_rgba(colored)]
    layout = layout_for(
        width,
        height,
        images[0].shape[1],
        images[0].shape[0],
        look,
        visible=drawn_box(images),
        face=layout_face.face,
    )
    images = [scale_rgba(image, layout.character_w, layout.character_h) for image in images]
    if expressions is None:
        # No mouth shapes from the character model: draw them over the colored character.
        images = drawn_expressions(images[0], layout_face)
    elif blink == "drawn":
        images[BLINK] = drawn_blink(images[0], layout_face)
    frame_count = clip_frame_count(sung, song_s, fps, end_card_s)
    lines = list(sung.credits)
    lines += [line for line in dict.fromkeys(credits) if line and line not in lines]
    picture = None
    if background is not None:
        picture = read_background(background, at_least=(width, height))
    return FrameRenderer(
        CharacterSprite(images, layout_face),
        sung,
        mouth_shapes(read_lab(phonemes), fps, frame_count),
        width=width,
        height=height,
        fps=fps,
        look=look,
        seed=seed,
        title=sung.title,
        credits=lines,
        background=picture,
        background_style=background_style,
    )
