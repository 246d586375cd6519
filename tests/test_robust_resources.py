"""Issue 14, classes 1, 3 and 6: small crafted files that would take gigabytes or hours, a song
cut short, and a Sinsy worker that outlives acgmake.

Every case runs acgmake (or the Sinsy worker) in a subprocess under a memory and a time limit,
so a regression fails the test instead of taking the machine down, and checks how long the
refusal took as well as what it said.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from PIL import Image

from acgmake.errors import UserError
from acgmake.music.melody import compose_melody
from acgmake.music.musicxml import sinsy_xml, write_musicxml
from acgmake.text.kana import parse_lyrics
from acgmake.voice import sinsy
from handmade_inputs import write_colored, write_song
from robust_support import acgmake_limited, assert_clear_failure

#: A refusal that reads only a header or a config comes well within this (torch takes ~2 s).
QUICK_S = 20.0
TWO_LINES = "かえるの うたが\nきこえて くるよ\n"


def timed(run, *args, **options):
    """``run(*args, **options)`` and the seconds it took."""
    start = time.monotonic()
    result = run(*args, **options)
    return result, time.monotonic() - start


def write_score(path: Path, lyrics: str = TWO_LINES, **options) -> Path:
    write_musicxml(compose_melody(parse_lyrics(lyrics), seed=1, **options), path)
    return path


# ---------------------------------------------------------------------------------------------
# 1. Generator files whose config or tensor shapes declare a huge network


def _safetensors(path: Path, config: dict) -> Path:
    from safetensors.torch import save_file

    metadata = {
        "format": "acgmake-stylegan2-generator",
        "format_version": "1",
        "config": json.dumps(config),
    }
    save_file({"w_avg": torch.zeros(4)}, str(path), metadata=metadata)
    return path


def _channels(size: int, count: int) -> dict[str, int]:
    return {str(2**i): count for i in range(2, size.bit_length())}


HUGE_CONFIGS = {
    "style_dim 60000": {"size": 32, "style_dim": 60000, "n_mlp": 8, "channels": _channels(32, 8)},
    "size 2**30": {"size": 2**30, "style_dim": 16, "n_mlp": 2, "channels": _channels(2**30, 8)},
    "a million mapping layers": {
        "size": 8,
        "style_dim": 16,
        "n_mlp": 1_000_000,
        "channels": _channels(8, 8),
    },
    "each size allowed, 3 billion numbers in all": {
        "size": 4096,
        "style_dim": 512,
        "n_mlp": 8,
        "channels": _channels(4096, 4096),
    },
}


@pytest.mark.robust(1)
@pytest.mark.parametrize("case", list(HUGE_CONFIGS))
def test_a_safetensors_config_declaring_a_huge_generator_is_refused_at_once(tmp_path, case):
    path = _safetensors(tmp_path / "huge.safetensors", HUGE_CONFIGS[case])
    assert path.stat().st_size < 1000
    result, seconds = timed(
        acgmake_limited, "character", "--ckpt", str(path), "--workdir", "run", cwd=tmp_path
    )
    assert_clear_failure(result, "huge.safetensors", "too large", "acgmake builds")
    assert seconds < QUICK_S


def _pt_style_60000(path: Path) -> None:
    # Stride 0: 60000 x 60000 numbers (14 GB as float32) stored as one.
    state = {
        "style.1.weight": torch.zeros(1).expand(60000, 60000),
        "input.input": torch.zeros(1).expand(1, 8, 4, 4),
        "conv1.conv.weight": torch.zeros(1).expand(1, 8, 8, 3, 3),
    }
    torch.save({"g_ema": state}, path)


def _pt_size_2_30(path: Path) -> None:
    # 56 synthesis convolutions say 2**30 pixels (noise buffers of 4 * 10**18 numbers).
    one = torch.zeros(1)
    state = {
        "style.1.weight": one.expand(16, 16),
        "input.input": one.expand(1, 8, 4, 4),
        "conv1.conv.weight": one.expand(1, 8, 8, 3, 3),
    }
    for index in range(56):
        state[f"convs.{index}.conv.weight"] = one.expand(1, 8, 8, 3, 3)
    torch.save({"g_ema": state}, path)


def _pt_huge_noise(path: Path) -> None:
    # A real small generator, but one noise buffer of 10**10 numbers (40 GB once copied).
    from acgmake.models.stylegan2 import Generator

    generator = Generator(16, style_dim=16, n_mlp=2, channels={4: 8, 8: 8, 16: 8})
    state = {k: v for k, v in generator.state_dict().items() if k != "w_avg"}
    state["noises.noise_0"] = torch.zeros(1).expand(1, 1, 100_000, 100_000)
    torch.save({"g_ema": state, "latent_avg": torch.zeros(16)}, path)


def _pt_deflated(path: Path) -> None:
    # torch.load reads deflated zip parts too, and allocates what their headers declare:
    # 64 MB of weights from a file of about 64 KB (1,000 times that stays under 64 MB).
    import zipfile

    plain = path.with_name("plain.pt")
    torch.save({"g_ema": {"style.1.weight": torch.zeros(4096, 4096)}}, plain)
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for part in source.infolist():
            out.writestr(part.filename, source.read(part.filename), compresslevel=9)
    plain.unlink()


@pytest.mark.robust(1)
@pytest.mark.parametrize(
    ("make", "words"),
    [
        (_pt_style_60000, ("60000", "2048")),
        (_pt_size_2_30, ("size", "4096")),
        (_pt_huge_noise, ("noises.noise_0",)),
        (_pt_deflated, ("unpacks to 64 MB", "torch.save")),
    ],
    ids=["style_dim 60000", "size 2**30", "a 40 GB noise buffer", "a deflated zip"],
)
def test_a_pt_of_stride_zero_tensors_declaring_a_huge_network_is_refused(tmp_path, make, words):
    path = tmp_path / "huge.pt"
    make(path)
    assert path.stat().st_size < 100_000
    result, seconds = timed(
        acgmake_limited, "character", "--ckpt", str(path), "--workdir", "run", cwd=tmp_path
    )
    assert_clear_failure(result, "huge.pt", *words)
    assert seconds < QUICK_S


# ---------------------------------------------------------------------------------------------
# 1. The Sinsy worker's own limits: the song's length, its memory, its time


def _raw_score(tmp_path: Path, tempo: str) -> Path:
    """A score as Sinsy gets it, at ``tempo`` bpm: past the score reader's checks (which
    refuse such tempos), as a score that slipped past them would be."""
    xml = sinsy_xml(write_score(tmp_path / "two.musicxml")).decode("utf-8")
    assert xml.count("<per-minute>120</per-minute>") == 1 and xml.count('tempo="120"') == 1
    xml = xml.replace("<per-minute>120<", f"<per-minute>{tempo}<")
    path = tmp_path / "raw.musicxml"
    path.write_text(xml.replace('tempo="120"', f'tempo="{tempo}"'), encoding="utf-8")
    return path


@pytest.mark.robust(1)
def test_the_worker_refuses_to_synthesize_a_song_of_two_weeks(tmp_path):
    # At 0.001 bpm hts_engine asks for 240 million frames: it grew by 350 MB/s.
    score = _raw_score(tmp_path, "0.001")
    files = sinsy.sinsy_files()
    out = tmp_path / "out"
    out.mkdir()
    limit = 2 * 1024**3
    command = [sys.executable, "-m", "acgmake.voice.sinsy_worker", str(score)]
    command += [str(files.voice), str(files.dictionary), str(out)]
    finished, seconds = timed(
        subprocess.run,
        command,
        capture_output=True,
        timeout=60,
        env={**os.environ, "MALLOC_ARENA_MAX": "1"},
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)),
    )
    assert finished.returncode == sinsy.EXIT_TOO_LONG, finished.stderr[-500:]
    assert b"the song lasts 1200000 s" in finished.stderr
    assert not (out / "samples.npy").exists()
    assert seconds < QUICK_S


@pytest.mark.robust(1)
def test_sing_says_in_one_line_that_the_song_is_too_long(tmp_path, monkeypatch):
    score = _raw_score(tmp_path, "0.001")
    monkeypatch.setattr("acgmake.music.musicxml.sinsy_xml", lambda path: Path(path).read_bytes())
    start = time.monotonic()
    with pytest.raises(UserError) as caught:
        sinsy.sing(score, timeout_s=30)
    message = caught.value.message
    assert "\n" not in message
    assert "longer than the 20 minutes" in message and "shorter scores" in message
    assert time.monotonic() - start < QUICK_S


@pytest.mark.robust(1)
def test_the_worker_dies_cleanly_at_its_memory_limit(tmp_path, monkeypatch):
    # A 136-second song takes about 600 MB. Allowed 256 MB (Python and the voice take 175),
    # synthesis soon fails: one line that says memory, within seconds, not a hang.
    score = write_score(tmp_path / "long.musicxml", TWO_LINES * 4, tempo_bpm=30)
    monkeypatch.setattr(sinsy, "MAX_WORKER_MEMORY_BYTES", 256 * 1024**2)
    start = time.monotonic()
    with pytest.raises(UserError) as caught:
        sinsy.sing(score, timeout_s=60)
    message = caught.value.message
    assert "\n" not in message
    assert "of memory it may use" in message and "0.25 GB" in message, message
    assert time.monotonic() - start < QUICK_S


@pytest.mark.robust(1)
def test_the_workers_time_limit_is_capped_whatever_the_caller_asks(tmp_path, monkeypatch):
    # The sing stage computes the limit from the score: at 0.001 bpm it came out in days.
    score = write_score(tmp_path / "two.musicxml")
    asked = {}

    def hung(command, **options):
        asked.update(options, command=command)
        raise subprocess.TimeoutExpired(command, options["timeout"])

    monkeypatch.setattr(sinsy.subprocess, "run", hung)
    with pytest.raises(UserError, match=r"within 600 s"):
        sinsy.sing(score, timeout_s=3 * 86400.0)
    assert asked["timeout"] == sinsy.MAX_TIMEOUT_S == 600
    command = asked["command"]
    assert int(command[command.index("--cpu-seconds") + 1]) <= 700
    assert int(command[command.index("--memory") + 1]) <= 6 * 1024**3
    assert asked["env"]["MALLOC_ARENA_MAX"] == "1"


# ---------------------------------------------------------------------------------------------
# 1 and 3. animate: every duration bounded by the song's real length


@pytest.fixture
def clip_inputs(tmp_path):
    """colored.png, face.json and a 2-second song with its phonemes and timing."""
    return {**write_colored(tmp_path / "in"), **write_song(tmp_path / "in", duration_s=2.0)}


def _animate(tmp_path: Path, inputs: dict[str, Path]):
    options = []
    for kind in ("face", "song", "phonemes", "timing"):
        options += [f"--{kind}", str(inputs[kind])]
    return timed(
        acgmake_limited,
        "animate",
        str(inputs["colored"]),
        *options,
        "--size",
        "320x180",
        "--fps",
        "12",
        "--workdir",
        "run",
        cwd=tmp_path,
        timeout_s=90,
    )


def _sung_until(timing: Path, end_s: float) -> None:
    raw = json.loads(timing.read_text(encoding="utf-8"))
    raw["lines"][-1]["end_s"] = end_s
    raw["lines"][-1]["morae"][-1]["end_s"] = end_s
    timing.write_text(json.dumps(raw), encoding="utf-8")


@pytest.mark.robust(1)
@pytest.mark.parametrize("end_s", [3000.0, 1e7])
def test_a_timing_that_runs_far_past_a_2_second_song_is_refused(tmp_path, clip_inputs, end_s):
    # Timing to 1e7 s made the clip 240 million frames (250 MB/s, SIGTERM unheeded); to
    # 3000 s (within what timing.json may hold) it would render 36,000 frames of silence.
    _sung_until(clip_inputs["timing"], end_s)
    result, seconds = _animate(tmp_path, clip_inputs)
    assert_clear_failure(result, "timing.json")
    assert seconds < QUICK_S
    assert not (tmp_path / "run" / "clip.mp4").exists()


@pytest.mark.robust(1)
def test_a_song_whose_header_says_1_hz_is_refused(tmp_path, clip_inputs):
    # 96,000 samples at "1 Hz" last 27 hours: the clip would be as long.
    song = clip_inputs["song"]
    data = bytearray(song.read_bytes())
    fmt = data.find(b"fmt ") + 8  # the chunk's body: format, channels, rate, byte rate, ...
    block_align = struct.unpack_from("<H", data, fmt + 12)[0]
    struct.pack_into("<II", data, fmt + 4, 1, block_align)  # 1 sample a second
    song.write_bytes(bytes(data))
    assert soundfile.info(str(song)).duration > 3600
    result, seconds = _animate(tmp_path, clip_inputs)
    assert_clear_failure(result, "song.wav", "sample rate", "1 Hz")
    assert seconds < QUICK_S


@pytest.mark.robust(3)
def test_a_song_cut_to_a_few_samples_is_refused_not_a_silent_clip(tmp_path, clip_inputs):
    song = clip_inputs["song"]
    samples, rate = soundfile.read(str(song))
    soundfile.write(str(song), samples[:5], rate, subtype="PCM_24")
    result, seconds = _animate(tmp_path, clip_inputs)
    assert_clear_failure(result, "song.wav", "lasts 0.00 s", "timing.json", "until 1.7 s")
    assert seconds < QUICK_S
    assert not (tmp_path / "run" / "clip.mp4").exists()


@pytest.mark.robust(3)
def test_a_song_a_little_shorter_than_its_timing_still_makes_its_clip(tmp_path, clip_inputs):
    # The other side of the line: a bounce that stops right after the last vowel is a song.
    from acgmake.video.clip import check_timing
    from acgmake.voice.labels import Timing

    timing = Timing.read(clip_inputs["timing"])
    check_timing(timing, 1.3, timing_name="timing.json", song_name="song.wav")
    with pytest.raises(UserError, match="lasts 1.10 s"):
        check_timing(timing, 1.1, timing_name="timing.json", song_name="song.wav")


# ---------------------------------------------------------------------------------------------
# 1. Pictures: a few KB of PNG that decode to gigabytes


def _bilevel_png(path: Path, width: int, height: int) -> Path:
    Image.new("1", (width, height), 1).save(path, optimize=True)
    return path


@pytest.mark.robust(1)
@pytest.mark.parametrize(
    ("width", "height", "words"),
    [(9000, 9000, ("9000x9000", "81 megapixels")), (20000, 10000, ("over 179 megapixels",))],
)
def test_colorize_refuses_a_tiny_png_of_too_many_pixels(tmp_path, width, height, words):
    # 9000x9000: a MemoryError after a minute (120 bytes a pixel); 20000x10000: past PIL's own
    # bomb limit, which said nothing of what to do.
    picture = _bilevel_png(tmp_path / "lines.png", width, height)
    assert picture.stat().st_size < 100_000
    result, seconds = timed(
        acgmake_limited, "colorize", str(picture), "--workdir", "run", cwd=tmp_path
    )
    # The message names the user's file, not the run folder's copy the pipeline reads.
    line = assert_clear_failure(result, "lines.png", *words, "at most 25 megapixels", "scale it")
    assert "character.png" not in line
    assert seconds < QUICK_S


@pytest.mark.robust(1)
def test_real_sized_line_art_and_photos_pass_the_pixel_cap(tmp_path):
    from acgmake.image.picture import read_picture

    line_art, _ = read_picture(_bilevel_png(tmp_path / "a.png", 4096, 4096), "picture")
    photo, _ = read_picture(_bilevel_png(tmp_path / "b.png", 6000, 4000), "picture")
    assert line_art.shape == (4096, 4096, 3) and photo.shape == (4000, 6000, 3)
    with pytest.raises(UserError, match="25 megapixels"):
        read_picture(_bilevel_png(tmp_path / "c.png", 5001, 5000), "picture")


# ---------------------------------------------------------------------------------------------
# 6. The Sinsy worker dies with acgmake


def _workers_of(parent: int) -> list[tuple[int, str]]:
    """(pid, start time) of the running Sinsy workers whose parent is ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if b"acgmake.voice.sinsy_worker" in command and int(fields[1]) == parent:
            found.append((int(entry.name), fields[19]))
    return found


def _running(pid: int, started: str) -> bool:
    """Whether process ``pid`` (started at ``started``) still runs (a zombie does not)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[19] == started and fields[0] not in ("Z", "X")


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.mark.robust(6)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_sinsy_worker_dies_when_acgmake_is_killed(tmp_path):
    # Sinsy takes about 7 s for this 136-second song: long enough to be caught singing.
    score = write_score(tmp_path / "long.musicxml", TWO_LINES * 4, tempo_bpm=30)
    command = [sys.executable, "-m", "acgmake", "sing", str(score), "--workdir", "run"]
    # A killed acgmake cannot remove its temporary folder: let it be in this test's folder.
    env = {**os.environ, "ACGMAKE_PLUGINS": "", "TMPDIR": str(tmp_path)}
    parent = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    workers: list[tuple[int, str]] = []
    try:
        deadline = time.monotonic() + 60
        while not workers and parent.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            workers = _workers_of(parent.pid)
        assert workers, "the Sinsy worker never started"
        time.sleep(0.5)  # well into its singing
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        killed = time.monotonic()
        while any(_running(*w) for w in workers) and time.monotonic() - killed < 5:
            time.sleep(0.05)
        assert not any(_running(*w) for w in workers), "the worker outlived acgmake"
        assert time.monotonic() - killed < 3
    finally:
        _kill(parent.pid)
        parent.wait(timeout=10)
        for pid, started in workers:
            if _running(pid, started):
                _kill(pid)


@pytest.mark.robust(6)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_worker_whose_parent_died_before_it_started_does_not_sing(tmp_path):
    # The parent starts the worker and dies at once, before the worker could ask the kernel
    # to follow it: the worker sees its parent changed and leaves without touching Sinsy.
    score = write_score(tmp_path / "two.musicxml")
    files = sinsy.sinsy_files()
    out = tmp_path / "out"
    out.mkdir()
    worker = [sys.executable, "-m", "acgmake.voice.sinsy_worker", str(score)]
    worker += [str(files.voice), str(files.dictionary), str(out)]
    shim = (
        "import os, subprocess, sys\n"
        f"worker = {worker!r} + ['--parent', str(os.getpid())]\n"
        "child = subprocess.Popen(worker, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(child.pid, open(f'/proc/{child.pid}/stat').read().rsplit(')', 1)[1].split()[19])\n"
        "sys.stdout.flush()\n"
        "os._exit(0)\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", shim], capture_output=True, text=True, timeout=30, check=True
    )
    pid, started = shown.stdout.split()
    try:
        gone_by = time.monotonic() + 10
        while _running(int(pid), started) and time.monotonic() < gone_by:
            time.sleep(0.05)
        assert not _running(int(pid), started)
        assert not (out / "labels.lab").exists(), "the orphaned worker went on to sing"
    finally:
        if _running(int(pid), started):
            _kill(int(pid))


def test_a_normal_song_is_sung_within_the_limits(tmp_path):
    # The limits cost a normal song nothing: it is sung as before.
    singing = sinsy.sing(write_score(tmp_path / "two.musicxml"))
    assert singing.duration_s == pytest.approx(10.0, abs=0.1)
    assert np.abs(singing.samples).max() > 0.05


def test_the_tensor_size_check_for_converters_counts_what_a_view_declares(tmp_path):
    # For readers that convert tensors before building the generator (NVlabs pickles): the
    # check sees the declared numbers, not the few bytes a stride-0 view is stored in.
    from acgmake.models.checkpoint import check_tensor_sizes

    check_tensor_sizes(tmp_path / "g.pkl", {"w": torch.zeros(512, 512)}, "use another")
    with pytest.raises(UserError, match="declares 3,600 million numbers"):
        check_tensor_sizes(
            tmp_path / "g.pkl", {"w": torch.zeros(1).expand(60000, 60000)}, "use another"
        )
