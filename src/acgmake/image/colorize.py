"""Hint-based colorization: line art or a character picture plus colour hints become layers.

The picture is enlarged to a working size and turned into line art (:mod:`.lineart`: XDoG
for a coloured picture, the ink itself for a scan or drawing). Then one of two ways:

- A generated character with its ``face.json`` and no hints image is finished art: its
  regions are found (:func:`segment`: each hint, a point from ``face.json``, seeds a
  watershed whose barriers are the ink lines and the picture's own colour edges) and
  recoloured in place to the palette, its own lines and shading kept
  (:mod:`acgmake.image.recolor`).
- Line art with a hints image (dots and strokes of colour, :mod:`.hints`): each hint floods
  the area it sits in (:mod:`.fill`, a colour stops at the lines and at gaps narrower than
  ``gap_px``, and at the door of a room behind a wider gap); the page's exterior, which no
  hint asks to paint, is the background whatever gap a shape beside it has (short of a
  ``C`` open wider than four fifths of its inside).

For line art, each area is painted flat in its colour; shading comes from the picture's own
luminance (a coloured picture), from the hint colorizer network (``method="neural"``, which
also colours areas no hint covers) or not at all (flat line art). The lines go back on top in
a dark tint of the colour they border, and the background becomes transparent. The result is a
:class:`Painting`: flats, shadow, light and lines layers, and their composite.
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
from acgmake.image.fill import (
    DEFAULT_GAP_PX,
    EXTERIOR,
    areas,
    border_areas,
    claims,
    doors,
    fill,
    strays,
)
from acgmake.image.hints import Hints, empty_hints, palette_hints
from acgmake.image.lineart import (
    WORKING_SIZE_PX,
    enlargement,
    extract_line_art,
    is_line_art,
    line_art,
    to_gray,
    to_working_size,
)

RGB = tuple[int, int, int]
#: A generated character larger than this (an upscaled one, a larger model's) whose regions
#: leak into each other has them found again on a copy brought down to this size: the shipped
#: model's, where segment() is tuned.
REGION_SOURCE_PX = 64
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
    lab, gradient = _lab_gradient(rgb, smoothing_px)
    free = ~ink
    background = LABELS.index(BACKGROUND) + 1  # labels are shifted by one until the end

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
    seeded: list[tuple[int, int, int, int]] = []
    for hint in hints:
        y, x = int(near_y[hint.y, hint.x]), int(near_x[hint.y, hint.x])
        label, area = LABELS.index(hint.region) + 1, int(areas[y, x])
        if area == 0:  # nothing but borders: no area to seed
            continue
        claims.setdefault(area, set()).add(label)
        disk = ((yy - y) ** 2 + (xx - x) ** 2 <= radius * radius) & (areas == area)
        markers[disk] = label
        seeded.append((label, area, y, x))
    # An area two regions claim (a broken line let hair into the face) is split by the flood
    # below and is no one's to take by colour; its hints' colours are those around them.
    contested = np.zeros(count + 1, bool)
    for area, labels_here in claims.items():
        if len(labels_here) == 1:
            area_label[area] = next(iter(labels_here))
        else:
            contested[area] = True
    near = 3 * radius
    for label, area, y, x in seeded:
        inside = areas == area
        if contested[area]:
            inside &= (yy - y) ** 2 + (xx - x) ** 2 <= near * near
        samples.setdefault(label, []).append(lab[inside])
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
    large = (sizes >= min_px) & ~contested
    for area in np.flatnonzero(large & (area_label == 0)):
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
    _join_neighbours(areas, boxes, large, area_label, lab, touches_border, background)

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


def _lab_gradient(rgb: np.ndarray, smoothing_px: float) -> tuple[np.ndarray, np.ndarray]:
    """``rgb`` in CIELAB (blurred by ``smoothing_px``, lightness half-weighted) and its colour
    change per pixel."""
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    lab = cv2.GaussianBlur(lab, (0, 0), smoothing_px) * np.float32([0.5, 1.0, 1.0])
    gradient = np.hypot(cv2.Sobel(lab, cv2.CV_32F, 1, 0), cv2.Sobel(lab, cv2.CV_32F, 0, 1))
    return lab, np.linalg.norm(gradient, axis=2) / 8.0


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


def shading(
    rgb: np.ndarray,
    labels: np.ndarray,
    ink: np.ndarray,
    *,
    strength: float = 0.8,
    limits: tuple[float, float] = (0.55, 1.3),
) -> np.ndarray:
    """Per-pixel brightness factors taken from ``rgb``'s luminance, 1 = the region's median.

    Each region's (``labels``, any non-negative ints) luminance is divided by its own median
    off the lines, so a region's shadows and highlights carry over whatever colour it is
    painted. ``strength`` scales the effect; ``limits`` clip it. ``rgb`` is uint8 or float
    in 0..1. Returns float32, the shape of ``labels``.
    """
    luminance = cv2.GaussianBlur(to_gray(rgb), (0, 0), 1.5)
    count = int(labels.max()) + 1
    found = ndimage.median(luminance, np.where(ink, -1, labels), index=np.arange(count))
    medians = np.where(np.isnan(found), 1.0, np.maximum(found, 0.05)).astype(np.float32)
    ratio = luminance / medians[labels]
    return np.clip(1.0 + strength * (ratio - 1.0), *limits).astype(np.float32)


@dataclass
class Painting:
    """A colorized picture as the layers an artist continues from, each RGBA uint8.

    Bottom to top: ``flats`` (each area its flat colour, background clear), ``shadow`` (black,
    its opacity how much darker), ``light`` (white, its opacity how much lighter) and
    ``lines`` (the ink in a dark tint of the colour under it). All blend normally, so any
    paint program shows them as :meth:`composite` does.
    """

    flats: np.ndarray
    shadow: np.ndarray
    light: np.ndarray
    lines: np.ndarray

    def layers(self) -> list[tuple[str, np.ndarray]]:
        """(name, RGBA) pairs, bottom first."""
        return [
            ("flats", self.flats),
            ("shadow", self.shadow),
            ("light", self.light),
            ("lines", self.lines),
        ]

    def resized(self, height: int, width: int) -> Painting:
        """These layers at ``height`` x ``width`` (the line art's own size, so they stack over
        the artist's file): area-averaged with each colour weighted by its opacity, so a
        clear pixel stays clear and lends no colour to its neighbours."""
        if self.flats.shape[:2] == (height, width):
            return self
        return Painting(
            **{name: _resized_layer(rgba, height, width) for name, rgba in self.layers()}
        )

    def composite(self) -> np.ndarray:
        """The layers blended (source-over) onto a clear canvas: RGBA uint8."""
        colour = np.zeros(self.flats.shape[:2] + (3,), np.float32)
        alpha = np.zeros(self.flats.shape[:2] + (1,), np.float32)
        for _, layer in self.layers():
            top = layer[..., 3:4].astype(np.float32) / 255.0
            below = alpha * (1.0 - top)
            alpha = top + below
            colour = (layer[..., :3] * top + colour * below) / np.maximum(alpha, 1e-6)
        return np.dstack([np.clip(colour + 0.5, 0, 255), alpha * 255.0 + 0.5]).astype(np.uint8)


def _resized_layer(rgba: np.ndarray, height: int, width: int) -> np.ndarray:
    """An RGBA uint8 layer at ``height`` x ``width``, colours premultiplied by opacity."""
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    premultiplied = np.dstack([rgba[..., :3] * alpha, alpha])
    shrinking = height * width < rgba.shape[0] * rgba.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    resized = cv2.resize(premultiplied, (width, height), interpolation=interpolation)
    alpha = np.clip(resized[..., 3:4], 0.0, 1.0)
    colour = resized[..., :3] / np.maximum(alpha, 1e-6)
    return np.dstack([np.clip(colour + 0.5, 0, 255), alpha * 255.0 + 0.5]).astype(np.uint8)


def paint_layers(
    flat: np.ndarray,
    character: np.ndarray,
    shade: np.ndarray,
    lines: np.ndarray,
    ink: np.ndarray,
    *,
    line_tint: float = 0.25,
    keep_lines: np.ndarray | None = None,
) -> Painting:
    """The layers of a picture from its flat colours (RGB uint8), the character mask (bool,
    False = background), brightness factors (1 = flat; below darker, above lighter), the
    soft ``lines`` (1 = paper) and the ``ink`` mask. Lines are ``line_tint`` times the flat
    colour under them: a dark tint, softer than black. With ``keep_lines`` (a mask), only
    the lines of that part and its outline are kept."""
    opacity = character_alpha(character, ink).astype(np.float32) / 255.0
    if character.any() and not character.all():
        # The background's side of the outline is the character's too: its flat colour and
        # its line's tint are those of the character next to it, not the background's black
        # (as far out as character_alpha keeps the outline, and its soft edge).
        distance, (near_y, near_x) = ndimage.distance_transform_edt(~character, return_indices=True)
        flat = np.where((distance <= OUTLINE_PX + 2)[..., None], flat[near_y, near_x], flat)
    ink_opacity = 1.0 - lines
    if keep_lines is not None:
        ink_opacity = ink_opacity * character_alpha(keep_lines, ink) / 255.0
    height, width = flat.shape[:2]

    def layer(colour, alpha):
        rgb = np.broadcast_to(np.asarray(colour, np.float32), (height, width, 3))
        return np.dstack([rgb, np.clip(alpha * 255.0 + 0.5, 0, 255)]).astype(np.uint8)

    return Painting(
        flats=layer(flat, opacity),
        shadow=layer((0, 0, 0), np.clip(1.0 - shade, 0.0, 1.0) * opacity),
        light=layer((255, 255, 255), np.clip(shade - 1.0, 0.0, 1.0) * opacity),
        lines=layer(flat.astype(np.float32) * line_tint, ink_opacity),
    )


#: How far out (px) the background's half of the character's outline is kept.
OUTLINE_PX = 4


#: A piece of the character cut off by the picture's edge and this small (a share of the
#: picture) is a speck, not part of it: a 64 px generator's hair tip at the top edge, left
#: floating above the head once the background is clear (138 px of a 768 px picture, 358
#: with its soft rim).
EDGE_SPECK_SHARE = 0.001


def edge_specks(opaque: np.ndarray) -> np.ndarray:
    """Where ``opaque`` (bool: the character) has pieces that touch the picture's edge, are
    smaller than :data:`EDGE_SPECK_SHARE` of it and are not its largest piece: to be made
    background, by every path that clears the background (colorize and recolor)."""
    pieces, count = ndimage.label(opaque)
    if count < 2:
        return np.zeros_like(opaque, dtype=bool)
    sizes = np.bincount(pieces.ravel(), minlength=count + 1)
    sizes[0] = 0
    edge = np.unique(np.concatenate([pieces[0], pieces[-1], pieces[:, 0], pieces[:, -1]]))
    specks = [p for p in edge if p and p != int(sizes.argmax())]
    specks = [p for p in specks if sizes[p] < EDGE_SPECK_SHARE * opaque.size]
    return np.isin(pieces, specks) if specks else np.zeros_like(opaque, dtype=bool)


def character_alpha(
    character: np.ndarray, ink: np.ndarray, *, outline_px: int = OUTLINE_PX
) -> np.ndarray:
    """Opacity: everything but the background, plus the outline around it, soft-edged.

    Lines are split between their two sides; the half on the background side is kept (up to
    ``outline_px`` out) so the character keeps its whole outline. Returns uint8, 255 = opaque.
    """
    around = ndimage.binary_dilation(character, iterations=outline_px)
    opaque = character | (ink & around)
    opaque &= ~edge_specks(opaque)
    alpha = opaque.astype(np.float32) * 255.0
    return np.clip(cv2.GaussianBlur(alpha, (0, 0), 0.7) + 0.5, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Neural colour: the hint colorizer's shading


def neural_colours(ink: np.ndarray, hints: Hints, *, model=None) -> np.ndarray:
    """The hint colorizer's colours for ``ink`` and ``hints`` (both at working size).

    The network works at its own size (:data:`acgmake.models.colorizer.NET_SIZE_PX`); its
    colours come back enlarged to the working size. Returns float32 H x W x 3 in 0..1.
    """
    import torch

    from acgmake.models.colorizer import (
        NET_SIZE_PX,
        hints_for_net,
        ink_for_net,
        load_colorizer,
        net_shape,
        predict,
    )

    model = model or load_colorizer()
    height, width = ink.shape
    shape = net_shape(height, width, NET_SIZE_PX)
    hint_rgb, hint_mask = hints_for_net(hints.pixels / 255.0, hints.mask, shape)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 128 px network gains nothing from more, and the CPU is shared
    try:
        colours = predict(model, ink_for_net(ink, shape), hint_rgb, hint_mask)
    finally:
        torch.set_num_threads(threads)
    return cv2.resize(colours, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def neural_shading(
    colours: np.ndarray,
    flat: np.ndarray,
    area_map: np.ndarray,
    ink: np.ndarray,
    *,
    rim_px: float = 6.0,
    strength: float = 0.6,
    limits: tuple[float, float] = (0.55, 1.0),
) -> np.ndarray:
    """Brightness factors from the network's colours: how much darker than the flat colour
    (``flat``, RGB uint8, what each pixel is painted) the network made each pixel.

    Shade only: where the network's colour is paler than the flat colour, it has lost the
    hint's colour (one dot's colour fades toward the paper far from it, in a large plain
    shape most), and that is not light; taken as light it left pale smears in plain shapes.
    On held-out drawn characters (benchmarks/colorize_report.py) shade against the flat
    colour also beat light and shade against each area's median, on PSNR and ΔE.

    The network's colours are soft at the scale of its input, so within ``rim_px`` of a line
    each pixel takes the factor of the nearest pixel deeper inside its own area (else 1):
    the neighbour across the line does not tint it. ``strength`` scales the shade and
    ``limits`` clip it, as in :func:`shading` (softer than a picture's own: the drawn
    characters it learned from are cel-shaded, and stronger shading cost ΔE on them).
    Returns float32.
    """
    luminance = cv2.GaussianBlur(to_gray(colours), (0, 0), 1.5)
    ratio = luminance / np.maximum(to_gray(flat), 0.05)
    shade = np.clip(1.0 + strength * (ratio - 1.0), *limits)
    inner = ndimage.distance_transform_edt(~ink) > rim_px
    if inner.any():
        _, (near_y, near_x) = ndimage.distance_transform_edt(~inner, return_indices=True)
        same = area_map[near_y, near_x] == area_map
        shade = np.where(inner, shade, np.where(same, shade[near_y, near_x], 1.0))
    return shade.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Colorizing


#: ``flat``: every area one colour from the hints, shading from the picture's own light;
#: ``neural``: the hint colorizer fills unhinted areas and shades everything.
METHODS = ("flat", "neural")


def colour_edges(rgb: np.ndarray, *, smoothing_px: float, edge_contrast: float = 24.0):
    """How strongly each pixel of ``rgb`` is a colour edge, 0..1 (1 = ``edge_contrast``,
    the difference across an edge that :func:`segment` takes as a border)."""
    _, gradient = _lab_gradient(rgb, smoothing_px)
    return np.clip(gradient * 2.5 * max(smoothing_px, 1.0) / edge_contrast, 0.0, 1.0)


def colorize_layers(
    picture: np.ndarray,
    *,
    face: Face | None = None,
    hints: Hints | None = None,
    palette: Mapping[str, RGB] | None = None,
    method: str = "flat",
    gap_px: float = DEFAULT_GAP_PX,
    lines_mode: str = "auto",
    size_px: int = WORKING_SIZE_PX,
    model=None,
) -> Painting:
    """Colour ``picture`` (a character picture or line art, uint8 RGB/RGBA/gray, any size).

    Hints come from ``hints`` (a hints image, at the picture's size) and from ``palette``
    dots at ``face``'s points. A coloured character picture with a face and no hints image is
    segmented by its own colours (:func:`segment`); anything else is filled from the hints
    (:func:`acgmake.image.fill.fill`, gaps narrower than ``gap_px`` working pixels hold a
    colour in). The page's exterior, which no hint asks to paint, becomes the transparent
    background, and each hint's colour stops at the doors of its room, however much wider
    than ``gap_px`` the gap is (:func:`acgmake.image.fill.claims`). ``method`` is one of
    :data:`METHODS`; ``model`` a loaded hint colorizer (default: the shipped one). The
    picture is enlarged to ``size_px`` when smaller.

    Returns the :class:`Painting` at working size (:meth:`Painting.resized` brings it to the
    picture's). Raises UserError for a page without lines, one that is all ink, or line art
    without hints.
    """
    if method not in METHODS:
        raise UserError(f"unknown method {method!r}; choose {' or '.join(METHODS)}")
    picture = np.asarray(picture)
    if picture.ndim == 2:
        picture = np.dstack([picture] * 3)
    rgb = np.round(on_paper(picture)).astype(np.uint8)
    working = to_working_size(rgb, size_px)
    palette = dict(palette or {})
    if face is not None and hints is None and lines_mode != "scan":
        # The character stage records the colours it sampled: a picture with them is a
        # generated one, however pale (a grey-haired character on white looks like a scan).
        if lines_mode == "xdog" or face.colors or not is_line_art(picture):
            # A generated character is finished art: its colours are changed in place, its
            # own lines and shading kept (re-lining and flat-filling it only made it worse).
            from acgmake.image.recolor import recolor_character

            return recolor_character(working, face, palette)
    lines, ink, mode = extract_line_art(picture, mode=lines_mode, size_px=size_px)
    height, width = ink.shape

    seeds = empty_hints(height, width)
    if hints is not None:
        seeds = hints.resized(height, width)
    if face is not None and palette:
        seeds = seeds.merged(palette_hints(face, palette, height, width))
    if not seeds.mask.any():
        raise UserError(
            "no colour hints: give --hints hints.png (coloured dots or strokes on a "
            "transparent layer the size of the line art), or --palette with a face.json"
        )
    area_map = areas(ink, gap_px=gap_px)
    hinted = np.zeros(area_map.max() + 1, bool)
    hinted[area_map[seeds.mask & ~ink]] = True
    background_label = len(seeds.colours) + 1
    markers = seeds.seeds.copy()
    # Pure black strokes ask for the background: they seed it wherever they are.
    markers[np.concatenate([[False], seeds.clear, [False]])[markers]] = background_label
    # Each hint claims its room, and the page's exterior, which no hint asks to paint, is
    # background from the start; walls at the doors between claims keep each colour from
    # flooding through a gap wider than gap_px (fill.claims).
    claim = claims(ink, area_map, markers)
    walls = doors(claim, area_map)
    markers[strays(claim, markers)] = 0
    markers[claim == EXTERIOR] = background_label
    smoothing_px = max(1.0, 0.5 * enlargement(rgb, working))
    edges = colour_edges(working, smoothing_px=smoothing_px) if mode == "xdog" else None
    labels = fill(ink | walls, markers, gap_px=gap_px, edges=edges)
    _keep_background_outside(
        labels, area_map, hinted | _touching_border(area_map), background_label
    )
    character = labels != background_label
    table = np.vstack([np.zeros((1, 3), np.uint8), seeds.colours, np.zeros((1, 3), np.uint8)])
    flat = table[labels]

    if method == "neural":
        colours = neural_colours(ink, seeds.coloured(), model=model)
        coloured = seeds.colours[~seeds.clear]
        guessed = character & ~hinted[area_map]
        flat = _guess_unhinted(flat, colours, area_map, guessed, coloured)
        shade = neural_shading(colours, flat, area_map, ink)
    elif mode == "xdog":
        shade = shading(working, labels, ink)
    else:
        shade = np.ones((height, width), np.float32)
    # A coloured picture's XDoG finds edges in its background too: keep only the character's.
    keep_lines = character if mode == "xdog" else None
    return paint_layers(flat, character, shade, lines, ink, keep_lines=keep_lines)


#: An area without a hint takes the hint colour nearest to the network's colour for it when
#: that is closer than this (CIELAB distance), else the network's own colour. Measured on
#: held-out drawn characters (benchmarks/colorize_report.py): 60 beats 15, 25 and 40 on both
#: PSNR and ΔE at every hint density; the network's own colour wins only when it is plainly
#: none of the hints (a mouth or an eye's white that no hint names).
GUESS_DIFFERENCE = 60.0


def _guess_unhinted(
    flat: np.ndarray,
    colours: np.ndarray,
    area_map: np.ndarray,
    guessed: np.ndarray,
    hint_colours: np.ndarray,
) -> np.ndarray:
    """``flat`` with each area of ``guessed`` (no hint of its own) painted from the network's
    colours (float 0..1): the nearest of ``hint_colours`` (uint8 K x 3) when the network's
    colour is close to one, so a strand of hair cut off by a line is exactly the hair's
    colour; the network's colour itself when it is plainly none of them (an eye's white)."""
    if not guessed.any():
        return flat
    flat = flat.copy()
    palette = _lab(hint_colours.astype(np.float32) / 255.0)
    for area in np.unique(area_map[guessed]):
        inside = guessed & (area_map == area)
        network = np.median(colours[inside], axis=0).astype(np.float32)
        distances = np.linalg.norm(palette - _lab(network[None]), axis=1)
        if distances.size and distances.min() < GUESS_DIFFERENCE:
            flat[inside] = hint_colours[int(distances.argmin())]
        else:
            flat[inside] = np.round(network * 255)
    return flat


def _lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB of float RGB colours (N x 3, 0..1)."""
    return cv2.cvtColor(rgb.reshape(1, -1, 3).astype(np.float32), cv2.COLOR_RGB2Lab)[0]


def _touching_border(area_map: np.ndarray) -> np.ndarray:
    """Bool per area label: whether the area touches the picture's border."""
    touching = np.zeros(area_map.max() + 1, bool)
    touching[border_areas(area_map)] = True
    return touching


def _keep_background_outside(
    labels: np.ndarray, area_map: np.ndarray, may_be_clear: np.ndarray, background: int
) -> None:
    """An enclosed area without a hint that the flood made background takes instead the
    colour most of its surroundings have: the background only shows where it was asked for
    (a clear mark) or reaches from the border. Works in place on ``labels``."""
    wrong = (labels == background) & ~may_be_clear[area_map]
    boxes = ndimage.find_objects(area_map)
    reach = 6
    for area in np.unique(area_map[wrong]):
        rows, cols = boxes[area - 1]
        window = (
            slice(max(rows.start - reach, 0), rows.stop + reach),
            slice(max(cols.start - reach, 0), cols.stop + reach),
        )
        inside = area_map[window] == area
        ring = ndimage.binary_dilation(inside, iterations=reach) & ~inside
        around = labels[window][ring]
        around = around[around != background]
        if around.size:
            labels[window][inside & (labels[window] == background)] = np.bincount(around).argmax()


def on_paper(picture: np.ndarray) -> np.ndarray:
    """RGB float (0..255) of ``picture``, transparency laid on white paper."""
    pixels = picture.astype(np.float32)
    if pixels.shape[2] == 4:
        alpha = pixels[..., 3:4] / 255.0
        return pixels[..., :3] * alpha + 255.0 * (1.0 - alpha)
    return pixels[..., :3]


def character_regions(
    picture: np.ndarray, face: Face, *, size_px: int = WORKING_SIZE_PX
) -> np.ndarray:
    """The region of every pixel of a generated character ``picture`` (uint8 RGB, any size),
    found from its colours and lines with hints at ``face``'s points, at the working size
    (``size_px`` on the longer side when the picture is smaller). int32 indexes into
    :data:`LABELS`; what :func:`colorize` paints."""
    picture = np.asarray(picture)
    if picture.ndim == 2:
        picture = np.dstack([picture] * 3)
    rgb = np.round(on_paper(picture)).astype(np.uint8)
    # The lines are only barriers between regions here: a generated picture with few or none
    # (an early checkpoint's soft blobs) is segmented by its colours alone, not refused as
    # line art would be (extract_line_art's checks are for pictures to be filled).
    _, ink = line_art(picture, size_px=size_px)
    return _character_labels(to_working_size(rgb, size_px), rgb, face, ink)


def _character_labels(working, rgb, face, ink) -> np.ndarray:
    """:func:`character_regions` of the picture ``rgb``, given its working-size copy and ink."""
    height, width = ink.shape
    hints = face_hints(face, width, height)
    smoothing_px = max(1.0, 0.5 * enlargement(rgb, working))
    labels = segment(working, ink, hints, smoothing_px=smoothing_px)
    if max(rgb.shape[:2]) > REGION_SOURCE_PX and _leaked(labels, hints):
        # Enlarged less than the shipped model's pictures, a soft outline can give XDoG a
        # thin, broken line, and hair, skin and background leak into one area (an upscaled
        # picture, a larger model's). Find the regions where segment() was tuned: on a copy
        # of the shipped model's size.
        scale = REGION_SOURCE_PX / max(rgb.shape[:2])
        small = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        region_rgb = cv2.resize(rgb, small, interpolation=cv2.INTER_AREA)
        region_working = cv2.resize(
            to_working_size(region_rgb, max(working.shape[:2])),
            (width, height),
            interpolation=cv2.INTER_LINEAR,
        )
        _, region_ink = line_art(region_rgb, size_px=max(working.shape[:2]))
        region_ink = cv2.resize(
            region_ink.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST
        ).astype(bool)
        smoothing_px = max(1.0, 0.5 * enlargement(region_rgb, region_working))
        labels = segment(region_working, region_ink, hints, smoothing_px=smoothing_px)
    _keep_clothes_off_the_face(labels, face)
    return labels


def _keep_clothes_off_the_face(labels: np.ndarray, face: Face) -> None:
    """Relabel as skin the islands of clothes that lie within the face box, and clothes or
    background inside an eye: the pale whites and grey shadows of a small model's eyes are
    nearer the clothes' colour than the skin's and came out as patches of it. Clothes that
    reach out of the face box (long hair the colour match took for clothes) stay. In place."""
    height, width = labels.shape
    skin, clothes = LABELS.index("skin"), LABELS.index("clothes")
    background = LABELS.index(BACKGROUND)
    inside = np.zeros((height, width), bool)
    x0, y0, x1, y1 = Face.pixel_box(face.face, width, height)
    inside[y0:y1, x0:x1] = True
    islands, count = ndimage.label(labels == clothes)
    if count:
        total = np.bincount(islands.ravel(), minlength=count + 1)
        within = np.bincount(islands[inside], minlength=count + 1)
        enclosed = within >= 0.9 * np.maximum(total, 1)
        enclosed[0] = False
        labels[enclosed[islands]] = skin
    for eye in face.eyes:
        x0, y0, x1, y1 = Face.pixel_box(eye, width, height)
        part = labels[y0:y1, x0:x1]
        part[(part == clothes) | (part == background)] = skin


def _leaked(labels: np.ndarray, hints: list[Hint]) -> bool:
    """Whether a large hinted region (hair, skin, clothes, background) came out nearly empty:
    its hint's area was swallowed by another region through a broken line."""
    large = {hint.region for hint in hints if hint.region != "eyes"}
    shares = np.bincount(labels.ravel(), minlength=len(LABELS)) / labels.size
    return any(shares[LABELS.index(region)] < 0.01 for region in large)


def colorize(
    rgb: np.ndarray,
    face: Face,
    palette: Mapping[str, RGB],
    *,
    size_px: int = WORKING_SIZE_PX,
    method: str = "flat",
) -> np.ndarray:
    """The character in ``rgb`` (uint8, any size) painted with ``palette``, background clear.

    Hints sit at ``face``'s points. Pictures smaller than ``size_px`` on the longer side are
    enlarged to it first (the lines come out clean there). Returns RGBA uint8 at that size.
    """
    rgb = np.ascontiguousarray(np.asarray(rgb)[..., :3])
    painting = colorize_layers(
        rgb, face=face, palette=palette, method=method, lines_mode="xdog", size_px=size_px
    )
    return painting.composite()
