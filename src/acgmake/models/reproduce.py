"""Reproduce the shipped character model: draw the data set, train, export. One command:

    python -m acgmake.models.reproduce --data /tmp/drawn --run /tmp/drawn64-run

It draws the drawn set (20,500 portraits at 64 x 64, seed 0; the last 500 held out), trains
with the settings below on one CPU thread, fine-tunes with the attribute coverage loss, and
writes the EMA generator to ``--export`` (default: ``drawn64.safetensors`` in the run
folder; the shipped copy lives in ``src/acgmake/models/weights/``). Training is
deterministic given the torch version and the kind of CPU, so on the same setup the result
matches the shipped file byte for byte; elsewhere it is an equivalent model. The shipped
run took 2 h 54 min of wall time on one thread of a 2-core x86 CPU shared with other work
(8,000 iterations of 16 images, 0.77 it/s), the fine-tune 84 min (4,000 more, 0.8 it/s).
An interrupted run continues where it stopped when the same command is run again.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from acgmake.models.character import SHIPPED_NAME

DATA_COUNT = 20_500
DATA_HOLDOUT = 500
DATA_SEED = 0
DATA_SIZE = 64

# The settings of the shipped model (acgmake.models.train.TrainConfig fields).
SHIPPED_SETTINGS = {
    "size": 64,
    "style_dim": 128,
    "n_mlp": 4,
    "channels": {4: 128, 8: 128, 16: 128, 32: 64, 64: 32},
    "batch": 16,
    "iters": 8000,
    "lr": 0.002,
    "r1_gamma": 0.1,
    "r1_every": 16,
    "mixing": 0.9,
    "ema_kimg": 5.0,
    "ema_rampup": 0.05,
    "augment": "color,translation",
    "seed": 0,
}
# Then a fine-tune from that checkpoint with the attribute coverage loss (see
# acgmake.models.train.coverage_loss): plain training dropped the closed eyes and most mouth
# shapes, and this brings them back. It runs in RUN/cover and changes only these settings.
COVERAGE_SETTINGS = {
    "cover": 0.3,
    "guides": ("attributes64.safetensors", "attributes64-b.safetensors"),
}
COVERAGE_ITERS = 4000

LICENSE = "MIT (trained by acgmake on its own procedurally drawn images)"
CREDIT = "Character model: acgmake drawn64 StyleGAN2 (trained on acgmake's drawn set, MIT)"


def shipped_metadata() -> dict:
    """Metadata stored in the shipped file: licence, credit, data, layout, how to rebuild."""
    from acgmake.models.drawn import canonical_layout

    return {
        "license": LICENSE,
        "credit": CREDIT,
        "data": {
            "drawn_set": "python -m acgmake.models.drawn",
            "count": DATA_COUNT - DATA_HOLDOUT,
            "seed": DATA_SEED,
            "size": DATA_SIZE,
        },
        # The generated characters follow the drawn set's layout: face.json uses it.
        "layout": canonical_layout(),
        "reproduce": "python -m acgmake.models.reproduce --data DIR --run DIR",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m acgmake.models.reproduce",
        description="Draw the data set and train the shipped character model from scratch.",
    )
    parser.add_argument("--data", type=Path, required=True, help="folder for the drawn set")
    parser.add_argument("--run", type=Path, required=True, help="run folder for training")
    parser.add_argument("--export", type=Path, default=None, help="generator file to write")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    parser.add_argument("--device", default="cpu", help="cpu (default, as shipped) or cuda")
    parser.add_argument("--iters", type=int, default=None, help="override the iterations")
    parser.add_argument(
        "--cover-iters",
        type=int,
        default=COVERAGE_ITERS,
        help=f"iterations of the coverage fine-tune (default {COVERAGE_ITERS}, as shipped)",
    )
    args = parser.parse_args(argv)

    import torch

    from acgmake.models.drawn import write_set
    from acgmake.models.train import TrainConfig, train

    torch.set_num_threads(args.threads)
    attributes = args.data / "attributes.jsonl"
    drawn = attributes.is_file() and sum(1 for _ in attributes.open(encoding="utf-8")) == (
        DATA_COUNT - DATA_HOLDOUT
    )
    if drawn:
        print(f"using the drawn set already in {args.data}", flush=True)
    else:
        print(f"drawing {DATA_COUNT} portraits into {args.data} (about 5 minutes)", flush=True)
        write_set(args.data, DATA_COUNT, DATA_SIZE, DATA_SEED, holdout=DATA_HOLDOUT, progress=True)
    settings = dict(SHIPPED_SETTINGS)
    if args.iters:
        settings["iters"] = args.iters
    log = lambda line: print(line, flush=True)  # noqa: E731
    train(TrainConfig(**settings), args.data, args.run, device=args.device, resume=True, log=log)
    settings |= COVERAGE_SETTINGS
    settings["iters"] += args.cover_iters
    export_path = args.export or args.run / SHIPPED_NAME
    log("fine-tuning with the attribute coverage loss")
    train(
        TrainConfig(**settings),
        args.data,
        args.run / "cover",
        device=args.device,
        resume=True,
        start_from=args.run / "checkpoint.pt",
        export_path=export_path,
        export_metadata=shipped_metadata(),
        log=log,
    )


if __name__ == "__main__":
    main()
