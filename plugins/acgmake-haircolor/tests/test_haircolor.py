"""The haircolor stage on a character drawn here: the hair takes the colour, keeps its
shading, and nothing else changes."""

from __future__ import annotations

import numpy as np
import pytest
from acgmake_haircolor import COLOURS
from PIL import Image
from skimage.color import deltaE_ciede2000, rgb2lab

from acgmake import UserError
from acgmake.image.openraster import read_ora, write_ora
from acgmake.pipeline import plan
from acgmake.testing import plugins_loaded, run_stage


@pytest.fixture
def character(tmp_path):
    """colored.png and colored.ora: shaded orange hair (a gradient, with a dark outline and a
    stray dot the colorizer called hair) over a skin-coloured face, on transparency."""
    size = 96
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[40:90, 25:71] = (246, 222, 206, 255)  # the face
    hair = np.zeros((size, size), bool)
    hair[10:45, 15:81] = True
    shade = np.linspace(0.7, 1.1, size)[:, None]
    rgba[hair, :3] = np.clip(np.array([230, 150, 60]) * shade, 0, 255)[np.nonzero(hair)[0]]
    rgba[hair, 3] = 255
    rgba[10:45, 15:17, :3] = (30, 20, 20)  # the outline on its left edge
    rgba[70, 30] = (240, 160, 150, 255)  # a blush pixel the colorizer took for hair
    hair_layer = np.zeros_like(rgba)
    hair_layer[hair] = rgba[hair]
    hair_layer[70, 30] = rgba[70, 30]
    colored = tmp_path / "colored.png"
    Image.fromarray(rgba).save(colored)
    layers = tmp_path / "colored.ora"
    write_ora(layers, [("hair", hair_layer), ("character", rgba)], rgba)
    return colored, layers, rgba, hair


def _recoloured(character, tmp_path, hair):
    colored, layers, *_ = character
    made = run_stage("haircolor", {"colored": colored, "layers": layers}, {"hair": hair},
                     plugins=["acgmake_haircolor"], workdir=tmp_path / f"run-{hair}")  # fmt: skip
    return made, np.asarray(Image.open(made["colored"]).convert("RGBA"))


@pytest.mark.parametrize("name", ["silver", "pink", "navy", "black"])
def test_the_hair_takes_the_colour_keeps_its_shading_and_nothing_else_changes(
    character, tmp_path, name
):
    _, _, before, hair = character
    made, after = _recoloured(character, tmp_path, name)
    body = hair.copy()
    body[:, 15:17] = False  # the outline
    lab_before, lab_after = rgb2lab(before[..., :3] / 255.0), rgb2lab(after[..., :3] / 255.0)
    want = rgb2lab(np.array([[COLOURS[name]]]) / 255.0)[0, 0]
    mean = lab_after[body].mean(axis=0)
    assert deltaE_ciede2000(mean[None], want[None])[0] < 2.0
    # The shading runs as before: lightness in the same order down the hair.
    assert np.corrcoef(lab_before[..., 0][body], lab_after[..., 0][body])[0, 1] > 0.9
    # Outside the hair, the outline and the stray dot: untouched.
    untouched = ~hair
    untouched[10:45, 15:17] = True
    assert np.array_equal(after[untouched], before[untouched])
    # The layers follow: the hair layer of colored.ora is recoloured too.
    layers, _ = read_ora(made["layers"])
    assert np.array_equal(dict(layers)["hair"][body][:, :3], after[body][:, :3])


def test_no_colour_asked_passes_the_pictures_through(character, tmp_path):
    colored, *_ = character
    made, after = _recoloured(character, tmp_path, "")
    assert made["colored"].read_bytes() == colored.read_bytes()


def test_an_unknown_colour_is_one_clear_error(character, tmp_path):
    with pytest.raises(UserError, match="not a hair colour; give one of black"):
        _recoloured(character, tmp_path, "sky")
    assert _recoloured(character, tmp_path, "#3366ff")[1].shape == (96, 96, 4)


def test_the_stage_recolours_before_the_expressions_take_their_colours():
    with plugins_loaded("acgmake_haircolor") as registry:
        order = [stage.name for stage in plan(registry, ["clip"], ["lyrics"])]
    assert order.index("colorize") < order.index("haircolor") < order.index("colorize_expressions")
