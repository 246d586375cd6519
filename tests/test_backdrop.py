"""The clip's background from the user's picture: reading it safely, cropping, the looks."""

from __future__ import annotations

import json
import time

import cv2
import numpy as np
import pytest
from PIL import Image

from acgmake.errors import UserError
from acgmake.video import backdrop
from acgmake.video.backdrop import cartoon, cover, read_background
from handmade_inputs import load_stages, write_colored, write_song

#: The rectangles of :func:`street` as (x0, y0, x1, y1) fractions of its size.
HOUSES = [(0.08, 0.35, 0.3, 0.8), (0.38, 0.22, 0.6, 0.8), (0.7, 0.45, 0.92, 0.8)]


def street(width: int = 480, height: int = 270, seed: int = 0) -> np.ndarray:
    """A photo-like street: a sky gradient, houses of one colour each with lit windows, a
    road, a soft blur and camera noise (thousands of colours, no flat areas)."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    picture = (1 - t) * np.float32([70, 130, 220]) + t * np.float32([210, 225, 245])
    picture = np.broadcast_to(picture, (height, width, 3)).copy()
    picture[round(height * 0.8) :] = (95, 95, 100)
    for (x0, y0, x1, y1), colour in zip(
        HOUSES, [(200, 60, 80), (230, 180, 60), (60, 150, 90)], strict=True
    ):
        box = round(x0 * width), round(y0 * height), round(x1 * width), round(y1 * height)
        cv2.rectangle(picture, box[:2], (box[2] - 1, box[3] - 1), colour, cv2.FILLED)
        step = max(6, width // 40)
        for wx in range(box[0] + step, box[2] - step, 2 * step):
            for wy in range(box[1] + step, box[3] - 2 * step, 2 * step):
                cv2.rectangle(
                    picture, (wx, wy), (wx + step - 1, wy + step - 1), (250, 235, 170), -1
                )
    picture = cv2.GaussianBlur(picture, (0, 0), 0.8)
    picture += rng.normal(0, 8, picture.shape)
    return np.clip(picture + 0.5, 0, 255).astype(np.uint8)


def test_the_cartoon_look_has_few_flat_colours_and_ink_outlines():
    photo = street()
    drawn = cartoon(photo)
    assert drawn.shape == photo.shape and drawn.dtype == np.uint8
    assert len(np.unique(photo.reshape(-1, 3), axis=0)) > 5000
    # Most pixels lie in flat areas (the colour of their neighbours right and below), and
    # those areas have a dozen colours at most.
    corner = drawn[:-1, :-1]
    flat = np.all(corner == drawn[1:, :-1], axis=2) & np.all(corner == drawn[:-1, 1:], axis=2)
    assert flat.mean() > 0.75
    _, counts = np.unique(corner[flat], axis=0, return_counts=True)
    assert (counts >= 0.002 * flat.size).sum() <= 12
    # Dark ink along the houses' outlines; none in the sky's smooth gradient.
    grey = cv2.cvtColor(drawn, cv2.COLOR_RGB2GRAY).astype(int)
    height, width = grey.shape
    for x0, y0, x1, y1 in HOUSES:
        left, top, bottom = round(x0 * width), round(y0 * height), round(y1 * height)
        side = grey[top + 10 : bottom - 10, left - 2 : left + 2].min(axis=1)
        assert np.mean(side < 70) > 0.8  # the left wall's edge, nearly all its length
        roof = grey[top - 2 : top + 2, round(x0 * width) + 10 : round(x1 * width) - 10]
        assert np.mean(roof.min(axis=0) < 70) > 0.8
    sky = grey[5:40, 5 : width - 5]
    assert np.mean(sky < 70) < 0.01


def test_the_cartoon_look_of_a_1080p_photo_takes_well_under_two_seconds():
    photo = street(1920, 1080)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # one core, as the animate stage runs it
    try:
        started = time.perf_counter()
        drawn = cartoon(photo)
        seconds = time.perf_counter() - started
    finally:
        cv2.setNumThreads(threads)
    assert drawn.shape == photo.shape
    assert seconds < 2.0


def test_a_picture_covers_the_frame_cropped_about_its_middle():
    tall = np.zeros((400, 100, 3), np.uint8)
    tall[190:210] = 255  # a white band across the middle
    wide = cover(tall, 320, 180)
    assert wide.shape == (180, 320, 3)
    # Scaled 3.2x to cover the width; the middle 56 rows of the picture fill the height.
    assert wide[90].min() > 200 and wide[0].max() < 30 and wide[-1].max() < 30
    assert cover(np.zeros((1080, 1920, 3), np.uint8), 1280, 720).shape == (720, 1280, 3)


@pytest.mark.parametrize("style", backdrop.STYLES)
def test_each_look_keeps_the_frame_size_and_a_transparent_picture_shows_the_sky(style):
    sky = np.full((90, 160, 3), (200, 210, 255), np.uint8)
    picture = np.zeros((100, 100, 4), np.uint8)
    picture[:, :50] = (200, 40, 40, 255)  # the right half transparent
    made = backdrop.backdrop(picture, style=style, under=sky)
    assert made.shape == sky.shape and made.dtype == np.uint8
    assert np.abs(made[45, 150].astype(int) - sky[45, 150]).max() <= 2
    assert made[45, 10, 0] > made[45, 10, 2] + 60  # the red half, red in every look


def test_pictures_are_read_upright_and_bad_ones_refused_in_one_line(tmp_path, monkeypatch):
    path = tmp_path / "street.jpg"
    Image.fromarray(street()).save(path, quality=90)
    assert read_background(path).shape == (270, 480, 3)
    # A phone photo taken on its side is turned upright by its EXIF orientation.
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90° clockwise
    Image.fromarray(street()).save(tmp_path / "side.jpg", exif=exif)
    assert read_background(tmp_path / "side.jpg").shape == (480, 270, 3)
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(UserError, match="not a picture acgmake can read"):
        read_background(tmp_path / "notes.png")
    Image.fromarray(street()).save(tmp_path / "street.gif")
    with pytest.raises(UserError, match="give a PNG, JPEG or WebP"):
        read_background(tmp_path / "street.gif")
    with pytest.raises(UserError, match="does not exist"):
        read_background(tmp_path / "missing.png")
    monkeypatch.setattr(backdrop, "MAX_BACKGROUND_PIXELS", 100_000)
    with pytest.raises(UserError, match=r"480x270 pixels .* at most 0 megapixels"):
        read_background(path)
    monkeypatch.setattr(backdrop, "MAX_BACKGROUND_BYTES", 1000)
    with pytest.raises(UserError, match="can be at most 0 MB"):
        read_background(path)


def test_animate_draws_the_background_picture_and_redraws_when_it_changes(tmp_path):
    from acgmake.pipeline import Reporter, run
    from acgmake.video.encode import read_media_info

    inputs = {**write_colored(tmp_path / "in"), **write_song(tmp_path / "in", duration_s=1.0)}
    picture = tmp_path / "street.png"
    Image.fromarray(street()).save(picture)
    params = {
        "animate": {
            "size": "160x90",
            "fps": 8,
            "end_card": 0.0,
            "background": str(picture),
            "background_style": "cartoon",
        }
    }
    registry = load_stages("acgmake.stages.compose", "acgmake.stages.animate")

    def make():
        return run(registry, tmp_path / "run", ["clip"], inputs=inputs, params=params,
                   reporter=Reporter())  # fmt: skip

    first = make()
    assert read_media_info(first.files["clip"]).width == 160
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assets = manifest["stages"]["animate"]["assets"]
    assert any(asset["name"] == "background street.png" for asset in assets)
    assert make().cached == ["animate"]
    Image.fromarray(street(seed=1)).save(picture)  # the same path, another picture
    assert make().cached == []
    params["animate"]["background"] = str(tmp_path / "nothing.png")
    with pytest.raises(UserError, match="does not exist"):
        make()
