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
import functools
import hashlib
import json
import math
import os
import platform
import queue
import re
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from acgmake import __version__
from acgmake.errors import PluginError, UserError

MANIFEST = "manifest.json"
#: The run folder's record of the files it hashed (:class:`HashCache`).
HASHES = ".hashes.json"
#: The time limit of a third-party stage that sets none (30 minutes).
PLUGIN_STAGE_TIMEOUT_S = 1800.0
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
    #: Called with the value before any stage runs (for the CLI and the Python API alike);
    #: raises :class:`UserError` (or ``ValueError``) when the value cannot work, so that a bad
    #: ``--size`` is refused at once, not after minutes of singing.
    check: Callable[[Any], Any] | None = None

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")


#: Seeds are 32-bit, as in most tools (numpy, torch and Sinsy's worker all take them).
SEED = click.IntRange(0, 2**32 - 1)


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


#: A stage's ``derive``: (options given by stage, names of the stages that run) -> options.
Derive = Callable[[Mapping[str, Mapping[str, Any]], frozenset[str]], Mapping[str, Any]]


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
    #: Seconds the stage may run before it is given up on (a hung stage must not hang the
    #: run). ``None``: no limit for acgmake's own stages, whose workers have their own; for a
    #: third-party stage ``ACGMAKE_STAGE_TIMEOUT`` or :data:`PLUGIN_STAGE_TIMEOUT_S`.
    timeout_s: float | None = None
    #: Names of the stages this one takes the place of (a plugin's better colorizer:
    #: ``replaces="colorize"``). It must make every kind they make without needing it; they
    #: then never run. Two stages that make one kind, neither replacing the other, are an error.
    replaces: tuple[str, ...] = ()
    #: Defaults worked out from the run: ``derive(given, stages)`` gets the options given for
    #: every stage (``{stage: {option: value}}``) and the names of the stages that run; what
    #: it returns stands for options of this stage that were not given. The same for the
    #: command line and the Python API (the upscale stage takes the clip's size from animate's
    #: ``size`` when animate runs).
    derive: Derive | None = None
    #: About how many seconds of one core the stage takes for a short song on a laptop. Only
    #: the order matters: of the stages ready to run side by side, those at the head of the
    #: longest chain of work still to do start first (see ``_chain_lengths``).
    cost_s: float = 1.0

    def __post_init__(self) -> None:
        for name in ("needs", "makes", "uses", "params", "replaces"):
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

    def time_limit(self) -> float | None:
        """How long this stage may run (see ``timeout_s``)."""
        if self.timeout_s is not None or self.builtin:
            return self.timeout_s
        try:
            return float(os.environ.get("ACGMAKE_STAGE_TIMEOUT", PLUGIN_STAGE_TIMEOUT_S))
        except ValueError:
            return PLUGIN_STAGE_TIMEOUT_S

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
            for name in stage.replaces:
                replaced = next((s for s in self.stages if s.name == name), None)
                missing = sorted(_produced(replaced) - _produced(stage)) if replaced else []
                if missing:
                    problems.append(
                        (
                            stage,
                            f"stage {stage.name!r} replaces {name!r} but does not make "
                            f"{', '.join(missing)}, which {name!r} makes",
                        )
                    )
        return problems


# ---------------------------------------------------------------------------------------------
# Planning


def plan(
    registry: Registry,
    targets: Iterable[str],
    given: Iterable[str] = (),
    also: Iterable[str] = (),
) -> list[Stage]:
    """The stages to run, in order, to make ``targets`` from the ``given`` kinds.

    A stage that makes a kind without needing it (a *producer*) is left out when the user gave
    that kind. A stage that needs and makes a kind (a *refiner*) runs after that kind's
    producers and before anything else that needs it; refiners of one kind run in
    registration order. Kinds a stage only ``uses`` are made when they can be. An
    ``optional`` stage runs only when it is named in ``also`` (``--also``) or is what makes
    one of the ``targets`` asked for; never because it refines a kind the chain needs.
    """
    targets, given, also = list(targets), set(given), set(also)
    index = {stage.name: i for i, stage in enumerate(registry.stages)}
    candidates = []
    for stage in registry.stages:
        if stage.optional and stage.name not in also and not _produced(stage) & set(targets):
            continue
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
            named = ", ".join(f"{n} ({chosen[n].plugin or 'no plugin'})" for n in stuck)
            raise UserError(
                f"the stages {named} need each other's output (a cycle); leave out the plugin "
                "that added one of them with ACGMAKE_PLUGINS=-NAME"
            )
        name = min(ready, key=index.__getitem__)
        ordered.append(chosen[name])
        done.add(name)
    return ordered


def _produced(stage: Stage) -> set[str]:
    """The kinds ``stage`` makes without needing them."""
    return set(stage.makes) - set(stage.needs)


def _drop_replaced(stages: list[Stage]) -> list[Stage]:
    """Leave out the stages another declares it replaces (``Stage(replaces=...)``): how a
    plugin puts its stage in place of a built-in one, whatever order they registered in. Two
    producers of one kind that neither replaces are an error."""
    replaced = {name for stage in stages for name in stage.replaces}
    kept = [stage for stage in stages if stage.name not in replaced]
    owner: dict[str, Stage] = {}
    for stage in kept:
        for kind in _produced(stage):
            if kind in owner:
                raise UserError(
                    f"both {owner[kind].name!r} ({owner[kind].plugin}) and {stage.name!r} "
                    f"({stage.plugin}) make {kind!r}; leave one of their plugins out with "
                    f"ACGMAKE_PLUGINS (a plugin meant to take {owner[kind].name!r}'s place "
                    f"declares it: Stage(..., replaces={owner[kind].name!r}))"
                )
            owner[kind] = stage
    return kept


def replaced_by(registry: Registry) -> dict[str, str]:
    """Stage name -> the stage that replaces it (see :func:`_drop_replaced`)."""
    present = {stage.name for stage in registry.stages}
    return {
        name: stage.name
        for stage in registry.stages
        for name in stage.replaces
        if name in present and name != stage.name
    }


# ---------------------------------------------------------------------------------------------
# Files and hashes


class HashCache:
    """The sha256 of files, remembered with what ``stat`` says of each (device, inode, size,
    modification and change times, as git's index does), so that a file is read again only
    when it may have changed. A re-run with nothing changed then reads no file whole: its
    time no longer grows with the song's length. The change time (ctime) cannot be set back
    by any tool, so a file rewritten to the same size and modification time is still seen.

    As in git, a hash is trusted only for a file last changed at least :data:`RACY_NS` before
    it was hashed: a file's times have a coarse clock, and a change within the same tick
    would leave them as they were. :func:`run` keeps what it hashed in the run folder
    (:data:`HASHES`) for the next run, hashing again first what was too fresh to trust.
    """

    #: A hashes file larger than this is not ours (a few hundred bytes per file hashed).
    MAX_BYTES = 4 << 20
    #: How long after its last change a file's hash is trusted (far above any file system's
    #: clock tick).
    RACY_NS = 100_000_000

    def __init__(self) -> None:
        # name -> (stat, sha256, when it was hashed)
        self._known: dict[str, tuple[tuple[int, ...], str, int]] = {}
        self._used: set[str] = set()
        self._lock = threading.Lock()

    @staticmethod
    def _stat(path: str | Path) -> tuple[str, tuple[int, ...]]:
        name = os.path.abspath(path)
        info = os.stat(name)
        return name, (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)

    @classmethod
    def _trusted(cls, entry: tuple[tuple[int, ...], str, int] | None, stat: tuple) -> bool:
        if entry is None or entry[0] != stat:
            return False
        return max(stat[3], stat[4]) < entry[2] - cls.RACY_NS

    def _hash(self, name: str, stat: tuple[int, ...]) -> str:
        hashed_at = time.time_ns()
        digest = hashlib.sha256()
        with open(name, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        value = digest.hexdigest()
        if self._stat(name)[1] == stat:  # not changed while it was read
            with self._lock:
                self._known[name] = (stat, value, hashed_at)
        return value

    def sha256(self, path: Path) -> str:
        name, stat = self._stat(path)
        with self._lock:
            known = self._known.get(name)
            self._used.add(name)
        if self._trusted(known, stat):
            assert known is not None
            return known[1]
        return self._hash(name, stat)

    def load(self, file: Path) -> None:
        """Take in the hashes kept in ``file``; a missing or damaged one is ignored (it is a
        cache: every hash in it is checked against the file's stat before it is used)."""
        try:
            if file.stat().st_size > self.MAX_BYTES:
                return
            entries = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if not isinstance(entries, dict):
            return
        with self._lock:
            for name, entry in entries.items():
                if (
                    isinstance(entry, list)
                    and len(entry) == 7
                    and all(type(n) is int for n in (*entry[:5], entry[6]))
                    and isinstance(entry[5], str)
                    and re.fullmatch("[0-9a-f]{64}", entry[5])
                ):
                    self._known.setdefault(name, (tuple(entry[:5]), entry[5], entry[6]))

    def save(self, file: Path) -> None:
        """Keep in ``file`` the hashes of the files used since the last save. One hashed too
        soon after it was written is hashed again now if it has aged enough (else left out)."""
        with self._lock:
            used, self._used = self._used, set()
        entries = {}
        for name in sorted(used):
            try:
                _, stat = self._stat(name)
            except OSError:
                continue
            with self._lock:
                known = self._known.get(name)
            if known is None or known[0] != stat:
                continue
            if not self._trusted(known, stat):
                if max(stat[3], stat[4]) >= time.time_ns() - self.RACY_NS:
                    continue  # changed just now: the next run hashes it
                try:
                    self._hash(name, stat)
                except OSError:
                    continue
                with self._lock:
                    known = self._known.get(name)
                if known is None or not self._trusted(known, stat):
                    continue
            entries[name] = [*known[0], known[1], known[2]]
        with contextlib.suppress(OSError), atomic_path(file) as temporary:
            temporary.write_text(json.dumps(entries) + "\n", encoding="utf-8")


_HASHES = HashCache()


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes (remembered while the file is unchanged: :class:`HashCache`)."""
    return _HASHES.sha256(path)


def user_path(text: str | Path) -> Path:
    """A path as the user wrote it, ``~`` and ``~user`` expanded where they name a home
    folder (``~nobody-here`` stays as written, and is then a file that is not there)."""
    path = Path(text)
    try:
        return path.expanduser()
    except RuntimeError:  # no such user, or no home folder
        return path


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (through links, ``..`` and hard links too)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(os.path.abspath(a)) == Path(os.path.abspath(b))


def partial_path(path: Path) -> Path:
    """Where a file is written before it is complete: same folder and extension, hidden."""
    return path.with_name(f".{path.stem}.partial{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    The temporary name is this process's own (two commands writing one ``-o`` at once each
    publish a whole file, the last one winning, never a mix of both)."""
    temporary = path.with_name(
        f".{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial{path.suffix}"
    )
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
        *,
        cancel: threading.Event | None = None,
        cores: int = 0,
        credits: Iterable[str] = (),
        cores_now: Callable[[], int] | None = None,
    ) -> None:
        self.stage = stage
        self.workdir = workdir
        self.params = dict(params)
        self.seed = seed
        #: The credit lines of the models, voices and sounds behind this stage's inputs (the
        #: stages of this run, and of earlier runs, whose files it reads), in chain order: what
        #: a clip's end card shows. Stages never read manifest.json themselves.
        self.credits: list[str] = list(credits)
        #: How many CPU cores this stage may keep busy (fewer when stages run side by side;
        #: it may grow at a :meth:`progress` report, when a stage beside it has finished).
        self.cores = cores or default_jobs()
        self._cores_now = cores_now
        self._cancel = cancel
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
        """Report progress; when the run is being stopped (Ctrl-C, or another stage failed),
        this is where the stage stops. It is also where the stage takes more cores (torch's
        threads in this thread) when a stage beside it has finished."""
        self._check_cancelled()
        if self._cores_now is not None:
            cores = self._cores_now()
            if cores != self.cores:
                self.cores = cores
                _use_cores(cores, set_env=False)
        self._reporter.stage_progress(self.stage, done, total, note)

    def log(self, message: str) -> None:
        self._check_cancelled()
        self._reporter.log(self.stage, message)

    def _check_cancelled(self) -> None:
        if self._cancel is not None and self._cancel.is_set():
            raise _Cancelled(f"stage {self.stage.name!r} was stopped")


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
        """manifest.json as recorded, keeping only what has the shape acgmake writes: a
        damaged or hand-edited manifest only costs re-running the stages whose records are
        unreadable, never the run folder."""
        path = self.path / MANIFEST
        try:
            if path.stat().st_size > MAX_MANIFEST_BYTES:
                return {}
            recorded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return {}
        if not isinstance(recorded, dict):
            return {}
        stages = recorded.get("stages")
        order = recorded.get("order")
        return {
            **recorded,
            "order": [n for n in order if isinstance(n, str)] if isinstance(order, list) else [],
            "stages": {
                name: entry
                for name, entry in (stages.items() if isinstance(stages, dict) else ())
                if _entry_ok(entry)
            },
        }

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        with atomic_path(self.path / MANIFEST) as temporary:
            # allow_nan=False: NaN is not JSON; every value was checked before it got here.
            text = json.dumps(manifest, indent=2, ensure_ascii=False, allow_nan=False)
            temporary.write_text(text + "\n", encoding="utf-8")

    def check_ours(self, giving: Mapping[str, Path], writing: Iterable[str]) -> None:
        """Refuse a folder that acgmake did not make (no manifest, no lock) when it holds a
        file that this run would overwrite: ``--workdir ~/Pictures`` must not replace your
        own ``character.png``. ``giving``: the user's files for this run, by kind (one that
        is already the file there is fine); ``writing``: the kinds the run's stages make."""
        if not self.path.is_dir() or any(
            (self.path / name).exists() for name in (MANIFEST, ".lock")
        ):
            return
        for kind in sorted(set(writing) | set(giving)):
            artifact = self.registry.artifact(kind)
            there = self.path / artifact.filename
            if kind in giving and there.exists() and same_file(there, giving[kind]):
                continue
            if there.exists():
                raise UserError(
                    f"{self.path} is not an acgmake run folder and holds {artifact.filename}, "
                    "which a stage would overwrite; give a new or empty folder with --workdir"
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

    @contextlib.contextmanager
    def inputs(self, sources: Mapping[str, Path]) -> Iterator[dict[str, Path]]:
        """Bring the user's files in (:meth:`add_input`) for one run, and take them out again
        if the run fails: a file given to a failed run is never read by a later command that
        did not give it (the file it replaced comes back)."""
        replaced: list[tuple[Path, Path | None]] = []  # (file, the earlier file kept aside)
        try:
            yield {
                kind: self.add_input(kind, Path(source), replaced)
                for kind, source in sources.items()
            }
        except BaseException:
            for path, earlier in reversed(replaced):
                if earlier is not None:
                    os.replace(earlier, path)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
            raise
        for _, earlier in replaced:
            if earlier is not None:
                with contextlib.suppress(FileNotFoundError):
                    earlier.unlink()

    def add_input(
        self, kind: str, source: Path, replaced: list[tuple[Path, Path | None]] | None = None
    ) -> Path:
        """Bring a user's file into the run folder under its kind's name; returns that path.
        ``replaced`` collects what was there before, for :meth:`inputs` to put back."""
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
        if destination.exists() and same_file(destination, source):
            return destination
        if destination.exists() and sha256_file(destination) == sha256_file(source):
            return destination
        earlier = None
        if destination.exists() and replaced is not None:
            earlier = destination.with_name(f".{destination.name}.before-run")
            os.replace(destination, earlier)
        if replaced is not None:
            replaced.append((destination, earlier))
        copy_atomic(source, destination)
        return destination


#: A manifest larger than this is not one acgmake wrote (a few KB per stage).
MAX_MANIFEST_BYTES = 8 * 1024 * 1024


def _entry_ok(entry: Any) -> bool:
    """Whether a manifest record of a stage run has the shape :class:`_Build` writes."""

    def files_ok(records: Any) -> bool:
        return isinstance(records, dict) and all(
            isinstance(record, dict)
            and isinstance(record.get("file"), str)
            and isinstance(record.get("sha256"), str)
            for record in records.values()
        )

    if not isinstance(entry, dict):
        return False
    if "unavailable" in entry:
        return isinstance(entry["unavailable"], str)
    assets = entry.get("assets", [])
    return (
        isinstance(entry.get("key"), str)
        and files_ok(entry.get("outputs"))
        and files_ok(entry.get("inputs", {}))
        and isinstance(assets, list)
        and all(
            isinstance(asset, dict)
            and isinstance(asset.get("path"), str)
            and isinstance(asset.get("sha256"), str)
            and isinstance(asset.get("credit", ""), str)
            for asset in assets
        )
    )


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
    """The stage's parameters: its defaults, overridden by ``given`` (unknown names refused),
    each converted to its type and checked (:func:`check_param`)."""
    params = stage.defaults()
    declared = {param.name: param for param in stage.params}
    for name, value in (given or {}).items():
        if name not in params:
            known = ", ".join(params) or "none"
            raise UserError(f"stage {stage.name!r} has no parameter {name!r} (it has: {known})")
        params[name] = check_param(stage, declared[name], value)
    return params


def derived_params(
    stages: Iterable[Stage], given: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """``given`` (options by stage) with what each stage's ``derive`` works out for the
    options not given (see :attr:`Stage.derive`)."""
    stages = list(stages)
    names = frozenset(stage.name for stage in stages)
    result = {name: dict(values) for name, values in given.items()}
    for stage in stages:
        if stage.derive is None:
            continue
        own = result.setdefault(stage.name, {})
        for name, value in stage.derive(given, names).items():
            own.setdefault(name, value)
    return result


def check_param(stage: Stage, param: Param, value: Any) -> Any:
    """``value`` for ``param`` converted to its type, or one clear line: the one place where
    stage options are validated, for the command line and the Python API. Numbers must be
    finite and within the type's range (click's ranges let ``nan`` through), and the
    parameter's own ``check`` must accept the value."""
    where = f"{param.option} (stage {stage.name})"
    if value is None and param.default is None:
        return None  # "empty = the default behaviour"
    kind = param.type if param.type is not None else type(param.default)
    try:
        if isinstance(kind, click.ParamType):
            value = kind.convert(value, None, None)
        elif kind is bool:
            if not isinstance(value, bool | str):  # 0, 1.0, None: not a yes or no
                raise ValueError("give true or false")
            value = click.BOOL.convert(value, None, None)
        elif kind in (int, float, str):
            if kind is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(f"{value!r} is not a whole number")
            value = kind(value)
    except click.BadParameter as error:
        raise UserError(f"{where}: {error.message}") from None
    except (TypeError, ValueError, OverflowError) as error:
        name = getattr(kind, "__name__", None) or getattr(kind, "name", "value")
        raise UserError(f"{where}: {value!r} is not a valid {name} ({error})") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{where}: give a finite number, not {value}")
    if isinstance(kind, click.FloatRange | click.IntRange):
        # click checks ranges in its own way; NaN slips through comparisons, so check again.
        low, high = kind.min, kind.max
        if (low is not None and not value >= low) or (high is not None and not value <= high):
            raise UserError(f"{where}: {value} is not in the range {kind._describe_range()}")
    if param.check is not None:
        try:
            param.check(value)
        except UserError as error:
            if param.option in error.message:
                raise
            raise UserError(f"{where}: {error.message}") from None
        except ValueError as error:
            raise UserError(f"{where}: {error}") from None
    return value


def default_jobs() -> int:
    """How many stages ``acgmake`` runs at once by default: the CPU cores it may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


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
    jobs: int = 1,
    also: Iterable[str] = (),
) -> RunResult:
    """Make ``targets`` in the run folder ``workdir``; returns where every artifact is.

    ``inputs`` maps kinds to the user's files, which are copied in under their kinds' names.
    ``force`` re-runs every stage (``True``) or the named ones. ``only`` runs just the named
    stages, reading their inputs from ``inputs`` or from the run folder (what single-stage
    commands do); otherwise the stages come from :func:`plan`, with the optional stages named
    in ``also``. A stage may raise
    :class:`NotAvailable`; what it makes is then left out, and only a target is an error.

    ``jobs`` is how many stages may run at once, as ``make -j`` does: a stage starts as soon as
    the stages whose files it reads (or rewrites) are done, in a thread of this process, and the
    CPU cores are shared among the running stages (:attr:`StageContext.cores`). When a stage
    fails, or on Ctrl-C, the others stop at their next progress report, without leaving
    anything half-written, and every stage that finished is kept.
    """
    targets = list(targets)
    reporter = reporter or Reporter()
    plugins = [dict(p) for p in plugins]
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise UserError(f"--seed must be a whole number from 0 to {2**32 - 1}; got {seed!r}")
    # Everything that can be checked is checked before the first file is touched.
    if only is not None:
        stages = [registry.stage(name) for name in only]
    else:
        stages = plan(registry, targets, set(inputs or {}), also)
    params = derived_params(stages, params or {})
    resolved = {s.name: resolve_params(s, params.get(s.name)) for s in stages}
    folder = RunFolder(Path(workdir), registry)
    folder.check_ours(inputs or {}, {kind for stage in stages for kind in stage.makes})
    folder.create()
    with folder.lock():
        _HASHES.load(folder.path / HASHES)
        with folder.inputs(inputs or {}) as given:
            build = _Build(registry, folder, stages, given, inputs or {}, plugins, seed, reporter)
            build.params = resolved
            build.force = {s.name for s in stages} if force is True else set(force or ())
            if jobs <= 1 and all(stage.time_limit() is None for stage in stages):
                for stage in stages:
                    job = build.prepare(stage)
                    if job is not None:
                        try:
                            outcome: tuple[float, list[Asset]] | NotAvailable = build.execute(job)
                        except NotAvailable as why:
                            outcome = why
                        build.finish(job, outcome)
            else:  # side by side, or one at a time under a watch for time limits
                build.reporter = _LockedReporter(reporter)
                _run_parallel(build, max(1, jobs))
            build.write_manifest()
            _HASHES.save(folder.path / HASHES)
            for kind in targets:
                if kind in build.unavailable:
                    raise UserError(f"{kind} was not made: {build.unavailable[kind]}")
        return RunResult(folder.path, stages, build.cached, build.files())


@dataclass
class _Job:
    """A stage about to run: where it reads and writes, its cache key and input hashes."""

    stage: Stage
    number: int
    inputs: dict[str, Path]
    input_hashes: dict[str, str]
    outputs: dict[str, Path]
    params: dict[str, Any]
    key: str
    credits: list[str]


class _Cancelled(BaseException):
    """Raised inside a stage (at its next progress report) when the run is being stopped."""


class _Build:
    """One run's shared state: what each stage reads and writes, the manifest entries, what
    could not be made. Only the thread that schedules the stages changes it."""

    def __init__(
        self,
        registry: Registry,
        folder: RunFolder,
        stages: list[Stage],
        given: Mapping[str, Path],
        sources: Mapping[str, Path],
        plugins: list[dict[str, str]],
        seed: int,
        reporter: Reporter,
    ) -> None:
        self.folder = folder
        self.stages = stages
        self.given = dict(given)
        self.seed = seed
        self.reporter = reporter
        self.params: dict[str, dict[str, Any]] = {}
        self.force: set[str] = set()
        self.plugin_versions = {p["name"]: p.get("version", "") for p in plugins}
        self.cached: list[str] = []
        self.done: set[str] = set()  # stages that ran or were cached (not skipped)
        self.unavailable: dict[str, str] = {}  # kind -> why it could not be made
        self.cancel = threading.Event()
        #: How many stages are running now (the scheduler sets it), and so each one's cores.
        self.running_count = 1
        previous = folder.manifest()
        entries: dict[str, Any] = previous.get("stages", {})
        self.entries = entries
        self.manifest: dict[str, Any] = {
            "format": 1,
            "acgmake": __version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "seed": seed,
            "inputs": {
                kind: {
                    "file": path.name,
                    "sha256": sha256_file(path),
                    "source": str(Path(sources[kind]).resolve()),
                }
                for kind, path in self.given.items()
            },
            "plugins": plugins,
            "order": [s.name for s in stages],
            "stages": entries,
            "credits": [],
        }
        # The last maker of a kind writes its well-known name; an earlier one (a refiner
        # follows it) writes into stages/<name>/, so no stage overwrites another's output.
        last_maker = {kind: stage.name for stage in stages for kind in stage.makes}
        self.outputs = {
            stage.name: {
                kind: folder.file(kind)
                if last_maker[kind] == stage.name
                else folder.path / "stages" / stage.name / registry.artifact(kind).filename
                for kind in stage.makes
            }
            for stage in stages
        }
        # What each stage reads: the file of the last stage before it that makes the kind.
        current: dict[str, Path] = dict(self.given)
        self.reads: dict[str, dict[str, Path]] = {}
        for stage in stages:
            self.reads[stage.name] = {
                kind: current.get(kind, folder.file(kind)) for kind in stage.reads
            }
            current.update(self.outputs[stage.name])
        self.after = _waits_for(stages)
        self.priority = _chain_lengths(stages, self.after)
        # Credits of files made by stages of earlier runs that this run reads (a re-run of
        # one stage must not drop the credits of the models and sounds behind its inputs).
        running = {stage.name for stage in stages}
        known = list(previous.get("order", []))
        earlier = sorted(
            (name for name, entry in entries.items() if name not in running),
            key=lambda name: (known.index(name) if name in known else len(known), name),
        )
        self.earlier_credits = _credits(
            {
                name: entries[name]
                for name in earlier
                if _outputs_intact(entries[name], folder.path)
            },
            earlier,
        )

    def prepare(self, stage: Stage) -> _Job | None:
        """Check a stage's inputs and cache; returns what to run, or ``None`` when the stage
        was skipped (an input it needs could not be made) or its outputs are up to date."""
        number = self.stages.index(stage) + 1
        self.reporter.stage_started(number, len(self.stages), stage)
        lacking = [kind for kind in stage.needs if kind in self.unavailable]
        if lacking:
            self._not_made(stage, self.unavailable[lacking[0]])
            self.reporter.log(stage, f"skipped: {self.unavailable[lacking[0]]}")
            return None
        input_paths = dict(self.reads[stage.name])
        for kind in stage.uses:
            if kind in self.unavailable or not input_paths[kind].is_file():
                del input_paths[kind]
        for kind, path in input_paths.items():
            if not path.is_file():
                raise UserError(
                    f"stage {stage.name!r} needs {kind!r} ({path.name}), which is not in "
                    f"{self.folder.path}; run the stage that makes it first or give "
                    f"{kind_option(kind)} PATH"
                )
        input_hashes = {kind: sha256_file(path) for kind, path in input_paths.items()}
        params = self.params[stage.name]
        key = _cache_key(
            stage, params, self.seed, input_hashes, self.plugin_versions.get(stage.plugin, "")
        )
        outputs = self.outputs[stage.name]
        if stage.name not in self.force and _still_valid(
            self.entries.get(stage.name, {}), key, self.folder.path, outputs
        ):
            self.cached.append(stage.name)
            self.done.add(stage.name)
            self.reporter.stage_finished(stage, 0.0, cached=True)
            return None
        return _Job(stage, number, input_paths, input_hashes, outputs, params, key, self.credits())

    def cores_now(self) -> int:
        """Each running stage's share of the CPU cores now."""
        return max(1, default_jobs() // max(1, self.running_count))

    def execute(
        self, job: _Job, cores: int = 0, set_env: bool = False
    ) -> tuple[float, list[Asset]]:
        return _execute(
            job.stage,
            self.folder.path,
            job.inputs,
            job.outputs,
            job.params,
            self.seed,
            self.reporter,
            cancel=self.cancel,
            cores=cores,
            set_env=set_env,
            credits=job.credits,
            cores_now=self.cores_now if cores else None,
        )

    def finish(self, job: _Job, outcome: tuple[float, list[Asset]] | NotAvailable) -> None:
        """Record a stage that ran (or found it could not make its outputs)."""
        stage = job.stage
        if isinstance(outcome, NotAvailable):
            self._not_made(stage, str(outcome))
            self.reporter.log(stage, f"not made: {outcome}")
            return
        seconds, assets = outcome
        folder = self.folder.path
        self.entries[stage.name] = {
            "plugin": stage.plugin,
            "plugin_version": self.plugin_versions.get(stage.plugin, ""),
            "version": stage.version,
            "params": job.params,
            "seed": self.seed,
            "key": job.key,
            "inputs": {
                kind: {"file": os.path.relpath(path, folder), "sha256": job.input_hashes[kind]}
                for kind, path in job.inputs.items()
            },
            "outputs": {
                kind: {"file": os.path.relpath(path, folder), "sha256": sha256_file(path)}
                for kind, path in job.outputs.items()
            },
            "assets": [vars(asset) for asset in assets],
            "seconds": round(seconds, 3),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        self.done.add(stage.name)
        self.write_manifest()
        self.reporter.stage_finished(stage, seconds, cached=False)

    def credits(self) -> list[str]:
        """The credits of the files made so far: earlier runs' (for files this run reads),
        then this run's stages, in chain order."""
        credits = list(self.earlier_credits)
        order = self.manifest["order"]
        return credits + [line for line in _credits(self.entries, order) if line not in credits]

    def write_manifest(self) -> None:
        """Write manifest.json: the stages in this run's order (then those of earlier runs),
        whatever order they finished in, and the credits in the same order."""
        order = self.manifest["order"]
        names = [name for name in order if name in self.entries]
        names += [name for name in self.entries if name not in order]
        self.manifest["stages"] = {name: self.entries[name] for name in names}
        self.manifest["credits"] = self.credits()
        self.folder.write_manifest(self.manifest)

    def files(self) -> dict[str, Path]:
        """Where each kind made or given in this run is."""
        files = dict(self.given)
        for stage in self.stages:
            if stage.name in self.done:
                files.update(self.outputs[stage.name])
        return files

    def _not_made(self, stage: Stage, why: str) -> None:
        """Mark what ``stage`` makes as unavailable and remove its stale files from earlier
        runs, so that no later stage reads an output that does not belong to this run."""
        self.entries[stage.name] = {
            "plugin": stage.plugin,
            "version": stage.version,
            "unavailable": why,
        }
        for kind in stage.makes:
            if kind in self.given:
                continue
            self.unavailable[kind] = why
            with contextlib.suppress(FileNotFoundError):
                self.folder.file(kind).unlink()


def _waits_for(stages: list[Stage]) -> dict[str, set[str]]:
    """Stage name -> the earlier stages it must wait for: those that make a kind it reads,
    read a kind it makes (it may rewrite their input) or make a kind it makes."""
    after: dict[str, set[str]] = {}
    for i, stage in enumerate(stages):
        reads, makes = set(stage.reads), set(stage.makes)
        after[stage.name] = {
            earlier.name
            for earlier in stages[:i]
            if set(earlier.makes) & (reads | makes) or set(earlier.reads) & makes
        }
    return after


def _chain_lengths(stages: list[Stage], after: Mapping[str, set[str]]) -> dict[str, float]:
    """Stage name -> the work (``cost_s``) of the longest chain of stages each waiting for
    the one before that starts at it, itself included. Of the stages ready to start, the one
    with the longest chain goes first, as a critical-path scheduler does: the picture's long
    branch (character, expressions, upscaling, colour, then animate) is not held up by a short
    stage that can as well run beside it later."""
    length: dict[str, float] = {}
    for stage in reversed(stages):  # whatever waits for a stage comes after it in the plan
        waiting = [length[s.name] for s in stages if stage.name in after[s.name]]
        length[stage.name] = stage.cost_s + max(waiting, default=0.0)
    return length


def _run_parallel(build: _Build, jobs: int) -> None:
    """Run ``build``'s stages, up to ``jobs`` at once, each as soon as what it waits for is
    settled (made, cached, skipped or not available)."""
    cpus = default_jobs()
    pending = list(build.stages)
    running: dict[str, _Job] = {}
    settled: set[str] = set()
    finished: queue.Queue[tuple[_Job, Any]] = queue.Queue()
    failure: BaseException | None = None
    # Torch not loaded yet takes its thread count from OMP_NUM_THREADS, unless the user set it.
    set_env = "OMP_NUM_THREADS" not in os.environ

    def work(job: _Job, cores: int) -> None:
        try:
            result: Any = build.execute(job, cores, set_env)
        except BaseException as error:  # handed to the scheduling thread, which decides
            result = error
        finished.put((job, result))

    started: dict[str, float] = {}

    def overdue() -> None:
        """Raise for a stage past its time limit; it is left behind (its thread cannot be
        stopped from outside) and publishes nothing (the run is cancelled)."""
        now = time.monotonic()
        for name, job in list(running.items()):
            limit = job.stage.time_limit()
            if limit is not None and now - started[name] > limit:
                del running[name]
                raise PluginError(
                    f"stage {name!r} from plugin {job.stage.plugin} ran for more than "
                    f"{limit:.0f} s, its time limit, and was given up; report it to the "
                    "plugin's author (ACGMAKE_STAGE_TIMEOUT sets the limit in seconds)"
                )

    def settle(job: _Job, result: Any) -> BaseException | None:
        del running[job.stage.name]
        build.running_count = len(running)
        settled.add(job.stage.name)
        if isinstance(result, NotAvailable) or not isinstance(result, BaseException):
            build.finish(job, result)
            return None
        return result

    try:
        while pending or running:
            batch: list[_Job] = []
            while failure is None and len(running) + len(batch) < jobs:
                startable = [s for s in pending if build.after[s.name] <= settled]
                if not startable:
                    break
                # max keeps the first of equals: ties go in the plan's order
                ready = max(startable, key=lambda s: build.priority[s.name])
                pending.remove(ready)
                job = build.prepare(ready)
                if job is None:
                    settled.add(ready.name)
                else:
                    batch.append(job)
            build.running_count = len(running) + len(batch)
            share = max(1, cpus // max(1, build.running_count))
            for job in batch:
                running[job.stage.name] = job
                started[job.stage.name] = time.monotonic()
                name = f"acgmake {job.stage.name}"
                threading.Thread(target=work, args=(job, share), name=name, daemon=True).start()
            if not running:
                if failure is None and pending:  # cannot happen: the order is a plan
                    raise RuntimeError(f"stages {[s.name for s in pending]} cannot start")
                break
            error = settle(*_next(finished, overdue))
            if error is not None and failure is None:
                failure = error
                build.cancel.set()
    except BaseException:
        # Ctrl-C, or a stage's inputs are missing: stop the others and keep what finished.
        build.cancel.set()
        while running:
            job, result = _next(finished, overdue=None)  # a second Ctrl-C stops waiting
            if job.stage.name in running:  # not one left behind
                settle(job, result)
        raise
    finally:
        if set_env:
            os.environ.pop("OMP_NUM_THREADS", None)
    if failure is not None:
        raise failure


def _next(
    finished: queue.Queue[tuple[_Job, Any]], overdue: Callable[[], None] | None
) -> tuple[_Job, Any]:
    """The next stage to finish (waiting in short steps, so that Ctrl-C is seen at once and
    ``overdue`` can raise for a stage past its time limit)."""
    while True:
        try:
            return finished.get(timeout=0.25)
        except queue.Empty:
            if overdue is not None:
                overdue()


class _LockedReporter(Reporter):
    """Passes progress on from several stage threads, one call at a time."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self.lock = threading.Lock()

    def stage_started(self, number: int, total: int, stage: Stage) -> None:
        with self.lock:
            self.reporter.stage_started(number, total, stage)

    def stage_progress(self, stage: Stage, done: float, total: float | None, note: str) -> None:
        with self.lock:
            self.reporter.stage_progress(stage, done, total, note)

    def stage_finished(self, stage: Stage, seconds: float, cached: bool) -> None:
        with self.lock:
            self.reporter.stage_finished(stage, seconds, cached)

    def log(self, stage: Stage, message: str) -> None:
        with self.lock:
            self.reporter.log(stage, message)


def _use_cores(count: int, *, set_env: bool) -> None:
    """Let torch in this thread use ``count`` threads, so that stages running side by side do
    not oversubscribe the cores (measured: a 4 s torch stage took 36-87 s beside another job).
    Torch not loaded yet reads ``OMP_NUM_THREADS`` when it loads (a value the user set is
    left alone)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(count)
    elif set_env:
        os.environ["OMP_NUM_THREADS"] = str(count)


def _execute(
    stage: Stage,
    workdir: Path,
    inputs: Mapping[str, Path],
    outputs: Mapping[str, Path],
    params: Mapping[str, Any],
    seed: int,
    reporter: Reporter,
    *,
    cancel: threading.Event | None = None,
    cores: int = 0,
    set_env: bool = False,
    credits: Iterable[str] = (),
    cores_now: Callable[[], int] | None = None,
) -> tuple[float, list[Asset]]:
    """Run one stage into temporary files and rename them only if it succeeds. ``cores`` > 0
    is this stage's share of the CPU when stages run side by side."""
    for path in outputs.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    partials = {kind: partial_path(path) for kind, path in outputs.items()}
    context = StageContext(
        stage,
        workdir,
        inputs,
        partials,
        params,
        seed,
        reporter,
        cancel=cancel,
        cores=cores,
        credits=credits,
        cores_now=cores_now,
    )
    if cores:
        _use_cores(cores, set_env=set_env)
    started = time.perf_counter()
    try:
        _call_stage(stage, context)
        missing = sorted(kind for kind, path in partials.items() if not path.is_file())
        if missing:
            raise _stage_bug(stage, f"it did not write {', '.join(missing)}")
        if cancel is not None and cancel.is_set():  # stopped, or given up as overdue
            raise _Cancelled(f"stage {stage.name!r} was stopped")
        for kind, temporary in partials.items():
            os.replace(temporary, outputs[kind])
    finally:
        for temporary in partials.values():
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
        _give_back_memory()
    return time.perf_counter() - started, context.assets


def _give_back_memory() -> None:
    """Hand the memory a finished stage freed back to the system. glibc keeps what a thread
    frees in that thread's own arena, where the stages running later in other threads do not
    reuse it: measured on the 300 s song, the tag stage's 40 MB stayed counted in the run's
    peak. Nothing happens where the C library has no ``malloc_trim``."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    import ctypes

    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None


def _outputs_intact(entry: Mapping[str, Any], folder: Path) -> bool:
    """Whether the files a recorded stage run made are all still there, unchanged."""
    outputs = entry.get("outputs") or {}
    for record in outputs.values():
        path = folder / record["file"]
        if not path.is_file() or sha256_file(path) != record["sha256"]:
            return False
    return bool(outputs)


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
