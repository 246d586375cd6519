"""Training pairs: clean line art of acgmake's drawn characters, and rough pencil sketches of it.

The paper traced clean drawings over rough sketches; here it goes the other way. A drawn
portrait is rendered with every fill white and every line black, which gives its line art
exactly (outlines, eyes, mouth, hair strands); :func:`roughen` then draws it again as a pencil
sketch would look: each stroke one to four times, slightly shifted, turned and wobbling, with
varying pressure and width, gaps, smudges, construction lines and stray marks, graphite grain,
on textured paper of varying brightness under uneven light, blurred and noisy as a scan or a
photo is (in grey: the network reads a sketch's luminance). Everything is seeded, so a pair
is reproducible from ``(seed, index)``.

Not used at run time: only the trainer, the report and the tests read this module.
"""

from __future__ import annotations

import dataclasses
import io

import cv2
import numpy as np
from PIL import Image, ImageDraw

from acgmake.models import drawn

WHITE = (255, 255, 255)


def clean_lines(seed: int, index: int, size: int) -> np.ndarray:
    """The line art of drawn portrait ``(seed, index)`` at ``size`` px: float32 ink in [0, 1]
    (1 = line), crisp (the drawing's own antialiasing only)."""
    rng = np.random.default_rng([seed, index])
    character = drawn.random_character(rng)
    bare = dataclasses.replace(
        character, hair_color=WHITE, skin=WHITE, clothes_color=WHITE, background=WHITE,
        eye_color=WHITE, accent=WHITE, line=(0, 0, 0), blush=0.0,
    )  # fmt: skip
    gray = np.asarray(drawn.render(bare, size).image.convert("L"), np.float32)
    # The shading left in eyes and hair (mixes of white and the line) is paper or half ink.
    return np.clip((190.0 - gray) / 110.0, 0.0, 1.0)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale_px: float) -> np.ndarray:
    """Smooth random field of ``shape``, about unit standard deviation, features about
    ``scale_px`` across."""
    height, width = shape
    small = (max(2, int(height / scale_px) + 2), max(2, int(width / scale_px) + 2))
    coarse = rng.standard_normal(small).astype(np.float32)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)


def _warp(ink: np.ndarray, rng: np.random.Generator, *, shift_px: float, turn_deg: float,
          scale: float, wobble_px: float, wobble_scale_px: float) -> np.ndarray:  # fmt: skip
    """``ink`` moved by a small random affine map and a smooth random displacement."""
    height, width = ink.shape
    centre = (rng.uniform(0, width), rng.uniform(0, height))
    affine = cv2.getRotationMatrix2D(centre, rng.uniform(-turn_deg, turn_deg),
                                     1.0 + rng.uniform(-scale, scale))  # fmt: skip
    affine[:, 2] += rng.uniform(-shift_px, shift_px, 2)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    map_x = affine[0, 0] * xs + affine[0, 1] * ys + affine[0, 2]
    map_y = affine[1, 0] * xs + affine[1, 1] * ys + affine[1, 2]
    map_x += wobble_px * smooth_noise(rng, ink.shape, wobble_scale_px)
    map_y += wobble_px * smooth_noise(rng, ink.shape, wobble_scale_px)
    return cv2.remap(ink, map_x.astype(np.float32), map_y.astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)  # fmt: skip


def _stroke_copy(ink: np.ndarray, rng: np.random.Generator, first: bool) -> np.ndarray:
    """One pass of the pencil over the drawing's lines: shifted, wobbling, of varying width
    and pressure, with gaps. Every pass wanders; later ones wander further."""
    side = max(ink.shape)
    copy = _warp(
        ink, rng,
        shift_px=rng.uniform(0.3, 0.006 * side) if first else rng.uniform(0.8, 0.018 * side),
        turn_deg=rng.uniform(0.1, 0.8) if first else rng.uniform(0.3, 1.8),
        scale=rng.uniform(0.002, 0.01) if first else rng.uniform(0.003, 0.025),
        wobble_px=rng.uniform(0.4, 1.6) if first else rng.uniform(0.6, 3.0),
        wobble_scale_px=rng.uniform(10, 50),
    )  # fmt: skip
    # Width: thinner (a sharp pencil) or thicker (a blunt one), varying along the stroke.
    kernel = np.ones((3, 3), np.uint8)
    thin, thick = cv2.erode(copy, kernel), cv2.dilate(copy, kernel)
    along = smooth_noise(rng, ink.shape, rng.uniform(15, 60)) + rng.normal(-0.2, 0.7)
    copy = np.where(along < -0.3, thin, np.where(along > 1.1, thick, copy))
    # Pressure: lighter and darker along the stroke, each pass as dark as the others or less.
    pressure = rng.uniform(0.6, 1.0) + 0.3 * smooth_noise(rng, ink.shape, rng.uniform(20, 80))
    pressure *= rng.uniform(0.8, 1.0) if first else rng.uniform(0.4, 1.0)
    # Gaps where the pencil lifted.
    gaps = smooth_noise(rng, ink.shape, rng.uniform(4, 10)) > rng.uniform(1.2, 2.4)
    return np.clip(copy * pressure, 0, 1) * ~gaps


def _marks(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Construction lines (faint long straight lines and arcs) and short stray strokes."""
    height, width = shape
    layer = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(layer)
    for _ in range(rng.integers(0, 9)):
        shade = int(rng.uniform(0.15, 0.6) * 255)
        if rng.random() < 0.5:
            x0, y0, x1, y1 = rng.uniform(-0.2, 1.2, 4) * (width, height, width, height)
            draw.line((x0, y0, x1, y1), fill=shade, width=int(rng.integers(1, 3)))
        else:
            cx, cy = rng.uniform(0, 1, 2) * (width, height)
            r = rng.uniform(0.1, 0.6) * width
            start = rng.uniform(0, 360)
            draw.arc((cx - r, cy - r * rng.uniform(0.6, 1.4), cx + r, cy + r),
                     start, start + rng.uniform(30, 200), fill=shade, width=1)  # fmt: skip
    for _ in range(rng.integers(0, 25)):
        x, y = rng.uniform(0, 1, 2) * (width, height)
        length, angle = rng.uniform(4, 0.08 * width), rng.uniform(0, np.pi)
        dx, dy = length * np.cos(angle), length * np.sin(angle)
        draw.line((x, y, x + dx, y + dy), fill=int(rng.uniform(0.1, 0.6) * 255), width=1)
    return np.asarray(layer, np.float32) / 255.0


def roughen(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A rough pencil sketch of clean lines ``ink`` (1 = line): uint8 grey, 255 = paper."""
    shape = ink.shape
    copies = int(rng.choice([1, 2, 3, 4], p=[0.1, 0.35, 0.35, 0.2]))
    graphite = np.zeros(shape, np.float32)
    for number in range(copies):
        graphite = 1.0 - (1.0 - graphite) * (1.0 - _stroke_copy(ink, rng, number == 0))
    graphite = np.maximum(graphite, _marks(shape, rng))
    # Smudges: graphite rubbed across blotches.
    if rng.random() < 0.6:
        blotches = np.clip(smooth_noise(rng, shape, rng.uniform(20, 60)) - 1.2, 0, 1)
        rubbed = cv2.GaussianBlur(graphite, (0, 0), rng.uniform(1.5, 4.0)) * 1.3
        graphite = graphite * (1 - blotches) + rubbed * blotches
        graphite += 0.12 * rng.random() * np.clip(smooth_noise(rng, shape, 30) - 1.0, 0, 1)
    # Graphite grain: paper tooth shows through the strokes.
    grain = rng.uniform(0.0, 0.45)
    graphite *= 1.0 - grain * rng.random(shape).astype(np.float32)
    darkest = rng.uniform(0.05, 0.5)  # how dark the darkest graphite is (0 = black)
    paper = rng.uniform(0.82, 1.0) + 0.02 * smooth_noise(rng, shape, 4) * rng.random()
    paper = paper + 0.03 * rng.random() * smooth_noise(rng, shape, 100)
    gray = paper * (1.0 - np.clip(graphite, 0, 1) * (1.0 - darkest))
    # Uneven light: a gradient across the sheet, or a vignette.
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32) / max(shape)
    angle = rng.uniform(0, 2 * np.pi)
    light = 1.0 - rng.uniform(0, 0.25) * (np.cos(angle) * xs + np.sin(angle) * ys)
    gray *= light
    if rng.random() < 0.5:
        gray = cv2.GaussianBlur(gray, (0, 0), rng.uniform(0.3, 1.0))
    gray += rng.normal(0, rng.uniform(0, 0.03), shape)
    out = np.clip(gray * 255 + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < 0.4:
        buffer = io.BytesIO()
        Image.fromarray(out).save(buffer, format="JPEG", quality=int(rng.integers(30, 90)))
        out = np.asarray(Image.open(buffer).convert("L"))
    return out


def pair(seed: int, index: int, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Training pair ``(seed, index)``: the rough (uint8 grey, 255 = paper) and its clean
    lines (uint8, 255 = ink), at ``size`` px (random from 256 to 384 when ``None``)."""
    rng = np.random.default_rng([seed, index, 1])
    if size is None:
        size = int(rng.integers(256, 385)) // 8 * 8
    ink = clean_lines(seed, index, size)
    rough = roughen(ink, rng)
    return rough, np.clip(ink * 255 + 0.5, 0, 255).astype(np.uint8)
