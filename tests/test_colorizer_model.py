"""The hint colorizer network: the shipped weights, its inputs, and its trainer end to end."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from acgmake.models.colorizer import (
    SHIPPED,
    colorizer_metadata,
    hints_for_net,
    ink_for_net,
    load_colorizer,
    net_shape,
    predict,
)
from acgmake.models.colorizer_train import LINE_LABEL, draw_example, main, sample_hints


def test_the_shipped_weights_are_small_and_say_how_to_reproduce_them():
    assert SHIPPED.is_file()
    assert SHIPPED.stat().st_size < 5_000_000
    metadata = colorizer_metadata()
    assert metadata["reproduce"].startswith("python -m acgmake.models.colorizer_train")
    model = load_colorizer()
    assert not model.training


def test_the_network_follows_the_hints():
    rgb, ink, labels = draw_example(99, 7)
    model = load_colorizer()
    colours, mask = sample_hints(rgb, labels, np.random.default_rng(0), per_region=2)
    painted = predict(model, ink / 255.0, colours, mask)
    assert painted.shape == (128, 128, 3) and 0 <= painted.min() and painted.max() <= 1
    # The largest piece of hair, hinted in a green no drawn character has.
    pieces, _ = ndimage.label((labels == 1) & (ink < 64))
    sizes = np.bincount(pieces.ravel())
    sizes[0] = 0
    hair = pieces == sizes.argmax()
    assert abs(np.median(painted[hair], axis=0) - rgb[hair].mean(axis=0) / 255).max() < 0.1
    green_colours, green_mask = colours.copy(), mask & (labels != 1)
    ys, xs = np.nonzero(hair)
    for k in np.random.default_rng(1).choice(ys.size, 3, replace=False):
        green_mask[ys[k], xs[k]] = True
        green_colours[ys[k], xs[k]] = (0.1, 0.9, 0.2)
    repainted = predict(model, ink / 255.0, green_colours, green_mask)
    red, green, blue = np.median(repainted[hair], axis=0)
    assert green > red + 0.4 and green > blue + 0.4, (red, green, blue)


def test_network_inputs_do_not_depend_on_the_line_art_size():
    for size in (512, 1024):
        ink = np.zeros((size, size), bool)
        width = size // 256  # a 2 px line at 512, 4 px at 1024
        ink[:, size // 2 : size // 2 + width] = True
        small = ink_for_net(ink, net_shape(size, size))
        assert small.shape == (128, 128)
        assert small.max() == pytest.approx(1.0)
    rgb = np.zeros((512, 512, 3), np.float32)
    mask = np.zeros((512, 512), bool)
    rgb[100:104, 200:204], mask[100:104, 200:204] = (1.0, 0.5, 0.0), True
    colours, small_mask = hints_for_net(rgb, mask, (128, 128))
    assert small_mask.sum() == 1 and np.allclose(colours[small_mask][0], (1.0, 0.5, 0.0))
    assert net_shape(300, 600) == (64, 128)


def test_hints_are_sampled_from_the_true_colours():
    rgb, _, labels = draw_example(99, 2)
    colours, mask = sample_hints(rgb, labels, np.random.default_rng(1), per_region=3)
    assert not (mask & (labels == LINE_LABEL)).any()
    regions = np.unique(labels[labels != LINE_LABEL])
    assert mask.sum() == 3 * len(regions)
    assert np.allclose(colours[mask], rgb[mask] / 255.0)


def test_the_trainer_runs_end_to_end(tmp_path):
    out = tmp_path / "tiny.safetensors"
    main(["--data", str(tmp_path / "data"), "--count", "12", "--steps", "2", "--batch", "2",
          "--export", str(out)])  # fmt: skip
    model = load_colorizer(out)
    assert colorizer_metadata(out)["reproduce"].endswith("--export tiny.safetensors")
    ink = np.zeros((128, 128), np.float32)
    assert predict(model, ink, np.zeros((128, 128, 3)), np.zeros((128, 128), bool)).shape == (
        128,
        128,
        3,
    )
