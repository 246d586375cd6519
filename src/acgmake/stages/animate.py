"""The ``animate`` stage: the colored character sings the song, lyrics below, as an MP4."""

from __future__ import annotations

import click

from acgmake import Artifact, Param, Stage, hookimpl


@hookimpl
def register_artifacts(register):
    register(Artifact("clip", "clip.mp4", "the music clip: H.264 video with AAC sound (MP4)"))


def parse_size(text: str) -> tuple[int, int]:
    """``"1280x720"`` as (1280, 720); UserError unless both are even numbers in 64..4096."""
    from acgmake.errors import UserError

    parts = text.lower().replace("×", "x").split("x")
    try:
        width, height = (int(part) for part in parts)
    except ValueError:
        raise UserError(
            f"--size must be WIDTHxHEIGHT in pixels, e.g. 1280x720; got {text!r}"
        ) from None
    if not (64 <= width <= 4096 and 64 <= height <= 4096) or width % 2 or height % 2:
        raise UserError(
            f"--size {text}: width and height must be even numbers from 64 to 4096 "
            "(H.264 video needs even sizes), e.g. 1280x720 or 854x480"
        )
    return width, height


def animate(ctx) -> None:
    import numpy as np
    import soundfile
    from PIL import Image

    from acgmake.errors import UserError
    from acgmake.image.face import Face
    from acgmake.video.encode import encode_video
    from acgmake.video.frames import FrameRenderer
    from acgmake.video.lipsync import mouth_openness
    from acgmake.video.text import FONT_CREDIT, FONT_LICENSE, FONT_NAME, font_path
    from acgmake.voice.labels import Timing, read_lab

    width, height = parse_size(ctx.params["size"])
    fps = ctx.params["fps"]
    if not isinstance(fps, int) or not 1 <= fps <= 120:
        raise UserError(f"--fps must be a whole number from 1 to 120; got {fps!r}")
    # The mixed song (vocals over the backing) is the clip's sound; it starts where vocals.wav
    # does, so the timing and phonemes line up with it.
    song = ctx.input("song")
    try:
        duration_s = soundfile.info(str(song)).duration
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise UserError(f"cannot read the song {song}: {error}") from None
    with Image.open(ctx.input("colored")) as image:
        colored = np.asarray(image.convert("RGBA"))
    face = Face.read(ctx.input("face"))
    timing = Timing.read(ctx.input("timing"))
    phonemes = read_lab(ctx.input("phonemes"))
    ctx.use_asset(font_path(), name=FONT_NAME, license=FONT_LICENSE, credit=FONT_CREDIT)

    frame_count = max(1, int(np.ceil(duration_s * fps - 1e-6)))
    renderer = FrameRenderer(
        colored,
        face,
        timing,
        mouth_openness(phonemes, fps, frame_count),
        width=width,
        height=height,
        fps=fps,
        seed=ctx.seed,
    )
    every = max(1, fps // 2)  # about two progress reports a second of video

    def progress(done: int, total: int | None) -> None:
        if done % every == 0 or done == total:
            ctx.progress(done, total, "frames")

    encode_video(
        ctx.output("clip"),
        renderer.frames(),
        width=width,
        height=height,
        fps=fps,
        audio_path=song,
        frame_count=frame_count,
        progress=progress,
    )


@hookimpl
def register_stages(register):
    register(
        Stage(
            "animate",
            needs=("colored", "face", "song", "phonemes", "timing"),
            makes=("clip",),
            run=animate,
            version="1",
            params=(
                Param("size", "1280x720", "Video size in pixels, WIDTHxHEIGHT (even numbers)."),
                Param("fps", 24, "Frames per second.", click.IntRange(1, 120)),
            ),
            help="Animate the colored character singing the song, with the lyrics, as an MP4 clip.",
        )
    )
