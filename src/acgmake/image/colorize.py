"""Hint-based colorization: palette colours flood the regions their hint points sit in.

The picture is enlarged to a working size and turned into line art (:mod:`.lineart`). Each
hint (a region name, a point from ``face.json`` and a colour from the palette) seeds a
watershed whose barriers are the ink lines and, more weakly, the picture's own colour edges,
so a colour stops at the lines around its region and does not leak through a small gap.
Closed regions without a hint (a strand of hair cut off by a line) join the hinted region
whose colour they share. Each region is then painted in its palette colour, shaded by the
original picture's luminance so it keeps its volume, the lines are drawn back on top in a
dark tint of the colour they border, and the background region becomes transparent.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import ImageColor
from scipy import ndimage

from acgmake.errors import UserError
from acgmake.image.face import Face
from acgmake.image.lineart import (
    WORKING_SIZE_PX,
    enlargement,
    line_art,
    to_gray,
    to_working_size,
)

RGB = tuple[int, int, int]
Palette = dict[str, RGB]

#: Regions a palette can colour. The background is not one of them: it becomes transparent.
REGIONS = ("hair", "eyes", "skin", "clothes")
BACKGROUND = "background"
#: Label numbers in the segmentation: 0 is "not decided yet" during the watershed.
LABELS = (BACKGROUND, *REGIONS)

#: Palettes chosen from by seed when the user gives none; also usable by name.
PRESETS: dict[str, dict[str, str]] = {
    "sky": {"hair": "#8fd3ff", "eyes": "#2f7fd0", "skin": "#ffe0cc", "clothes": "#40486a"},
    "sakura": {"hair": "#f4a7c0", "eyes": "#7a4fb0", "skin": "#ffe3d3", "clothes": "#5b6c9e"},
    "chestnut": {"hair": "#8a5a3c", "eyes": "#3a8f5a", "skin": "#fde2cf", "clothes": "#c23b4a"},
    "midnight": {"hair": "#2e3350", "eyes": "#d04a5a", "skin": "#fbe4d8", "clothes": "#e8e4dc"},
    "mint": {"hair": "#7fd1b0", "eyes": "#e08a2e", "skin": "#ffe6d6", "clothes": "#3d5a80"},
    "honey": {"hair": "#f3d27a", "eyes": "#3a7bd5", "skin": "#ffe5d2", "clothes": "#2d3142"},
}


# ---------------------------------------------------------------------------------------------
# Palettes


def parse_colour(text: str) -> RGB:
    """``"#3a6"``, ``"#33aa66"``, ``"33aa66"`` or a CSS name as (r, g, b); ValueError if not."""
    text = text.strip()
    if len(text) in (3, 6) and all(c in "0123456789abcdefABCDEF" for c in text):
        text = "#" + text
    red, green, blue = ImageColor.getrgb(text)[:3]
    return (red, green, blue)


def parse_palette(text: str) -> Palette:
    """The colours named in ``text``, e.g. ``"hair=#8fd3ff,eyes=#3a6,skin=#ffe0cc"``.

    An item without ``=`` names a preset (``"sakura"``, ``"sakura,hair=#fff"``); later items
    override earlier ones. Regions not named are absent from the result. Raises UserError for
    an unknown region, preset or colour, naming it and listing what is valid.
    """
    palette: Palette = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if "=" not in item:
            if item.lower() not in PRESETS:
                raise UserError(
                    f"unknown palette preset {item!r}; presets are {', '.join(PRESETS)}, or give "
                    f"colours as region=#rrggbb with regions {', '.join(REGIONS)}"
                )
            palette.update({k: parse_colour(v) for k, v in PRESETS[item.lower()].items()})
            continue
        region, colour = (part.strip() for part in item.split("=", 1))
        if region.lower() not in REGIONS:
            raise UserError(
                f"unknown palette region {region!r}; regions are {', '.join(REGIONS)} "
                f"(e.g. hair=#8fd3ff,eyes=#3a6)"
            )
        try:
            palette[region.lower()] = parse_colour(colour)
        except ValueError:
            raise UserError(
                f"bad colour {colour!r} for {region}; give #rgb, #rrggbb or a colour name "
                "such as pink"
            ) from None
    return palette


def default_palette(seed: int) -> Palette:
    """One of :data:`PRESETS`, picked by ``seed`` (the same seed always gives the same one)."""
    name = random.Random(seed).choice(sorted(PRESETS))
    return parse_palette(name)


# ---------------------------------------------------------------------------------------------
# Hints and regions


@dataclass(frozen=True)
class Hint:
    """A colour hint: the region a pixel (x, y) of the working image belongs to."""

    region: str
    x: int
    y: int


def face_hints(face: Face, width: int, height: int) -> list[Hint]:
    """The hint points of ``face`` scaled to a ``width`` x ``height`` image.

    Without a background point, the four corners are taken as background.
    """
    hints = [
        Hint(region, *Face.pixel_point(point, width, height))
        for region, points in face.points.items()
        if region in LABELS
        for point in points
    ]
    if not any(hint.region == BACKGROUND for hint in hints):
        corners = [(0, 0), (width - 1, 0), (0, height - 1), (width - 1, height - 1)]
        hints += [Hint(BACKGROUND, x, y) for x, y in corners]
    return hints


def segment(
    rgb: np.ndarray,
    ink: np.ndarray,
    hints: list[Hint],
    *,
    smoothing_px: float = 1.0,
    edge_contrast: float = 24.0,
    max_colour_difference: float = 14.0,
    plain_difference: float = 5.0,
) -> np.ndarray:
    """Label every pixel of ``rgb`` (working size, uint8) with a region, lines as barriers.

    The picture is cut into *areas* by the ink lines (``ink``, the cleaned line mask) and by
    strong colour edges, so that a gap in a line does not join two differently coloured
    parts. An area a hint sits in takes that hint's region. An area without a hint joins a
    large hinted region (hair, skin, clothes, background) whose colour nearly all of it is
    within ``max_colour_difference`` (CIELAB, lightness half-weighted, so shading does not
    count as much as hue) of; failing that, the neighbouring region across its border that it
    is closest to in colour. It joins the background only if it touches the image border.
    Pixels within ``plain_difference`` of the background's colour and joined to the border
    through such pixels are background whatever area they are in. What is left (colour-edge
    pixels, specks) is flooded from the areas around it, never across a line, and each line
    goes to the nearest region.

    ``smoothing_px`` is the blur applied before colours are compared, against noise (about
    half the enlargement of a small picture); ``edge_contrast`` the colour difference across
    an edge that makes it a border. Returns int32 labels, indexes into :data:`LABELS`
    (0 = background).
    """
    from skimage.segmentation import watershed

    height, width = ink.shape
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    lab = cv2.GaussianBlur(lab, (0, 0), smoothing_px) * np.float32([0.5, 1.0, 1.0])
    free = ~ink
    background = LABELS.index(BACKGROUND) + 1  # labels are shifted by one until the end

    # Colour edges: the colour change per pixel times the width a blurred edge spreads over,
    # about the difference between the two sides whatever the blur.
    gradient = np.hypot(cv2.Sobel(lab, cv2.CV_32F, 1, 0), cv2.Sobel(lab, cv2.CV_32F, 0, 1))
    gradient = np.linalg.norm(gradient, axis=2) / 8.0
    borders = ink | (gradient * 2.5 * max(smoothing_px, 1.0) > edge_contrast)
    areas, count = ndimage.label(~borders)
    boxes = ndimage.find_objects(areas)
    sizes = np.bincount(areas.ravel(), minlength=count + 1)
    touches_border = np.zeros(count + 1, bool)
    for edge in (areas[0], areas[-1], areas[:, 0], areas[:, -1]):
        touches_border[edge] = True
    area_label = np.zeros(count + 1, np.int32)  # 0: not decided

    # Hints: each gives its area its region; a hint on a border moves to the nearest area.
    _, (near_y, near_x) = ndimage.distance_transform_edt(borders, return_indices=True)
    markers = np.zeros((height, width), np.int32)
    samples: dict[int, list[np.ndarray]] = {}
    claims: dict[int, set[int]] = {}
    radius = max(2, round(2 * smoothing_px))
    yy, xx = np.ogrid[:height, :width]
    for hint in hints:
        y, x = int(near_y[hint.y, hint.x]), int(near_x[hint.y, hint.x])
        label, area = LABELS.index(hint.region) + 1, int(areas[y, x])
        if area == 0:  # nothing but borders: no area to seed
            continue
        claims.setdefault(area, set()).add(label)
        disk = ((yy - y) ** 2 + (xx - x) ** 2 <= radius * radius) & (areas == area)
        markers[disk] = label
        samples.setdefault(label, []).append(lab[areas == area])
    for area, labels_here in claims.items():
        if len(labels_here) == 1:  # two hints in one area: the flood below splits it
            area_label[area] = next(iter(labels_here))
    # Eyes are small and each has its own hint: only the large regions claim areas by colour.
    reference = {
        label: np.median(np.vstack(found), axis=0)
        for label, found in samples.items()
        if LABELS[label - 1] != "eyes"
    }

    # Areas without a hint, matched by colour; their rims are left out (a soft picture blends
    # colours for a few pixels along every line).
    distance_to_border = ndimage.distance_transform_edt(~borders)
    min_px = max(16, height * width // 4000)
    for area in np.flatnonzero((sizes >= min_px) & (area_label == 0)):
        if area == 0:
            continue
        box = boxes[area - 1]
        inside = areas[box] == area
        core = inside & (distance_to_border[box] > 2)
        pixels = lab[box][core if core.sum() >= min_px // 2 else inside]
        median = np.median(pixels, axis=0)
        for label, colour in sorted(reference.items(), key=lambda i: np.linalg.norm(median - i[1])):
            if label == background and not touches_border[area]:
                continue
            close = np.linalg.norm(pixels - colour, axis=1) < max_colour_difference
            if close.mean() >= 0.8:
                area_label[area] = label
            break
    _join_neighbours(areas, boxes, sizes >= min_px, area_label, lab, touches_border, background)

    seeds = markers > 0
    markers = np.where(area_label[areas] > 0, area_label[areas], markers)
    # The plain background: pixels of nearly its colour joined to the image border are
    # background even when a broken outline and a pale colour let them into another area.
    if background in reference:
        plain = free & (np.linalg.norm(lab - reference[background], axis=2) < plain_difference)
        pieces, _ = ndimage.label(plain)
        outer = np.unique(np.concatenate([pieces[0], pieces[-1], pieces[:, 0], pieces[:, -1]]))
        markers[np.isin(pieces, outer[outer > 0]) & ~seeds] = background
    markers[ink] = 0
    labels = watershed(gradient, markers, mask=free)
    # Lines (and anything unreached) take the nearest region: each line is split between
    # the regions on its two sides.
    _, (near_y, near_x) = ndimage.distance_transform_edt(labels == 0, return_indices=True)
    return (labels[near_y, near_x] - 1).astype(np.int32)


def _join_neighbours(
    areas: np.ndarray,
    boxes: list,
    large: np.ndarray,
    area_label: np.ndarray,
    lab: np.ndarray,
    touches_border: np.ndarray,
    background: int,
    *,
    reach_px: int = 6,
) -> None:
    """Give each large undecided area the label around it that is closest to it in colour.

    Works in place on ``area_label`` (per area; 0 = undecided). Repeats so that areas reached
    only through other undecided areas are labelled too; unreachable ones stay 0.
    """
    height, width = areas.shape
    pending = [a for a in np.flatnonzero(large & (area_label == 0)) if a > 0]
    while pending:
        waiting = []
        for area in pending:
            box = boxes[area - 1]
            grown = tuple(
                slice(max(s.start - reach_px, 0), min(s.stop + reach_px, limit))
                for s, limit in zip(box, (height, width), strict=True)
            )
            inside = areas[grown] == area
            ring = ndimage.binary_dilation(inside, iterations=reach_px) & ~inside
            around = area_label[areas[grown][ring]]
            candidates = set(np.unique(around[around > 0]).tolist())
            if not touches_border[area]:
                candidates.discard(background)
            if not candidates:
                waiting.append(area)
                continue
            colour = np.median(lab[grown][inside], axis=0)
            ring_colours = lab[grown][ring]
            area_label[area] = min(
                candidates,
                key=lambda label: np.linalg.norm(
                    np.median(ring_colours[around == label], axis=0) - colour
                ),
            )
        if len(waiting) == len(pending):
            break
        pending = waiting


# ---------------------------------------------------------------------------------------------
# Painting


def region_colours(
    rgb: np.ndarray, labels: np.ndarray, palette: Mapping[str, RGB], face: Face | None = None
) -> np.ndarray:
    """A (len(LABELS), 3) uint8 table of the colour to paint each region.

    From ``palette``, else the colour ``face.json`` recorded for the region, else the region's
    own median colour in ``rgb`` (so a region the user did not name keeps its colour).
    """
    table = np.zeros((len(LABELS), 3), np.uint8)
    recorded = face.colors if face else {}
    for index, region in enumerate(LABELS):
        if region in palette:
            table[index] = palette[region]
        elif region in recorded and _recorded_colour(recorded[region]) is not None:
            table[index] = _recorded_colour(recorded[region])
        elif np.any(labels == index):
            table[index] = np.median(rgb[labels == index], axis=0)
    return table


def _recorded_colour(value: object) -> RGB | None:
    """A colour face.json recorded ("#rrggbb", or a list of them, one per eye), or None."""
    if isinstance(value, (list, tuple)) and value:
        value = value[0]
    try:
        return parse_colour(str(value))
    except ValueError:
        return None


def shading(
    rgb: np.ndarray,
    labels: np.ndarray,
    ink: np.ndarray,
    *,
    strength: float = 0.8,
    limits: tuple[float, float] = (0.55, 1.3),
) -> np.ndarray:
    """Per-pixel brightness factors taken from ``rgb``'s luminance, 1 = the region's median.

    Each region's luminance is divided by its own median (off the lines), so a region's
    shadows and highlights carry over whatever colour it is painted. ``strength`` scales the
    effect; ``limits`` clip it. Returns float32, the shape of ``labels``.
    """
    luminance = cv2.GaussianBlur(to_gray(rgb), (0, 0), 1.5)
    medians = np.ones(len(LABELS), np.float32)
    for index in range(len(LABELS)):
        inside = (labels == index) & ~ink
        if inside.any():
            medians[index] = max(float(np.median(luminance[inside])), 0.05)
    ratio = luminance / medians[labels]
    return np.clip(1.0 + strength * (ratio - 1.0), *limits).astype(np.float32)


def paint(
    labels: np.ndarray,
    colours: np.ndarray,
    shade: np.ndarray,
    lines: np.ndarray,
    *,
    line_tint: float = 0.25,
) -> np.ndarray:
    """Fill each region with its colour times ``shade``, then draw ``lines`` over it.

    Factors above 1 lighten toward white. Lines are a dark tint (``line_tint`` times) of the
    colour under them, softer than black. Returns RGB float32 in [0, 255].
    """
    base = colours[labels].astype(np.float32)
    factor = shade[..., None]
    filled = np.where(factor <= 1.0, base * factor, base + (255.0 - base) * (factor - 1.0))
    ink_colour = base * line_tint
    paper = lines[..., None]
    return ink_colour + (filled - ink_colour) * paper


def character_alpha(labels: np.ndarray, ink: np.ndarray, *, outline_px: int = 4) -> np.ndarray:
    """Opacity: everything but the background, plus the outline around it, soft-edged.

    The watershed splits each line between its two sides; the half on the background side
    is kept (up to ``outline_px`` out) so the character keeps its whole outline.
    Returns uint8, 255 = opaque.
    """
    character = labels != LABELS.index(BACKGROUND)
    around = ndimage.binary_dilation(character, iterations=outline_px)
    opaque = character | (ink & around)
    alpha = opaque.astype(np.float32) * 255.0
    return np.clip(cv2.GaussianBlur(alpha, (0, 0), 0.7) + 0.5, 0, 255).astype(np.uint8)


def colorize(
    rgb: np.ndarray,
    face: Face,
    palette: Mapping[str, RGB],
    *,
    size_px: int = WORKING_SIZE_PX,
) -> np.ndarray:
    """The character in ``rgb`` (uint8, any size) painted with ``palette``, background clear.

    Hints sit at ``face``'s points. Pictures smaller than ``size_px`` on the longer side are
    enlarged to it first (the lines come out clean there). Returns RGBA uint8 at that size.
    """
    rgb = np.ascontiguousarray(np.asarray(rgb)[..., :3])
    working = to_working_size(rgb, size_px)
    height, width = working.shape[:2]
    lines, ink = line_art(rgb, size_px=size_px)
    smoothing_px = max(1.0, 0.5 * enlargement(rgb, working))
    labels = segment(working, ink, face_hints(face, width, height), smoothing_px=smoothing_px)
    colours = region_colours(working, labels, palette, face)
    painted = paint(labels, colours, shading(working, labels, ink), lines)
    alpha = character_alpha(labels, ink)
    return np.dstack([np.clip(painted + 0.5, 0, 255).astype(np.uint8), alpha])
