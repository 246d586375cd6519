"""Time the audio half of the chain: the sing stage against Sinsy called directly, and the
real-time factor of sing + accompany + mix.

    python benchmarks/bench_audio.py [SCORE.musicxml ...] [--runs 3] [--json out.json]

Without arguments, every score in scores/. For each score:

- ``sinsy_s``: pysinsy's compiled Sinsy called directly in this process on the same MusicXML
  (setLanguages, loadVoices, loadScoreFromMusicXML, synthesize) — the floor;
- ``sing_raw_s``: the sing stage with --pitch-correction 0 (score checks, a worker process
  with a time limit, labels, alignment, timing, files) and ``overhead_raw`` = it / sinsy_s;
- ``sing_s``: the sing stage with its defaults (pitch correction on) and ``overhead`` = it /
  sinsy_s;
- ``accompany_s``, ``mix_s``: those stages with their defaults;
- ``rtf``: (sing_s + accompany_s + mix_s) / the song's duration (below 1 is faster than
  real time).

Each figure is the median of ``--runs`` runs, each in a fresh run folder (nothing cached).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from acgmake.pipeline import run  # noqa: E402
from acgmake.plugins import Plugins  # noqa: E402


def registry():
    plugins = Plugins()
    plugins.load(
        builtins=(
            "acgmake.stages.compose",
            "acgmake.stages.sing",
            "acgmake.stages.accompany",
            "acgmake.stages.mix",
        ),
        entry_points=False,
    )
    return plugins.registry


def sinsy_direct_s(score: Path) -> float:
    """Seconds for pysinsy to sing ``score`` (the one sung part acgmake gives it), in process."""
    from acgmake.music.musicxml import sinsy_xml
    from acgmake.voice.sinsy import load_sinsy_module, sinsy_files

    files = sinsy_files()
    module = load_sinsy_module()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "score.musicxml"
        path.write_bytes(sinsy_xml(score))
        started = time.perf_counter()
        engine = module.Sinsy()
        engine.setLanguages("j", str(files.dictionary))
        engine.loadVoices(str(files.voice))
        engine.loadScoreFromMusicXML(str(path))
        engine.synthesize()
        return time.perf_counter() - started


def stage_seconds(score: Path, folder: Path, correction: float) -> tuple[dict, float]:
    """Seconds of each audio stage from a fresh run folder, and the song's duration."""
    import soundfile

    result = run(registry(), folder, ["song"], inputs={"score": score},
                 params={"sing": {"pitch_correction": correction}})  # fmt: skip
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    seconds = {name: manifest["stages"][name]["seconds"] for name in ("sing", "accompany", "mix")}
    return seconds, soundfile.info(str(result.files["song"])).duration


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scores", nargs="*", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    scores = args.scores or sorted((ROOT / "scores").glob("*.musicxml"))
    rows = []
    for score in scores:
        direct, raw, full = [], [], []
        duration = 0.0
        with tempfile.TemporaryDirectory() as tmp:
            for number in range(args.runs):
                direct.append(sinsy_direct_s(score))
                raw.append(stage_seconds(score, Path(tmp) / f"raw{number}", 0.0)[0])
                seconds, duration = stage_seconds(score, Path(tmp) / f"full{number}", 1.0)
                full.append(seconds)

        def median(values: list[float]) -> float:
            return round(statistics.median(values), 3)

        row = {
            "score": score.name,
            "song_s": round(duration, 2),
            "sinsy_s": median(direct),
            "sing_raw_s": median([r["sing"] for r in raw]),
            "sing_s": median([f["sing"] for f in full]),
            "accompany_s": median([f["accompany"] for f in full]),
            "mix_s": median([f["mix"] for f in full]),
        }
        row["overhead_raw"] = round(row["sing_raw_s"] / row["sinsy_s"], 2)
        row["overhead"] = round(row["sing_s"] / row["sinsy_s"], 2)
        chain = row["sing_s"] + row["accompany_s"] + row["mix_s"]
        row["rtf"] = round(chain / duration, 3)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
