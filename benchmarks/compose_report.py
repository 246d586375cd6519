"""Mora coverage, notes in range, accent agreement and compose time over examples/*.txt.

    python benchmarks/compose_report.py [LYRICS...]

See acgmake.music.report for what each figure means.
"""

import sys
from pathlib import Path

from acgmake.music.report import main

#: The example lyrics beside this script, found from the script itself: acgmake may be
#: installed from a wheel, far from this checkout, and has no examples of its own.
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def lyrics_files(argv: list[str]) -> list[str]:
    """The lyrics files to report on: those named, else every examples/*.txt."""
    if argv:
        return argv
    found = sorted(str(path) for path in EXAMPLES.glob("*.txt"))
    if not found:
        raise SystemExit(f"no lyrics files in {EXAMPLES}; name some: {sys.argv[0]} LYRICS...")
    return found


if __name__ == "__main__":
    raise SystemExit(main(lyrics_files(sys.argv[1:])))
