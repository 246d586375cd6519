"""Colorize a user's own line art: scans, hints images, both methods, layers, bad input."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from acgmake.errors import UserError
from acgmake.image.colorize import colorize_layers
from acgmake.image.fill import areas
from acgmake.image.hints import hints_from_rgba, read_hints
from acgmake.image.lineart import extract_line_art, is_line_art
from acgmake.image.openraster import read_ora
from handmade_inputs import draw_character, load_stages

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
LINEART = EXAMPLES / "lineart.png"
HINTS = EXAMPLES / "hints.png"
#: Where examples/hints.png puts each colour (a point on its stroke) and the colour.
STROKES = {
    "hair": ((266, 124), (0xC3, 0xA6, 0xFF)),
    "skin": ((260, 252), (0xFF, 0xE3, 0xD3)),
    "clothes": ((130, 496), (0x34, 0x40, 0x6E)),
    "headband": ((183, 77), (0xFF, 0xC9, 0x4A)),
}
#: A pocket of background enclosed by lines, marked clear with a black stroke.
CLEAR_POCKET = (172, 400)


def scan(size: int = 300, gap_px: int = 2) -> np.ndarray:
    """A pencil scan: a ring on unevenly lit paper, grain, dust specks, a small gap."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:size, :size]
    paper = 0.78 + 0.2 * xx / size  # lit from the right
    ring = np.abs(np.hypot(yy - size / 2, xx - size / 2) - size / 3) < 2.0
    ring &= ~((np.abs(yy - size / 2) < gap_px / 2) & (xx > size / 2))
    gray = np.where(ring, 0.25, paper) + rng.normal(0, 0.02, (size, size))
    for y, x in rng.integers(10, size - 10, size=(12, 2)):
        gray[y : y + 2, x : x + 2] = 0.3  # dust
    return np.clip(gray * 255, 0, 255).astype(np.uint8)


def test_a_scan_is_read_as_ink_on_paper_with_dust_gone_and_gaps_sealed():
    page = scan()
    assert is_line_art(np.dstack([page] * 3))
    lines, ink, mode = extract_line_art(np.dstack([page] * 3))
    assert mode == "scan" and ink.shape == (512, 512)
    assert lines.min() < 0.3 and lines.max() == 1.0
    _, count = ndimage.label(ink)
    assert count == 1, "dust specks are kept as ink"
    found = areas(ink)
    assert found[256, 256] != found[5, 5], "the ring's small gap lets the inside out"
    # Paper is paper on the dark left and the bright right alike.
    assert not ink[:, :60].any() and not ink[:, -60:].any()


def test_line_art_is_told_from_a_coloured_picture():
    assert is_line_art(np.asarray(Image.open(LINEART).convert("RGB")))
    rgb, _ = draw_character(128)
    assert not is_line_art(rgb)
    # Lines drawn on a transparent layer, as digital line art often is.
    layer = np.zeros((64, 64, 4), np.uint8)
    layer[30:33, :, 3] = 255
    assert is_line_art(layer)


def test_hints_group_antialiased_strokes_by_colour():
    big = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
    draw = ImageDraw.Draw(big)
    draw.line([(20, 20), (200, 40)], fill=(255, 0, 0, 255), width=12)
    draw.line([(20, 120), (200, 100)], fill=(0, 90, 255, 255), width=12)
    draw.ellipse((100, 180, 130, 210), fill=(255, 6, 4, 255))  # nearly the same red
    hints = hints_from_rgba(np.asarray(big.resize((128, 128), Image.LANCZOS)))
    assert len(hints.colours) == 2
    assert hints.mask.sum() > 500
    assert not hints.clear.any()


def _picture(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def flat():
    return colorize_layers(_picture(LINEART), hints=read_hints(HINTS, (512, 512)), method="flat")


def test_flat_colours_follow_the_hints_and_the_lines(flat):
    colored = flat.composite()
    assert colored.shape == (512, 512, 4)
    for name, ((x, y), colour) in STROKES.items():
        pixel = colored[y, x]
        assert pixel[3] == 255 and np.abs(pixel[:3].astype(int) - colour).max() <= 2, name
    # The bangs' hair stops at the forehead's line: the forehead is skin, the bangs hair.
    assert np.abs(colored[230, 256, :3].astype(int) - STROKES["skin"][1]).max() <= 2
    assert np.abs(colored[175, 256, :3].astype(int) - STROKES["hair"][1]).max() <= 2
    assert colored[5, 5, 3] == 0 and colored[CLEAR_POCKET[1], CLEAR_POCKET[0], 3] == 0
    # Flat: no shading.
    assert flat.shadow[..., 3].max() == 0 and flat.light[..., 3].max() == 0


def run_colorize(tmp_path, inputs, **params):
    from acgmake.pipeline import run

    return run(
        load_stages("acgmake.stages.colorize"),
        tmp_path / "run",
        ["colored", "layers"],
        inputs=inputs,
        params={"colorize": params},
        seed=1,
        only=["colorize"],
    )


def test_the_stage_writes_the_colored_png_and_an_openraster_file(tmp_path):
    result = run_colorize(tmp_path, {"character": LINEART, "hints": HINTS}, method="flat")
    with Image.open(result.files["colored"]) as image:
        assert image.mode == "RGBA" and image.size == (512, 512)
        colored = np.asarray(image)
    ora = result.files["layers"]
    assert ora.name == "colored.ora"
    with zipfile.ZipFile(ora) as archive:
        assert archive.testzip() is None
        first = archive.infolist()[0]
        assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
        assert archive.read("mimetype") == b"image/openraster"
        names = archive.namelist()
        assert {"stack.xml", "mergedimage.png", "Thumbnails/thumbnail.png"} <= set(names)
        root = ElementTree.fromstring(archive.read("stack.xml"))
        assert root.tag == "image" and (root.get("w"), root.get("h")) == ("512", "512")
        stack = root.find("stack").findall("layer")
        assert [layer.get("name") for layer in stack] == ["lines", "light", "shadow", "flats"]
        for layer in stack:
            assert layer.get("src") in names
            with Image.open(io.BytesIO(archive.read(layer.get("src")))) as png:
                assert png.size == (512, 512) and png.mode == "RGBA"
        with Image.open(io.BytesIO(archive.read("Thumbnails/thumbnail.png"))) as thumb:
            assert max(thumb.size) <= 256
    layers, merged = read_ora(ora)
    assert np.array_equal(merged, colored)
    # The layers, blended as any paint program blends normal layers, give colored.png.
    canvas = np.zeros((512, 512, 3), np.float64)
    alpha = np.zeros((512, 512, 1), np.float64)
    for _, rgba in layers:
        top = rgba[..., 3:] / 255.0
        below = alpha * (1 - top)
        alpha = top + below
        canvas = (rgba[..., :3] * top + canvas * below) / np.maximum(alpha, 1e-9)
    visible = colored[..., 3] > 0
    assert np.abs(canvas[visible] - colored[visible][:, :3]).max() <= 1.0
    assert np.abs(alpha[..., 0] * 255 - colored[..., 3]).max() <= 1.0


def test_the_command_line_colours_the_example(tmp_path, flat):
    from click.testing import CliRunner

    from acgmake.cli import cli

    out = tmp_path / "out.png"
    args = ["colorize", str(LINEART), "--hints", str(HINTS), "-o", str(out)]
    outcome = CliRunner().invoke(cli, [*args, "--workdir", str(tmp_path / "w"), "--method", "flat"])
    assert outcome.exit_code == 0, outcome.output
    with Image.open(out) as image:
        assert image.mode == "RGBA" and image.size == (512, 512)
        written = np.asarray(image)
    # What the command wrote is the picture colorize_layers makes, hints and all.
    assert np.abs(written.astype(int) - flat.composite().astype(int)).max() <= 1
    for name, ((x, y), colour) in STROKES.items():
        assert np.abs(written[y, x, :3].astype(int) - colour).max() <= 2, name
    layers, merged = read_ora(tmp_path / "w" / "colored.ora")
    assert layers and np.abs(merged.astype(int) - written.astype(int)).max() <= 1


def _write(tmp_path: Path, name: str, array: np.ndarray) -> Path:
    path = tmp_path / name
    Image.fromarray(array).save(path)
    return path


@pytest.mark.parametrize(
    ("page", "message"),
    [
        (np.zeros((200, 200, 3), np.uint8), "all black"),
        (np.full((200, 200, 3), 255, np.uint8), "empty"),
        (np.full((200, 200, 3), 120, np.uint8), "empty"),
        (np.pad(np.full((50, 50, 3), 255, np.uint8), ((0, 150), (0, 150), (0, 0))), "mostly black"),
    ],
)
def test_a_page_without_lines_is_refused(tmp_path, page, message):
    page_path = _write(tmp_path, "page.png", page)
    with pytest.raises(UserError, match=message):
        run_colorize(tmp_path, {"character": page_path})


def test_a_file_that_is_not_an_image_is_refused(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not a picture", encoding="utf-8")
    with pytest.raises(UserError, match="not an image"):
        run_colorize(tmp_path, {"character": text, "hints": HINTS})


def test_a_hints_image_of_the_wrong_size_is_refused(tmp_path):
    small = _write(tmp_path, "hints.png", np.zeros((256, 256, 4), np.uint8))
    with pytest.raises(UserError, match=r"256x256 but the line art is 512x512"):
        run_colorize(tmp_path, {"character": LINEART, "hints": small})
    assert not (tmp_path / "run" / "colored.png").exists()


@pytest.mark.parametrize(
    ("hints", "message"),
    [
        (np.zeros((512, 512, 4), np.uint8), "empty"),
        (np.full((512, 512, 3), 200, np.uint8), "no transparency"),
    ],
)
def test_a_hints_image_without_hints_is_refused(tmp_path, hints, message):
    path = _write(tmp_path, "hints.png", hints)
    with pytest.raises(UserError, match=message):
        run_colorize(tmp_path, {"character": LINEART, "hints": path})


def test_line_art_needs_hints(tmp_path):
    with pytest.raises(UserError, match="no colour hints"):
        run_colorize(tmp_path, {"character": LINEART})
    with pytest.raises(UserError, match="no face.json"):
        run_colorize(tmp_path, {"character": LINEART}, palette="hair=#fff")


def test_an_unknown_palette_region_is_refused(tmp_path):
    with pytest.raises(UserError, match="unknown palette region 'tail'"):
        run_colorize(tmp_path, {"character": LINEART, "hints": HINTS}, palette="tail=#fff")


def test_line_art_on_a_transparent_layer_and_of_any_shape(flat):
    gray = np.asarray(Image.open(LINEART).convert("L"))
    # The same lines as black ink on a transparent layer, cut to 512 x 400.
    layer = np.dstack([np.zeros_like(gray)] * 3 + [255 - gray])[56:456]
    hints = np.asarray(Image.open(HINTS).convert("RGBA"))[56:456]
    painting = colorize_layers(layer, hints=hints_from_rgba(hints), method="flat")
    colored = painting.composite()
    assert colored.shape == (400, 512, 4)
    same = flat.composite()[56:456]
    for name, ((x, y), colour) in STROKES.items():
        if 56 <= y < 456:
            assert np.abs(colored[y - 56, x, :3].astype(int) - colour).max() <= 2, name
    # The cut loses the clothes' hint (row 496): the clothes are clear, and the shoulder
    # line above them is tinted as the hair it now borders.
    assert (np.abs(colored.astype(int) - same).max(axis=2) <= 8).mean() > 0.96
