"""Sinsy, the HMM singing synthesizer, through pysinsy's compiled module, in a child process.

pysinsy's ``__init__.py`` does ``import pkg_resources`` (gone from setuptools 82 on) only to
find its data folders, so acgmake never runs it: :func:`load_sinsy_module` loads the compiled
``sinsy*.so`` straight from the folder ``importlib.util.find_spec("pysinsy")`` reports, and
:func:`sinsy_files` finds the bundled voice and the Japanese dictionary beside it.

Sinsy is C++: a malformed score or voice can crash or hang it. Every call therefore runs in a
separate Python process (:mod:`acgmake.voice.sinsy_worker`) under a time limit, and a crash,
a hang or a refusal comes back as a one-line :class:`~acgmake.errors.UserError`. The worker's
limits do not depend on the caller: at most :data:`MAX_TIMEOUT_S`, an address space that grows
with the song up to :data:`MAX_WORKER_MEMORY_BYTES`, no song over :data:`MAX_SINGING_S`, and
it dies with the process that started it (SIGKILL, a closed terminal, a CI timeout).
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np

from acgmake.errors import UserError
from acgmake.music import MAX_SONG_S
from acgmake.pipeline import user_path
from acgmake.voice.labels import HTK_UNITS_PER_SECOND, Phoneme

BUNDLED_VOICE = "nitech_jp_song070_f001"
#: The licence of the bundled voice, from ``pysinsy/htsvoice/COPYING``.
VOICE_LICENSE = "CC BY 3.0"
#: The attribution the voice's COPYING asks for: the work's name, its licensor (HTS Working
#: Group, Nagoya Institute of Technology), and the licence terms with a link.
VOICE_CREDIT = (
    'Singing voice: "NIT SONG070 F001" (nitech_jp_song070_f001), Nitech Japanese Speech '
    "Database released by HTS Working Group (http://hts.sp.nitech.ac.jp/), "
    "Copyright (c) 2004-2015 Nagoya Institute of Technology, Department of Computer Science, "
    "licensed under CC BY 3.0 (https://creativecommons.org/licenses/by/3.0/)"
)
SINSY_LICENSE = "BSD-3-Clause"
SINSY_CREDIT = (
    "Singing synthesis: Sinsy (http://sinsy.sourceforge.net/), Copyright (c) 2009-2015 "
    "Nagoya Institute of Technology, Department of Computer Science (BSD-3-Clause)"
)
#: A generous limit: Sinsy sings about 20-25 times faster than real time on one core.
DEFAULT_TIMEOUT_S = 120.0
#: The most time any call gives the worker, whatever the caller asks: ten times what the
#: longest song acgmake sings (20 minutes) takes on one core.
MAX_TIMEOUT_S = 600.0
#: Larger than any HTS voice we know of (the bundled one is 1.6 MB).
MAX_VOICE_BYTES = 512 * 1024 * 1024
#: The longest singing the worker synthesizes: the longest score acgmake reads, plus the rests
#: Sinsy adds around it. hts_engine allocates every 5 ms frame of the song before it sings one
#: (a score at 0.001 bpm asks for 240 million frames), so this is checked first.
MAX_SINGING_S = MAX_SONG_S + 60.0
#: The worker's address space: a base for Python, NumPy and the voice (about 175 MB of it is
#: used), and per second of singing three times the 3.3 MB the bundled voice takes, up to
#: MAX_WORKER_MEMORY_BYTES (a 20-minute song takes about 4 GB).
WORKER_BASE_MEMORY_BYTES = 1024**3
WORKER_MEMORY_PER_SECOND_BYTES = 10 * 1024**2
MAX_WORKER_MEMORY_BYTES = 6 * 1024**3

# Exit codes of the worker process, each a different thing for the user to fix.
EXIT_DICTIONARY, EXIT_VOICE, EXIT_SCORE, EXIT_SYNTHESIS = 5, 2, 3, 4
EXIT_TOO_LONG, EXIT_MEMORY, EXIT_ORPHANED = 6, 7, 8


@dataclass(frozen=True)
class SinsyFiles:
    """Where pysinsy's compiled module and data are, found without importing pysinsy."""

    module: Path  # the compiled sinsy*.so / .pyd
    dictionary: Path  # the _dic folder (japanese.utf_8.table ...)
    voice: Path  # the bundled nitech_jp_song070_f001.htsvoice


@dataclass
class Singing:
    """Sinsy's output for one score."""

    samples: np.ndarray  # float32, mono, in [-1, 1]
    sample_rate: int
    phonemes: list[Phoneme]  # monophone labels in score time (= audio time), see sing()
    messages: list[str] = field(default_factory=list)  # Sinsy's [WARN]/[ERR] lines

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def sinsy_files() -> SinsyFiles:
    """The paths of pysinsy's compiled module, dictionary and bundled voice.

    Raises :class:`UserError` when pysinsy is not installed or is incomplete.
    """
    spec = importlib.util.find_spec("pysinsy")  # finds the package without running __init__
    if spec is None or not spec.submodule_search_locations:
        raise UserError("pysinsy is not installed; install it with: pip install pysinsy==0.0.5")
    folder = Path(list(spec.submodule_search_locations)[0])
    modules = sorted(glob.glob(str(folder / "sinsy*.so")) + glob.glob(str(folder / "sinsy*.pyd")))
    if not modules:
        raise UserError(
            f"pysinsy in {folder} has no compiled sinsy module; reinstall it with: "
            "pip install --force-reinstall --no-binary pysinsy pysinsy==0.0.5"
        )
    return SinsyFiles(
        module=Path(modules[0]),
        dictionary=folder / "_dic",
        voice=folder / "htsvoice" / f"{BUNDLED_VOICE}.htsvoice",
    )


def load_sinsy_module() -> ModuleType:
    """pysinsy's compiled ``sinsy`` module (class ``Sinsy``), loaded without ``pysinsy/__init__``.

    The module name must end in ``.sinsy``: the extension's init function is ``PyInit_sinsy``.
    """
    files = sinsy_files()
    spec = importlib.util.spec_from_file_location("pysinsy.sinsy", files.module)
    if spec is None or spec.loader is None:
        raise UserError(f"cannot load Sinsy from {files.module}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_voice(path: str | Path | None = None) -> Path:
    """The voice file to sing with: ``path``, or the bundled voice when it is None or "".

    Raises :class:`UserError` when the file is missing or is not an HTS voice.
    """
    if path is None or str(path) == "":
        voice = sinsy_files().voice
        if not voice.is_file():
            raise UserError(
                f"the bundled voice {voice} is missing; reinstall pysinsy (pip install "
                "--force-reinstall pysinsy==0.0.5) or give a voice with --voice PATH"
            )
        return voice
    voice = user_path(path)
    if not voice.is_file():
        raise UserError(f"voice file {voice} does not exist; give the path of an .htsvoice file")
    size = voice.stat().st_size
    if size > MAX_VOICE_BYTES:
        raise UserError(f"voice file {voice} is {size >> 20} MB; that is not an HTS voice")
    with open(voice, "rb") as handle:
        head = handle.read(4096)
    if not head.startswith(b"[GLOBAL]") or b"HTS_VOICE_VERSION" not in head:
        raise UserError(
            f"{voice} is not an HTS voice (.htsvoice files start with [GLOBAL] and "
            "HTS_VOICE_VERSION); give a Sinsy/HTS singing voice"
        )
    return voice


@dataclass(frozen=True)
class SingingOptions:
    """How Sinsy sings: what its engine offers a creator."""

    #: Semitones to move every note before Sinsy sees the score (Sinsy has no pitch-shift
    #: call: the score is transposed, so the voice sings the new pitches as written).
    pitch_shift: int = 0
    #: Sinsy's all-pass constant (``setAlpha``), which sets the timbre; None keeps the voice's
    #: own (``OPTION[MCP]:ALPHA`` in its header, 0.55 for the bundled voice).
    alpha: float | None = None
    #: Gain in dB (``setVolume``); Sinsy's output clips above full scale.
    volume_db: float = 0.0


def sing(
    score_path: str | Path,
    *,
    voice_path: str | Path | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    options: SingingOptions = SingingOptions(),
) -> Singing:
    """Sinsy's singing of the MusicXML score at ``score_path`` and its phoneme labels.

    The labels are Sinsy's monophone labels with times (``createLabelData(True, 1, 1)``): each
    note's phonemes share the note's start and end in the score, which is also their time in
    the audio when the score starts with a rest; :func:`acgmake.voice.align.align_phonemes`
    places the consonant/vowel boundary where it is heard. Raises :class:`UserError` when the
    score or voice is refused, Sinsy fails or crashes, or it takes longer than ``timeout_s``.
    """
    return _run_worker(score_path, voice_path, timeout_s, labels_only=False, options=options)


def synthesize(
    score_path: str | Path,
    *,
    voice_path: str | Path | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> tuple[np.ndarray, int]:
    """(samples, sample_rate): the score sung by Sinsy, float32 mono in [-1, 1] (see sing())."""
    singing = sing(score_path, voice_path=voice_path, timeout_s=timeout_s)
    return singing.samples, singing.sample_rate


def phoneme_labels(
    score_path: str | Path,
    voice_path: str | Path | None = None,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[Phoneme]:
    """Sinsy's monophone labels for the score, with times, without synthesizing (see sing())."""
    return _run_worker(score_path, voice_path, timeout_s, labels_only=True).phonemes


def parse_labels(lines: list[str]) -> list[Phoneme]:
    """Phonemes from Sinsy's label strings (``"5000000 7500000 k"``, times in 100 ns)."""
    phonemes = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 3:
            start, end = int(parts[0]), int(parts[1])
            phonemes.append(
                Phoneme(start / HTK_UNITS_PER_SECOND, end / HTK_UNITS_PER_SECOND, parts[2])
            )
    return phonemes


def labels_length_s(lines: list[str]) -> float:
    """How long Sinsy's timed labels (``"5000000 7500000 k"``, 100 ns units) last, in seconds:
    the latest end among them, 0 for none."""
    ends = [int(parts[1]) for parts in map(str.split, lines) if len(parts) >= 3]
    return max(ends, default=0) / HTK_UNITS_PER_SECOND


def memory_budget(singing_s: float, cap_bytes: int = MAX_WORKER_MEMORY_BYTES) -> int:
    """The address space the worker may use to synthesize ``singing_s`` seconds, in bytes."""
    wanted = WORKER_BASE_MEMORY_BYTES + WORKER_MEMORY_PER_SECOND_BYTES * max(singing_s, 0.0)
    return int(min(cap_bytes, wanted))


def voice_alpha(path: str | Path) -> float | None:
    """The all-pass constant an HTS voice was made with (``OPTION[MCP]:ALPHA=``), or None."""
    with open(path, "rb") as handle:
        head = handle.read(8192).decode("ascii", "replace")
    found = re.search(r"OPTION\[MCP\]:ALPHA=([-0-9.]+)", head)
    return float(found.group(1)) if found else None


def transpose_xml(xml: bytes, semitones: int) -> bytes:
    """The MusicXML ``xml`` with every note ``semitones`` higher (lower when negative).

    Pitches are respelled (sharps going up, flats going down) and the key signature moves
    with them; everything else is left as it was.
    """
    from xml.etree.ElementTree import Element, tostring

    from defusedxml.ElementTree import fromstring

    if not semitones:
        return xml
    root = fromstring(xml, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    for fifths in root.iter("fifths"):
        try:
            moved = int(fifths.text or 0) + 7 * semitones
        except ValueError:
            continue  # an unreadable key signature: Sinsy reads the notes' pitches anyway
        fifths.text = str((moved + 6) % 12 - 6)  # the enharmonic key with fewer accidentals
    names = _SHARP_NAMES if semitones > 0 else _FLAT_NAMES
    for pitch in root.iter("pitch"):
        step, alter, octave = pitch.find("step"), pitch.find("alter"), pitch.find("octave")
        if step is None or octave is None or (step.text or "") not in _STEP_PITCH:
            continue
        try:
            bend = round(float(alter.text)) if alter is not None and alter.text else 0
            midi = 12 * (int(octave.text or 4) + 1) + _STEP_PITCH[step.text] + bend + semitones
        except ValueError:
            continue
        name = names[midi % 12]
        step.text, octave.text = name[0], str(midi // 12 - 1)
        change = {"#": 1, "b": -1}.get(name[1:], 0)
        if alter is None and change:
            alter = Element("alter")
            pitch.insert(list(pitch).index(step) + 1, alter)
        if alter is not None:
            if change:
                alter.text = str(change)
            else:
                pitch.remove(alter)
    for note in root.iter("note"):
        mark = note.find("accidental")
        if mark is not None:  # the old spelling's accidentals no longer apply
            note.remove(mark)
    body = tostring(root, encoding="unicode").encode("utf-8")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


_STEP_PITCH = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")


def _run_worker(
    score_path: str | Path,
    voice_path: str | Path | None,
    timeout_s: float,
    labels_only: bool,
    options: SingingOptions = SingingOptions(),
) -> Singing:
    from acgmake.music.musicxml import sinsy_xml

    voice = check_voice(voice_path)
    name = Path(score_path).name
    xml = sinsy_xml(score_path)  # checked, one part, UTF-8: safe for Sinsy's own parser
    xml = transpose_xml(xml, options.pitch_shift)
    files = sinsy_files()
    with _ascii_temporary_folder() as folder:
        # pysinsy passes paths to C++ as ASCII: a score, voice or dictionary under a folder
        # named in Japanese would fail, so everything Sinsy opens is given an ASCII path.
        score_file = folder / "score.musicxml"
        score_file.write_bytes(xml)
        voice_file = _ascii_path(voice, folder / "voice.htsvoice")
        dictionary = _ascii_path(files.dictionary, folder / "dic")
        out = folder / "out"
        out.mkdir()
        command = [
            sys.executable,
            "-m",
            "acgmake.voice.sinsy_worker",
            str(score_file),
            str(voice_file),
            str(dictionary),
            str(out),
        ]
        if labels_only:
            command.append("--labels-only")
        if options.alpha is not None:
            command += ["--alpha", repr(float(options.alpha))]
        if options.volume_db:
            command += ["--volume", repr(float(options.volume_db))]
        # Limits of the worker's own, which hold even if this process is killed: it dies with
        # this process, and its memory and CPU time are capped.
        timeout_s = min(float(timeout_s), MAX_TIMEOUT_S)
        command += [
            "--parent",
            str(os.getpid()),
            "--memory",
            str(MAX_WORKER_MEMORY_BYTES),
            "--cpu-seconds",
            str(round(timeout_s + 30)),
        ]
        # The child imports acgmake from where this one did, installed or not.
        package_root = str(Path(__file__).resolve().parents[2])
        python_path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
        env = {
            **os.environ,
            "PYTHONPATH": python_path,
            "OMP_NUM_THREADS": "1",
            # One malloc arena: at the memory limit an allocation fails at once, instead of
            # glibc trying to map a new arena for every small block.
            "MALLOC_ARENA_MAX": "1",
        }
        # The worker is started from this thread, which waits for it: Linux's parent-death
        # signal follows the thread that started a process, so it must not be a short-lived one.
        try:
            finished = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout_s,
                cwd=folder,
                env=env,
            )
        except subprocess.TimeoutExpired:
            raise UserError(
                f"Sinsy did not finish singing {name} within {timeout_s:g} s and was stopped; "
                "the score may be very long or malformed — try a shorter score"
            ) from None
        messages = _messages(finished.stderr)
        _check_exit(finished, name, voice, messages, out / "memory_limit")
        phonemes = parse_labels((out / "labels.lab").read_text("ascii").splitlines())
        if labels_only:
            return Singing(np.zeros(0, np.float32), 0, phonemes, messages)
        info = json.loads((out / "info.json").read_text("utf-8"))
        samples = np.load(out / "samples.npy")
    if samples.size == 0:
        raise UserError(f"Sinsy sang nothing for {name}; check that its notes have kana lyrics")
    if info.get("clipped"):
        messages.append(
            f"[WARN] {info['clipped']} samples were louder than full scale and clipped; "
            "lower the volume"
        )
    return Singing(samples, int(info["sample_rate"]), phonemes, messages)


def _check_exit(
    finished: subprocess.CompletedProcess,
    name: str,
    voice: Path,
    messages: list[str],
    memory_limit: Path,
) -> None:
    code = finished.returncode
    if code == 0:
        return
    said = "; ".join(m for m in messages if not m.startswith("[WARN]"))[:300] or "no message"
    if code == EXIT_TOO_LONG:
        raise UserError(
            f"Sinsy would sing {name} for longer than the {MAX_SONG_S / 60:.0f} minutes "
            f"acgmake sings ({said}); split the song into shorter scores"
        )
    if code == -getattr(signal, "SIGXCPU", 0):
        raise UserError(
            f"Sinsy used up its CPU time singing {name} and was stopped; the score may be very "
            "long or malformed — try a shorter score"
        )
    out_of_memory = (
        code == EXIT_MEMORY
        # Sinsy catches a C++ std::bad_alloc, says so, and fails the synthesis.
        or (code == EXIT_SYNTHESIS and "bad_alloc" in said)
        # hts_engine does not check malloc: past the worker's address-space limit it writes
        # through NULL. The file says the worker got as far as synthesis.
        or (code in _OUT_OF_MEMORY_CODES and memory_limit.is_file())
    )
    if out_of_memory:
        try:
            limit = f"{int(memory_limit.read_text('ascii')) / 1024**3:.2g} GB"
        except (OSError, ValueError):
            limit = f"{MAX_WORKER_MEMORY_BYTES / 1024**3:.2g} GB"
        how = f"crashed ({_signal_name(code)}), most likely out" if code < 0 else "ran out"
        raise UserError(
            f"Sinsy {how} of the {limit} of memory it may use while synthesizing {name} "
            f"(Sinsy said: {said}); try a shorter score, or sing it in parts"
        )
    if code < 0:
        what = _signal_name(code)
        raise UserError(
            f"Sinsy crashed ({what}) while singing {name} (Sinsy said: {said}); "
            "check the score in a notation program, or try another voice"
        )
    if code == EXIT_VOICE:
        raise UserError(f"Sinsy could not load the voice {voice} ({said}); give a valid .htsvoice")
    if code == EXIT_SCORE:
        raise UserError(
            f"Sinsy refused the score {name} ({said}); export it again as MusicXML "
            "with kana lyrics on the notes"
        )
    if code == EXIT_SYNTHESIS:
        raise UserError(
            f"Sinsy could not sing {name} ({said}); check that the notes have kana lyrics "
            "and the voice matches Sinsy's Japanese labels"
        )
    if code == EXIT_DICTIONARY:
        raise UserError(
            f"Sinsy could not read its Japanese dictionary ({said}); reinstall pysinsy==0.0.5"
        )
    detail = finished.stderr.decode("utf-8", "replace").strip()[-2000:]
    raise RuntimeError(f"the Sinsy worker failed with exit code {code}:\n{detail}")


#: Return codes of a worker that a refused allocation ends: a NULL written to (SIGSEGV, SIGBUS),
#: an uncaught std::bad_alloc (SIGABRT), the kernel's OOM killer (SIGKILL).
_OUT_OF_MEMORY_CODES = frozenset(
    -getattr(signal, name)
    for name in ("SIGSEGV", "SIGBUS", "SIGABRT", "SIGKILL")
    if hasattr(signal, name)
)


def _signal_name(code: int) -> str:
    """The name of the signal that ended a process with return code ``code`` (negative)."""
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _messages(stderr: bytes) -> list[str]:
    """Sinsy's ([WARN], [ERR]) and hts_engine's (Error:, Warning:) messages, in order."""
    lines = (line.strip() for line in stderr.decode("utf-8", "replace").splitlines())
    return [line for line in lines if line.startswith(("[WARN]", "[ERR]", "Error", "Warning"))]


class _ascii_temporary_folder:
    """A temporary folder whose path is ASCII, removed afterwards."""

    def __enter__(self) -> Path:
        path = tempfile.mkdtemp(prefix="acgmake-sinsy-")
        if not path.isascii():
            shutil.rmtree(path, ignore_errors=True)
            for base in ("/tmp", "/var/tmp", os.environ.get("SystemRoot", "") + "\\Temp"):
                if base.isascii() and os.path.isdir(base):
                    path = tempfile.mkdtemp(prefix="acgmake-sinsy-", dir=base)
                    break
            else:
                raise UserError(
                    "Sinsy needs a temporary folder whose path is ASCII; set TMPDIR to one"
                )
        self.path = Path(path)
        return self.path

    def __exit__(self, *exc_info: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _ascii_path(path: Path, fallback: Path) -> Path:
    """``path`` if Sinsy can open it by name, else a copy (or link) at ``fallback``."""
    if str(path.resolve()).isascii():
        return path.resolve()
    if path.is_dir():
        shutil.copytree(path, fallback)
    else:
        try:
            os.symlink(path.resolve(), fallback)
        except OSError:
            shutil.copyfile(path, fallback)
    return fallback
