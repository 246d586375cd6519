"""The expressions of one character come out in the same colours (no flicker when animated)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from acgmake.image.colorize import colorize_layers, parse_palette
from acgmake.image.expressions import colorize_expressions
from acgmake.image.face import EXPRESSIONS, Face
from acgmake.image.fidelity import delta_e, mean_delta_e
from acgmake.models.character import face_info
from acgmake.models.colorizer_train import draw_expressions
from handmade_inputs import load_stages

PALETTE = parse_palette("hair=#8fd3ff,eyes=#3a6,skin=#ffe0cc,clothes=#445")


@pytest.fixture(scope="module")
def pictures():
    # Drawn character 3 of a set the colorizer never trained on, in its seven expressions.
    return draw_expressions(99, 3, 128)


@pytest.fixture(scope="module")
def face(pictures):
    return Face.from_dict(face_info(pictures[0]))


def outside_mouth_and_eyes(face: Face, height: int, width: int) -> np.ndarray:
    keep = np.ones((height, width), bool)
    for box in (face.mouth, *face.eyes):
        x0, y0, x1, y1 = Face.pixel_box(box, width, height)
        pad_x, pad_y = (x1 - x0) // 5 + 2, (y1 - y0) // 5 + 2
        keep[max(y0 - pad_y, 0) : y1 + pad_y, max(x0 - pad_x, 0) : x1 + pad_x] = False
    return keep


def region_colour(colored: np.ndarray, face: Face, region: str) -> np.ndarray:
    height, width = colored.shape[:2]
    x, y = Face.pixel_point(face.points[region][0], width, height)
    return np.median(colored[y - 4 : y + 5, x - 4 : x + 5, :3].reshape(-1, 3), axis=0)


@pytest.mark.parametrize("method", ["flat", "neural"])
def test_expressions_keep_the_colours_of_the_rest_expression(pictures, face, method):
    colored = colorize_expressions(pictures, face=face, palette=PALETTE, method=method)
    assert len(colored) == len(EXPRESSIONS)
    rest = colored[0]
    assert all(c.shape == rest.shape == (512, 512, 4) for c in colored)
    keep = outside_mouth_and_eyes(face, 512, 512)
    for name, variant in zip(EXPRESSIONS[1:], colored[1:], strict=True):
        # Outside the mouth and the eyes, nothing changes at all.
        assert mean_delta_e(variant, rest, keep) < 0.05, name
        assert np.abs(variant[..., 3].astype(int) - rest[..., 3])[keep].max() <= 1, name
        for region in ("hair", "skin", "clothes"):
            same = region_colour(variant, face, region), region_colour(rest, face, region)
            patches = np.array(same, np.uint8)[None]
            assert delta_e(patches[:, :1], patches[:, 1:]).max() < 1.0, (name, region)
    # The variants are really drawn: the open mouth and the blink differ from the rest.
    x0, y0, x1, y1 = Face.pixel_box(face.mouth, 512, 512)
    mouth = (slice(y0, y1), slice(x0, x1))
    a = colored[EXPRESSIONS.index("a")]
    assert mean_delta_e(a[mouth], rest[mouth]) > 5
    blink = colored[EXPRESSIONS.index("blink")]
    x0, y0, x1, y1 = Face.pixel_box(face.eyes[0], 512, 512)
    eye = (slice(y0, y1), slice(x0, x1))
    assert mean_delta_e(blink[eye], rest[eye]) > 5
    # The closed eye is skin and lid, not the eye colour spilt over the cheek.
    eye_colour = np.array(PALETTE["eyes"])
    near_eye_colour = np.abs(blink[eye][..., :3].astype(int) - eye_colour).max(axis=2) < 30
    assert near_eye_colour.mean() < 0.02


def test_a_closed_eye_does_not_take_the_eye_colour(pictures, face):
    # The blink's eye hints fall on the closed lids: the strip must not paint the eye colour
    # there.
    alone = colorize_layers(pictures[-1], face=face, palette=PALETTE, method="flat").composite()
    strip = colorize_expressions(
        [pictures[0], pictures[-1]], face=face, palette=PALETTE, method="flat"
    )
    height, width = alone.shape[:2]
    x0, y0, x1, y1 = Face.pixel_box(face.eyes[0], width, height)
    eye = (slice(y0, y1), slice(x0, x1))
    eye_colour = np.array(PALETTE["eyes"])

    def eye_coloured(picture):
        return (np.abs(picture[eye][..., :3].astype(int) - eye_colour).max(axis=2) < 30).mean()

    assert eye_coloured(strip[0]) > 0.03  # the open eye does
    assert eye_coloured(strip[1]) < 0.002
    # Coloured alone, the blink can take a little (the reason the strip is coloured together).
    assert eye_coloured(strip[1]) <= eye_coloured(alone)


def test_the_stage_writes_the_strip_in_the_colours_of_colored_png(tmp_path, pictures):
    from acgmake.pipeline import run

    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(np.hstack(pictures)).save(folder / "expressions.png")
    Image.fromarray(pictures[0]).save(folder / "character.png")
    (folder / "face.json").write_text(json.dumps(face_info(pictures[0])), encoding="utf-8")
    result = run(
        load_stages("acgmake.stages.colorize"),
        tmp_path / "run",
        ["colored", "colored_expressions"],
        inputs={
            "character": folder / "character.png",
            "expressions": folder / "expressions.png",
            "face": folder / "face.json",
        },
        params={"colorize": {"palette": "sakura", "method": "flat"}},
        seed=5,
    )
    with Image.open(result.files["colored_expressions"]) as image:
        assert image.mode == "RGBA" and image.size == (7 * 512, 512)
        strip = np.asarray(image)
    with Image.open(result.files["colored"]) as image:
        colored = np.asarray(image)
    assert np.array_equal(strip[:, :512], colored)


def test_a_large_picture_is_coloured_in_crops_as_it_would_be_whole():
    """At the colorizer's size each expression is worked on in a crop around what changed
    (a tenth of the picture); the crop must reach as far as every step looks, so the result
    is the whole picture's, pixel for pixel."""
    from acgmake.image.expressions import _colorize_part

    pictures = draw_expressions(99, 3, 512)
    face = Face.from_dict(face_info(pictures[0]))
    rest = colorize_layers(pictures[0], face=face, palette=PALETTE, method="flat").composite()
    reference = (pictures[0], rest)
    cropped = colorize_expressions(pictures, reference=reference)
    for index, picture in enumerate(pictures):
        whole = _colorize_part(
            np.ascontiguousarray(picture[..., :3]),
            np.ascontiguousarray(pictures[0][..., :3]),
            rest,
            size_px=512,
            scale=1.0,
            origin=(0, 0),
            feather_px=2.0,
        )
        assert np.array_equal(cropped[index], whole), EXPRESSIONS[index]
    # and the crops are crops: the mouth frames leave most of the picture untouched
    changed = np.any(cropped[EXPRESSIONS.index("a")] != rest, axis=2)
    assert 0 < changed.mean() < 0.1
