"""The studio's side of a run folder: its state, and stage runs through ``pipeline.run``.

Every change the page asks for is a stage run, as on the command line, in the same run folder,
with the same seed and options, so the cache redoes only what changed. One run at a time per
folder: a second one, from another tab, is answered :class:`Busy` at once (and the pipeline's
own lock on the folder refuses a command-line run beside it, and the other way round).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acgmake.errors import UserError
from acgmake.pipeline import (
    MANIFEST,
    Param,
    Reporter,
    RunFolder,
    RunResult,
    Stage,
    atomic_path,
    check_param,
    derived_params,
    plan,
    run,
)
from acgmake.plugins import Plugins, get_plugins

#: What a finished clip needs: the kinds `acgmake song` makes by default.
CLIP_KIND = "clip"
#: The character grid's pictures are enlarged to this many pixels.
PREVIEW_PX = 256
#: The longest text an option may be given on the page (a palette is some 60).
MAX_OPTION_CHARS = 500


class Busy(UserError):
    """Another run is working in this run folder now."""


class Stopped(UserError):
    """The studio is shutting down; the run stops at its next progress report."""


@dataclass
class Job:
    """A run in the background (the clip), as the page sees it: which stages started, how far
    the running ones are, and how it ended."""

    targets: list[str]
    started: float = field(default_factory=time.monotonic)
    stages: list[dict[str, Any]] = field(default_factory=list)
    state: str = "running"  # running, done, failed
    error: str = ""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        seconds = self.seconds if self.state != "running" else time.monotonic() - self.started
        return {
            "targets": self.targets,
            "state": self.state,
            "error": self.error,
            "seconds": round(seconds, 1),
            "stages": [dict(stage) for stage in self.stages],
        }


class JobReporter(Reporter):
    """Records each stage's progress in a :class:`Job` for the page to poll; stops the run
    (raising :class:`Stopped` from the stage's progress report) when ``stop`` is set."""

    def __init__(self, job: Job, lock: threading.Lock, stop: threading.Event) -> None:
        self.job = job
        self.lock = lock
        self.stop = stop

    def _entry(self, stage: Stage) -> dict[str, Any]:
        for entry in self.job.stages:
            if entry["name"] == stage.name:
                return entry
        entry = {"name": stage.name, "state": "waiting", "done": 0.0, "total": None, "note": ""}
        self.job.stages.append(entry)
        return entry

    def stage_started(self, number: int, total: int, stage: Stage) -> None:
        with self.lock:
            self._entry(stage).update(state="running", number=number, of=total)

    def stage_progress(self, stage: Stage, done: float, total: float | None, note: str) -> None:
        if self.stop.is_set():
            raise Stopped("the studio was stopped")
        with self.lock:
            self._entry(stage).update(done=done, total=total, note=note)

    def stage_finished(self, stage: Stage, seconds: float, cached: bool) -> None:
        with self.lock:
            self._entry(stage).update(
                state="cached" if cached else "done", seconds=round(seconds, 2)
            )

    def log(self, stage: Stage, message: str) -> None:
        with self.lock:
            self._entry(stage)["note"] = message


class Studio:
    """One run folder as the page works on it: the seed and options every run uses, and at
    most one run at a time."""

    def __init__(self, folder: Path, plugins: Plugins | None = None, *, jobs: int = 1) -> None:
        self.folder = Path(folder)
        self.plugins = plugins or get_plugins()
        self.registry = self.plugins.registry
        self.run_folder = RunFolder(self.folder, self.registry)
        self.jobs = jobs
        self._busy = threading.Lock()
        self._job_lock = threading.Lock()
        self.stop = threading.Event()
        self.job: Job | None = None
        self._thread: threading.Thread | None = None
        self._generator: Any = None
        manifest = self.run_folder.manifest()
        seed = manifest.get("seed", 0)
        self.seed = seed if isinstance(seed, int) and 0 <= seed < 2**32 else 0
        #: Options by stage, as `acgmake song --truncation ...` would give them. Starts from
        #: what the run folder's last run of each stage used, so a re-run is cached.
        self.options: dict[str, dict[str, Any]] = self._recorded_options(manifest)

    # -- the options ------------------------------------------------------------------------

    def _clip_stages(self) -> list[Stage]:
        return plan(self.registry, [CLIP_KIND], {"lyrics"})

    def _recorded_options(self, manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The options the run folder's last run of each stage used where they are not what
        the stage would use anyway, so that a studio opened on a folder `acgmake song --size
        1080p` made goes on with 1080p and finds its stages cached, and one made from your own
        picture (`--character my_oc.png`) goes on with it. A record that is not a valid option
        now (an older acgmake, a hand-edited manifest, a file no longer there) is left out."""
        stages = self._clip_stages()
        usual = derived_params(stages, {})
        options: dict[str, dict[str, Any]] = {}
        records = manifest.get("stages", {})
        for stage in stages:
            entry = records.get(stage.name) if isinstance(records, dict) else None
            recorded = entry.get("params") if isinstance(entry, dict) else None
            if not isinstance(recorded, dict):
                continue
            for param in stage.params:
                if param.name not in recorded:
                    continue
                value = recorded[param.name]
                default = usual.get(stage.name, {}).get(param.name, param.default)
                if value == default:
                    continue
                try:  # a file named on the command line (--character my_oc.png) is kept
                    value = check_param(stage, param, value)
                except UserError:
                    continue
                options.setdefault(stage.name, {})[param.name] = value
        return options

    def option_list(self) -> list[dict[str, Any]]:
        """Every option of the stages a clip runs, as the page shows it: the stage, the name,
        its ``--option``, help, what kind of value it takes (choice, yes/no, whole number,
        number, text) with its choices or range, the default and the value the next run uses
        (set on the page, or worked out from the other options)."""
        import click

        stages = self._clip_stages()
        current = derived_params(stages, self.options)
        listed = []
        for stage in stages:
            for param in stage.params:
                kind = param.type if param.type is not None else type(param.default)
                entry: dict[str, Any] = {
                    "stage": stage.name,
                    "name": param.name,
                    "option": param.option,
                    "help": param.help,
                    "default": param.default,
                    "value": current.get(stage.name, {}).get(param.name, param.default),
                    "set": param.name in self.options.get(stage.name, {}),
                }
                if isinstance(kind, click.Choice):
                    entry.update(kind="choice", choices=list(kind.choices))
                elif kind is bool or isinstance(kind, click.types.BoolParamType):
                    entry["kind"] = "bool"
                elif isinstance(kind, click.IntRange | click.FloatRange):
                    entry.update(
                        kind="int" if isinstance(kind, click.IntRange) else "float",
                        min=kind.min,
                        max=kind.max,
                    )
                elif kind in (int, float) or isinstance(kind, click.types.IntParamType):
                    entry["kind"] = "int" if kind is int or kind == click.INT else "float"
                else:
                    entry["kind"] = "text"
                listed.append(entry)
        return listed

    def set_options(self, given: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Set options by stage (``{"animate": {"size": "1080p"}}``) for every run from now on,
        each checked as the command line checks it; ``None`` puts one back
        to what the stage would use. Nothing is set unless all are valid. Runs nothing:
        the next run uses them, and redoes the stages they change."""
        stages = {stage.name: stage for stage in self._clip_stages()}
        if not isinstance(given, dict):
            raise UserError('options must be {"stage": {"option": value}}')
        changed = {name: dict(values) for name, values in self.options.items()}
        for stage_name, values in given.items():
            stage = stages.get(stage_name)
            if stage is None:
                raise UserError(f"no stage {stage_name!r} runs for the clip")
            if not isinstance(values, dict):
                raise UserError(f"the options of {stage_name} must be {{option: value}}")
            declared = {param.name: param for param in stage.params}
            for name, value in values.items():
                param = declared.get(name)
                if param is None:
                    known = ", ".join(declared) or "none"
                    raise UserError(
                        f"stage {stage_name!r} has no option {name!r} (it has: {known})"
                    )
                own = changed.setdefault(stage_name, {})
                if value is None:
                    own.pop(name, None)
                else:
                    own[name] = _page_value(stage, param, value)
        with self.working():
            self.options = {name: values for name, values in changed.items() if values}
        return self.options

    # -- the files --------------------------------------------------------------------------

    def file(self, kind: str) -> Path:
        return self.run_folder.file(kind)

    def state(self) -> dict[str, Any]:
        """What the page shows of the run folder: each artifact kind's file (whether it is
        there, its size and modification time), each stage's record in manifest.json, the
        seed and options, and whether a run is going on."""
        manifest = self.run_folder.manifest()
        files = {}
        for kind, artifact in self.registry.artifacts.items():
            path = self.folder / artifact.filename
            if path.is_file():
                stat = path.stat()
                files[kind] = {
                    "file": artifact.filename,
                    "bytes": stat.st_size,
                    "modified": stat.st_mtime,
                }
        stages = {
            name: {
                "seconds": entry.get("seconds"),
                "finished": entry.get("finished"),
                "unavailable": entry.get("unavailable", ""),
                "params": entry.get("params", {}),
            }
            for name, entry in manifest.get("stages", {}).items()
        }
        return {
            "folder": str(self.folder),
            "seed": self.seed,
            "options": self.options,
            "files": files,
            "stages": stages,
            "has_manifest": (self.folder / MANIFEST).is_file(),
            "busy": self._busy.locked(),
            "job": self.job_state(),
        }

    def write(
        self,
        kind: str,
        data: bytes | None,
        *,
        check: Callable[[Path], None] | None = None,
        then: tuple[str, ...] = (),
    ) -> RunResult | None:
        """Replace the run folder's file of ``kind`` with ``data`` (whole, never half; ``None``
        removes it), after ``check(temporary_path)`` accepts it, then make ``then``, all while
        holding the folder: another tab's change comes before or after, never between."""
        self.run_folder.create()
        with self.working():
            path = self.file(kind)
            if data is None:
                path.unlink(missing_ok=True)
            else:
                with atomic_path(path) as temporary:
                    temporary.write_bytes(data)
                    if check is not None:
                        check(temporary)
            return self._run(list(then)) if then else None

    # -- running stages ---------------------------------------------------------------------

    @contextlib.contextmanager
    def working(self) -> Iterator[None]:
        """Hold this folder for one change; :class:`Busy` at once when another holds it."""
        if not self._busy.acquire(blocking=False):
            raise Busy(
                f"another run is working in {self.folder} (another tab?); wait for it to "
                "finish and try again"
            )
        try:
            yield
        finally:
            self._busy.release()

    def params(self) -> dict[str, dict[str, Any]]:
        """The options of every stage a clip would run, with what they work out from each
        other (the character is enlarged to the clip's size), so that a run of a part of the
        chain uses exactly the options the clip will, and the clip finds it cached."""
        return derived_params(self._clip_stages(), self.options)

    def _run(self, targets: list[str], reporter: Reporter | None = None) -> RunResult:
        needs_lyrics = any(
            "lyrics" in stage.reads for stage in plan(self.registry, targets, {"lyrics"})
        )
        inputs = {}
        if needs_lyrics:
            lyrics = self.file("lyrics")
            if not lyrics.is_file():
                raise UserError("the run folder has no lyrics yet; write them and save first")
            inputs["lyrics"] = lyrics
        return run(
            self.registry,
            self.folder,
            targets,
            inputs=inputs,
            params=self.params(),
            seed=self.seed,
            reporter=reporter,
            plugins=self.plugins.versions(),
            jobs=self.jobs,
        )

    def make(self, *targets: str) -> RunResult:
        """Make ``targets`` now (the stages that lead to them, cached where unchanged)."""
        with self.working():
            return self._run(list(targets))

    def choose_character(self, seed: int, truncation: float, edit: str = "") -> RunResult:
        """Use ``seed`` (the run's seed, as `acgmake song --seed`), ``truncation`` and the
        learned ``edit`` (`acgmake song --edit mouth=0.5,eyes=-1`) from now on, and draw that
        character (enlarged to the clip's size)."""
        with self.working():
            self.seed = seed
            options = self.options.setdefault("character", {})
            options["truncation"] = truncation
            if edit:
                options["edit"] = edit
            else:
                options.pop("edit", None)
            return self._run(["character"])

    def start(self, *targets: str) -> Job:
        """Make ``targets`` in a background thread; the page follows :meth:`job_state`."""
        if not self._busy.acquire(blocking=False):
            raise Busy(
                f"another run is working in {self.folder} (another tab?); wait for it to "
                "finish and try again"
            )
        job = Job(list(targets))
        self.job = job
        reporter = JobReporter(job, self._job_lock, self.stop)

        def work() -> None:
            try:
                self._run(list(targets), reporter)
                state, error = "done", ""
            except UserError as failure:
                state, error = "failed", failure.message
            except Exception as failure:  # a bug: say so on the page, not only in the log
                state, error = "failed", f"{type(failure).__name__}: {failure}"
            finally:
                self._busy.release()
            with self._job_lock:
                job.state, job.error = state, error
                job.seconds = time.monotonic() - job.started

        self._thread = threading.Thread(target=work, name="acgmake-studio-run", daemon=True)
        self._thread.start()
        return job

    def job_state(self) -> dict[str, Any] | None:
        with self._job_lock:
            return self.job.as_dict() if self.job else None

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop a background run at its next progress report (what it finished is kept)."""
        self.stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    # -- characters to choose from ----------------------------------------------------------

    def character_preview(self, seed: int, truncation: float) -> bytes:
        """The character ``seed`` draws, as PNG bytes: exactly what `acgmake characters --seed
        N --count 1` draws, enlarged to :data:`PREVIEW_PX` by the upscale stage's network
        (Real-ESRGAN, about 0.06 s), so that a character is chosen by its looks, not from the
        generator's 64 pixels."""
        import io

        from PIL import Image

        from acgmake.image.upscale import upscale
        from acgmake.models.character import one_thread
        from acgmake.stages.character import _generator_and_edits, _styles

        with self._job_lock:
            if self._generator is None:
                self._generator = _generator_and_edits("", "")
            generator, draw = self._generator
        with one_thread():
            picture = draw(_styles(generator, [seed], truncation)[0])
            if max(picture.shape[:2]) < PREVIEW_PX:
                picture = upscale(picture, size_px=PREVIEW_PX)
        buffer = io.BytesIO()
        Image.fromarray(picture).save(buffer, format="PNG")
        return buffer.getvalue()


def _page_value(stage: Stage, param: Param, value: Any) -> Any:
    """``value`` checked as the command line checks it (:func:`check_param`). The page names
    no files: a text option that is a path (``--soundfont``, ``--background``, your own
    ``--character``) is given on the command line, so a page can never make acgmake read a
    file outside the run folder (checked first: no option's own check looks for it)."""
    import click

    kind = param.type if param.type is not None else type(param.default)
    where = f"{param.option} (stage {stage.name})"
    is_bool = kind is bool or isinstance(kind, click.types.BoolParamType)
    if not isinstance(value, str | int | float) or (isinstance(value, bool) and not is_bool):
        raise UserError(f"{where}: give a {'yes or no' if is_bool else 'number or text'}")
    if isinstance(value, str) and len(value) > MAX_OPTION_CHARS:
        raise UserError(f"{where}: at most {MAX_OPTION_CHARS} characters")
    if isinstance(value, str) and not isinstance(kind, click.Choice):
        looks_like_path = any(mark in value for mark in ("/", "\\", "~")) or value.startswith(".")
        if looks_like_path or (value and Path(value).exists()):
            raise UserError(
                f"{where} names a file; options that name files "
                f"are given on the command line (acgmake song ... {param.option} PATH)"
            )
    return check_param(stage, param, value)


def readings(text: str) -> list[dict[str, Any]]:
    """The morae the composer will sing for lyrics ``text``, a record per phrase: the line's
    number and text, its morae in kana, for each mora whether the dictionaries disagreed
    there (a guess), and the guesses' one-line explanations. UserError as compose gives it
    when the lyrics cannot be sung."""
    from acgmake.text.lyrics import lyrics_from_bytes

    phrases = lyrics_from_bytes(text.encode("utf-8"), name="the lyrics")
    result = []
    for phrase in phrases:
        guessed = [False] * len(phrase.morae)
        for guess in phrase.guesses:
            start = phrase.text.find(guess.written)
            if start < 0 or not phrase.spans:
                continue
            stop = start + len(guess.written)
            for index, (first, last) in enumerate(phrase.spans):
                if first < stop and last > start:
                    guessed[index] = True
        result.append(
            {
                "line": phrase.line,
                "text": phrase.text,
                "label": phrase.label,
                "morae": list(phrase.morae),
                "guessed": guessed,
                "guesses": [guess.message(phrase.line) for guess in phrase.guesses],
                "choices": [_furigana_choice(guess) for guess in phrase.guesses],
            }
        )
    return result


def _furigana_choice(guess: Any) -> dict[str, str]:
    """What the page offers for a guess: the words as written (``written``) and the same with
    furigana that set each reading, the one sung now (``keep``: no longer a guess) and the
    other (``other``); "" where the stretch takes no furigana (digits read as a numeral)."""
    import re

    keep = guess.override
    if not keep:
        return {"written": guess.written, "keep": "", "other": "", "sung": guess.sung,
                "other_reading": guess.other}  # fmt: skip
    other = ""
    brackets = re.findall(r"\(([^()]*)\)", keep)
    if len(brackets) == 1 and brackets[0].count(guess.sung) == 1:
        # one run of kanji: its reading with the guessed stretch's part read the other way
        # (夕焼小焼(ゆうやけこやけ) -> 夕焼小焼(ゆうやけしょうやき))
        reading = brackets[0].replace(guess.sung, guess.other)
        other = keep.replace(f"({brackets[0]})", f"({reading})")
    written = re.sub(r"\([^()]*\)", "", keep)
    return {"written": written, "keep": keep, "other": other, "sung": guess.sung,
            "other_reading": guess.other}  # fmt: skip
