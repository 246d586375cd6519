"""Training for the face finder (``acgmake.models.facefind``): drawn characters, augmented.

The drawn set (``acgmake.models.drawn``) knows where every face, eye, mouth and chin is, and
its label map cuts the character out of its background. Each training picture pastes zero to
three cut-out characters (scaled so the face is 8 % to 90 % of the picture's short side,
turned up to 30 degrees, flipped, face stretched, body cut by the frame) onto a background
(flat, gradient, noise, stripes, shapes, clutter), then restyles the whole picture (colour
and hue jitter, greyscale, thicker or thinner lines, lines only, an XDoG-like edge picture, a
pencil scan, cel-shading stripes, blur, noise and JPEG, tall and wide canvases). A fifth of
the pictures show no face at all, some of them a body whose head is outside the picture.
The landmark net learns from 64 px crops about a face, placed as the detector would place
them (centre and size a little off), and from crops beside faces, at the wrong scale or of
no face at all, which it must call "not a face"; half of them come from 20 to 64 px, enlarged.

    python -m acgmake.models.facefind_train --out src/acgmake/models/weights/facefind.safetensors

draws 2,400 characters at 192 px (seed 2024; 4 minutes, cached in /tmp/facefind-data), trains
the detector (2,400 batches of 16 pictures, 11 minutes) and then the landmark net (2,400
batches of 64 crops, 12 minutes) on one thread, and writes both into one float16 safetensors
file; the same command writes the same file. The figures are in ``benchmarks/face_report.py``
(held-out drawn seed 2025, which training never sees) and in ``acgmake.models.facefind``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from acgmake.models import drawn

TRAIN_SEED = 2024
HELDOUT_SEED = 2025  # benchmarks/face_report.py and the tests draw from this seed only
POOL_SIZE_PX = 192
POOL_COUNT = 2400
CHUNK = 200
CACHE = Path("/tmp/facefind-data")

# Keypoint rows of a drawn character: the face outline, the chin, then the corners of the
# left eye, the right eye and the mouth boxes (normalised to the portrait).
N_OUTLINE = 45
CHIN = N_OUTLINE
EYE_LEFT = slice(N_OUTLINE + 1, N_OUTLINE + 5)
EYE_RIGHT = slice(N_OUTLINE + 5, N_OUTLINE + 9)
MOUTH = slice(N_OUTLINE + 9, N_OUTLINE + 13)
N_POINTS = N_OUTLINE + 13


def _corners(box) -> list[tuple[float, float]]:
    x0, y0, x1, y1 = box
    return [(x0, y0), (x1, y0), (x0, y1), (x1, y1)]


def drawn_points(seed: int, index: int, attributes: dict) -> np.ndarray:
    """The keypoints (N_POINTS x 2, normalised) of drawn character ``(seed, index)``.

    The face outline and the chin (the outline's lowest point, which the attributes do not
    give) are drawn.py's own, zoomed and tilted as render() does."""
    character = drawn.random_character(np.random.default_rng([seed, index]))
    neck = drawn.zoom(drawn.NECK_PIVOT)

    def place(point):
        return drawn._rotate_point(drawn.zoom(point), neck, character.tilt_deg)

    outline = [place(p) for p in drawn._face_outline(character)]
    chin = place((0.5 + character.turn * 0.03, character.chin_y))
    eyes = attributes["eyes"]
    points = outline + [chin] + _corners(eyes[0]) + _corners(eyes[1])
    points += _corners(attributes["mouth_box"])
    return np.asarray(points, dtype=np.float32)


@dataclass
class Truth:
    """Where one face is in a picture, in pixels."""

    face: np.ndarray  # x0, y0, x1, y1
    eyes: np.ndarray  # 2 x 4, the picture's left eye first
    mouth: np.ndarray  # x0, y0, x1, y1
    chin: np.ndarray  # x, y


def _bounds(points: np.ndarray) -> np.ndarray:
    return np.concatenate([points.min(0), points.max(0)]).astype(np.float32)


def truth_from_points(points: np.ndarray) -> Truth:
    """Boxes from keypoints in pixels (as placed in a picture, maybe turned or flipped)."""
    eyes = [_bounds(points[EYE_LEFT]), _bounds(points[EYE_RIGHT])]
    eyes.sort(key=lambda box: box[0] + box[2])
    return Truth(
        face=_bounds(points[:N_OUTLINE]),
        eyes=np.stack(eyes),
        mouth=_bounds(points[MOUTH]),
        chin=points[CHIN].astype(np.float32),
    )


# ---------------------------------------------------------------------------------------------
# The pool of drawn characters


@dataclass
class Pool:
    """Drawn characters: pictures N x S x S x 3, label maps N x S x S, keypoints N x K x 2."""

    images: np.ndarray
    labels: np.ndarray
    points: np.ndarray

    def pixels(self, index: int) -> np.ndarray:
        """The keypoints of character ``index`` in its picture's pixels."""
        return self.points[index] * self.images.shape[1]


def draw_pool(
    seed: int = TRAIN_SEED,
    count: int = POOL_COUNT,
    size: int = POOL_SIZE_PX,
    *,
    cache: Path = CACHE,
    start: int = 0,
    progress: bool = False,
) -> Pool:
    """Characters ``start .. start + count`` of drawn seed ``seed``, cached as .npz chunks."""
    cache.mkdir(parents=True, exist_ok=True)
    parts = []
    started = time.perf_counter()
    for first in range(start, start + count, CHUNK):
        n = min(CHUNK, start + count - first)
        path = cache / f"drawn-{seed}-{size}-{first}-{n}.npz"
        if not path.is_file():
            images, labels, points = [], [], []
            for index in range(first, first + n):
                drawing = drawn.draw_character(seed, index, size, labels=True)
                images.append(np.asarray(drawing.image))
                labels.append(drawing.labels)
                points.append(drawn_points(seed, index, drawing.attributes))
            partial = path.with_suffix(".part.npz")
            np.savez(partial, images=images, labels=labels, points=points)
            partial.rename(path)
            if progress:
                rate = (first + n - start) / (time.perf_counter() - started)
                print(f"drew {first + n - start}/{count} ({rate:.1f}/s)", file=sys.stderr)
        with np.load(path) as data:
            parts.append((data["images"], data["labels"], data["points"]))
    return Pool(*(np.concatenate([p[k] for p in parts]) for k in range(3)))


# ---------------------------------------------------------------------------------------------
# Backgrounds and styles (float32 RGB pictures in 0..1)


def _color(rng: np.random.Generator, light: bool = False) -> np.ndarray:
    if light or rng.random() < 0.5:
        return rng.uniform(0.75, 1.0, 3).astype(np.float32)
    return rng.uniform(0.0, 1.0, 3).astype(np.float32)


def background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random background: flat, gradient, blotchy noise, stripes, shapes or clutter."""
    kind = rng.choice(
        ["flat", "gradient", "noise", "stripes", "shapes"], p=[0.3, 0.2, 0.2, 0.1, 0.2]
    )
    if kind == "flat":
        out = np.broadcast_to(_color(rng), (height, width, 3)).copy()
    elif kind == "gradient":
        t = np.linspace(0, 1, height if rng.random() < 0.6 else width, dtype=np.float32)
        a, b = _color(rng), _color(rng)
        ramp = a + (b - a) * t[:, None]
        out = (ramp[:, None] if len(t) == height else ramp[None]).copy()
        out = np.broadcast_to(out, (height, width, 3)).copy()
    elif kind == "noise":
        cells = int(rng.integers(2, 24))
        small = rng.uniform(0, 1, (cells, cells, 3)).astype(np.float32)
        out = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
        out = np.clip(out * rng.uniform(0.2, 1) + rng.uniform(0, 0.7), 0, 1)
    elif kind == "stripes":
        period = rng.uniform(4, 40)
        angle = rng.uniform(0, math.pi)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        phase = (xx * math.cos(angle) + yy * math.sin(angle)) / period
        mask = ((phase % 1) < rng.uniform(0.2, 0.8))[..., None]
        out = np.where(mask, _color(rng), _color(rng)).astype(np.float32)
    else:
        out = np.broadcast_to(_color(rng), (height, width, 3)).copy()
    if kind == "shapes" or rng.random() < 0.3:
        clutter(rng, out, int(rng.integers(1, 12)))
    return np.ascontiguousarray(out, dtype=np.float32)


def clutter(rng: np.random.Generator, image: np.ndarray, count: int) -> None:
    """Draw ``count`` random circles, ellipses, rectangles, polygons and strokes on ``image``."""
    height, width = image.shape[:2]
    side = min(height, width)
    for _ in range(count):
        color = tuple(float(v) for v in _color(rng))
        thick = -1 if rng.random() < 0.5 else int(rng.integers(1, max(2, side // 40) + 1))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.uniform(0.03, 0.4) * side) + 1
        kind = rng.integers(5)
        if kind == 0:
            cv2.circle(image, (x, y), r, color, thick, cv2.LINE_AA)
        elif kind == 1:
            axes = (r, int(r * rng.uniform(0.3, 1)) + 1)
            cv2.ellipse(image, (x, y), axes, rng.uniform(0, 180), 0, 360, color, thick, cv2.LINE_AA)
        elif kind == 2:
            cv2.rectangle(image, (x, y), (x + r, y + int(r * rng.uniform(0.3, 2))), color, thick)
        elif kind == 3:
            pts = (np.array([x, y]) + rng.normal(0, r, (int(rng.integers(3, 7)), 2))).astype(
                np.int32
            )
            if thick < 0:
                cv2.fillPoly(image, [pts], color, cv2.LINE_AA)
            else:
                cv2.polylines(image, [pts], True, color, thick, cv2.LINE_AA)
        else:
            pts = (np.array([x, y]) + np.cumsum(rng.normal(0, r / 3, (6, 2)), 0)).astype(np.int32)
            cv2.polylines(image, [pts], False, color, max(1, thick), cv2.LINE_AA)


def _xdog(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Black lines on white from edges of ``image`` (difference of Gaussians, thresholded)."""
    grey = image.mean(2)
    sigma = rng.uniform(0.5, 1.2)
    a = cv2.GaussianBlur(grey, (0, 0), sigma)
    b = cv2.GaussianBlur(grey, (0, 0), sigma * 1.6)
    d = a - 0.98 * b
    lines = np.clip(1 + np.tanh(60 * np.minimum(d, 0) + 0.3) - 1, 0, 1)
    lines = np.where(d > -0.01, 1.0, lines)
    return np.repeat(lines[..., None], 3, 2).astype(np.float32)


def pencil_scan(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` as a scanned pencil drawing: grey, paper tint, faint lines, grain, soft."""
    grey = np.clip(image.mean(2, keepdims=True), 0, 1)
    grey = grey ** rng.uniform(0.5, 1.0)
    paper = np.array([1.0, rng.uniform(0.9, 1.0), rng.uniform(0.75, 0.95)], np.float32)
    image = grey * paper * rng.uniform(0.85, 1.0)
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.4, 1.0))
    return image + rng.normal(0, rng.uniform(0.02, 0.06), image.shape[:2])[..., None]


def restyle(image: np.ndarray, rng: np.random.Generator, lines_only: bool) -> np.ndarray:
    """Colour, greyscale, scan, line-art, blur, noise and JPEG changes to a whole picture."""
    if not lines_only and rng.random() < 0.08:
        image = _xdog(image, rng)
        lines_only = True
    if not lines_only:
        if rng.random() < 0.35:  # hue turn
            hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
            hsv[..., 0] = (hsv[..., 0] + rng.uniform(0, 360)) % 360
            hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.5, 1.4), 0, 1)
            image = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        if rng.random() < 0.5:
            gain = rng.uniform(0.8, 1.2, 3) * rng.uniform(0.8, 1.15)
            image = (image - 0.5) * rng.uniform(0.7, 1.3) + 0.5
            image = image * gain.astype(np.float32) + rng.uniform(-0.08, 0.08)
        if rng.random() < 0.2:
            image = np.repeat(image.mean(2, keepdims=True), 3, 2)
    if rng.random() < 0.12:
        image = pencil_scan(image, rng)
    if rng.random() < 0.25:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 1.2))
    if rng.random() < 0.25:
        image = image + rng.normal(0, rng.uniform(0.01, 0.05), image.shape).astype(np.float32)
    image = np.clip(image, 0, 1)
    out = np.round(image * 255).astype(np.uint8)
    if rng.random() < 0.15:
        quality = int(rng.integers(25, 80))
        _, data = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        out = np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1])
    return out


# ---------------------------------------------------------------------------------------------
# Scenes: characters pasted onto a background


@dataclass
class Look:
    """How every character in one picture is drawn."""

    lines_only: bool
    line_weight: int  # -1 thinner, 0 as drawn, 1 thicker
    cel: bool


def random_look(rng: np.random.Generator) -> Look:
    return Look(
        lines_only=bool(rng.random() < 0.1),
        line_weight=int(rng.choice([-1, 0, 1], p=[0.12, 0.73, 0.15])),
        cel=bool(rng.random() < 0.12),
    )


def character_layers(pool: Pool, index: int, look: Look, rng: np.random.Generator):
    """Colour (float RGB) and coverage (float 0..1) of pool character ``index``, restyled."""
    labels = pool.labels[index]
    rgb = pool.images[index].astype(np.float32) / 255
    alpha = (labels != drawn.BACKGROUND).astype(np.float32)
    kernel = np.ones((3, 3), np.uint8)
    if look.lines_only:
        line = (labels == drawn.LINE).astype(np.uint8)
        if look.line_weight > 0:
            line = cv2.dilate(line, kernel)
        ink = rng.uniform(0.0, 0.35)
        rgb = np.where(line[..., None] > 0, ink, 1.0).astype(np.float32).repeat(3, 2)
        rgb = cv2.GaussianBlur(rgb, (3, 3), 0.6)
    else:
        if look.line_weight > 0:
            rgb = cv2.erode(rgb, kernel)
        elif look.line_weight < 0:
            rgb = np.where((labels == drawn.LINE)[..., None], cv2.dilate(rgb, kernel), rgb)
        if look.cel:
            yy, xx = np.mgrid[0 : rgb.shape[0], 0 : rgb.shape[1]].astype(np.float32)
            angle = rng.uniform(0, math.pi)
            phase = (xx * math.cos(angle) + yy * math.sin(angle)) / rng.uniform(3, 10)
            stripes = ((phase % 1) < 0.5) & np.isin(labels, (drawn.HAIR, drawn.CLOTHES))
            rgb = np.where(stripes[..., None], rgb * rng.uniform(0.7, 0.9), rgb)
    alpha = cv2.GaussianBlur(alpha, (3, 3), 0.7)
    return rgb.astype(np.float32), alpha


def placement(
    rng: np.random.Generator,
    points: np.ndarray,
    face_px: float,
    center: tuple[float, float],
    *,
    angle: float,
    flip: bool,
    stretch: float,
) -> np.ndarray:
    """The 2 x 3 affine map from pool pixels to picture pixels that puts the face (outline
    bounds of ``points``, pool pixels) at ``center`` with size ``face_px``."""
    face = _bounds(points[:N_OUTLINE])
    size = max(face[2] - face[0], face[3] - face[1])
    fc = (face[:2] + face[2:]) / 2
    scale = face_px / size
    sx, sy = scale * math.sqrt(stretch), scale / math.sqrt(stretch)
    linear = np.diag([(-sx if flip else sx), sy]).astype(np.float64)
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    linear = np.array([[c, s], [-s, c]]) @ linear
    offset = np.asarray(center) - linear @ fc
    return np.hstack([linear, offset[:, None]]).astype(np.float32)


def paste(canvas: np.ndarray, owner: np.ndarray, layers, matrix: np.ndarray, tag: int) -> None:
    """Composite a character (colour, coverage) through ``matrix`` onto ``canvas``."""
    rgb, alpha = layers
    height, width = canvas.shape[:2]
    size = (width, height)
    # Shrinking a lot: average first, as a downscaled picture would be.
    scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    if scale < 0.5:
        factor = 1 / scale / 1.5
        small = (max(1, round(rgb.shape[1] / factor)), max(1, round(rgb.shape[0] / factor)))
        rgb = cv2.resize(rgb, small, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, small, interpolation=cv2.INTER_AREA)
        matrix = matrix.copy()
        matrix[:, :2] *= layers[0].shape[1] / small[0]
    warped = cv2.warpAffine(rgb, matrix, size, flags=cv2.INTER_LINEAR)
    cover = cv2.warpAffine(alpha, matrix, size, flags=cv2.INTER_LINEAR)[..., None]
    canvas *= 1 - cover
    canvas += warped * cover
    owner[cover[..., 0] > 0.5] = tag


def transform(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


@dataclass
class Scene:
    """A training picture (uint8 RGB) with its faces: ``faces`` are Truths in pixels and
    ``visible`` how much of each face shows (0..1; occluded or cut faces are ignored)."""

    image: np.ndarray
    faces: list[Truth]
    visible: list[float]


def _pose(rng: np.random.Generator) -> dict:
    angle = rng.uniform(-30, 30) if rng.random() < 0.5 else rng.normal(0, 4)
    return {
        "angle": float(angle),
        "flip": bool(rng.random() < 0.5),
        "stretch": float(math.exp(rng.uniform(-0.15, 0.15))),
    }


def make_scene(pool: Pool, rng: np.random.Generator, side: int) -> Scene:
    """A picture whose longer side is ``side`` with 0 to 3 characters on a background."""
    aspect = math.exp(rng.uniform(-0.5, 0.8))  # height / width, mostly tall
    height = side if aspect >= 1 else max(side // 2, round(side * aspect))
    width = side if aspect < 1 else max(side // 2, round(side / aspect))
    look = random_look(rng)
    canvas = background(rng, height, width)
    if look.lines_only:
        canvas = (
            np.ones_like(canvas) * rng.uniform(0.85, 1.0)
            if rng.random() < 0.7
            else _xdog(canvas, rng)
        )
    owner = np.full((height, width), -1, np.int32)
    count = int(rng.choice([0, 1, 2, 3], p=[0.2, 0.45, 0.22, 0.13]))
    short = min(height, width)
    placed: list[np.ndarray] = []  # keypoints in picture pixels
    if count == 0 and rng.random() < 0.4:  # a body whose head is outside the picture
        index = int(rng.integers(len(pool.images)))
        face_px = short * rng.uniform(0.3, 1.2)
        center = (rng.uniform(0, width), -rng.uniform(0.6, 1.2) * face_px)
        matrix = placement(rng, pool.pixels(index), face_px, center, **_pose(rng))
        paste(canvas, owner, character_layers(pool, index, look, rng), matrix, 99)
    for k in range(count):
        index = int(rng.integers(len(pool.images)))
        top = 0.9 if count == 1 else 0.6 if count == 2 else 0.45
        face_px = short * math.exp(rng.uniform(math.log(0.08), math.log(top)))
        center = (rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height)
        center = (
            float(np.clip(center[0], face_px * 0.35, width - face_px * 0.35)),
            float(np.clip(center[1], face_px * 0.4, height - face_px * 0.35)),
        )
        matrix = placement(rng, pool.pixels(index), face_px, center, **_pose(rng))
        paste(canvas, owner, character_layers(pool, index, look, rng), matrix, k)
        placed.append(transform(pool.pixels(index), matrix))
    faces, visible = [], []
    for k, points in enumerate(placed):
        polygon = np.zeros((height, width), np.uint8)
        cv2.fillPoly(polygon, [np.round(points[:N_OUTLINE]).astype(np.int32)], 1)
        area = max(1.0, cv2.contourArea(points[:N_OUTLINE].astype(np.float32)))
        shown = float(((owner == k) & (polygon > 0)).sum()) / area
        faces.append(truth_from_points(points))
        visible.append(min(1.0, shown))
    image = restyle(canvas, rng, look.lines_only)
    return Scene(image, faces, visible)


# ---------------------------------------------------------------------------------------------
# Detector training


def detector_targets(scene: Scene) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Heatmap G x G, its weight G x G, regression targets 4 x G x G and their mask G x G."""
    from acgmake.models.facefind import DETECT_PX, STRIDE

    grid = DETECT_PX // STRIDE
    heat = np.zeros((grid, grid), np.float32)
    weight = np.ones((grid, grid), np.float32)
    reg = np.zeros((4, grid, grid), np.float32)
    mask = np.zeros((grid, grid), np.float32)
    ys, xs = np.mgrid[0:grid, 0:grid].astype(np.float32)
    for truth, shown in zip(scene.faces, scene.visible, strict=True):
        x0, y0, x1, y1 = truth.face
        w, h = x1 - x0, y1 - y0
        cx, cy = (x0 + x1) / 2 / STRIDE, (y0 + y1) / 2 / STRIDE
        sigma = max(0.6, 0.1 * min(w, h) / STRIDE)
        blob = np.exp(-((xs - cx + 0.5) ** 2 + (ys - cy + 0.5) ** 2) / (2 * sigma**2))
        if shown < 0.6 or max(w, h) < 8:  # hidden or tiny: neither a face nor not one
            weight[blob > 0.05] = 0
            continue
        heat = np.maximum(heat, blob)
        ix, iy = min(grid - 1, int(cx)), min(grid - 1, int(cy))
        heat[iy, ix] = 1.0
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                jx, jy = ix + dx, iy + dy
                if 0 <= jx < grid and 0 <= jy < grid and mask[jy, jx] < (2 if dx == dy == 0 else 1):
                    reg[:, jy, jx] = (
                        cx - jx,
                        cy - jy,
                        math.log(w / DETECT_PX),
                        math.log(h / DETECT_PX),
                    )
                    mask[jy, jx] = 2 if dx == dy == 0 else 1
    return heat, weight, reg, mask


def detector_batch(pool: Pool, rng: np.random.Generator, batch: int):
    from acgmake.models.facefind import DETECT_PX, PAD_VALUE, to_tensor

    images, heats, weights, regs, masks = [], [], [], [], []
    for _ in range(batch):
        scene = make_scene(pool, rng, DETECT_PX)
        square = np.full((DETECT_PX, DETECT_PX, 3), PAD_VALUE, np.uint8)
        square[: scene.image.shape[0], : scene.image.shape[1]] = scene.image
        images.append(square)
        heat, weight, reg, mask = detector_targets(scene)
        heats.append(heat)
        weights.append(weight)
        regs.append(reg)
        masks.append(mask)
    import torch

    return (
        to_tensor(np.stack(images)),
        *(torch.from_numpy(np.stack(v)) for v in (heats, weights, regs, masks)),
    )


def detector_loss(out, heat, weight, reg, mask):
    import torch
    from torch.nn import functional as F

    logit = out[:, 0]
    p = torch.sigmoid(logit).clamp(1e-4, 1 - 1e-4)
    pos = (heat >= 1).float()
    n_pos = pos.sum().clamp(min=1)
    focal_pos = -(torch.log(p) * (1 - p) ** 2 * pos).sum()
    focal_neg = -(torch.log(1 - p) * p**2 * (1 - heat) ** 4 * (1 - pos) * weight).sum()
    m = (mask > 0).float()[:, None]
    regression = (F.l1_loss(out[:, 1:], reg, reduction="none") * m).sum() / m.sum().clamp(min=1)
    return (focal_pos + focal_neg) / n_pos + regression


# ---------------------------------------------------------------------------------------------
# Landmark training


def crop_sample(pool: Pool, rng: np.random.Generator):
    """A CROP_PX crop, its 18 target coordinates (crop units), score target and weights."""
    from acgmake.models.facefind import CROP_PX, CROP_SCALE

    px = CROP_PX
    q = int(round(math.exp(rng.uniform(math.log(20), math.log(px))))) if rng.random() < 0.5 else px
    look = random_look(rng)
    canvas = background(rng, q, q)
    if look.lines_only:
        canvas = np.ones_like(canvas) * rng.uniform(0.85, 1.0)
    owner = np.full((q, q), -1, np.int32)
    kind = rng.random()
    if kind < 0.62:  # about a face, as the detector or the first pass would crop it
        offset = rng.normal(0, 0.09, 2)
        ratio = math.exp(rng.normal(0, 0.15))
    elif kind < 0.9:  # beside a face, or far too large or small
        angle = rng.uniform(0, 2 * math.pi)
        offset = rng.uniform(0.25, 1.6) * np.array([math.cos(angle), math.sin(angle)])
        ratio = math.exp(rng.uniform(-1.5, 1.5))
    else:
        offset, ratio = None, 1.0
    coords = np.zeros(18, np.float32)
    score, score_w, coord_w = 0.0, 1.0, 0.0
    scale = q / px
    if offset is not None:
        face = px / CROP_SCALE / ratio  # the face's true size in crop pixels
        center = (px / 2 - offset[0] * face, px / 2 - offset[1] * face)
        index = int(rng.integers(len(pool.images)))
        if rng.random() < 0.25:  # a neighbour beside it
            other = int(rng.integers(len(pool.images)))
            angle = rng.uniform(0, 2 * math.pi)
            spot = np.array(center) + face * rng.uniform(0.9, 1.5) * np.array(
                [math.cos(angle), math.sin(angle)]
            )
            matrix = placement(
                rng,
                pool.pixels(other),
                face * rng.uniform(0.7, 1.3) * scale,
                tuple(spot * scale),
                **_pose(rng),
            )
            paste(canvas, owner, character_layers(pool, other, look, rng), matrix, 1)
        matrix = placement(
            rng,
            pool.pixels(index),
            face * scale,
            (center[0] * scale, center[1] * scale),
            **_pose(rng),
        )
        paste(canvas, owner, character_layers(pool, index, look, rng), matrix, 0)
        points = transform(pool.pixels(index), matrix) / scale
        truth = truth_from_points(points)
        coords = np.concatenate([truth.face, *truth.eyes, truth.mouth, truth.chin]) / px
        off = float(np.abs(offset).max())
        log_ratio = abs(math.log(ratio))
        if off < 0.2 and log_ratio < 0.29:
            score = 1.0
        elif off < 0.5 and log_ratio < 0.9:
            score_w = 0.0  # neither clearly a face crop nor clearly not
        coord_w = 1.0 if off < 0.35 and log_ratio < 0.53 else 0.0
    else:
        clutter(rng, canvas, int(rng.integers(0, 6)))
    image = restyle(canvas, rng, look.lines_only)
    if q != px:
        image = cv2.resize(image, (px, px), interpolation=cv2.INTER_LINEAR)
    return image, coords.astype(np.float32), score, score_w, coord_w


def landmark_batch(pool: Pool, rng: np.random.Generator, batch: int):
    import torch

    from acgmake.models.facefind import to_tensor

    rows = [crop_sample(pool, rng) for _ in range(batch)]
    return (
        to_tensor(np.stack([r[0] for r in rows])),
        torch.from_numpy(np.stack([r[1] for r in rows])),
        *(torch.tensor([r[k] for r in rows], dtype=torch.float32) for k in (2, 3, 4)),
    )


def landmark_loss(out, coords, score, score_w, coord_w):
    from torch.nn import functional as F

    from acgmake.models.facefind import N_COORDS

    error = F.smooth_l1_loss(out[:, :N_COORDS], coords, beta=0.02, reduction="none").mean(1)
    regression = (error * coord_w).sum() / coord_w.sum().clamp(min=1)
    bce = F.binary_cross_entropy_with_logits(out[:, N_COORDS], score, reduction="none")
    return 20 * regression + (bce * score_w).sum() / score_w.sum().clamp(min=1)


# ---------------------------------------------------------------------------------------------
# Training both


def train_net(
    net, make_batch, loss_fn, *, steps: int, lr: float, name: str, checkpoint: Path, log=print
):
    """Adam with a one-cycle schedule for ``steps`` batches; checkpoints every 200 steps."""
    import torch
    from safetensors.torch import save_file

    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=steps, pct_start=0.15
    )
    started = time.perf_counter()
    running = None
    net.train()
    for step in range(1, steps + 1):
        batch = make_batch()
        loss = loss_fn(net(batch[0]), *batch[1:])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        optimizer.step()
        schedule.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 50 == 0 or step == steps:
            log(
                f"{name} step {step}/{steps} loss {running:.4f} "
                f"({time.perf_counter() - started:.0f} s)"
            )
        if step % 200 == 0 or step == steps:
            state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
            save_file(state, str(checkpoint), metadata={"step": str(step)})
    return net.eval()


def save_weights(detector, landmarks, path: Path, metadata: dict[str, str]) -> None:
    """Both networks in one float16 safetensors file, with ``metadata``."""
    from safetensors.torch import save_file

    state = {}
    for prefix, net in (("detector.", detector), ("landmarks.", landmarks)):
        for k, v in net.state_dict().items():
            state[prefix + k] = v.detach().half().contiguous() if v.is_floating_point() else v
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata=metadata)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m acgmake.models.facefind_train",
        description="Train the face finder (detector + landmark net) on augmented drawn "
        "characters and write its weights.",
    )
    parser.add_argument("--out", type=Path, required=True, help="weights file to write")
    parser.add_argument("--count", type=int, default=POOL_COUNT, help="drawn characters")
    parser.add_argument("--detector-steps", type=int, default=2400)
    parser.add_argument("--landmark-steps", type=int, default=2400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=CACHE, help="where drawings are cached")
    args = parser.parse_args(argv)
    import torch

    from acgmake.models.facefind import FaceDetector, FaceLandmarks

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    started = time.perf_counter()
    pool = draw_pool(TRAIN_SEED, args.count, cache=args.cache, progress=True)
    print(f"{len(pool.images)} drawn characters ({time.perf_counter() - started:.0f} s)")

    torch.manual_seed(args.seed)
    detector = FaceDetector()
    with torch.no_grad():
        detector.head[-1].bias[0] = -2.2  # start by saying "no face" almost everywhere
    rng = np.random.default_rng([args.seed, 1])
    train_net(
        detector,
        lambda: detector_batch(pool, rng, 16),
        detector_loss,
        steps=args.detector_steps,
        lr=3e-3,
        name="detector",
        checkpoint=args.cache / "detector.ckpt.safetensors",
    )
    torch.manual_seed(args.seed + 1)
    landmarks = FaceLandmarks()
    rng = np.random.default_rng([args.seed, 2])
    train_net(
        landmarks,
        lambda: landmark_batch(pool, rng, 64),
        landmark_loss,
        steps=args.landmark_steps,
        lr=3e-3,
        name="landmarks",
        checkpoint=args.cache / "landmarks.ckpt.safetensors",
    )
    seconds = time.perf_counter() - started
    save_weights(
        detector,
        landmarks,
        args.out,
        {
            "what": "acgmake face finder: CenterNet-style face detector (256 px, stride 8) and "
            "face landmark net (64 px crops: face, eye, mouth boxes, chin, face score)",
            "trained_on": f"{args.count} drawn characters (drawn seed {TRAIN_SEED}), augmented",
            "steps": f"detector {args.detector_steps} x 16, landmarks {args.landmark_steps} x 64",
            "command": "python -m acgmake.models.facefind_train " + " ".join(argv or sys.argv[1:]),
            "license": "MIT",
        },
    )
    print(f"wrote {args.out} ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
