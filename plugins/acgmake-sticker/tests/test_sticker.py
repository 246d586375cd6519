"""The sticker stage, run as acgmake runs it (acgmake.testing), on pictures drawn here."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from acgmake import UserError
from acgmake.testing import run_stage


def _picture(path, alpha: int = 255):
    picture = np.zeros((60, 60, 4), np.uint8)
    picture[20:40, 20:40] = (30, 60, 200, alpha)
    Image.fromarray(picture).save(path)
    return path


def test_the_outline_has_the_asked_colour_and_keeps_the_character(tmp_path):
    made = run_stage(
        "sticker",
        {"colored": _picture(tmp_path / "colored.png")},
        {"sticker_px": 4, "sticker_colour": "#ff0000"},
        plugins=["acgmake_sticker"],
        workdir=tmp_path / "run",
    )
    result = np.asarray(Image.open(made["colored"]).convert("RGBA"))
    assert tuple(result[30, 30]) == (30, 60, 200, 255)  # the character, untouched
    assert tuple(result[30, 18][:3]) == (255, 0, 0) and result[30, 18][3] > 200  # the outline
    assert result[30, 10][3] == 0  # beyond it, still transparent


def test_a_fully_transparent_picture_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match="fully transparent"):
        run_stage(
            "sticker",
            {"colored": _picture(tmp_path / "colored.png", alpha=0)},
            plugins=["acgmake_sticker"],
            workdir=tmp_path / "run",
        )
