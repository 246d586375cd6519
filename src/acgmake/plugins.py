"""The plugin manager: built-in plugins, then entry points in the group ``acgmake``.

``ACGMAKE_PLUGINS`` narrows which third-party plugins load: a comma-separated list of their
distribution (or entry-point) names; ``-name`` leaves one out and loads the others; set it
empty to load none. A name that matches no installed plugin is warned about. Built-in plugins
always load.
A plugin that fails to import or raises in a hook is recorded as broken (with its traceback,
which the command line prints when ``ACGMAKE_DEBUG`` is set), named in a warning, and left out;
it never takes the command line down.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import os
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pluggy

from acgmake import __version__, hookspecs
from acgmake.pipeline import Artifact, Registry, Stage

ENTRY_POINT_GROUP = "acgmake"
ENV_VAR = "ACGMAKE_PLUGINS"

DEFAULT_PLUGINS = (
    "acgmake.stages.compose",
    "acgmake.stages.sing",
    "acgmake.stages.accompany",
    "acgmake.stages.mix",
    "acgmake.stages.character",
    "acgmake.stages.upscale",
    "acgmake.stages.colorize",
    "acgmake.stages.animate",
    "acgmake.stages.subtitles",
    "acgmake.stages.preview",
    "acgmake.stages.train",
    "acgmake.stages.studio",
)


@dataclass
class PluginInfo:
    """What ``acgmake plugins`` reports about one plugin."""

    name: str
    version: str
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    error: str = ""
    #: The traceback of the exception that broke the plugin (for ``ACGMAKE_DEBUG``), or "".
    traceback: str = ""

    @property
    def broken(self) -> bool:
        return bool(self.error)

    def as_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"name": self.name, "version": self.version}
        if self.builtin:
            record["builtin"] = True
        record["status"] = "broken" if self.broken else "ok"
        if self.error:
            record["error"] = self.error
        for key in ("hooks", "artifacts", "stages", "commands"):
            if getattr(self, key):
                record[key] = getattr(self, key)
        return record


class Plugins:
    """One pluggy manager plus what its plugins registered."""

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager("acgmake")
        self.manager.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.registry = Registry()
        #: Problems with the plugin set as a whole (e.g. a misspelt ACGMAKE_PLUGINS), one line
        #: each; the command line prints them as warnings.
        self.warnings: list[str] = []

    # -- loading --------------------------------------------------------------------------

    def load(
        self,
        builtins: tuple[str, ...] | None = None,
        entry_points: bool = True,
        extra: Sequence[tuple[Any, str, str]] = (),
    ) -> None:
        """Register the built-ins, then ``extra`` plugins (module, name, version) and the
        installed entry points, in that order (the order a run's refiners of one kind take),
        and collect what they register."""
        for module_name in DEFAULT_PLUGINS if builtins is None else builtins:
            # A built-in that fails to import is a bug in acgmake: let it raise.
            self.add(importlib.import_module(module_name), module_name, __version__, True)
        for module, name, version in extra:
            self.add(module, name, version)
        if entry_points:
            self._load_entry_points()
        self._collect()

    def add(self, module: Any, name: str, version: str = "", builtin: bool = False) -> None:
        """Register a plugin object (a module or any object with hook functions)."""
        info = PluginInfo(name=name, version=version, builtin=builtin)
        self.infos[name] = info
        try:
            self.manager.register(module, name=name)
        except (Exception, SystemExit) as error:  # pluggy validates hook signatures here
            info.error = f"{type(error).__name__}: {error}"
            info.traceback = traceback.format_exc()
            return
        info.hooks = sorted(caller.name for caller in self.manager.get_hookcallers(module) or ())

    def _load_entry_points(self) -> None:
        names, left_out = _wanted(os.environ.get(ENV_VAR))
        installed: set[str] = set()
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(entry_point, "dist", None)
            name = dist.metadata["Name"] if dist is not None else entry_point.name
            version = dist.version if dist is not None else ""
            installed |= {name, entry_point.name}
            if names is not None and name not in names and entry_point.name not in names:
                continue
            if name in left_out or entry_point.name in left_out:
                continue
            if name in self.infos:
                name = f"{name}:{entry_point.name}"
            try:
                module = entry_point.load()
            except (Exception, SystemExit) as error:  # sys.exit() at import is contained too
                self.infos[name] = PluginInfo(
                    name=name,
                    version=version,
                    builtin=False,
                    error=f"failed to import: {type(error).__name__}: {error}",
                    traceback=traceback.format_exc(),
                )
                continue
            self.add(module, name, version)
        unknown = sorted(((names or set()) | left_out) - installed)
        if unknown:
            self.warnings.append(
                f"{ENV_VAR} names {', '.join(unknown)}, but no installed plugin is called so "
                f"(installed: {', '.join(sorted(installed)) or 'none'}); check the spelling"
            )

    def _collect(self) -> None:
        """Call the registration hooks one plugin at a time, so one failure stays contained."""
        self._call_each("register_artifacts", self._artifact_adder)
        self._call_each("register_stages", self._stage_adder)
        for stage, problem in self.registry.check():
            # A stage that uses a kind nobody registered cannot be planned: leave it out.
            self._mark_broken(stage.plugin, problem)

    def _call_each(self, hook_name: str, make_callback: Callable[[str], Callable]) -> None:
        caller = getattr(self.manager.hook, hook_name)
        # In registration order (pluggy *calls* hooks last-registered first): the order in
        # which stages register is the tie-break when the pipeline orders them.
        for impl in caller.get_hookimpls():
            if self.infos.get(impl.plugin_name, PluginInfo("", "", False)).broken:
                continue
            try:
                _call_impl(impl, register=make_callback(impl.plugin_name))
            except (Exception, SystemExit) as error:
                self._mark_broken(
                    impl.plugin_name,
                    f"{hook_name} raised {type(error).__name__}: {error}",
                    traceback.format_exc(),
                )

    def _mark_broken(self, plugin_name: str, error: str, trace: str = "") -> None:
        info = self.infos[plugin_name]
        if info.builtin:
            raise RuntimeError(f"built-in plugin {plugin_name}: {error}")
        if not info.error:
            info.error, info.traceback = error, trace
        # Take back whatever the plugin registered, so a half-registered plugin does no harm.
        self.registry.stages = [s for s in self.registry.stages if s.plugin != plugin_name]
        for kind in [k for k, a in self.registry.artifacts.items() if a.plugin == plugin_name]:
            del self.registry.artifacts[kind]
        info.stages, info.artifacts = [], []

    def _artifact_adder(self, plugin_name: str) -> Callable[[Artifact], None]:
        def register(artifact: Artifact) -> None:
            artifact = dataclasses.replace(artifact, plugin=plugin_name)
            self.registry.add_artifact(artifact)
            self.infos[plugin_name].artifacts.append(artifact.kind)

        return register

    def _stage_adder(self, plugin_name: str) -> Callable[[Stage], None]:
        def register(stage: Stage) -> None:
            stage = dataclasses.replace(stage, plugin=plugin_name)
            self.registry.add_stage(stage)
            self.infos[plugin_name].stages.append(stage.name)

        return register

    def register_commands(self, cli: Any) -> None:
        """Let every plugin add its commands to ``cli``; a failing plugin is marked broken."""
        for impl in self.manager.hook.register_commands.get_hookimpls():
            info = self.infos[impl.plugin_name]
            if info.broken:
                continue
            before = dict(cli.commands)
            try:
                _call_impl(impl, cli=cli)
            except (Exception, SystemExit) as error:
                cli.commands = before
                self._mark_broken(
                    impl.plugin_name,
                    f"register_commands raised {type(error).__name__}: {error}",
                    traceback.format_exc(),
                )
                continue
            taken = sorted(n for n, c in before.items() if cli.commands.get(n) is not c)
            if taken:  # a plugin may add commands, never replace one
                cli.commands = before
                self._mark_broken(
                    impl.plugin_name,
                    f"it registers the command(s) {', '.join(taken)}, which acgmake already "
                    "has; the plugin must give its commands other names",
                )
                continue
            info.commands.extend(sorted(set(cli.commands) - set(before)))

    # -- reporting ------------------------------------------------------------------------

    def broken(self) -> list[PluginInfo]:
        return [info for info in self.infos.values() if info.broken]

    def versions(self) -> list[dict[str, str]]:
        """Name and version of every working third-party plugin (for the manifest)."""
        return [
            {"name": info.name, "version": info.version}
            for info in self.infos.values()
            if not info.builtin and not info.broken
        ]

    def stage_plugin(self, stage: Stage) -> PluginInfo:
        return self.infos[stage.plugin]


def _wanted(value: str | None) -> tuple[set[str] | None, set[str]]:
    """``ACGMAKE_PLUGINS`` as (the only plugins to load, or None for all; those to leave
    out): ``a,b`` loads just a and b, ``-c`` all but c, an empty value none."""
    if value is None:
        return None, set()
    parts = [part.strip() for part in value.split(",") if part.strip()]
    left_out = {part[1:].strip() for part in parts if part.startswith("-")}
    only = {part for part in parts if not part.startswith("-")}
    if left_out and not only:
        return None, left_out
    return only, left_out


def _call_impl(impl: Any, **arguments: Any) -> Any:
    """Call one hook implementation with the arguments it asks for (pluggy's convention)."""
    return impl.function(*(arguments[name] for name in impl.argnames))


_loaded: Plugins | None = None


def get_plugins() -> Plugins:
    """The process's plugins, loaded on first use."""
    global _loaded
    if _loaded is None:
        plugins = Plugins()
        plugins.load()
        _loaded = plugins
    return _loaded


def reset() -> None:
    """Forget the loaded plugins (tests use this after changing ``ACGMAKE_PLUGINS``)."""
    global _loaded
    _loaded = None
