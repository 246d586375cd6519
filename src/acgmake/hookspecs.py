"""The plugin API: every hook a plugin can implement.

A plugin is a module with functions decorated by ``@acgmake.hookimpl`` whose names are the
hooks below. Each hook hands the plugin a callback; call it as often as you like. Built-in
stages are plugins too and use exactly these hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from acgmake.pipeline import Artifact, Stage

hookspec = pluggy.HookspecMarker("acgmake")
hookimpl = pluggy.HookimplMarker("acgmake")


@hookspec
def register_artifacts(register: Callable[[Artifact], None]) -> None:
    """At start-up: call ``register(Artifact(kind, filename, description))`` for each new kind."""


@hookspec
def register_stages(register: Callable[[Stage], None]) -> None:
    """At start-up: call ``register(Stage(name, needs, makes, run, ...))`` for each stage."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """At start-up, with the ``acgmake`` click group: add commands with ``@cli.command()``."""
