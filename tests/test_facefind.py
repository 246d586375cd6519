"""The face finder: held-out drawn characters at several sizes, several faces, no face,
transparent, grey and flipped pictures, determinism and bounded time on huge pictures."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from acgmake.models import drawn
from acgmake.models.facefind import (
    FoundFace,
    animeface_faces,
    box_iou,
    find_faces,
    load_detector,
    shipped_detector,
)
from acgmake.models.facefind_train import CHIN, HELDOUT_SEED, drawn_points

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _center(box) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def _held_out(index: int, size: int):
    """A drawn character training never saw, its label map and its truth (normalised)."""
    drawing = drawn.draw_character(HELDOUT_SEED, index, size, labels=True)
    truth = dict(drawing.attributes)
    truth["chin"] = drawn_points(HELDOUT_SEED, index, drawing.attributes)[CHIN].tolist()
    return np.asarray(drawing.image), drawing.labels, truth


def _check_face(face: FoundFace, truth: dict, tolerance: float = 0.1) -> None:
    """Face box IoU >= 0.5; eyes, mouth and chin within ``tolerance`` of the face's width."""
    assert box_iou(face.box, truth["face"]) >= 0.5, (face.box, truth["face"])
    width = truth["face"][2] - truth["face"][0]
    for found, true in zip(face.eyes, truth["eyes"], strict=True):
        assert np.linalg.norm(_center(found) - _center(true)) < tolerance * width
    assert np.linalg.norm(_center(face.mouth) - _center(truth["mouth_box"])) < tolerance * width
    assert np.linalg.norm(np.array(face.chin) - truth["chin"]) < 1.5 * tolerance * width


def test_shipped_weights_are_small_safetensors():
    path = shipped_detector()
    assert path.suffix == ".safetensors" and path.stat().st_size < 3_000_000


@pytest.mark.parametrize("size", [256, 512, 1024])
def test_held_out_character_is_found_at_every_size(size):
    image, _, truth = _held_out(3, size)
    faces = find_faces(image)
    assert len(faces) == 1
    _check_face(faces[0], truth)
    # Sure of it (0.94 measured at each size), not just past find_faces' own 0.5 cut.
    assert faces[0].source == "acgmake" and 0.8 <= faces[0].score <= 1


def test_several_held_out_characters_at_256_px():
    hits = 0
    for index in range(10, 22):
        image, _, truth = _held_out(index, 256)
        faces = find_faces(image, second_opinion=False)
        if len(faces) == 1:
            try:
                _check_face(faces[0], truth)
                hits += 1
            except AssertionError:
                pass
    assert hits >= 11


def _cut_out(index: int, size: int) -> tuple[np.ndarray, dict]:
    """A held-out character as RGBA (background transparent), with its truth."""
    image, labels, truth = _held_out(index, size)
    alpha = np.where(labels == drawn.BACKGROUND, 0, 255).astype(np.uint8)
    return np.dstack([image, alpha]), truth


def _paste(canvas: np.ndarray, rgba: np.ndarray, x: int, y: int) -> None:
    height, width = rgba.shape[:2]
    region = canvas[y : y + height, x : x + width].astype(np.float32)
    alpha = rgba[..., 3:4].astype(np.float32) / 255
    canvas[y : y + height, x : x + width] = np.round(
        rgba[..., :3] * alpha + region * (1 - alpha)
    ).astype(np.uint8)


def test_two_characters_give_two_faces_largest_first():
    canvas = np.full((420, 700, 3), (200, 225, 240), np.uint8)
    big, big_truth = _cut_out(30, 380)
    small, small_truth = _cut_out(31, 240)
    _paste(canvas, big, 20, 20)
    _paste(canvas, small, 430, 150)
    faces = find_faces(canvas)
    assert len(faces) == 2
    first = [v * 380 / s for v, s in zip(big_truth["face"], (700, 420, 700, 420), strict=True)]
    first = [first[0] + 20 / 700, first[1] + 20 / 420, first[2] + 20 / 700, first[3] + 20 / 420]
    assert box_iou(faces[0].box, first) >= 0.5
    assert faces[1].box[0] > 0.6  # the small one, on the right
    area = [(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in faces]
    assert area[0] > area[1]


@pytest.mark.parametrize("kind", ["flat", "noise", "stripes"])
def test_pictures_without_a_face_give_none(kind):
    rng = np.random.default_rng(5)
    if kind == "flat":
        picture = np.full((600, 800, 3), (240, 200, 210), np.uint8)
    elif kind == "noise":
        picture = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    else:
        picture = np.zeros((512, 512, 3), np.uint8)
        picture[(np.arange(512) // 16) % 2 == 0] = (40, 80, 200)
    assert find_faces(picture) == []


def test_transparent_picture_is_read_over_white():
    rgba, truth = _cut_out(4, 512)
    rgba[rgba[..., 3] == 0, :3] = 0  # what is under transparent pixels must not matter
    faces = find_faces(rgba)
    assert len(faces) == 1
    _check_face(faces[0], truth)


def test_grey_picture_works():
    image, _, truth = _held_out(5, 512)
    grey = np.asarray(Image.fromarray(image).convert("L"))
    assert grey.ndim == 2
    faces = find_faces(grey)
    assert len(faces) == 1
    _check_face(faces[0], truth)


def test_flipped_picture_swaps_the_eyes():
    image, _, truth = _held_out(6, 512)

    def mirror(box):
        return [1 - box[2], box[1], 1 - box[0], box[3]]

    mirrored = {"face": mirror(truth["face"]), "mouth_box": mirror(truth["mouth_box"])}
    left, right = (mirror(box) for box in truth["eyes"])
    mirrored["eyes"] = [right, left]  # the right eye is now on the picture's left
    mirrored["chin"] = [1 - truth["chin"][0], truth["chin"][1]]
    faces = find_faces(np.ascontiguousarray(image[:, ::-1]))
    assert len(faces) == 1
    _check_face(faces[0], mirrored)
    assert faces[0].eyes[0][0] < faces[0].eyes[1][0]


def test_same_picture_same_faces_even_after_reloading():
    image, _, _ = _held_out(7, 400)
    first = find_faces(image)
    load_detector.cache_clear()
    assert find_faces(image) == first
    assert find_faces(image.copy()) == first


def test_1024_px_picture_is_fast():
    image, _, _ = _held_out(8, 256)
    big = np.asarray(Image.fromarray(image).resize((1024, 1024), Image.Resampling.BICUBIC))
    find_faces(big)  # load the model first
    started = time.perf_counter()
    find_faces(big)
    assert time.perf_counter() - started < 2.0


def test_huge_picture_is_downscaled_and_stays_fast():
    huge = np.full((6000, 6000, 3), 235, np.uint8)
    find_faces(huge[:100, :100])  # load the model first
    started = time.perf_counter()
    assert find_faces(huge) == []
    assert time.perf_counter() - started < 5.0


def test_odd_pictures_are_user_errors_or_empty():
    from acgmake.errors import UserError

    assert find_faces(np.zeros((4, 4, 3), np.uint8)) == []
    with pytest.raises(UserError):
        find_faces(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(UserError):
        find_faces(np.zeros((64, 64, 2), np.uint8))


def test_animeface_is_optional(monkeypatch):
    image, _, _ = _held_out(3, 256)
    with_it = find_faces(image)
    monkeypatch.setitem(sys.modules, "animeface", None)  # import animeface now fails
    assert animeface_faces(image) == []
    assert find_faces(image) == [f for f in with_it if f.source == "acgmake"]


def test_importing_does_not_load_the_model():
    code = (
        "import acgmake.models.facefind as f; "
        "assert f.load_detector.cache_info().currsize == 0; print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "ok", result.stderr


def _fake_animeface(boxes: list[tuple[int, int, int]]):
    """A stand-in ``animeface`` module that 'finds' square faces (x, y, side in pixels);
    its left_eye is on the picture's right, as AnimeFace names them."""
    from types import ModuleType, SimpleNamespace

    def part(x, y, w, h):
        return SimpleNamespace(pos=SimpleNamespace(x=x, y=y, width=w, height=h))

    def face(x, y, s):
        return SimpleNamespace(
            likelihood=0.9,
            face=part(x, y, s, s),
            left_eye=part(x + 0.6 * s, y + 0.4 * s, 0.25 * s, 0.2 * s),
            right_eye=part(x + 0.15 * s, y + 0.4 * s, 0.25 * s, 0.2 * s),
            mouth=part(x + 0.4 * s, y + 0.75 * s, 0.2 * s, 0.1 * s),
            chin=SimpleNamespace(pos=SimpleNamespace(x=x + 0.5 * s, y=y + s)),
        )

    module = ModuleType("animeface")
    module.detect = lambda image: [face(*box) for box in boxes]
    return module


def test_second_opinion_adds_only_faces_we_missed(monkeypatch):
    image, _, truth = _held_out(3, 256)
    ours = find_faces(image, second_opinion=False)
    x0, y0, x1, y1 = (round(v * 256) for v in truth["face"])
    fake = _fake_animeface([(x0, y0, x1 - x0), (2, 2, 40)])  # one on our face, one new
    monkeypatch.setitem(sys.modules, "animeface", fake)
    faces = find_faces(image)
    assert faces[: len(ours)] == ours
    extra = faces[len(ours) :]
    assert len(extra) == 1 and extra[0].source == "animeface" and extra[0].score == 0.5
    assert extra[0].box == pytest.approx((2 / 256, 2 / 256, 42 / 256, 42 / 256))
    assert extra[0].eyes[0][0] < extra[0].eyes[1][0]  # the picture's left eye first
    assert find_faces(image, min_score=0.6) == ours
    assert find_faces(image, second_opinion=False) == ours
