"""`acgmake song` end to end on real components: Sinsy, the shipped StyleGAN2, ffmpeg.

These run the installed console script in a subprocess, as a user would, on a short new
lyrics file, with the example plugin `acgmake-sticker` installed (the README's test command
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

import cv2
import numpy as np
import pytest
import soundfile
from PIL import Image

from acgmake.testing import run_command
from acgmake.video.encode import ffmpeg_exe, read_media_info
from acgmake.voice.labels import Timing, read_lab

pytestmark = pytest.mark.slow

LYRICS = "はるの かぜが\nさくらを ゆらす\n"
SIZE, FPS = (320, 180), 24


def acgmake(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_command(*args, cwd=cwd)


def stage_reports(stderr: str) -> dict[str, str]:
    """Each stage's progress line, '[3/9] sing cached', as {'sing': 'cached'}, in run order."""
    reports = {}
    for line in stderr.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].startswith("[") and parts[0].endswith("]"):
            reports[parts[1]] = parts[2]
    return reports


def decode_frame(clip: Path, index: int, size: tuple[int, int] = SIZE) -> np.ndarray:
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
    return np.frombuffer(raw, np.uint8).reshape(size[1], size[0], 3).astype(np.int16)


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    """One real `acgmake song` run, shared by the tests that read its results."""
    try:
        importlib.metadata.distribution("acgmake-sticker")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail("the example plugin is not installed: pip install ./plugins/acgmake-sticker")
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
    # The song (the band's outro rings on after the singing), then the credits for 4 s after
    # the last sung line (in silence if need be).
    song_s = soundfile.info(str(song / "spring.acgmake" / "song.wav")).duration
    assert song_s > timing.lines[-1].end_s + 2.0  # the outro and the final chord
    assert abs(info.duration_s - max(song_s, timing.lines[-1].end_s + 4.0)) < 0.2
    # Two lines of about six morae each, sung at the default tempo: seconds, not minutes.
    assert 4 < timing.duration_s < 30


def test_the_character_is_enlarged_to_the_size_the_clip_shows_it(song: Path):
    from acgmake.stages.upscale import size_for_clip

    with Image.open(song / "spring.acgmake" / "character.png") as picture:
        assert max(picture.size) == size_for_clip(*SIZE) < 1024
    assert size_for_clip(1280, 720) == 768 and size_for_clip(1080, 1920) == 1024
    assert size_for_clip(3840, 2160) == 1024  # the default's most: the model's detail ends


def test_the_voice_sings_every_mora_of_the_new_lyrics(song: Path):
    timing = Timing.read(song / "spring.acgmake" / "timing.json")
    # はるのかぜが / さくらをゆらす: six and seven morae, one note each.
    assert [len(line.morae) for line in timing.lines] == [6, 7]
    vowels = [p for p in read_lab(song / "spring.acgmake" / "phonemes.lab") if p.is_vowel]
    assert len(vowels) == 13


def test_the_plugin_stage_ran_between_colorize_and_animate(song: Path):
    manifest = json.loads((song / "spring.acgmake" / "manifest.json").read_text())
    order = manifest["order"]
    assert order[0] == "compose"
    assert order.index("character") < order.index("upscale") < order.index("colorize")
    assert order.index("expressions") < order.index("upscale_expressions")
    assert order.index("upscale_expressions") < order.index("colorize_expressions")
    assert order.index("colorize") < order.index("sticker") < order.index("animate")
    assert order.index("sing") < order.index("animate")
    assert {"name": "acgmake-sticker", "version": "0.1.0"} in manifest["plugins"]
    assert manifest["stages"]["sticker"]["plugin"] == "acgmake-sticker"
    assert manifest["stages"]["upscale"]["plugin"] == "acgmake.stages.upscale"
    assert any("Real-ESRGAN" in line for line in manifest["credits"])
    assert any("nitech_jp_song070_f001" in line for line in manifest["credits"])
    assert any("Character model" in line for line in manifest["credits"])
    assert manifest["seed"] == 3


def mouth_changes(clip: Path, run: Path, size: tuple[int, int], fps: int, seed: int):
    """(open, still): how much the mouth differs in the clip between a closed-mouth frame and
    a wide-open one, and between two closed-mouth ones (mean absolute difference, 0..255).

    The renderer is set up from the run folder as the animate stage set it up, so the mouth
    is found wherever the character's bobbing and the camera have put it in each frame.
    """
    import soundfile

    from acgmake.video.clip import clip_renderer

    expressions = run / "colored_expressions.png"
    renderer = clip_renderer(
        colored=run / "colored.png",
        face=run / "face.json",
        timing=run / "timing.json",
        phonemes=run / "phonemes.lab",
        song_s=soundfile.info(str(run / "song.wav")).duration,
        width=size[0],
        height=size[1],
        fps=fps,
        expressions=expressions if expressions.exists() else None,
        seed=seed,
    )
    openness = renderer.mouth @ np.array([0.0, 1.0, 0.4, 0.45, 0.65, 0.8])
    lines = renderer.timing.lines
    singing = (renderer.times > lines[0].start_s) & (renderer.times < lines[-1].end_s)
    closed = np.flatnonzero(singing & (openness == 0))
    wide = np.flatnonzero(singing & (openness > 0.8))
    assert closed.size >= 2 and wide.size, "the song should open and close the mouth"

    def mouth(index: int) -> np.ndarray:
        x0, y0, x1, y1 = renderer.mouth_box(index)
        crop = decode_frame(clip, index, size)[max(y0, 0) : y1, max(x0, 0) : x1]
        return cv2.resize(crop.astype(np.uint8), (48, 48), interpolation=cv2.INTER_AREA)

    def change(a: int, b: int) -> float:
        return float(np.abs(mouth(a).astype(int) - mouth(b).astype(int)).mean())

    middle = len(closed) // 2
    return change(closed[middle], wide[len(wide) // 2]), change(closed[middle], closed[-1])


def test_the_mouth_moves_with_the_sung_vowels(song: Path):
    opened, still = mouth_changes(song / "spring.mp4", song / "spring.acgmake", SIZE, FPS, seed=3)
    assert opened > 20, "the open mouth should show in the clip"
    assert still < opened / 4


@pytest.fixture(scope="module")
def own(song: Path, tmp_path_factory) -> tuple[Path, str]:
    """The same song sung by the example's own character (``--character examples/oc.png``), in
    a copy of the run folder, as a user would re-run it: only the picture's stages run again."""
    import shutil

    folder = tmp_path_factory.mktemp("own")
    shutil.copytree(song / "spring.acgmake", folder / "spring.acgmake")
    shutil.copy(song / "spring.txt", folder)
    shutil.copy(Path(__file__).parents[1] / "examples" / "oc.png", folder)
    result = acgmake(
        "song", "spring.txt", "--size", f"{SIZE[0]}x{SIZE[1]}", "--fps", str(FPS), "--seed", "3",
        "--character", "oc.png", cwd=folder,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return folder, result.stderr


def test_your_own_character_sings_and_only_the_picture_is_made_again(own):
    folder, stderr = own
    reports = stage_reports(stderr)
    assert reports["sing"] == "cached" and reports["mix"] == "cached"
    assert reports["character"] == "done" and reports["animate"] == "done"
    assert "draws its own mouths" in stderr  # no latent: the animation draws the mouths
    run = folder / "spring.acgmake"
    face = json.loads((run / "face.json").read_text())
    assert face["picture"]["file"] == "oc.png" and face["picture"]["background"] == "flood"
    manifest = json.loads((run / "manifest.json").read_text())
    assert any("oc.png" in json.dumps(asset) for asset in manifest["stages"]["character"]["assets"])
    # The clip shows the character in its own colours: the purple of its hair.
    frame = decode_frame(folder / "spring.mp4", 60)
    purple = np.abs(frame - np.array([120, 86, 190])).sum(axis=2) < 60
    assert purple.mean() > 0.03


def test_your_own_character_opens_its_mouth_on_the_sung_vowels(own):
    folder, _ = own
    opened, still = mouth_changes(folder / "spring.mp4", folder / "spring.acgmake", SIZE, FPS, 3)
    assert opened > 20, "the drawn mouth should open on the character's own face"
    assert still < opened / 4


def _sing_with(song: Path, folder: Path, picture: Image.Image, *options: str):
    """``acgmake song`` in a copy of the song's run folder with ``picture`` as the character."""
    import shutil

    shutil.copytree(song / "spring.acgmake", folder / "spring.acgmake")
    shutil.copy(song / "spring.txt", folder)
    picture.save(folder / "me.png")
    return acgmake(
        "song", "spring.txt", "--size", f"{SIZE[0]}x{SIZE[1]}", "--fps", str(FPS), "--seed", "3",
        "--character", "me.png", *options, cwd=folder,
    )  # fmt: skip


def test_animate_with_your_own_character_remakes_only_the_picture(song: Path, tmp_path):
    import shutil

    shutil.copytree(song / "spring.acgmake", tmp_path / "spring.acgmake")
    shutil.copy(Path(__file__).parents[1] / "examples" / "oc.png", tmp_path)
    result = acgmake(
        "animate", "--workdir", "spring.acgmake", "--character", "oc.png", "-o", "own.mp4",
        "--size", f"{SIZE[0]}x{SIZE[1]}", "--fps", str(FPS), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    reports = stage_reports(result.stderr)
    assert "sing" not in reports and reports["character"] == "done"
    assert "colorize_expressions: skipped" in result.stderr  # the generated mouths are not used
    face = json.loads((tmp_path / "spring.acgmake" / "face.json").read_text())
    assert face["picture"]["file"] == "oc.png"
    frame = decode_frame(tmp_path / "own.mp4", 60)
    assert (np.abs(frame - np.array([120, 86, 190])).sum(axis=2) < 60).mean() > 0.03


def test_a_model_trained_with_acgmake_train_sings_in_the_song(song: Path, tmp_path):
    # A model fresh from `acgmake train` (two steps: soft blobs, no lines, no directions) is
    # taken by the whole chain with --ckpt: the mouths are drawn, the colours found without
    # lines.
    import shutil

    from acgmake.models.drawn import write_set

    write_set(tmp_path / "drawn", 12, 64, 0, holdout=4)
    trained = acgmake(
        "train", "drawn", "--out", "run", "--iters", "2", "--batch", "4", "--style-dim", "16",
        "--channels", "4:16,8:16,16:16,32:8,64:8", "--export", "mine.safetensors", cwd=tmp_path,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    shutil.copytree(song / "spring.acgmake", tmp_path / "spring.acgmake")
    shutil.copy(song / "spring.txt", tmp_path)
    result = acgmake(
        "song", "spring.txt", "--size", f"{SIZE[0]}x{SIZE[1]}", "--fps", str(FPS), "--seed", "3",
        "--ckpt", "mine.safetensors", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "has no latent directions, so the animation draws its own mouths" in result.stderr
    manifest = json.loads((tmp_path / "spring.acgmake" / "manifest.json").read_text())
    assets = manifest["stages"]["character"]["assets"]
    assert any("mine.safetensors" in json.dumps(asset) for asset in assets)
    assert read_media_info(tmp_path / "spring.mp4").duration_s > 4


def test_a_transparent_character_and_the_second_of_two_faces_sing(song: Path, tmp_path):
    from acgmake.models.drawn import BACKGROUND, draw_character

    drawing = draw_character(907, 1, 256, labels=True)
    clear = np.where(drawing.labels == BACKGROUND, 0, 255).astype(np.uint8)
    rgba = Image.fromarray(np.dstack([np.asarray(drawing.image), clear]))
    result = _sing_with(song, tmp_path / "clear", rgba)
    assert result.returncode == 0, result.stderr
    face = json.loads((tmp_path / "clear" / "spring.acgmake" / "face.json").read_text())
    assert face["picture"]["background"] == "transparency"
    truth = drawing.attributes["mouth_center"]
    x0, y0, x1, y1 = face["picture"]["crop"]
    mouth = face["mouth"]
    found = ((mouth[0] + mouth[2]) / 2 * (x1 - x0) + x0, (mouth[1] + mouth[3]) / 2 * (y1 - y0) + y0)
    assert np.linalg.norm(np.array(found) - np.array(truth) * 256) < 0.05 * 256 * 0.42
    opened, still = mouth_changes(
        tmp_path / "clear" / "spring.mp4", tmp_path / "clear" / "spring.acgmake", SIZE, FPS, 3
    )
    assert opened > 20 and still < opened / 4

    page = Image.new("RGB", (700, 420), (250, 248, 240))
    for index, (size, x, y) in enumerate(((400, 10, 10), (260, 430, 150))):
        one = draw_character(907, 2 + index, size, labels=True)
        pixels = np.asarray(one.image).copy()
        pixels[one.labels == BACKGROUND] = (250, 248, 240)
        page.paste(Image.fromarray(pixels), (x, y))
    result = _sing_with(song, tmp_path / "two", page, "--face-index", "2")
    assert result.returncode == 0, result.stderr
    face = json.loads((tmp_path / "two" / "spring.acgmake" / "face.json").read_text())
    assert face["picture"]["crop"][0] > 300  # the smaller face, on the right, sings


def test_a_picture_without_a_face_stops_the_song_with_one_line_and_no_clip(song: Path, tmp_path):
    result = _sing_with(song, tmp_path, Image.new("RGB", (400, 400), (120, 160, 200)))
    assert result.returncode != 0 and "no face found in me.png" in result.stderr
    assert "--face" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "spring.mp4").exists()
    assert not list(tmp_path.glob("*.partial*"))


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
    manifest = json.loads((song / "spring.acgmake" / "manifest.json").read_text())
    assert stage_reports(result.stderr) == {name: "cached" for name in manifest["order"]}


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
    # Everything before the interrupted render is reused; the render itself runs again.
    reports = stage_reports(result.stderr)
    order = list(reports)
    before = order[: order.index("animate")]
    assert before and all(reports[name] == "cached" for name in before)
    assert reports["animate"] == "done"
    assert (tmp_path / "long.mp4").exists()
