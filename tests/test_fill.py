"""The scribble fill: colours stop at the lines and at gaps narrower than the stated width."""

from __future__ import annotations

import numpy as np
import pytest

from acgmake.image.fill import areas, border_areas, fill


def wall(gap: int, *, size: int = 160, width: int = 3, diagonal: bool = False) -> np.ndarray:
    """Ink: a line across the picture (vertical, or at 45 degrees) with a gap ``gap`` px wide
    in its middle (measured across the opening)."""
    yy, xx = np.mgrid[:size, :size]
    if diagonal:
        across = np.abs(xx - yy) / np.sqrt(2)  # distance from the diagonal
        along = (xx + yy) / np.sqrt(2) - size / np.sqrt(2)
        ink = across < width / 2
    else:
        first = size // 2 - width // 2
        along = yy - size / 2 + 0.5
        ink = (xx >= first) & (xx < first + width)
    return ink & ~(np.abs(along) < gap / 2)


def side(size: int, width: int, diagonal: bool) -> np.ndarray:
    """Signed distance to the line's middle: positive on the first seed's side."""
    yy, xx = np.mgrid[:size, :size]
    if diagonal:
        return (yy - xx) / np.sqrt(2)  # positive below the diagonal
    return (size // 2 - width // 2 + (width - 1) / 2) - xx  # positive left of the line


def leak(
    gap: int, gap_px: float, *, diagonal: bool = False, width: int = 3, near: bool = False
) -> tuple[int, float]:
    """How many pixels of each colour end up on the other side, and how far (px) past the
    line's middle the farthest of them is, for seeds on either side far from the gap, or
    (``near``) the first one right next to the gap: the colour that gets there first."""
    size = 160
    ink = wall(gap, size=size, width=width, diagonal=diagonal)
    seeds = np.zeros(ink.shape, np.int32)
    if diagonal:
        seeds[150, 5], seeds[5, 150] = 1, 2
        if near:
            seeds[150, 5], seeds[84, 76] = 0, 1
    else:
        seeds[10, 10], seeds[150, 150] = 1, 2
        if near:
            seeds[10, 10], seeds[80, 72] = 0, 1
    labels = fill(ink, seeds, gap_px=gap_px)
    offset = side(size, width, diagonal)
    wrong = ((labels == 1) & (offset < 0)) | ((labels == 2) & (offset > 0))
    # Half of the line itself belongs to either side: not a leak.
    wrong &= np.abs(offset) > width / 2 + 0.5
    depth = float(np.abs(offset[wrong]).max()) if wrong.any() else 0.0
    return int(wrong.sum()), depth


@pytest.mark.parametrize("near", [False, True])
@pytest.mark.parametrize("diagonal", [False, True])
@pytest.mark.parametrize("width", [1, 3])
def test_a_gap_up_to_the_stated_width_does_not_leak(diagonal, width, near):
    for gap in (1, 2, 4, 6, 8):
        pixels, depth = leak(gap, 8.0, diagonal=diagonal, width=width, near=near)
        assert pixels == 0, f"gap {gap}px (line {width}px): {pixels} px leaked, {depth:.1f}px deep"


def test_a_wider_gap_is_an_opening():
    # Hints as far from the gap on both sides: they meet in the opening, each taking about
    # half of what is wider than gap_px.
    for gap in (12, 16, 24, 32):
        pixels, depth = leak(gap, 8.0)
        assert depth <= (gap - 8) / 2 + 1.5, (gap, pixels, depth)
    # A hint right at a wide gap floods through it, as through any opening...
    pixels, depth = leak(12, 8.0, near=True)
    assert pixels > 1000 and depth > 20
    # ...and the same gap holds with a larger gap_px.
    assert leak(24, 28.0, near=True) == (0, 0.0)


def test_an_area_without_a_hint_is_filled_from_its_neighbour():
    ink = np.zeros((100, 100), bool)
    ink[:, 49:52] = True  # a full wall: the right side has no hint of its own
    seeds = np.zeros(ink.shape, np.int32)
    seeds[50, 10] = 3
    labels = fill(ink, seeds)
    assert np.all(labels == 3)


@pytest.mark.parametrize(("left_px", "right_px", "expected"), [(1, 6, 1), (6, 1, 2)])
def test_an_unhinted_area_takes_the_colour_over_its_thinnest_line(left_px, right_px, expected):
    # A stripe with no hint between two hinted areas, walled by lines of different weight.
    ink = np.zeros((120, 120), bool)
    ink[:, 40 : 40 + left_px] = True
    ink[:, 80 - right_px : 80] = True
    seeds = np.zeros(ink.shape, np.int32)
    seeds[60, 10], seeds[60, 110] = 1, 2
    labels = fill(ink, seeds)
    assert np.all(labels[:, 48:72] == expected)


def test_lines_go_half_to_each_side():
    ink = np.zeros((40, 40), bool)
    ink[:, 18:22] = True
    seeds = np.zeros(ink.shape, np.int32)
    seeds[20, 2], seeds[20, 37] = 1, 2
    labels = fill(ink, seeds)
    assert np.all(labels[:, :20] == 1) and np.all(labels[:, 20:] == 2)


def test_no_seed_no_fill():
    assert not fill(np.zeros((10, 10), bool), np.zeros((10, 10), np.int32)).any()


def test_areas_are_sealed_by_small_gaps_and_touch_the_border():
    ink = np.zeros((100, 100), bool)
    yy, xx = np.mgrid[:100, :100]
    ring = np.abs(np.hypot(yy - 50, xx - 50) - 30) < 1.5
    ink[ring & ~((np.abs(yy - 50) < 2) & (xx > 70))] = True  # a 4 px gap on the right
    found = areas(ink, gap_px=8)
    assert found[50, 50] != found[5, 5]
    assert found[5, 5] in border_areas(found) and found[50, 50] not in border_areas(found)
    opened = areas(ink, gap_px=2)
    assert opened[50, 50] == opened[5, 5]
