"""The ``subtitles`` stage: the lyrics as karaoke subtitles (.ass) and plain ones (.srt)."""

from __future__ import annotations

from acgmake import Artifact, Stage, hookimpl


@hookimpl
def register_artifacts(register):
    register(
        Artifact(
            "subtitles_ass",
            "lyrics.ass",
            "the lyrics as karaoke subtitles, each mora timed with a \\k tag (ASS)",
        )
    )
    register(Artifact("subtitles_srt", "lyrics.srt", "the lyric lines as subtitles (SubRip)"))


def subtitles(ctx) -> None:
    from acgmake.text.shown import as_written, read_shown
    from acgmake.video.subtitles import ass_text, srt_text
    from acgmake.voice.labels import Timing

    timing = Timing.read(ctx.input("timing"))
    if ctx.input("lyrics_shown") is not None:  # the lyrics as written, else the kana sung
        timing = as_written(timing, read_shown(ctx.input("lyrics_shown")))
    # UTF-8 with a byte order mark: what Aegisub writes, and what Windows players need to
    # read kana in a .srt.
    ctx.output("subtitles_ass").write_text(ass_text(timing), encoding="utf-8-sig")
    ctx.output("subtitles_srt").write_text(srt_text(timing), encoding="utf-8-sig")


@hookimpl
def register_stages(register):
    register(
        Stage(
            "subtitles",
            cost_s=0.05,
            needs=("timing",),
            makes=("subtitles_ass", "subtitles_srt"),
            uses=("lyrics_shown",),
            run=subtitles,
            version="2",  # 2: the lyrics as written
            help="Write the lyrics as subtitles for video editors: lyrics.ass (karaoke, each "
            "mora timed as sung) and lyrics.srt. Example: acgmake subtitles timing.json",
        )
    )
