"""Colorize fidelity, expression consistency and speed, measured on held-out drawn characters.

    python benchmarks/colorize_report.py [--count 24] [--size 128]

Fidelity: characters drawn by acgmake.models.drawn with a seed the colorizer never trained on
(seed 99; training used seed 7). Each becomes line art (colorize's own XDoG at 512 px, saved
as a grey drawing, so neither method sees a colour of the picture) and a hints image of dots
sampled from its true colours: 1, 3 or 10 dots per region (hair, skin, eyes, mouth, clothes,
accessories; none on the background or the lines). Both methods colour it; the result, laid
on the true background colour and brought back to the drawing's size, is compared with the
drawing over the character's pixels: PSNR (dB, peak 255) and mean CIEDE2000 ΔE.

Expressions: the same drawn character with each mouth and with a blink
(acgmake.models.colorizer_train.draw_expressions), colorized as a strip by
colorize_expressions (face.json from the canonical layout, palette "sky"), against each one
colorized on its own: mean ΔE00 to the rest expression outside the mouth and eye boxes, and the
largest ΔE00 between the colours a region (hair, skin, clothes) got in two expressions.

Regions (the character path, which finds hair, skin, eyes, clothes and background from a
generated picture's own colours): held-out drawn characters at 64 px, the shipped model's size,
against their true label maps (intersection over union per region, pixels of lines and
accessories left out); and pictures of the shipped model (seeds 0..N-1, truncation 0.7, or
--ckpt), where truth is unknown but the cheeks (between the eyes and the mouth's bottom) are
skin by the model's layout: how many faces have less than half their cheeks found as skin.

Gaps: a background without a hint must stay clear whatever a gap in a nearby shape lets
through. Pages of closed shapes with a colour dot each and three rings (small, medium, large)
whose outlines have a gap of 1 to 8 px facing the unhinted background
(tests/test_colorize_gaps.py draws them), at 200, 320 and 512 px: the share of background
pixels (outside every shape, more than a line's width from ink) that each method paints in
colored.png, and in the flats layer, at the page's size.

Speed: seconds per 512 x 512 line art (examples/lineart.png with examples/hints.png), one
thread, median of 3.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from acgmake.image.colorize import LABELS, character_regions, colorize_layers, parse_palette
from acgmake.image.expressions import colorize_expressions
from acgmake.image.face import Face
from acgmake.image.fidelity import delta_e, mean_delta_e, psnr
from acgmake.image.hints import hints_from_rgba, read_hints
from acgmake.image.lineart import line_art
from acgmake.models.character import (
    face_info,
    generate_character,
    layout_from_metadata,
    shipped_checkpoint,
)
from acgmake.models.checkpoint import read_metadata
from acgmake.models.colorizer import ink_for_net
from acgmake.models.colorizer_train import LINE_LABEL, draw_expressions, sample_hints
from acgmake.models.drawn import (
    ACCESSORY,
    BACKGROUND,
    CLOTHES,
    EYE,
    HAIR,
    LINE,
    MOUTH,
    SKIN,
    draw_character,
)

HELD_OUT_SEED = 99
DENSITIES = (1, 3, 10)
METHODS = ("flat", "neural")
ROOT = Path(__file__).resolve().parents[1]
#: Page sizes (px) and gap widths (px of the page) of the gaps section.
GAP_PAGES = (200, 320, 512)
GAPS = (*range(1, 9), 12, 16)


def held_out(index: int, size: int):
    """(true RGB, labels, line art picture at 512) of held-out character ``index``."""
    drawing = draw_character(HELD_OUT_SEED, index, size, labels=True)
    truth = np.asarray(drawing.image.convert("RGB"))
    lines, _ = line_art(truth)
    picture = np.round(lines * 255).astype(np.uint8)
    return truth, drawing.labels, picture


def hints_image(truth, labels, picture, per_region: int, index: int) -> np.ndarray:
    """A hints image (RGBA, the line art's size) of dots of the true colours, put as a user
    would: on the character, in the open, not on or next to a line."""
    rng = np.random.default_rng([HELD_OUT_SEED, index, per_region])
    scale = picture.shape[0] // truth.shape[0]
    near_ink = ndimage.binary_dilation(ink_for_net(picture < 128, truth.shape[:2]) > 0.25)
    character_only = np.where((labels == BACKGROUND) | near_ink, LINE_LABEL, labels)
    colours, mask = sample_hints(truth, character_only, rng, per_region=per_region)
    rgba = np.dstack([np.round(colours * 255), mask * 255]).astype(np.uint8)
    return np.repeat(np.repeat(rgba, scale, axis=0), scale, axis=1)


def on_background(rgba: np.ndarray, colour: np.ndarray, size: int) -> np.ndarray:
    """``rgba`` laid on ``colour`` and shrunk (area average) to ``size`` square."""
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    rgb = rgba[..., :3] * alpha + colour * (1.0 - alpha)
    image = Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8))
    return np.asarray(image.resize((size, size), Image.Resampling.BOX))


def fidelity(count: int, size: int) -> dict:
    scores = {(m, d): {"psnr": [], "delta_e": []} for m in METHODS for d in DENSITIES}
    for index in range(count):
        truth, labels, picture = held_out(index, size)
        character = labels != BACKGROUND
        background = truth[~character].mean(axis=0) if (~character).any() else np.full(3, 255)
        for density in DENSITIES:
            rgba = hints_image(truth, labels, picture, density, index)
            hints = hints_from_rgba(rgba)
            for method in METHODS:
                painting = colorize_layers(picture, hints=hints, method=method, lines_mode="scan")
                result = on_background(painting.composite(), background, size)
                scores[method, density]["psnr"].append(psnr(result, truth, character))
                scores[method, density]["delta_e"].append(mean_delta_e(result, truth, character))
    return {
        f"{method} {density}/region": {
            "psnr_db": round(float(np.mean(v["psnr"])), 2),
            "delta_e00": round(float(np.mean(v["delta_e"])), 2),
        }
        for (method, density), v in scores.items()
    }


def _boxes_mask(face: Face, height: int, width: int) -> np.ndarray:
    """True outside the mouth and eye boxes (grown by a tenth of the box) of ``face``."""
    outside = np.ones((height, width), bool)
    for box in (face.mouth, *face.eyes):
        grow_x, grow_y = (box[2] - box[0]) * 0.1, (box[3] - box[1]) * 0.1
        grown = (box[0] - grow_x, box[1] - grow_y, box[2] + grow_x, box[3] + grow_y)
        x0, y0, x1, y1 = Face.pixel_box(grown, width, height)
        outside[y0:y1, x0:x1] = False
    return outside


def expressions(count: int, size: int, method: str) -> dict:
    palette = parse_palette("sky")
    strip_outside, alone_outside, strip_regions, alone_regions = [], [], [], []
    for index in range(count):
        pictures = draw_expressions(HELD_OUT_SEED, 1000 + index, size)
        face = Face.from_dict(face_info(pictures[0]))
        strip = colorize_expressions(pictures, face=face, palette=palette, method=method)
        alone = [
            colorize_layers(p, face=face, palette=palette, method=method).composite()
            for p in pictures
        ]
        height, width = strip[0].shape[:2]
        outside = _boxes_mask(face, height, width) & (strip[0][..., 3] > 0)
        for colored, record_outside, record_regions in (
            (strip, strip_outside, strip_regions),
            (alone, alone_outside, alone_regions),
        ):
            for variant in colored[1:]:
                record_outside.append(mean_delta_e(variant, colored[0], outside))
            record_regions.append(_region_spread(colored, face))
    return {
        "strip: mean ΔE00 to rest outside mouth/eyes": round(float(np.mean(strip_outside)), 3),
        "strip: largest region colour ΔE00": round(float(np.max(strip_regions)), 3),
        "each alone: mean ΔE00 to rest outside mouth/eyes": round(float(np.mean(alone_outside)), 3),
        "each alone: largest region colour ΔE00": round(float(np.max(alone_regions)), 3),
    }


def _region_spread(colored: list[np.ndarray], face: Face) -> float:
    """Largest ΔE00 between the median colours one region point got in two expressions."""
    height, width = colored[0].shape[:2]
    worst = 0.0
    for region in ("hair", "skin", "clothes"):
        for point in face.points.get(region, ()):
            x, y = Face.pixel_point(point, width, height)
            patch = [
                np.median(c[y - 3 : y + 4, x - 3 : x + 4, :3].reshape(-1, 3), axis=0)
                for c in colored
            ]
            patches = np.array(patch, np.uint8)[None]
            worst = max(worst, float(delta_e(patches, np.repeat(patches[:, :1], 7, 1)).max()))
    return worst


#: The drawn set's label ids as colorize's regions (a mouth is painted with the skin).
TRUE_REGION = {
    BACKGROUND: "background",
    HAIR: "hair",
    SKIN: "skin",
    MOUTH: "skin",
    EYE: "eyes",
    CLOTHES: "clothes",
}


def cheek_skin(labels: np.ndarray, face: Face) -> float:
    """The share of skin in ``labels`` between the eyes and the bottom of the mouth."""
    height, width = labels.shape
    left, right, mouth = (Face.pixel_box(box, width, height) for box in (*face.eyes, face.mouth))
    return float(np.mean(labels[left[3] : mouth[3], left[0] : right[2]] == LABELS.index("skin")))


def regions(count: int, seeds: int, ckpt: Path | None) -> dict:
    scores: dict[str, list[float]] = {name: [] for name in LABELS}
    for index in range(count):
        drawing = draw_character(HELD_OUT_SEED, index, 64, labels=True)
        picture = np.asarray(drawing.image.convert("RGB"))
        found = character_regions(picture, Face.from_dict(face_info(picture)))
        found = np.asarray(Image.fromarray(found.astype(np.uint8)).resize((64, 64), Image.NEAREST))
        judged = ~np.isin(drawing.labels, (LINE, ACCESSORY))
        for name in LABELS:
            truth = np.isin(drawing.labels, [i for i, n in TRUE_REGION.items() if n == name])
            mine = (found == LABELS.index(name)) & judged
            if truth.any():
                scores[name].append((truth & mine).sum() / (truth | mine).sum())
    report = {f"drawn IoU {name}": round(float(np.mean(v)), 3) for name, v in scores.items() if v}
    path = ckpt or shipped_checkpoint()
    from acgmake.models import load_generator

    generator = load_generator(path)
    layout = layout_from_metadata(read_metadata(path)) if path.suffix == ".safetensors" else None
    lost = []
    for seed in range(seeds):
        picture = generate_character(generator, seed)
        face = Face.from_dict(face_info(picture, layout))
        if cheek_skin(character_regions(picture, face), face) < 0.5:
            lost.append(seed)
    report[f"{path.name}: faces with < half their cheeks skin, of {seeds}"] = len(lost)
    report[f"{path.name}: those seeds"] = lost
    return report


def gaps() -> dict:
    """Per page size, method and gap: the share of the unhinted background painted (%), in
    colored.png and in the flats layer, both brought to the page's size."""
    import torch

    sys.path.insert(0, str(ROOT / "tests"))
    from test_colorize_gaps import gap_drawing

    torch.set_num_threads(1)
    report = {}
    for size in GAP_PAGES:
        for method in METHODS:
            row = {}
            for gap in GAPS:
                drawing = gap_drawing(gap, size=size)
                painting = colorize_layers(
                    np.dstack([drawing.page] * 3),
                    hints=hints_from_rgba(drawing.hints),
                    method=method,
                )
                shares = [
                    _painted(layer, drawing.background)
                    for layer in (painting.composite(), painting.flats)
                ]
                row[f"{gap}px"] = [round(100 * share, 2) for share in shares]
            report[f"{size}px {method}: % painted (colored.png, flats)"] = row
    return report


def _painted(rgba: np.ndarray, background: np.ndarray) -> float:
    """The share of ``background`` (at the page's size) where ``rgba``'s opacity, shrunk to
    that size by area averaging, is above zero."""
    height, width = background.shape
    alpha = Image.fromarray(rgba[..., 3]).resize((width, height), Image.Resampling.BOX)
    return float((np.asarray(alpha)[background] > 0).mean())


def speed() -> dict:
    import torch

    torch.set_num_threads(1)
    picture = np.asarray(Image.open(ROOT / "examples" / "lineart.png").convert("RGB"))
    hints = read_hints(ROOT / "examples" / "hints.png", (picture.shape[1], picture.shape[0]))
    timing = {}
    for method in METHODS:
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            colorize_layers(picture, hints=hints, method=method).composite()
            runs.append(time.perf_counter() - started)
        timing[f"{method} s per 512x512"] = round(float(np.median(runs)), 2)
    return timing


def figure(path: Path) -> None:
    """Before and after for the README: the example line art with its hints, then flat and
    neural; a 64 px drawn character, then both methods with the "sakura" palette."""
    picture = np.asarray(Image.open(ROOT / "examples" / "lineart.png").convert("RGB"))
    hints_rgba = np.asarray(Image.open(ROOT / "examples" / "hints.png").convert("RGBA"))
    hints = hints_from_rgba(hints_rgba)
    # The strokes drawn thicker, so they show at the figure's size.
    thick = np.dstack([ndimage.grey_dilation(hints_rgba[..., c], size=(5, 5)) for c in range(4)])
    alpha = thick[..., 3:] / 255.0
    before = (thick[..., :3] * alpha + picture * (1 - alpha)).astype(np.uint8)
    character = np.asarray(draw_character(HELD_OUT_SEED, 4, 64).image.convert("RGB"))
    face = Face.from_dict(face_info(character))
    palette = parse_palette("sakura")
    panels = [before]
    panels += [
        _on_grey(colorize_layers(picture, hints=hints, method=m).composite()) for m in METHODS
    ]
    panels.append(np.asarray(Image.fromarray(character).resize((512, 512), Image.NEAREST)))
    panels += [
        _on_grey(colorize_layers(character, face=face, palette=palette, method=m).composite())
        for m in METHODS
    ]
    rows = [np.hstack(panels[:3]), np.hstack(panels[3:])]
    Image.fromarray(np.vstack(rows)).resize((768, 512), Image.LANCZOS).save(path)


def _on_grey(rgba: np.ndarray) -> np.ndarray:
    alpha = rgba[..., 3:] / 255.0
    return (rgba[..., :3] * alpha + 232 * (1 - alpha)).astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=24, help="held-out characters")
    parser.add_argument("--size", type=int, default=128, help="drawing size (px)")
    parser.add_argument("--expressions", type=int, default=6, help="characters for ΔE")
    parser.add_argument("--figure", type=Path, help="also draw the before/after PNG here")
    parser.add_argument("--seeds", type=int, default=100, help="generated characters checked")
    parser.add_argument("--ckpt", type=Path, help="generator for the regions check")
    parser.add_argument("--only-regions", action="store_true", help="just the regions section")
    parser.add_argument("--only-gaps", action="store_true", help="just the gaps section")
    args = parser.parse_args(argv)
    if args.figure:
        figure(args.figure)
    if args.only_regions:
        print(json.dumps(regions(args.count, args.seeds, args.ckpt), indent=1))
        return 0
    if args.only_gaps:
        _print_gaps(gaps())
        return 0
    report = {
        "regions (character path)": regions(args.count, args.seeds, args.ckpt),
        "fidelity (character pixels; PSNR dB, mean CIEDE2000)": fidelity(args.count, args.size),
        "expressions, flat": expressions(args.expressions, args.size, "flat"),
        "expressions, neural": expressions(args.expressions, args.size, "neural"),
        "gaps (unhinted background painted)": gaps(),
        "speed (one CPU thread)": speed(),
    }
    fidelity_table = report["fidelity (character pixels; PSNR dB, mean CIEDE2000)"]
    print("| method | hint dots per region | PSNR (dB) | mean ΔE00 |")
    print("|---|---|---|---|")
    for name, row in fidelity_table.items():
        method, density = name.split()
        print(f"| {method} | {density.split('/')[0]} | {row['psnr_db']} | {row['delta_e00']} |")
    _print_gaps(report["gaps (unhinted background painted)"])
    print(json.dumps(report, indent=1, ensure_ascii=False))
    return 0


def _print_gaps(table: dict) -> None:
    """The gaps section as a Markdown table: % of the background painted in colored.png."""
    print("| page, method | " + " | ".join(f"gap {gap} px" for gap in GAPS) + " |")
    print("|---|" + "---|" * len(GAPS))
    for name, row in table.items():
        cells = " | ".join(f"{row[f'{gap}px'][0]:g}" for gap in GAPS)
        print(f"| {name.split(':')[0]} | {cells} |")


if __name__ == "__main__":
    raise SystemExit(main())
