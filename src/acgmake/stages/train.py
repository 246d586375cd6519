"""``acgmake train``: train a character model on your own pictures, on one CPU or many GPUs.

A built-in plugin that adds commands, not a stage: nothing here runs in ``acgmake song``, and
this module imports only click until a command runs. ``acgmake train DATA --out RUN`` trains;
``acgmake train prepare`` makes shards; ``acgmake train directions RUN`` learns the edits.
The work lives in :mod:`acgmake.models.train` and :mod:`acgmake.models.dataset`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from acgmake import hookimpl

SIZES = ("64", "128", "256", "512")


class TrainGroup(click.Group):
    """``acgmake train DATA ...`` is ``acgmake train run DATA ...``: a first argument that is
    not a subcommand's name goes to ``run``. (A click group cannot take an optional argument
    before its subcommands; this keeps the short form the issue asks for and still lists
    ``prepare`` and ``directions`` in the help. A DATA folder named ``prepare`` needs
    ``acgmake train run prepare``.)"""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


def channels_for(size: int) -> dict[int, int]:
    """Feature maps per resolution: the shipped model's up to 64 px; above, rosinality's
    table at channel multiplier 1 capped at 256 (a GPU model of about 20 M parameters)."""
    from acgmake.models.stylegan2 import default_channels
    from acgmake.models.train import TrainConfig

    if size <= 64:
        return {k: v for k, v in TrainConfig().channels.items() if k <= size}
    return default_channels(size, channel_multiplier=1, channel_max=256)


class ProgressLine:
    """One line on stderr: iteration, images/s, losses and time left; redrawn in place on a
    terminal, a line every ``every`` iterations otherwise."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.tty = sys.stderr.isatty()
        self.shown = False

    def __call__(self, trainer, seconds_left: float) -> None:
        c, it, stats = trainer.config, trainer.iteration, trainer.last
        if not self.tty and it % self.every and it != c.iters:
            return
        left = time.strftime("%H:%M:%S", time.gmtime(max(0.0, seconds_left)))
        line = (
            f"[{it * 100 // c.iters:3d}%] iter {it}/{c.iters}  d {stats.get('d', 0):.3f}  "
            f"g {stats.get('g', 0):.3f}  {left} left"
        )
        if self.tty:
            click.echo(f"\r{line}\x1b[K", err=True, nl=it == c.iters)
            self.shown = it != c.iters
        else:
            click.echo(line, err=True)

    def log(self, line: str) -> None:
        if self.shown:
            click.echo("\r\x1b[K", err=True, nl=False)
        click.echo(line, err=True)


def _check_run_folder(out: Path, resume: bool) -> None:
    import os

    from acgmake.errors import UserError

    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder for the run")
    taken = [name for name in ("checkpoint.pt", "config.json") if (out / name).exists()]
    if taken and not resume:
        raise UserError(
            f"{out} already holds a run ({taken[0]}); add --resume to continue it, or give "
            "another --out"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot make the run folder {out}: {error.strerror or error}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise UserError(f"cannot write to {out}; check its permissions or give another --out")


@hookimpl
def register_commands(cli):
    @cli.group("train", cls=TrainGroup)
    def train_group():
        """Train a character model on your own pictures (one CPU, a GPU, or many with torchrun).

        \b
        Train:            acgmake train DATA --out RUN --export mine.safetensors
        Prepare shards:   acgmake train prepare DATA --out SHARDS --size 128
        Learn the edits:  acgmake train directions RUN
        Many GPUs:        torchrun --nproc_per_node 8 -m acgmake train DATA --out RUN ...
        Then:             acgmake song lyrics.txt --ckpt mine.safetensors

        See docs/train.md.
        """

    @train_group.command("run")
    @click.argument("data", type=click.Path(path_type=Path))
    @click.option("--out", type=click.Path(path_type=Path), required=True, help="Run folder.")
    @click.option(
        "--size", type=click.Choice(SIZES), default="64", show_default=True, help="Side, px."
    )
    @click.option("--iters", type=click.IntRange(1), default=8000, show_default=True)
    @click.option(
        "--batch",
        type=click.IntRange(1),
        default=16,
        show_default=True,
        help="Pictures per step, all processes together (keep each process's share a "
        "multiple of 4).",
    )
    @click.option(
        "--accumulate",
        type=click.IntRange(1),
        default=1,
        show_default=True,
        help="Micro-batches per step in each process (less memory, same result).",
    )
    @click.option("--resume", is_flag=True, help="Continue the run in --out where it stopped.")
    @click.option(
        "--export",
        "export_path",
        type=click.Path(path_type=Path),
        help="Write the generator here at the end (for --ckpt).",
    )
    @click.option(
        "--cover",
        type=click.FloatRange(0),
        default=0.0,
        show_default=True,
        help="Weight of the attribute coverage loss (needs mouth/eyes_open attributes).",
    )
    @click.option(
        "--device",
        type=click.Choice(("auto", "cpu", "cuda")),
        default="auto",
        show_default=True,
    )
    @click.option("--amp", is_flag=True, help="bfloat16 mixed precision (CUDA only).")
    @click.option(
        "--channels",
        help="Feature maps per resolution, e.g. 4:128,8:128,16:128,32:64,64:32. "
        "[default: the shipped model's at 64 px]",
    )
    @click.option("--style-dim", type=click.IntRange(8), default=128, show_default=True)
    @click.option("--lr", type=click.FloatRange(0, min_open=True), default=0.002, show_default=True)
    @click.option("--augment", default="color,translation", show_default=True)
    @click.option("--seed", type=click.IntRange(0), default=0, show_default=True)
    @click.option("--sample-every", type=click.IntRange(1), default=500, show_default=True)
    @click.option("--save-every", type=click.IntRange(1), default=500, show_default=True)
    @click.option(
        "--eval-every",
        type=click.IntRange(0),
        default=None,
        help="KID against DATA's held-out part every N iterations (0: off). "
        "[default: --sample-every]",
    )
    @click.option(
        "--threads", type=click.IntRange(0), default=0, help="CPU threads (0: torch's choice)."
    )
    def run(data, out, size, iters, batch, accumulate, resume, export_path, cover, device, amp,
            channels, style_dim, lr, augment, seed, sample_every, save_every, eval_every,
            threads):  # fmt: skip
        """Train a generator on the pictures in DATA; the run folder keeps checkpoints and
        sample grids.

        DATA is a folder of PNG/JPEG/WebP pictures (searched recursively; a holdout/ folder
        in it is held out for KID) or shards from `acgmake train prepare` (needed for a zip
        or tar). Under torchrun each process runs this command.

        Example: acgmake train my-pictures --out runs/mine --iters 2000 --export mine.safetensors
        """
        import os

        import torch

        from acgmake.errors import UserError
        from acgmake.models import dataset
        from acgmake.models import train as training

        side = int(size)
        if threads:
            torch.set_num_threads(threads)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA GPU is visible to torch; use --device cpu")
        if amp and device != "cuda":
            raise UserError("--amp is for CUDA; on a CPU leave it out")
        config = training.TrainConfig(
            size=side,
            style_dim=style_dim,
            channels=training.parse_channels(channels) if channels else channels_for(side),
            batch=batch,
            iters=iters,
            lr=lr,
            augment=augment,
            seed=seed,
            cover=cover,
            guides=("attributes64.safetensors", "attributes64-b.safetensors") if cover else (),
            rng="sample",
        )
        try:
            training.check_channels(config)
            training.augment(torch.zeros(1, 3, 8, 8), augment)
        except ValueError as error:
            raise UserError(f"--augment: {error}") from None
        leader = int(os.environ.get("RANK", "0")) == 0
        if leader:
            _check_run_folder(out, resume)
        pictures, holdout = dataset.open_training_set(data, side)
        progress = ProgressLine(every=50)
        try:
            _train(
                training,
                config,
                data,
                out,
                progress,
                pictures,
                holdout,
                resume=resume,
                save_every=save_every,
                sample_every=sample_every,
                export_path=export_path,
                eval_every=sample_every if eval_every is None else eval_every,
                accumulate=accumulate,
                amp=amp,
                device=device,
            )
        except SystemExit as error:  # the trainer's own one-line refusals (other settings...)
            if isinstance(error.code, str):
                raise UserError(error.code) from None
            raise
        if leader and export_path:
            click.echo(f"Wrote {export_path}; use it: acgmake song LYRICS --ckpt {export_path}")

    @train_group.command("prepare")
    @click.argument("data", type=click.Path(path_type=Path))
    @click.option(
        "--out", type=click.Path(path_type=Path), required=True, help="A new folder for shards."
    )
    @click.option("--size", type=click.Choice(SIZES), default="64", show_default=True)
    @click.option(
        "--crop",
        type=click.Choice(("faces", "center", "none")),
        default="faces",
        show_default=True,
        help="faces: a portrait around the largest face found (no face: dropped); "
        "center: the centred square; none: the whole picture padded to a square.",
    )
    @click.option(
        "--holdout",
        type=click.IntRange(0),
        default=0,
        show_default=True,
        help="Hold out the last N pictures for KID (besides any DATA/holdout/ folder).",
    )
    def prepare(data, out, size, crop, holdout):
        """Crop, resize and de-duplicate the pictures in DATA (a folder, .zip or .tar[.gz])
        into shards that train without being held in memory; OUT/index.json reports each
        dropped file and why.

        Example: acgmake train prepare my-pictures.zip --out shards128 --size 128
        """
        from acgmake.models.dataset import prepare as prepare_shards

        report = prepare_shards(
            data, out, int(size), crop=crop, holdout=holdout, log=lambda s: click.echo(s, err=True)
        )
        click.echo(
            f"Wrote {report.kept} pictures (+{report.holdout} held out) to {out}; "
            f"dropped {len(report.dropped)} (see {out / 'index.json'})"
        )

    @train_group.command("directions")
    @click.argument("run", type=click.Path(path_type=Path))
    @click.option("--count", type=click.IntRange(2), default=24, show_default=True)
    @click.option(
        "--data",
        type=click.Path(path_type=Path),
        help="your pictures with their labels (a folder, or shards from prepare): a "
        "classifier taught by them (mouth open or closed, eyes open or closed, vowels where "
        "labelled) guides the edits beside the shipped ones, and is written beside the model",
    )
    @click.option(
        "--steps",
        type=click.IntRange(1, 10**6),
        default=1500,
        show_default=True,
        help="steps of 32 pictures when teaching that classifier (1500: about 100 s here)",
    )
    def directions(run, count, data, steps):
        """Learn the latent directions for the edits (mouth, vowels, eyes) of a trained model.

        RUN is a run folder (its generator is exported to RUN/generator.safetensors first) or
        a generator file. The directions are written beside it, where --ckpt finds them.
        With --data, your own labels (attributes.jsonl rows with mouth and eyes_open, or tag
        lists with closed_mouth, open_mouth, closed_eyes) teach what an open mouth and closed
        eyes look like in your pictures.

        Example: acgmake train directions runs/mine --data my_pictures/
        """
        from acgmake.errors import UserError
        from acgmake.models import directions as learn

        ckpt = run
        if run.is_dir():
            ckpt = run / "generator.safetensors"
            if not ckpt.is_file():
                ckpt = _export_run(run, ckpt)
        elif not run.is_file():
            raise UserError(f"{run} is not a run folder or a generator file")
        guides: list[str] = []
        if data is not None:
            own = ckpt.with_name(ckpt.name.removesuffix(".safetensors") + ".attributes.safetensors")
            from acgmake.models.attributes import teach

            teach(data, own, steps=steps, log=lambda line: click.echo(line, err=True))
            guides = [str(path) for path in learn.guide_paths()] + [str(own)]
        learn.main([str(ckpt), "--count", str(count), *(f"--classifier={g}" for g in guides)])


def _train(training, config, data, out, progress, pictures, holdout, **options) -> None:
    training.train(
        config,
        data,
        out,
        log_every=10**9,  # the progress line says it
        log=progress.log,
        pictures=pictures,
        holdout=holdout,
        progress=progress,
        **options,
    )


def _export_run(run: Path, path: Path) -> Path:
    """Export the EMA generator of the run folder ``run``'s checkpoint to ``path``."""
    import torch

    from acgmake.errors import UserError
    from acgmake.models import train as training

    checkpoint = run / "checkpoint.pt"
    if not checkpoint.is_file():
        raise UserError(f"{run} has no checkpoint.pt; train into it with acgmake train first")
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    stored = dict(state["config"])
    stored["channels"] = {int(k): v for k, v in stored["channels"].items()}
    stored["guides"] = tuple(stored.get("guides", ()))
    trainer = training.Trainer(training.TrainConfig(**stored), torch.zeros(1, 3, 4, 4))
    trainer.load(checkpoint)
    return training.export(trainer, path)
