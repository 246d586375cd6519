"""The picture half of the chain on generated characters: upscaling, recolouring, timing.

    python benchmarks/picture_report.py [--count 50] [--size 1024] [--upscaler realesrgan]
    python benchmarks/picture_report.py --measure DIR   # pictures made elsewhere (see below)

For seeds 0..N-1 of the shipped model (truncation 0.7), as `acgmake song` makes them: the
64 px character is upscaled (the ``upscale`` stage) and recoloured with the seed's preset
palette (the ``colorize`` stage). Reported, as mean / worst over the seeds:

- Invariant: the character coloured with the colours ``face.json`` sampled from it, against
  the upscaled character: luminance SSIM at 64 px and at full size (1 = the same picture).
- Lines: ink (thin dark strokes, a morphological black-hat) of the colored picture against
  the upscaled character's: the share of the character's ink pixels still as dark (within 8
  L*), the share of the colored picture's ink that is new (over 2 px from any of the
  character's), mean line width (px), the number of separate line pieces (a broken line
  makes more) and of stray specks (pieces under 0.02 % of the picture), for both.
- Colour: each region's colour (median of its lit two thirds) against the palette (CIEDE2000),
  and how much of each region changed (mean ΔE00 to the character).
- Time per character: upscale and colorize, seconds (one process, the machine's threads).

``--measure DIR`` measures pictures another version made: DIR holds ``N-character.png``
(the picture it coloured), ``N-colored.png``, ``N-face.json`` and ``N-palette.json`` per seed N;
the invariant is then left out. This is how the figures of the colorize that re-lined and
flat-filled the character (before the recolouring) were taken for docs/colorize.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from skimage.color import deltaE_ciede2000
from skimage.metrics import structural_similarity

from acgmake.image.colorize import LABELS, colorize_layers, default_palette, parse_palette
from acgmake.image.face import Face
from acgmake.image.recolor import colour_lab, paint_amount, region_masks

REGIONS = ("hair", "eyes", "skin", "clothes")


def on_white(rgba: np.ndarray) -> np.ndarray:
    if rgba.shape[2] == 3:
        return rgba
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    return np.round(rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)


def luminance_ssim(a: np.ndarray, b: np.ndarray, size: int | None = None) -> float:
    if size is not None:
        a, b = (cv2.resize(p, (size, size), interpolation=cv2.INTER_AREA) for p in (a, b))
    grey = [cv2.cvtColor(np.ascontiguousarray(p), cv2.COLOR_RGB2GRAY) for p in (a, b)]
    return float(structural_similarity(*grey))


def lab_of(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def ink_of(rgb: np.ndarray) -> np.ndarray:
    """Ink pixels: thin strokes darker than their surroundings (as recolor keeps them)."""
    return paint_amount(lab_of(rgb)[..., 0], max(rgb.shape[:2]) / 170) < 0.5


def line_figures(ink: np.ndarray) -> dict[str, float]:
    """Mean width (px), pieces and specks of an ink mask."""
    from skimage.morphology import skeletonize

    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), 8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    specks = int(np.sum(areas < 0.0002 * ink.size))
    skeleton = skeletonize(ink)
    distance = cv2.distanceTransform(ink.astype(np.uint8), cv2.DIST_L2, 5)
    width = float(2 * distance[skeleton].mean()) if skeleton.any() else 0.0
    return {"width_px": width, "pieces": int(count - 1), "specks": specks}


def measure(character: np.ndarray, colored: np.ndarray, face: Face, palette: dict) -> dict:
    """The line and colour figures of one colored picture against its character."""
    height, width = character.shape[:2]
    if colored.shape[:2] != (height, width):
        colored = cv2.resize(colored, (width, height), interpolation=cv2.INTER_AREA)
    shown = on_white(colored)
    opaque = colored[..., 3] > 128 if colored.shape[2] == 4 else np.ones((height, width), bool)
    ink_before, ink_after = ink_of(character) & opaque, ink_of(shown) & opaque
    lab_before, lab_after = lab_of(character), lab_of(shown)
    kept = np.abs(lab_after[..., 0] - lab_before[..., 0])[ink_before] < 8
    near_old = cv2.dilate(ink_before.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    figures = {
        # The character's lines: how many of their pixels are as dark as they were.
        "ink_kept": float(kept.mean()) if kept.size else 1.0,
        # Strokes in the colored picture that the character does not have (2 px apart).
        "ink_new": float(np.sum(ink_after & ~near_old) / max(ink_after.sum(), 1)),
    }
    for name, value in line_figures(ink_after).items():
        figures[f"colored_{name}"] = value
    for name, value in line_figures(ink_before).items():
        figures[f"character_{name}"] = value
    masks = region_masks(character, face)
    for region in REGIONS:
        inside = (masks[LABELS.index(region)] > 0.9) & opaque & ~ink_before
        if inside.sum() < 20:
            continue
        after = lab_after[inside]
        lit = after[after[:, 0] >= np.percentile(after[:, 0], 33)]
        if region in palette:
            target = colour_lab(tuple(palette[region]))
            figures[f"{region}_dE_palette"] = float(deltaE_ciede2000(np.median(lit, 0), target))
        changed = deltaE_ciede2000(lab_before[inside], lab_after[inside])
        figures[f"{region}_dE_changed"] = float(np.mean(changed))
    return figures


def summarise(rows: list[dict]) -> None:
    keys = sorted({key for row in rows for key in row})
    print(f"{'figure':28} {'mean':>9} {'worst/min':>9} {'max':>9}")
    for key in keys:
        values = np.array([row[key] for row in rows if key in row], float)
        print(f"{key:28} {values.mean():9.3f} {values.min():9.3f} {values.max():9.3f}")


def own_palette(face: Face) -> dict:
    colours = {k: v for k, v in face.colors.items() if k in ("hair", "skin", "clothes")}
    if face.colors.get("eyes"):
        colours["eyes"] = face.colors["eyes"][0]
    return parse_palette(",".join(f"{k}={v}" for k, v in colours.items()))


def make_and_measure(count: int, size_px: int, upscaler: str, out: Path | None) -> list[dict]:
    from acgmake.image.upscale import upscale
    from acgmake.models.character import face_info, generate_character, shipped_checkpoint
    from acgmake.models.checkpoint import load_generator

    generator = load_generator(shipped_checkpoint())
    rows = []
    for seed in range(count):
        small = generate_character(generator, seed)
        face = Face.from_dict(face_info(small))
        started = time.perf_counter()
        character = upscale(small, size_px=size_px, upscaler=upscaler)
        upscaled_s = time.perf_counter() - started
        palette = default_palette(seed)
        started = time.perf_counter()
        colored = colorize_layers(character, face=face, palette=palette).composite()
        colorize_s = time.perf_counter() - started
        same = colorize_layers(character, face=face, palette=own_palette(face)).composite()
        row = measure(character, colored, face, palette)
        row.update(
            upscale_s=upscaled_s,
            colorize_s=colorize_s,
            invariant_ssim_64=luminance_ssim(on_white(same), character, 64),
            invariant_ssim_full=luminance_ssim(on_white(same), character),
        )
        rows.append(row)
        if out is not None:
            Image.fromarray(colored).save(out / f"{seed}-colored.png")
        print(f"seed {seed}: {json.dumps({k: round(v, 3) for k, v in row.items()})}", flush=True)
    return rows


def measure_folder(folder: Path) -> list[dict]:
    rows = []
    for path in sorted(folder.glob("*-colored.png"), key=lambda p: int(p.name.split("-")[0])):
        seed = path.name.split("-")[0]
        character = np.asarray(Image.open(folder / f"{seed}-character.png").convert("RGB"))
        colored = np.asarray(Image.open(path).convert("RGBA"))
        face = Face.read(folder / f"{seed}-face.json")
        palette = json.loads((folder / f"{seed}-palette.json").read_text())
        rows.append(measure(character, colored, face, palette))
        print(f"seed {seed}: {json.dumps({k: round(v, 3) for k, v in rows[-1].items()})}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=50, help="seeds 0..COUNT-1")
    parser.add_argument("--size", type=int, default=1024, help="upscaled size, px")
    parser.add_argument("--upscaler", default="realesrgan", choices=("realesrgan", "waifu2x"))
    parser.add_argument("--out", type=Path, help="also write each colored.png here")
    parser.add_argument("--measure", type=Path, help="measure the pictures in this folder")
    args = parser.parse_args()
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    if args.measure:
        rows = measure_folder(args.measure)
    else:
        rows = make_and_measure(args.count, args.size, args.upscaler, args.out)
    summarise(rows)


if __name__ == "__main__":
    main()
