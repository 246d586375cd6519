"""The ``acgmake`` command line: thin click commands over :mod:`acgmake.pipeline`.

Every stage a plugin registers becomes a command of its own here, built from the stage's
declaration, so built-in and third-party stages are run by the same code path.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click

from acgmake import __version__
from acgmake.errors import Interrupted, UserError
from acgmake.pipeline import (
    SEED,
    Param,
    Registry,
    Reporter,
    RunFolder,
    Stage,
    check_writable,
    copy_atomic,
    default_jobs,
    kind_option,
    plan,
    replaced_by,
    run,
    same_file,
    sha256_file,
    user_path,
)
from acgmake.plugins import Plugins, get_plugins

RUN_SUFFIX = ".acgmake"
FINAL_KIND = "clip"


# ---------------------------------------------------------------------------------------------
# Progress


class ClickReporter(Reporter):
    """Prints a line to stderr as each stage finishes (and its messages); on a terminal, one
    live line shows the stages running now, with how far each has got."""

    def __init__(self) -> None:
        self.live = sys.stderr.isatty()
        self.prefixes: dict[str, str] = {}
        self.running: dict[str, list[Any]] = {}  # stage name -> [started, what it is doing]
        self.last_draw = 0.0

    def stage_started(self, number: int, total: int, stage: Stage) -> None:
        self.prefixes[stage.name] = f"[{number}/{total}] {stage.name}"
        self.running[stage.name] = [time.monotonic(), "..."]
        self._draw(force=True)

    def stage_progress(self, stage: Stage, done: float, total: float | None, note: str) -> None:
        state = self.running.get(stage.name)
        if state is None:
            return
        text = note
        if total:
            share = min(max(done / total, 0.0), 1.0)
            elapsed = time.monotonic() - state[0]
            left = elapsed * (1 - share) / share if share > 0 else 0
            text = f"{share:4.0%} {note} ({left:.0f}s left)".replace("  ", " ").strip()
        state[1] = text
        self._draw()

    def stage_finished(self, stage: Stage, seconds: float, cached: bool) -> None:
        self.running.pop(stage.name, None)
        self._print(f"{self._prefix(stage)} {'cached' if cached else f'done in {seconds:.1f}s'}")

    def log(self, stage: Stage, message: str) -> None:
        self._print(f"{self._prefix(stage)}: {message}")

    def _prefix(self, stage: Stage) -> str:
        return self.prefixes.get(stage.name, stage.name)

    def _print(self, line: str) -> None:
        click.echo(("\r\033[K" if self.live else "") + line, err=True)
        self._draw(force=True)

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.live or not self.running or (not force and now - self.last_draw < 0.2):
            return
        self.last_draw = now
        line = " | ".join(
            f"{self.prefixes[name]} {state[1]}".rstrip() for name, state in self.running.items()
        )
        width = max(20, shutil.get_terminal_size().columns - 1)
        click.echo("\r\033[K" + line[:width], err=True, nl=False)


# ---------------------------------------------------------------------------------------------
# Options made from stage parameters


def _option_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def _param_option(param: Param, flag: str, dest: str) -> click.Option:
    if isinstance(param.default, bool) and param.type is None:
        positive = flag
        return click.Option(
            [f"{positive}/--no-{positive[2:]}", dest],
            default=None,
            help=f"{param.help} [default: {'on' if param.default else 'off'}]",
        )
    kind = param.type if param.type is not None else type(param.default)
    shown = param.default if param.default not in ("", None) else None
    return click.Option(
        [flag, dest],
        type=kind,
        default=None,
        help=param.help + (f" [default: {shown}]" if shown is not None else ""),
    )


def stage_options(stages: list[Stage]) -> tuple[list[click.Option], dict[str, tuple[str, str]]]:
    """Click options for the parameters of ``stages`` and a map from option to (stage, param).

    A parameter name used by two stages becomes ``--<stage>-<name>`` on both.
    """
    counts: dict[str, int] = {}
    for stage in stages:
        for param in stage.params:
            counts[param.name] = counts.get(param.name, 0) + 1
    options, targets = [], {}
    for stage in stages:
        for param in stage.params:
            name = param.name if counts[param.name] == 1 else f"{stage.name}_{param.name}"
            dest = f"param__{stage.name}__{param.name}".replace("-", "_")
            options.append(_param_option(param, _option_name(name), dest))
            targets[dest] = (stage.name, param.name)
    return options, targets


def _collect_params(values: dict[str, Any], targets: dict[str, tuple[str, str]]) -> dict:
    params: dict[str, dict[str, Any]] = {}
    for dest, (stage_name, param_name) in targets.items():
        value = values.get(dest)
        if value is not None:
            params.setdefault(stage_name, {})[param_name] = value
    return params


# ---------------------------------------------------------------------------------------------
# Shared behaviour of the commands that run stages


def default_workdir(source: Path | None, fallback: str) -> Path:
    """The run folder: ``source``'s folder if that is a run folder, else ``<stem>.acgmake``."""
    if source is None:
        return Path(fallback + RUN_SUFFIX)
    if source.parent.name.endswith(RUN_SUFFIX):
        return source.parent
    return source.parent / (source.stem + RUN_SUFFIX)


def stage_workdir(
    registry: Registry, stage: Stage, source: Path, inputs: dict[str, Path]
) -> tuple[Path, dict[str, Path], list[str]]:
    """The run folder for ``stage`` run on the user's file ``source`` without ``--workdir``,
    the inputs to give it there, and the files it would have replaced in the usual folder
    (empty when it works there).

    The usual folder is :func:`default_workdir`'s. A single stage may write there whatever
    it made there itself before (run it again with other options and the run folder holds
    the new result, as ``acgmake song`` would), but nothing else: not the very file it was
    given (a stage that rewrites its input's kind, such as ``upscale``), not another stage's
    file, and no file the given inputs would be copied over. Then it works in a folder of its
    own beside it, ``<run>.<stage>.acgmake``, so the run the input came from stays as it was;
    the other files the stage reads still come from that run (copied in).
    """
    folder = default_workdir(source, stage.name)
    replaced = _would_replace(registry, stage, folder, inputs)
    if not replaced:
        return folder, inputs, []
    carried = dict(inputs)
    for kind in stage.reads:
        there = folder / registry.artifact(kind).filename
        if kind not in carried and there.is_file():
            carried[kind] = there
    own = folder.parent / f"{folder.name.removesuffix(RUN_SUFFIX)}.{stage.name}{RUN_SUFFIX}"
    if _would_replace(registry, stage, own, carried):
        raise UserError(
            f"{stage.name} would replace {', '.join(replaced)} in {folder}, and files in "
            f"{own}; choose a run folder with --workdir"
        )
    return own, carried, replaced


def _would_replace(
    registry: Registry, stage: Stage, folder: Path, inputs: dict[str, Path]
) -> list[str]:
    """The files in ``folder`` that running ``stage`` there on ``inputs`` would replace and
    that are not its own earlier, unchanged output (see :func:`stage_workdir`)."""
    if not folder.is_dir():
        return []
    recorded = RunFolder(folder, registry).manifest().get("stages", {}).get(stage.name, {})
    outputs = recorded.get("outputs", {})
    replaced = []
    for kind in dict.fromkeys((*stage.makes, *inputs)):
        there = folder / registry.artifact(kind).filename
        if not there.is_file():
            continue
        given = inputs.get(kind)
        if kind in stage.makes:
            record = outputs.get(kind, {})
            made_here = record.get("file") == there.name and record.get("sha256") == (
                sha256_file(there)
            )
            if made_here and not (given is not None and same_file(there, given)):
                continue
        elif given is not None and (
            same_file(there, given) or sha256_file(there) == sha256_file(given)
        ):
            continue  # the input is that file already: it is read, not replaced
        replaced.append(there.name)
    return replaced


def _validate_input(path: Path, kind: str) -> Path:
    if not path.exists():
        raise UserError(f"{path} does not exist; check the path of your {kind} file")
    if path.is_dir():
        raise UserError(f"{path} is a folder; give the path of your {kind} file")
    if not os.access(path, os.R_OK):
        raise UserError(f"cannot read {path}; check its permissions")
    return path


def execute(
    plugins: Plugins,
    workdir: Path,
    targets: list[str],
    *,
    inputs: dict[str, Path],
    params: dict[str, dict[str, Any]],
    seed: int,
    force: bool,
    only: list[str] | None = None,
    output: Path | None = None,
    output_kind: str = FINAL_KIND,
    jobs: int = 1,
    also: tuple[str, ...] = (),
) -> Path:
    """Run stages with progress on stderr; copy ``output_kind`` to ``output`` if given."""
    if output is not None:
        check_writable(output)
        for kind, given in inputs.items():
            if same_file(output, given):
                raise UserError(
                    f"-o {output} is your {kind} file; writing there would replace it — "
                    "give another output name"
                )
    try:
        result = run(
            plugins.registry,
            workdir,
            targets,
            inputs=inputs,
            params=params,
            seed=seed,
            force=force,
            only=only,
            reporter=ClickReporter(),
            plugins=plugins.versions(),
            jobs=jobs,
            also=also,
        )
    except UserError as error:
        renamed = _naming_the_users_files(error, plugins.registry, workdir, inputs)
        if renamed is error:
            raise
        raise renamed from error.__cause__
    made = result.files[output_kind]
    if output is None:
        return made
    try:
        copy_atomic(made, output)
    except OSError as error:
        raise UserError(f"cannot write {output}: {error.strerror or error}") from None
    return output


def _naming_the_users_files(
    error: UserError, registry: Registry, workdir: Path, inputs: dict[str, Path]
) -> UserError:
    """``error`` with the run folder's copy of a file the user gave (``run/lyrics.txt``)
    named as the user knows it (``my-song.txt``), where the message names the copy."""
    message = error.message
    for kind, source in inputs.items():
        copy = workdir / registry.artifact(kind).filename
        if copy.name == source.name and copy.parent == source.parent:
            continue
        for shown in (str(copy.resolve()), str(copy)):
            message = message.replace(shown, str(source))
        # The bare name, where it stands as a word of its own (not inside another path).
        message = re.sub(rf"(?<![\w/.-]){re.escape(copy.name)}(?![\w/.-])", str(source), message)
    if message == error.message:
        return error
    return type(error)(message)


def final_kinds(registry: Registry, also: tuple[str, ...] = ()) -> list[str]:
    """What ``acgmake song`` makes: the clip plus anything a stage makes that nothing reads,
    leaving out optional stages unless they are named in ``also``."""
    for name in also:
        registry.stage(name)  # an unknown name is a clear error
    read = {kind for stage in registry.stages for kind in stage.reads}
    made = [
        kind
        for stage in registry.stages
        if not stage.optional or stage.name in also
        for kind in stage.makes
    ]
    leaves = [kind for kind in dict.fromkeys(made) if kind not in read]
    return [FINAL_KIND] + [kind for kind in leaves if kind != FINAL_KIND]


# ---------------------------------------------------------------------------------------------
# The group


class AcgmakeGroup(click.Group):
    """Adds the stage commands and the plugins' commands when the CLI is first used."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._extended_with: Plugins | None = None
        self._own: dict[str, click.Command] | None = None
        self._song_params: list[click.Parameter] = []

    def _extend(self) -> None:
        plugins = get_plugins()
        if self._extended_with is plugins:
            return
        if self._own is None:
            self._own = dict(self.commands)
            self._song_params = list(self._own["song"].params)
        # Start again from acgmake's own commands, so a new plugin set never sees stale ones.
        self.commands = dict(self._own)
        song = self.commands["song"]
        song.params = list(self._song_params)
        self._extended_with = plugins
        for stage in plugins.registry.stages:
            if stage.name not in self.commands:
                self.add_command(make_stage_command(stage), stage.name)
        add_song_options(song, plugins.registry)
        plugins.register_commands(self)
        for info in plugins.broken():
            click.echo(
                f"Warning: plugin {info.name} is broken and was left out ({info.error}); "
                "see `acgmake plugins`",
                err=True,
            )
            if os.environ.get("ACGMAKE_DEBUG") and info.traceback:
                click.echo(info.traceback.rstrip("\n"), err=True)
        for warning in plugins.warnings:
            click.echo(f"Warning: {warning}", err=True)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a :class:`UserError` becomes click's one-line error (the domain
        code knows nothing of click)."""
        try:
            return super().invoke(ctx)
        except UserError as error:
            raise as_click_error(error) from error

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._extend()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        self._extend()
        return super().get_command(ctx, name)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from acgmake.doctor import licence_line

    click.echo(f"acgmake, version {__version__}")
    click.echo(licence_line())
    ctx.exit()


@click.group(cls=AcgmakeGroup)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and where the licences are, and exit.",
)
def cli() -> None:
    """Lyrics in, a short animated music clip out: a composed melody sung by Sinsy and a
    StyleGAN2 character, offline.

    \b
    Make a clip:           acgmake song lyrics.txt
    Run one stage:         acgmake compose lyrics.txt
    See the chain:         acgmake stages
    Check the install:     acgmake doctor
    """


@cli.command()
@click.argument("lyrics", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Where to write the clip. [default: LYRICS with .mp4]",
)
@click.option(
    "--score",
    type=click.Path(path_type=Path),
    help="Sing your own MusicXML score instead of composing one from the lyrics.",
)
@click.option(
    "--workdir",
    type=click.Path(path_type=Path),
    help="Run folder for every intermediate file. [default: LYRICS-stem.acgmake/]",
)
@click.option(
    "--seed",
    type=SEED,
    default=0,
    show_default=True,
    help="Seed for everything random: same seed and lyrics, same clip.",
)
@click.option(
    "--force", is_flag=True, help="Re-run every stage, even those whose inputs are unchanged."
)
@click.option(
    "--also",
    multiple=True,
    metavar="STAGE",
    help="Also run this optional stage (see `acgmake stages`), e.g. --also preview.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 64),
    envvar="ACGMAKE_JOBS",
    help="How many stages may run at once (the singing and the picture are made side by "
    "side). [default: the CPU cores, here "
    f"{default_jobs()}]",
)
def song(
    lyrics: tuple[Path, ...],
    output: Path | None,
    score: Path | None,
    workdir: Path | None,
    seed: int,
    force: bool,
    also: tuple[str, ...],
    jobs: int | None,
    **values: Any,
) -> None:
    """Make a music clip (MP4) from a lyrics file: compose, sing, draw, color, animate.

    Write the lyrics in hiragana or katakana, a line per phrase, a blank line between
    sections. Every intermediate file stays in the run folder; a second run redoes only the
    stages whose inputs or options changed.

    Several lyrics files (or a folder of them) make a clip each, one after another in one
    process, each beside its lyrics (or in the folder -o names) with its own run folder; a song
    that fails is reported and the others go on; a table at the end sums up.

    \b
    Examples:
      acgmake song examples/kaeru.txt -o kaeru.mp4 --seed 3
      acgmake song examples/ -o clips/
    """
    plugins = get_plugins()
    songs = _lyrics_files(lyrics)
    if bool(songs) == (score is not None):
        raise click.UsageError("give a lyrics file, or --score my.musicxml (not both)")
    _, targets = stage_options(plugins.registry.stages)
    params = _collect_params(values, targets)
    kinds = final_kinds(plugins.registry, also)

    def make(kind: str, source: Path, clip: Path, folder: Path) -> Path:
        made = execute(
            plugins,
            folder,
            kinds,
            inputs={kind: _validate_input(source, kind)},
            params=params,
            seed=seed,
            force=force,
            output=clip,
            jobs=jobs or default_jobs(),
            also=also,
        )
        click.echo(f"Wrote {made}  (every intermediate file is in {folder}/)")
        return made

    if score is not None or len(songs) == 1:
        kind, source = ("score", score) if score is not None else ("lyrics", songs[0])
        assert source is not None
        make(
            kind,
            source,
            output or source.with_suffix(".mp4"),
            workdir or default_workdir(source, source.stem),
        )
        return
    if workdir is not None:
        raise click.UsageError(
            "--workdir names one run folder; with several songs, each has its own"
        )
    if output is not None and not output.is_dir():
        raise click.UsageError(
            f"with several songs, -o must be a folder for the clips; {output} is not"
        )
    rows = []
    for source in songs:
        clip = (output or source.parent) / f"{source.stem}.mp4"
        started = time.monotonic()
        try:
            make("lyrics", source, clip, default_workdir(source, source.stem))
            rows.append((source, clip.name, time.monotonic() - started, "ok"))
        except UserError as error:  # this song's problem; the others go on
            click.echo(f"Error: {source}: {error.message}", err=True)
            rows.append((source, "-", time.monotonic() - started, error.message))
    width = max(len(str(row[0])) for row in rows)
    click.echo(f"\n{'song':<{width}}  {'clip':<16} {'seconds':>8}  result")
    for source, clip_name, seconds, result in rows:
        click.echo(f"{str(source):<{width}}  {clip_name:<16} {seconds:>8.1f}  {result}")
    failed = [row for row in rows if row[3] != "ok"]
    if failed:
        raise UserError(
            f"{len(failed)} of {len(rows)} songs failed ({', '.join(str(r[0]) for r in failed)}); "
            "see the table above"
        )


def _lyrics_files(given: tuple[Path, ...]) -> list[Path]:
    """The lyrics files named, a folder standing for the .txt files in it (sorted)."""
    files: list[Path] = []
    for path in given:
        if path.is_dir():
            found = sorted(path.glob("*.txt"))
            if not found:
                raise UserError(f"{path} is a folder with no .txt lyrics files in it")
            files += found
        else:
            files.append(path)
    return list(dict.fromkeys(files))


def add_song_options(command: click.Command, registry: Registry) -> None:
    options, _ = stage_options(registry.stages)
    taken = {opt for param in command.params for opt in getattr(param, "opts", [])}
    command.params.extend(option for option in options if option.opts[0] not in taken)


#: What `acgmake animate --character` makes again from the picture before animating.
PICTURE_KINDS = ("colored", "face", "colored_expressions")


def make_stage_command(stage: Stage) -> click.Command:
    """A command that runs just ``stage`` in a run folder (see the module docstring)."""
    primary = stage.needs[0] if stage.needs else None
    others = [kind for kind in stage.reads if kind != primary]
    options, targets = stage_options([stage])

    def callback(
        input_path: Path | None = None,
        output: Path | None = None,
        workdir: Path | None = None,
        seed: int = 0,
        force: bool = False,
        **values: Any,
    ) -> None:
        plugins = get_plugins()
        current = plugins.registry.stage(stage.name)
        picture = values.pop("own_character", None)
        inputs: dict[str, Path] = {}
        if input_path is not None:
            inputs[primary] = _validate_input(input_path, primary)
        for kind in others:
            given = values.pop(f"kind__{kind}", None)
            if given is not None:
                inputs[kind] = _validate_input(given, kind)
        if input_path is None and workdir is None and primary is not None:
            raise click.UsageError(f"give the {primary} file, or --workdir with a run folder")
        if workdir is not None:
            folder = workdir
        elif input_path is not None:
            folder, inputs, replaced = stage_workdir(plugins.registry, current, input_path, inputs)
            if replaced:
                usual = default_workdir(input_path, stage.name)
                click.echo(
                    f"{stage.name} would replace {', '.join(replaced)} in {usual}/, so it "
                    f"works in {folder}/ (--workdir {usual} to work there anyway)",
                    err=True,
                )
        else:
            folder = default_workdir(None, stage.name)
        params = _collect_params(values, targets)
        only = [current.name]
        if picture is not None:
            # `acgmake animate --character PICTURE`: the picture's stages first, in the run
            # folder, as `acgmake song --character` runs them (the singing is not touched).
            branch = plan(plugins.registry, [*PICTURE_KINDS], ())
            only = [s.name for s in branch] + only
            params.setdefault("character", {})["character"] = str(picture)
        made = execute(
            plugins,
            folder,
            list(current.makes),
            inputs=inputs,
            params=params,
            seed=seed,
            force=force,
            only=only,
            output=output,
            output_kind=current.makes[0],
        )
        click.echo(f"Wrote {made}")

    params: list[click.Parameter] = []
    if primary is not None:
        params.append(
            click.Argument(
                ["input_path"],
                required=False,
                type=click.Path(path_type=Path),
                metavar=primary.upper(),
            )
        )
    params += [
        click.Option(
            ["-o", "--output"],
            type=click.Path(path_type=Path),
            help=f"Also write the {stage.makes[0]} here.",
        ),
        click.Option(
            ["--workdir"],
            type=click.Path(path_type=Path),
            help="Run folder to read inputs from and write outputs to. [default: "
            + (
                f"the run folder INPUT is in, else INPUT-stem.acgmake/; RUN.{stage.name}"
                f".acgmake/ beside it when {stage.name} would replace a file there that it "
                "did not make]"
                if primary
                else f"{stage.name}.acgmake/]"
            ),
        ),
        click.Option(
            ["--seed"], type=SEED, default=0, show_default=True, help="Seed for everything random."
        ),
        click.Option(["--force"], is_flag=True, help="Run even if the output is up to date."),
    ]
    for kind in others:
        optional = " (optional)" if kind in stage.uses else ""
        params.append(
            click.Option(
                [kind_option(kind), f"kind__{kind}"],
                type=click.Path(path_type=Path),
                help=f"The {kind} file{optional}. [default: from the run folder]",
            )
        )
    if stage.name == "animate":
        params.append(
            click.Option(
                ["--character", "own_character"],
                type=click.Path(path_type=Path),
                help="Your own character picture: make it the character (its face found, its "
                "background made transparent) and animate it, in the run folder.",
            )
        )
    params += options
    needs = ", ".join(stage.needs) or "nothing"
    makes = ", ".join(stage.makes)
    helptext = (stage.help or f"Run the {stage.name} stage.") + (
        f"\n\nNeeds: {needs}. Makes: {makes}. Plugin: {stage.plugin}."
    )
    return click.Command(
        stage.name,
        callback=callback,
        params=params,
        help=helptext,
    )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--score", is_flag=True, help="Show the chain for `song --score` (no compose).")
def stages(as_json: bool, score: bool) -> None:
    """Show the stages `acgmake song` runs, in order, with what each needs and makes."""
    plugins = get_plugins()
    registry = plugins.registry
    given = ["score"] if score else ["lyrics"]
    try:
        ordered = plan(registry, final_kinds(registry), given)
    except UserError as error:
        raise UserError(f"the stages cannot be ordered: {error.message}") from None
    replaced = replaced_by(registry)
    rows = [
        {
            "order": i,
            "name": s.name,
            "needs": list(s.needs),
            "uses": list(s.uses),
            "makes": list(s.makes),
            "plugin": s.plugin,
            "version": s.version,
        }
        for i, s in enumerate(ordered, start=1)
    ]
    idle = [
        {
            "name": s.name,
            "plugin": s.plugin,
            "why": f"replaced by {replaced[s.name]}"
            if s.name in replaced
            else f"optional: add --also {s.name}"
            if s.optional
            else "not needed",
        }
        for s in registry.stages
        if s not in ordered
    ]
    if as_json:
        click.echo(json.dumps({"stages": rows, "not_run": idle}, indent=2))
        return
    click.echo(f"acgmake song, from {given[0]}:")
    width = max(len(row["name"]) for row in rows + idle)
    number = len(str(len(rows)))
    for row in rows:
        reads = ", ".join(row["needs"] + [f"{k} (if there)" for k in row["uses"]]) or "nothing"
        click.echo(
            f"  {row['order']:>{number}}. {row['name']:<{width}}  needs {reads}; makes "
            f"{', '.join(row['makes'])}  [{row['plugin']}]"
        )
    for row in idle:
        click.echo(f"  {'-':>{number}}  {row['name']:<{width}}  {row['why']}  [{row['plugin']}]")


@cli.command("plugins")
@click.option("--all", "show_all", is_flag=True, help="Include the built-in plugins.")
def plugins_command(show_all: bool) -> None:
    """List the installed plugins as JSON: version, hooks, stages, and whether they are broken."""
    plugins = get_plugins()
    records = [info.as_dict() for info in plugins.infos.values() if show_all or not info.builtin]
    click.echo(json.dumps(records, indent=2))


@cli.group("plugin")
def plugin_group() -> None:
    """Write plugins of your own (see docs/plugins.md)."""


@plugin_group.command("new")
@click.argument("name")
@click.option(
    "--dir",
    "parent",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder to write acgmake-NAME/ into.",
)
def plugin_new(name: str, parent: Path) -> None:
    """Write a working plugin package, acgmake-NAME/: a pyproject with the entry point, one
    stage, its test (with acgmake.testing) and a README.

    Example: acgmake plugin new cover && pip install -e acgmake-cover && pytest acgmake-cover
    """
    from acgmake.plugin_template import write_plugin

    folder = write_plugin(name, user_path(parent))
    click.echo(
        f"Wrote {folder}/: install it with `pip install -e {folder}`, test it with "
        f"`pytest {folder}`, and see docs/plugins.md for what to change"
    )


@cli.command()
def doctor() -> None:
    """Check Sinsy, the voice, ffmpeg, torch, the shipped model and the plugins."""
    from acgmake.doctor import run_checks

    problems = 0
    for check in run_checks(get_plugins()):
        mark = "ok  " if check.ok else "FAIL"
        click.echo(f"{mark} {check.name}: {check.detail}")
        if not check.ok:
            problems += 1
            click.echo(f"     -> {check.fix}")
    if problems:
        raise UserError(f"{problems} problem(s) found; see the lines marked FAIL above")
    click.echo("Everything acgmake needs is in place.")


# ---------------------------------------------------------------------------------------------
# Entry point


def as_click_error(error: UserError) -> click.ClickException:
    """``error`` as click shows errors: ``Error: message`` and the same exit code."""
    converted = click.ClickException(error.message)
    converted.exit_code = error.exit_code
    return converted


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """The console script: user errors as one line, Ctrl-C as a clean stop."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        cli.main(args=argv, prog_name="acgmake", standalone_mode=False)
    except click.exceptions.Abort:
        _fail(Interrupted(_interrupted_message()))
    except KeyboardInterrupt:
        _fail(Interrupted(_interrupted_message()))
    except UserError as error:
        _fail(error)
    except click.ClickException as error:
        _fail(error)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)


def console() -> None:
    """The installed ``acgmake`` command (and ``python -m acgmake``): :func:`main`, then
    leave at once, without the interpreter's teardown of every module, which costs about
    0.5 s once torch is loaded (measured: 16.6 s to the last file, 17.2 s to the prompt).
    The exit handlers still run and the output is flushed first. A stage given up as
    overdue runs on a daemon thread and ends with the process, as it would anyway; with a
    non-daemon thread still working (a pool a plugin left open) the interpreter ends the
    ordinary way, waiting for it."""
    try:
        main()
    except SystemExit as done:
        code = done.code
    else:
        code = 0
    if not isinstance(code, int):  # sys.exit("message") or sys.exit(None)
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else 1
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if any(t.is_alive() and not t.daemon for t in others):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _interrupted_message() -> str:
    return (
        "interrupted; nothing half-written was left, and the stages that finished are kept "
        "(run the same command again to continue)"
    )


def _fail(error: click.ClickException | UserError) -> None:
    cause = error.__cause__
    if isinstance(cause, UserError):  # converted by AcgmakeGroup.invoke
        cause = cause.__cause__
    if os.environ.get("ACGMAKE_DEBUG") and cause is not None:
        import traceback

        traceback.print_exception(cause)
    if isinstance(error, UserError):
        error = as_click_error(error)
    error.show()
    sys.exit(error.exit_code)
