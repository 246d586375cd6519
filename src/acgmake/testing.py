"""Test helpers for plugin authors, the same ones acgmake's own tests use.

Run one stage on files you give it and get back what it made::

    from acgmake.testing import run_stage

    def test_my_stage_outlines_the_character(tmp_path):
        made = run_stage("sticker", {"colored": "tests/data/colored.png"},
                         {"width": 12}, plugins=["acgmake_sticker"], workdir=tmp_path)
        assert made["sticker"].exists()

Load exactly the plugins you name (acgmake's built-in stages, and no other installed plugin
unless you name it), for tests that plan or run more than one stage::

    from acgmake.testing import plugins_loaded
    from acgmake.pipeline import run

    def test_my_plugin_slots_into_the_chain(tmp_path):
        with plugins_loaded("acgmake_sticker") as registry:
            assert "sticker" in [stage.name for stage in registry.stages]

Run a command as a user does, in a process of its own with exactly the installed plugins you
name (a command a plugin registers is there whatever other tests did to this process)::

    from acgmake.testing import run_command

    def test_my_command_says_what_it_wrote(tmp_path):
        ran = run_command("sticker", "colored.png", plugins=["acgmake-sticker"], cwd=tmp_path)
        assert ran.returncode == 0 and "Wrote" in ran.stderr

A plugin is a module, an import name ("acgmake_sticker"), or any object with hook functions.
A plugin that fails to load or to register fails the test with its own error, where
``acgmake`` itself would only warn and leave it out.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from acgmake import hookimpl
from acgmake.pipeline import Registry, Stage, run
from acgmake.plugins import DEFAULT_PLUGINS, Plugins

__all__ = ["PluginProblem", "load_plugins", "plugins_loaded", "run_command", "run_stage"]


class PluginProblem(AssertionError):
    """A plugin under test failed to load or register: the message says how."""


def load_plugins(
    plugins: Iterable[ModuleType | str | Any] = (),
    *,
    builtins: bool | Iterable[str] = True,
) -> Plugins:
    """A :class:`~acgmake.plugins.Plugins` with acgmake's built-in stages (``builtins=True``;
    or the named built-in modules; or none) and exactly ``plugins``, no entry points.

    Raises :class:`PluginProblem` when one of ``plugins`` cannot be imported or breaks while
    registering (the traceback is in the message)."""
    chosen = DEFAULT_PLUGINS if builtins is True else tuple(builtins or ())
    extra = []
    for index, plugin in enumerate(plugins):
        module = importlib.import_module(plugin) if isinstance(plugin, str) else plugin
        name = plugin if isinstance(plugin, str) else getattr(module, "__name__", f"plugin-{index}")
        extra.append((module, name, getattr(module, "__version__", "")))
    loaded = Plugins()
    # The built-ins first, as the command line loads them: refiners of one kind keep its order.
    loaded.load(builtins=chosen, entry_points=False, extra=extra)
    broken = loaded.broken()
    if broken:
        raise PluginProblem(
            "; ".join(f"plugin {info.name}: {info.error}\n{info.traceback}" for info in broken)
        )
    return loaded


@contextmanager
def plugins_loaded(
    *plugins: ModuleType | str | Any, builtins: bool | Iterable[str] = True
) -> Iterator[Registry]:
    """The registry of acgmake's built-ins (see :func:`load_plugins`) and ``plugins``, for the
    ``with`` block: the stages and artifact kinds they registered."""
    yield load_plugins(plugins, builtins=builtins).registry


class _OneStage:
    """A plugin that registers one :class:`Stage` object (:func:`run_stage` given a stage)."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage

    @hookimpl
    def register_stages(self, register):
        register(self.stage)


def run_stage(
    stage: Stage | str,
    inputs: Mapping[str, str | Path],
    params: Mapping[str, Any] | None = None,
    *,
    plugins: Iterable[ModuleType | str | Any] = (),
    builtins: bool | Iterable[str] = True,
    workdir: str | Path | None = None,
    seed: int = 0,
) -> dict[str, Path]:
    """Run one stage, as ``acgmake <stage>`` does, and return what it made: ``{kind: path}``.

    ``stage`` is a stage's name (registered by ``plugins`` or a built-in) or a :class:`Stage`
    (the kinds it reads and makes must be registered). ``inputs`` gives a file for each kind
    the stage needs (and any it uses); ``params`` its options, checked and converted as the
    command line does them. The run folder is ``workdir`` (a new temporary folder if None, left
    in place for you to look at). Errors are raised as the command line would report them:
    :class:`acgmake.UserError` for bad input."""
    chosen = list(plugins)
    if isinstance(stage, Stage):
        chosen.append(_OneStage(stage))
    registry = load_plugins(chosen, builtins=builtins).registry
    name = stage.name if isinstance(stage, Stage) else stage
    found = registry.stage(name)
    folder = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="acgmake-"))
    result = run(
        registry,
        folder,
        found.makes,
        inputs={kind: Path(path) for kind, path in inputs.items()},
        params={name: dict(params or {})},
        seed=seed,
        only=[name],
    )
    return {kind: result.files[kind] for kind in found.makes if kind in result.files}


def run_command(
    *arguments: str,
    plugins: Iterable[str] | None = None,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 600.0,
) -> subprocess.CompletedProcess[str]:
    """Run ``acgmake *arguments`` as a user does, in a process of its own, and return how it
    ended (``returncode``, ``stdout``, ``stderr`` as text).

    ``plugins``: the installed plugins it loads, by the names ``ACGMAKE_PLUGINS`` takes (the
    distribution's, "acgmake-sticker", or the entry point's); ``None`` loads every installed
    plugin, ``[]`` none but the built-ins. ``env`` adds to the environment. A command still
    running after ``timeout_s`` raises :class:`subprocess.TimeoutExpired`."""
    environment = {key: value for key, value in os.environ.items() if key != "ACGMAKE_PLUGINS"}
    if plugins is not None:
        environment["ACGMAKE_PLUGINS"] = ",".join(plugins)
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "acgmake", *arguments],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
