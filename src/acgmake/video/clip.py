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
) -> FrameRenderer:
    """The renderer of the clip (``renderer.frame_count`` frames at ``fps``).

    The mouths come from the ``expressions`` strip (colored_expressions.png) when given,
    else they are drawn over ``colored``. The blink is drawn (eyelids over the open eyes)
    unless ``blink`` is ``"model"`` and there is a strip: the shipped model's closed-eye edit
    only half closes the eyes (benchmarks/steering_report.py). ``credits`` follow
    timing.json's own.
    """
    look = look or Look()
    layout_face = Face.read(face)
    sung = Timing.read(timing)
    if expressions is not None:
        images = split_strip(read_rgba(expressions))
    else:
        images = [read_rgba(colored)]
    layout = layout_for(width, height, images[0].shape[1], images[0].shape[0], look)
    images = [scale_rgba(image, layout.character_w, layout.character_h) for image in images]
    if expressions is None:
        # No mouth shapes from the character model: draw them over the colored character.
        images = drawn_expressions(images[0], layout_face)
    elif blink == "drawn":
        images[BLINK] = drawn_blink(images[0], layout_face)
    frame_count = clip_frame_count(sung, song_s, fps, end_card_s)
    lines = list(sung.credits)
    lines += [line for line in dict.fromkeys(credits) if line and line not in lines]
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
    )
