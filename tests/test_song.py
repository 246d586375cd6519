"""`acgmake song` end to end on real components: Sinsy, the shipped StyleGAN2, ffmpeg.

These run the installed console script in a subprocess, as a user would, on a short new
lyrics file, with the example plugin `acgmake-upscale` installed (the README's test command
installs it).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from acgmake.video.encode import ffmpeg_exe, read_media_info
from acgmake.video.lipsync import mouth_openness
from acgmake.voice.labels import Timing, read_lab

pytestmark = pytest.mark.slow

LYRICS = "はるの かぜが\nさくらを ゆらす\n"
SIZE, FPS = (320, 180), 24


def acgmake(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "acgmake", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def decode_frame(clip: Path, index: int) -> np.ndarray:
    """Frame ``index`` of ``clip`` as RGB uint8, decoded by ffmpeg."""
    raw = subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-i",
            str(clip),
            "-vf",
            f"select=eq(n\\,{index})",
            "-vframes",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(SIZE[1], SIZE[0], 3).astype(np.int16)


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    """One real `acgmake song` run, shared by the tests that read its results."""
    try:
        importlib.metadata.distribution("acgmake-upscale")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail("the example plugin is not installed: pip install ./plugins/acgmake-upscale")
    folder = tmp_path_factory.mktemp("song")
    (folder / "spring.txt").write_text(LYRICS, encoding="utf-8")
    result = acgmake(
        "song",
        "spring.txt",
        "--size",
        f"{SIZE[0]}x{SIZE[1]}",
        "--fps",
        str(FPS),
        "--seed",
        "3",
        cwd=folder,
    )
    assert result.returncode == 0, result.stderr
    return folder


def test_the_clip_is_h264_and_aac_and_as_long_as_the_singing(song: Path):
    info = read_media_info(song / "spring.mp4")
    assert (info.video_codec, info.pixel_format, info.audio_codec) == ("h264", "yuv420p", "aac")
    assert (info.width, info.height) == SIZE
    timing = Timing.read(song / "spring.acgmake" / "timing.json")
    assert abs(info.duration_s - timing.duration_s) < 0.2
    # Two lines of about six morae each, sung at the default tempo: seconds, not minutes.
    assert 4 < timing.duration_s < 30


def test_the_voice_sings_every_mora_of_the_new_lyrics(song: Path):
    timing = Timing.read(song / "spring.acgmake" / "timing.json")
    # はるのかぜが / さくらをゆらす: six and seven morae, one note each.
    assert [len(line.morae) for line in timing.lines] == [6, 7]
    vowels = [p for p in read_lab(song / "spring.acgmake" / "phonemes.lab") if p.is_vowel]
    assert len(vowels) == 13


def test_the_plugin_stage_ran_between_character_and_colorize(song: Path):
    manifest = json.loads((song / "spring.acgmake" / "manifest.json").read_text())
    assert manifest["order"] == ["compose", "sing", "character", "upscale", "colorize", "animate"]
    assert {"name": "acgmake-upscale", "version": "0.1.0"} in manifest["plugins"]
    assert manifest["stages"]["upscale"]["plugin"] == "acgmake-upscale"
    assert any("nitech_jp_song070_f001" in line for line in manifest["credits"])
    assert any("Character model" in line for line in manifest["credits"])
    assert manifest["seed"] == 3


def test_the_mouth_moves_with_the_sung_vowels(song: Path):
    run = song / "spring.acgmake"
    timing = Timing.read(run / "timing.json")
    frames = round(timing.duration_s * FPS)
    openness = mouth_openness(read_lab(run / "phonemes.lab"), FPS, frames)
    # Frames two beats apart are drawn with the character in the same pose, so any
    # difference between them is the mouth (and the lyric line, which we crop away).
    period = 2 * 60.0 / timing.tempo_bpm * FPS
    assert abs(period - round(period)) < 1e-6, "pick FPS so two beats are whole frames"
    period = round(period)
    closed = [i for i in range(frames - period) if openness[i] == 0]
    pairs = [
        (i, i + k * period)
        for i in closed
        for k in range(1, frames // period)
        if i + k * period < frames and openness[i + k * period] > 0.8
    ]
    still = [
        (i, i + k * period)
        for i in closed
        for k in range(1, frames // period)
        if i + k * period < frames and openness[i + k * period] == 0
    ]
    assert pairs and still
    upper = slice(0, int(SIZE[1] * 0.72))  # above the lyric band

    def changed_pixels(a: int, b: int) -> int:
        difference = np.abs(
            decode_frame(song / "spring.mp4", a)[upper]
            - decode_frame(song / "spring.mp4", b)[upper]
        ).max(axis=2)
        return int((difference > 40).sum())

    open_change = changed_pixels(*pairs[len(pairs) // 2])
    still_change = changed_pixels(*still[len(still) // 2])
    assert open_change > 30, "the open mouth should show in the clip"
    assert open_change < 0.05 * SIZE[0] * SIZE[1], "only the mouth should change"
    assert still_change < open_change / 4


def test_a_second_run_reuses_every_stage(song: Path):
    result = acgmake(
        "song",
        "spring.txt",
        "--size",
        f"{SIZE[0]}x{SIZE[1]}",
        "--fps",
        str(FPS),
        "--seed",
        "3",
        cwd=song,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("cached") == 6


def test_bad_lyrics_give_one_line_and_no_clip(tmp_path: Path):
    cases = {
        "empty.txt": b"",
        "binary.txt": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        "hangul.txt": "안녕하세요\n".encode(),
        "nothing.txt": "!!! ... 🎵\n".encode(),
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        result = acgmake("song", name, cwd=tmp_path)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1, (name, result.stderr)
        assert lines[-1].startswith("Error: ") and "Traceback" not in result.stderr, name
        assert not (tmp_path / name).with_suffix(".mp4").exists()


def test_ctrl_c_during_the_render_leaves_no_clip_and_the_next_run_resumes(tmp_path: Path):
    (tmp_path / "long.txt").write_text(LYRICS * 3, encoding="utf-8")
    env = dict(os.environ, ACGMAKE_PLUGINS="")
    command = [sys.executable, "-m", "acgmake", "song", "long.txt", "--size", "640x360"]
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    run = tmp_path / "long.acgmake"
    deadline = time.monotonic() + 300
    while not (run / ".clip.partial.mp4").exists():
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1].startswith("Error: interrupted")
    assert not (tmp_path / "long.mp4").exists()
    assert not (run / "clip.mp4").exists()
    assert not list(run.glob(".*partial*"))
    leftover = subprocess.run(["pgrep", "-f", str(run)], capture_output=True, text=True)
    assert leftover.stdout == "", "ffmpeg was left running"

    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("cached") == 4  # compose, sing, character, colorize
    assert (tmp_path / "long.mp4").exists()
