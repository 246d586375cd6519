"""How often the held-out judges read what was asked, for characters chosen by
``acgmake find-character`` against the first seed of the same range (no choice).

    python plugins/acgmake-attributes/report.py [--search 512]

Two sets of requests: each hair colour with the mouth open and closed (eyes open), read by the
attribute classifier's judge; each eye colour with and without glasses, read by the tagger's
judge (``tag64-judge.safetensors``, trained apart from the tagger that chooses).
"""

from __future__ import annotations

import argparse

import numpy as np
from acgmake_attributes import HAIR, Wanted, find, judge

from acgmake.models.looks import EYE_COLORS


def _summary(label: str, rows: list[dict]) -> None:
    keys = rows[0].keys()
    summary = {key: round(float(np.mean([row[key] for row in rows])), 3) for key in keys}
    shares = [key for key in keys if key.endswith("_as_asked") or key == "hair_within_15"]
    everything = np.mean([np.prod([row[key] for key in shares]) for row in rows])
    print(f"{label:10}: {summary}, all as asked {everything:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--search", type=int, default=512)
    args = parser.parse_args()
    requests = [
        (f"{name} hair, mouth {mouth}", Wanted(hair=HAIR[name], mouth=mouth, eyes="open"))
        for name in HAIR
        for mouth in ("open", "closed")
    ]
    eye_requests = [
        (
            f"{colour} eyes, glasses {glasses}",
            Wanted(eye_color=colour, accessories={"glasses": glasses}),
        )  # fmt: skip
        for colour in EYE_COLORS
        for glasses in (True, False)
    ]
    for title, group in (("hair and mouth", requests), ("eye colour and glasses", eye_requests)):
        chosen, plain = [], []
        for index, (label, wanted) in enumerate(group):
            start = 10_000 + 1000 * index + (0 if group is requests else 500_000)
            found, pictures = find(wanted, search=args.search, start=start, count=1)
            _, first = find(Wanted(), search=1, start=start, count=1)
            chosen.append(judge(pictures, wanted))
            plain.append({k: v for k, v in judge(first, wanted).items() if k in chosen[-1]})
            print(f"{label:28} seed {found[0].seed}: {chosen[-1]}", flush=True)
        print(f"-- {title} ({len(group)} requests, {args.search} seeds each)")
        _summary("found", chosen)
        _summary("first seed", plain)


if __name__ == "__main__":
    main()
