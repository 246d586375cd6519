"""The child process that runs Sinsy for :mod:`acgmake.voice.sinsy` (not a public API).

``python -m acgmake.voice.sinsy_worker SCORE VOICE DICTIONARY OUT [--labels-only]
[--alpha A] [--volume DB] [--parent PID] [--memory BYTES] [--cpu-seconds S]`` writes
``OUT/labels.lab`` (Sinsy's monophone labels with times) and, unless ``--labels-only``,
``OUT/samples.npy`` (float32 in [-1, 1]) and ``OUT/info.json`` (the sample rate, and how many
samples clipped). The exit code says what failed (see the ``EXIT_*`` constants); Sinsy's own
messages go to stderr.

The worker bounds itself, whatever becomes of its parent: it dies with the parent
(``--parent``), refuses to synthesize a song longer than acgmake sings, and runs under an
address-space limit that grows with the song's length up to ``--memory`` bytes and a CPU-time
limit of ``--cpu-seconds``. Just before synthesizing it writes ``OUT/memory_limit`` (the
limit in bytes), so the parent can tell a crash in synthesis from one in loading.

A song over 90 s is sung in sections of about a minute (:func:`sections`): pysinsy copies the
singing into a Python list of floats before it makes an array, 1 GB for a five-minute song
whole, 270 MB in sections. The labels are always the whole score's, and the sections' singing
lasts exactly as long. Sinsy sings a note a little differently in a shorter score (it sees
the whole score it is given): measured on a five-minute song, its own intonation is the same
(26 % of voiced frames within 50 cents of the note, against 27 % whole; after the sing
stage's correction 83.1 % against 82.8 %), and the level of a second of singing differs by
0.9 dB (median).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
from pathlib import Path

import numpy as np

from acgmake.voice.sinsy import (
    EXIT_DICTIONARY,
    EXIT_MEMORY,
    EXIT_ORPHANED,
    EXIT_SCORE,
    EXIT_SYNTHESIS,
    EXIT_TOO_LONG,
    EXIT_VOICE,
    MAX_SINGING_S,
    MAX_WORKER_MEMORY_BYTES,
    labels_length_s,
    load_sinsy_module,
    memory_budget,
)

#: Sinsy returns samples at 16-bit scale.
_INT16_SCALE = 32768.0
#: Linux's prctl option: the signal this process gets when the thread that started it ends.
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int | None) -> None:
    """End this process when its parent ends, even by SIGKILL.

    On Linux the kernel sends SIGKILL when the parent goes (``prctl(PR_SET_PDEATHSIG)``); a
    parent that died before that call is caught by its pid no longer being this process's
    parent's. Elsewhere only that check is made, and the parent's own time limit holds.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # a libc without prctl
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(EXIT_ORPHANED)


def limit_memory(limit_bytes: int) -> int:
    """Lower this process's address-space limit to ``limit_bytes`` (never raise it); returns
    the limit in force afterwards, or 0 where none can be set (Windows)."""
    try:
        import resource
    except ImportError:
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    ceiling = min(x for x in (limit_bytes, soft, hard) if x != resource.RLIM_INFINITY)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (ceiling, hard))
    except (ValueError, OSError):
        return 0 if soft == resource.RLIM_INFINITY else soft
    return ceiling


def limit_cpu(seconds: float) -> None:
    """SIGXCPU after ``seconds`` of CPU time: a stop even if the parent's timer never fires."""
    try:
        import resource
    except ImportError:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    wanted = max(1, int(seconds))
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft == resource.RLIM_INFINITY or wanted < soft:
        try:
            resource.setrlimit(resource.RLIMIT_CPU, (wanted, hard))
        except (ValueError, OSError):
            pass


#: Samples scaled at a time when saving (Sinsy's song is scaled without a whole copy).
_SAVE_BLOCK = 1 << 16
#: A song longer than this is sung in sections of about this long, cut where a rest meets a
#: rest: pysinsy hands the singing to Python as a list of floats (about 40 bytes a sample,
#: 1 GB for five minutes), so memory then follows the section, not the song.
SECTION_S = 60.0


def sections(xml: bytes) -> list[bytes]:
    """The score ``xml`` (one part, as :func:`acgmake.music.musicxml.sinsy_xml` writes it) cut
    into scores of about :data:`SECTION_S` each, at measures where a rest ends one and begins
    the next (the singing stops there); each later section begins with the first measure's
    attributes and tempo. Sinsy's labels of the sections, joined, are those of the whole song,
    and each section's singing lasts exactly its measures.

    The whole score (one section) when it is short, when no such cut exists, or when it has
    what a section's start could not carry: a later change of attributes, tempo or dynamics,
    or more than one voice in a measure."""
    import copy
    import xml.etree.ElementTree as ElementTree

    root = ElementTree.fromstring(xml)
    parts = root.findall("part")
    if len(parts) != 1:
        return [xml]
    measures = parts[0].findall("measure")
    if not measures:
        return [xml]
    first = measures[0]
    for measure in measures[1:]:
        if any(
            measure.find(path) is not None for path in ("attributes", ".//sound", ".//dynamics")
        ):
            return [xml]
    if any(
        measure.find(path) is not None for measure in measures for path in ("backup", "forward")
    ):
        return [xml]
    sound = first.find(".//sound[@tempo]")
    try:
        divisions = float(first.findtext("attributes/divisions") or "")
        tempo = float(sound.get("tempo", "")) if sound is not None else 0.0
        lengths = [
            sum(float(note.findtext("duration") or 0) for note in measure.findall("note"))
            / divisions
            * 60.0
            / tempo
            for measure in measures
        ]
    except (ValueError, ZeroDivisionError):
        return [xml]
    if any(measure.find(".//chord") is not None for measure in measures):
        return [xml]
    total = sum(lengths)
    if not total > 1.5 * SECTION_S:
        return [xml]

    def rest_at(measure, index: int) -> bool:
        found = measure.findall("note")
        return bool(found) and found[index].find("rest") is not None

    cuts, since, done = [0], 0.0, 0.0
    for index in range(1, len(measures)):
        since += lengths[index - 1]
        done += lengths[index - 1]
        if (
            since >= SECTION_S
            and total - done >= 0.5 * SECTION_S
            and rest_at(measures[index - 1], -1)
            and rest_at(measures[index], 0)
        ):
            cuts.append(index)
            since = 0.0
    if len(cuts) == 1:
        return [xml]
    carried = [
        child
        for child in first
        if child.tag == "attributes"
        or (child.tag == "direction" and child.find(".//sound") is not None)
    ]
    pieces = []
    for start, stop in zip(cuts, [*cuts[1:], len(measures)], strict=True):
        piece = copy.deepcopy(root)
        part = piece.find("part")
        for measure in list(part):
            part.remove(measure)
        for index in range(start, stop):
            measure = copy.deepcopy(measures[index])
            if index == start and start > 0:
                for position, child in enumerate(carried):
                    measure.insert(position, copy.deepcopy(child))
            part.append(measure)
        pieces.append(ElementTree.tostring(piece, encoding="utf-8", xml_declaration=True))
    return pieces


def _sing(sinsy, score: str, out_folder: Path) -> tuple[int, int]:
    """Sing the score loaded from ``score`` into ``out_folder/samples.npy`` (float32 in
    [-1, 1]), a section at a time (:func:`sections`); returns (sample rate, clipped)."""
    pieces = sections(Path(score).read_bytes())
    if len(pieces) == 1:
        samples, sample_rate = sinsy.synthesize()
        clipped = _save_samples(out_folder / "samples.npy", samples)
        return int(sample_rate), clipped
    raw = out_folder / "samples.f32"
    clipped, count, sample_rate = 0, 0, 0
    with open(raw, "wb") as handle:
        for number, piece in enumerate(pieces):
            section = out_folder / f"section{number}.musicxml"
            section.write_bytes(piece)
            sinsy.clearScore()
            if not sinsy.loadScoreFromMusicXML(str(section)):
                raise RuntimeError(f"Sinsy could not read section {number + 1} of the score")
            samples, sample_rate = sinsy.synthesize()
            section.unlink()
            for start in range(0, len(samples), _SAVE_BLOCK):
                block = np.asarray(samples[start : start + _SAVE_BLOCK], np.float64)
                block /= _INT16_SCALE
                clipped += int(np.count_nonzero(np.abs(block) > 1.0))
                handle.write(np.clip(block, -1.0, 1.0).astype("<f4").tobytes())
            count += len(samples)
            del samples
    with open(out_folder / "samples.npy", "wb") as handle, open(raw, "rb") as source:
        header = {"descr": "<f4", "fortran_order": False, "shape": (count,)}
        np.lib.format.write_array_header_1_0(handle, header)
        for block in iter(lambda: source.read(1 << 20), b""):
            handle.write(block)
    raw.unlink()
    return int(sample_rate), clipped


def _save_samples(path: Path, samples) -> int:
    """Save Sinsy's samples (16-bit scale) as float32 in [-1, 1] to ``path`` (.npy), a block
    at a time so that memory holds Sinsy's array and the float32 result and nothing more;
    returns how many samples were clipped."""
    samples = np.asarray(samples)
    out = np.empty(len(samples), np.float32)
    clipped = 0
    for start in range(0, len(samples), _SAVE_BLOCK):
        block = np.asarray(samples[start : start + _SAVE_BLOCK], dtype=np.float64) / _INT16_SCALE
        clipped += int(np.count_nonzero(np.abs(block) > 1.0))
        out[start : start + len(block)] = np.clip(block, -1.0, 1.0)
    np.save(path, out)
    return clipped


def _option(flags: list[str], name: str) -> str | None:
    return flags[flags.index(name) + 1] if name in flags else None


def main(argv: list[str]) -> int:
    score, voice, dictionary, out = argv[:4]
    flags = argv[4:]
    parent = _option(flags, "--parent")
    die_with_parent(int(parent) if parent else None)
    memory = int(_option(flags, "--memory") or MAX_WORKER_MEMORY_BYTES)
    limit = limit_memory(memory)
    cpu_seconds = _option(flags, "--cpu-seconds")
    if cpu_seconds:
        limit_cpu(float(cpu_seconds))
    labels_only = "--labels-only" in flags
    alpha = float(flags[flags.index("--alpha") + 1]) if "--alpha" in flags else None
    volume_db = float(flags[flags.index("--volume") + 1]) if "--volume" in flags else None
    out_folder = Path(out)
    try:
        sinsy = load_sinsy_module().Sinsy()
        if not sinsy.setLanguages("j", dictionary):
            return EXIT_DICTIONARY
        if not sinsy.loadVoices(voice):
            return EXIT_VOICE
        # Both after loadVoices, which sets the voice's own alpha and volume.
        if alpha is not None and not sinsy.setAlpha(alpha):
            print(f"[ERR] Sinsy refused alpha {alpha}", file=sys.stderr)
            return EXIT_VOICE
        if volume_db is not None and not sinsy.setVolume(volume_db):
            print(f"[ERR] Sinsy refused volume {volume_db} dB", file=sys.stderr)
            return EXIT_VOICE
        if not sinsy.loadScoreFromMusicXML(score):
            return EXIT_SCORE
        labels = sinsy.createLabelData(True, 1, 1).getData()  # monophone, overwrite, with times
        (out_folder / "labels.lab").write_text("\n".join(labels) + "\n", encoding="ascii")
        if labels_only:
            return 0
        # hts_engine allocates every frame of the song before it sings one: check the length
        # first, then allow memory in proportion to it.
        singing_s = labels_length_s(labels)
        if not singing_s <= MAX_SINGING_S:
            print(f"[ERR] the song lasts {singing_s:.0f} s", file=sys.stderr)
            return EXIT_TOO_LONG
        limit = limit_memory(memory_budget(singing_s, memory))
        (out_folder / "memory_limit").write_text(str(limit), encoding="ascii")
        try:
            sample_rate, clipped = _sing(sinsy, score, out_folder)
        except RuntimeError as error:
            print(f"[ERR] {error}", file=sys.stderr)
            return EXIT_SYNTHESIS
    except MemoryError:
        print(f"[ERR] out of memory (limit {limit} bytes)", file=sys.stderr)
        return EXIT_MEMORY
    info = {"sample_rate": int(sample_rate), "clipped": clipped}
    (out_folder / "info.json").write_text(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
