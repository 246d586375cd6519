"""Time `acgmake song` cold on songs of four lengths, against the machine's floor.

    python benchmarks/bench_song.py                      # 18 s, 36 s, 108 s and ~300 s songs
    python benchmarks/bench_song.py --lengths 1 2        # only kaeru's verse and kaeru
    python benchmarks/bench_song.py --lyrics my.txt      # one song of your own
    python benchmarks/bench_song.py -- -j 1              # options for acgmake song after --

The songs are built from examples/kaeru.txt (120 bpm): its verse alone (~18 s), the song
(~36 s), its sections three times (~108 s) and eight and a half times (~300 s). Each runs in a
fresh run folder (nothing cached), at 1280x720, with the options given after ``--``. For each:

- wall time and the real-time factor (wall / song length; under 1 is faster than it plays);
- the floor: Sinsy singing the same score with nothing else (no pitch correction) plus an
  ultrafast H.264 encode of the clip's frames, timed in the same run; and the ratio to it;
- peak memory: the largest total resident memory of acgmake and everything it started
  (Sinsy's worker, ffmpeg), sampled every 50 ms from /proc (Linux);
- each stage's seconds (stages run side by side, so they add up to more than the wall time);
- a warm re-run with nothing changed, and a palette change (which stages ran again).

Time it on a quiet machine: the figures are only comparable within one run of this script.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from imageio_ffmpeg import get_ffmpeg_exe

ROOT = Path(__file__).resolve().parent.parent
KAERU = ROOT / "examples" / "kaeru.txt"
#: (name, how many times kaeru's sections are sung; 0.5 = the verse alone)
LENGTHS = [("18 s", 0.5), ("36 s", 1), ("108 s", 3), ("300 s", 8.5)]


def song_lyrics(repeats: float) -> str:
    """kaeru.txt's sections, ``repeats`` times over (a half: the verse alone)."""
    sections = [part.strip() for part in KAERU.read_text(encoding="utf-8").split("\n\n")]
    count = round(repeats * len(sections))
    return "\n\n".join(sections[i % len(sections)] for i in range(count)) + "\n"


def _tree_rss_bytes(root: int) -> int:
    """The resident memory of ``root`` and all its descendants, from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    fields = handle.read().rsplit(b")", 1)[1].split()
                parents[int(entry)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/statm") as handle:
                total += int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    return total


def run_measured(command: list[str]) -> tuple[float, int]:
    """Run ``command``; (wall seconds, peak total resident bytes of its process tree)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_bytes(process.pid))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = process.communicate()
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{err.decode(errors='replace')[-3000:]}")
    return wall, peak


def clip_duration_s(path: Path) -> float:
    probe = subprocess.run(
        [get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True
    )
    found = re.search(r"Duration: (\d+):(\d+):(\d+\.\d+)", probe.stderr)
    if not found:
        raise SystemExit(f"ffmpeg could not read {path}")
    hours, minutes, seconds = found.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def floor_s(workdir: Path, clip: Path) -> tuple[float, float]:
    """(seconds for Sinsy alone on the run's score, seconds for an ultrafast encode of the
    clip's frames), each timed here."""
    code = (
        "import sys, time; from acgmake.voice import sinsy; t = time.perf_counter(); "
        "sinsy.sing(sys.argv[1], timeout_s=3600); print(time.perf_counter() - t)"
    )
    sung = subprocess.run(
        [sys.executable, "-c", code, str(workdir / "score.musicxml")],
        capture_output=True,
        text=True,
        check=True,
    )
    started = time.perf_counter()
    subprocess.run(
        [get_ffmpeg_exe(), "-v", "error", "-i", str(clip), "-map", "0:v", "-c:v", "libx264"]
        + ["-preset", "ultrafast", "-pix_fmt", "yuv420p", "-f", "null", "-"],
        check=True,
    )
    return float(sung.stdout.strip().splitlines()[-1]), time.perf_counter() - started


def bench_song(lyrics: Path, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        workdir, clip = Path(tmp) / "run", Path(tmp) / "clip.mp4"
        command = [sys.executable, "-m", "acgmake", "song", str(lyrics)]
        command += ["--workdir", str(workdir), "-o", str(clip), *extra]
        wall, peak = run_measured(command)
        manifest = json.loads((workdir / "manifest.json").read_text())
        stages = {name: manifest["stages"][name]["seconds"] for name in manifest["order"]}
        warm, _ = run_measured(command)
        recolored = subprocess.run(
            [*command, "--palette", "sakura"], capture_output=True, text=True, check=True
        )
        rerun = [
            line.split()[1]
            for line in recolored.stderr.splitlines()
            if line.startswith("[") and " done in " in line
        ]
        sinsy_s, encode_s = floor_s(workdir, clip)
        song_s = clip_duration_s(clip)
        return {
            "clip_s": round(song_s, 1),
            "wall_s": round(wall, 1),
            "rtf": round(wall / song_s, 2),
            "floor_s": round(sinsy_s + encode_s, 1),
            "floor_sinsy_s": round(sinsy_s, 1),
            "floor_encode_s": round(encode_s, 1),
            "x_floor": round(wall / (sinsy_s + encode_s), 1),
            "peak_mb": round(peak / 1e6),
            "warm_s": round(warm, 2),
            "palette_reran": rerun,
            "stages_s": stages,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lyrics", type=Path, help="bench this lyrics file only")
    parser.add_argument(
        "--lengths",
        type=int,
        nargs="*",
        help="which of the four songs (1-4: 18 s, 36 s, 108 s, 300 s); default all",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("extra", nargs="*", help="more options for acgmake song (after --)")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.lyrics:
            songs = [(args.lyrics.name, args.lyrics)]
        else:
            chosen = [LENGTHS[i - 1] for i in (args.lengths or [1, 2, 3, 4])]
            songs = []
            for name, repeats in chosen:
                path = Path(tmp) / f"song-{name.split()[0]}.txt"
                path.write_text(song_lyrics(repeats), encoding="utf-8")
                songs.append((name, path))
        for name, path in songs:
            print(f"{name} song ...", file=sys.stderr, flush=True)
            results[name] = bench_song(path, args.extra)
    print(
        "| song | clip | wall | real-time factor | floor (Sinsy + encode) | × floor "
        "| peak memory | warm re-run | palette change re-ran |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['clip_s']} s | {r['wall_s']} s | {r['rtf']} | {r['floor_s']} s "
            f"({r['floor_sinsy_s']} + {r['floor_encode_s']}) | {r['x_floor']} "
            f"| {r['peak_mb']} MB | {r['warm_s']} s | {', '.join(r['palette_reran'])} |"
        )
    print("\nStage seconds (side by side, so they sum to more than the wall time):")
    for name, r in results.items():
        print(f"  {name}: " + ", ".join(f"{s} {t:.1f}" for s, t in r["stages_s"].items()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
