"""The user's own character (`--character`): the picture made ready to sing.

The pictures are drawn here from the drawn set, whose every face part is known exactly: on
paper (background to separate), with transparency, at several sizes, two characters in one
picture, and none.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from acgmake.errors import UserError
from acgmake.image.face import Face
from acgmake.image.portrait import (
    MOUTH_OF_FACE,
    framing_box,
    given_layout,
    has_transparency,
    make_portrait,
    separate_background,
)
from acgmake.models.drawn import BACKGROUND, draw_character
from acgmake.video.expressions import drawn_expressions, erase_mouth, picture_ink

PAPER = (250, 250, 247)


def drawn_on_paper(seed: int, size: int = 512, canvas: tuple[int, int] | None = None, at=(0, 0)):
    """A drawn character on plain paper (RGB), optionally on a larger canvas at ``at``, and
    its face parts' boxes in the canvas's 0..1 coordinates."""
    drawing = draw_character(901, seed, size, labels=True)
    picture = np.asarray(drawing.image).copy()
    picture[drawing.labels == BACKGROUND] = PAPER
    width, height = canvas or (size, size)
    page = np.empty((height, width, 3), np.uint8)
    page[:] = PAPER
    x, y = at
    page[y : y + size, x : x + size] = picture
    a = drawing.attributes

    def box(b):
        return [(b[0] * size + x) / width, (b[1] * size + y) / height,
                (b[2] * size + x) / width, (b[3] * size + y) / height]  # fmt: skip

    truth = {
        "face": box(a["face"]),
        "mouth": box(a["mouth_box"]),
        "eyes": [box(e) for e in a["eyes"]],
    }
    return page, truth, drawing


def centre(box) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def test_a_face_file_in_pixels_or_fractions_gives_the_same_layout():
    _, truth, _ = drawn_on_paper(1)
    in_pixels = {
        key: [[v * 512 for v in b] for b in value] if key == "eyes" else [v * 512 for v in value]
        for key, value in truth.items()
    }
    a = given_layout(truth, 512, 512, "f.json")
    b = given_layout(in_pixels, 512, 512, "f.json")
    assert np.allclose(a["face"], b["face"], atol=1e-3) and np.allclose(
        a["mouth"], b["mouth"], atol=1e-3
    )
    # The mouth box is the size the drawn mouths need, around the mouth given.
    face_w = truth["face"][2] - truth["face"][0]
    assert a["mouth"][2] - a["mouth"][0] == pytest.approx(MOUTH_OF_FACE[0] * face_w, abs=1e-3)
    assert np.allclose(centre(a["mouth"]), centre(truth["mouth"]), atol=1e-3)
    assert a["points"]["eyes"][0][0] < a["points"]["eyes"][1][0]  # the picture's left eye first


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ({"mouth": [0, 0, 1, 1], "eyes": [[0, 0, 1, 1]]}, "face"),
        ({"face": [0.5, 0.5, 0.4, 0.6], "mouth": [0, 0, 1, 1], "eyes": [[0, 0, 1, 1]]}, "empty"),
        ({"face": [0, 0, 1, 1], "mouth": [0, 0, 1, 1], "eyes": []}, "eyes"),
        ({"face": [0, 0, 1, 1], "mouth": [0, 0, 1], "eyes": [[0, 0, 1, 1]]}, "mouth"),
        ({"face": [2000, 0, 3000, 10], "mouth": [0, 0, 1, 1], "eyes": [[0, 0, 1, 1]]}, "outside"),
        ([1, 2, 3], "not"),
    ],
)
def test_a_wrong_face_file_is_one_clear_line(raw, says):
    with pytest.raises(UserError) as caught:
        given_layout(raw, 512, 512, "my_face.json")
    message = caught.value.message
    assert "my_face.json" in message and says in message and "\n" not in message


def test_the_paper_around_a_character_becomes_transparent():
    page, truth, drawing = drawn_on_paper(2, 384, canvas=(480, 420), at=(48, 36))
    alpha = separate_background(page, tuple(truth["face"]))
    assert alpha is not None and alpha.shape == page.shape[:2]
    # The corners are paper; the face, the eyes and the hair are the character.
    assert alpha[:10, :10].max() == 0 and alpha[:10, -10:].max() == 0
    x0, y0, x1, y1 = Face.pixel_box(truth["face"], 480, 420)
    assert alpha[y0:y1, x0:x1].mean() > 250
    labels = np.zeros(page.shape[:2], np.uint8)
    labels[36 : 36 + 384, 48 : 48 + 384] = drawing.labels
    hair = labels == 1
    assert (alpha[hair] > 128).mean() > 0.97


def test_a_busy_backdrop_is_kept_rather_than_cut_wrongly():
    rng = np.random.default_rng(0)
    page, truth, _ = drawn_on_paper(3, 256)
    noise = rng.integers(0, 255, page.shape, dtype=np.uint8)
    _, _, drawing = drawn_on_paper(3, 256)
    page[drawing.labels == BACKGROUND] = noise[drawing.labels == BACKGROUND]
    assert separate_background(page, tuple(truth["face"])) is None


@pytest.mark.parametrize("framing", ["bust", "tall"])
def test_a_face_file_of_a_cut_keeps_its_points_inside_it(framing):
    # A small character low in a big busy picture: no backdrop found, the cut tight round the
    # face. Its face.json must read back (the background's point was the whole picture's
    # corner, -0.7 of the cut, and the clip stage refused the file).
    rng = np.random.default_rng(1)
    page, truth, drawing = drawn_on_paper(3, 256, canvas=(700, 600), at=(400, 344))
    back = np.zeros(page.shape[:2], bool)
    back[:] = True
    back[344:600, 400:656] = drawing.labels == BACKGROUND
    page[back] = rng.integers(0, 255, (int(back.sum()), 3), dtype=np.uint8)
    layout = given_layout(truth, 700, 600, "f.json")
    made = make_portrait(page, layout, framing=framing)
    assert made.background == "none" and made.crop[0] > 0 and made.crop[1] > 0
    points = made.layout["points"]
    flat = [v for p in points.values() for v in (np.ravel(p))]
    assert all(0.0 <= v <= 1.0 for v in flat), points
    Face.from_dict({**made.layout, "colors": {}})  # raises for a value out of range


def test_a_transparent_picture_keeps_its_own_transparency():
    page, truth, drawing = drawn_on_paper(4, 256)
    rgba = np.dstack([page, np.where(drawing.labels == BACKGROUND, 0, 255).astype(np.uint8)])
    assert has_transparency(rgba) and not has_transparency(page)
    layout = given_layout(truth, 256, 256, "f.json")
    made = make_portrait(rgba, layout, framing="whole")
    assert made.background == "transparency"
    assert np.array_equal(made.rgba, rgba)


def test_a_tall_picture_is_cut_to_the_bust_or_kept_taller():
    page, truth, _ = drawn_on_paper(5, 256, canvas=(320, 900), at=(32, 40))
    layout = given_layout(truth, 320, 900, "f.json")
    bust = framing_box(tuple(layout["face"]), 320, 900, "bust")
    tall = framing_box(tuple(layout["face"]), 320, 900, "tall")
    assert framing_box(tuple(layout["face"]), 320, 900, "whole") == (0, 0, 320, 900)
    face_h = (truth["face"][3] - truth["face"][1]) * 900
    assert bust[3] - bust[1] < 2.4 * face_h < tall[3] - tall[1] < 900
    made = make_portrait(page, layout, framing="bust")
    assert made.rgba.shape[:2] == (bust[3] - bust[1], bust[2] - bust[0])
    # The layout follows the cut: the face is where it is in the cut picture.
    fx0, fy0, fx1, fy1 = made.layout["face"]
    assert (fy0 * made.rgba.shape[0] + bust[1]) == pytest.approx(truth["face"][1] * 900, abs=1.5)


def test_the_pictures_own_mouth_is_painted_out_before_the_drawn_ones_go_on():
    page, truth, drawing = drawn_on_paper(4, 512)
    assert drawing.attributes["mouth"] == "a"  # an open mouth: the most there is to paint out
    rgba = np.dstack([page, np.full(page.shape[:2], 255, np.uint8)])
    layout = given_layout(truth, 512, 512, "f.json")
    face = Face.from_dict({**layout, "picture": {"file": "oc.png"}})
    mouth_px = Face.pixel_box(truth["mouth"], 512, 512)
    x0, y0, x1, y1 = mouth_px
    before = rgba[y0:y1, x0:x1, :3].astype(int)
    erased = rgba.copy()
    erase_mouth(erased, Face.pixel_box(face.mouth, 512, 512))
    skin = np.array([int(drawing.attributes["skin_rgb"][i : i + 2], 16) for i in (1, 3, 5)])
    far_before = (np.abs(before - skin).sum(axis=2) > 60).mean()
    far_after = (np.abs(erased[y0:y1, x0:x1, :3].astype(int) - skin).sum(axis=2) > 60).mean()
    assert far_before > 0.1 and far_after < 0.02
    # Nothing outside the mouth's surroundings changed.
    changed = np.abs(erased.astype(int) - rgba.astype(int)).sum(axis=2) > 0
    ys, xs = np.nonzero(changed)
    assert xs.min() >= x0 - (x1 - x0) and xs.max() <= x1 + (x1 - x0)
    # Every expression is drawn over the painted-out mouth: rest shows one small closed mouth
    # (some ink where the wide open "a" was, far less of it).
    rest = drawn_expressions(rgba, face, picture_ink(rgba, face))[0]
    far_rest = (np.abs(rest[y0:y1, x0:x1, :3].astype(int) - skin).sum(axis=2) > 60).mean()
    assert 0.01 < far_rest < far_before / 2


def test_the_drawn_mouth_takes_the_pictures_line_colour():
    page, truth, _ = drawn_on_paper(7, 512)
    blue_lines = page.copy()
    dark = page.sum(axis=2) < 250
    blue_lines[dark] = (20, 30, 120)
    rgba = np.dstack([blue_lines, np.full(page.shape[:2], 255, np.uint8)])
    face = Face.from_dict({**given_layout(truth, 512, 512, "f.json"), "picture": {}})
    ink = picture_ink(rgba, face)
    assert ink.line[2] > ink.line[0] + 40  # bluish, as the picture's strokes


def run_acgmake(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "acgmake", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_character_stage_makes_the_users_picture_the_character(tmp_path):
    page, truth, _ = drawn_on_paper(8, 384, canvas=(460, 700), at=(38, 30))
    Image.fromarray(page).save(tmp_path / "oc.png")
    (tmp_path / "face.json").write_text(
        json.dumps(
            {
                k: (
                    [[v * s for v, s in zip(b, (460, 700) * 2, strict=True)] for b in val]
                    if k == "eyes"
                    else [v * s for v, s in zip(val, (460, 700) * 2, strict=True)]
                )
                for k, val in truth.items()
            }
        ),  # fmt: skip
        encoding="utf-8",
    )
    result = run_acgmake(
        "character", "--character", "oc.png", "--face", "face.json", "--framing", "bust",
        "--workdir", "run", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    face = Face.read(tmp_path / "run" / "face.json")
    assert face.picture["file"] == "oc.png" and face.picture["background"] == "flood"
    assert face.latent is None
    with Image.open(tmp_path / "run" / "character.png") as made:
        assert made.mode == "RGBA" and made.size[1] < 700  # cut to the bust
    # Colorize keeps the user's colours: colored.png is character.png.
    result = run_acgmake("colorize", "--workdir", "run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    character = np.asarray(Image.open(tmp_path / "run" / "character.png"))
    colored = np.asarray(Image.open(tmp_path / "run" / "colored.png"))
    assert np.array_equal(character, colored)
    # The picture is an input: changing it makes the character again.
    Image.fromarray(np.ascontiguousarray(page[:, ::-1])).save(tmp_path / "oc.png")
    result = run_acgmake(
        "character", "--character", "oc.png", "--face", "face.json", "--framing", "bust",
        "--workdir", "run", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0 and "cached" not in result.stderr


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: p.write_text("not a picture"), "cannot read the character picture"),
        (lambda p: Image.new("RGB", (90, 300), "white").save(p), "too small"),
        (lambda p: None, "does not exist"),
    ],
)
def test_a_bad_character_picture_is_one_clear_line(tmp_path, make, says):
    make(tmp_path / "oc.png")
    result = run_acgmake("character", "--character", "oc.png", "--workdir", "run", cwd=tmp_path)
    assert result.returncode != 0
    assert says in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2
    assert not (tmp_path / "run" / "character.png").exists()


def test_a_picture_without_a_face_says_how_to_give_it(tmp_path):
    page = np.full((400, 400, 3), 240, np.uint8)
    cv2.circle(page, (200, 200), 80, (200, 80, 80), -1)
    Image.fromarray(page).save(tmp_path / "oc.png")
    result = run_acgmake("character", "--character", "oc.png", "--workdir", "run", cwd=tmp_path)
    assert result.returncode != 0
    assert "no face found in oc.png" in result.stderr and "--face" in result.stderr
    assert "Traceback" not in result.stderr


def two_characters():
    """Two drawn characters on one page, the left one larger; their truths."""
    page = np.empty((520, 900, 3), np.uint8)
    page[:] = PAPER
    left, left_truth, _ = drawn_on_paper(9, 480)
    right, right_truth, _ = drawn_on_paper(10, 320)
    page[10:490, 20:500] = left
    page[160:480, 560:880] = right

    def placed(truth, size, x, y):
        x0, y0, x1, y1 = truth["face"]
        return [(x0 * size + x) / 900, (y0 * size + y) / 520,
                (x1 * size + x) / 900, (y1 * size + y) / 520]  # fmt: skip

    return page, placed(left_truth, 480, 20, 10), placed(right_truth, 320, 560, 160)


def test_the_largest_face_sings_unless_another_is_chosen():
    from acgmake.image.portrait import found_layout

    page, left, right = two_characters()
    chosen = found_layout(page, "group.png", None)
    assert np.allclose(centre(chosen["face"]), centre(left), atol=0.02)
    second = found_layout(page, "group.png", 2)
    assert np.allclose(centre(second["face"]), centre(right), atol=0.02)
    with pytest.raises(UserError, match="has 2 faces"):
        found_layout(page, "group.png", 3)


def own_character() -> np.ndarray:
    """examples/oc.png as examples/oc.py draws it: a style of its own, not the drawn set's."""
    import runpy

    path = Path(__file__).parents[1] / "examples" / "oc.png"
    with Image.open(path) as shipped:
        picture = np.asarray(shipped.convert("RGB"))
    drawn = runpy.run_path(str(path.with_suffix(".py")))
    return picture, drawn


def test_the_shipped_example_character_is_what_its_script_draws(tmp_path):
    picture, drawn = own_character()
    drawn["main"](str(tmp_path / "oc.png"))
    with Image.open(tmp_path / "oc.png") as again:
        assert np.abs(np.asarray(again.convert("RGB")).astype(int) - picture).max() <= 2


def test_a_users_own_style_is_found_and_its_eyes_close_under_its_bangs():
    from acgmake.image.portrait import found_layout

    picture, _ = own_character()
    layout = found_layout(picture, "oc.png", None)
    # examples/oc.py draws the mouth at (450, 600) and the eyes at (365, 500) and (535, 500).
    face_w = (layout["face"][2] - layout["face"][0]) * 900
    assert np.linalg.norm(centre(layout["mouth"]) * (900, 1400) - (450, 600)) < 0.06 * face_w
    for eye, truth in zip(layout["points"]["eyes"], ((365, 500), (535, 500)), strict=True):
        assert np.linalg.norm(np.array(eye) * (900, 1400) - truth) < 0.06 * face_w
    portrait = make_portrait(picture, layout, framing="bust")
    assert portrait.background == "flood"
    rgba = portrait.rgba
    face = Face.from_dict({**portrait.layout, "picture": {"file": "oc.png"}})
    blink = drawn_expressions(rgba, face, picture_ink(rgba, face))[-1]
    height, width = rgba.shape[:2]
    orange = np.array((230, 120, 60))

    def iris(image: np.ndarray, box: tuple[int, int, int, int]) -> float:
        x0, y0, x1, y1 = box
        return float((np.abs(image[y0:y1, x0:x1, :3].astype(int) - orange).sum(2) < 60).mean())

    for eye in face.eyes:
        box = Face.pixel_box(eye, width, height)
        assert iris(rgba, box) > 0.15 and iris(blink, box) < 0.01  # the whole eye is under the lid
    # The bangs above the eyes are as they were: only the eyes and the mouth changed.
    changed = np.abs(blink.astype(int) - rgba.astype(int)).sum(axis=2) > 30
    top = min(Face.pixel_box(eye, width, height)[1] for eye in face.eyes)
    hair_rows = slice(0, max(top - (height // 40), 0))
    assert changed[hair_rows].mean() < 0.001


def test_line_art_of_ones_own_is_coloured_not_passed_through(tmp_path):
    from acgmake.models.drawn import LINE

    drawing = draw_character(901, 11, 384, labels=True)
    lines = np.where(drawing.labels == LINE, 30, 255).astype(np.uint8)
    Image.fromarray(lines).save(tmp_path / "lines.png")
    result = run_acgmake("character", "--character", "lines.png", "--workdir", "run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    result = run_acgmake("colorize", "--workdir", "run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    colored = np.asarray(Image.open(tmp_path / "run" / "colored.png").convert("RGBA")).astype(int)
    shown = colored[..., 3] > 128
    chroma = colored[..., :3].max(axis=2) - colored[..., :3].min(axis=2)
    assert np.mean(chroma[shown] > 40) > 0.2  # filled with the seed's palette


@pytest.mark.parametrize("mode", ["I;16", "I", "F"])
def test_a_16_bit_or_float_grey_picture_keeps_its_greys(tmp_path, mode):
    from acgmake.image.picture import read_picture

    page, _, _ = drawn_on_paper(12, 256)
    grey = np.asarray(Image.fromarray(page).convert("L"))
    if mode == "F":
        wide = Image.fromarray(grey.astype(np.float32) / 255.0, mode="F")
        path = tmp_path / "grey.tiff"
    else:
        wide = Image.fromarray(grey.astype(np.uint16) * 257)
        if mode == "I":
            wide, path = wide.convert("I"), tmp_path / "grey.tiff"
        else:
            path = tmp_path / "grey.png"
    wide.save(path)
    read, _ = read_picture(path, "picture")
    assert np.abs(read[..., 0].astype(int) - grey).max() <= 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.tuples(st.integers(128, 640), st.integers(128, 640)),
    face=st.tuples(
        st.floats(-0.3, 1.2), st.floats(-0.3, 1.2), st.floats(0.05, 0.9), st.floats(0.05, 0.9)
    ),  # fmt: skip
    framing=st.sampled_from(["bust", "tall", "whole"]),
    backdrop=st.sampled_from(["paper", "noise", "clear"]),
)
def test_any_given_face_makes_a_face_file_the_chain_reads_or_one_clear_line(
    size, face, framing, backdrop
):
    # A --face file may place the face anywhere, even partly off the picture: the portrait
    # made from it is read back by the later stages, or the file is refused at once.
    width, height = size
    x0, y0, fw, fh = face
    x1, y1 = x0 + fw, y0 + fh
    raw = {
        "face": [x0, y0, x1, y1],
        "mouth": [x0 + 0.4 * fw, y0 + 0.75 * fh, x0 + 0.6 * fw, y0 + 0.85 * fh],
        "eyes": [[x0 + 0.2 * fw, y0 + 0.45 * fh, x0 + 0.4 * fw, y0 + 0.6 * fh],
                 [x0 + 0.6 * fw, y0 + 0.45 * fh, x0 + 0.8 * fw, y0 + 0.6 * fh]],
    }  # fmt: skip
    rng = np.random.default_rng(width * height)
    picture = np.empty((height, width, 3), np.uint8)
    picture[:] = PAPER
    if backdrop == "noise":
        picture[:] = rng.integers(0, 255, picture.shape, dtype=np.uint8)
    if backdrop == "clear":
        picture = np.dstack([picture, np.zeros((height, width), np.uint8)])
        picture[height // 4 : height // 2, width // 4 : width // 2, 3] = 255
    try:
        layout = given_layout(raw, width, height, "f.json")
    except UserError as error:
        assert str(error).splitlines() == [str(error)] and "f.json" in str(error)
        return
    made = make_portrait(picture, layout, framing=framing)
    assert made.rgba.shape[0] >= 1 and made.rgba.shape[1] >= 1
    Face.from_dict({**made.layout, "colors": {}})
