"""How far up and down the bundled voice sings: pitch and timbre per note, raw and corrected.

    python benchmarks/range_report.py [--low 55] [--high 79] [--json out.json]

A score holds every note from ``--low`` to ``--high`` (MIDI; G3 to G5 by default) as a half
note on "ら", each after a quarter note a whole tone below it (a singer's approach) and
followed by a rest. The sing stage sings it twice: as Sinsy sings ("raw": --pitch-correction 0
--no-expression --no-breaths) and corrected (--no-expression --no-breaths). For the held part
of each half note (its first 80 ms and last 50 ms left out):

- voiced: share of frames with a pitch (a voice that whispers or cracks has none);
- raw / corrected cents: median error against the written note;
- in tune: share of corrected frames within 50 cents;
- aperiodicity: WORLD D4C's mean aperiodicity at 0.5-3 kHz on the corrected vowel (0 a clean
  harmonic voice, 1 noise): the timbre breaking into breath or rasp raises it;
- shift: how far the correction moved the note (large moves strain the vocoder's timbre).

A note is *comfortable* when the raw voice is voiced (90%), within a semitone of the note and
its aperiodicity within 0.1 of the voice's median; *usable* when, corrected, it is voiced on
80% of frames, in tune on 70%, and its aperiodicity within 0.15 of the median. The report prints
both ranges (the longest run of each); acgmake's ``--range narrow`` and ``wide``
(acgmake.music.melody.VOICE_RANGES) lie inside the usable one.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from acgmake.pipeline import run  # noqa: E402
from acgmake.plugins import Plugins  # noqa: E402
from acgmake.voice.breath import pitch_xml  # noqa: E402

NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]


def note_name(midi: int) -> str:
    return f"{NAMES[midi % 12]}{midi // 12 - 1}"


def range_score(low: int, high: int) -> str:
    """Every note from ``low`` to ``high`` held for a half note after a whole tone below it,
    a bar each, at 120 bpm, after a bar of rest."""
    lyric = "<lyric><syllabic>single</syllabic><text>ら</text></lyric>"
    bars = ['<measure number="1"><attributes><divisions>1</divisions><key><fifths>0</fifths>'
            "</key><time><beats>4</beats><beat-type>4</beat-type></time><clef><sign>G</sign>"
            "<line>2</line></clef></attributes><direction placement=\"above\"><direction-type>"
            "<metronome><beat-unit>quarter</beat-unit><per-minute>120</per-minute></metronome>"
            '</direction-type><sound tempo="120"/></direction>'
            "<note><rest/><duration>4</duration><type>whole</type></note></measure>"]  # fmt: skip
    for number, midi in enumerate(range(low, high + 1), start=2):
        bars.append(
            f'<measure number="{number}">'
            f"<note>{pitch_xml(midi - 2)}<duration>1</duration><type>quarter</type>{lyric}</note>"
            f"<note>{pitch_xml(midi)}<duration>2</duration><type>half</type>{lyric}</note>"
            "<note><rest/><duration>1</duration><type>quarter</type></note></measure>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<score-partwise version="3.1"><part-list>'
        '<score-part id="P1"><part-name>Voice</part-name></score-part></part-list>'
        f'<part id="P1">{"".join(bars)}</part></score-partwise>\n'
    )


def registry():
    plugins = Plugins()
    plugins.load(builtins=("acgmake.stages.compose", "acgmake.stages.sing"), entry_points=False)
    return plugins.registry


def measure(low: int, high: int, folder: Path) -> list[dict]:
    import pyworld
    import soundfile

    from acgmake.voice.intonation import track_f0
    from acgmake.voice.labels import Timing

    score = folder / "range.musicxml"
    score.write_text(range_score(low, high), encoding="utf-8")
    quiet = {"expression": False, "breaths": False}
    sung = {}
    for name, params in (("raw", {**quiet, "pitch_correction": 0.0}), ("corrected", quiet)):
        result = run(registry(), folder / name, ["timing"], inputs={"score": score},
                     params={"sing": params})  # fmt: skip
        samples, rate = soundfile.read(result.files["vocals"])
        times, f0 = track_f0(samples, rate, low_hz=80.0, high_hz=1100.0)
        sung[name] = (samples, rate, times, f0, Timing.read(result.files["timing"]))
    rows = []
    held = [m for line in sung["corrected"][4].lines for m in line.morae][1::2]
    samples, rate, times, f0_fixed, _ = sung["corrected"]
    f0_raw = sung["raw"][3]
    for midi, mora in zip(range(low, high + 1), held, strict=True):
        body = (times >= mora.start_s + 0.08) & (times < mora.end_s - 0.05)
        written = 440.0 * 2 ** ((midi - 69) / 12)
        row = {"midi": midi, "note": note_name(midi)}
        for name, f0 in (("raw", f0_raw), ("corrected", f0_fixed)):
            voiced = f0[body] > 0
            row[f"{name}_voiced"] = float(voiced.mean())
            cents = 1200 * np.log2(f0[body][voiced] / written) if voiced.any() else np.array([])
            row[f"{name}_cents"] = float(np.median(cents)) if cents.size else None
            if name == "corrected":
                row["in_tune"] = float((np.abs(cents) <= 50).mean()) if cents.size else 0.0
        # The vowel's timbre: WORLD's aperiodicity on the corrected body.
        start, end = round((mora.start_s + 0.08) * rate), round((mora.end_s - 0.05) * rate)
        part = np.ascontiguousarray(samples[start:end], dtype=np.float64)
        part_f0 = f0_fixed[body].astype(np.float64)
        part_times = times[body] - times[body][0]
        if (part_f0 > 0).sum() >= 5:
            aperiodicity = pyworld.d4c(part, part_f0, part_times, rate)
            bins = np.linspace(0, rate / 2, aperiodicity.shape[1])
            band = (bins >= 500) & (bins <= 3000)
            row["aperiodicity"] = float(aperiodicity[part_f0 > 0][:, band].mean())
        else:
            row["aperiodicity"] = 1.0
        rows.append(row)
    return rows


def ranges(rows: list[dict]) -> tuple[list[int], list[int]]:
    """The comfortable and usable notes (see the module's description)."""
    median = float(np.median([r["aperiodicity"] for r in rows]))
    comfortable = [
        r["midi"]
        for r in rows
        if r["raw_voiced"] >= 0.9
        and r["raw_cents"] is not None
        and abs(r["raw_cents"]) <= 100
        and r["aperiodicity"] <= median + 0.1
    ]
    usable = [
        r["midi"]
        for r in rows
        if r["corrected_voiced"] >= 0.8
        and r["in_tune"] >= 0.7
        and r["aperiodicity"] <= median + 0.15
    ]
    return comfortable, usable


def span(notes: list[int]) -> str:
    """The longest run of consecutive notes, as "E4-C5 (MIDI 64-72)"."""
    if not notes:
        return "none"
    runs, current = [], [notes[0]]
    for midi in notes[1:]:
        if midi == current[-1] + 1:
            current.append(midi)
        else:
            runs.append(current)
            current = [midi]
    runs.append(current)
    best = max(runs, key=len)
    return f"{note_name(best[0])}-{note_name(best[-1])} (MIDI {best[0]}-{best[-1]})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--low", type=int, default=55)
    parser.add_argument("--high", type=int, default=79)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(args.low, args.high, Path(tmp))
    for r in rows:
        raw = "  -  " if r["raw_cents"] is None else f"{r['raw_cents']:+5.0f}"
        fixed = "  -  " if r["corrected_cents"] is None else f"{r['corrected_cents']:+5.0f}"
        print(
            f"{r['note']:4} voiced {r['raw_voiced']:.2f}/{r['corrected_voiced']:.2f}  raw "
            f"{raw} c  corrected {fixed} c  in tune {r['in_tune']:.2f}  aperiodicity "
            f"{r['aperiodicity']:.2f}"
        )
    comfortable, usable = ranges(rows)
    print(f"comfortable (as Sinsy sings it): {span(comfortable)}")
    print(f"usable (corrected, clean voice): {span(usable)}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
