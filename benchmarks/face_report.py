"""How well the face finder (``acgmake.models.facefind``) finds faces and their parts.

    python benchmarks/face_report.py [--quick]

Held-out drawn characters (drawn seed 2025; training draws from seed 2024) at 256, 512 and
1024 px; the same restyled (lines only, pencil scan, turned 15 to 30 degrees, two characters
in one picture); pictures made the way training makes them (0 to 3 characters, faces 8 % to
90 % of the short side, every style at random), but of held-out characters; pictures
without a face (backgrounds, clutter, bodies without their heads); and the shipped
generator's characters enlarged to 256 and 512 px (Real-ESRGAN, and plain bicubic at
512 px). For each set it prints

* found: true faces matched by a found face with IoU >= 0.5 (greedy, best IoU first);
* fp/pic: found faces that match no true face (nor a mostly hidden one), per picture;
* eyes, mouth, chin: mean distance of the found eye centres, mouth-box centre and chin from
  the truth, as a fraction of the true face box's width (matched faces only), and
  <10%: how many of those distances (eyes, mouth and chin together) are under 10 %;

first for acgmake's networks alone, then for AnimeFace 2009 (the ``animeface`` package) alone.
Truth: the drawn set's face, eye and mouth boxes and the face outline's lowest point (chin);
for restyled pictures, the outline's bounds as placed; for generated characters, the
canonical layout (``acgmake.models.drawn.canonical_layout``), which they are trained to
follow. The restyled and training-like pictures come from the same code as the training
pictures (facefind_train), so they test unseen characters, not unseen styles. It runs on
one thread in about 2 minutes.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from acgmake.models import drawn, facefind  # noqa: E402
from acgmake.models import facefind_train as ft  # noqa: E402

HELDOUT = ft.HELDOUT_SEED


@dataclass
class Sample:
    """A test picture and its true faces (pixels; ``faces`` as facefind_train.Truth)."""

    image: np.ndarray
    faces: list[ft.Truth]
    ignore: tuple = ()  # face boxes mostly hidden: finding them is neither right nor wrong


def drawn_sample(index: int, size: int) -> Sample:
    """Held-out drawn character ``index`` drawn at ``size`` px, as drawn."""
    drawing = drawn.draw_character(HELDOUT, index, size)
    a = drawing.attributes
    points = ft.drawn_points(HELDOUT, index, a)
    truth = ft.Truth(
        face=np.array(a["face"]) * size,
        eyes=np.array(a["eyes"]) * size,
        mouth=np.array(a["mouth_box"]) * size,
        chin=points[ft.CHIN] * size,
    )
    return Sample(np.asarray(drawing.image), [truth])


def restyled_sample(pool: ft.Pool, index: int, style: str, rng: np.random.Generator) -> Sample:
    """Held-out character(s) from ``pool`` restyled as ``style`` on a 512 px picture."""
    side = 512
    look = ft.Look(lines_only=style == "lines", line_weight=0, cel=False)
    if style == "lines":
        canvas = np.ones((side, side, 3), np.float32)
    else:
        canvas = ft.background(rng, side, side)
    owner = np.full((side, side), -1, np.int32)
    picks = [index, (index + 17) % len(pool.images)] if style == "two" else [index]
    faces = []
    for k, pick in enumerate(picks):
        points = pool.pixels(pick)
        if style == "two":
            center = (side * (0.27 + 0.46 * k), side * rng.uniform(0.3, 0.6))
            face_px = side * rng.uniform(0.25, 0.4)
        else:
            center = (side * rng.uniform(0.4, 0.6), side * rng.uniform(0.4, 0.55))
            face_px = side * rng.uniform(0.3, 0.6)
        angle = rng.uniform(15, 30) * rng.choice([-1, 1]) if style == "turned" else 0.0
        matrix = ft.placement(rng, points, face_px, center, angle=angle, flip=False, stretch=1.0)
        ft.paste(canvas, owner, ft.character_layers(pool, pick, look, rng), matrix, k)
        faces.append(ft.truth_from_points(ft.transform(points, matrix)))
    if style == "scan":
        canvas = ft.pencil_scan(canvas, rng)
    image = np.round(np.clip(canvas, 0, 1) * 255).astype(np.uint8)
    return Sample(image, faces)


def no_face_sample(rng: np.random.Generator, pool: ft.Pool, index: int) -> Sample:
    """A 512 px picture without a face: a background, clutter, or a body without its head."""
    side = 512
    canvas = ft.background(rng, side, side)
    if index % 3 == 0:
        ft.clutter(rng, canvas, 12)
    if index % 3 == 1:
        pick = index % len(pool.images)
        owner = np.full((side, side), -1, np.int32)
        face_px = side * rng.uniform(0.4, 1.0)
        center = (side * rng.uniform(0.3, 0.7), -face_px * rng.uniform(0.55, 0.75))
        points = pool.pixels(pick)
        matrix = ft.placement(rng, points, face_px, center, angle=0.0, flip=False, stretch=1.0)
        look = ft.Look(lines_only=False, line_weight=0, cel=False)
        ft.paste(canvas, owner, ft.character_layers(pool, pick, look, rng), matrix, 0)
    return Sample(np.round(np.clip(canvas, 0, 1) * 255).astype(np.uint8), [])


def mixed_sample(pool: ft.Pool, rng: np.random.Generator) -> Sample:
    """A picture as training makes them (0 to 3 characters, any size, pose and style), from
    held-out characters; faces less than 60 % visible are ignored."""
    scene = ft.make_scene(pool, rng, 512)
    shown = [f for f, v in zip(scene.faces, scene.visible, strict=True) if v >= 0.6]
    hidden = tuple(f.face for f, v in zip(scene.faces, scene.visible, strict=True) if v < 0.6)
    return Sample(scene.image, shown, hidden)


def generated_samples(count: int) -> dict[str, list[Sample]]:
    """The shipped generator's characters (seeds 0..count-1, 64 px) enlarged by Real-ESRGAN
    (``acgmake.image.upscale``) to 256 and 512 px, and by cv2's bicubic filter to 512 px."""
    from acgmake.image.upscale import upscale
    from acgmake.models.character import generate_character, shipped_checkpoint
    from acgmake.models.checkpoint import load_generator

    generator = load_generator(shipped_checkpoint())
    layout = drawn.canonical_layout()
    pictures = [generate_character(generator, seed) for seed in range(count)]
    sets: dict[str, list[Sample]] = {}
    for size, upscaler in ((256, "realesrgan"), (512, "realesrgan"), (512, "cubic")):
        face = np.array(layout["face"]) * size
        truth = ft.Truth(
            face=face,
            eyes=np.array(layout["eyes"]) * size,
            mouth=np.array(layout["mouth"]) * size,
            # The layout has no chin: the face box's bottom centre is where it is drawn.
            chin=np.array([(face[0] + face[2]) / 2, face[3]]),
        )
        samples = []
        for picture in pictures:
            if upscaler == "cubic":
                big = cv2.resize(picture, (size, size), interpolation=cv2.INTER_CUBIC)
            else:
                big = upscale(picture, size_px=size, upscaler=upscaler)
            samples.append(Sample(big, [truth]))
        sets[f"generated {size} px ({upscaler})"] = samples
    return sets


def _center(box) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def score_set(samples: list[Sample], find) -> dict[str, float]:
    """The figures for one set, with ``find(image) -> list[FoundFace]``."""
    true_faces = matched = false = 0
    errors: dict[str, list[float]] = {"eyes": [], "mouth": [], "chin": []}
    seconds = 0.0
    for sample in samples:
        height, width = sample.image.shape[:2]
        scale = np.array([width, height, width, height])
        started = time.perf_counter()
        found = find(sample.image)
        seconds += time.perf_counter() - started
        boxes = [np.array(f.box) * scale for f in found]
        pairs = sorted(
            (
                (facefind.box_iou(t.face, b), i, j)
                for i, t in enumerate(sample.faces)
                for j, b in enumerate(boxes)
            ),
            reverse=True,
        )
        used_t, used_f = set(), set()
        for iou, i, j in pairs:
            if iou < 0.5 or i in used_t or j in used_f:
                continue
            used_t.add(i)
            used_f.add(j)
            t, f = sample.faces[i], found[j]
            face_width = t.face[2] - t.face[0]
            eyes = [_center(np.array(e) * scale) for e in f.eyes]
            errors["eyes"] += [
                float(np.linalg.norm(eyes[k] - _center(t.eyes[k]))) / face_width for k in (0, 1)
            ]
            mouth = _center(np.array(f.mouth) * scale)
            errors["mouth"].append(float(np.linalg.norm(mouth - _center(t.mouth))) / face_width)
            chin = np.array(f.chin) * scale[:2]
            errors["chin"].append(float(np.linalg.norm(chin - t.chin)) / face_width)
        true_faces += len(sample.faces)
        matched += len(used_t)
        false += sum(
            1
            for j, b in enumerate(boxes)
            if j not in used_f and all(facefind.box_iou(b, h) < 0.3 for h in sample.ignore)
        )
    every = errors["eyes"] + errors["mouth"] + errors["chin"]
    return {
        "pictures": len(samples),
        "found": matched / true_faces if true_faces else math.nan,
        "fp_per_picture": false / len(samples),
        **{k: float(np.mean(v)) if v else math.nan for k, v in errors.items()},
        "within_10": float(np.mean(np.array(every) < 0.1)) if every else math.nan,
        "ms_per_picture": 1000 * seconds / len(samples),
    }


def _row(name: str, r: dict) -> str:
    def pct(v):
        return "   -  " if math.isnan(v) else f"{100 * v:5.1f}%"

    return (
        f"{name:34s} {r['pictures']:4d} {pct(r['found'])} {r['fp_per_picture']:7.3f} "
        f"{pct(r['eyes'])} {pct(r['mouth'])} {pct(r['chin'])} {pct(r['within_10'])} "
        f"{r['ms_per_picture']:7.0f}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer pictures per set")
    parser.add_argument("--weights", default=None, help="weights file (default: shipped)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    started = time.perf_counter()
    n = 12 if args.quick else 40
    sets: dict[str, list[Sample]] = {}
    sets["drawn 256 px"] = [drawn_sample(i, 256) for i in range(n)]
    sets["drawn 512 px"] = [drawn_sample(i, 512) for i in range(n, n + n * 3 // 4)]
    sets["drawn 1024 px"] = [drawn_sample(i, 1024) for i in range(200, 200 + n // 3)]
    pool = ft.draw_pool(HELDOUT, 2 * n, 256, start=1000)
    rng = np.random.default_rng(7)
    for style in ("lines", "scan", "turned", "two"):
        label = {
            "lines": "lines only",
            "scan": "pencil scan",
            "turned": "turned 15-30 deg",
            "two": "two characters",
        }[style]
        sets[f"{label} 512 px"] = [restyled_sample(pool, i, style, rng) for i in range(n)]
    sets["mixed training-like 512 px"] = [mixed_sample(pool, rng) for _ in range(n * 2)]
    sets["no face 512 px"] = [no_face_sample(rng, pool, i) for i in range(n * 3 // 2)]
    sets.update(generated_samples(n // 2))
    print(f"pictures made in {time.perf_counter() - started:.0f} s\n")

    header = (
        f"{'set':34s} {'pics':>4s} {'found':>6s} {'fp/pic':>7s} {'eyes':>6s} {'mouth':>6s} "
        f"{'chin':>6s} {'<10%':>6s} {'ms/pic':>7s}"
    )
    finders = {
        "acgmake (networks only)": lambda im: facefind.find_faces(
            im, second_opinion=False, weights=args.weights
        ),
        "AnimeFace 2009 (animeface package)": facefind.animeface_faces,
    }
    for title, find in finders.items():
        if "AnimeFace" in title:
            try:
                import animeface  # noqa: F401
            except ImportError:
                print(f"{title}: not installed (pip install animeface)")
                continue
        print(title)
        print(header)
        for name, samples in sets.items():
            print(_row(name, score_set(samples, find)), flush=True)
        print()
    print(f"{time.perf_counter() - started:.0f} s in all", file=sys.stderr)


if __name__ == "__main__":
    main()
