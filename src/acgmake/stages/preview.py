"""The ``preview`` stage: a short GIF and WebM cut from the clip, for chats and web pages."""

from __future__ import annotations

import click

from acgmake import Artifact, Param, Stage, hookimpl


@hookimpl
def register_artifacts(register):
    register(Artifact("preview_gif", "preview.gif", "a short silent preview of the clip (GIF)"))
    register(
        Artifact("preview_webm", "preview.webm", "a short preview of the clip with sound (WebM)")
    )


def preview_start_s(timing) -> float:
    """Where a preview starts: just before the first chorus line (else the first line)."""
    if timing is None or not timing.lines:
        return 0.0
    chorus = [line for line in timing.lines if line.section == "chorus"]
    return max((chorus or timing.lines)[0].start_s - 0.5, 0.0)


def preview(ctx) -> None:
    from acgmake.video.encode import read_media_info, write_previews
    from acgmake.voice.labels import Timing

    clip = ctx.input("clip")
    timing_path = ctx.input("timing")
    timing = Timing.read(timing_path) if timing_path is not None else None
    info = read_media_info(clip)
    length = info.duration_s
    start = preview_start_s(timing)
    seconds: float | None = float(ctx.params["preview_seconds"])
    if not seconds or seconds <= 0:
        start, seconds = 0.0, None  # the whole clip
    elif start + seconds > length:
        start = max(length - seconds, 0.0)  # the window would run past the end
    ctx.progress(0, 1, "cutting the preview")
    write_previews(
        clip,
        ctx.output("preview_gif"),
        ctx.output("preview_webm"),
        start_s=start,
        duration_s=seconds,
        # Never larger than the clip; an even width, for VP9 in yuv420p.
        width=min(int(ctx.params["preview_width"]), info.width or 10**6) // 2 * 2,
    )
    ctx.progress(1, 1, "previews written")


@hookimpl
def register_stages(register):
    register(
        Stage(
            "preview",
            cost_s=1.0,
            needs=("clip",),
            makes=("preview_gif", "preview_webm"),
            uses=("timing",),
            run=preview,
            optional=True,
            version="1",
            params=(
                Param(
                    "preview_seconds",
                    8.0,
                    "Length of the previews in seconds, from the first chorus (0 = the whole "
                    "clip).",
                    click.FloatRange(0.0, 600.0),
                ),
                Param(
                    "preview_width",
                    480,
                    "Width of the previews in pixels (even; the height follows the clip).",
                    click.IntRange(64, 1920),
                ),
            ),
            help="Cut a short preview from the clip: preview.gif (silent, loops) and "
            "preview.webm (with sound). Example: acgmake preview clip.mp4 --preview-seconds 6",
        )
    )
