"""The figures in the README: line precision and recall of the simplified sketches against the
clean lines, on held-out roughs, beside plain-threshold baselines, and the time per page.

    OMP_NUM_THREADS=1 python plugins/acgmake-simplify/report.py --count 40 \
        --demo /tmp/simplify-demo.png

Held-out roughs are drawn at 512 px from seed 14 (training used seed 11, the trainer's own
check seed 12, the tests seed 13). A line pixel counts as right within 1.5 px of a true line
pixel (precision) and a true one as found within 1.5 px of a drawn one (recall).
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
import torch
from acgmake_simplify import simplify_picture
from acgmake_simplify.roughen import pair, roughen
from acgmake_simplify.score import TOLERANCE_PX, line_scores
from PIL import Image, ImageDraw

from acgmake.image.lineart import scan_line_art

REPORT_SEED = 14
PAGE_PX = 512


def otsu(rough: np.ndarray) -> np.ndarray:
    """Baseline: ink is what is darker than Otsu's threshold of the page."""
    _, ink = cv2.threshold(rough, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    return ink > 0


def adaptive(rough: np.ndarray) -> np.ndarray:
    """Baseline: ink is what is clearly darker than the page around it (31 px)."""
    return cv2.adaptiveThreshold(rough, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C,
                                 cv2.THRESH_BINARY_INV, 31, 12) > 0  # fmt: skip


def scan(rough: np.ndarray) -> np.ndarray:
    """Baseline: acgmake's own reading of a scanned drawing (flattened paper, Otsu, specks
    dropped, gaps closed), as colorize reads line art."""
    return scan_line_art(rough, size_px=PAGE_PX)[1]


METHODS = {
    "simplify (default, read at 384 px)": lambda r: simplify_picture(r) < 128,
    "simplify (read at 512 px)": lambda r: simplify_picture(r, size_px=0) < 128,
    "threshold (Otsu)": otsu,
    "adaptive threshold": adaptive,
    "acgmake scan_line_art": scan,
}


def shapes_rough(seed: int, size: int = PAGE_PX) -> tuple[np.ndarray, np.ndarray]:
    """A rough of something the network never saw: the outlines of a few shapes (circles,
    boxes, a star, a wave), roughened the same way. Returns (rough, clean ink 0..255)."""
    rng = np.random.default_rng([seed, 99])
    layer = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(layer)
    width = int(rng.integers(3, 6))
    for _ in range(6):
        x, y = rng.uniform(0.15, 0.85, 2) * size
        r = rng.uniform(0.06, 0.16) * size
        kind = rng.integers(4)
        if kind == 0:
            draw.ellipse((x - r, y - r * rng.uniform(0.6, 1), x + r, y + r), outline=255,
                         width=width)  # fmt: skip
        elif kind == 1:
            draw.rectangle((x - r, y - r * 0.7, x + r, y + r * 0.7), outline=255, width=width)
        elif kind == 2:
            angles = np.arange(11) * np.pi / 5 + rng.uniform(0, np.pi)
            radii = np.where(np.arange(11) % 2 == 0, r, r * 0.45)
            points = [(x + q * np.cos(a), y + q * np.sin(a))
                      for a, q in zip(angles, radii, strict=True)]  # fmt: skip
            draw.line(points, fill=255, width=width, joint="curve")
        else:
            xs = np.linspace(x - 2 * r, x + 2 * r, 40)
            draw.line(list(zip(xs, y + 0.4 * r * np.sin((xs - x) / r * 3), strict=True)), fill=255,
                      width=width, joint="curve")  # fmt: skip
    ink = np.asarray(layer, np.float32) / 255
    return roughen(ink, rng), np.asarray(layer)


def demo(path: str) -> None:
    """Rough | simplified | clean truth, 512 px each: two held-out portraits, then shapes."""
    rows = []
    for rough, clean in (pair(REPORT_SEED, 1000, PAGE_PX), pair(REPORT_SEED, 1003, PAGE_PX),
                         shapes_rough(5)):  # fmt: skip
        rows.append(np.hstack([rough, np.full((PAGE_PX, 8), 255, np.uint8),
                               simplify_picture(rough), np.full((PAGE_PX, 8), 255, np.uint8),
                               255 - clean]))  # fmt: skip
        rows.append(np.full((8, rows[-1].shape[1]), 255, np.uint8))
    Image.fromarray(np.vstack(rows[:-1])).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40, help="Held-out roughs.")
    parser.add_argument("--demo", help="Also write the demo picture here.")
    args = parser.parse_args()
    torch.set_num_threads(1)

    roughs = [pair(REPORT_SEED, index, PAGE_PX) for index in range(args.count)]
    shapes = [shapes_rough(index) for index in range(args.count // 4)]
    print(f"{args.count} held-out portraits and {len(shapes)} shape pages at {PAGE_PX} px, "
          f"tolerance {TOLERANCE_PX} px\n")  # fmt: skip
    print("| method | portraits P | R | F1 | shapes P | R | F1 |")
    print("|---|---|---|---|---|---|---|")
    for name, method in METHODS.items():
        cells = []
        for pages in (roughs, shapes):
            scores = [line_scores(method(rough), clean > 127) for rough, clean in pages]
            p, r = np.mean([s[0] for s in scores]), np.mean([s[1] for s in scores])
            cells += [f"{p:.3f}", f"{r:.3f}", f"{2 * p * r / max(p + r, 1e-9):.3f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    rough = roughs[0][0]
    for label, size in (("default (384 px)", 384), ("at 512 px", 0)):
        simplify_picture(rough, size_px=size)
        times = []
        for _ in range(5):
            started = time.perf_counter()
            simplify_picture(rough, size_px=size)
            times.append(time.perf_counter() - started)
        print(f"time per {PAGE_PX} px page, {label}, one thread: {np.median(times):.2f} s")
    if args.demo:
        demo(args.demo)
        print(f"wrote {args.demo}")


if __name__ == "__main__":
    main()
