"""`run(..., jobs=N)`: independent stages side by side, dependencies kept, failures and
Ctrl-C stopping the others cleanly, and the same files as one stage at a time."""

from __future__ import annotations

import _thread
import json
import threading
import time
from pathlib import Path

import pytest

from acgmake import Artifact, Stage
from acgmake.errors import UserError
from acgmake.pipeline import Registry, Reporter, run

KINDS = ("words", "left", "right", "both")
#: (stage, "start"/"end", time) as the stages record them.
events: list[tuple[str, str, float]] = []
left_started = threading.Event()


def _record(name: str, what: str) -> None:
    events.append((name, what, time.monotonic()))


def left(ctx):
    _record("left", "start")
    left_started.set()
    ctx.output("left").write_text(ctx.input("words").read_text() + "<")
    _record("left", "end")


def right_waits_for_left(ctx):
    """Finishes only if ``left`` runs while it runs: proof that the two overlap."""
    _record("right", "start")
    if not left_started.wait(timeout=20):
        raise AssertionError("left never ran beside right")
    ctx.output("right").write_text(">" + ctx.input("words").read_text())
    _record("right", "end")


def both(ctx):
    _record("both", "start")
    ctx.output("both").write_text(ctx.input("left").read_text() + ctx.input("right").read_text())
    _record("both", "end")


def registry_with(*stages: Stage) -> Registry:
    registry = Registry()
    for kind in KINDS:
        registry.add_artifact(Artifact(kind, f"{kind}.txt", plugin="acgmake.test"))
    for stage in stages:
        registry.add_stage(stage)
    return registry


def stage(name: str, run, needs: tuple[str, ...], makes: str) -> Stage:
    return Stage(name, needs=needs, makes=(makes,), run=run, plugin="acgmake.test")


@pytest.fixture(autouse=True)
def clear():
    events.clear()
    left_started.clear()


@pytest.fixture
def words(tmp_path: Path) -> Path:
    path = tmp_path / "in.txt"
    path.write_text("hi")
    return path


def test_independent_stages_run_side_by_side_and_a_joining_stage_waits_for_both(
    tmp_path: Path, words: Path
):
    registry = registry_with(
        stage("right", right_waits_for_left, ("words",), "right"),
        stage("left", left, ("words",), "left"),
        stage("both", both, ("left", "right"), "both"),
    )
    result = run(registry, tmp_path / "run", ["both"], inputs={"words": words}, jobs=2)
    assert result.files["both"].read_text() == "hi<>hi"
    times = {(name, what): at for name, what, at in events}
    assert times[("left", "start")] < times[("right", "end")]  # they overlapped
    assert times[("both", "start")] >= max(times[("left", "end")], times[("right", "end")])
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert set(manifest["stages"]) == {"left", "right", "both"}
    assert manifest["order"] == ["right", "left", "both"]


def test_one_job_at_a_time_would_never_have_overlapped(tmp_path: Path, words: Path):
    """The check above can fail: with jobs=1, right waits for a left that never starts."""
    registry = registry_with(
        stage("right", right_waits_for_left, ("words",), "right"),
        stage("left", left, ("words",), "left"),
    )
    left_started.wait = lambda timeout: False  # do not sit out the 20 s
    try:
        with pytest.raises(AssertionError, match="never ran beside"):
            run(registry, tmp_path / "run", ["right", "left"], inputs={"words": words}, jobs=1)
    finally:
        del left_started.wait


def test_a_failing_stage_stops_the_others_at_their_next_progress_report(
    tmp_path: Path, words: Path
):
    def slow(ctx):
        with open(ctx.output("left"), "w") as handle:
            for step in range(400):  # 20 s unless stopped
                handle.write("x")
                ctx.progress(step, 400)
                time.sleep(0.05)

    def broken(ctx):
        left_started.wait(timeout=20)
        time.sleep(0.2)
        raise UserError("the right side is broken")

    registry = registry_with(
        stage("left", slow, ("words",), "left"),
        stage("right", broken, ("words",), "right"),
        stage("both", both, ("left", "right"), "both"),
    )

    def slow_started(ctx):
        left_started.set()
        slow(ctx)

    registry.stages[0] = stage("left", slow_started, ("words",), "left")
    started = time.monotonic()
    with pytest.raises(UserError, match="right side is broken"):
        run(registry, tmp_path / "run", ["both"], inputs={"words": words}, jobs=2)
    assert time.monotonic() - started < 10
    left_over = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert left_over == [".lock"]  # no output, no partial file, no manifest, no input copy


def test_ctrl_c_stops_every_running_stage_and_keeps_the_ones_that_finished(
    tmp_path: Path, words: Path
):
    def slow(ctx):
        with open(ctx.output("left"), "w") as handle:
            for step in range(400):
                handle.write("x")
                ctx.progress(step, 400)
                time.sleep(0.05)

    def quick_then_ctrl_c(ctx):
        ctx.output("right").write_text("done")
        threading.Timer(0.5, _thread.interrupt_main).start()

    registry = registry_with(
        stage("left", slow, ("words",), "left"),
        stage("right", quick_then_ctrl_c, ("words",), "right"),
        stage("both", both, ("left", "right"), "both"),
    )
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run(registry, tmp_path / "run", ["both"], inputs={"words": words}, jobs=2)
    assert time.monotonic() - started < 10
    folder = tmp_path / "run"
    assert sorted(p.name for p in folder.iterdir()) == [
        ".lock",
        "manifest.json",
        "right.txt",
    ]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert set(manifest["stages"]) == {"right"}


def test_progress_from_several_stages_reaches_the_reporter_one_call_at_a_time(
    tmp_path: Path, words: Path
):
    class Recorder(Reporter):
        def __init__(self):
            self.inside = 0
            self.overlaps = 0
            self.calls = 0

        def stage_progress(self, stage, done, total, note):
            self.inside += 1
            self.overlaps += self.inside > 1
            self.calls += 1
            time.sleep(0.001)
            self.inside -= 1

    def chatty(kind):
        def run_stage(ctx):
            for step in range(200):
                ctx.progress(step, 200)
            ctx.output(kind).write_text(kind)

        return run_stage

    registry = registry_with(
        stage("left", chatty("left"), ("words",), "left"),
        stage("right", chatty("right"), ("words",), "right"),
    )
    reporter = Recorder()
    run(
        registry,
        tmp_path / "run",
        ["left", "right"],
        inputs={"words": words},
        jobs=2,
        reporter=reporter,
    )
    assert reporter.calls == 400 and reporter.overlaps == 0


def test_side_by_side_gives_each_stage_its_share_of_the_cores(tmp_path: Path, words: Path):
    seen: dict[str, int] = {}

    def note_cores(kind):
        def run_stage(ctx):
            seen[kind] = ctx.cores
            time.sleep(0.3)
            ctx.output(kind).write_text(kind)

        return run_stage

    registry = registry_with(
        stage("left", note_cores("left"), ("words",), "left"),
        stage("right", note_cores("right"), ("words",), "right"),
        stage("both", note_cores("both"), ("left", "right"), "both"),
    )
    from acgmake.pipeline import default_jobs

    run(registry, tmp_path / "run", ["both"], inputs={"words": words}, jobs=2)
    cores = default_jobs()
    assert seen == {"left": max(1, cores // 2), "right": max(1, cores // 2), "both": cores}


def test_a_stage_takes_the_cores_of_one_that_finished_beside_it(
    tmp_path: Path, words: Path, monkeypatch: pytest.MonkeyPatch
):
    from acgmake import pipeline

    monkeypatch.setattr(pipeline, "default_jobs", lambda: 2)  # the same on any machine
    seen: list[int] = []

    def short(ctx):
        time.sleep(0.3)
        ctx.output("left").write_text("left")

    def long(ctx):
        for step in range(40):
            ctx.progress(step, 40)
            seen.append(ctx.cores)
            time.sleep(0.02)
        ctx.output("right").write_text("right")

    registry = registry_with(
        stage("left", short, ("words",), "left"), stage("right", long, ("words",), "right")
    )
    run(registry, tmp_path / "run", ["left", "right"], inputs={"words": words}, jobs=2)
    assert seen[0] == 1 and seen[-1] == 2, seen  # started beside "left", ended alone


PLUGIN = "acgmake-test-plugin"


def _copy(into: str, source: str):
    def run_it(ctx):
        _record(into, "start")
        ctx.output(into).write_text(ctx.input(source).read_text() + into[0])

    return run_it


@pytest.mark.parametrize("short_cost, first", [(0.1, "right"), (5.0, "left")])
def test_of_the_stages_ready_the_head_of_the_longest_chain_of_work_starts_first(
    tmp_path: Path, words: Path, short_cost: float, first: str
):
    """One slot, two stages ready: ``left`` (a short stage nothing waits for) comes first in
    the plan, ``right`` heads a chain (right, then both) of more work; it starts first, as
    a critical-path scheduler starts it, unless left is said to cost more than the chain.
    (A third-party plugin's stages go through the scheduler even one at a time: it keeps
    their time limits.)"""
    registry = registry_with(
        Stage("left", needs=("words",), makes=("left",), run=_copy("left", "words"),
              plugin=PLUGIN, cost_s=short_cost),
        Stage("right", needs=("words",), makes=("right",), run=_copy("right", "words"),
              plugin=PLUGIN, cost_s=1.0),
        Stage("both", needs=("right",), makes=("both",), run=_copy("both", "right"),
              plugin=PLUGIN, cost_s=1.0),
    )  # fmt: skip
    run(registry, tmp_path / "run", ["left", "both"], inputs={"words": words}, jobs=1)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["order"][0] == "left"  # the plan's order is the registration's
    started = [name for name, what, _ in events if what == "start"]
    assert started[0] == first
    assert sorted(started) == ["both", "left", "right"]
