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
import contextlib
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

from acgmake.errors import UserError
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
    # Where the random draws come from. "global": torch's RNG, one process (the shipped run).
    # "sample": every picture of a step draws its latents, noise, mixing and augmentation from
    # its own generator, seeded by (seed, iteration, phase, place in the step's batch), so a
    # step is the same whichever process or micro-batch draws each picture: one process and
    # torchrun with any number of them train the same model (see :meth:`Trainer._step_sampled`).
    rng: str = "global"

    def as_json(self) -> dict:
        record = asdict(self)
        record["channels"] = {str(k): v for k, v in sorted(self.channels.items())}
        record["guides"] = list(self.guides)
        if self.rng == "global":  # absent as before, so the shipped file's metadata is unchanged
            del record["rng"]
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


Rngs = list[torch.Generator] | None


def augment(images: torch.Tensor, policy: str, rngs: Rngs = None) -> torch.Tensor:
    """``images`` (N x 3 x H x W, [-1, 1]) with the comma-separated ``policy`` applied.

    color: brightness, saturation and contrast; translation: shift by up to 1/8 of the side,
    filling with zeros; cutout: a zeroed square of half the side. Draws from torch's RNG, or
    with ``rngs`` (one CPU generator per image) each image's from its own.
    """
    for name in filter(None, (part.strip() for part in policy.split(","))):
        if name == "color":
            images = _augment_color(images, rngs)
        elif name == "translation":
            images = _augment_translation(images, rngs)
        elif name == "cutout":
            images = _augment_cutout(images, rngs)
        else:
            raise ValueError(f"unknown augmentation {name!r} (known: color, translation, cutout)")
    return images


def _uniform(x: torch.Tensor, rngs: Rngs) -> torch.Tensor:
    """Uniform 0..1, one per image (N x 1 x 1 x 1)."""
    if rngs is None:
        return torch.rand(x.shape[0], 1, 1, 1, device=x.device)
    return torch.stack([torch.rand(1, 1, 1, generator=g) for g in rngs]).to(x.device)


def _integers(x: torch.Tensor, rngs: Rngs, low: int, high: int) -> torch.Tensor:
    """Integers low .. high-1, one per image (N x 1 x 1)."""
    if rngs is None:
        return torch.randint(low, high, (x.shape[0], 1, 1), device=x.device)
    return torch.stack([torch.randint(low, high, (1, 1), generator=g) for g in rngs]).to(x.device)


def _augment_color(x: torch.Tensor, rngs: Rngs = None) -> torch.Tensor:
    x = x + (_uniform(x, rngs) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_uniform(x, rngs) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x, rngs) + 0.5) + mean


def _augment_translation(x: torch.Tensor, rngs: Rngs = None, ratio: float = 0.125) -> torch.Tensor:
    batch, _, height, width = x.shape
    max_y, max_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
    shift_y = _integers(x, rngs, -max_y, max_y + 1)
    shift_x = _integers(x, rngs, -max_x, max_x + 1)
    rows = torch.arange(height, device=x.device)[None, :, None] + shift_y  # batch x H x 1
    cols = torch.arange(width, device=x.device)[None, None, :] + shift_x  # batch x 1 x W
    # Pad by one pixel of zeros and send every out-of-range index there.
    rows = (rows + 1).clamp(0, height + 1).expand(batch, height, width)
    cols = (cols + 1).clamp(0, width + 1).expand(batch, height, width)
    padded = F.pad(x, (1, 1, 1, 1))
    flat = padded.flatten(2)  # batch x C x (H+2)(W+2)
    index = (rows * (width + 2) + cols).flatten(1)[:, None, :].expand(-1, x.shape[1], -1)
    return flat.gather(2, index).view_as(x)


def _augment_cutout(x: torch.Tensor, rngs: Rngs = None, ratio: float = 0.5) -> torch.Tensor:
    _, _, height, width = x.shape
    cut_h, cut_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
    top = _integers(x, rngs, 0, height + 1 - cut_h % 2) - cut_h // 2
    left = _integers(x, rngs, 0, width + 1 - cut_w % 2) - cut_w // 2
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
    path = Path(folder) / "attributes.jsonl"
    if not path.is_file():
        raise SystemExit(
            f"--cover needs the attributes of the pictures ({path} is missing); "
            "draw the set with python -m acgmake.models.drawn, or leave --cover at 0"
        )
    rows = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
    return shares_from_rows(rows[:limit] if limit else rows, str(path))


def shares_from_rows(rows: list[dict], where: str) -> tuple[torch.Tensor, float]:
    """The mouth-class shares and closed-eye share of attribute rows (``mouth``, ``eyes_open``
    as the drawn set writes them); UserError when the rows lack them."""
    from acgmake.models.attributes import MOUTHS

    rows = [row for row in rows if "mouth" in row and "eyes_open" in row]
    if not rows or any(row["mouth"] not in MOUTHS for row in rows):
        raise UserError(
            f'--cover needs each picture\'s "mouth" (one of {", ".join(MOUTHS)}) and '
            f'"eyes_open" attributes, which {where} lacks; leave --cover at 0'
        )
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


def sample_seed(seed: int, iteration: int, phase: int, place: int) -> int:
    """The seed of one picture's draws in one phase of one step (rng "sample")."""
    state = np.random.SeedSequence([seed, iteration, phase, place]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


class Synthesis(torch.nn.Module):
    """The generator's forward for one training batch, as one module (DistributedDataParallel
    syncs gradients only through a wrapped module's ``forward``): per-picture style mixing
    (layers from ``cut`` on take ``z_mix``'s styles) and given noise. Returns the pictures and
    the sum of their ``w`` (for the average latent)."""

    def __init__(self, generator: Generator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, z, z_mix, cut, noise):
        g = self.generator
        w = g.mapping(z)
        w_mix = g.mapping(z_mix)
        layers = torch.arange(g.n_latent, device=w.device)[None, :, None]
        styles = torch.where(layers < cut[:, None, None], w[:, None], w_mix[:, None])
        return g.synthesis(styles, noise=noise), w.detach().sum(0)


class Trainer:
    """Owns the networks, optimisers and data of one run; ``step()`` trains one iteration.

    ``images`` is a uint8 tensor N x 3 x S x S or a :class:`acgmake.models.dataset.PictureSet`
    (read a batch at a time). With ``world`` > 1 (torchrun; the process group is up) each
    process trains its share of every step and DistributedDataParallel averages the gradients;
    ``accumulate`` splits each process's share into that many micro-batches. ``config.batch``
    is the whole step's batch, whatever the number of processes.
    """

    def __init__(
        self,
        config: TrainConfig,
        images,
        device: str | torch.device = "cpu",
        shares: tuple[torch.Tensor, float] | None = None,
        *,
        rank: int = 0,
        world: int = 1,
        accumulate: int = 1,
        amp: bool = False,
    ) -> None:
        self.config = config
        self.device = torch.device(device)
        self.rank, self.world, self.accumulate = rank, world, accumulate
        self.amp = amp and self.device.type == "cuda"
        if (world > 1 or accumulate > 1) and config.rng != "sample":
            raise UserError(
                "several processes or --accumulate need per-picture draws (--rng sample)"
            )
        if config.batch % (world * accumulate):
            raise UserError(
                f"--batch {config.batch} is not a multiple of {world} process(es) x "
                f"--accumulate {accumulate}; give a batch that is"
            )
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
        self.synthesis = Synthesis(self.generator)
        self.g_train: torch.nn.Module = self.synthesis
        self.d_train: torch.nn.Module = self.discriminator
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.g_train = DistributedDataParallel(self.synthesis, device_ids=ids)
            self.d_train = DistributedDataParallel(self.discriminator, device_ids=ids)

    def _take(self, index: torch.Tensor) -> torch.Tensor:
        if isinstance(self.images, torch.Tensor):
            return self.images[index]
        return self.images.take(index.tolist())

    def _real_batch(self) -> torch.Tensor:
        index = torch.randint(0, len(self.images), (self.config.batch,), generator=self.sampler)
        return to_model_range(self._take(index)).to(self.device)

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
        if self.config.rng == "sample":
            return self._step_sampled()
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

        self._update_ema()
        self.iteration += 1
        self.last = stats
        return stats

    def _update_ema(self) -> None:
        """EMA, with the half-life ramped up over the start of the run."""
        c = self.config
        seen = (self.iteration + 1) * c.batch
        half_life = c.ema_kimg * 1000
        if c.ema_rampup:
            half_life = min(half_life, seen * c.ema_rampup)
        beta = 0.5 ** (c.batch / max(half_life, 1e-8))
        update_ema(self.ema, self.generator, beta)

    # -- the step with per-picture draws (rng "sample": one process or many) -----------------

    def _places(self) -> list[torch.Tensor]:
        """The places in the step's batch of this process's micro-batches. Strided (place
        ``q + k * world * accumulate``), so each micro-batch's groups for the discriminator's
        minibatch standard deviation (places j, j + n, j + 2n... of a batch of 4n) hold the
        same pictures as in one process's whole batch, when a micro-batch is a multiple of 4."""
        stride = self.world * self.accumulate
        return [
            torch.arange(micro * self.world + self.rank, self.config.batch, stride)
            for micro in range(self.accumulate)
        ]

    def _rngs(self, phase: int, places: torch.Tensor) -> list[torch.Generator]:
        seed, it = self.config.seed, self.iteration
        return [torch.Generator().manual_seed(sample_seed(seed, it, phase, int(p))) for p in places]

    def _fake_inputs(self, rngs: list[torch.Generator]) -> tuple:
        """Each picture's latent, mixing latent, crossover layer and noise, from its own RNG."""
        c, g = self.config, self.generator
        z, z_mix, cut, noise = [], [], [], []
        shapes = [getattr(g.noises, f"noise_{i}").shape for i in range(g.num_layers)]
        for rng in rngs:
            z.append(torch.randn(c.style_dim, generator=rng))
            mixing = torch.rand((), generator=rng).item() < c.mixing
            z_mix.append(torch.randn(c.style_dim, generator=rng))
            crossover = int(torch.randint(1, g.n_latent, (), generator=rng))
            cut.append(crossover if mixing else g.n_latent)
            noise.append([torch.randn(shape, generator=rng) for shape in shapes])
        to = self.device
        return (
            torch.stack(z).to(to),
            torch.stack(z_mix).to(to),
            torch.tensor(cut, device=to),
            [torch.cat(layer).to(to) for layer in zip(*noise, strict=True)],
        )

    def _autocast(self):
        if self.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _micro_batches(self, module: torch.nn.Module):
        """(micro-batch number, places); gradients sync only after the last micro-batch."""
        places = self._places()
        for micro, where in enumerate(places):
            last = micro == len(places) - 1
            sync = contextlib.nullcontext() if last or self.world == 1 else module.no_sync()
            with sync:
                yield micro, where

    def _step_sampled(self) -> dict[str, float]:
        """One iteration as :meth:`step`, with every picture's draws its own (see
        :data:`TrainConfig.rng`). Losses are means over the micro-batch divided by the number
        of micro-batches, and DistributedDataParallel averages over processes: the gradient is
        the mean over the whole batch, as in one process. The coverage loss is the exception:
        it compares the shares within each micro-batch."""
        c = self.config
        g, d = self.generator, self.discriminator
        parts = self.accumulate
        totals: dict[str, float] = {}

        def add(name: str, value: torch.Tensor) -> None:
            totals[name] = totals.get(name, 0.0) + value.item() / parts

        # Discriminator. Every process draws the whole batch's indices, so the sampler's
        # state stays the same everywhere; each takes its places.
        g.requires_grad_(False)
        d.requires_grad_(True)
        index = torch.randint(0, len(self.images), (c.batch,), generator=self.sampler)
        self.d_optim.zero_grad(set_to_none=True)
        for _, places in self._micro_batches(self.d_train):
            real = to_model_range(self._take(index[places])).to(self.device)
            real_rngs, fake_rngs = self._rngs(0, places), self._rngs(1, places)
            with torch.no_grad():
                fake, _ = self.synthesis(*self._fake_inputs(fake_rngs))
            with self._autocast():
                real_logits = self.d_train(augment(real, c.augment, real_rngs)).float()
                fake_logits = self.d_train(augment(fake, c.augment, fake_rngs)).float()
            d_loss = d_logistic_loss(real_logits, fake_logits)
            (d_loss / parts).backward()
            add("d", d_loss)
            add("real", real_logits.mean())
            add("fake", fake_logits.mean())
        self.d_optim.step()

        if c.r1_gamma > 0 and self.iteration % c.r1_every == 0:
            index = torch.randint(0, len(self.images), (c.batch,), generator=self.sampler)
            self.d_optim.zero_grad(set_to_none=True)
            for _, places in self._micro_batches(self.d_train):
                real = to_model_range(self._take(index[places])).to(self.device)
                real.requires_grad_(True)
                logits = self.d_train(augment(real, c.augment, self._rngs(2, places)))
                penalty = r1_penalty(logits, real)  # in full precision: a second derivative
                loss = c.r1_gamma / 2 * penalty * c.r1_every + 0 * logits[0, 0]
                (loss / parts).backward()
                add("r1", penalty)
            self.d_optim.step()

        # Generator.
        g.requires_grad_(True)
        d.requires_grad_(False)
        self.g_optim.zero_grad(set_to_none=True)
        w_sum = torch.zeros(c.style_dim, device=self.device)
        for _, places in self._micro_batches(self.g_train):
            rngs = self._rngs(3, places)
            with self._autocast():
                fake, w_part = self.g_train(*self._fake_inputs(rngs))
                logits = d(augment(fake, c.augment, rngs)).float()
            w_sum += w_part.float()
            g_loss = g_nonsaturating_loss(logits)
            add("g", g_loss)
            if self.guides:
                cover = coverage_loss(
                    [guide(fake.float()) for guide in self.guides],
                    self.mouth_share,
                    self.closed_share,
                )
                g_loss = g_loss + c.cover * cover
                add("cover", cover)
            (g_loss / parts).backward()
        self.g_optim.step()
        if self.world > 1:
            torch.distributed.all_reduce(w_sum)
        g.update_w_avg((w_sum / c.batch)[None])

        self._update_ema()
        self.iteration += 1
        self.last = totals
        return totals

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
        # "rng" is absent for the default ("global"), as in checkpoints written before it.
        differ = sorted(
            k for k in set(stored) | set(mine) if k != "iters" and stored.get(k) != mine.get(k)
        )
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


def kid(x: np.ndarray, y: np.ndarray, subsets: int = 50, size: int = 250, seed: int = 0):
    """Kernel Inception Distance between feature sets x and y (N x D): (mean, std) over
    ``subsets`` random subsets of ``size`` (at most the smaller set), polynomial kernel,
    unbiased; the figure ``benchmarks/steering_report.py`` reports, x 1000."""
    rng = np.random.default_rng(seed)
    d = x.shape[1]
    size = min(size, len(x), len(y))
    values = []
    for _ in range(subsets):
        a = x[rng.choice(len(x), size, replace=False)].astype(np.float64)
        b = y[rng.choice(len(y), size, replace=False)].astype(np.float64)
        kaa, kbb, kab = ((p @ q.T / d + 1) ** 3 for p, q in ((a, a), (b, b), (a, b)))
        mmd = (kaa.sum() - np.trace(kaa)) / (size * (size - 1))
        mmd += (kbb.sum() - np.trace(kbb)) / (size * (size - 1))
        mmd -= 2 * kab.mean()
        values.append(mmd)
    return float(np.mean(values)), float(np.std(values))


class Quality:
    """KID between the EMA generator's pictures and the held-out pictures, in the feature
    space of the shipped attribute classifier (:mod:`acgmake.models.attributes`, offline; it
    reads every picture at 64 px). The held-out features are computed once."""

    def __init__(self, holdout, count: int = 1000) -> None:
        from acgmake.models.attributes import load_classifier, read_attributes

        self.net = load_classifier()
        pictures = holdout.all(count) if hasattr(holdout, "all") else holdout[:count]
        self.real = read_attributes(self.net, pictures).features
        self.count = max(len(self.real), 100)

    @torch.no_grad()
    def measure(self, trainer: Trainer, batch: int = 50) -> dict[str, float]:
        from acgmake.models.attributes import to_tensor

        rng = torch.Generator().manual_seed(12345)
        features = []
        for start in range(0, self.count, batch):
            n = min(batch, self.count - start)
            z = torch.randn(n, trainer.config.style_dim, generator=rng).to(trainer.device)
            pictures = images_to_uint8(trainer.ema(z, noise_mode="const"))
            features.append(self.net.embed(to_tensor(pictures)).numpy())
        mean, std = kid(np.concatenate(features), self.real)
        return {"kid_x1000": round(mean * 1000, 3), "kid_std_x1000": round(std * 1000, 3)}


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
    pictures=None,
    holdout=None,
    eval_every: int = 0,
    accumulate: int = 1,
    amp: bool = False,
    progress=None,
) -> Trainer:
    """Train on the images in ``data`` into the run folder ``out``; returns the trainer.

    ``data`` is a flat folder of pictures (read whole into memory, as the shipped model was
    trained) unless ``pictures`` (a :class:`acgmake.models.dataset.PictureSet`, read a batch
    at a time) is given, or ``data`` holds prepared shards. With ``holdout`` pictures and
    ``eval_every``, KID against them is logged and appended to ``out/quality.jsonl``. Under
    torchrun every process runs this; only rank 0 logs and writes. ``progress(trainer,
    seconds_left)``, if given, is called after each step on rank 0.
    """
    from acgmake.models import dataset, distributed

    place = distributed.start(device)
    if not place.leader:
        log = lambda line: None  # noqa: E731
    out = Path(out)
    if place.leader:
        out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows = None
    if pictures is None and dataset.is_shard_folder(Path(data)):
        pictures, held = dataset.open_training_set(Path(data), config.size)
        holdout = holdout if holdout is not None else held
    if pictures is not None:
        images, rows = pictures, pictures.rows
        log(f"reading {len(images)} pictures from {data} as training needs them")
    else:
        images = load_images(Path(data), config.size, limit)
        log(f"loaded {len(images)} images from {data} in {time.perf_counter() - started:.1f} s")
    shares = None
    if config.cover > 0:
        shares = attribute_shares(Path(data), limit) if rows is None else None
        shares = shares or shares_from_rows(rows, f"the attributes of {data}")
    trainer = Trainer(
        config,
        images,
        place.device if place.world > 1 else device,
        shares,
        rank=place.rank,
        world=place.world,
        accumulate=accumulate,
        amp=amp,
    )
    checkpoint = out / "checkpoint.pt"
    if resume and checkpoint.is_file():
        trainer.load(checkpoint)
        log(f"resumed from {checkpoint} at iteration {trainer.iteration}")
    elif start_from is not None:
        trainer.start_from(Path(start_from))
        log(f"starting from {start_from} at iteration {trainer.iteration}")
    if place.leader:
        (out / "config.json").write_text(json.dumps(config.as_json(), indent=2) + "\n", "utf-8")
    g_params = sum(p.numel() for p in trainer.generator.parameters())
    d_params = sum(p.numel() for p in trainer.discriminator.parameters())
    processes = f", {place.world} processes" if place.world > 1 else ""
    log(
        f"generator {g_params / 1e6:.2f} M parameters, discriminator {d_params / 1e6:.2f} M; "
        f"device {trainer.device}, {torch.get_num_threads()} thread(s){processes}"
    )
    quality = None
    if eval_every and holdout is not None and len(holdout) and place.leader:
        quality = Quality(holdout)
        log(f"KID every {eval_every} iterations against {len(quality.real)} held-out pictures")

    window_start, window_iters = time.perf_counter(), 0
    run_start, run_iters = time.perf_counter(), 0
    while trainer.iteration < config.iters:
        stats = trainer.step()
        window_iters += 1
        run_iters += 1
        it = trainer.iteration
        if progress is not None and place.leader:
            rate = run_iters / (time.perf_counter() - run_start)
            progress(trainer, (config.iters - it) / rate)
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
        if not place.leader:
            continue
        if it % sample_every == 0 or it == config.iters:
            trainer.sample_grid(out / "samples" / f"{it:06d}.png")
            trainer.sample_grid(out / "samples" / f"{it:06d}-psi0.7.png", truncation_psi=0.7)
        if quality is not None and (it % eval_every == 0 or it == config.iters):
            figures = {"iteration": it, **quality.measure(trainer)}
            with (out / "quality.jsonl").open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(figures) + "\n")
            log(f"iter {it}: KID x 1000 {figures['kid_x1000']:.2f} (+- {figures['kid_std_x1000']})")
        if it % save_every == 0 or it == config.iters:
            trainer.save(checkpoint)
    if export_path is not None and place.leader:
        path = export(trainer, Path(export_path), export_metadata)
        log(f"exported the EMA generator to {path} ({path.stat().st_size / 1e6:.2f} MB)")
    distributed.barrier(place)
    distributed.stop(place)
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
    add(
        "--rng",
        choices=("global", "sample"),
        default=None,
        help="random draws: global (one process, as the shipped model) or sample (per "
        "picture: any number of processes, the same run); default global, sample under torchrun",
    )
    add("--accumulate", type=int, default=1, help="micro-batches per step per process")
    add("--amp", action="store_true", help="bfloat16 mixed precision (CUDA only)")
    add("--eval-every", type=int, default=0, help="KID against DATA's held-out part (0: off)")
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
        rng=args.rng or default_rng(args.accumulate),
    )


def default_rng(accumulate: int = 1) -> str:
    """ "sample" under torchrun or with micro-batches (they need it), else "global"."""
    import os

    return "sample" if int(os.environ.get("WORLD_SIZE", "1")) > 1 or accumulate > 1 else "global"


def check_channels(config: TrainConfig) -> None:
    """UserError when ``config.channels`` lacks a resolution of the model."""
    missing = [
        2**i for i in range(2, int(math.log2(config.size)) + 1) if 2**i not in config.channels
    ]
    if missing:
        raise UserError(f"--channels lacks resolutions {missing}")


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = config_from_args(args)
    try:
        check_channels(config)
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
            eval_every=args.eval_every,
            accumulate=args.accumulate,
            amp=args.amp,
        )
    except UserError as error:
        raise SystemExit(f"error: {error}") from None


if __name__ == "__main__":
    main()
