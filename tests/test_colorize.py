"""Line extraction and hint colorization on a hand-drawn character (tests/handmade_inputs.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from acgmake.errors import UserError
from acgmake.image.colorize import (
    LABELS,
    PRESETS,
    Hint,
    character_regions,
    colorize,
    default_palette,
    parse_palette,
    segment,
)
from acgmake.image.face import Face
from acgmake.image.lineart import clean_lines, line_art, to_working_size, xdog
from handmade_inputs import draw_character, load_stages, write_character

PALETTE = parse_palette("hair=#8fd3ff,eyes=#3a6,skin=#ffe0cc,clothes=#445")


@pytest.fixture(scope="module")
def character():
    rgb, face = draw_character(128)
    return rgb, Face.from_dict(face)


@pytest.fixture(scope="module")
def colored(character):
    rgb, face = character
    return colorize(rgb, face, PALETTE)


def at(image: np.ndarray, x: float, y: float) -> np.ndarray:
    """The pixel at normalised (x, y) — drawing coordinates are on a 512 grid."""
    height, width = image.shape[:2]
    return image[int(y / 512 * height), int(x / 512 * width)]


def test_xdog_finds_the_outlines(character):
    rgb, _ = character
    working = to_working_size(rgb)
    lines = xdog(working)
    assert working.shape[:2] == (512, 512)
    assert lines.dtype == np.float32 and lines.min() >= 0 and lines.max() <= 1
    ink = clean_lines(lines)
    near_ink = ndimage.binary_dilation(ink, iterations=3)
    # The face outline: an ellipse centred (256, 240) with radii (96, 110) on the 512 grid.
    for angle in np.linspace(0, 2 * np.pi, 24, endpoint=False):
        x, y = 256 + 96 * np.cos(angle), 240 + 110 * np.sin(angle)
        if y < 166:  # the top of the face is under the bangs
            continue
        assert near_ink[int(y), int(x)], f"no line at the face outline ({x:.0f}, {y:.0f})"
    # Flat areas are paper: cheek, background, the middle of the clothes.
    for x, y in [(200, 290), (30, 30), (256, 470), (140, 300)]:
        assert not ink[y, x], f"ink in a flat area at ({x}, {y})"
    assert 0.02 < ink.mean() < 0.2


def test_xdog_of_a_flat_image_is_blank_paper():
    assert np.all(xdog(np.full((64, 64, 3), 200, np.uint8)) == 1.0)


def test_clean_lines_drops_specks_and_seals_small_gaps():
    paper = np.ones((100, 100), np.float32)
    yy, xx = np.mgrid[:100, :100]
    ring = np.abs(np.hypot(yy - 50, xx - 50) - 30) < 1.5
    ring[48:51, 75:] = False  # a 3-pixel gap in the ring
    paper[ring] = 0.0
    paper[10, 10] = paper[90, 15] = 0.0  # specks
    ink = clean_lines(paper)
    assert not ink[10, 10] and not ink[90, 15]
    regions, count = ndimage.label(~ink)
    assert regions[50, 50] != regions[5, 5], "the inside of the ring leaks to the outside"


def test_regions_separated_by_a_line_keep_their_own_hints():
    # Both sides have the same colour: only the line (with a small gap) separates them.
    rgb = np.full((200, 200, 3), 230, np.uint8)
    rgb[:, 98:102] = 20
    rgb[120:123, 98:102] = 230
    lines, ink = line_art(rgb, size_px=200)
    # The hair hint sits close to the line, the skin hint far from it: without the line as a
    # barrier, hair would flood well past it.
    hints = [Hint("hair", 85, 100), Hint("skin", 195, 20)]
    labels = segment(rgb, ink, hints)
    left, right = labels[:, :90], labels[:, 110:]
    assert np.all(left == LABELS.index("hair"))
    assert np.all(right == LABELS.index("skin"))


@pytest.mark.parametrize(
    "name",
    [
        # The shipped model's seed 1: the fringe's line is broken, so hair and face are one
        # area; the face was painted the hair's colour.
        "fringe-gap-hair",
        # A fine-tuned model's pale, faint-outlined face: it was taken for background and
        # came out transparent.
        "pale-skin",
    ],
)
def test_a_face_joined_to_the_hair_or_background_keeps_its_skin(name):
    folder = Path(__file__).parent / "data"
    picture = np.asarray(Image.open(folder / f"{name}.png").convert("RGB"))
    face = Face.from_dict(json.loads((folder / f"{name}.json").read_text()))
    labels = character_regions(picture, face)
    height, width = labels.shape
    left_eye, right_eye, mouth = (
        Face.pixel_box(box, width, height) for box in (*face.eyes, face.mouth)
    )
    # Between the eyes and the mouth's bottom, across both eyes: cheeks and nose.
    cheeks = labels[left_eye[3] : mouth[3], left_eye[0] : right_eye[2]]
    assert np.mean(cheeks == LABELS.index("skin")) > 0.5
    for region in ("hair", "skin", "background", "clothes"):
        for point in face.points[region]:
            x, y = Face.pixel_point(point, width, height)
            assert LABELS[labels[y, x]] == region, f"the {region} hint's pixel"
    x0, y0, x1, y1 = Face.pixel_box(face.face, width, height)
    # The box's corners lie outside the chin: a quarter at most is background.
    assert np.mean(labels[y0:y1, x0:x1] == LABELS.index("background")) < 0.25


def test_colorize_paints_each_region_with_its_hint(character, colored):
    rgb, _ = character
    assert colored.dtype == np.uint8 and colored.shape == (512, 512, 4)

    def close_to(pixel, colour, tolerance=24):
        return np.abs(pixel[:3].astype(int) - np.array(colour)).max() <= tolerance

    assert close_to(at(colored, 200, 290), PALETTE["skin"])  # cheek
    assert close_to(at(colored, 256, 365), PALETTE["skin"])  # neck: no hint, joins the skin
    assert close_to(at(colored, 140, 330), PALETTE["hair"])  # left strand (the hint)
    assert close_to(at(colored, 372, 330), PALETTE["hair"])  # right strand: no hint
    assert close_to(at(colored, 256, 120), PALETTE["hair"])  # bangs: no hint
    assert close_to(at(colored, 150, 480), PALETTE["clothes"])
    assert close_to(at(colored, 420, 500), PALETTE["clothes"])
    # The irises are small and shaded by the pupil: check they are nearest the eye colour.
    for x in (196, 316):
        pixel = at(colored, x, 232)[:3].astype(int)
        nearest = min(PALETTE, key=lambda name: np.abs(pixel - PALETTE[name]).sum())
        assert nearest == "eyes", f"iris at x={x} is {pixel}, nearest {nearest}"
    # Lines are drawn back, dark.
    assert at(colored, 256, 162)[:3].max() < 100  # the bottom of the bangs
    assert at(colored, 161, 240)[:3].max() < 100  # the side of the face


def test_background_becomes_transparent(colored):
    alpha = colored[..., 3]
    for x, y in [(5, 5), (506, 5), (30, 300), (480, 300), (256, 40)]:
        assert at(alpha, x, y) == 0, f"background at ({x}, {y}) is not transparent"
    for x, y in [(256, 240), (140, 330), (256, 480), (256, 120)]:
        assert at(alpha, x, y) == 255
    # The outline around the character stays opaque (PIL drew it 5 px wide, inside x=120).
    assert at(alpha, 123, 300) == 255 and at(alpha, 388, 300) == 255
    assert at(colored, 123, 300)[:3].max() < 100


def test_shading_follows_the_original_luminance(character):
    rgb, face = character
    shaded = rgb.copy()
    height = rgb.shape[0]
    # Darken the lower part of the left hair strand (inside its outline), as a shadow.
    rows = slice(int(330 / 512 * height), int(365 / 512 * height))
    shaded[rows, int(150 / 512 * height) : int(200 / 512 * height)] //= 2
    painted = colorize(shaded, face, PALETTE)
    light, dark = at(painted, 140, 300), at(painted, 175, 348)
    assert light[:3].astype(int).sum() > dark[:3].astype(int).sum() + 60
    # Same hue: both are the hair colour, one darker.
    assert np.argmax(light[:3]) == np.argmax(dark[:3]) == 2


def test_colorize_copes_with_any_size(character):
    rgb, face = character
    big = np.asarray(Image.fromarray(rgb).resize((256, 320)))  # an upscaler plugin's output
    out = colorize(big, face, PALETTE)
    assert out.shape[:2] == (512, 410)
    assert out[5, 5, 3] == 0 and out[int(0.55 * 512), 205, 3] == 255


def test_parse_palette():
    palette = parse_palette("hair=#8fd3ff, eyes=#3a6,skin=ffe0cc,clothes=navy")
    assert palette == {
        "hair": (0x8F, 0xD3, 0xFF),
        "eyes": (0x33, 0xAA, 0x66),
        "skin": (0xFF, 0xE0, 0xCC),
        "clothes": (0, 0, 128),
    }
    assert parse_palette("") == {}
    assert parse_palette("sakura,hair=#fff")["hair"] == (255, 255, 255)
    sakura_eyes = parse_palette("eyes=" + PRESETS["sakura"]["eyes"])["eyes"]
    assert parse_palette("sakura")["eyes"] == sakura_eyes


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("hat=#fff", "'hat'"),
        ("hair=#ggg", "'#ggg'"),
        ("hair=", "''"),
        ("rainbow", "'rainbow'"),
    ],
)
def test_palette_errors_name_the_problem_and_the_choices(text, named):
    with pytest.raises(UserError) as caught:
        parse_palette(text)
    message = caught.value.message
    assert named in message
    if "hat" in text:
        assert all(region in message for region in ("hair", "eyes", "skin", "clothes"))
    if "rainbow" in text:
        assert "sakura" in message


def test_default_palette_is_chosen_by_seed():
    assert default_palette(7) == default_palette(7)
    assert len({tuple(sorted(default_palette(seed).items())) for seed in range(20)}) > 2
    assert set(default_palette(1)) == {"hair", "eyes", "skin", "clothes"}


def _run_colorize(tmp_path, palette):
    from acgmake.pipeline import run

    return run(
        load_stages("acgmake.stages.colorize"),
        tmp_path / "run",
        ["colored"],
        inputs=write_character(tmp_path / "in"),
        params={"colorize": {"palette": palette}},
        seed=1,
    )


def test_colorize_stage_writes_an_rgba_png(tmp_path):
    result = _run_colorize(tmp_path, "hair=#ff0000")
    with Image.open(result.files["colored"]) as image:
        assert image.mode == "RGBA"
        colored = np.asarray(image)
    assert tuple(at(colored, 140, 330)[:3].astype(int)) == pytest.approx((255, 0, 0), abs=24)
    assert at(colored, 5, 5)[3] == 0


def test_colorize_stage_refuses_a_bad_palette(tmp_path):
    with pytest.raises(UserError, match="unknown palette region 'fur'"):
        _run_colorize(tmp_path, "fur=#fff")
    assert not (tmp_path / "run" / "colored.png").exists()


@pytest.mark.parametrize("seed", [3, 11])
def test_an_enlarged_generated_character_keeps_its_regions(seed):
    # The example plugin's upscale (Lanczos x2 and an unsharp mask) once gave thin, broken
    # XDoG outlines through which hair, skin and background leaked into one colour.
    from PIL import ImageFilter

    from acgmake.models.character import face_info, generate_character, shipped_checkpoint
    from acgmake.models.checkpoint import load_generator

    small = generate_character(load_generator(shipped_checkpoint()), seed)
    face = Face.from_dict(face_info(small))
    larger = Image.fromarray(small).resize((128, 128), Image.Resampling.LANCZOS)
    larger = larger.filter(ImageFilter.UnsharpMask(radius=2, percent=60, threshold=2))
    colored = colorize(np.asarray(larger), face, PALETTE, method="flat")
    height, width = colored.shape[:2]
    for region in ("hair", "skin", "clothes"):
        x, y = Face.pixel_point(face.points[region][0], width, height)
        pixel = np.median(colored[y - 3 : y + 4, x - 3 : x + 4, :3].reshape(-1, 3), axis=0)
        assert np.abs(pixel - PALETTE[region]).max() <= 40, (region, pixel)
    x, y = Face.pixel_point(face.points["background"][0], width, height)
    assert colored[y, x, 3] == 0


def test_no_clothes_colour_on_a_generated_face():
    # Seed 0's pale eye whites were once matched to the clothes and painted as a blue patch.
    from acgmake.models.character import face_info, generate_character, shipped_checkpoint
    from acgmake.models.checkpoint import load_generator

    small = generate_character(load_generator(shipped_checkpoint()), 0)
    face = Face.from_dict(face_info(small))
    palette = {**PALETTE, "clothes": (240, 40, 30)}  # far from the skin, the hair and the ink
    colored = colorize(small, face, palette, method="flat")
    height, width = colored.shape[:2]
    x0, y0, x1, y1 = Face.pixel_box(face.face, width, height)
    cheeks_and_eyes = colored[
        (y0 + y1) // 2 - (y1 - y0) // 5 : (y0 + y1) // 2 + (y1 - y0) // 5, x0:x1
    ]
    clothes = np.abs(cheeks_and_eyes[..., :3].astype(int) - palette["clothes"]).max(axis=2) < 40
    assert clothes.mean() < 0.01
