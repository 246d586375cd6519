"""Robustness report: hostile and broken inputs tried and held, per class of issue 14.

    python benchmarks/robustness_report.py [pytest options]

Runs the robustness tests (``tests/test_robust_*.py``, marker ``robust``), each case in a
subprocess under a memory and a time limit (tests/robust_support.py), and prints how many cases
of each class were tried and how many ended as they must: one clear line, a non-zero exit,
bounded time and memory, no user file lost. Property-based tests count once each; Hypothesis
tries many generated inputs within each.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    command = [sys.executable, "-m", "pytest", "-m", "robust", "-q", "-p", "no:cacheprovider"]
    result = subprocess.run([*command, *sys.argv[1:]], cwd=ROOT, capture_output=True, text=True)
    lines = result.stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if "robustness cases" in line), None)
    if start is None:
        print(result.stdout[-3000:], result.stderr[-2000:], sep="\n")
        return result.returncode or 1
    shown = []
    for line in lines[start:]:
        if line.startswith("=") and "robustness" not in line:
            break
        shown.append(line)
    if lines[-1] not in shown:
        shown.append(lines[-1])
    print("\n".join(shown))
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
