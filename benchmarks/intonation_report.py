"""How well Sinsy sings the scores: sung F0 against the written notes, with and without the
sing stage's pitch correction and vibrato.

    python benchmarks/intonation_report.py [SCORE.musicxml | LYRICS.txt ...] [--seeds 1 2]
        [--json out.json]

Scores are sung as they are; lyrics files are composed first (one score per seed). Without
arguments: every score in scores/ and every lyrics file in examples/ (seeds 1 and 2). For each
score the sing stage runs five times: "sinsy" (--pitch-correction 0 --no-expression: Sinsy
as it sings), "flat" (corrected, --no-expression), "default" (corrected, with the expression
of the score's tempo: vibrato, glides, overshoot, phrase-end falls), "ballad" and "upbeat"
(--expression-style), and acgmake.voice.intonation checks the vocals against timing.json.
Figures:

- on pitch: share of notes whose body (the glide left out) has its median pitch within 50
  cents of the written note: expression must keep this at 95% or more;
- in tune: share of voiced frames inside notes within 50 cents of the written note (a vibrato
  of more than 50 cents takes some frames out, by design);
- held: the same, leaving out each note's first 80 ms (the glide from the note before);
- |cents|: median over notes of |median sung - written|;
- vibrato: median rate (Hz) and depth (cents either side) over notes of 0.45 s and longer;
- onset: median (and 90th percentile of |.|) of when the sung pitch arrives within 50 cents,
  minus the note's written start, in ms, over notes that change pitch; missed: such notes
  whose pitch never arrives.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from acgmake.pipeline import run  # noqa: E402
from acgmake.plugins import Plugins  # noqa: E402


def registry():
    plugins = Plugins()
    plugins.load(builtins=("acgmake.stages.compose", "acgmake.stages.sing"), entry_points=False)
    return plugins.registry


#: What each score is sung with: Sinsy as it sings, corrected flat, the default (corrected,
#: with the expression the score's tempo calls for) and the ballad and upbeat presets.
SETTINGS = {
    "sinsy": {"pitch_correction": 0.0, "expression": False},
    "flat": {"pitch_correction": 1.0, "expression": False},
    "default": {},
    "ballad": {"expression_style": "ballad"},
    "upbeat": {"expression_style": "upbeat"},
}


def check(score: Path, folder: Path, params: dict) -> dict:
    import soundfile

    from acgmake.voice.intonation import check_intonation
    from acgmake.voice.labels import Timing

    result = run(registry(), folder, ["timing"], inputs={"score": score},
                 params={"sing": params})  # fmt: skip
    samples, rate = soundfile.read(result.files["vocals"])
    return check_intonation(samples, rate, Timing.read(result.files["timing"])).summary()


def scores_to_check(paths: list[Path], seeds: list[int], folder: Path) -> list[tuple[str, Path]]:
    found = []
    for path in paths:
        if path.suffix == ".txt":
            for seed in seeds:
                made = run(registry(), folder / f"{path.stem}-{seed}", ["score"],
                           inputs={"lyrics": path}, seed=seed)  # fmt: skip
                found.append((f"{path.name} seed {seed}", made.files["score"]))
        else:
            found.append((path.name, path))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="*", type=Path)
    parser.add_argument("--seeds", nargs="*", type=int, default=[1, 2])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    inputs = args.inputs or sorted((ROOT / "scores").glob("*.musicxml")) + sorted(
        (ROOT / "examples").glob("*.txt")
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, score in scores_to_check(inputs, args.seeds, Path(tmp)):
            for setting, params in SETTINGS.items():
                summary = check(score, Path(tmp) / f"{len(rows)}", params)
                rows.append({"score": name, "setting": setting, **summary})
                print(
                    f"{name:24} {setting:8} notes {summary['notes']:3}  on pitch "
                    f"{summary['notes_on_pitch_share']:.3f}  in tune "
                    f"{summary['in_tune_share']:.3f}  held {summary['held_in_tune_share']:.3f}  "
                    f"|cents| {summary['median_abs_cents']:6.1f}  vibrato "
                    f"{summary['vibrato_hz']:.1f} Hz {summary['vibrato_cents']:.0f} c "
                    f"({summary['long_notes']} long)  onset {summary['onset_median_ms']:6.1f} ms "
                    f"(p90 |.| {summary['onset_p90_abs_ms']:.0f})  missed "
                    f"{summary['onsets_missed']}",
                    flush=True,
                )
    for setting in SETTINGS:
        chosen = [r for r in rows if r["setting"] == setting]
        notes = sum(r["notes"] for r in chosen)
        weighted = {
            key: sum(r[key] * r["notes"] for r in chosen) / notes
            for key in ("notes_on_pitch_share", "in_tune_share", "held_in_tune_share")
        }
        print(
            f"ALL {setting:8}: {notes} notes, on pitch {weighted['notes_on_pitch_share']:.3f}, "
            f"in tune {weighted['in_tune_share']:.3f}, held {weighted['held_in_tune_share']:.3f} "
            "(note-weighted)"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
