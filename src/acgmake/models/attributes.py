"""A small CNN that reads a character picture's attributes: mouth shape, how open the mouth
is, whether the eyes are open, and the hair colour.

It is trained on the drawn set (``acgmake.models.drawn``), whose pictures carry these labels,
and is what labels generated pictures when the latent directions are learned
(``acgmake.models.directions``) and what measures an edit (``benchmarks/steering_report.py``).
Its penultimate features also serve as the feature space for KID.

    python -m acgmake.models.attributes --data /work/data/drawn \\
        --holdout /work/data/drawn/holdout --out src/acgmake/models/weights/attributes64.safetensors

trains it on one thread in a few minutes and prints the held-out figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from acgmake.errors import UserError

#: Mouth classes in the order of the classifier's logits.
MOUTHS = ("closed", "a", "i", "u", "e", "o")
SHIPPED_NAME = "attributes64.safetensors"
FEATURES = 128


def shipped_classifier() -> Path:
    """The attribute classifier that comes with acgmake (trained on the drawn set)."""
    return Path(__file__).with_name("weights") / SHIPPED_NAME


class AttributeNet(nn.Module):
    """64 x 64 RGB in [-1, 1] -> mouth logits, mouth openness, eyes-open logit, hair RGB."""

    def __init__(self, width: int = 24) -> None:
        super().__init__()
        w = width

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1), nn.LeakyReLU(0.2), nn.MaxPool2d(2)
            )

        # Full resolution first: the mouth is only a few pixels wide at 64 px.
        self.body = nn.Sequential(
            block(3, w), block(w, 2 * w), block(2 * w, 4 * w), block(4 * w, 4 * w)
        )
        self.features = nn.Linear(4 * w * 16, FEATURES)
        self.mouth = nn.Linear(FEATURES, len(MOUTHS))
        self.mouth_open = nn.Linear(FEATURES, 1)
        self.eyes_open = nn.Linear(FEATURES, 1)
        self.hair_rgb = nn.Linear(FEATURES, 3)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate features (N x 128) of images N x 3 x 64 x 64 in [-1, 1]."""
        if images.shape[-1] != 64:
            images = F.interpolate(images, size=(64, 64), mode="area")
        return F.leaky_relu(self.features(self.body(images).flatten(1)), 0.2)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.embed(images)
        return {
            "mouth": self.mouth(feats),
            "mouth_open": self.mouth_open(feats)[:, 0],
            "eyes_open": self.eyes_open(feats)[:, 0],
            "hair_rgb": self.hair_rgb(feats),
        }


@dataclass
class Attributes:
    """What the classifier reads in N pictures (numpy arrays, one row per picture)."""

    mouth_probs: np.ndarray  # N x 6, over MOUTHS
    mouth_open: np.ndarray  # N, 0 (closed) .. 1 (wide open)
    eyes_open: np.ndarray  # N, probability that the eyes are open
    hair_rgb: np.ndarray  # N x 3, 0..255
    features: np.ndarray  # N x 128, penultimate features (for KID)

    @property
    def mouth(self) -> list[str]:
        return [MOUTHS[i] for i in self.mouth_probs.argmax(1)]


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 RGB pictures N x H x W x 3 as a float tensor N x 3 x H x W in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1


def load_classifier(path: str | Path | None = None) -> AttributeNet:
    """The classifier stored at ``path`` (default: the shipped one), in eval mode."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path) if path else shipped_classifier()
    if not path.is_file():
        raise UserError(f"no attribute classifier at {path}; train one with {TRAIN_COMMAND}")
    with safe_open(str(path), "pt") as handle:
        width = int((handle.metadata() or {}).get("width", 24))
    net = AttributeNet(width)
    state = {k: v.float() for k, v in load_file(str(path)).items()}
    net.load_state_dict(state)
    return net.eval()


@torch.no_grad()
def read_attributes(net: AttributeNet, images: np.ndarray, batch: int = 256) -> Attributes:
    """The attributes of uint8 RGB pictures N x H x W x 3 (any size; read at 64 px)."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("m", "o", "e", "h", "f")}
    for start in range(0, len(images), batch):
        x = to_tensor(images[start : start + batch])
        feats = net.embed(x)
        parts["m"].append(F.softmax(net.mouth(feats), 1).numpy())
        parts["o"].append(net.mouth_open(feats)[:, 0].clamp(0, 1).numpy())
        parts["e"].append(torch.sigmoid(net.eyes_open(feats)[:, 0]).numpy())
        parts["h"].append((net.hair_rgb(feats).clamp(0, 1) * 255).numpy())
        parts["f"].append(feats.numpy())
    m, o, e, h, f = (np.concatenate(parts[k]) for k in ("m", "o", "e", "h", "f"))
    return Attributes(m, o, e, h, f)


# ---------------------------------------------------------------------------------------------
# Training

TRAIN_COMMAND = (
    "python -m acgmake.models.attributes --data /work/data/drawn "
    "--holdout /work/data/drawn/holdout --out src/acgmake/models/weights/attributes64.safetensors"
)


def load_labelled(folder: Path, limit: int | None = None) -> tuple[np.ndarray, dict]:
    """The pictures of a drawn-set folder (N x 64 x 64 x 3) and their labels as arrays."""
    from PIL import Image

    rows = [json.loads(line) for line in (folder / "attributes.jsonl").open(encoding="utf-8")]
    rows = rows[:limit] if limit else rows
    images = np.stack(
        [np.asarray(Image.open(folder / r["file"]).convert("RGB").resize((64, 64))) for r in rows]
    )
    labels = {
        "mouth": np.array([MOUTHS.index(r["mouth"]) for r in rows]),
        "mouth_open": np.array([r["mouth_open"] for r in rows], dtype=np.float32),
        "eyes_open": np.array([r["eyes_open"] for r in rows], dtype=np.float32),
        "hair_rgb": np.array(
            [[int(r["hair_rgb"][i : i + 2], 16) for i in (1, 3, 5)] for r in rows],
            dtype=np.float32,
        ),
    }
    return images, labels


def _augment(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Shifts of up to 2 px, and a blur on half the batch: generated pictures are softer."""
    dx, dy = (int(v) for v in torch.randint(-2, 3, (2,), generator=rng))
    x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    half = x.shape[0] // 2
    kernel = torch.tensor([1.0, 2.0, 1.0]) / 4
    kernel = (kernel[:, None] * kernel[None, :]).expand(3, 1, 3, 3)
    blurred = F.conv2d(F.pad(x[:half], (1, 1, 1, 1), mode="replicate"), kernel, groups=3)
    return torch.cat([blurred, x[half:]])


def evaluate(net: AttributeNet, images: np.ndarray, labels: dict) -> dict[str, float]:
    """Held-out figures: mouth and eyes accuracy, openness and hair-colour mean errors."""
    got = read_attributes(net, images)
    return {
        "mouth_accuracy": float((got.mouth_probs.argmax(1) == labels["mouth"]).mean()),
        "eyes_accuracy": float(((got.eyes_open > 0.5) == (labels["eyes_open"] > 0.5)).mean()),
        "mouth_open_mae": float(np.abs(got.mouth_open - labels["mouth_open"]).mean()),
        "hair_rgb_mae": float(np.abs(got.hair_rgb - labels["hair_rgb"]).mean()),
    }


def train(
    images: np.ndarray,
    labels: dict,
    *,
    epochs: int = 5,
    batch: int = 64,
    seed: int = 0,
    width: int = 24,
    log=print,
) -> AttributeNet:
    """A classifier trained on ``images`` (uint8 N x 64 x 64 x 3) and their ``labels``."""
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    net = AttributeNet(width)
    y = {k: torch.from_numpy(v) for k, v in labels.items()}

    def loss_of(out: dict[str, torch.Tensor], idx: torch.Tensor) -> torch.Tensor:
        return (
            F.cross_entropy(out["mouth"], y["mouth"][idx])
            + 4 * F.mse_loss(out["mouth_open"], y["mouth_open"][idx])
            + F.binary_cross_entropy_with_logits(out["eyes_open"], y["eyes_open"][idx])
            + 4 * F.mse_loss(out["hair_rgb"], y["hair_rgb"][idx] / 255)
        )

    return _fit(net, images, loss_of, epochs=epochs, batch=batch, rng=rng, log=log)


def _fit(
    net: AttributeNet,
    images: np.ndarray,
    loss_of,
    *,
    epochs: int,
    batch: int,
    rng: torch.Generator,
    log=print,
    log_every: int = 100,
) -> AttributeNet:
    """``epochs`` passes over ``images`` in shuffled batches of ``batch`` (shifted and
    blurred), Adam on a one-cycle schedule; ``loss_of(outputs, indices)`` is the batch's loss
    (one that nothing in the batch can teach, without a gradient, is skipped)."""
    steps = epochs * (len(images) // batch)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
    x_all = to_tensor(images)
    started = time.perf_counter()
    step = 0
    for epoch in range(epochs):
        order = torch.randperm(len(images), generator=rng)
        for start in range(0, len(images) - batch + 1, batch):
            idx = order[start : start + batch]
            loss = loss_of(net(_augment(x_all[idx], rng)), idx)
            if loss.requires_grad:
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            schedule.step()
            step += 1
            if step % log_every == 0:
                log(
                    f"epoch {epoch + 1}/{epochs} step {step}/{steps} loss {loss.item():.3f} "
                    f"({time.perf_counter() - started:.0f} s)"
                )
    return net.eval()


# ---------------------------------------------------------------------------------------------
# A classifier taught by a user's own labels, some pictures labelled, some not

#: Danbooru-style tags that say something about the mouth or the eyes.
MOUTH_TAGS = {"closed_mouth": "closed", ":o": "o", "open_mouth": "open", ":d": "open"}
EYES_CLOSED_TAGS = {"closed_eyes"}
#: Tags that leave the eyes unknown (one open, one closed; hidden).
EYES_UNKNOWN_TAGS = {"one_eye_closed", "covered_eyes", "eyes_visible_through_hair"}
#: A head is taught only with at least this many pictures on each side of it.
MIN_EACH = 8


def partial_labels(rows: list[dict]) -> dict[str, np.ndarray]:
    """Labels for pictures whose attribute rows (``attributes.jsonl`` as acgmake reads it, and
    ``tags``) say only some things, as arrays with "unknown" marked: ``mouth`` (index into
    :data:`MOUTHS`, -1 unknown), ``mouth_opened`` (1 where the mouth is known open but not
    which vowel, as the tag ``open_mouth`` says), ``eyes_open`` (1, 0, or NaN unknown).

    From a row: ``mouth`` (one of MOUTHS, or ``open``) and ``eyes_open`` (true/false or 0..1)
    as the drawn set writes them; else its tags: ``closed_mouth``, ``open_mouth``, ``:d``,
    ``:o``; ``closed_eyes`` (closed), any tag list without it and without ``one_eye_closed``
    (open: taggers tag closed eyes, not open ones). Anything else is unknown."""
    mouth = np.full(len(rows), -1, np.int64)
    opened = np.zeros(len(rows), np.float32)
    eyes = np.full(len(rows), np.nan, np.float32)
    for index, row in enumerate(rows):
        tags = {str(t).strip().lower().replace(" ", "_") for t in row.get("tags") or []}
        said = row.get("mouth")
        if not isinstance(said, str):
            meanings = {MOUTH_TAGS[t] for t in tags if t in MOUTH_TAGS}
            vowels = meanings & set(MOUTHS[1:])
            if "closed" in meanings:
                said = "closed" if meanings == {"closed"} else None  # None: they disagree
            else:
                said = min(vowels) if len(vowels) == 1 else ("open" if meanings else None)
        if said in MOUTHS:
            mouth[index] = MOUTHS.index(said)
        elif said == "open":
            opened[index] = 1.0
        value = row.get("eyes_open")
        if isinstance(value, bool | int | float) and 0 <= float(value) <= 1:
            eyes[index] = float(value)
        elif tags and not tags & EYES_UNKNOWN_TAGS:
            eyes[index] = 0.0 if tags & EYES_CLOSED_TAGS else 1.0
    return {"mouth": mouth, "mouth_opened": opened, "eyes_open": eyes}


def label_counts(labels: dict[str, np.ndarray]) -> dict[str, int]:
    """How many pictures are labelled each way (what the report and :func:`taught` read)."""
    mouth, eyes = labels["mouth"], labels["eyes_open"]
    return {
        "mouth_closed": int((mouth == 0).sum()),
        "mouth_open": int(((mouth > 0) | (labels["mouth_opened"] > 0)).sum()),
        "vowels": int((mouth > 0).sum()),
        "eyes_open": int((eyes >= 0.5).sum()),
        "eyes_closed": int((eyes < 0.5).sum()),
    }


def taught(labels: dict[str, np.ndarray]) -> dict[str, bool]:
    """Which heads the labels can teach: ``mouth`` (open or closed), ``vowels`` (which
    vowel: every vowel labelled at least :data:`MIN_EACH` times) and ``eyes``."""
    counts = label_counts(labels)
    vowels = [int((labels["mouth"] == i).sum()) for i in range(1, len(MOUTHS))]
    return {
        "mouth": min(counts["mouth_closed"], counts["mouth_open"]) >= MIN_EACH,
        "vowels": min(vowels) >= MIN_EACH,
        "eyes": min(counts["eyes_open"], counts["eyes_closed"]) >= MIN_EACH,
    }


def train_partial(
    images: np.ndarray,
    labels: dict[str, np.ndarray],
    *,
    steps: int = 1500,
    batch: int = 32,
    seed: int = 0,
    width: int = 24,
    log=print,
) -> AttributeNet:
    """A classifier taught by :func:`partial_labels` in ``steps`` steps of ``batch`` pictures
    (a few hundred labelled pictures are seen many times, shifted and blurred): each picture
    teaches only what its row says. A mouth known open but not which vowel teaches "not
    closed" (the log of the five vowels' summed probability). Without vowel labels the five
    vowel outputs start equal and so stay equal (the same gradient each step): the classifier
    then reads open or closed, and an edit toward one vowel asks it only for an open mouth,
    the shipped classifiers for the shape. The hair head is not taught."""
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    net = AttributeNet(width)
    can = taught(labels)
    if not can["vowels"]:
        with torch.no_grad():
            net.mouth.weight[2:] = net.mouth.weight[1]
            net.mouth.bias[2:] = net.mouth.bias[1]
    mouth = torch.from_numpy(labels["mouth"])
    opened = torch.from_numpy(labels["mouth_opened"]) > 0
    eyes = torch.from_numpy(labels["eyes_open"])
    if not can["vowels"]:  # vowels named too rarely to learn: each is just "open"
        opened = opened | (mouth > 0)
        mouth = torch.where(mouth > 0, -1, mouth)
    zero = torch.zeros(())

    def loss_of(out: dict[str, torch.Tensor], idx: torch.Tensor) -> torch.Tensor:
        loss = zero
        known = mouth[idx] >= 0
        if can["mouth"] and known.any():
            loss = loss + F.cross_entropy(out["mouth"][known], mouth[idx][known])
        some = opened[idx]
        if can["mouth"] and some.any():
            logits = out["mouth"][some]
            loss = loss + (logits.logsumexp(1) - logits[:, 1:].logsumexp(1)).mean()
        seen = ~torch.isnan(eyes[idx])
        if can["eyes"] and seen.any():
            loss = loss + F.binary_cross_entropy_with_logits(
                out["eyes_open"][seen], eyes[idx][seen]
            )
        return loss

    batch = max(1, min(batch, len(images)))
    epochs = -(-steps // max(1, len(images) // batch))
    return _fit(net, images, loss_of, epochs=epochs, batch=batch, rng=rng, log=log, log_every=50)


def partial_accuracy(net: AttributeNet, images: np.ndarray, labels: dict) -> dict[str, float]:
    """Held-out figures for :func:`train_partial`: open-or-closed mouth and eyes accuracy
    over the pictures labelled so (NaN where none is)."""
    got = read_attributes(net, images)
    closed_read = got.mouth_probs[:, 0] > 0.5
    mouth_known = (labels["mouth"] >= 0) | (labels["mouth_opened"] > 0)
    mouth_closed = labels["mouth"] == 0
    eyes_known = ~np.isnan(labels["eyes_open"])
    return {
        "mouth_open_or_closed": float((closed_read == mouth_closed)[mouth_known].mean())
        if mouth_known.any()
        else float("nan"),
        "eyes": float(((got.eyes_open > 0.5) == (labels["eyes_open"] > 0.5))[eyes_known].mean())
        if eyes_known.any()
        else float("nan"),
    }


#: At most this many labelled pictures teach the classifier (read at 64 px: 50 MB).
MAX_LABELLED = 4000


def labelled_pictures(pictures, limit: int = MAX_LABELLED) -> tuple[np.ndarray, dict]:
    """The pictures of a training set (:class:`acgmake.models.dataset.PictureSet`) that say
    something about the mouth or eyes (the first ``limit``), at 64 px, with their
    :func:`partial_labels`."""
    from PIL import Image

    labels = partial_labels(pictures.rows)
    useful = (labels["mouth"] >= 0) | (labels["mouth_opened"] > 0) | ~np.isnan(labels["eyes_open"])
    chosen = np.flatnonzero(useful)[:limit]
    images = np.zeros((len(chosen), 64, 64, 3), np.uint8)
    for place, index in enumerate(chosen):
        picture = pictures.picture(int(index))
        if picture.shape[0] != 64:
            picture = np.asarray(Image.fromarray(picture).resize((64, 64), Image.BOX))
        images[place] = picture
    return images, {name: values[chosen] for name, values in labels.items()}


def teach(data: Path, out: Path, *, steps: int = 1500, log=print) -> dict:
    """Teach a classifier the labels of the training set ``data`` (a folder of pictures or
    prepared shards; :func:`partial_labels`) and write it to ``out``, with the label counts,
    the parts taught and, when ``data`` has labelled held-out pictures, their accuracy in its
    metadata (returned too). UserError when too few pictures are labelled."""
    from acgmake.models.dataset import is_shard_folder, open_training_set, read_index

    size = int(read_index(data)["size"]) if is_shard_folder(data) else 64
    train_set, holdout = open_training_set(data, size)
    images, labels = labelled_pictures(train_set)
    counts, can = label_counts(labels), taught(labels)
    said = ", ".join(f"{name.replace('_', ' ')} {count}" for name, count in counts.items())
    if not (can["mouth"] or can["eyes"]):
        raise UserError(
            f"{data} has too few labelled pictures to teach a classifier ({said}); label at "
            f"least {MIN_EACH} of each of open and closed mouths or eyes, in "
            "attributes.jsonl (mouth, eyes_open) or tag lists (closed_mouth, open_mouth, "
            "closed_eyes)"
        )
    log(f"Teaching a classifier your labels ({said})")
    started = time.perf_counter()
    net = train_partial(images, labels, steps=steps, log=log)
    figures: dict = {"labels": counts, "taught": can}
    if holdout is not None:
        held_images, held_labels = labelled_pictures(holdout)
        if len(held_images):
            figures["held_out"] = partial_accuracy(net, held_images, held_labels)
    save_classifier(
        net, out, {"taught_by": str(data), "figures": json.dumps(figures), "license": "yours"}
    )
    log(
        f"Wrote {out} in {time.perf_counter() - started:.0f} s; held out: "
        f"{figures.get('held_out', 'no labelled held-out pictures')}"
    )
    return figures


def save_classifier(net: AttributeNet, path: Path, metadata: dict[str, str]) -> None:
    """Write the weights as float16 safetensors (small; no pickle) with ``metadata``."""
    from safetensors.torch import save_file

    width = net.body[0][0].out_channels
    state = {k: v.detach().half().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(path), metadata={"width": str(width), **metadata})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m acgmake.models.attributes",
        description="Train the attribute classifier on the drawn set.",
    )
    parser.add_argument("--data", type=Path, required=True, help="drawn-set folder to train on")
    parser.add_argument("--holdout", type=Path, required=True, help="drawn-set folder to test on")
    parser.add_argument("--out", type=Path, required=True, help="weights file to write")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--limit", type=int, default=None, help="train on the first N only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=24, help="channels of the first layer")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.perf_counter()
    images, labels = load_labelled(args.data, args.limit)
    test_images, test_labels = load_labelled(args.holdout)
    print(f"loaded {len(images)} + {len(test_images)} pictures")
    net = train(images, labels, epochs=args.epochs, seed=args.seed, width=args.width)
    # Evaluate what is shipped: the float16 weights, read back.
    save_classifier(net, args.out, {})
    figures = evaluate(load_classifier(args.out), test_images, test_labels)
    seconds = time.perf_counter() - started
    print(json.dumps(figures, indent=2), f"\n{seconds:.0f} s")
    save_classifier(
        net,
        args.out,
        {
            "heldout": json.dumps({k: round(v, 4) for k, v in figures.items()}),
            "trained_on": f"{len(images)} pictures of {args.data.name}, {args.epochs} epochs",
            "command": "python -m acgmake.models.attributes " + " ".join(argv or sys.argv[1:]),
            "license": "MIT",
        },
    )


if __name__ == "__main__":
    main()
