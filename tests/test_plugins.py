"""Loading third-party plugins from entry points, and containing the broken ones."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from acgmake import plugins as plugin_module
from acgmake.cli import cli
from acgmake.plugins import Plugins

GOOD = '''
from acgmake import Artifact, Stage, hookimpl

def _run(ctx):
    ctx.output("note").write_text("made by good")

@hookimpl
def register_artifacts(register):
    register(Artifact("note", "note.txt", "a note"))
    register(Artifact("hint", "hint.txt", "an optional hint"))

@hookimpl
def register_stages(register):
    register(Stage("jot", needs=(), uses=("hint",), makes=("note",), run=_run,
                   help="Write a note."))

@hookimpl
def register_commands(cli):
    @cli.command()
    def hello():
        """Say hello."""
        print("hello from good")
'''

RAISES_IN_HOOK = """
from acgmake import Artifact, Stage, hookimpl

@hookimpl
def register_artifacts(register):
    register(Artifact("junk", "junk.txt"))

@hookimpl
def register_stages(register):
    register(Stage("junk", needs=(), makes=("junk",), run=print))
    raise ValueError("half registered")
"""


def install_fake_distribution(root: Path, dist: str, module: str, source: str) -> None:
    """Write a module and a .dist-info folder with an entry point, as pip would."""
    (root / f"{module}.py").write_text(source)
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[acgmake]\n{module} = {module}\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    install_fake_distribution(root, "acgmake-good", "goodplug", textwrap.dedent(GOOD))
    install_fake_distribution(
        root, "acgmake-crashy", "crashyplug", "raise ImportError('no numpy 9')"
    )
    install_fake_distribution(root, "acgmake-half", "halfplug", textwrap.dedent(RAISES_IN_HOOK))
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delenv(plugin_module.ENV_VAR, raising=False)
    monkeypatch.setattr(plugin_module, "DEFAULT_PLUGINS", ())
    plugin_module.reset()
    yield root
    plugin_module.reset()


def load() -> Plugins:
    plugins = Plugins()
    plugins.load()
    return plugins


def test_a_plugin_that_fails_to_import_is_marked_broken_and_the_others_load(site: Path):
    plugins = load()
    assert plugins.infos["acgmake-good"].stages == ["jot"]
    assert plugins.infos["acgmake-good"].version == "0.1"
    jot = plugins.registry.stage("jot")
    assert (jot.plugin, jot.uses, jot.makes) == ("acgmake-good", ("hint",), ("note",))
    crashy = plugins.infos["acgmake-crashy"]
    assert crashy.broken and "ImportError: no numpy 9" in crashy.error
    assert [s.name for s in plugins.registry.stages] == ["jot"]


def test_a_plugin_whose_hook_raises_loses_everything_it_registered(site: Path):
    plugins = load()
    half = plugins.infos["acgmake-half"]
    assert half.broken and "ValueError: half registered" in half.error
    assert "junk" not in plugins.registry.artifacts
    assert all(stage.plugin != "acgmake-half" for stage in plugins.registry.stages)


def test_the_environment_variable_narrows_what_loads(site: Path, monkeypatch):
    monkeypatch.setenv(plugin_module.ENV_VAR, "acgmake-good")
    assert set(load().infos) == {"acgmake-good"}
    monkeypatch.setenv(plugin_module.ENV_VAR, "")
    assert load().infos == {}


def test_the_cli_lists_broken_plugins_and_keeps_working(site: Path):
    runner = CliRunner()
    result = runner.invoke(cli, ["plugins"])
    assert result.exit_code == 0, result.output
    records = {r["name"]: r for r in json.loads(result.stdout)}
    assert records["acgmake-crashy"]["status"] == "broken"
    assert records["acgmake-good"]["status"] == "ok"
    assert records["acgmake-good"]["stages"] == ["jot"]
    assert records["acgmake-good"]["commands"] == ["hello"]
    assert "Warning: plugin acgmake-crashy is broken" in result.stderr

    hello = runner.invoke(cli, ["hello"])
    assert hello.exit_code == 0 and "hello from good" in hello.stdout


def test_a_plugin_stage_gets_a_command_that_runs_it(site: Path, tmp_path: Path):
    runner = CliRunner()
    result = runner.invoke(cli, ["jot", "--workdir", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "note.txt").read_text() == "made by good"


def test_stages_register_in_load_order_so_ties_keep_that_order(make_plugin):
    from acgmake import Artifact, Stage

    def kinds(register):
        register(Artifact("a", "a.txt"))
        register(Artifact("b", "b.txt"))

    first = make_plugin(
        "acgmake.first",
        register_artifacts=kinds,
        register_stages=lambda register: register(
            Stage("first", needs=(), makes=("a",), run=print)
        ),
    )
    second = make_plugin(
        "acgmake.second",
        register_stages=lambda register: register(
            Stage("second", needs=(), makes=("b",), run=print)
        ),
    )
    plugins = Plugins()
    plugins.add(first, "acgmake.first", "1", builtin=True)
    plugins.add(second, "acgmake.second", "1", builtin=True)
    plugins._collect()
    assert [s.name for s in plugins.registry.stages] == ["first", "second"]
