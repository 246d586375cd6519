"""`acgmake faces` on pictures drawn here: drawn characters, turned, two in one picture, none."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
from acgmake_faces import aligned_crop, find
from PIL import Image

from acgmake.models.drawn import BACKGROUND, draw_character
from acgmake.models.facefind import find_faces
from acgmake.testing import run_command

PAPER = (248, 246, 240)


def drawn(index: int, size: int) -> np.ndarray:
    drawing = draw_character(905, index, size, labels=True)
    picture = np.asarray(drawing.image).copy()
    picture[drawing.labels == BACKGROUND] = PAPER
    return picture


def faces(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_command("faces", *args, plugins=["acgmake-faces"], cwd=cwd, timeout_s=300)


def test_two_characters_give_two_crops_largest_first(tmp_path):
    page = np.empty((520, 900, 3), np.uint8)
    page[:] = PAPER
    page[10:490, 20:500] = drawn(1, 480)
    page[160:480, 560:880] = drawn(2, 320)
    Image.fromarray(page).save(tmp_path / "group.png")
    result = faces("group.png", "--size", "128", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "group.faces" / "faces.json").read_text())
    assert [face["crop"] for face in report["faces"]] == ["face-1.png", "face-2.png"]
    first, second = report["faces"]
    assert first["box"][0] < 500 < second["box"][0]  # the larger, left one first
    for face in report["faces"]:
        with Image.open(tmp_path / "group.faces" / face["crop"]) as crop:
            assert crop.size == (128, 128)
    # Run again: the folder it made is replaced, not added to.
    assert faces("group.png", cwd=tmp_path).returncode == 0


def test_a_turned_face_is_turned_back_in_its_crop():
    picture = drawn(3, 512)
    turned = cv2.warpAffine(
        picture, cv2.getRotationMatrix2D((256, 256), 20, 1.0), (512, 512),
        borderValue=PAPER,
    )  # fmt: skip
    found = find_faces(turned)
    assert found
    crop, turn = aligned_crop(turned, found[0], 256)
    assert abs(abs(turn) - 20) < 6
    again = find_faces(crop, second_opinion=False)
    assert again
    (lx, ly), (rx, ry) = (((e[0] + e[2]) / 2, (e[1] + e[3]) / 2) for e in again[0].eyes)
    assert abs(ry - ly) < 0.03  # level in the crop
    assert abs((again[0].box[0] + again[0].box[2]) / 2 - 0.5) < 0.08  # and in its middle


def test_the_records_are_in_pixels_of_the_picture():
    picture = drawn(4, 384)
    (record,) = find(picture)[:1]
    x0, y0, x1, y1 = record["box"]
    assert 0 <= x0 < x1 <= 384 and 0 <= y0 < y1 <= 384 and x1 - x0 > 100
    assert record["found_by"] == "acgmake" and 0.8 <= record["score"] <= 1  # sure of it


def test_no_face_is_one_clear_line_and_writes_nothing(tmp_path):
    Image.new("RGB", (300, 300), PAPER).save(tmp_path / "empty.png")
    result = faces("empty.png", cwd=tmp_path)
    assert result.returncode != 0 and "no face found in empty.png" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "empty.faces").exists()


def test_a_folder_that_is_not_its_own_is_never_replaced(tmp_path):
    Image.fromarray(drawn(5, 256)).save(tmp_path / "me.png")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    result = faces("me.png", "-o", "mine", cwd=tmp_path)
    assert result.returncode != 0 and "not a faces folder" in result.stderr
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
