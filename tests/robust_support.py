"""Helpers for the robustness tests (``tests/test_robust_*.py``): hostile and broken inputs.

Each such test is marked ``@pytest.mark.robust(n)`` with the class of fault it tries, as
issue 14 lists them (:data:`CLASSES`); ``benchmarks/robustness_report.py`` counts the cases
tried and held per class. A case runs ``acgmake`` in a subprocess under a memory limit and a
time limit (:func:`acgmake_limited`), so that a regression fails the test instead of taking
the machine down, and checks that it ended the way a user error must
(:func:`assert_clear_failure`): a non-zero exit, one line saying what is wrong, no traceback.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

CLASSES = {
    1: "unbounded memory or time from a small crafted file",
    2: "tracebacks on edge values",
    3: "silent garbage",
    4: "lost or corrupted user files",
    5: "plugins slipping past isolation",
    6: "orphaned workers",
    7: "late checks",
}

#: Address-space limit for a case (torch alone maps about 1.5 GB of virtual memory).
MEMORY_LIMIT_BYTES = 6 * 1024**3


def _limit_memory(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def acgmake_limited(
    *args: str,
    cwd: Path,
    timeout_s: float = 120.0,
    memory_bytes: int = MEMORY_LIMIT_BYTES,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run ``python -m acgmake *args`` in ``cwd`` under an address-space limit; a case that
    runs past ``timeout_s`` raises ``subprocess.TimeoutExpired`` (the test fails)."""
    environment = {**os.environ, "ACGMAKE_PLUGINS": "", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "acgmake", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=environment,
        preexec_fn=lambda: _limit_memory(memory_bytes),
    )


def assert_clear_failure(result: subprocess.CompletedProcess, *words: str) -> str:
    """``result`` failed as a user error should: non-zero exit, no traceback, and its last
    stderr line is ``Error: ...`` mentioning each of ``words`` (case-insensitive). Returns
    that line."""
    err = result.stderr
    assert result.returncode not in (0, None), f"exit 0 for a bad input; stderr: {err[-2000:]}"
    assert "Traceback" not in err, err[-4000:]
    assert result.returncode > 0, f"killed by signal {-result.returncode}: {err[-2000:]}"
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "no message at all"
    last = lines[-1]
    assert last.startswith("Error:") or last.startswith("Usage:") or "Error:" in last, last
    for word in words:
        assert word.lower() in last.lower(), f"{word!r} not in {last!r}"
    return last
