"""Mora coverage, notes in range, accent agreement and compose time over examples/*.txt.

    python benchmarks/compose_report.py [LYRICS...]

See acgmake.music.report for what each figure means.
"""

from acgmake.music.report import main

if __name__ == "__main__":
    raise SystemExit(main())
