"""Colour hints: where the user wants which colour.

Two ways to give them. A *hints image* is a PNG the size of the line art, transparent except
for coloured dots and strokes (what creators draw on a layer over the lines in PaintsChainer,
style2paints or Krita's colorize mask). A *palette* names colours for the regions a character
picture's ``face.json`` knows (hair, eyes, skin, clothes); a hint dot is put at each region's
point. Either becomes a :class:`Hints`: a seed map (which pixels are hints, and of which
colour) at the working size.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from acgmake.errors import UserError
from acgmake.image.face import Face

RGB = tuple[int, int, int]

#: Hint pixels at least this opaque count; softer ones (a stroke's antialiased rim) do not.
MIN_ALPHA = 128
#: Hint colours closer than this (largest RGB channel difference) are one colour.
SAME_COLOUR = 12
#: Strokes of pure black (every channel at most this) are not a colour: they mark areas to
#: leave clear, the background showing through (between an arm and the body, say).
CLEAR_MAX = 8


@dataclass
class Hints:
    """Hint seeds: ``seeds`` (int32, 0 = no hint, k = ``colours[k - 1]``), the colours
    (uint8 K x 3) and the exact ``pixels`` colours (uint8 H x W x 3; a stroke may vary a
    little within its colour)."""

    seeds: np.ndarray
    colours: np.ndarray
    pixels: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.seeds.shape

    @property
    def mask(self) -> np.ndarray:
        return self.seeds > 0

    @property
    def clear(self) -> np.ndarray:
        """Bool per colour: whether it marks areas to leave clear (see :data:`CLEAR_MAX`)."""
        return self.colours.max(axis=1, initial=0) <= CLEAR_MAX

    def coloured(self) -> Hints:
        """These hints without the clear marks: the colours only."""
        clear = np.concatenate([[False], self.clear])
        seeds = np.where(clear[self.seeds], 0, self.seeds).astype(np.int32)
        return Hints(seeds, self.colours, self.pixels)

    def resized(self, height: int, width: int) -> Hints:
        """These hints at ``height`` x ``width`` (nearest neighbour: a dot stays a dot)."""
        if (height, width) == self.shape:
            return self
        ys = np.minimum((np.arange(height) + 0.5) * self.shape[0] / height, self.shape[0] - 1)
        xs = np.minimum((np.arange(width) + 0.5) * self.shape[1] / width, self.shape[1] - 1)
        rows, cols = ys.astype(int)[:, None], xs.astype(int)[None, :]
        return Hints(self.seeds[rows, cols], self.colours, self.pixels[rows, cols])

    def merged(self, other: Hints) -> Hints:
        """Both sets of hints; where both have one, ``other``'s wins."""
        seeds = np.where(other.seeds > 0, other.seeds + len(self.colours), self.seeds)
        pixels = np.where(other.mask[..., None], other.pixels, self.pixels)
        colours = np.vstack([self.colours, other.colours])
        return Hints(seeds.astype(np.int32), colours, pixels)


def empty_hints(height: int, width: int) -> Hints:
    """No hints at all, at ``height`` x ``width``."""
    return Hints(
        np.zeros((height, width), np.int32),
        np.zeros((0, 3), np.uint8),
        np.zeros((height, width, 3), np.uint8),
    )


def hints_from_rgba(rgba: np.ndarray) -> Hints:
    """The hints drawn in ``rgba`` (uint8 H x W x 4): opaque pixels are hints.

    Colours within :data:`SAME_COLOUR` of each other are grouped, the most used first.
    """
    opaque = rgba[..., 3] >= MIN_ALPHA
    colours = rgba[..., :3][opaque]
    found, inverse, counts = np.unique(colours, axis=0, return_inverse=True, return_counts=True)
    groups: list[np.ndarray] = []
    group_of = np.zeros(len(found), np.int32)
    sizes: list[int] = []
    for index in np.argsort(-counts, kind="stable"):
        colour = found[index].astype(np.int16)
        distances = [int(np.abs(known.astype(np.int16) - colour).max()) for known in groups]
        near = int(np.argmin(distances)) if groups else -1
        # A rare colour a little off a common one is the rim of its stroke (antialiasing,
        # resampling), not a colour of its own.
        rim = near >= 0 and distances[near] <= 4 * SAME_COLOUR and counts[index] * 20 < sizes[near]
        if near >= 0 and (distances[near] <= SAME_COLOUR or rim):
            group_of[index] = near + 1
            sizes[near] += int(counts[index])
        else:
            groups.append(found[index])
            sizes.append(int(counts[index]))
            group_of[index] = len(groups)
    seeds = np.zeros(opaque.shape, np.int32)
    seeds[opaque] = group_of[inverse.ravel()]
    pixels = np.where(opaque[..., None], rgba[..., :3], 0).astype(np.uint8)
    table = np.array(groups, np.uint8).reshape(-1, 3)
    return Hints(seeds, table, pixels)


def read_hints(path: Path, size: tuple[int, int]) -> Hints:
    """The hints image at ``path``, checked against the line art's ``size`` (width, height).

    Raises UserError when it is not an image, is the wrong size, has no transparency, or
    holds no hint.
    """
    try:
        with Image.open(path) as image:
            image.load()
            has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            rgba = np.asarray(image.convert("RGBA"))
            found = image.size
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise UserError(f"cannot read the hints image {path}: {error}") from None
    if tuple(found) != tuple(size):
        raise UserError(
            f"the hints image {Path(path).name} is {found[0]}x{found[1]} but the line art is "
            f"{size[0]}x{size[1]}; draw the hints on a transparent layer the size of the "
            "line art and export that layer"
        )
    if not has_alpha:
        raise UserError(
            f"the hints image {Path(path).name} has no transparency; draw coloured dots or "
            "strokes on a transparent layer and save it as PNG"
        )
    hints = hints_from_rgba(rgba)
    if not hints.mask.any():
        raise UserError(
            f"the hints image {Path(path).name} is empty (fully transparent); draw a dot or "
            "stroke of colour in each area to fill"
        )
    return hints


def palette_hints(
    face: Face,
    palette: Mapping[str, RGB],
    height: int,
    width: int,
    *,
    radius_px: int = 3,
) -> Hints:
    """A dot of each ``palette`` colour at its region's point(s) in ``face``, at
    ``height`` x ``width``; regions the palette does not name get no dot."""
    hints = empty_hints(height, width)
    colours = []
    yy, xx = np.ogrid[:height, :width]
    for region, colour in palette.items():
        points = face.points.get(region, ())
        if not points:
            continue
        colours.append(colour)
        for point in points:
            x, y = Face.pixel_point(point, width, height)
            disk = (yy - y) ** 2 + (xx - x) ** 2 <= radius_px * radius_px
            hints.seeds[disk] = len(colours)
            hints.pixels[disk] = colour
    hints.colours = np.array(colours, np.uint8).reshape(-1, 3)
    return hints
