"""Stages, artifact kinds, their ordering, and the run folder that caches them.

A :class:`Stage` says which artifact kinds it ``needs`` and ``makes``; :func:`plan` orders the
stages that lead from the kinds a user gave to the kinds they want, and :func:`run` executes
them in a run folder, skipping a stage whose inputs, parameters and version are unchanged
(content hashes, as a build system does). Every artifact is a file with a well-known name
(:class:`Artifact`), written under a temporary name and renamed only when its stage succeeds.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from acgmake import __version__
from acgmake.errors import PluginError, UserError

MANIFEST = "manifest.json"
BUILTIN_PREFIX = "acgmake."


class NotAvailable(Exception):  # noqa: N818 - it is a signal, not a failure
    """Raised by a stage whose outputs cannot be made for this input (e.g. a generator file
    without latent directions). The message says why, in the user's words.

    The run goes on: stages that only ``use`` those outputs run without them, stages that
    ``need`` them are skipped in turn, and only a kind the user asked for is an error.
    """


@dataclass(frozen=True)
class Artifact:
    """A kind of file a stage makes or needs, e.g. ``Artifact("score", "score.musicxml", ...)``."""

    kind: str
    filename: str
    description: str = ""
    plugin: str = ""
    #: A user's file of this kind larger than this is refused before it is copied in.
    max_bytes: int | None = None


@dataclass(frozen=True)
class Param:
    """A stage option: ``--name`` on the stage's command and on ``acgmake song``.

    ``type`` is a click type (``click.Choice([...])``, ``click.FloatRange(0, 1)``) or a Python
    type; by default it is the type of ``default``. A ``None`` default needs a ``type``.
    """

    name: str
    default: Any
    help: str
    type: Any = None


def kind_option(kind: str) -> str:
    """The command-line option that gives a file of ``kind``: ``--colored-expressions``."""
    return "--" + kind.replace("_", "-")


def _kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    """Kinds in the order given, each once (a set is sorted, for a stable order)."""
    if isinstance(kinds, str):
        return (kinds,)
    if isinstance(kinds, (set, frozenset)):
        kinds = sorted(kinds)
    return tuple(dict.fromkeys(kinds))


@dataclass(frozen=True)
class Stage:
    """One step of the chain.

    ``run(ctx)`` reads ``ctx.input(kind)`` for each kind in ``needs`` and writes
    ``ctx.output(kind)`` for each kind in ``makes``. ``uses`` are kinds it reads when they are
    there (``ctx.input`` gives ``None`` otherwise). The first of ``needs`` is the positional
    argument of the stage's command; the first of ``makes`` is what its ``-o`` writes. Bump
    ``version`` whenever the same inputs and parameters would now give a different output, so
    that cached runs are redone.
    """

    name: str
    needs: tuple[str, ...]
    makes: tuple[str, ...]
    run: Callable[[StageContext], None]
    version: str = "1"
    params: tuple[Param, ...] = ()
    help: str = ""
    uses: tuple[str, ...] = ()
    #: An optional stage runs in ``acgmake song`` only when asked (``--also NAME``); its own
    #: command always runs it. For extras such as previews that cost time nobody asked for.
    optional: bool = False
    plugin: str = ""

    def __post_init__(self) -> None:
        for name in ("needs", "makes", "uses", "params"):
            value = getattr(self, name)
            object.__setattr__(self, name, tuple(value) if name == "params" else _kinds(value))
        if not self.makes:
            raise ValueError(f"stage {self.name!r} makes nothing")
        if set(self.uses) & set(self.needs):
            raise ValueError(f"stage {self.name!r}: a kind is either needed or used, not both")

    @property
    def refines(self) -> frozenset[str]:
        """Kinds this stage both needs and makes (it rewrites them, e.g. an upscaler)."""
        return frozenset(self.needs) & frozenset(self.makes)

    @property
    def reads(self) -> tuple[str, ...]:
        return self.needs + self.uses

    @property
    def builtin(self) -> bool:
        return self.plugin.startswith(BUILTIN_PREFIX)

    def defaults(self) -> dict[str, Any]:
        return {param.name: param.default for param in self.params}


@dataclass
class Registry:
    """What the loaded plugins registered: artifact kinds and stages, in registration order."""

    artifacts: dict[str, Artifact] = field(default_factory=dict)
    stages: list[Stage] = field(default_factory=list)

    def add_artifact(self, artifact: Artifact) -> None:
        known = self.artifacts.get(artifact.kind)
        if known and known.filename != artifact.filename:
            raise PluginError(
                f"plugin {artifact.plugin} registers artifact {artifact.kind!r} as "
                f"{artifact.filename!r}, but {known.plugin} already registered it as "
                f"{known.filename!r}"
            )
        self.artifacts.setdefault(artifact.kind, artifact)

    def add_stage(self, stage: Stage) -> None:
        if any(known.name == stage.name for known in self.stages):
            other = self.stage(stage.name)
            raise PluginError(
                f"plugin {stage.plugin} registers a stage named {stage.name!r}, "
                f"which {other.plugin} already registered; rename one of them"
            )
        self.stages.append(stage)

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        known = ", ".join(s.name for s in self.stages)
        raise UserError(f"no stage named {name!r}; known stages: {known}")

    def artifact(self, kind: str) -> Artifact:
        try:
            return self.artifacts[kind]
        except KeyError:
            raise UserError(
                f"no artifact kind {kind!r} is registered; known kinds: "
                + ", ".join(sorted(self.artifacts))
            ) from None

    def check(self) -> list[tuple[Stage, str]]:
        """Stages that use an artifact kind nobody registered, with the problem in words."""
        problems = []
        for stage in self.stages:
            unknown = sorted(k for k in {*stage.reads, *stage.makes} if k not in self.artifacts)
            if unknown:
                problems.append(
                    (
                        stage,
                        f"stage {stage.name!r} uses artifact kind(s) "
                        f"{', '.join(unknown)}, which no plugin registers",
                    )
                )
        return problems


# ---------------------------------------------------------------------------------------------
# Planning


def plan(registry: Registry, targets: Iterable[str], given: Iterable[str] = ()) -> list[Stage]:
    """The stages to run, in order, to make ``targets`` from the ``given`` kinds.

    A stage that makes a kind without needing it (a *producer*) is left out when the user gave
    that kind. A stage that needs and makes a kind (a *refiner*) runs after that kind's
    producers and before anything else that needs it; refiners of one kind run in
    registration order. Kinds a stage only ``uses`` are made when they can be.
    """
    given = set(given)
    index = {stage.name: i for i, stage in enumerate(registry.stages)}
    candidates = []
    for stage in registry.stages:
        produced = set(stage.makes) - set(stage.needs)
        if produced and produced <= given:
            continue  # the user supplied what this stage would make
        if produced & given:
            raise UserError(
                f"stage {stage.name!r} makes {', '.join(sorted(stage.makes))} together; "
                f"give all of them or none (you gave {', '.join(sorted(produced & given))})"
            )
        candidates.append(stage)
    candidates = _drop_replaced(candidates)

    makers: dict[str, list[Stage]] = {}
    for stage in candidates:
        for kind in stage.makes:
            makers.setdefault(kind, []).append(stage)

    def producers(kind: str) -> list[Stage]:
        return [s for s in makers.get(kind, []) if kind not in s.needs]

    possible: dict[str, bool] = {}

    def can_make(kind: str, visiting: frozenset[str] = frozenset()) -> bool:
        """Whether ``kind`` is given or some producer's needs can all be met."""
        if kind in given:
            return True
        if kind not in possible:
            if kind in visiting:
                return False
            possible[kind] = any(
                all(can_make(need, visiting | {kind}) for need in stage.needs)
                for stage in producers(kind)
            )
        return possible[kind]

    # Needed kinds must be made (or it is an error); a kind a stage only ``uses`` is made
    # when its makers can run, and quietly left out when they cannot.
    chosen: dict[str, Stage] = {}
    wanted = [(kind, True) for kind in targets]
    while wanted:
        kind, required = wanted.pop()
        if kind not in given and not producers(kind):
            if not required:
                continue
            needed_by = [s.name for s in chosen.values() if kind in s.needs]
            who = f" (needed by {', '.join(needed_by)})" if needed_by else ""
            raise UserError(
                f"nothing makes {kind!r}{who}: give it as a file ({kind_option(kind)} PATH) "
                "or install a plugin that makes it"
            )
        if not required and not can_make(kind):
            continue
        for stage in makers.get(kind, []):
            if stage.name in chosen:
                continue
            if not required and not all(can_make(need) for need in stage.needs):
                continue
            chosen[stage.name] = stage
            wanted.extend((need, True) for need in stage.needs)
            wanted.extend((use, False) for use in stage.uses)

    # Edges: stage -> the stages that must run before it.
    before: dict[str, set[str]] = {name: set() for name in chosen}
    for stage in chosen.values():
        for kind in stage.reads:
            for maker in makers.get(kind, []):
                if maker.name == stage.name or maker.name not in chosen:
                    continue
                if kind in stage.makes and kind in stage.needs:
                    # Two refiners of one kind: registration order. A producer always first.
                    if kind in maker.needs and index[maker.name] > index[stage.name]:
                        continue
                before[stage.name].add(maker.name)

    ordered: list[Stage] = []
    done: set[str] = set()
    while len(ordered) < len(chosen):
        ready = [n for n in chosen if n not in done and before[n] <= done]
        if not ready:
            stuck = sorted(n for n in chosen if n not in done)
            raise UserError(f"the stages {', '.join(stuck)} need each other's output (a cycle)")
        name = min(ready, key=index.__getitem__)
        ordered.append(chosen[name])
        done.add(name)
    return ordered


def _drop_replaced(stages: list[Stage]) -> list[Stage]:
    """Leave out a producer when a later-registered stage produces all it produces.

    This is how a plugin replaces a built-in stage: it registers a stage that makes the same
    kinds from other inputs. Two producers of one kind that neither replaces are an error.
    """

    def produced(stage: Stage) -> set[str]:
        return set(stage.makes) - set(stage.needs)

    kept = [
        stage
        for i, stage in enumerate(stages)
        if not produced(stage)
        or not any(produced(stage) <= produced(later) for later in stages[i + 1 :])
    ]
    owner: dict[str, Stage] = {}
    for stage in kept:
        for kind in produced(stage):
            if kind in owner:
                raise UserError(
                    f"both {owner[kind].name!r} ({owner[kind].plugin}) and {stage.name!r} "
                    f"({stage.plugin}) make {kind!r}; leave one of their plugins out with "
                    "ACGMAKE_PLUGINS"
                )
            owner[kind] = stage
    return kept


def replaced_by(registry: Registry) -> dict[str, str]:
    """Stage name -> the later stage that replaces it (see :func:`_drop_replaced`)."""
    names = {s.name for s in _drop_replaced(list(registry.stages))}
    result = {}
    for i, stage in enumerate(registry.stages):
        if stage.name not in names:
            own = set(stage.makes) - set(stage.needs)
            for later in registry.stages[i + 1 :]:
                if own <= set(later.makes) - set(later.needs):
                    result[stage.name] = later.name
    return result


# ---------------------------------------------------------------------------------------------
# Files and hashes


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def partial_path(path: Path) -> Path:
    """Where a file is written before it is complete: same folder and extension, hidden."""
    return path.with_name(f".{path.stem}.partial{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds."""
    temporary = partial_path(path)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def copy_atomic(source: Path, destination: Path) -> None:
    """Copy ``source`` to ``destination`` so that a reader never sees half a file."""
    with atomic_path(destination) as temporary:
        shutil.copyfile(source, temporary)


def check_writable(path: Path) -> None:
    """Fail early, with a clear line, when ``path`` cannot be written."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UserError(
            f"cannot write {path}: it is a folder; give a file name such as {path}/clip.mp4"
        )
    if folder.exists() and not folder.is_dir():
        raise UserError(f"cannot write {path}: {folder} is a file, not a folder")
    if not folder.is_dir():
        raise UserError(f"cannot write {path}: the folder {folder} does not exist; create it first")
    probe = folder / f".acgmake-write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise UserError(
            f"cannot write {path}: {error.strerror or error}; choose another output path"
        ) from None


# ---------------------------------------------------------------------------------------------
# Running


class Reporter:
    """Receives progress; the CLI prints it, the Python API stays quiet by default."""

    def stage_started(self, number: int, total: int, stage: Stage) -> None: ...

    def stage_progress(self, stage: Stage, done: float, total: float | None, note: str) -> None: ...

    def stage_finished(self, stage: Stage, seconds: float, cached: bool) -> None: ...

    def log(self, stage: Stage, message: str) -> None: ...


@dataclass
class Asset:
    """A file a stage used that is not an artifact: a voice, a model checkpoint, a font."""

    name: str
    path: str
    sha256: str
    license: str = ""
    credit: str = ""


class StageContext:
    """What a running stage sees: its input and output paths, parameters and seed."""

    def __init__(
        self,
        stage: Stage,
        workdir: Path,
        inputs: Mapping[str, Path],
        outputs: Mapping[str, Path],
        params: Mapping[str, Any],
        seed: int,
        reporter: Reporter,
    ) -> None:
        self.stage = stage
        self.workdir = workdir
        self.params = dict(params)
        self.seed = seed
        self.assets: list[Asset] = []
        self._inputs = dict(inputs)
        self._outputs = dict(outputs)
        self._reporter = reporter

    def input(self, kind: str) -> Path | None:
        """The file holding ``kind`` (one of ``needs``), or ``None`` for an absent ``uses``."""
        if kind not in self.stage.reads:
            raise RuntimeError(f"stage {self.stage.name!r} reads {kind!r} but does not need it")
        return self._inputs.get(kind)

    def output(self, kind: str) -> Path:
        """Where to write ``kind`` (a temporary name, renamed when the stage succeeds)."""
        if kind not in self._outputs:
            raise RuntimeError(f"stage {self.stage.name!r} writes {kind!r} but does not make it")
        return self._outputs[kind]

    def use_asset(
        self, path: str | Path, *, name: str, license: str = "", credit: str = ""
    ) -> None:
        """Record a model, voice or font file this stage used, for the manifest and the cache."""
        path = Path(path)
        self.assets.append(Asset(name, str(path), sha256_file(path), license, credit))

    def progress(self, done: float, total: float | None = None, note: str = "") -> None:
        self._reporter.stage_progress(self.stage, done, total, note)

    def log(self, message: str) -> None:
        self._reporter.log(self.stage, message)


@dataclass
class RunResult:
    workdir: Path
    stages: list[Stage]
    cached: list[str]
    files: dict[str, Path]


class RunFolder:
    """A run folder: every artifact under its well-known name, plus ``manifest.json``."""

    def __init__(self, path: Path, registry: Registry) -> None:
        self.path = Path(path)
        self.registry = registry

    def file(self, kind: str) -> Path:
        return self.path / self.registry.artifact(kind).filename

    def manifest(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / MANIFEST).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            # A damaged manifest only costs a re-run; never refuse to work because of it.
            return {}

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        with atomic_path(self.path / MANIFEST) as temporary:
            temporary.write_text(
                json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=False) + "\n",
                encoding="utf-8",
            )

    def create(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UserError(
                f"cannot create the run folder {self.path}: {error.strerror or error}; "
                "choose another with --workdir"
            ) from None
        if not os.access(self.path, os.W_OK):
            raise UserError(
                f"cannot write in the run folder {self.path}; choose another with --workdir"
            )

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        with open(self.path / ".lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UserError(
                    f"another acgmake is working in {self.path}; "
                    "wait for it or use another --workdir"
                ) from None
            yield

    def add_input(self, kind: str, source: Path) -> Path:
        """Bring a user's file into the run folder under its kind's name; returns that path."""
        source = Path(source)
        if not source.is_file():
            raise UserError(f"{source} is not a file; give the path of your {kind} file")
        limit = self.registry.artifact(kind).max_bytes
        if limit is not None and source.stat().st_size > limit:
            raise UserError(
                f"{source} is {_size(source.stat().st_size)}; a {kind} file can be at most "
                f"{_size(limit)} — is it the right file?"
            )
        destination = self.file(kind)
        if destination.exists() and destination.resolve() == source.resolve():
            return destination
        if destination.exists() and sha256_file(destination) == sha256_file(source):
            return destination
        copy_atomic(source, destination)
        return destination


def _size(count: int) -> str:
    if count >= 1048576:
        return f"{count / 1048576:.1f} MB"
    return f"{count / 1024:.0f} KB" if count >= 1024 else f"{count} bytes"


def _cache_key(
    stage: Stage,
    params: Mapping[str, Any],
    seed: int,
    inputs: Mapping[str, str],
    plugin_version: str,
) -> str:
    payload = {
        "stage": stage.name,
        "version": stage.version,
        "plugin": "" if stage.builtin else f"{stage.plugin} {plugin_version}",
        "params": params,
        "seed": seed,
        "inputs": dict(sorted(inputs.items())),
    }
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def _still_valid(
    entry: Mapping[str, Any], key: str, folder: Path, outputs: Mapping[str, Path]
) -> bool:
    """Whether a recorded stage run can stand in for running it now."""
    if entry.get("key") != key:
        return False
    recorded = entry.get("outputs", {})
    if set(recorded) != set(outputs):
        return False
    for kind, path in outputs.items():
        if recorded[kind]["file"] != os.path.relpath(path, folder):
            return False
        if not path.is_file() or sha256_file(path) != recorded[kind]["sha256"]:
            return False
    for asset in entry.get("assets", []):
        path = Path(asset["path"])
        if not path.is_file() or sha256_file(path) != asset["sha256"]:
            return False
    return True


def resolve_params(stage: Stage, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The stage's parameters: its defaults, overridden by ``given`` (unknown names refused)."""
    params = stage.defaults()
    for name, value in (given or {}).items():
        if name not in params:
            known = ", ".join(params) or "none"
            raise UserError(f"stage {stage.name!r} has no parameter {name!r} (it has: {known})")
        params[name] = value
    return params


def run(
    registry: Registry,
    workdir: Path,
    targets: Iterable[str],
    *,
    inputs: Mapping[str, Path] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 0,
    force: bool | Iterable[str] = False,
    only: Iterable[str] | None = None,
    reporter: Reporter | None = None,
    plugins: Iterable[Mapping[str, str]] = (),
) -> RunResult:
    """Make ``targets`` in the run folder ``workdir``; returns where every artifact is.

    ``inputs`` maps kinds to the user's files, which are copied in under their kinds' names.
    ``force`` re-runs every stage (``True``) or the named ones. ``only`` runs just the named
    stages, reading their inputs from ``inputs`` or from the run folder (what single-stage
    commands do); otherwise the stages come from :func:`plan`. A stage may raise
    :class:`NotAvailable`; what it makes is then left out, and only a target is an error.
    """
    targets = list(targets)
    reporter = reporter or Reporter()
    plugins = [dict(p) for p in plugins]
    plugin_versions = {p["name"]: p.get("version", "") for p in plugins}
    folder = RunFolder(Path(workdir), registry)
    folder.create()
    with folder.lock():
        given = {
            kind: folder.add_input(kind, Path(source)) for kind, source in (inputs or {}).items()
        }
        if only is not None:
            stages = [registry.stage(name) for name in only]
        else:
            stages = plan(registry, targets, given)

        manifest = folder.manifest()
        entries: dict[str, Any] = manifest.get("stages", {})
        manifest = {
            "format": 1,
            "acgmake": __version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "seed": seed,
            "inputs": {
                kind: {
                    "file": path.name,
                    "sha256": sha256_file(path),
                    "source": str(Path(inputs[kind]).resolve()),
                }
                for kind, path in given.items()
            },
            "plugins": plugins,
            "order": [s.name for s in stages],
            "stages": entries,
            "credits": [],
        }
        # The last maker of a kind writes its well-known name; an earlier one (a refiner
        # follows it) writes into stages/<name>/, so no stage overwrites another's output.
        last_maker = {kind: stage.name for stage in stages for kind in stage.makes}
        current: dict[str, Path] = dict(given)
        force_names = {s.name for s in stages} if force is True else set(force or ())
        cached: list[str] = []
        unavailable: dict[str, str] = {}  # kind -> why it could not be made
        for number, stage in enumerate(stages, start=1):
            reporter.stage_started(number, len(stages), stage)
            stage_params = resolve_params(stage, (params or {}).get(stage.name))
            lacking = [kind for kind in stage.needs if kind in unavailable]
            if lacking:
                _not_made(stage, unavailable[lacking[0]], unavailable, entries, folder, given)
                reporter.log(stage, f"skipped: {unavailable[lacking[0]]}")
                continue
            input_paths = {kind: current.get(kind, folder.file(kind)) for kind in stage.reads}
            for kind in stage.uses:
                if kind in unavailable or not input_paths[kind].is_file():
                    del input_paths[kind]
            for kind, path in input_paths.items():
                if not path.is_file():
                    raise UserError(
                        f"stage {stage.name!r} needs {kind!r} ({path.name}), which is not in "
                        f"{folder.path}; run the stage that makes it first or give "
                        f"{kind_option(kind)} PATH"
                    )
            input_hashes = {kind: sha256_file(path) for kind, path in input_paths.items()}
            key = _cache_key(
                stage, stage_params, seed, input_hashes, plugin_versions.get(stage.plugin, "")
            )
            outputs = {
                kind: folder.file(kind)
                if last_maker[kind] == stage.name
                else folder.path / "stages" / stage.name / registry.artifact(kind).filename
                for kind in stage.makes
            }
            if stage.name not in force_names and _still_valid(
                entries.get(stage.name, {}), key, folder.path, outputs
            ):
                current.update(outputs)
                cached.append(stage.name)
                reporter.stage_finished(stage, 0.0, cached=True)
                continue

            try:
                seconds, assets = _execute(
                    stage, folder.path, input_paths, outputs, stage_params, seed, reporter
                )
            except NotAvailable as why:
                _not_made(stage, str(why), unavailable, entries, folder, given)
                reporter.log(stage, f"not made: {why}")
                continue
            current.update(outputs)
            entries[stage.name] = {
                "plugin": stage.plugin,
                "plugin_version": plugin_versions.get(stage.plugin, ""),
                "version": stage.version,
                "params": stage_params,
                "seed": seed,
                "key": key,
                "inputs": {
                    kind: {"file": os.path.relpath(path, folder.path), "sha256": input_hashes[kind]}
                    for kind, path in input_paths.items()
                },
                "outputs": {
                    kind: {"file": os.path.relpath(path, folder.path), "sha256": sha256_file(path)}
                    for kind, path in outputs.items()
                },
                "assets": [vars(asset) for asset in assets],
                "seconds": round(seconds, 3),
                "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            manifest["credits"] = _credits(entries, manifest["order"])
            folder.write_manifest(manifest)
            reporter.stage_finished(stage, seconds, cached=False)

        manifest["credits"] = _credits(entries, manifest["order"])
        folder.write_manifest(manifest)
        for kind in targets:
            if kind in unavailable:
                raise UserError(f"{kind} was not made: {unavailable[kind]}")
        return RunResult(folder.path, stages, cached, current)


def _not_made(
    stage: Stage,
    why: str,
    unavailable: dict[str, str],
    entries: dict[str, Any],
    folder: RunFolder,
    given: Mapping[str, Path],
) -> None:
    """Mark what ``stage`` makes as unavailable and remove its stale files from earlier runs,
    so that no later stage reads an output that does not belong to this run."""
    entries[stage.name] = {"plugin": stage.plugin, "version": stage.version, "unavailable": why}
    for kind in stage.makes:
        if kind in given:
            continue
        unavailable[kind] = why
        with contextlib.suppress(FileNotFoundError):
            folder.file(kind).unlink()


def _execute(
    stage: Stage,
    workdir: Path,
    inputs: Mapping[str, Path],
    outputs: Mapping[str, Path],
    params: Mapping[str, Any],
    seed: int,
    reporter: Reporter,
) -> tuple[float, list[Asset]]:
    """Run one stage into temporary files and rename them only if it succeeds."""
    for path in outputs.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    partials = {kind: partial_path(path) for kind, path in outputs.items()}
    context = StageContext(stage, workdir, inputs, partials, params, seed, reporter)
    started = time.perf_counter()
    try:
        _call_stage(stage, context)
        missing = sorted(kind for kind, path in partials.items() if not path.is_file())
        if missing:
            raise _stage_bug(stage, f"it did not write {', '.join(missing)}")
        for kind, temporary in partials.items():
            os.replace(temporary, outputs[kind])
    finally:
        for temporary in partials.values():
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
    return time.perf_counter() - started, context.assets


def _credits(entries: Mapping[str, Any], names: Iterable[str]) -> list[str]:
    lines: list[str] = []
    for name in names:
        for asset in entries.get(name, {}).get("assets", []):
            if asset.get("credit") and asset["credit"] not in lines:
                lines.append(asset["credit"])
    return lines


def _call_stage(stage: Stage, context: StageContext) -> None:
    """Run a stage; a third-party stage's crash becomes one line that names its plugin."""
    try:
        stage.run(context)
    except (UserError, NotAvailable, KeyboardInterrupt):
        raise
    except Exception as error:
        if stage.builtin:
            raise  # a bug in acgmake: keep the traceback
        raise PluginError(
            f"stage {stage.name!r} from plugin {stage.plugin} failed: "
            f"{type(error).__name__}: {error}. Disable it with ACGMAKE_PLUGINS or report it "
            "to the plugin's author (ACGMAKE_DEBUG=1 shows the traceback)"
        ) from error


def _stage_bug(stage: Stage, what: str) -> Exception:
    message = f"stage {stage.name!r} from {stage.plugin} is broken: {what}"
    return RuntimeError(message) if stage.builtin else PluginError(message)
