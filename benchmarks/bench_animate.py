"""How long the animate stage takes for a 30 s clip, against ffmpeg alone.

Run from the repository root::

    python benchmarks/bench_animate.py [--seconds 30] [--size 1280x720] [--fps 24]

It makes the inputs by hand (tests/handmade_inputs.py: a drawn character, colorized, and a
song of tones with its phonemes and timing), then

1. runs the animate stage (the same code path as ``acgmake animate``): draw every frame and
   pipe it to ffmpeg with the WAV, H.264 + AAC;
2. pipes the same number of frames to the same ffmpeg command from memory (48 frames of the
   clip, drawn beforehand and sent round and round), so only ffmpeg works;

and prints both times, their ratio, the drawing time alone, and the peak memory of Python
and of ffmpeg.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from acgmake.image.colorize import colorize, default_palette  # noqa: E402
from acgmake.image.face import Face  # noqa: E402
from acgmake.pipeline import run  # noqa: E402
from acgmake.stages.animate import parse_size  # noqa: E402
from acgmake.video.encode import VideoEncoder, read_media_info  # noqa: E402
from acgmake.video.frames import FrameRenderer  # noqa: E402
from acgmake.video.lipsync import mouth_openness  # noqa: E402
from acgmake.voice.labels import Timing, read_lab  # noqa: E402
from handmade_inputs import draw_character, load_stages, write_song  # noqa: E402


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
        rgb, face_dict = draw_character(128)
        face = Face.from_dict(face_dict)
        started = time.perf_counter()
        runs = 5
        for _ in range(runs):
            colored = colorize(rgb, face, default_palette(1))
        colorize_s = (time.perf_counter() - started) / runs
        Image.fromarray(colored).save(folder / "colored.png")
        (folder / "face.json").write_text(json.dumps(face_dict))
        inputs = {
            **write_song(folder, duration_s=args.seconds, phrases=max(1, round(args.seconds / 4))),
            "colored": folder / "colored.png",
            "face": folder / "face.json",
        }

        # 1. The animate stage.
        registry = load_stages("acgmake.stages.colorize", "acgmake.stages.animate")
        started = time.perf_counter()
        result = run(
            registry,
            folder / "run",
            ["clip"],
            inputs=inputs,
            params={"animate": {"size": args.size, "fps": args.fps}},
            only=["animate"],
        )
        animate_s = time.perf_counter() - started
        python_mb = peak_rss_mb(resource.RUSAGE_SELF)
        ffmpeg_mb = peak_rss_mb(resource.RUSAGE_CHILDREN)
        clip = result.files["clip"]
        info = read_media_info(clip)
        frame_count = round(info.duration_s * args.fps)

        # Drawing alone, no encoding.
        timing = Timing.read(inputs["timing"])
        frame_total = int(np.ceil(args.seconds * args.fps))
        openness = mouth_openness(read_lab(inputs["phonemes"]), args.fps, frame_total)
        started = time.perf_counter()
        renderer = FrameRenderer(
            colored, face, timing, openness, width=width, height=height, fps=args.fps
        )
        setup_s = time.perf_counter() - started
        started = time.perf_counter()
        for _ in renderer.frames():
            pass
        draw_s = time.perf_counter() - started

        # 2. ffmpeg alone: the same command, frames from memory.
        frames = [renderer.render(i).copy() for i in range(0, min(48, frame_total))]
        started = time.perf_counter()
        with VideoEncoder(
            folder / "bare.mp4", width, height, args.fps, audio_path=inputs["vocals"]
        ) as encoder:
            for index in range(frame_total):
                encoder.write(frames[index % len(frames)])
        bare_s = time.perf_counter() - started

        print(f"clip: {args.seconds:g} s, {width}x{height}, {args.fps} fps, {frame_total} frames")
        print(f"  {info.video_codec} {info.pixel_format} + {info.audio_codec}")
        print(
            f"  {info.duration_s:.2f} s, {clip.stat().st_size / 1e6:.1f} MB ({frame_count} frames)"
        )
        print(f"colorize (128 px in, 512 px out):   {colorize_s * 1000:7.0f} ms per image")
        print(f"animate stage (draw + encode):      {animate_s:7.2f} s")
        print(f"  of which drawing alone:           {draw_s:7.2f} s "
              f"({draw_s / frame_total * 1000:.2f} ms a frame, setup {setup_s:.2f} s)")  # fmt: skip
        print(f"bare ffmpeg, same frames in memory: {bare_s:7.2f} s")
        print(f"ratio animate / bare ffmpeg:        {animate_s / bare_s:7.2f}")
        print(f"peak RSS after animate: python {python_mb:.0f} MB, ffmpeg {ffmpeg_mb:.0f} MB")


if __name__ == "__main__":
    main()
