"""The drawn set: anime-style character portraits drawn with PIL, the shipped model's data.

No anime image data set can be installed here, so acgmake draws its own: front-facing bust
portraits in one canonical layout (face in the middle, eyes at about 55 % of the height, mouth
at 71 %), each with its own hair style and colours, eyes, mouth shape, blink, small head turn
and tilt, accessories and clothes, dark outlines (so line-art extraction works on generated
characters) and a plain light background. Every picture is drawn at 4x and downscaled
(area average) for antialiasing, and is reproducible from ``(seed, index)`` alone.

Each picture's attributes (colours, mouth vowel and openness, eyes open, turn, tilt, and the
face / eye / mouth boxes in normalised 0..1 coordinates) go to ``attributes.jsonl``.
:func:`canonical_layout` gives the layout a generated character follows (for ``face.json``).

    python -m acgmake.models.drawn --out /work/data/drawn --count 20000 --size 64 --seed 0
"""

from __future__ import annotations

import argparse
import colorsys
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from acgmake.models.looks import ACCESSORIES, EYE_COLORS, HAIR_COLORS, HAIR_STYLES

SUPERSAMPLE = 4

# Region ids of the label map (render(..., labels=True)): what each pixel shows.
BACKGROUND, HAIR, SKIN, EYE, MOUTH, CLOTHES, ACCESSORY, LINE = range(8)
REGIONS = ("background", "hair", "skin", "eye", "mouth", "clothes", "accessory", "line")

BANG_STYLES = ("spiky", "straight", "parted", "swept")
MOUTH_SHAPES = ("closed", "a", "i", "u", "e", "o")
COLLARS = ("sailor", "shirt", "round")
SKIN_TONES = ((255, 236, 224), (253, 226, 206), (250, 218, 196), (242, 204, 178), (255, 242, 234))
CLOTHES_COLORS = {
    "navy": (48, 58, 110),
    "white": (244, 244, 248),
    "red": (196, 56, 66),
    "black": (44, 44, 52),
    "sky": (136, 186, 236),
    "pink": (240, 170, 196),
    "green": (86, 150, 104),
    "yellow": (246, 214, 110),
    "grey": (150, 150, 164),
    "purple": (126, 96, 176),
}

Point = tuple[float, float]
Box = list[float]


# ---------------------------------------------------------------------------------------------
# What a portrait shows


@dataclass
class Character:
    """Everything one portrait is drawn from (all random choices, made up front)."""

    hair_style: str
    bangs: str
    hair_color_name: str
    hair_color: tuple[int, int, int]
    eye_color_name: str
    eye_color: tuple[int, int, int]
    skin: tuple[int, int, int]
    clothes_color_name: str
    clothes_color: tuple[int, int, int]
    background: tuple[int, int, int]
    line: tuple[int, int, int]
    collar: str
    accessories: list[str]
    accent: tuple[int, int, int]
    ahoge: bool
    mouth: str
    mouth_open: float
    eyes_open: bool
    turn: float  # -1 .. 1, positive turns the face toward the picture's right
    tilt_deg: float  # positive tilts the head counter-clockwise
    face_width: float
    chin_y: float
    eye_width: float
    eye_height: float
    eye_y: float
    bang_length: float
    side_length: float
    blush: float
    strands: int
    jitter: list[float] = field(default_factory=list)


def _vary(rgb: tuple[int, int, int], rng: np.random.Generator, amount: float) -> tuple:
    """``rgb`` with hue, saturation and value moved a little (amount 0..1)."""
    h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
    h = (h + rng.normal(0, 0.02 * amount)) % 1
    s = float(np.clip(s * (1 + rng.normal(0, 0.12 * amount)), 0, 1))
    v = float(np.clip(v * (1 + rng.normal(0, 0.08 * amount)), 0, 1))
    return tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(h, s, v))


def _hex(rgb: tuple) -> str:
    return "#" + "".join(f"{v:02x}" for v in rgb)


def _mix(a: tuple, b: tuple, t: float) -> tuple[int, int, int]:
    """``a`` moved a fraction ``t`` toward ``b``."""
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b, strict=False))


def random_character(rng: np.random.Generator) -> Character:
    """A random character: style, colours, expression and pose."""
    hair_name = str(rng.choice(list(HAIR_COLORS)))
    eye_name = str(rng.choice(list(EYE_COLORS)))
    clothes_name = str(rng.choice(list(CLOTHES_COLORS)))
    hair = _vary(HAIR_COLORS[hair_name], rng, 1.0)
    hue = rng.random()
    background = tuple(
        int(round(c * 255))
        for c in colorsys.hsv_to_rgb(hue, rng.uniform(0.03, 0.14), rng.uniform(0.93, 1.0))
    )
    line = _mix((38, 28, 36), hair, 0.2)
    n_accessories = rng.choice([0, 1, 2], p=[0.45, 0.4, 0.15])
    accessories = sorted(rng.choice(ACCESSORIES, size=n_accessories, replace=False).tolist())
    mouth = str(rng.choice(MOUTH_SHAPES, p=[0.45, 0.15, 0.1, 0.1, 0.1, 0.1]))
    return Character(
        hair_style=str(rng.choice(HAIR_STYLES, p=[0.2, 0.2, 0.3, 0.18, 0.12])),
        bangs=str(rng.choice(BANG_STYLES, p=[0.4, 0.2, 0.2, 0.2])),
        hair_color_name=hair_name,
        hair_color=hair,
        eye_color_name=eye_name,
        eye_color=_vary(EYE_COLORS[eye_name], rng, 0.8),
        skin=_vary(SKIN_TONES[rng.integers(len(SKIN_TONES))], rng, 0.3),
        clothes_color_name=clothes_name,
        clothes_color=_vary(CLOTHES_COLORS[clothes_name], rng, 0.6),
        background=background,
        line=line,
        collar=str(rng.choice(COLLARS)),
        accessories=accessories,
        accent=_vary(
            ((220, 50, 70), (250, 250, 250), (60, 90, 200), (250, 200, 60))[rng.integers(4)],
            rng,
            0.5,
        ),
        ahoge=bool(rng.random() < 0.35),
        mouth=mouth,
        mouth_open=0.0 if mouth == "closed" else float(rng.uniform(0.35, 1.0)),
        eyes_open=bool(rng.random() > 0.12),
        turn=float(np.clip(rng.normal(0, 0.35), -1, 1)),
        tilt_deg=float(np.clip(rng.normal(0, 3.0), -8, 8)),
        face_width=float(rng.uniform(0.165, 0.19)),
        chin_y=float(rng.uniform(0.745, 0.78)),
        eye_width=float(rng.uniform(0.088, 0.105)),
        eye_height=float(rng.uniform(0.10, 0.125)),
        eye_y=float(rng.uniform(0.535, 0.555)),
        bang_length=float(rng.uniform(0.40, 0.445)),
        side_length=float(rng.uniform(0.66, 0.8)),
        blush=float(rng.uniform(0.0, 0.7)),
        strands=int(rng.integers(5, 9)),
        jitter=rng.uniform(-1, 1, size=16).tolist(),
    )


# ---------------------------------------------------------------------------------------------
# Drawing helpers


def _bezier(points: list[Point], n: int = 16) -> list[Point]:
    """Points along a Bezier curve of any degree (de Casteljau)."""
    result = []
    for t in np.linspace(0, 1, n):
        layer = [np.asarray(p, dtype=float) for p in points]
        while len(layer) > 1:
            layer = [(1 - t) * a + t * b for a, b in zip(layer, layer[1:], strict=False)]
        result.append((float(layer[0][0]), float(layer[0][1])))
    return result


def _ellipse_points(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n=24):
    """Points on an ellipse from angle a0 to a1 (degrees, 0 = right, 90 = down)."""
    return [
        (cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
        for a in np.linspace(a0, a1, n)
    ]


# The parts are drawn in a 1 x 1 frame and then enlarged about ZOOM_CENTER, so that the face
# fills more of a small picture.
ZOOM = 1.12
ZOOM_CENTER = (0.5, 0.45)


def zoom(point: Point) -> Point:
    """Where a point of the drawing frame ends up in the picture."""
    return (
        ZOOM_CENTER[0] + (point[0] - ZOOM_CENTER[0]) * ZOOM,
        ZOOM_CENTER[1] + (point[1] - ZOOM_CENTER[1]) * ZOOM,
    )


def zoom_box(box: Box) -> Box:
    return [*zoom((box[0], box[1])), *zoom((box[2], box[3]))]


class Painter:
    """Draws in normalised coordinates onto an RGBA layer and, optionally, a label map."""

    def __init__(self, size: int, labels: bool) -> None:
        self.size = size
        self.image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
        self.draw = ImageDraw.Draw(self.image, "RGBA")
        self.labels = Image.new("L", (size, size), 0) if labels else None
        self.label_draw = ImageDraw.Draw(self.labels) if labels else None

    def _px(self, points: list[Point]) -> list[tuple[float, float]]:
        return [(x * self.size, y * self.size) for x, y in map(zoom, points)]

    def _width(self, width: float) -> int:
        return max(1, int(round(width * ZOOM * self.size)))

    def polygon(self, points, fill, label, line=None, width=0.0) -> None:
        pts = self._px(points)
        self.draw.polygon(pts, fill=fill)
        if self.label_draw is not None:
            self.label_draw.polygon(pts, fill=label)
        if line is not None and width > 0:
            self.line(points + points[:1], line, width)

    def line(self, points, color, width, label=LINE) -> None:
        pts = self._px(points)
        self.draw.line(pts, fill=color, width=self._width(width), joint="curve")
        if self.label_draw is not None:
            self.label_draw.line(pts, fill=label, width=self._width(width), joint="curve")
        # Round the ends, as a pen would.
        radius = width * ZOOM * self.size / 2
        for x, y in (pts[0], pts[-1]):
            self.draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=color)

    def ellipse(self, box: Box, fill, label, line=None, width=0.0) -> None:
        x0, y0, x1, y1 = (v * self.size for v in zoom_box(box))
        outline_width = self._width(width) if line is not None and width > 0 else 0
        self.draw.ellipse((x0, y0, x1, y1), fill=fill, outline=line, width=outline_width)
        if self.label_draw is not None and label is not None:
            self.label_draw.ellipse((x0, y0, x1, y1), fill=label)
            if outline_width:
                self.label_draw.ellipse((x0, y0, x1, y1), outline=LINE, width=outline_width)

    def rounded_rectangle(self, box: Box, radius: float, line, width: float, label) -> None:
        """The outline of a rounded rectangle (a glasses frame)."""
        xy = [v * self.size for v in zoom_box(box)]
        pixels = self._width(width)
        self.draw.rounded_rectangle(xy, radius * ZOOM * self.size, outline=line, width=pixels)
        if self.label_draw is not None:
            self.label_draw.rounded_rectangle(
                xy, radius * ZOOM * self.size, outline=label, width=pixels
            )


def _rotate_point(point: Point, center: Point, degrees: float) -> Point:
    """``point`` turned about ``center`` as PIL's ``Image.rotate`` turns pixels (CCW)."""
    angle = math.radians(degrees)
    dx, dy = point[0] - center[0], point[1] - center[1]
    return (
        center[0] + dx * math.cos(angle) + dy * math.sin(angle),
        center[1] - dx * math.sin(angle) + dy * math.cos(angle),
    )


def _rotate_box(box: Box, center: Point, degrees: float) -> Box:
    corners = [(box[0], box[1]), (box[2], box[1]), (box[0], box[3]), (box[2], box[3])]
    turned = [_rotate_point(c, center, degrees) for c in corners]
    xs, ys = [p[0] for p in turned], [p[1] for p in turned]
    return [min(xs), min(ys), max(xs), max(ys)]


def _bounds(points: list[Point]) -> Box:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return [min(xs), min(ys), max(xs), max(ys)]


# ---------------------------------------------------------------------------------------------
# The parts of a portrait


LINE_WIDTH = 0.014  # about one pixel at 64 x 64
NECK_PIVOT = (0.5, 0.78)  # the head tilts about the neck (drawing frame)


def _face_outline(c: Character) -> list[Point]:
    """The face: round skull, cheeks, and a small pointed anime chin."""
    cx = 0.5 + c.turn * 0.012
    fw = c.face_width
    top = _ellipse_points(0.5, 0.45, fw, 0.25, 180, 360, 20)
    chin_x = 0.5 + c.turn * 0.03
    right = _bezier(
        [(0.5 + fw, 0.45), (0.5 + fw * 1.0, 0.58), (cx + fw * 0.75, 0.68), (chin_x, c.chin_y)], 14
    )
    left = _bezier(
        [(chin_x, c.chin_y), (cx - fw * 0.75, 0.68), (0.5 - fw * 1.0, 0.58), (0.5 - fw, 0.45)], 14
    )
    return top + right[1:] + left[1:-1]


def _draw_back_hair(p: Painter, c: Character, hair, dark) -> None:
    fw = c.face_width
    style = c.hair_style
    if style in ("long", "hime"):
        bottom = 1.02 if style == "long" else 0.97
        half = fw + 0.09 + 0.02 * c.jitter[0]
        pts = (
            _ellipse_points(0.5, 0.40, fw + 0.06, 0.29, 180, 360, 16)
            + [(0.5 + half, 0.65), (0.5 + half + 0.03, bottom), (0.5 - half - 0.03, bottom)]
            + [(0.5 - half, 0.65)]
        )
        p.polygon(pts, dark, HAIR, c.line, LINE_WIDTH)
    elif style == "bob":
        pts = _ellipse_points(0.5, 0.42, fw + 0.07, 0.29, 180, 360, 16) + [
            (0.5 + fw + 0.08, 0.74),
            (0.5 - fw - 0.08, 0.74),
        ]
        p.polygon(pts, dark, HAIR, c.line, LINE_WIDTH)
    elif style == "twintails":
        for side in (-1, 1):
            root = (0.5 + side * (fw + 0.04), 0.27)
            sway = 0.03 * c.jitter[1]
            outer = _bezier(
                [
                    root,
                    (0.5 + side * (fw + 0.2), 0.36),
                    (0.5 + side * (fw + 0.19 + sway), 0.7),
                    (0.5 + side * (fw + 0.12 + sway), 0.98),
                ],
                14,
            )
            inner = _bezier(
                [
                    (0.5 + side * (fw + 0.10 + sway), 0.98),
                    (0.5 + side * (fw + 0.07), 0.7),
                    (0.5 + side * (fw + 0.05), 0.42),
                    (0.5 + side * (fw + 0.0), 0.33),
                ],
                12,
            )
            p.polygon(outer + inner, hair, HAIR, c.line, LINE_WIDTH)
            p.line(
                _bezier(
                    [
                        (0.5 + side * (fw + 0.09), 0.4),
                        (0.5 + side * (fw + 0.13), 0.66),
                        (0.5 + side * (fw + 0.13 + sway), 0.9),
                    ],
                    8,
                ),
                c.line,
                LINE_WIDTH * 0.7,
            )
        p.polygon(_ellipse_points(0.5, 0.41, fw + 0.055, 0.28, 180, 360, 16), dark, HAIR)


def _draw_body(p: Painter, c: Character) -> None:
    clothes = c.clothes_color
    shade = _mix(clothes, (20, 20, 40), 0.25)
    body = _bezier([(0.43, 0.8), (0.3, 0.82), (0.16, 0.86), (0.08, 1.05)], 12) + _bezier(
        [(0.92, 1.05), (0.84, 0.86), (0.7, 0.82), (0.57, 0.8)], 12
    )
    p.polygon(body, clothes, CLOTHES, c.line, LINE_WIDTH)
    # Neck (skin) with the chin's shadow on it.
    neck = [(0.455, 0.66), (0.545, 0.66), (0.55, 0.84), (0.45, 0.84)]
    p.polygon(neck, c.skin, SKIN, c.line, LINE_WIDTH)
    p.polygon(
        [(0.457, 0.66), (0.543, 0.66), (0.546, 0.775), (0.5, 0.8), (0.454, 0.775)],
        _mix(c.skin, (200, 120, 120), 0.18),
        SKIN,
    )
    white = (246, 246, 250) if c.clothes_color_name != "white" else (48, 58, 110)
    if c.collar == "sailor":
        for side in (-1, 1):
            flap = [
                (0.5 + side * 0.05, 0.8),
                (0.5 + side * 0.2, 0.83),
                (0.5 + side * 0.3, 0.9),
                (0.5 + side * 0.05, 0.99),
            ]
            p.polygon(flap, white, CLOTHES, c.line, LINE_WIDTH)
            p.line(
                [(0.5 + side * 0.19, 0.855), (0.5 + side * 0.25, 0.9), (0.5 + side * 0.08, 0.96)],
                c.accent,
                LINE_WIDTH * 0.9,
                label=CLOTHES,
            )
        p.polygon([(0.5, 0.9), (0.45, 0.96), (0.5, 1.02), (0.55, 0.96)], c.accent, CLOTHES)
        p.polygon(
            [(0.5, 0.93), (0.44, 0.9), (0.44, 0.97), (0.56, 0.97), (0.56, 0.9)],
            c.accent,
            CLOTHES,
            c.line,
            LINE_WIDTH * 0.8,
        )
    elif c.collar == "shirt":
        p.polygon([(0.45, 0.8), (0.55, 0.8), (0.5, 0.95)], white, CLOTHES)
        for side in (-1, 1):
            p.polygon(
                [(0.5 + side * 0.055, 0.79), (0.5 + side * 0.13, 0.86), (0.5, 0.9)],
                white,
                CLOTHES,
                c.line,
                LINE_WIDTH,
            )
        p.polygon(
            [(0.5, 0.885), (0.47, 0.91), (0.49, 1.02), (0.51, 1.02), (0.53, 0.91)],
            c.accent,
            CLOTHES,
            c.line,
            LINE_WIDTH * 0.8,
        )
    else:
        p.polygon(
            _bezier([(0.42, 0.8), (0.5, 0.9), (0.58, 0.8)], 10), c.skin, SKIN, c.line, LINE_WIDTH
        )
        p.line(_bezier([(0.3, 0.83), (0.5, 0.95), (0.7, 0.83)], 10), shade, LINE_WIDTH * 0.8)


def _draw_eye(p: Painter, c: Character, center: Point, side: int, squash: float) -> Box:
    """One eye (side -1: the picture's left); returns its box."""
    ex, ey = center
    w, h = c.eye_width * squash, c.eye_height
    line = c.line
    if not c.eyes_open:
        # Closed: a downward arc with a flick of lashes at the outer corner.
        arc = _bezier(
            [(ex - w / 2, ey + 0.05 * h), (ex, ey + 0.34 * h), (ex + w / 2, ey + 0.05 * h)]
        )
        p.line(arc, line, LINE_WIDTH * 1.4)
        outer = (ex + side * w / 2, ey + 0.05 * h)
        p.line([outer, (outer[0] + side * 0.018, outer[1] - 0.012)], line, LINE_WIDTH)
        return _bounds(arc + [(outer[0] + side * 0.018, outer[1] - 0.012)])

    box = [ex - w / 2, ey - h / 2, ex + w / 2, ey + h / 2]
    p.ellipse(box, (252, 252, 255), EYE)
    iris = c.eye_color
    iris_box = [ex - 0.36 * w, ey - 0.4 * h, ex + 0.36 * w, ey + 0.47 * h]
    p.ellipse(iris_box, iris, EYE, _mix(iris, (0, 0, 0), 0.55), LINE_WIDTH * 0.6)
    # Darker upper half, as anime irises are shaded under the lid.
    upper = _ellipse_points(ex, ey + 0.035 * h, 0.34 * w, 0.41 * h, 180, 360, 16)
    p.polygon(upper, _mix(iris, (10, 10, 30), 0.4), EYE)
    pupil = [ex - 0.14 * w, ey - 0.12 * h, ex + 0.14 * w, ey + 0.22 * h]
    p.ellipse(pupil, _mix(iris, (10, 10, 30), 0.75), EYE)
    glint = 0.13 * w
    gx, gy = ex - side * 0.12 * w, ey - 0.14 * h
    p.ellipse([gx - glint, gy - glint, gx + glint, gy + glint], (255, 255, 255), EYE)
    small = 0.06 * w
    sx, sy = ex + side * 0.14 * w, ey + 0.25 * h
    p.ellipse([sx - small, sy - small, sx + small, sy + small], (255, 255, 255), EYE)
    # Upper lash: thick at the outer corner, thin at the inner one, with a flick.
    lid = _ellipse_points(ex, ey + 0.02 * h, w / 2 * 1.04, h * 0.52, 195, 345, 14)
    if side < 0:
        lid = lid[::-1]  # inner corner first
    thickness = np.linspace(0.05, 0.2, len(lid)) * h
    top = [(x, y - t) for (x, y), t in zip(lid, thickness, strict=True)]
    tip = (lid[-1][0] + side * 0.022, lid[-1][1] - 0.012)
    p.polygon(lid + [tip] + top[::-1], line, EYE)
    lower = _ellipse_points(ex, ey - 0.02 * h, w / 2 * 0.8, h * 0.5, 60, 120, 6)
    p.line(lower, _mix(line, iris, 0.3), LINE_WIDTH * 0.6, label=EYE)
    return _bounds(top + [tip, (ex, ey + h / 2)] + [(ex - w / 2, ey), (ex + w / 2, ey)])


def _mouth_outline(shape: str, openness: float, mx: float, my: float) -> list[Point]:
    """An open mouth for a vowel (a i u e o): a rounded shape, wide or tall by vowel."""
    width, height = {
        "a": (0.062, 0.055),
        "i": (0.07, 0.022),
        "u": (0.032, 0.032),
        "e": (0.058, 0.036),
        "o": (0.042, 0.052),
    }[shape]
    height *= 0.4 + 0.6 * openness
    top = _bezier([(mx - width / 2, my), (mx, my - height * 0.25), (mx + width / 2, my)], 10)
    bottom = _bezier(
        [(mx + width / 2, my), (mx + width * 0.35, my + height), (mx - width * 0.35, my + height)]
        + [(mx - width / 2, my)],
        14,
    )
    return top + bottom[1:-1]


def _draw_face(p: Painter, c: Character) -> dict:
    """Face, eyes, brows, nose, mouth and blush; returns the boxes (before tilt)."""
    outline = _face_outline(c)
    p.polygon(outline, c.skin, SKIN, c.line, LINE_WIDTH)
    for side in (-1, 1):  # ears, half hidden by hair
        ear = [0.5 + side * (c.face_width - 0.012), 0.535]
        p.ellipse(
            [ear[0] - 0.025, ear[1] - 0.04, ear[0] + 0.025, ear[1] + 0.04],
            c.skin,
            SKIN,
            c.line,
            LINE_WIDTH,
        )
    p.polygon(outline, c.skin, SKIN)
    p.line(outline[5:-4], c.line, LINE_WIDTH)

    fx = 0.5 + c.turn * 0.035
    eyes = []
    for side in (-1, 1):
        # The eye on the side the face turns away from is foreshortened.
        squash = 1 - 0.22 * max(0.0, -side * c.turn)
        gap = 0.087 + 0.01 * c.jitter[2]
        center = (fx + side * gap * (1 - 0.1 * max(0.0, -side * c.turn)), c.eye_y)
        brow_y = c.eye_y - c.eye_height / 2 - 0.028 - 0.006 * c.jitter[3]
        brow = _bezier(
            [
                (center[0] - side * 0.03, brow_y + 0.008),
                (center[0] + side * 0.005, brow_y - 0.006),
                (center[0] + side * 0.045, brow_y + 0.004),
            ],
            8,
        )
        p.line(brow, _mix(c.line, c.hair_color, 0.35), LINE_WIDTH * 0.8)
        eyes.append(_draw_eye(p, c, center, side, squash))

    if c.blush > 0.05:
        # Opaque, mixed into the skin colour: a translucent fill would make the layer
        # itself translucent there.
        blush = _mix(c.skin, (255, 110, 130), 0.15 + 0.35 * c.blush)
        for side in (-1, 1):
            bx = fx + side * 0.115
            p.ellipse([bx - 0.04, 0.618 - 0.018, bx + 0.04, 0.618 + 0.018], blush, None)
    nose_x = fx + c.turn * 0.012
    p.line([(nose_x, 0.616), (nose_x - 0.006, 0.632)], _mix(c.line, c.skin, 0.45), LINE_WIDTH * 0.7)

    mx, my = fx + c.turn * 0.005, 0.685
    if c.mouth == "closed":
        smile = _bezier([(mx - 0.026, my - 0.003), (mx, my + 0.01), (mx + 0.026, my - 0.003)], 8)
        p.line(smile, c.line, LINE_WIDTH * 0.9, label=MOUTH)
        mouth_box = _bounds(smile)
    else:
        shape = _mouth_outline(c.mouth, c.mouth_open, mx, my)
        p.polygon(shape, (150, 44, 60), MOUTH, c.line, LINE_WIDTH * 0.9)
        box = _bounds(shape)
        if c.mouth in ("a", "o", "e") and box[3] - box[1] > 0.03:
            tongue = [mx - (box[2] - box[0]) * 0.28, box[3] - 0.016, mx + (box[2] - box[0]) * 0.28]
            p.ellipse([tongue[0], tongue[1], tongue[2], box[3] - 0.002], (236, 120, 130), MOUTH)
        if c.mouth in ("i", "e"):
            p.polygon(
                [(box[0] + 0.008, my + 0.001), (box[2] - 0.008, my + 0.001)]
                + [(box[2] - 0.012, my + 0.008), (box[0] + 0.012, my + 0.008)],
                (255, 255, 255),
                MOUTH,
            )
        mouth_box = box
    return {"face": _bounds(outline), "eyes": eyes, "mouth": mouth_box, "mouth_center": [mx, my]}


def _bang_edge(c: Character) -> list[Point]:
    """The lower edge of the fringe, from the right temple to the left one."""
    fw = c.face_width
    x_right, x_left = 0.5 + fw + 0.025, 0.5 - fw - 0.025
    n = c.strands
    xs = np.linspace(x_right, x_left, n * 2 + 1)
    edge: list[Point] = []
    for i, x in enumerate(xs):
        tip = i % 2 == 1
        if c.bangs == "straight":
            y = c.bang_length - 0.012 if tip else c.bang_length - 0.028
        elif c.bangs == "parted" and abs(x - 0.5) < 0.04:
            y = 0.31 if not tip else 0.35
        else:
            y = c.bang_length + 0.006 * c.jitter[4 + i % 8] if tip else c.bang_length - 0.095
        if c.bangs == "swept" and tip:
            x += 0.025  # every strand leans toward the picture's right
        # Keep the fringe clear of the eyes near the temples.
        y = min(y, c.bang_length - 0.05 * (abs(x - 0.5) / fw) ** 2)
        edge.append((float(x), float(y)))
    return edge


def _draw_front_hair(p: Painter, c: Character, hair, dark, light) -> None:
    fw = c.face_width
    cap = _ellipse_points(0.5, 0.405, fw + 0.055, 0.285, 180, 360, 24)
    left_lock_top, right_lock_top = (0.5 - fw - 0.055, 0.405), (0.5 + fw + 0.055, 0.405)
    side_tip = c.side_length if c.hair_style != "short" else min(c.side_length, 0.66)
    right_lock = _bezier(
        [right_lock_top, (0.5 + fw + 0.05, 0.55), (0.5 + fw + 0.01, side_tip)], 10
    ) + _bezier([(0.5 + fw - 0.02, side_tip - 0.05), (0.5 + fw - 0.02, 0.5), (0.5 + fw, 0.42)], 8)
    left_lock = _bezier(
        [(0.5 - fw, 0.42), (0.5 - fw + 0.02, 0.5), (0.5 - fw + 0.02, side_tip - 0.05)], 8
    ) + _bezier([(0.5 - fw - 0.01, side_tip), (0.5 - fw - 0.05, 0.55), left_lock_top], 10)
    outline = cap + right_lock + _bang_edge(c) + left_lock
    if c.hair_style == "hime":  # hime cut: straight side locks to the jaw
        outline = cap + [(0.5 + fw + 0.05, 0.72), (0.5 + fw - 0.03, 0.72), (0.5 + fw - 0.03, 0.42)]
        outline += _bang_edge(c) + [(0.5 - fw + 0.03, 0.42), (0.5 - fw + 0.03, 0.72)]
        outline += [(0.5 - fw - 0.05, 0.72)]
    p.polygon(outline, hair, HAIR, c.line, LINE_WIDTH)
    # Strand lines from the fringe tips up into the hair.
    for x, y in _bang_edge(c)[1::2]:
        p.line(
            _bezier([(x, y - 0.012), (x + 0.01 * (0.5 - x) / fw, y - 0.06), (0.5, 0.2)], 6)[:3],
            _mix(c.line, hair, 0.3),
            LINE_WIDTH * 0.6,
        )
    # Angel ring: the glossy band of light across the top.
    ring = _ellipse_points(0.5, 0.33, fw + 0.02, 0.14, 205, 335, 12)
    for (x0, y0), (x1, y1) in zip(ring[::2], ring[1::2], strict=True):
        p.polygon([(x0, y0), (x1, y1), ((x0 + x1) / 2, y1 + 0.022)], light, HAIR)
    if c.ahoge:
        lean = 1 if c.jitter[12] > 0 else -1
        strand = _bezier(
            [
                (0.5, 0.13),
                (0.5 + lean * 0.02, 0.05),
                (0.5 + lean * 0.07, 0.03),
                (0.5 + lean * 0.07, 0.08),
            ],
            10,
        )
        p.line(strand, c.line, LINE_WIDTH * 2.6, label=HAIR)
        p.line(strand, hair, LINE_WIDTH * 1.2, label=HAIR)


def _draw_accessories(p: Painter, c: Character) -> None:
    fw = c.face_width
    accent = c.accent
    if "headband" in c.accessories:
        band = _ellipse_points(0.5, 0.41, fw + 0.058, 0.285, 200, 340, 16)
        p.line(band, c.line, LINE_WIDTH * 3.2, label=ACCESSORY)
        p.line(band, accent, LINE_WIDTH * 1.8, label=ACCESSORY)
    if "ribbon" in c.accessories:
        side = 1 if c.jitter[13] > 0 else -1
        kx, ky = 0.5 + side * (fw + 0.01), 0.16
        for wing in (-1, 1):
            p.polygon(
                [(kx, ky), (kx + wing * 0.075, ky - 0.05), (kx + wing * 0.08, ky + 0.045)],
                accent,
                ACCESSORY,
                c.line,
                LINE_WIDTH,
            )
        p.ellipse(
            [kx - 0.018, ky - 0.018, kx + 0.018, ky + 0.018], accent, ACCESSORY, c.line, LINE_WIDTH
        )
    if "hairpin" in c.accessories:
        side = -1 if c.jitter[14] > 0 else 1
        for k in range(2):
            x = 0.5 + side * (0.09 + 0.025 * k)
            p.line(
                [(x - 0.02, 0.33 + 0.02 * k), (x + 0.02, 0.3 + 0.02 * k)],
                accent,
                LINE_WIDTH * 1.6,
                label=ACCESSORY,
            )


def _draw_glasses(p: Painter, c: Character, eyes: list[Box]) -> None:
    frame = _mix(c.accent, (30, 30, 40), 0.5)
    half_w, half_h = c.eye_width * 0.72, c.eye_height * 0.48
    centers = sorted((box[0] + box[2]) / 2 for box in eyes)
    for x in centers:
        p.rounded_rectangle(
            [x - half_w, c.eye_y - half_h, x + half_w, c.eye_y + half_h + 0.01],
            0.02,
            frame,
            LINE_WIDTH,
            ACCESSORY,
        )
    bridge_y = c.eye_y - 0.02
    p.line(
        [(centers[0] + half_w, bridge_y), (centers[1] - half_w, bridge_y)],
        frame,
        LINE_WIDTH,
        label=ACCESSORY,
    )


# ---------------------------------------------------------------------------------------------
# A whole portrait


@dataclass
class Drawing:
    """One drawn portrait: the picture, its attributes and (optionally) its label map."""

    image: Image.Image
    attributes: dict
    labels: np.ndarray | None = None


def render(character: Character, size: int = 64, *, labels: bool = False) -> Drawing:
    """Draw ``character`` as a ``size`` x ``size`` RGB portrait with its attributes.

    Boxes in the attributes are normalised (0..1) ``[x0, y0, x1, y1]``, after the head tilt.
    With ``labels``, the drawing also has a region-id map (see ``REGIONS``) at ``size``.
    """
    c = character
    big = size * SUPERSAMPLE
    hair = c.hair_color
    dark = _mix(hair, (20, 16, 40), 0.28)
    light = _mix(hair, (255, 255, 255), 0.45)

    back = Painter(big, labels)
    _draw_back_hair(back, c, hair, dark)
    body = Painter(big, labels)
    _draw_body(body, c)
    head = Painter(big, labels)
    boxes = _draw_face(head, c)
    _draw_front_hair(head, c, hair, dark, light)
    _draw_accessories(head, c)
    if "glasses" in c.accessories:
        _draw_glasses(head, c, boxes["eyes"])

    canvas = Image.new("RGBA", (big, big), c.background + (255,))
    label_map = Image.new("L", (big, big), BACKGROUND) if labels else None
    neck = zoom(NECK_PIVOT)
    pivot = (neck[0] * big, neck[1] * big)
    for painter, tilted in ((back, True), (body, False), (head, True)):
        layer, layer_labels = painter.image, painter.labels
        if tilted and abs(c.tilt_deg) > 1e-3:
            # Premultiplied alpha, so the transparent surround does not darken the edges.
            layer = (
                layer.convert("RGBa")
                .rotate(c.tilt_deg, Image.Resampling.BICUBIC, center=pivot)
                .convert("RGBA")
            )
            if layer_labels is not None:
                layer_labels = layer_labels.rotate(
                    c.tilt_deg, Image.Resampling.NEAREST, center=pivot
                )
        canvas.alpha_composite(layer)
        if label_map is not None:
            label_map.paste(layer_labels, mask=layer_labels.point(lambda v: 255 if v else 0))
    image = canvas.convert("RGB").resize((size, size), Image.Resampling.BOX)

    def turn_box(box: Box) -> list[float]:
        return [round(v, 4) for v in _rotate_box(zoom_box(box), neck, c.tilt_deg)]

    eyes = sorted(turn_box(b) for b in boxes["eyes"])
    mouth_center = _rotate_point(zoom(boxes["mouth_center"]), neck, c.tilt_deg)
    attributes = {
        "hair_style": c.hair_style,
        "bangs": c.bangs,
        "hair_color": c.hair_color_name,
        "hair_rgb": _hex(c.hair_color),
        "eye_color": c.eye_color_name,
        "eye_rgb": _hex(c.eye_color),
        "skin_rgb": _hex(c.skin),
        "clothes_color": c.clothes_color_name,
        "clothes_rgb": _hex(c.clothes_color),
        "background_rgb": _hex(c.background),
        "collar": c.collar,
        "accessories": c.accessories,
        "ahoge": c.ahoge,
        "mouth": c.mouth,
        "mouth_open": round(c.mouth_open, 3),
        "eyes_open": c.eyes_open,
        "turn": round(c.turn, 3),
        "tilt_deg": round(c.tilt_deg, 2),
        "face": turn_box(boxes["face"]),
        "eyes": eyes,
        "mouth_box": turn_box(boxes["mouth"]),
        "mouth_center": [round(v, 4) for v in mouth_center],
    }
    label_array = None
    if label_map is not None:
        label_array = np.asarray(label_map.resize((size, size), Image.Resampling.NEAREST))
    return Drawing(image, attributes, label_array)


def draw_character(seed: int, index: int, size: int = 64, *, labels: bool = False) -> Drawing:
    """Portrait number ``index`` of the set drawn with ``seed`` (independent of the count)."""
    rng = np.random.default_rng([seed, index])
    return render(random_character(rng), size, labels=labels)


# ---------------------------------------------------------------------------------------------
# The canonical layout (what face.json says about a generated character)

# Means over 4,000 drawings (seed 0; tests/test_character.py measures them again). The mouth
# box is the region every mouth shape fits in, around the mean mouth centre. Hint points are
# chosen to land on their region in nearly every drawing, whatever the hair style or pose.
LAYOUT = {
    "face": [0.2879, 0.1634, 0.7117, 0.8083],
    "mouth": [0.455, 0.698, 0.545, 0.778],
    "eyes": [[0.3247, 0.4837, 0.4592, 0.618], [0.5407, 0.4836, 0.6752, 0.6179]],
    "points": {
        "hair": [0.5, 0.24],
        "skin": [0.41, 0.68],
        "eyes": [[0.4026, 0.56], [0.5974, 0.56]],
        "clothes": [0.24, 0.95],
        "background": [0.06, 0.06],
    },
}


def canonical_layout() -> dict:
    """Where face, mouth, eyes and colour hints sit in a drawn (or generated) portrait.

    Returns the ``face.json`` fields ``face``, ``mouth``, ``eyes`` (boxes ``[x0, y0, x1, y1]``,
    normalised, left eye first) and ``points`` (hint points ``[x, y]`` for hair, skin, eyes,
    clothes and background). The mouth box is the region any mouth shape fits in.
    """
    return json.loads(json.dumps(LAYOUT))


def measure_layout(count: int = 4000, seed: int = 0, size: int = 64) -> dict:
    """Mean boxes and, per hint point, how often it lands on its region (for checking LAYOUT)."""
    faces, left, right, mouths = [], [], [], []
    hits: dict[str, list[bool]] = {}
    layout = canonical_layout()
    wanted = {
        "hair": (layout["points"]["hair"], {HAIR}),
        "skin": (layout["points"]["skin"], {SKIN}),
        "eye_left": (layout["points"]["eyes"][0], {EYE}),
        "eye_right": (layout["points"]["eyes"][1], {EYE}),
        "clothes": (layout["points"]["clothes"], {CLOTHES}),
        "background": (layout["points"]["background"], {BACKGROUND}),
    }
    for index in range(count):
        drawing = draw_character(seed, index, size, labels=True)
        a = drawing.attributes
        faces.append(a["face"])
        left.append(a["eyes"][0])
        right.append(a["eyes"][1])
        mouths.append(a["mouth_center"])
        for name, (point, regions) in wanted.items():
            if name.startswith("eye") and not a["eyes_open"]:
                continue
            x = min(size - 1, int(point[0] * size))
            y = min(size - 1, int(point[1] * size))
            hits.setdefault(name, []).append(int(drawing.labels[y, x]) in regions)
    mouth = np.mean(mouths, axis=0)
    return {
        "face": np.mean(faces, axis=0).round(4).tolist(),
        "eyes": [np.mean(left, axis=0).round(4).tolist(), np.mean(right, axis=0).round(4).tolist()],
        "mouth_center": mouth.round(4).tolist(),
        "hit_rate": {name: float(np.mean(v)) for name, v in hits.items()},
    }


# ---------------------------------------------------------------------------------------------
# Writing a data set


def write_set(
    out: Path,
    count: int,
    size: int = 64,
    seed: int = 0,
    *,
    holdout: int = 0,
    labels: bool = False,
    progress: bool = False,
) -> Path:
    """Draw ``count`` portraits into ``out`` (PNGs + ``attributes.jsonl``); returns ``out``.

    The last ``holdout`` of them go to ``out/holdout/`` with their own ``attributes.jsonl``
    (a held-out split for evaluation). Same arguments, same files, byte for byte.
    """
    out = Path(out)
    folders = {False: out, True: out / "holdout"}
    for folder in folders.values() if holdout else (out,):
        folder.mkdir(parents=True, exist_ok=True)
    records: dict[bool, list[str]] = {False: [], True: []}
    started = time.perf_counter()
    for index in range(count):
        drawing = draw_character(seed, index, size, labels=labels)
        held = index >= count - holdout
        name = f"{index:06d}.png"
        drawing.image.save(folders[held] / name, optimize=False)
        if labels:
            Image.fromarray(drawing.labels).save(folders[held] / f"{index:06d}.labels.png")
        record = {"file": name, "seed": seed, "index": index, "size": size}
        record.update(drawing.attributes)
        records[held].append(json.dumps(record, sort_keys=False))
        if progress and (index + 1) % 1000 == 0:
            rate = (index + 1) / (time.perf_counter() - started)
            print(f"drew {index + 1}/{count} ({rate:.0f} images/s)", file=sys.stderr, flush=True)
    for held, lines in records.items():
        if lines:
            (folders[held] / "attributes.jsonl").write_text("\n".join(lines) + "\n", "utf-8")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m acgmake.models.drawn",
        description="Draw the acgmake character set: PNG portraits plus attributes.jsonl.",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    parser.add_argument("--count", type=int, default=20000, help="number of portraits")
    parser.add_argument("--size", type=int, default=64, help="side in pixels (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="set seed (default 0)")
    parser.add_argument("--holdout", type=int, default=0, help="last N go to OUT/holdout/")
    parser.add_argument("--labels", action="store_true", help="also write region label maps")
    args = parser.parse_args(argv)
    write_set(
        args.out,
        args.count,
        args.size,
        args.seed,
        holdout=args.holdout,
        labels=args.labels,
        progress=True,
    )
    print(f"wrote {args.count} portraits to {args.out}")


if __name__ == "__main__":
    main()
