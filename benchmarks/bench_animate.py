"""How long the animate stage takes for a 30 s clip, against ffmpeg alone.

Run from the repository root::

    python benchmarks/bench_animate.py [--seconds 30] [--size 1280x720] [--fps 24]

It makes the inputs by hand (tests/handmade_inputs.py: a drawn colored character with its
expressions strip, and a song of tones with its phonemes and timing), then

1. runs the animate stage (the same code path as ``acgmake animate``): frames drawn in a
   second thread and piped to ffmpeg with the WAV, H.264 + AAC; once with the expressions
   strip and once with drawn mouths;
2. draws every frame alone, without encoding;
3. draws and encodes in one thread, one frame after the other (what using one core for the
   drawing costs);
4. pipes the same number of frames to the same ffmpeg command from memory (48 frames of the
   clip, drawn beforehand and sent round and round), so only ffmpeg works;

and prints the times, the ratio of 1 to 4, and the peak memory of Python and of ffmpeg.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import cv2
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from acgmake.pipeline import run  # noqa: E402
from acgmake.stages.animate import parse_size  # noqa: E402
from acgmake.video.clip import clip_renderer  # noqa: E402
from acgmake.video.encode import VideoEncoder, encode_frames, read_media_info  # noqa: E402
from handmade_inputs import (  # noqa: E402
    draw_colored,
    load_stages,
    write_expressions,
    write_song,
)


def peak_rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # kilobytes on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=int, default=24)
    args = parser.parse_args()
    width, height = parse_size(args.size)

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        # colorize makes a 512-pixel character from the model's 128-pixel one.
        colored, face_dict = draw_colored(512)
        Image.fromarray(colored).save(folder / "colored.png")
        (folder / "face.json").write_text(json.dumps(face_dict))
        strip = write_expressions(folder, 512)
        inputs = {
            **write_song(folder, duration_s=args.seconds, phrases=max(1, round(args.seconds / 4))),
            "colored": folder / "colored.png",
            "face": folder / "face.json",
        }
        registry = load_stages("acgmake.stages.compose", "acgmake.stages.animate")
        params = {"animate": {"size": args.size, "fps": args.fps}}

        # 1. The animate stage, with the expressions strip and with drawn mouths.
        times = {}
        for name, extra in (("strip", {"colored_expressions": strip}), ("drawn", {})):
            started = time.perf_counter()
            result = run(
                registry, folder / f"run-{name}", ["clip"], inputs={**inputs, **extra},
                params=params, only=["animate"],
            )  # fmt: skip
            times[name] = time.perf_counter() - started
        python_mb = peak_rss_mb(resource.RUSAGE_SELF)
        ffmpeg_mb = peak_rss_mb(resource.RUSAGE_CHILDREN)
        clip = result.files["clip"]
        info = read_media_info(clip)

        # 2. Drawing alone, no encoding (the stage's renderer, with the strip, one thread).
        started = time.perf_counter()
        renderer = clip_renderer(
            colored=inputs["colored"], face=inputs["face"], timing=inputs["timing"],
            phonemes=inputs["phonemes"], song_s=args.seconds, width=width, height=height,
            fps=args.fps, expressions=strip, credits=["a credit line"],
        )  # fmt: skip
        frame_total = renderer.frame_count
        setup_s = time.perf_counter() - started
        cv2.setNumThreads(1)
        started = time.perf_counter()
        for _ in renderer.frames():
            pass
        draw_s = time.perf_counter() - started

        # 3. Drawing and encoding one after the other, in one thread.
        started = time.perf_counter()
        encode_frames(
            folder / "serial.mp4", renderer.render, frame_total, width=width, height=height,
            fps=args.fps, audio_path=inputs["song"], audio_until_s=frame_total / args.fps,
            in_thread=False,
        )  # fmt: skip
        serial_s = time.perf_counter() - started

        # 4. ffmpeg alone: the same command, frames from memory.
        frames = [renderer.render(i).copy() for i in range(0, min(48, frame_total))]
        started = time.perf_counter()
        with VideoEncoder(
            folder / "bare.mp4", width, height, args.fps, audio_path=inputs["song"],
            audio_until_s=frame_total / args.fps,
        ) as encoder:  # fmt: skip
            for index in range(frame_total):
                encoder.write(frames[index % len(frames)])
        bare_s = time.perf_counter() - started

        print(f"clip: {args.seconds:g} s song, {width}x{height}, {args.fps} fps")
        print(f"  {info.video_codec} {info.pixel_format} + {info.audio_codec}")
        print(
            f"  {info.duration_s:.2f} s with the credits, {clip.stat().st_size / 1e6:.1f} MB "
            f"({frame_total} frames)"
        )
        print(f"animate stage, expressions strip:   {times['strip']:7.2f} s")
        print(f"animate stage, drawn mouths:        {times['drawn']:7.2f} s")
        print(f"  drawing alone (one thread):       {draw_s:7.2f} s "
              f"({draw_s / frame_total * 1000:.2f} ms a frame, setup {setup_s:.2f} s)")  # fmt: skip
        print(f"  drawing then encoding, in turn:   {serial_s:7.2f} s")
        print(f"bare ffmpeg, same frames in memory: {bare_s:7.2f} s")
        print(f"ratio animate / bare ffmpeg:        {times['strip'] / bare_s:7.2f}")
        print(f"peak RSS after animate: python {python_mb:.0f} MB, ffmpeg {ffmpeg_mb:.0f} MB")


if __name__ == "__main__":
    main()
