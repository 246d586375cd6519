"""Colour that stays inside its lines: a background without a hint stays unpainted, whatever a
gap in a nearby shape lets through, and every output has the line art's own size."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from acgmake.image.colorize import Painting, colorize_layers
from acgmake.image.fill import EXTERIOR, areas, claims
from acgmake.image.hints import hints_from_rgba
from acgmake.image.openraster import read_ora

#: Ring radii (px of a 320 px page) in :func:`gap_drawing`: small, medium, large.
RING_RADII = (10, 18, 30)
#: Colours of the hint dots, one per shape.
COLOURS = (
    (230, 80, 80),
    (80, 160, 230),
    (90, 200, 110),
    (240, 200, 60),
    (200, 90, 220),
    (250, 140, 60),
    (60, 190, 190),
)


@dataclass
class GapDrawing:
    """A test page: grey line art, its hints image (RGBA) and where the background is."""

    page: np.ndarray
    hints: np.ndarray
    #: True on the paper outside every shape, more than a line's width from any ink: what
    #: must stay unpainted.
    background: np.ndarray
    #: One pixel inside each shape, away from its outline and its hint, with its colour.
    insides: list[tuple[tuple[int, int], tuple[int, int, int]]]


def gap_drawing(gap_px: int, *, size: int = 320, line_px: int = 3) -> GapDrawing:
    """Closed shapes of several sizes with one colour dot each, and three rings (small,
    medium, large) whose outlines each have a ``gap_px`` gap facing the white background,
    which has no hint. Sizes are given for a 320 px page and scale with ``size``, except the
    gap and the line width, which are in pixels of the page."""
    scale = size / 320
    page = Image.new("L", (size, size), 255)
    hints = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    silhouettes = Image.new("1", (size, size), 0)
    draw, dots, fills = ImageDraw.Draw(page), ImageDraw.Draw(hints), ImageDraw.Draw(silhouettes)
    insides = []

    def box(x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int]:
        return round(x0 * scale), round(y0 * scale), round(x1 * scale), round(y1 * scale)

    def dot(x: int, y: int, colour: tuple[int, int, int]) -> None:
        dots.ellipse((x - 3, y - 3, x + 3, y + 3), fill=(*colour, 255))

    closed = [
        ("rectangle", box(16, 16, 150, 130)),
        ("ellipse", box(176, 24, 304, 112)),
        ("ellipse", box(24, 200, 88, 264)),
        ("rectangle", box(250, 270, 290, 296)),
    ]
    for colour, (kind, corners) in zip(COLOURS, closed, strict=False):
        getattr(draw, kind)(corners, outline=0, width=line_px)
        getattr(fills, kind)(corners, fill=1)
        x, y = (corners[0] + corners[2]) // 2, (corners[1] + corners[3]) // 2
        dot(x, y, colour)
        insides.append(((x, corners[1] + line_px + 3), colour))
    # Rings with their gap toward open paper: right, up, down.
    rings = zip(
        RING_RADII, ((130, 190), (210, 190), (150, 265)), ("right", "up", "down"), strict=True
    )
    for colour, (radius, centre, facing) in zip(COLOURS[len(closed) :], rings, strict=True):
        r = round(radius * scale)
        cx, cy = round(centre[0] * scale), round(centre[1] * scale)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=0, width=line_px)
        fills.ellipse((cx - r, cy - r, cx + r, cy + r), fill=1)
        low, high = -(gap_px // 2), gap_px - gap_px // 2 - 1
        if facing == "right":
            draw.rectangle((cx + r - line_px - 1, cy + low, cx + r + 1, cy + high), fill=255)
        elif facing == "up":
            draw.rectangle((cx + low, cy - r - 1, cx + high, cy - r + line_px + 1), fill=255)
        else:
            draw.rectangle((cx + low, cy + r - line_px - 1, cx + high, cy + r + 1), fill=255)
        dot(cx, cy, colour)
        insides.append(((cx, cy - r // 2), colour))
    page_array = np.asarray(page)
    ink = page_array < 128
    far = ndimage.distance_transform_edt(~ink) > line_px
    background = far & ~ndimage.binary_dilation(np.asarray(silhouettes), iterations=line_px)
    return GapDrawing(page_array, np.asarray(hints), background, insides)


def painted_share(rgba: np.ndarray, background: np.ndarray) -> float:
    """The share of ``background`` pixels with any opacity in ``rgba``."""
    return float((rgba[..., 3][background] > 0).mean())


def colour(drawing: GapDrawing, method: str) -> Painting:
    """``drawing`` coloured by ``method``, its layers at the page's size (as the stage
    writes them)."""
    painting = colorize_layers(
        np.dstack([drawing.page] * 3), hints=hints_from_rgba(drawing.hints), method=method
    )
    return painting.resized(*drawing.page.shape)


def lightness(rgb: np.ndarray) -> np.ndarray:
    """CIELAB L* of uint8 RGB pixels (any shape ending in 3)."""
    from skimage.color import rgb2lab

    return rgb2lab(rgb.reshape(-1, 1, 3).astype(np.float32) / 255.0)[:, 0, 0]


def assert_shapes_keep_their_colours(colored: np.ndarray, drawing: GapDrawing, tolerance: int):
    for (x, y), wanted in drawing.insides:
        pixel = colored[y, x].astype(int)
        assert pixel[3] == 255 and np.abs(pixel[:3] - wanted).max() <= tolerance, (wanted, pixel)


@pytest.mark.parametrize("method", ["flat", "neural"])
def test_a_background_without_a_hint_stays_unpainted(method, one_torch_thread):
    # A 320 px page is coloured at 512 px: a gap of 5 px or more is wider there than
    # --fill-gap's 8 px, and before the fix let the ring's colour over the whole page.
    for gap in range(1, 9):
        drawing = gap_drawing(gap)
        painting = colour(drawing, method)
        colored = painting.composite()
        painted = painted_share(colored, drawing.background)
        assert painted == 0, f"gap {gap}px: {painted:.1%} of the background painted"
        assert painted_share(painting.flats, drawing.background) == 0, f"gap {gap}px: flats"
        assert_shapes_keep_their_colours(colored, drawing, 2 if method == "flat" else 24)


def test_a_gap_wider_than_the_fill_gap_still_leaves_the_background_clear():
    # At 512 px the page is coloured at its own size: gaps up to 24 px in rings 32 to 96 px
    # across (--fill-gap is 8 px).
    for gap in (12, 16, 24):
        drawing = gap_drawing(gap, size=512)
        colored = colour(drawing, "flat").composite()
        assert painted_share(colored, drawing.background) == 0, f"gap {gap}px"
        assert_shapes_keep_their_colours(colored, drawing, 2)


def test_a_hint_on_the_background_still_paints_it():
    drawing = gap_drawing(8)
    hints = drawing.hints.copy()
    hints[300:306, 20:26] = (120, 200, 255, 255)  # a dot on the open page
    drawing = GapDrawing(drawing.page, hints, drawing.background, drawing.insides)
    colored = colour(drawing, "flat").composite()
    sky = np.all(np.abs(colored[..., :3].astype(int) - (120, 200, 255)) <= 2, axis=2)
    assert (sky & (colored[..., 3] == 255))[drawing.background].mean() > 0.99
    assert_shapes_keep_their_colours(colored, drawing, 2)


def test_the_neural_method_leaves_no_pale_smear_in_a_plain_shape(one_torch_thread):
    # A shape with one dot: far from the dot the network's colour fades toward the paper,
    # which was taken for light and painted as a pale patch over the flat colour.
    drawing = gap_drawing(1)
    colored = colour(drawing, "neural").composite()
    ink = drawing.page < 128
    regions, _ = ndimage.label(~ink)
    deep = ndimage.distance_transform_edt(~ink) > 4
    for (x, y), wanted in drawing.insides[:4]:  # the closed shapes
        inside = (regions == regions[y, x]) & deep
        paler = lightness(colored[..., :3][inside]).max() - lightness(np.uint8(wanted))[0]
        assert paler <= 2.0, f"{wanted}: up to {paler:.1f} L* paler than its hint"


@pytest.mark.parametrize("method", ["flat", "neural"])
def test_every_output_has_the_line_arts_size(tmp_path, method, one_torch_thread):
    from click.testing import CliRunner

    from acgmake.cli import cli

    drawing = gap_drawing(6)
    page, hints = drawing.page[:240], drawing.hints[:240]  # 320 x 240: not square
    Image.fromarray(page).save(tmp_path / "lineart.png")
    Image.fromarray(hints).save(tmp_path / "hints.png")
    out, work = tmp_path / "colored.png", tmp_path / "work"
    args = ["colorize", str(tmp_path / "lineart.png"), "--hints", str(tmp_path / "hints.png")]
    args += ["-o", str(out), "--workdir", str(work), "--method", method]
    outcome = CliRunner().invoke(cli, args)
    assert outcome.exit_code == 0, outcome.output
    with Image.open(out) as image:
        assert image.size == (320, 240) and image.mode == "RGBA"
        colored = np.asarray(image)
    with zipfile.ZipFile(work / "colored.ora") as archive:
        stack = archive.read("stack.xml").decode()
        assert 'w="320"' in stack and 'h="240"' in stack
        for name in archive.namelist():
            if name.startswith("data/") or name == "mergedimage.png":
                with Image.open(io.BytesIO(archive.read(name))) as png:
                    assert png.size == (320, 240), name
    layers, merged = read_ora(work / "colored.ora")
    assert np.array_equal(merged, colored)
    background = drawing.background[:240]
    assert painted_share(colored, background) == 0
    assert painted_share(dict(layers)["flats"], background) == 0
    # The layers give colored.png (blended as paint programs do: tests/test_colorize_art.py).
    stacked = Painting(**dict(layers)).composite().astype(int)
    assert np.abs(stacked - colored).max() <= 1


# -- the exterior, on ink at working size -----------------------------------------------------


def exterior(ink: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Where :func:`claims` finds the page's exterior, for ``seeds`` (int, 0 = no hint)."""
    return claims(ink, areas(ink), seeds) == EXTERIOR


def ring(size: int, radius: float, gap: int, *, line: float = 3.0) -> np.ndarray:
    """Ink: a ring in the middle of a ``size`` page with a ``gap`` px opening on its right."""
    yy, xx = np.mgrid[:size, :size]
    centre = size / 2
    ink = np.abs(np.hypot(yy - centre, xx - centre) - radius) < line / 2
    return ink & ~((np.abs(yy - centre + 0.5) < gap / 2) & (xx > centre))


def test_the_exterior_stops_at_a_rings_gap_of_any_width():
    for radius, gap in ((20, 12), (30, 20), (60, 40)):
        ink = ring(200, radius, gap)
        seeds = np.zeros(ink.shape, np.int32)
        seeds[98:103, 98:103] = 1
        found = exterior(ink, seeds)
        assert not found[90:110, 90:110].any(), (radius, gap)
        assert found[5, 5] and found[100, 100 + radius + 10], (radius, gap)


def test_a_hint_in_the_open_page_makes_none_of_it_exterior():
    ink = ring(200, 30, 20)
    seeds = np.zeros(ink.shape, np.int32)
    seeds[10:14, 10:14] = 1
    assert not exterior(ink, seeds).any()
    # Without any hint, the page and the ring's inside (open to it) are all exterior.
    assert exterior(ink, np.zeros(ink.shape, np.int32))[100, 100]


def test_a_shape_the_border_cuts_is_not_exterior():
    # A strand of hair running off the bottom of the page, its hint above a narrowing where an
    # inner line ends: it meets the border over its own width, not along it.
    ink = np.zeros((200, 200), bool)
    ink[:, 60:64] = ink[:, 136:140] = True  # the strand's outline, off the page at the bottom
    ink[0:4, 60:140] = True
    ink[60:200, 96:100] = True  # an inner line, ending at row 60
    seeds = np.zeros(ink.shape, np.int32)
    seeds[20:24, 90:94] = 1
    found = exterior(ink, seeds)
    assert not found[:, 64:136].any()
    assert found[100, 20] and found[100, 180]
