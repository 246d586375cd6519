"""Planning, caching and atomic outputs of the pipeline, on small text stages."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from acgmake import Artifact, Param, Stage
from acgmake.errors import PluginError, UserError
from acgmake.pipeline import NotAvailable, Registry, plan, replaced_by, run

calls: list[str] = []


def shout(ctx):
    calls.append("shout")
    text = ctx.input("words").read_text()
    ctx.output("loud").write_text(text.upper() * ctx.params["times"])


def exclaim(ctx):
    calls.append("exclaim")
    ctx.output("loud").write_text(ctx.input("loud").read_text() + "!")


def frame(ctx):
    calls.append("frame")
    note = ctx.input("note")
    extra = note.read_text() if note else ""
    ctx.output("framed").write_text(f"[{ctx.input('loud').read_text()}{extra}]#{ctx.seed}")


def registry_with(*stages: Stage) -> Registry:
    registry = Registry()
    for kind in ("words", "loud", "framed", "note"):
        registry.add_artifact(Artifact(kind, f"{kind}.txt", plugin="acgmake.test"))
    for stage in stages:
        registry.add_stage(stage)
    return registry


SHOUT = Stage(
    "shout",
    needs=("words",),
    makes=("loud",),
    run=shout,
    params=(Param("times", 1, "repeat"),),
    plugin="acgmake.test",
)
EXCLAIM = Stage("exclaim", needs=("loud",), makes=("loud",), run=exclaim, plugin="acgmake.test")
FRAME = Stage(
    "frame", needs=("loud",), uses=("note",), makes=("framed",), run=frame, plugin="acgmake.test"
)


@pytest.fixture(autouse=True)
def clear_calls():
    calls.clear()


@pytest.fixture
def words(tmp_path: Path) -> Path:
    path = tmp_path / "in.txt"
    path.write_text("hi")
    return path


def names(stages):
    return [stage.name for stage in stages]


def test_a_refiner_runs_between_the_producer_and_the_consumer_whatever_the_registration_order():
    registry = registry_with(FRAME, EXCLAIM, SHOUT)
    assert names(plan(registry, ["framed"], ["words"])) == ["shout", "exclaim", "frame"]


def test_a_given_kind_leaves_out_its_producer_but_keeps_its_refiners():
    registry = registry_with(SHOUT, EXCLAIM, FRAME)
    assert names(plan(registry, ["framed"], ["loud"])) == ["exclaim", "frame"]


def test_a_kind_nothing_makes_is_a_clear_error():
    registry = registry_with(FRAME)
    with pytest.raises(UserError, match="nothing makes 'loud'.*needed by frame"):
        plan(registry, ["framed"], [])


def test_stages_that_need_each_other_are_reported_as_a_cycle():
    a = Stage("a", needs=("words",), makes=("loud",), run=shout, plugin="x")
    b = Stage("b", needs=("loud",), makes=("words",), run=shout, plugin="y")
    with pytest.raises(UserError, match="cycle"):
        plan(registry_with(a, b), ["loud"], [])


def test_a_stage_that_declares_it_replaces_another_runs_in_its_place_in_any_order():
    other = Stage(
        "other", needs=("note",), makes=("loud",), run=shout, plugin="third", replaces="shout"
    )
    for registry in (registry_with(SHOUT, other), registry_with(other, SHOUT)):
        assert names(plan(registry, ["loud"], ["note", "words"])) == ["other"]
        assert replaced_by(registry) == {"shout": "other"}


def test_a_producer_of_the_same_kinds_that_does_not_say_so_is_an_error_not_a_silent_swap():
    other = Stage("other", needs=("note",), makes=("loud",), run=shout, plugin="third")
    with pytest.raises(UserError, match=r"replaces='shout'"):
        plan(registry_with(SHOUT, other), ["loud"], ["note", "words"])


def test_a_replacement_that_does_not_make_what_it_replaces_is_refused():
    partial = Stage(
        "partial", needs=("note",), makes=("framed",), run=shout, plugin="third", replaces="shout"
    )
    problems = registry_with(SHOUT, partial).check()
    assert [stage.name for stage, _ in problems] == ["partial"]
    assert "does not make loud" in problems[0][1]


def test_two_producers_of_one_kind_that_do_not_replace_each_other_are_an_error():
    twin = Stage("twin", needs=("note",), makes=("loud", "framed"), run=shout, plugin="third")
    registry = registry_with(twin, SHOUT)
    # shout comes later but makes only part of what twin makes, so it cannot replace twin.
    with pytest.raises(UserError, match="both 'twin'.*and 'shout'.*make 'loud'"):
        plan(registry, ["framed"], ["note", "words"])


def test_run_writes_every_artifact_and_a_manifest(tmp_path: Path, words: Path):
    result = run(
        registry_with(SHOUT, EXCLAIM, FRAME),
        tmp_path / "run",
        ["framed"],
        inputs={"words": words},
        seed=7,
        plugins=[{"name": "p", "version": "2"}],
    )
    assert (tmp_path / "run" / "framed.txt").read_text() == "[HI!]#7"
    # The producer's output, before the refiner rewrote it, is kept apart, not overwritten.
    assert (tmp_path / "run" / "stages" / "shout" / "loud.txt").read_text() == "HI"
    assert (tmp_path / "run" / "loud.txt").read_text() == "HI!"
    assert result.files["framed"] == tmp_path / "run" / "framed.txt"
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["seed"] == 7
    assert manifest["order"] == ["shout", "exclaim", "frame"]
    assert manifest["inputs"]["words"]["source"] == str(words.resolve())
    assert manifest["plugins"] == [{"name": "p", "version": "2"}]
    assert manifest["stages"]["shout"]["params"] == {"times": 1}
    assert len(manifest["inputs"]["words"]["sha256"]) == 64


def test_a_second_run_is_cached_and_a_changed_parameter_reruns_only_what_depends_on_it(
    tmp_path: Path, words: Path
):
    registry = registry_with(SHOUT, EXCLAIM, FRAME)
    run(registry, tmp_path / "run", ["framed"], inputs={"words": words})
    calls.clear()
    again = run(registry, tmp_path / "run", ["framed"], inputs={"words": words})
    assert calls == [] and again.cached == ["shout", "exclaim", "frame"]

    run(
        registry,
        tmp_path / "run",
        ["framed"],
        inputs={"words": words},
        params={"exclaim": {}, "shout": {"times": 2}},
    )
    assert calls == ["shout", "exclaim", "frame"]
    calls.clear()
    # A changed input file re-runs; an unchanged one after a touch does not.
    words.write_text("hi")
    run(
        registry,
        tmp_path / "run",
        ["framed"],
        inputs={"words": words},
        params={"shout": {"times": 2}},
    )
    assert calls == []


def test_an_optional_input_that_appears_invalidates_the_cache(tmp_path: Path, words: Path):
    registry = registry_with(SHOUT, FRAME)
    run(registry, tmp_path / "run", ["framed"], inputs={"words": words})
    note = tmp_path / "note.txt"
    note.write_text("+n")
    calls.clear()
    run(registry, tmp_path / "run", ["framed"], inputs={"words": words, "note": note})
    assert calls == ["frame"]
    assert (tmp_path / "run" / "framed.txt").read_text() == "[HI+n]#0"


def test_force_and_a_damaged_output_rerun_the_stage(tmp_path: Path, words: Path):
    registry = registry_with(SHOUT)
    run(registry, tmp_path / "run", ["loud"], inputs={"words": words})
    calls.clear()
    run(registry, tmp_path / "run", ["loud"], inputs={"words": words}, force=True)
    assert calls == ["shout"]
    (tmp_path / "run" / "loud.txt").write_text("edited by hand")
    calls.clear()
    run(registry, tmp_path / "run", ["loud"], inputs={"words": words})
    assert calls == ["shout"]
    assert (tmp_path / "run" / "loud.txt").read_text() == "HI"


def test_a_failing_stage_leaves_no_file_under_the_final_name(tmp_path: Path, words: Path):
    def half_then_fail(ctx):
        ctx.output("loud").write_text("half")
        raise KeyboardInterrupt

    registry = registry_with(
        Stage("shout", needs=("words",), makes=("loud",), run=half_then_fail, plugin="acgmake.test")
    )
    with pytest.raises(KeyboardInterrupt):
        run(registry, tmp_path / "run", ["loud"], inputs={"words": words})
    left = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert left == [".lock"]  # the copy of the input goes too: the run did not happen


def test_a_file_given_to_a_failed_run_is_not_read_by_a_later_run_that_did_not_give_it(
    tmp_path: Path, words: Path
):
    note = tmp_path / "note.txt"
    note.write_text("+note")
    first = tmp_path / "first-note.txt"
    first.write_text("+first")

    def fails(ctx):
        raise UserError("the frame failed")

    registry = registry_with(SHOUT, FRAME)
    folder = tmp_path / "run"
    run(registry, folder, ["framed"], inputs={"words": words, "note": first})
    broken = registry_with(SHOUT, Stage("frame", ("loud",), ("framed",), fails, uses=("note",)))
    with pytest.raises(UserError):
        run(broken, folder, ["framed"], inputs={"words": words, "note": note})
    assert (folder / "note.txt").read_text() == "+first"  # the earlier one is back
    (folder / "note.txt").unlink()
    with pytest.raises(UserError):
        run(broken, folder, ["framed"], inputs={"words": words, "note": note})
    assert not (folder / "note.txt").exists()
    result = run(registry, folder, ["framed"], inputs={"words": words})
    assert result.files["framed"].read_text() == "[HI]#0"  # no note from the failed runs


def test_a_third_party_stage_that_raises_is_named_in_a_one_line_error(tmp_path: Path, words: Path):
    def broken(ctx):
        raise ZeroDivisionError("oops")

    registry = registry_with(
        Stage("sparkle", needs=("words",), makes=("loud",), run=broken, plugin="acgmake-sparkle")
    )
    with pytest.raises(
        PluginError,
        match="stage 'sparkle' from plugin acgmake-sparkle failed: ZeroDivisionError: oops",
    ):
        run(registry, tmp_path / "run", ["loud"], inputs={"words": words})
    assert not (tmp_path / "run" / "loud.txt").exists()


def test_a_stage_that_does_not_write_its_output_is_reported(tmp_path: Path, words: Path):
    registry = registry_with(
        Stage(
            "lazy", needs=("words",), makes=("loud",), run=lambda ctx: None, plugin="acgmake-lazy"
        )
    )
    with pytest.raises(PluginError, match="did not write loud"):
        run(registry, tmp_path / "run", ["loud"], inputs={"words": words})


def test_unknown_stage_parameters_are_refused(tmp_path: Path, words: Path):
    with pytest.raises(UserError, match="no parameter 'loudness'"):
        run(
            registry_with(SHOUT),
            tmp_path / "run",
            ["loud"],
            inputs={"words": words},
            params={"shout": {"loudness": 3}},
        )


def test_assets_are_recorded_with_credits_and_checked_on_the_next_run(tmp_path: Path, words: Path):
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")

    def with_asset(ctx):
        calls.append("asset")
        ctx.use_asset(model, name="model", license="MIT", credit="Model: test (MIT)")
        ctx.output("loud").write_text("x")

    registry = registry_with(
        Stage("shout", needs=("words",), makes=("loud",), run=with_asset, plugin="acgmake.test")
    )
    run(registry, tmp_path / "run", ["loud"], inputs={"words": words})
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["credits"] == ["Model: test (MIT)"]
    assert manifest["stages"]["shout"]["assets"][0]["license"] == "MIT"
    model.write_bytes(b"other weights")
    calls.clear()
    run(registry, tmp_path / "run", ["loud"], inputs={"words": words})
    assert calls == ["asset"]


def test_rerunning_one_stage_keeps_the_credits_of_the_earlier_stages_whose_files_it_reads(
    tmp_path: Path, words: Path
):
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")

    def with_asset(ctx):
        ctx.use_asset(model, name="model", credit="Model: test (MIT)")
        ctx.output("loud").write_text("x")

    registry = registry_with(
        Stage("shout", needs=("words",), makes=("loud",), run=with_asset, plugin="acgmake.test"),
        FRAME,
    )
    folder = tmp_path / "run"
    run(registry, folder, ["framed"], inputs={"words": words})
    run(registry, folder, ["framed"], only=["frame"], force=True)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["order"] == ["frame"] and manifest["credits"] == ["Model: test (MIT)"]
    # Once loud.txt is no longer what that run made, its model is no longer credited.
    (folder / "loud.txt").write_text("the user's own")
    run(registry, folder, ["framed"], only=["frame"], force=True)
    assert json.loads((folder / "manifest.json").read_text())["credits"] == []


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_stage_sees_the_credits_of_the_stages_before_it(tmp_path: Path, words: Path, jobs):
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    seen: list[list[str]] = []

    def with_asset(ctx):
        ctx.use_asset(model, name="model", credit="Model: test (MIT)")
        ctx.output("loud").write_text("x")

    def framer(ctx):
        seen.append(ctx.credits)
        ctx.output("framed").write_text("y")

    registry = registry_with(
        Stage("shout", needs=("words",), makes=("loud",), run=with_asset, plugin="acgmake.test"),
        Stage("frame", needs=("loud",), makes=("framed",), run=framer, plugin="acgmake.test"),
    )
    run(registry, tmp_path / "run", ["framed"], inputs={"words": words}, jobs=jobs)
    run(registry, tmp_path / "run", ["framed"], only=["frame"], force=True, jobs=jobs)
    assert seen == [["Model: test (MIT)"], ["Model: test (MIT)"]]


def test_an_unwritable_run_folder_is_a_clear_error(tmp_path: Path, words: Path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match="cannot create the run folder"):
        run(registry_with(SHOUT), blocker / "run", ["loud"], inputs={"words": words})


def test_a_given_file_over_its_kinds_size_limit_is_refused_before_it_is_copied(tmp_path: Path):
    registry = Registry()
    registry.add_artifact(Artifact("words", "words.txt", max_bytes=10))
    registry.add_artifact(Artifact("loud", "loud.txt"))
    registry.add_stage(SHOUT)
    big = tmp_path / "big.txt"
    big.write_text("x" * 2048)
    with pytest.raises(UserError, match=r"big.txt is 2 KB; a words file can be at most 10 bytes"):
        run(registry, tmp_path / "run", ["loud"], inputs={"words": big})
    assert not (tmp_path / "run" / "words.txt").exists()


def test_a_used_kind_is_made_when_its_maker_can_run_and_skipped_when_it_cannot():
    noter = Stage("noter", needs=("words",), makes=("note",), run=shout, plugin="acgmake.test")
    registry = registry_with(SHOUT, FRAME, noter)
    assert names(plan(registry, ["framed"], ["words"])) == ["shout", "noter", "frame"]
    # Given 'loud' but no words: nothing can make the note, so frame runs without it.
    assert names(plan(registry, ["framed"], ["loud"])) == ["frame"]


def shy(ctx):
    calls.append("shy")
    if ctx.params["able"]:
        ctx.output("note").write_text("+note")
    else:
        raise NotAvailable("the words have no note")


SHY = Stage(
    "shy",
    needs=("words",),
    makes=("note",),
    run=shy,
    params=(Param("able", True, "make the note"),),
    plugin="acgmake.test",
)


def test_a_stage_that_is_not_available_leaves_its_users_running_without_it(
    tmp_path: Path, words: Path
):
    def stamp(ctx):
        calls.append("stamp")
        ctx.output("framed").write_text("stamped " + ctx.input("note").read_text())

    stamper = Stage("stamp", needs=("note",), makes=("framed",), run=stamp, plugin="x.test")
    registry = registry_with(SHOUT, SHY, FRAME)
    workdir = tmp_path / "run"
    run(registry, workdir, ["framed"], inputs={"words": words})
    assert (workdir / "framed.txt").read_text() == "[HI+note]#0"
    # Now the note cannot be made: the stale note.txt goes, frame runs without it.
    result = run(
        registry, workdir, ["framed"], inputs={"words": words}, params={"shy": {"able": False}}
    )
    assert (workdir / "framed.txt").read_text() == "[HI]#0"
    assert not (workdir / "note.txt").exists()
    assert "note" not in result.files
    manifest = json.loads((workdir / "manifest.json").read_text())
    assert manifest["stages"]["shy"]["unavailable"] == "the words have no note"

    # A stage that needs it is skipped in turn; asking for its output is a clear error.
    registry = registry_with(SHY, stamper)
    calls.clear()
    with pytest.raises(UserError, match="framed was not made: the words have no note"):
        run(
            registry,
            tmp_path / "run2",
            ["framed"],
            inputs={"words": words},
            params={"shy": {"able": False}},
        )
    assert calls == ["shy"]
    with pytest.raises(UserError, match="note was not made: the words have no note"):
        run(
            registry,
            tmp_path / "run2",
            ["note"],
            inputs={"words": words},
            params={"shy": {"able": False}},
            only=["shy"],
        )


def test_hashes_are_remembered_while_a_file_is_unchanged_and_a_same_size_edit_is_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import hashlib
    import os
    import time

    from acgmake import pipeline

    cache = pipeline.HashCache()
    path = tmp_path / "song.wav"
    path.write_bytes(b"a" * 1000)
    real_open = open
    opened: list[str] = []
    monkeypatch.setattr(
        "builtins.open", lambda name, *a, **k: opened.append(str(name)) or real_open(name, *a, **k)
    )
    assert cache.sha256(path) == hashlib.sha256(b"a" * 1000).hexdigest()
    # Hashed as soon as it was written: not trusted (a change in the same tick of the file
    # system's clock would not show), so read again...
    cache.sha256(path)
    assert opened.count(str(path)) == 2
    time.sleep(0.15)
    kept = tmp_path / ".hashes.json"
    cache.save(kept)  # ...and again when it is kept, once it is old enough to trust
    assert opened.count(str(path)) == 3

    # A new process (a new cache) takes the hash from the file: nothing is read again.
    later = pipeline.HashCache()
    later.load(kept)
    opened.clear()
    assert later.sha256(path) == hashlib.sha256(b"a" * 1000).hexdigest()
    assert str(path) not in opened

    # Rewritten in place to the same size, its modification time put back: still seen.
    info = path.stat()
    with real_open(path, "r+b") as handle:
        handle.write(b"b")
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert later.sha256(path) == hashlib.sha256(b"b" + b"a" * 999).hexdigest()


@pytest.mark.parametrize(
    "kept", ["{not json", "[1, 2]", '{"/x": [1, 2, 3, 4, 5, "nothex", 6]}', '{"/x": "a"}']
)
def test_a_damaged_hashes_file_is_ignored(tmp_path: Path, words: Path, kept: str):
    registry = registry_with(SHOUT)
    run(registry, tmp_path / "run", ["loud"], inputs={"words": words})
    (tmp_path / "run" / ".hashes.json").write_text(kept)
    calls.clear()
    again = run(registry, tmp_path / "run", ["loud"], inputs={"words": words})
    assert again.cached == ["shout"] and calls == []
    (tmp_path / "run" / "loud.txt").write_text("edited by hand")
    run(registry, tmp_path / "run", ["loud"], inputs={"words": words})
    assert calls == ["shout"] and (tmp_path / "run" / "loud.txt").read_text() == "HI"


def test_an_optional_refiner_runs_only_when_asked_for(tmp_path: Path, words: Path):
    # An optional stage that refines a kind the chain needs (a sketch simplifier refining the
    # character) must not slip into every run because something reads that kind.
    optional = dataclasses.replace(EXCLAIM, optional=True)
    registry = registry_with(SHOUT, optional, FRAME)
    assert [s.name for s in plan(registry, ["framed"], {"words"})] == ["shout", "frame"]
    # Asking for the kind it refines is not asking for it; asking for what it makes is.
    assert [s.name for s in plan(registry, ["loud"], {"words"})] == ["shout"]
    made = Stage("note", needs=("words",), makes=("note",), run=shout, optional=True)
    registry = registry_with(SHOUT, optional, FRAME, made)
    assert [s.name for s in plan(registry, ["note"], {"words"})] == ["note"]
    assert [s.name for s in plan(registry, ["framed"], {"words"}, also=["exclaim"])] == [
        "shout", "exclaim", "frame",
    ]  # fmt: skip
    registry = registry_with(SHOUT, optional, FRAME)
    run(registry, tmp_path / "run", ["framed"], inputs={"words": words})
    assert calls == ["shout", "frame"]
    calls.clear()
    run(registry, tmp_path / "run", ["framed"], inputs={"words": words}, also=["exclaim"])
    assert calls[-2:] == ["exclaim", "frame"]
