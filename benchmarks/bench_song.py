"""Time `acgmake song` from a cold run folder: wall time per stage, clip length, peak memory.

    python benchmarks/bench_song.py examples/kaeru.txt [--runs 1] [--json out.json]

Each run uses a fresh temporary run folder, so nothing is cached. Peak memory is the largest
resident set of the acgmake process and everything it started (Sinsy's worker, ffmpeg).
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from imageio_ffmpeg import get_ffmpeg_exe


def clip_duration_s(path: Path) -> float:
    """The container duration that ffmpeg reports for ``path``."""
    probe = subprocess.run(
        [get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True
    )
    found = re.search(r"Duration: (\d+):(\d+):(\d+\.\d+)", probe.stderr)
    if not found:
        raise SystemExit(f"ffmpeg could not read {path}")
    hours, minutes, seconds = found.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def bench_once(lyrics: Path, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        workdir, clip = Path(tmp) / "run", Path(tmp) / "clip.mp4"
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "acgmake",
                "song",
                str(lyrics),
                "--workdir",
                str(workdir),
                "-o",
                str(clip),
                *extra,
            ],
            check=True,
        )
        wall = time.perf_counter() - started
        manifest = json.loads((workdir / "manifest.json").read_text())
        return {
            "wall_s": round(wall, 2),
            "stages_s": {name: manifest["stages"][name]["seconds"] for name in manifest["order"]},
            "clip_s": round(clip_duration_s(clip), 2),
            "clip_mb": round(clip.stat().st_size / 1e6, 2),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lyrics", type=Path)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("extra", nargs="*", help="more options for acgmake song (after --)")
    args = parser.parse_args()
    results = [bench_once(args.lyrics, args.extra) for _ in range(args.runs)]
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    for result in results:
        stages = ", ".join(f"{name} {s:.2f}s" for name, s in result["stages_s"].items())
        print(
            f"wall {result['wall_s']:.1f}s for a {result['clip_s']:.1f}s clip "
            f"({result['clip_mb']} MB); {stages}"
        )
    print(f"peak memory (largest process): {peak_mb:.0f} MB")
    if args.json:
        args.json.write_text(json.dumps({"runs": results, "peak_mb": round(peak_mb)}, indent=2))


if __name__ == "__main__":
    main()
