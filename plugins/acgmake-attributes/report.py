"""How often the held-out judge reads what was asked, for characters chosen by
``acgmake find-character`` against the first seed of the same range (no choice).

    python plugins/acgmake-attributes/report.py [--search 512]
"""

from __future__ import annotations

import argparse

import numpy as np
from acgmake_attributes import HAIR, Wanted, find, judge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--search", type=int, default=512)
    args = parser.parse_args()
    chosen, plain = [], []
    for index, (name, rgb) in enumerate(HAIR.items()):
        for mouth in ("open", "closed"):
            wanted = Wanted(hair=rgb, mouth=mouth, eyes="open")
            start = 10_000 + 1000 * (2 * index + (mouth == "closed"))
            found, pictures = find(wanted, search=args.search, start=start, count=1)
            _, first = find(Wanted(), search=1, start=start, count=1)
            chosen.append(judge(pictures, wanted))
            plain.append(judge(first, wanted))
            print(f"{name:7} mouth {mouth:6} seed {found[0].seed}: {chosen[-1]}", flush=True)
    for label, rows in (("found", chosen), ("first seed", plain)):
        keys = rows[0].keys()
        summary = {key: round(float(np.mean([row[key] for row in rows])), 3) for key in keys}
        everything = np.mean(
            [r["hair_within_15"] * r["mouth_as_asked"] * r["eyes_as_asked"] for r in rows]
        )
        print(f"{label:10}: {summary}, all three as asked {everything:.2f}")


if __name__ == "__main__":
    main()
