"""Train a StyleGAN2 generator on a folder of images (the drawn set, or your own).

StyleGAN2's recipe, kept small enough for a CPU: the non-saturating logistic loss, lazy R1
regularisation of the discriminator, style mixing, an exponential moving average (EMA) of the
generator (the one that is exported), and DiffAugment (Zhao et al. 2020): colour, translation
and cutout applied, differentiably, to every image the discriminator sees, real or generated,
which keeps the discriminator from memorising a small data set. Path-length regularisation is
left out (it costs a third more time per step; the exported model does not need smooth
interpolation).

One addition of acgmake's own, off by default: ``--cover W`` adds W times an *attribute
coverage* loss to the generator's (:func:`coverage_loss`): two attribute classifiers read each
generated batch, and the loss grows when the batch's share of closed eyes or of a mouth shape
falls short of the training set's (its ``attributes.jsonl``). Plain GAN training dropped
those modes from the shipped model, and a fine-tune with it (``--start-from`` an earlier
run's checkpoint) brought them back; ``python -m acgmake.models.reproduce`` runs both.

    python -m acgmake.models.train --data /work/data/drawn --out runs/drawn64 --size 64 \\
        --iters 8000 --export src/acgmake/models/weights/drawn64.safetensors

Every ``--save-every`` iterations the run folder gets ``checkpoint.pt`` (generator,
discriminator, EMA, optimisers, random states: ``--resume`` continues exactly where it
stopped) and ``samples/NNNNNN.png`` (EMA generator, fixed latents). Runs on CPU unless CUDA is
there (``--device``); ``--threads`` caps CPU threads.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from acgmake.models.stylegan2 import Discriminator, Generator, images_to_uint8

# ---------------------------------------------------------------------------------------------
# Settings


@dataclass
class TrainConfig:
    """Everything that decides a training run (stored in the checkpoint and the export)."""

    size: int = 64
    style_dim: int = 128
    n_mlp: int = 4
    channels: dict[int, int] = field(
        default_factory=lambda: {4: 128, 8: 128, 16: 128, 32: 64, 64: 32}
    )
    batch: int = 16
    iters: int = 8000
    lr: float = 0.002
    r1_gamma: float = 0.1
    r1_every: int = 16
    mixing: float = 0.9
    ema_kimg: float = 5.0  # half-life of the EMA generator, in thousands of images
    ema_rampup: float = 0.05  # short runs: half-life at most this fraction of images seen
    augment: str = "color,translation"
    seed: int = 0
    # Attribute coverage (0 = off): the weight of a loss that holds the mouth shapes and
    # closed eyes of the generated batch at their shares in the training set, read by the
    # attribute classifiers named in ``guides``. See :func:`coverage_loss`.
    cover: float = 0.0
    guides: tuple[str, ...] = ()

    def as_json(self) -> dict:
        record = asdict(self)
        record["channels"] = {str(k): v for k, v in sorted(self.channels.items())}
        record["guides"] = list(self.guides)
        return record


def parse_channels(text: str) -> dict[int, int]:
    """``"4:128,8:128,16:64"`` -> ``{4: 128, 8: 128, 16: 64}``."""
    pairs = (item.split(":") for item in text.split(",") if item.strip())
    return {int(res): int(count) for res, count in pairs}


# ---------------------------------------------------------------------------------------------
# Data


def load_images(folder: Path, size: int, limit: int | None = None) -> torch.Tensor:
    """All PNG/JPEG images directly in ``folder`` as uint8 N x 3 x size x size (sorted names).

    Images of another size are resized (area average when shrinking).
    """
    folder = Path(folder)
    paths = sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in (".png", ".jpg", ".jpeg") and ".labels." not in p.name
    )[:limit]
    if not paths:
        raise SystemExit(f"no .png or .jpg images in {folder}; draw some with acgmake.models.drawn")
    array = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        with Image.open(path) as image:
            image = image.convert("RGB")
            if image.size != (size, size):
                image = image.resize((size, size), Image.Resampling.BOX)
            array[i] = np.asarray(image)
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()


def to_model_range(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float in [-1, 1]."""
    return pixels.float() / 127.5 - 1


# ---------------------------------------------------------------------------------------------
# DiffAugment: the same random transformations for real and generated images, differentiable


def augment(images: torch.Tensor, policy: str) -> torch.Tensor:
    """``images`` (N x 3 x H x W, [-1, 1]) with the comma-separated ``policy`` applied.

    color: brightness, saturation and contrast; translation: shift by up to 1/8 of the side,
    filling with zeros; cutout: a zeroed square of half the side. Draws from torch's RNG.
    """
    for name in filter(None, (part.strip() for part in policy.split(","))):
        if name == "color":
            images = _augment_color(images)
        elif name == "translation":
            images = _augment_translation(images)
        elif name == "cutout":
            images = _augment_cutout(images)
        else:
            raise ValueError(f"unknown augmentation {name!r} (known: color, translation, cutout)")
    return images


def _augment_color(x: torch.Tensor) -> torch.Tensor:
    batch = x.shape[0]
    x = x + (torch.rand(batch, 1, 1, 1, device=x.device) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(batch, 1, 1, 1, device=x.device) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(batch, 1, 1, 1, device=x.device) + 0.5) + mean


def _augment_translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    batch, _, height, width = x.shape
    max_y, max_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
    shift_y = torch.randint(-max_y, max_y + 1, (batch, 1, 1), device=x.device)
    shift_x = torch.randint(-max_x, max_x + 1, (batch, 1, 1), device=x.device)
    rows = torch.arange(height, device=x.device)[None, :, None] + shift_y  # batch x H x 1
    cols = torch.arange(width, device=x.device)[None, None, :] + shift_x  # batch x 1 x W
    # Pad by one pixel of zeros and send every out-of-range index there.
    rows = (rows + 1).clamp(0, height + 1).expand(batch, height, width)
    cols = (cols + 1).clamp(0, width + 1).expand(batch, height, width)
    padded = F.pad(x, (1, 1, 1, 1))
    flat = padded.flatten(2)  # batch x C x (H+2)(W+2)
    index = (rows * (width + 2) + cols).flatten(1)[:, None, :].expand(-1, x.shape[1], -1)
    return flat.gather(2, index).view_as(x)


def _augment_cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    batch, _, height, width = x.shape
    cut_h, cut_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
    top = torch.randint(0, height + 1 - cut_h % 2, (batch, 1, 1), device=x.device) - cut_h // 2
    left = torch.randint(0, width + 1 - cut_w % 2, (batch, 1, 1), device=x.device) - cut_w // 2
    rows = torch.arange(height, device=x.device)[None, :, None]
    cols = torch.arange(width, device=x.device)[None, None, :]
    inside = (rows >= top) & (rows < top + cut_h) & (cols >= left) & (cols < left + cut_w)
    return x * (~inside).unsqueeze(1).to(x.dtype)


# ---------------------------------------------------------------------------------------------
# Losses


def d_logistic_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator side of the non-saturating logistic loss."""
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def g_nonsaturating_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator side: -log D(G(z))."""
    return F.softplus(-fake_logits).mean()


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """Squared gradient norm of D at the real images, mean over the batch."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return grad.square().sum(dim=(1, 2, 3)).mean()


def coverage_loss(
    reads: list[dict[str, torch.Tensor]], mouth_share: torch.Tensor, closed_share: float
) -> torch.Tensor:
    """How far a generated batch's mouth shapes and closed eyes are from their shares.

    GAN training drops modes: the discriminator judges one picture at a time, so a generator
    that draws every character with open eyes and a half-open mouth is never told that a
    tenth of the set blinks. This loss says so. ``reads`` are the attribute classifiers'
    outputs for the batch (averaged: a picture has to convince all of them); the batch's mean
    mouth-class probabilities and closed-eye probability are compared with the training set's
    shares by KL divergence (the set's share first, so a missing class costs the most), and
    each picture's entropy is added so that the shares are met by characters that clearly
    blink or clearly say "o", not by every character being a little of each.
    """
    mouth = torch.stack([F.softmax(r["mouth"], 1) for r in reads]).mean(0)  # N x classes
    closed = torch.stack([torch.sigmoid(-r["eyes_open"]) for r in reads]).mean(0)  # N
    eps = 1e-6
    batch_mouth = mouth.mean(0).clamp_min(eps)
    batch_closed = closed.mean().clamp(eps, 1 - eps)
    target = mouth_share.clamp_min(eps)
    t = min(max(closed_share, eps), 1 - eps)
    kl = (target * (target / batch_mouth).log()).sum()
    kl = kl + t * math.log(t) - t * batch_closed.log()
    kl = kl + (1 - t) * math.log(1 - t) - (1 - t) * (1 - batch_closed).log()
    c = closed.clamp(eps, 1 - eps)
    entropy = -(mouth * mouth.clamp_min(eps).log()).sum(1).mean()
    entropy = entropy - (c * c.log() + (1 - c) * (1 - c).log()).mean()
    return kl + entropy


def attribute_shares(folder: Path, limit: int | None = None) -> tuple[torch.Tensor, float]:
    """The mouth-class shares and the closed-eye share of a drawn set (its attributes.jsonl)."""
    from acgmake.models.attributes import MOUTHS

    path = Path(folder) / "attributes.jsonl"
    if not path.is_file():
        raise SystemExit(
            f"--cover needs the attributes of the pictures ({path} is missing); "
            "draw the set with python -m acgmake.models.drawn, or leave --cover at 0"
        )
    rows = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
    rows = rows[:limit] if limit else rows
    counts = torch.zeros(len(MOUTHS))
    for row in rows:
        counts[MOUTHS.index(row["mouth"])] += 1
    closed = sum(1 for row in rows if not row["eyes_open"]) / len(rows)
    return counts / counts.sum(), closed


@torch.no_grad()
def update_ema(ema: Generator, generator: Generator, beta: float) -> None:
    """EMA of the weights; buffers (noise, w_avg) are copied."""
    for ema_param, param in zip(ema.parameters(), generator.parameters(), strict=True):
        ema_param.lerp_(param, 1 - beta)
    for ema_buffer, buffer in zip(ema.buffers(), generator.buffers(), strict=True):
        ema_buffer.copy_(buffer)


# ---------------------------------------------------------------------------------------------
# The training loop


class Trainer:
    """Owns the networks, optimisers and data of one run; ``step()`` trains one iteration."""

    def __init__(
        self,
        config: TrainConfig,
        images: torch.Tensor,
        device: str | torch.device = "cpu",
        shares: tuple[torch.Tensor, float] | None = None,
    ) -> None:
        self.config = config
        self.device = torch.device(device)
        torch.manual_seed(config.seed)
        c = config
        self.generator = Generator(
            c.size, style_dim=c.style_dim, n_mlp=c.n_mlp, channels=c.channels
        ).to(self.device)
        self.discriminator = Discriminator(c.size, channels=c.channels).to(self.device)
        self.ema = Generator(c.size, style_dim=c.style_dim, n_mlp=c.n_mlp, channels=c.channels)
        self.ema = self.ema.to(self.device).eval().requires_grad_(False)
        self.ema.load_state_dict(self.generator.state_dict())
        self.g_optim = torch.optim.Adam(self.generator.parameters(), lr=c.lr, betas=(0.0, 0.99))
        # Lazy regularisation: R1 every r1_every steps, so its optimiser settings are scaled.
        ratio = c.r1_every / (c.r1_every + 1)
        self.d_optim = torch.optim.Adam(
            self.discriminator.parameters(), lr=c.lr * ratio, betas=(0.0, 0.99**ratio)
        )
        self.images = images  # uint8, kept on the CPU
        self.sampler = torch.Generator().manual_seed(c.seed)
        self.iteration = 0
        self.last: dict[str, float] = {}
        self.guides: list = []
        if c.cover > 0:
            from acgmake.models.attributes import load_classifier, shipped_classifier

            if shares is None or not c.guides:
                raise ValueError("cover > 0 needs the set's attribute shares and guides")
            weights = shipped_classifier().parent
            for name in c.guides:
                path = Path(name) if Path(name).is_file() else weights / name
                self.guides.append(load_classifier(path).to(self.device).requires_grad_(False))
            self.mouth_share = shares[0].to(self.device)
            self.closed_share = float(shares[1])

    def _real_batch(self) -> torch.Tensor:
        index = torch.randint(0, len(self.images), (self.config.batch,), generator=self.sampler)
        return to_model_range(self.images[index]).to(self.device)

    def _fake(self, batch: int) -> torch.Tensor:
        c = self.config
        z = torch.randn(batch, c.style_dim, device=self.device)
        w = self.generator.mapping(z)
        self.generator.update_w_avg(w)
        if c.mixing > 0 and torch.rand(()).item() < c.mixing:
            w_mix = self.generator.mapping(torch.randn(batch, c.style_dim, device=self.device))
            w = self.generator.mix_latents(w, w_mix)
        return self.generator.synthesis(w, noise_mode="random")

    def step(self) -> dict[str, float]:
        """One iteration: a discriminator step (plus R1 when due), a generator step, the EMA."""
        c = self.config
        g, d = self.generator, self.discriminator
        stats: dict[str, float] = {}

        # Discriminator.
        g.requires_grad_(False)
        d.requires_grad_(True)
        real = self._real_batch()
        with torch.no_grad():
            fake = self._fake(c.batch)
        real_logits = d(augment(real, c.augment))
        fake_logits = d(augment(fake, c.augment))
        d_loss = d_logistic_loss(real_logits, fake_logits)
        self.d_optim.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_optim.step()
        stats["d"] = d_loss.item()
        stats["real"] = real_logits.mean().item()
        stats["fake"] = fake_logits.mean().item()

        if c.r1_gamma > 0 and self.iteration % c.r1_every == 0:
            real = self._real_batch().requires_grad_(True)
            logits = d(augment(real, c.augment))
            penalty = r1_penalty(logits, real)
            self.d_optim.zero_grad(set_to_none=True)
            # Scaled by the interval: applied 1/r1_every as often, with the same total weight.
            # "0 * logits" gives every parameter a (zero) gradient, so Adam steps all of them,
            # as the reference trainers do (the shipped model was trained so).
            (c.r1_gamma / 2 * penalty * c.r1_every + 0 * logits[0, 0]).backward()
            self.d_optim.step()
            stats["r1"] = penalty.item()

        # Generator.
        g.requires_grad_(True)
        d.requires_grad_(False)
        fake = self._fake(c.batch)
        g_loss = g_nonsaturating_loss(d(augment(fake, c.augment)))
        stats["g"] = g_loss.item()
        if self.guides:
            cover = coverage_loss(
                [guide(fake) for guide in self.guides], self.mouth_share, self.closed_share
            )
            g_loss = g_loss + c.cover * cover
            stats["cover"] = cover.item()
        self.g_optim.zero_grad(set_to_none=True)
        g_loss.backward()
        self.g_optim.step()

        # EMA, with the half-life ramped up over the start of the run.
        seen = (self.iteration + 1) * c.batch
        half_life = c.ema_kimg * 1000
        if c.ema_rampup:
            half_life = min(half_life, seen * c.ema_rampup)
        beta = 0.5 ** (c.batch / max(half_life, 1e-8))
        update_ema(self.ema, g, beta)

        self.iteration += 1
        self.last = stats
        return stats

    # -- checkpoints ---------------------------------------------------------------------

    def state(self) -> dict:
        return {
            "config": self.config.as_json(),
            "iteration": self.iteration,
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "ema": self.ema.state_dict(),
            "g_optim": self.g_optim.state_dict(),
            "d_optim": self.d_optim.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "sampler_rng": self.sampler.get_state(),
        }

    def save(self, path: Path) -> None:
        temporary = path.with_name(f".{path.name}.partial")
        torch.save(self.state(), temporary)
        temporary.replace(path)

    def load(self, path: Path) -> None:
        """Continue from a checkpoint written by :meth:`save` (same settings)."""
        state = torch.load(path, map_location=self.device, weights_only=True)
        stored = state["config"]
        mine = self.config.as_json()
        differ = sorted(k for k in stored if k not in ("iters",) and stored[k] != mine.get(k))
        if differ:
            raise SystemExit(
                f"{path} was trained with other settings ({', '.join(differ)}); "
                "give the same options or another --out"
            )
        self._take_networks(state)
        torch.set_rng_state(state["torch_rng"])
        self.sampler.set_state(state["sampler_rng"])
        self.iteration = int(state["iteration"])

    def start_from(self, path: Path) -> None:
        """Take the networks, optimiser states and iteration count of another run's checkpoint
        (same network sizes; other training settings, such as ``cover``, may differ)."""
        if not Path(path).is_file():
            raise SystemExit(f"--start-from: no checkpoint at {path}; give a run's checkpoint.pt")
        state = torch.load(path, map_location=self.device, weights_only=True)
        stored, mine = state["config"], self.config.as_json()
        sizes = ("size", "style_dim", "n_mlp", "channels")
        differ = [k for k in sizes if stored.get(k) != mine[k]]
        if differ:
            raise SystemExit(f"{path} has other network sizes ({', '.join(differ)})")
        self._take_networks(state)
        self.iteration = int(state["iteration"])

    def _take_networks(self, state: dict) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.ema.load_state_dict(state["ema"])
        self.g_optim.load_state_dict(state["g_optim"])
        self.d_optim.load_state_dict(state["d_optim"])

    # -- looking at it -------------------------------------------------------------------

    @torch.no_grad()
    def sample_grid(self, path: Path, seeds: int = 16, truncation_psi: float = 1.0) -> None:
        """A grid of EMA-generator images for fixed latents (seeds 0..seeds-1)."""
        z = torch.cat(
            [
                torch.randn(1, self.config.style_dim, generator=torch.Generator().manual_seed(s))
                for s in range(seeds)
            ]
        ).to(self.device)
        images = images_to_uint8(self.ema(z, truncation_psi=truncation_psi, noise_mode="const"))
        save_grid(images, path)


def save_grid(images: np.ndarray, path: Path, columns: int | None = None) -> Path:
    """Tile N x H x W x 3 uint8 images into one PNG (square-ish grid); returns the path."""
    count, height, width, _ = images.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = np.full((rows * height, columns * width, 3), 255, dtype=np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        grid[r * height : (r + 1) * height, c * width : (c + 1) * width] = image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path)
    return path


def export(trainer: Trainer, path: Path, extra: dict | None = None) -> Path:
    """Save the EMA generator (with its average latent recomputed) for acgmake to ship/load."""
    from acgmake.models.checkpoint import save_generator

    ema = trainer.ema
    # w_avg was copied from the trained generator; the EMA generator maps z a little
    # differently, so measure its own average latent for truncation.
    ema.compute_w_avg(10_000, seed=0)
    metadata = {
        "training": trainer.config.as_json(),
        "iterations": trainer.iteration,
        "images_seen": trainer.iteration * trainer.config.batch,
        "trainer": "python -m acgmake.models.train",
    }
    metadata.update(extra or {})
    return save_generator(ema, path, metadata=metadata)


def train(
    config: TrainConfig,
    data: Path,
    out: Path,
    *,
    device: str = "cpu",
    resume: bool = False,
    save_every: int = 500,
    sample_every: int = 500,
    log_every: int = 50,
    export_path: Path | None = None,
    export_metadata: dict | None = None,
    limit: int | None = None,
    start_from: Path | None = None,
    log=print,
) -> Trainer:
    """Train on the images in ``data`` into the run folder ``out``; returns the trainer."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    images = load_images(Path(data), config.size, limit)
    log(f"loaded {len(images)} images from {data} in {time.perf_counter() - started:.1f} s")
    shares = attribute_shares(Path(data), limit) if config.cover > 0 else None
    trainer = Trainer(config, images, device, shares)
    checkpoint = out / "checkpoint.pt"
    if resume and checkpoint.is_file():
        trainer.load(checkpoint)
        log(f"resumed from {checkpoint} at iteration {trainer.iteration}")
    elif start_from is not None:
        trainer.start_from(Path(start_from))
        log(f"starting from {start_from} at iteration {trainer.iteration}")
    (out / "config.json").write_text(json.dumps(config.as_json(), indent=2) + "\n", "utf-8")
    g_params = sum(p.numel() for p in trainer.generator.parameters())
    d_params = sum(p.numel() for p in trainer.discriminator.parameters())
    log(
        f"generator {g_params / 1e6:.2f} M parameters, discriminator {d_params / 1e6:.2f} M; "
        f"device {trainer.device}, {torch.get_num_threads()} thread(s)"
    )

    window_start, window_iters = time.perf_counter(), 0
    while trainer.iteration < config.iters:
        stats = trainer.step()
        window_iters += 1
        it = trainer.iteration
        if it % log_every == 0 or it == config.iters:
            elapsed = time.perf_counter() - window_start
            rate = window_iters / elapsed
            eta = (config.iters - it) / rate
            cover = f"  cover {stats['cover']:.3f}" if "cover" in stats else ""
            log(
                f"iter {it}/{config.iters}  d {stats['d']:.3f}  g {stats['g']:.3f}{cover}  "
                f"real {stats['real']:+.2f}  fake {stats['fake']:+.2f}  "
                f"{rate:.2f} it/s ({rate * config.batch:.1f} img/s)  eta {eta / 60:.0f} min"
            )
            window_start, window_iters = time.perf_counter(), 0
        if it % sample_every == 0 or it == config.iters:
            trainer.sample_grid(out / "samples" / f"{it:06d}.png")
            trainer.sample_grid(out / "samples" / f"{it:06d}-psi0.7.png", truncation_psi=0.7)
        if it % save_every == 0 or it == config.iters:
            trainer.save(checkpoint)
    if export_path is not None:
        path = export(trainer, Path(export_path), export_metadata)
        log(f"exported the EMA generator to {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return trainer


def pick_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def build_parser() -> argparse.ArgumentParser:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        prog="python -m acgmake.models.train",
        description="Train a StyleGAN2 generator on a folder of images; export the EMA generator.",
    )
    add = parser.add_argument
    add("--data", type=Path, required=True, help="folder of PNG/JPEG images")
    add("--out", type=Path, required=True, help="run folder (checkpoint.pt, samples/)")
    add("--size", type=int, default=defaults.size, help="image side in pixels (default 64)")
    add("--style-dim", type=int, default=defaults.style_dim, help="latent size (default 128)")
    add("--n-mlp", type=int, default=defaults.n_mlp, help="mapping layers (default 4)")
    add(
        "--channels",
        default=",".join(f"{k}:{v}" for k, v in defaults.channels.items()),
        help="feature maps per resolution, e.g. 4:128,8:128,16:128,32:64,64:32",
    )
    add("--batch", type=int, default=defaults.batch, help="images per step (default 16)")
    add("--iters", type=int, default=defaults.iters, help="iterations to train to")
    add("--lr", type=float, default=defaults.lr, help="Adam learning rate (default 0.002)")
    add("--r1", type=float, default=defaults.r1_gamma, help="R1 weight gamma (default 0.1)")
    add("--r1-every", type=int, default=defaults.r1_every, help="lazy R1 interval (default 16)")
    add("--mixing", type=float, default=defaults.mixing, help="style mixing probability")
    add("--ema-kimg", type=float, default=defaults.ema_kimg, help="EMA half-life, kimg")
    add("--augment", default=defaults.augment, help="DiffAugment policy: color,translation,cutout")
    add("--seed", type=int, default=defaults.seed, help="random seed (default 0)")
    add(
        "--cover",
        type=float,
        default=defaults.cover,
        help="weight of the attribute coverage loss (default 0: off); needs DATA/attributes.jsonl",
    )
    add(
        "--guides",
        default="attributes64.safetensors,attributes64-b.safetensors",
        help="attribute classifiers that read the coverage (files, or names in models/weights)",
    )
    add("--device", default="auto", help="cpu, cuda, or auto (default)")
    add("--threads", type=int, default=0, help="CPU threads for torch (default: torch's choice)")
    add("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    add(
        "--start-from",
        type=Path,
        default=None,
        help="fine-tune: begin with another run's checkpoint.pt (same sizes, other settings)",
    )
    add("--save-every", type=int, default=500, help="checkpoint interval, iterations")
    add("--sample-every", type=int, default=500, help="sample grid interval, iterations")
    add("--log-every", type=int, default=50, help="progress line interval, iterations")
    add("--limit", type=int, default=None, help="use only the first N images")
    add("--export", type=Path, default=None, help="write the EMA generator here at the end")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        size=args.size,
        style_dim=args.style_dim,
        n_mlp=args.n_mlp,
        channels=parse_channels(args.channels),
        batch=args.batch,
        iters=args.iters,
        lr=args.lr,
        r1_gamma=args.r1,
        r1_every=args.r1_every,
        mixing=args.mixing,
        ema_kimg=args.ema_kimg,
        augment=args.augment,
        seed=args.seed,
        cover=args.cover,
        guides=tuple(filter(None, args.guides.split(","))) if args.cover > 0 else (),
    )


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = config_from_args(args)
    missing = [
        2**i for i in range(2, int(math.log2(config.size)) + 1) if 2**i not in config.channels
    ]
    if missing:
        raise SystemExit(f"--channels lacks resolutions {missing}")
    train(
        config,
        args.data,
        args.out,
        device=pick_device(args.device),
        resume=args.resume,
        save_every=args.save_every,
        sample_every=args.sample_every,
        log_every=args.log_every,
        export_path=args.export,
        limit=args.limit,
        start_from=args.start_from,
        log=lambda line: print(line, flush=True, file=sys.stdout),
    )


if __name__ == "__main__":
    main()
