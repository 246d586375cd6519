"""The ``animate`` stage: the colored character sings the song, lyrics below, as an MP4."""

from __future__ import annotations

import click

from acgmake import Artifact, Param, Stage, hookimpl

#: Sizes by name, for ``--size`` (any even WIDTHxHEIGHT works too).
SIZES = {
    "720p": (1280, 720),
    "1080p": (1920, 1080),
    "vertical": (1080, 1920),
    "portrait": (1080, 1920),
    "square": (1080, 1080),
}


@hookimpl
def register_artifacts(register):
    register(Artifact("clip", "clip.mp4", "the music clip: H.264 video with AAC sound (MP4)"))
    register(
        Artifact(
            "colored_expressions",
            "colored_expressions.png",
            "the character's mouth shapes and blink, colorized, side by side (RGBA)",
        )
    )


#: The clip's size when none is given.
DEFAULT_SIZE = "1280x720"
#: How a clip closes the eyes unless told (``--blink``): eyelids drawn over the open eyes.
DEFAULT_BLINK = "drawn"


def parse_size(text: str) -> tuple[int, int]:
    """``"1280x720"`` (or a name: 720p, 1080p, vertical, square) as (width, height).

    UserError unless both are even numbers in 64..4096.
    """
    from acgmake.errors import UserError

    if text.strip().lower() in SIZES:
        return SIZES[text.strip().lower()]
    parts = text.lower().replace("×", "x").split("x")
    try:
        width, height = (int(part) for part in parts)
    except ValueError:
        raise UserError(
            f"--size must be WIDTHxHEIGHT in pixels (e.g. 1280x720, 1080x1920) or one of "
            f"{', '.join(SIZES)}; got {text!r}"
        ) from None
    if not (64 <= width <= 4096 and 64 <= height <= 4096) or width % 2 or height % 2:
        raise UserError(
            f"--size {text}: width and height must be even numbers from 64 to 4096 "
            "(H.264 video needs even sizes), e.g. 1280x720 or 854x480"
        )
    return width, height


def _check_background(path: str) -> None:
    from acgmake.video.backdrop import check_background

    check_background(path)


def animate(ctx) -> None:
    import cv2

    from acgmake.errors import UserError
    from acgmake.pipeline import user_path
    from acgmake.video.clip import clip_renderer, song_length_s
    from acgmake.video.encode import encode_frames
    from acgmake.video.text import FONT_CREDIT, FONT_LICENSE, FONT_NAME, font_path

    width, height = parse_size(ctx.params["size"])
    fps = ctx.params["fps"]
    if not isinstance(fps, int) or not 1 <= fps <= 120:
        raise UserError(f"--fps must be a whole number from 1 to 120; got {fps!r}")
    # The mixed song (vocals over the backing) is the clip's sound; it starts where vocals.wav
    # does, so the timing and phonemes line up with it.
    song = ctx.input("song")
    # Every duration the clip derives is bounded by the song's (see clip.check_timing).
    song_s = song_length_s(song)
    ctx.use_asset(font_path(), name=FONT_NAME, license=FONT_LICENSE, credit=FONT_CREDIT)
    background = None
    if ctx.params["background"]:
        background = user_path(ctx.params["background"])
    renderer = clip_renderer(
        colored=ctx.input("colored"),
        face=ctx.input("face"),
        timing=ctx.input("timing"),
        phonemes=ctx.input("phonemes"),
        song_s=song_s,
        width=width,
        height=height,
        fps=fps,
        end_card_s=float(ctx.params["end_card"]),
        expressions=ctx.input("colored_expressions"),
        blink=ctx.params["blink"],
        # The singing's credits come from timing.json; the band's and the model's from the
        # run so far; the font's is this stage's own.
        credits=[*ctx.credits, FONT_CREDIT],
        seed=ctx.seed,
        background=background,
        background_style=ctx.params["background_style"],
        song_name=song.name,
        shown=ctx.input("lyrics_shown"),
        furigana=ctx.params["furigana"],
    )
    if background is not None:
        # An asset (read, so known to be a picture): the clip is made again when the
        # picture changes, not only when its path does.
        ctx.use_asset(background, name=f"background {background.name}")
    frame_count = renderer.frame_count
    every = max(1, fps // 2)  # about two progress reports a second of video

    def progress(done: int, total: int | None) -> None:
        if done % every == 0 or done == total:
            ctx.progress(done, total, "frames")

    # Drawing runs in its own thread beside ffmpeg, which keeps both cores busy encoding:
    # OpenCV's own worker threads would only fight ffmpeg's for them.
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        encode_frames(
            ctx.output("clip"),
            renderer.render,
            frame_count,
            width=width,
            height=height,
            fps=fps,
            audio_path=song,
            # Silence after the song while the credits stay on screen.
            audio_until_s=frame_count / fps,
            progress=progress,
        )
    finally:
        cv2.setNumThreads(threads)


@hookimpl
def register_stages(register):
    register(
        Stage(
            "animate",
            cost_s=3.2,
            needs=("colored", "face", "song", "phonemes", "timing"),
            makes=("clip",),
            uses=("colored_expressions", "lyrics_shown"),
            run=animate,
            # 3: the blink drawn over the model's expressions unless --blink model;
            # 4: the character larger, the face clear of the lyrics; --background;
            # 5: the credits never over the face (in a wide frame the character steps aside);
            # 6: encoded superfast at CRF 22 (the same quality, 17% faster);
            # 7: the lyrics as written (lyrics_shown.json), --furigana; 8: a blink snaps
            # through an in-between drawing (half-closed lids) instead of a cross-fade;
            # 9: one mouth drawing a frame, changing at each sound's start (no cross-fade)
            version="9",
            params=(
                Param(
                    "size",
                    DEFAULT_SIZE,
                    "Video size in pixels, WIDTHxHEIGHT (even numbers): 1280x720, 1920x1080, "
                    "1080x1920 (vertical, for phones), 1080x1080 (square); or 720p, 1080p, "
                    "vertical, square.",
                    check=parse_size,  # a bad size is refused before anything runs
                ),
                Param("fps", 24, "Frames per second.", click.IntRange(1, 120)),
                Param(
                    "end_card",
                    4.0,
                    "Seconds the credits (voice, synthesis, font) stay after the last sung "
                    "line; the clip runs on in silence if the song ends sooner.",
                    click.FloatRange(0.0, 30.0),
                ),
                Param(
                    "blink",
                    DEFAULT_BLINK,
                    "How the eyes close: drawn (eyelids drawn over the open eyes) or model (the "
                    "character model's own closed-eye edit, from colored_expressions.png; the "
                    "shipped model's edit often only half closes them).",
                    click.Choice(["drawn", "model"]),
                ),
                Param(
                    "background",
                    "",
                    "A picture of your own (PNG, JPEG or WebP; at most 50 MB and 64 "
                    "megapixels) behind the character, scaled to cover the frame and cropped "
                    "about its middle; empty = a pastel sky.",
                    check=_check_background,
                ),
                Param(
                    "background_style",
                    "photo",
                    "How --background is drawn: photo (as it is, a touch soft so the "
                    "character stands out), soft (blurred, pastel) or cartoon (flat colours "
                    "and ink outlines, an anime-style backdrop from a photo).",
                    click.Choice(["photo", "soft", "cartoon"]),
                ),
                Param(
                    "furigana",
                    False,
                    "Show the reading sung over each kanji (and number) of the lyrics, small "
                    "above it, as printed lyrics do.",
                ),
            ),
            help="Animate the colored character singing the song, with karaoke lyrics, a "
            "title and credits, as an MP4 clip. Example: acgmake animate colored.png "
            "--size 1080x1920",
        )
    )
