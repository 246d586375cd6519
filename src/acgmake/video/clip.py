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
from acgmake.text.shown import as_written, read_shown
from acgmake.video.backdrop import read_background
from acgmake.video.expressions import (
    BLINK,
    CharacterSprite,
    drawn_blink,
    drawn_expressions,
    drawn_half_blink,
    picture_ink,
    scale_rgba,
    split_strip,
)
from acgmake.video.frames import FrameRenderer, Look, layout_for
from acgmake.video.lipsync import drawn_mouths
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


#: How far past the end of the song its sung timing may run: a song bounced from a DAW may stop
#: right as the last vowel does. Further, and the song is not the one sung, or was cut short.
TIMING_PAST_SONG_S = 0.5
#: The longest song a clip is made for: the longest score acgmake sings is 20 minutes. Every
#: duration the clip derives (its frames, the motion, the blinks) is bounded by the song's.
MAX_CLIP_SONG_S = 30 * 60.0
#: Sample rates a song may have, in Hz: a crafted header saying 1 Hz makes 2,000 samples last
#: half an hour.
SONG_SAMPLE_RATES = (8_000, 384_000)


def song_length_s(path: Path) -> float:
    """How long the song at ``path`` lasts, in seconds (libsndfile counts the samples the file
    really holds, whatever its header says). UserError when it cannot be read, has an odd
    sample rate, or lasts longer than :data:`MAX_CLIP_SONG_S`."""
    import soundfile

    try:
        info = soundfile.info(str(path))
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise UserError(f"cannot read the song {path}: {error}") from None
    low, high = SONG_SAMPLE_RATES
    if not low <= info.samplerate <= high:
        raise UserError(
            f"the song {path} says its sample rate is {info.samplerate} Hz; a song's is "
            f"{low:,} to {high:,} Hz (usually 44,100 or 48,000) — export it again as WAV"
        )
    if not info.frames / info.samplerate <= MAX_CLIP_SONG_S:
        raise UserError(
            f"the song {path} lasts {info.frames / info.samplerate / 60:.0f} minutes; acgmake "
            f"makes clips of songs up to {MAX_CLIP_SONG_S / 60:.0f} minutes — cut it shorter"
        )
    return info.frames / info.samplerate


def check_timing(timing: Timing, song_s: float, *, timing_name: str, song_name: str) -> None:
    """UserError unless the singing in ``timing`` ends within :data:`TIMING_PAST_SONG_S` of the
    end of the song (``song_s`` seconds): a clip is as long as its song, and a song cut short
    (or the wrong one) would give a clip that mimes to silence."""
    ends = [line.end_s for line in timing.lines]
    ends += [mora.end_s for line in timing.lines for mora in line.morae]
    last_sung = max(ends, default=0.0)
    if not last_sung <= song_s + TIMING_PAST_SONG_S:
        raise UserError(
            f"the song {song_name} lasts {song_s:.2f} s, but {timing_name} has singing until "
            f"{last_sung:.1f} s; give the song that was sung with this timing, or make both "
            "again (acgmake song)"
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
    song_name: str = "song.wav",
    shown: Path | None = None,
    furigana: bool = False,
) -> FrameRenderer:
    """The renderer of the clip (``renderer.frame_count`` frames at ``fps``).

    The mouths come from the ``expressions`` strip (colored_expressions.png) when given,
    else they are drawn over ``colored``. The blink is drawn (eyelids over the open eyes)
    unless ``blink`` is ``"model"`` and there is a strip: the shipped model's closed-eye edit
    only half closes the eyes (benchmarks/steering_report.py). ``credits`` follow
    timing.json's own. ``background`` is a picture of the user's (PNG, JPEG or WebP) drawn
    in ``background_style`` (:data:`acgmake.video.backdrop.STYLES`) instead of the sky.
    UserError when the timing's singing runs past the song (``song_s`` seconds, the length
    of the file named ``song_name``), see :func:`check_timing`. ``shown`` (lyrics_shown.json)
    makes the karaoke show the lyrics as written, with furigana over kanji if ``furigana``.

    The pictures are scaled once, here, to the size the layout shows them at (a 1024-pixel
    character in a 720p frame is drawn from a copy of about 560 pixels), so each frame
    only resizes the sprite by the few percent the motion asks.
    """
    look = look or Look()
    layout_face = Face.read(face)
    sung = Timing.read(timing)
    check_timing(sung, song_s, timing_name=Path(timing).name, song_name=song_name)
    if shown is not None:  # the lyrics as written (else the kana sung)
        sung = as_written(sung, read_shown(shown))
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
    # A picture of the user's has its mouth and eyelids drawn in its own line colours.
    ink = picture_ink(images[0], layout_face) if layout_face.picture is not None else None
    if expressions is None:
        # No mouth shapes from the character model: draw them over the colored character.
        images = drawn_expressions(images[0], layout_face, ink)
    elif blink == "drawn":
        images[BLINK] = drawn_blink(images[0], layout_face, ink)
    frame_count = clip_frame_count(sung, song_s, fps, end_card_s)
    lines = list(sung.credits)
    lines += [line for line in dict.fromkeys(credits) if line and line not in lines]
    picture = None
    if background is not None:
        picture = read_background(background, at_least=(width, height))
    return FrameRenderer(
        CharacterSprite(
            images, layout_face, half_blink=drawn_half_blink(images[0], layout_face, ink)
        ),
        sung,
        drawn_mouths(read_lab(phonemes), fps, frame_count),
        width=width,
        height=height,
        fps=fps,
        look=look,
        seed=seed,
        title=sung.title,
        credits=lines,
        background=picture,
        background_style=background_style,
        furigana=furigana,
    )
