"""Work that a stage splits into pieces, run side by side in threads on the cores it has.

For libraries that let go of Python's lock while they compute (WORLD, numpy on large arrays,
torch): the pieces run in threads, and their results are taken in order, so what a stage
makes is the same whatever the number of cores.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

_T = TypeVar("_T")
#: The most threads :func:`in_order` runs.
MOST_WORKERS = 8


def in_order(
    tasks: Iterable[Callable[[], _T]],
    workers: Callable[[], int],
    progress: Callable[[int], None] | None = None,
) -> Iterator[_T]:
    """The results of ``tasks``, in order, computed up to ``workers()`` at a time in threads
    (asked again as each result is taken, so a stage can use more cores as they free up).
    Each task's result is the same whoever computes it, so the output does not depend on the
    cores; no more than ``workers()`` results wait at once, so memory stays bounded."""
    pending: deque[Future[_T]] = deque()
    todo = iter(tasks)
    done = 0
    with ThreadPoolExecutor(max_workers=MOST_WORKERS, thread_name_prefix="acgmake") as pool:
        try:
            while True:
                wanted = max(1, min(MOST_WORKERS, workers()))
                while len(pending) < wanted:
                    task = next(todo, None)
                    if task is None:
                        break
                    pending.append(pool.submit(task))
                if not pending:
                    return
                yield pending.popleft().result()
                done += 1
                if progress is not None:
                    progress(done)
        finally:
            for future in pending:
                future.cancel()
