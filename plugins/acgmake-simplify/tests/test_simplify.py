"""The simplifier on rough sketches it never saw in training, its stage and its command."""

from __future__ import annotations

import json
import subprocess

import cv2
import numpy as np
import pytest
from acgmake_simplify import simplify_picture
from acgmake_simplify.roughen import pair
from acgmake_simplify.score import line_scores
from PIL import Image

from acgmake import UserError
from acgmake.pipeline import plan
from acgmake.testing import plugins_loaded, run_command, run_stage

#: Training drew seed 11, the trainer checked itself on seed 12 and the report uses seed 14.
HELD_OUT_SEED = 13
#: What the simplified lines must reach on the held-out roughs below, on their centre lines
#: (the network measured precision 0.77 and recall 0.73 there; Otsu's threshold of the rough
#: 0.64 and 0.80: it keeps every doubled stroke and smudge, so its precision fails).
MIN_PRECISION, MIN_RECALL = 0.72, 0.68


def _scores(drawn_pages) -> tuple[float, float]:
    scores = [line_scores(drawn, clean > 127) for drawn, clean in drawn_pages]
    return float(np.mean([s[0] for s in scores])), float(np.mean([s[1] for s in scores]))


@pytest.fixture(scope="module")
def held_out():
    return [pair(HELD_OUT_SEED, index, 384) for index in range(4)]


def test_held_out_roughs_come_out_as_their_clean_lines_where_a_threshold_does_not(held_out):
    precision, recall = _scores((simplify_picture(r) < 128, c) for r, c in held_out)
    assert precision >= MIN_PRECISION and recall >= MIN_RECALL, (precision, recall)

    def otsu(rough):
        _, ink = cv2.threshold(rough, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
        return ink > 0

    base_precision, base_recall = _scores((otsu(r), c) for r, c in held_out)
    assert base_precision < MIN_PRECISION or base_recall < MIN_RECALL
    assert 2 * precision * recall / (precision + recall) > (
        2 * base_precision * base_recall / (base_precision + base_recall) + 0.03
    )


def test_the_lines_are_dark_on_white_at_the_sketchs_own_size(held_out):
    rough = np.asarray(Image.fromarray(held_out[0][0]).resize((301, 257)))
    clean = simplify_picture(rough)
    assert clean.shape == (257, 301) and clean.dtype == np.uint8
    assert np.mean(clean > 250) > 0.7 and np.mean(clean < 5) > 0.02  # paper and ink
    small = simplify_picture(rough, size_px=128, keep_size=False)
    assert max(small.shape) == 128


def test_grey_and_transparent_sketches_work(held_out, tmp_path):
    rough, clean = held_out[1]
    # Lines on a transparent layer, as digital drawings often are: graphite as opacity.
    layer = np.zeros((*rough.shape, 4), np.uint8)
    layer[..., 3] = 255 - rough
    from_layer = simplify_picture(layer) < 128
    from_grey = simplify_picture(rough) < 128
    assert from_layer.shape == rough.shape
    # On white, the layer is the grey picture: the same lines come out of both.
    assert np.mean(from_layer == from_grey) > 0.995
    precision, recall = line_scores(from_layer, clean > 127)
    assert precision >= MIN_PRECISION - 0.1 and recall >= MIN_RECALL - 0.1, (precision, recall)
    grey_file, layer_file = tmp_path / "grey.png", tmp_path / "layer.png"
    Image.fromarray(rough).save(grey_file)  # mode L
    Image.fromarray(layer).save(layer_file)
    for given in (grey_file, layer_file):
        made = run_stage("simplify", {"character": given}, plugins=["acgmake_simplify"],
                         workdir=tmp_path / given.stem)  # fmt: skip
        with Image.open(made["character"]) as picture:
            assert picture.size == (rough.shape[1], rough.shape[0])
    with Image.open(made["character"]) as picture:
        assert np.array_equal(np.asarray(picture.convert("L")) < 128, from_layer)
    assert from_grey.any()


def test_a_file_that_is_not_a_picture_is_one_clear_error(tmp_path):
    bad = tmp_path / "rough.png"
    bad.write_text("not a picture", encoding="utf-8")
    with pytest.raises(UserError) as caught:
        run_stage("simplify", {"character": bad}, plugins=["acgmake_simplify"],
                  workdir=tmp_path / "run")  # fmt: skip
    message = str(caught.value)
    assert "\n" not in message and "not an image" in message and "PNG or JPEG" in message


def test_the_stage_is_optional_and_refines_the_character_after_upscale():
    # Refiners of one kind run in the order their plugins load: the built-ins first, as on the
    # command line and in acgmake.testing.
    with plugins_loaded("acgmake_simplify") as registry:
        stage = registry.stage("simplify")
        assert stage.optional and stage.needs == stage.makes == ("character",)
        assert "simplify" not in [s.name for s in plan(registry, ["colored"], [])]
        order = [s.name for s in plan(registry, ["colored"], [], also=["simplify"])]
    assert order.index("upscale") < order.index("simplify") < order.index("colorize")


def test_the_command_writes_clean_lines_and_never_its_input(held_out, tmp_path):
    rough_file, clean_file = tmp_path / "rough.png", tmp_path / "clean.png"
    Image.fromarray(held_out[2][0]).save(rough_file)
    before = rough_file.read_bytes()
    ran = _acgmake("simplify", str(rough_file), "-o", str(clean_file))
    assert ran.returncode == 0, ran.stderr
    with Image.open(clean_file) as picture:
        assert picture.size == Image.open(rough_file).size
    refused = _acgmake("simplify", str(rough_file), "-o", str(rough_file))
    assert refused.returncode != 0 and "replace" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert rough_file.read_bytes() == before


@pytest.mark.slow
def test_a_rough_sketch_of_ones_own_sings_cleaned_and_coloured(held_out, tmp_path):
    # The user's rough sketch is the character: its face is found on the rough, the simplify
    # stage cleans it after upscale, and colorize colours the clean lines (PNG text
    # acgmake:line-art) with the seed's palette at the face found.
    Image.fromarray(held_out[0][0]).save(tmp_path / "sketch.png")
    (tmp_path / "spring.txt").write_text("はるの かぜ\n", encoding="utf-8")
    ran = _acgmake("song", "spring.txt", "--character", "sketch.png", "--also", "simplify",
                   "--size", "320x180", "--fps", "12", "--seed", "3", cwd=tmp_path)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    run = tmp_path / "spring.acgmake"
    order = json.loads((run / "manifest.json").read_text("utf-8"))["order"]
    assert order.index("upscale") < order.index("simplify") < order.index("colorize")
    with Image.open(run / "character.png") as picture:
        lines = np.asarray(picture.convert("L"))
    assert np.mean(lines > 250) > 0.5 and np.mean(lines < 5) > 0.01  # line art
    with Image.open(run / "colored.png") as picture:
        colored = np.asarray(picture.convert("RGBA")).astype(int)
    shown = colored[..., 3] > 128
    chroma = colored[..., :3].max(axis=2) - colored[..., :3].min(axis=2)
    assert np.mean(chroma[shown] > 40) > 0.2  # colorize filled the clean lines with colour
    assert (tmp_path / "spring.mp4").stat().st_size > 0


def _acgmake(*arguments: str, cwd=None) -> subprocess.CompletedProcess:
    """The command line as a user runs it, in a process of its own."""
    return run_command(*arguments, plugins=["acgmake-simplify"], cwd=cwd)
