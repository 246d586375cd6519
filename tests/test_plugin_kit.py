"""The kit for plugin authors: acgmake.testing, `acgmake plugin new`, the typed API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import acgmake
from acgmake import Artifact, Param, Stage, UserError, hookimpl
from acgmake.cli import main
from acgmake.plugin_template import plugin_files, write_plugin
from acgmake.testing import PluginProblem, load_plugins, plugins_loaded, run_command, run_stage


def _colored(path: Path) -> Path:
    """A stand-in colored.png: an opaque square in the middle of a transparent picture."""
    picture = np.zeros((80, 80, 4), np.uint8)
    picture[20:60, 20:60] = (200, 80, 80, 255)
    Image.fromarray(picture).save(path)
    return path


def test_run_stage_runs_an_installed_plugins_stage_and_returns_what_it_made(tmp_path):
    made = run_stage(
        "sticker",
        {"colored": _colored(tmp_path / "colored.png")},
        {"sticker_px": 5},
        plugins=["acgmake_sticker"],
        workdir=tmp_path / "run",
    )
    assert set(made) == {"colored"} and made["colored"].parent == tmp_path / "run"
    alpha = np.asarray(Image.open(made["colored"]).getchannel("A"))
    # The outline grows the square by about 5 pixels on each side.
    rows = np.flatnonzero(alpha.max(axis=1) > 128)
    assert 13 <= rows[0] <= 16 and 63 <= rows[-1] <= 66


def test_run_stage_checks_options_as_the_command_line_does(tmp_path):
    with pytest.raises(UserError, match="--sticker-px"):
        run_stage(
            "sticker",
            {"colored": _colored(tmp_path / "colored.png")},
            {"sticker_px": 999},
            plugins=["acgmake_sticker"],
            workdir=tmp_path / "run",
        )


def test_run_stage_takes_a_stage_object_with_its_own_kinds(tmp_path):
    class Kinds:
        @staticmethod
        @hookimpl
        def register_artifacts(register):
            register(Artifact("shout", "shout.txt"))

    def shout(ctx):
        words = ctx.input("lyrics").read_text("utf-8")
        ctx.output("shout").write_text(words.upper() * ctx.params["times"], encoding="utf-8")

    stage = Stage("shout", needs=("lyrics",), makes=("shout",), run=shout,
                  params=(Param("times", 1, "How often."),))  # fmt: skip
    lyrics = tmp_path / "words.txt"
    lyrics.write_text("la", encoding="utf-8")
    made = run_stage(stage, {"lyrics": lyrics}, {"times": 2}, plugins=[Kinds],
                     workdir=tmp_path / "run")  # fmt: skip
    assert made["shout"].read_text("utf-8") == "LALA"


def test_a_broken_plugin_fails_the_test_with_its_own_error():
    class Broken:
        @staticmethod
        @hookimpl
        def register_stages(register):
            raise RuntimeError("typo in my plugin")

    with pytest.raises(PluginProblem, match="typo in my plugin"):
        load_plugins([Broken])


def test_plugins_loaded_holds_exactly_the_built_ins_and_the_named_plugins():
    with plugins_loaded("acgmake_sticker") as registry:
        names = [stage.name for stage in registry.stages]
    assert "sticker" in names and "colorize" in names
    with plugins_loaded() as registry:
        assert "sticker" not in [stage.name for stage in registry.stages]
    with plugins_loaded(builtins=("acgmake.stages.compose",)) as registry:
        assert [stage.name for stage in registry.stages] == ["compose", "midi", "karaoke"]


def test_run_command_runs_acgmake_with_exactly_the_named_installed_plugins(tmp_path):
    with_sticker = run_command("stages", plugins=["acgmake-sticker"], cwd=tmp_path)
    without = run_command("stages", plugins=[], cwd=tmp_path)
    assert with_sticker.returncode == 0 == without.returncode, with_sticker.stderr
    assert "sticker" in with_sticker.stdout and "sticker" not in without.stdout
    assert "colorize" in without.stdout  # the built-ins always
    # A user's error comes back as the user sees it: one line, a non-zero exit.
    refused = run_command("sticker", "missing.png", plugins=["acgmake-sticker"], cwd=tmp_path)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "missing.png" in refused.stderr.strip().splitlines()[-1]


def test_the_api_is_typed_and_exports_what_a_plugin_needs():
    assert (Path(acgmake.__file__).parent / "py.typed").is_file()
    for name in ("Artifact", "Param", "Stage", "StageContext", "UserError", "hookimpl"):
        assert name in acgmake.__all__
    from acgmake import hookspecs

    assert hookspecs.register_stages.__annotations__["register"] == "Callable[[Stage], None]"


def test_plugin_new_writes_a_package_whose_own_test_passes(tmp_path):
    main(["plugin", "new", "cover", "--dir", str(tmp_path)])
    folder = tmp_path / "acgmake-cover"
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == [
        "README.md",
        "pyproject.toml",
        "src/acgmake_cover/__init__.py",
        "tests/test_cover.py",
    ]
    pyproject = (folder / "pyproject.toml").read_text("utf-8")
    assert '[project.entry-points.acgmake]\ncover = "acgmake_cover"' in pyproject
    # Its test, run by pytest as its author would run it (the package on the path, as
    # `pip install -e` would put it).
    environment = {**os.environ, "PYTHONPATH": str(folder / "src")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder / "tests")],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_plugin_new_never_overwrites_and_refuses_a_bad_name(tmp_path):
    write_plugin("cover", tmp_path)
    mine = tmp_path / "acgmake-cover" / "README.md"
    mine.write_text("my own notes", encoding="utf-8")
    with pytest.raises(UserError, match="already exists"):
        write_plugin("cover", tmp_path)
    assert mine.read_text("utf-8") == "my own notes"
    for bad in ("Cover", "../x", "a b", "", "x" * 60, "-x"):
        with pytest.raises(UserError, match="not a plugin name"):
            plugin_files(bad)
