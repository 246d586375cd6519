"""Train the hint colorizer (:mod:`acgmake.models.colorizer`) on the project's drawn characters.

Data: characters drawn by :mod:`acgmake.models.drawn` at 128 px with their region labels; the
line art is what colorize itself extracts from them (:func:`acgmake.image.lineart.line_art`,
XDoG at 512 px, cleaned) brought to the network's size, so the network learns on the lines it
will be given. Hints are sampled afresh for every batch from the true colours: a few dots per
region, or dots anywhere, or short strokes of a region's colour, from none to dense. Colours
are augmented by swapping the RGB channels (the network must copy hints, not remember
palettes) and pictures by mirroring. Loss: L1 to the drawing's colours. The exported weights
are whichever of the last weights and their exponential moving average does better on
held-out drawings, stored as float16 safetensors.

Reproduce the shipped weights (one CPU thread; 44 min on a shared 2-core machine, after
drawing the data)::

    python -m acgmake.models.colorizer_train --data /tmp/colorize-data \
        --count 8000 --steps 2400 --threads 1 \
        --export src/acgmake/models/weights/colorizer128.safetensors
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from acgmake.models.colorizer import (
    NET_SIZE_PX,
    ColorizerConfig,
    HintColorizer,
    ink_for_net,
    net_features,
    save_colorizer,
)

#: Drawing seed of the training set; held-out sets (the benchmark, the tests) use others.
TRAIN_SEED = 7
LINE_LABEL = 7  # acgmake.models.drawn.LINE


# ---------------------------------------------------------------------------------------------
# Data


def draw_example(seed: int, index: int, size: int = NET_SIZE_PX):
    """One training example: (rgb uint8 HxWx3, ink uint8 HxW 0..255, labels uint8 HxW).

    The ink is colorize's own line art of the drawing (XDoG at working size) at ``size``.
    """
    from acgmake.image.lineart import line_art
    from acgmake.models.drawn import draw_character

    drawing = draw_character(seed, index, size, labels=True)
    rgb = np.asarray(drawing.image.convert("RGB"))
    _, ink = line_art(rgb)
    small = ink_for_net(ink, rgb.shape[:2])
    return rgb, np.round(small * 255).astype(np.uint8), drawing.labels.astype(np.uint8)


def make_dataset(folder: Path, count: int, seed: int = TRAIN_SEED, size: int = NET_SIZE_PX):
    """Draw ``count`` examples into ``folder`` (rgb.npy, ink.npy, labels.npy); reuse if there.

    Returns the three arrays, memory-mapped.
    """
    folder = Path(folder)
    done = folder / "done.json"
    if done.is_file() and json.loads(done.read_text())["count"] >= count:
        return _open_dataset(folder, count)
    folder.mkdir(parents=True, exist_ok=True)
    rgb = np.lib.format.open_memmap(folder / "rgb.npy", "w+", np.uint8, (count, size, size, 3))
    ink = np.lib.format.open_memmap(folder / "ink.npy", "w+", np.uint8, (count, size, size))
    labels = np.lib.format.open_memmap(folder / "labels.npy", "w+", np.uint8, (count, size, size))
    started = time.perf_counter()
    for index in range(count):
        rgb[index], ink[index], labels[index] = draw_example(seed, index, size)
        if (index + 1) % 500 == 0:
            rate = (index + 1) / (time.perf_counter() - started)
            print(f"drew {index + 1}/{count} ({rate:.1f}/s)", file=sys.stderr, flush=True)
    for array in (rgb, ink, labels):
        array.flush()
    done.write_text(json.dumps({"count": count, "seed": seed, "size": size}))
    return _open_dataset(folder, count)


def _open_dataset(folder: Path, count: int):
    return tuple(
        np.load(folder / f"{name}.npy", mmap_mode="r")[:count] for name in ("rgb", "ink", "labels")
    )


def draw_expressions(seed: int, index: int, size: int = NET_SIZE_PX) -> list[np.ndarray]:
    """The seven expressions (:data:`acgmake.image.face.EXPRESSIONS`) of drawn character
    ``index`` of set ``seed``: the same character with each mouth, and with its eyes closed.

    Returns RGB uint8 pictures, rest first.
    """
    import dataclasses

    from acgmake.image.face import EXPRESSIONS
    from acgmake.models.drawn import random_character, render

    character = random_character(np.random.default_rng([seed, index]))
    character = dataclasses.replace(character, eyes_open=True)
    pictures = []
    for expression in EXPRESSIONS:
        mouth = expression if expression in ("a", "i", "u", "e", "o") else "closed"
        variant = dataclasses.replace(
            character,
            mouth=mouth,
            mouth_open=0.0 if mouth == "closed" else 0.9,
            eyes_open=expression != "blink",
        )
        pictures.append(np.asarray(render(variant, size).image.convert("RGB")))
    return pictures


# ---------------------------------------------------------------------------------------------
# Hints sampled from the true colours


def sample_hints(
    rgb: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    *,
    per_region: int | None = None,
    dots: int | None = None,
    strokes: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Hint colours (float HxWx3, 0..1) and mask (bool HxW) taken from a drawing's colours.

    ``per_region`` dots in every region the labels show (lines excluded), or ``dots`` dots
    anywhere off the lines; each dot is one pixel of the true colour under it. ``strokes``
    short random strokes, each of the median colour of the region it starts in.
    """
    height, width = labels.shape
    mask = np.zeros((height, width), bool)
    colours = np.zeros((height, width, 3), np.float32)
    off_line = labels != LINE_LABEL
    chosen: list[np.ndarray] = []
    if per_region:
        for region in np.unique(labels[off_line]):
            where = np.flatnonzero((labels == region).ravel())
            chosen.append(rng.choice(where, size=min(per_region, where.size), replace=False))
    if dots:
        where = np.flatnonzero(off_line.ravel())
        chosen.append(rng.choice(where, size=min(dots, where.size), replace=False))
    if chosen:
        flat = np.concatenate(chosen)
        ys, xs = np.unravel_index(flat, (height, width))
        mask[ys, xs] = True
        colours[ys, xs] = rgb[ys, xs] / 255.0
    for _ in range(strokes):
        where = np.flatnonzero(off_line.ravel())
        y, x = np.unravel_index(rng.choice(where), (height, width))
        region = labels[y, x]
        colour = np.median(rgb[labels == region], axis=0) / 255.0
        for _step in range(int(rng.integers(4, 16))):
            if labels[y, x] != region:
                break
            mask[y, x] = True
            colours[y, x] = colour
            y = int(np.clip(y + rng.integers(-1, 2), 0, height - 1))
            x = int(np.clip(x + rng.integers(-1, 2), 0, width - 1))
    return colours, mask


def random_hints(rgb, labels, rng):
    """Hints of a random kind and density, as a user might give (none to dense)."""
    kind = rng.random()
    if kind < 0.45:
        return sample_hints(
            rgb, labels, rng, per_region=int(rng.integers(0, 4)), strokes=int(rng.integers(0, 3))
        )
    if kind < 0.9:
        return sample_hints(
            rgb, labels, rng, dots=int(rng.geometric(1 / 24)), strokes=int(rng.integers(0, 2))
        )
    return sample_hints(rgb, labels, rng, strokes=int(rng.integers(1, 8)))


def make_batch(data, indexes, rng: np.random.Generator):
    """(input N x 5 x H x W, target N x 3 x H x W) for the examples ``indexes``."""
    rgb_all, ink_all, labels_all = data
    inputs, targets = [], []
    for index in indexes:
        rgb, ink, labels = rgb_all[index], ink_all[index] / 255.0, labels_all[index]
        if rng.random() < 0.5:
            rgb, ink, labels = rgb[:, ::-1], ink[:, ::-1], labels[:, ::-1]
        if rng.random() < 0.5:
            rgb = rgb[..., rng.permutation(3)]
        hint_rgb, hint_mask = random_hints(rgb, labels, rng)
        inputs.append(net_features(np.ascontiguousarray(ink), hint_rgb, hint_mask))
        targets.append(rgb.transpose(2, 0, 1) / 255.0)
    return (
        torch.from_numpy(np.stack(inputs).astype(np.float32)),
        torch.from_numpy(np.stack(targets).astype(np.float32)),
    )


# ---------------------------------------------------------------------------------------------
# Training


def train(
    data,
    *,
    steps: int,
    batch: int = 16,
    learning_rate: float = 2e-3,
    ema_decay: float = 0.998,
    holdout: int = 64,
    run: Path,
    seed: int = 0,
    config: ColorizerConfig | None = None,
) -> tuple[HintColorizer, dict]:
    """Train on ``data`` (from :func:`make_dataset`) for ``steps`` batches; returns the model
    (the moving average of the weights, or the last ones if they do better on the held-out
    examples) and a record of the run (losses, time). The last ``holdout`` examples are only
    evaluated. Resumes from ``run``/state.pt when it is there."""
    config = config or ColorizerConfig()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    holdout = min(holdout, len(data[0]) // 4)
    count = len(data[0]) - holdout
    model = HintColorizer(config)
    ema = HintColorizer(config)
    ema.load_state_dict(model.state_dict())
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate, betas=(0.9, 0.99))
    warmup = max(1, min(100, steps // 20))

    def rate(step: int) -> float:
        """Linear warm-up, then a cosine down to 1 % of the peak."""
        if step < warmup:
            return (step + 1) / warmup
        done = (step - warmup) / max(1, steps - warmup)
        return 0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * min(done, 1.0)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    state_path = run / "state.pt"
    start, seconds, log = 0, 0.0, []
    if state_path.is_file():
        state = torch.load(state_path, weights_only=False)
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        start, seconds, log = state["step"], state["seconds"], state["log"]
        rng = np.random.default_rng([seed, start])
        print(f"resumed at step {start}", file=sys.stderr)

    check_rng = np.random.default_rng(12345)
    check = make_batch(data, range(count, count + holdout), check_rng)
    model.train()
    began = time.perf_counter() - seconds
    running = 0.0
    for step in range(start, steps):
        x, y = make_batch(data, rng.integers(0, count, size=batch), rng)
        loss = F.l1_loss(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        with torch.no_grad():
            for average, current in zip(
                ema.state_dict().values(), model.state_dict().values(), strict=True
            ):
                if average.dtype.is_floating_point:
                    average.mul_(ema_decay).add_(current, alpha=1 - ema_decay)
                else:
                    average.copy_(current)
        running += loss.item()
        if (step + 1) % 100 == 0 or step + 1 == steps:
            ema.eval()
            with torch.no_grad():
                held = float(F.l1_loss(ema(check[0]), check[1]))
            elapsed = time.perf_counter() - began
            entry = {
                "step": step + 1,
                "train_l1": running / 100,
                "holdout_l1": held,
                "minutes": round(elapsed / 60, 1),
            }
            log.append(entry)
            print(json.dumps(entry), file=sys.stderr, flush=True)
            running = 0.0
            torch.save(
                {
                    "model": model.state_dict(),
                    "ema": ema.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(),
                    "step": step + 1,
                    "seconds": elapsed,
                    "log": log,
                },
                state_path,
            )
    seconds = time.perf_counter() - began
    # The averaged weights need batch-norm statistics of their own; then keep whichever of
    # the averaged and the last weights does better on the held-out examples.
    recalibrate(ema, data, count, np.random.default_rng([seed, steps]), batch=batch)
    with torch.no_grad():
        scores = {
            name: float(F.l1_loss(net.eval()(check[0]), check[1]))
            for name, net in (("ema", ema), ("last", model))
        }
    best = min(scores, key=scores.get)
    record = {
        "steps": steps,
        "batch": batch,
        "seconds": round(seconds),
        "log": log,
        "holdout_l1": scores,
        "kept": best,
    }
    return (ema if best == "ema" else model).eval(), record


@torch.no_grad()
def recalibrate(model: HintColorizer, data, count: int, rng, *, batch: int, batches: int = 40):
    """Recompute ``model``'s batch-norm statistics as plain means over ``batches`` batches."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average
    model.train()
    for _ in range(batches):
        model(make_batch(data, rng.integers(0, count, size=batch), rng)[0])
    for norm in norms:
        norm.momentum = 0.1
    model.eval()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m acgmake.models.colorizer_train",
        description="Train the hint colorizer on drawn characters and export safetensors.",
    )
    parser.add_argument("--data", type=Path, required=True, help="folder for the drawn data")
    parser.add_argument("--count", type=int, default=8000, help="characters to draw")
    parser.add_argument("--steps", type=int, default=2400, help="training batches")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--run", type=Path, help="folder for the resumable state [DATA/run]")
    parser.add_argument("--export", type=Path, required=True, help="safetensors file to write")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    import cv2

    cv2.setNumThreads(args.threads)  # the line art is drawn with OpenCV too
    data = make_dataset(args.data, args.count)
    model, record = train(
        data, steps=args.steps, batch=args.batch, run=args.run or args.data / "run"
    )
    command = (
        "python -m acgmake.models.colorizer_train --data DATA "
        f"--count {args.count} --steps {args.steps} --batch {args.batch} "
        f"--threads {args.threads} --export {args.export.name}"
    )
    held = record["holdout_l1"][record["kept"]]
    args.export.parent.mkdir(parents=True, exist_ok=True)
    save_colorizer(
        model,
        args.export,
        {
            "reproduce": command,
            "data": f"{args.count} drawn characters, seed {TRAIN_SEED}, {NET_SIZE_PX} px",
            "train_seconds": str(record["seconds"]),
            "holdout_l1": f"{held:.4f}",
            "steps": str(record["steps"]),
            "license": "MIT (trained by acgmake on its own drawings)",
        },
    )
    (args.data / "record.json").write_text(json.dumps(record, indent=1))
    print(
        f"wrote {args.export} ({args.export.stat().st_size / 1e6:.2f} MB) after "
        f"{record['seconds'] / 60:.0f} min"
    )


if __name__ == "__main__":
    main()
