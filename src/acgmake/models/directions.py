"""Latent directions of a StyleGAN2 generator: shape the mouth for a vowel, close it, blink.

InterFaceGAN finds a direction as the difference of class means of sampled ``w``. The shipped
generator, though, draws nearly every character with open eyes and a slightly open mouth, so
its samples hold too few of the other classes. Here the attribute classifier
(``acgmake.models.attributes``) guides the sampled characters instead: gradient steps on the
styles through the generator and the classifier move each one toward a mouth class or a
blink while a penalty keeps its picture unchanged outside the mouth or eyes. A direction is
the mean of those edits (a vector per style layer), the same for every character.

A mean edit moves more than its face part: on the shipped model ``mouth=1`` alone changes the
picture outside the mouth and eyes by 43 (of 255) on average, a bob turned to long hair, a
new collar. So ``--edit`` shows each edit only on its part (:data:`EDIT_PARTS`), pasted into
the unedited character inside a soft mask
(:func:`acgmake.models.expressions.draw_edited`), as the expressions strip does.

The directions of ``model.safetensors`` live beside it in ``model.directions.safetensors``,
whose metadata names the generator's sha256 and the command that made them:

    python -m acgmake.models.directions src/acgmake/models/weights/drawn64.safetensors
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

from acgmake.errors import UserError
from acgmake.models.attributes import MOUTHS, load_classifier

VOWELS = MOUTHS[1:]
#: What ``--edit`` knows: ``mouth`` opens (+) or closes (-) it, ``eyes`` opens or closes
#: them, and each vowel shapes the mouth toward it. An amount of 1 is the mean learned edit
#: from one state to the other (e.g. ``eyes=-1``: open eyes toward closed).
EDIT_NAMES = ("mouth", "eyes", *VOWELS)
#: The face part each edit changes, and the only part of the picture it may change.
EDIT_PARTS = {"mouth": "mouth", "eyes": "eyes", **{vowel: "mouth" for vowel in VOWELS}}
#: Where the eyes are set for the expressions (in units of the eyes vector: 0 = the mean of
#: the blink edits, 1 = the mean open-eyed styles) and how far a vowel is pushed (1 = the
#: mean edit to it). Further than 0 paints a pale patch rather than shut eyes.
EYES_OPEN, EYES_CLOSED, VOWEL_STRENGTH = 1.0, 0.0, 1.0
#: The attribute classifiers (in models/weights) that guide the edits by default.
GUIDES = ("attributes64.safetensors", "attributes64-b.safetensors")


def directions_path(ckpt: str | Path) -> Path:
    """Where the directions of generator file ``ckpt`` are kept: ``NAME.directions.safetensors``."""
    ckpt = Path(ckpt)
    return ckpt.with_name(ckpt.name.removesuffix(".safetensors") + ".directions.safetensors")


def reproduce_command(ckpt: str | Path) -> str:
    return f"python -m acgmake.models.directions {ckpt}"


@dataclass
class Directions:
    """Edit vectors in W, each n_latent x style_dim (one vector per style layer)."""

    mouth_origin: torch.Tensor  # mean styles of the characters with the mouth closed
    vowels: torch.Tensor  # 5 x n_latent x D: closed mouth -> each vowel (order VOWELS)
    mouth: torch.Tensor  # closed mouth -> wide open (the "a" mouth)
    eyes_origin: torch.Tensor  # mean styles of the characters with the eyes closed
    eyes: torch.Tensor  # closed eyes -> open eyes
    metadata: dict[str, str]

    def vector(self, name: str) -> torch.Tensor:
        """The edit vector called ``name`` (see EDIT_NAMES)."""
        if name in ("eyes", "mouth"):
            return getattr(self, name)
        return self.vowels[VOWELS.index(name)]

    def tensors(self) -> dict[str, torch.Tensor]:
        names = ("mouth_origin", "vowels", "mouth", "eyes_origin", "eyes")
        return {name: getattr(self, name).contiguous() for name in names}


def save_directions(directions: Directions, path: Path) -> None:
    from safetensors.torch import save_file

    save_file(directions.tensors(), str(path), metadata=directions.metadata)


def load_directions(ckpt: str | Path, generator_sha256: str | None = None) -> Directions:
    """The directions kept beside generator file ``ckpt``; UserError when there are none or
    when they were learned for another generator (``generator_sha256`` differs)."""
    from safetensors import safe_open

    from acgmake.pipeline import sha256_file

    path = directions_path(ckpt)
    if not path.is_file():
        raise UserError(
            f"{Path(ckpt).name} has no latent directions ({path.name} is missing); "
            f"learn them with `{reproduce_command(ckpt)}`"
        )
    try:
        with safe_open(str(path), "pt") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {k: handle.get_tensor(k).float() for k in handle.keys()}  # noqa: SIM118
        directions = Directions(**tensors, metadata=metadata)
    except Exception as error:  # a damaged or foreign file: one clear line
        raise UserError(
            f"{path} is not a directions file acgmake can read ({type(error).__name__}); "
            f"make it again with `{reproduce_command(ckpt)}`"
        ) from None
    expected = generator_sha256 or sha256_file(Path(ckpt))
    if metadata.get("generator_sha256") != expected:
        raise UserError(
            f"{path.name} was learned for another generator than {Path(ckpt).name}; "
            f"learn them again with `{reproduce_command(ckpt)}`"
        )
    return directions


# ---------------------------------------------------------------------------------------------
# Edits


def parse_edit(text: str) -> dict[str, float]:
    """``"mouth=0.8,eyes=-1"`` as ``{"mouth": 0.8, "eyes": -1.0}``; UserError when malformed."""
    edits: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, amount = part.partition("=")
        name = name.strip()
        if name not in EDIT_NAMES:
            raise UserError(
                f"--edit: unknown attribute {name!r}; known: {', '.join(EDIT_NAMES)} "
                "(e.g. --edit mouth=0.8,eyes=-1)"
            )
        try:
            value = float(amount)
        except ValueError:
            raise UserError(
                f"--edit: {part!r} needs a number after '=' (e.g. {name}=0.5)"
            ) from None
        if not -MAX_EDIT <= value <= MAX_EDIT:  # also refuses nan and inf
            raise UserError(
                f"--edit: {part!r} is out of range; give an amount from {-MAX_EDIT:g} to "
                f"{MAX_EDIT:g} (1 is a clear change; far beyond, the picture falls apart)"
            )
        edits[name] = value
    return edits


#: The largest edit amount taken (the learned directions are unit vectors in w).
MAX_EDIT = 5.0


def per_layer(w: torch.Tensor, n_latent: int) -> torch.Tensor:
    """``w`` as N x n_latent x D (a single w per picture is repeated for every layer)."""
    return w[:, None].expand(-1, n_latent, -1).clone() if w.ndim == 2 else w.clone()


def apply_edits(directions: Directions, w: torch.Tensor, edits: dict[str, float]) -> torch.Tensor:
    """``w`` (N x n_latent x D) moved by ``amount`` times each named vector.

    The latent alone: its picture changes hair and clothes too. For a picture that changes
    only the edited parts, see :func:`acgmake.models.expressions.draw_edited`.
    """
    w = w.clone()
    for name, amount in edits.items():
        w += amount * directions.vector(name)
    return w


def edits_by_part(edits: dict[str, float]) -> dict[str, dict[str, float]]:
    """``edits`` grouped by the face part they change (:data:`EDIT_PARTS`), eyes first (the
    order the parts are pasted in); edits of amount 0 are left out."""
    parts: dict[str, dict[str, float]] = {}
    for part in ("eyes", "mouth"):
        chosen = {n: a for n, a in edits.items() if EDIT_PARTS[n] == part and a != 0}
        if chosen:
            parts[part] = chosen
    return parts


def _mouth_coordinates(d: Directions, w: torch.Tensor) -> torch.Tensor:
    """How far along each vowel vector the styles ``w`` (n_latent x D) lie from the closed
    mouth (5 numbers; least squares)."""
    v = d.vowels.flatten(1)
    return torch.linalg.solve(v @ v.T, v @ (w - d.mouth_origin).flatten())


def _eyes_coordinate(d: Directions, w: torch.Tensor) -> torch.Tensor:
    """0 at the mean closed-eyed styles, 1 at the mean open-eyed ones."""
    e = d.eyes.flatten()
    return (w - d.eyes_origin).flatten() @ e / (e @ e)


def set_expression(d: Directions, w: torch.Tensor, expression: str) -> torch.Tensor:
    """Styles ``w`` (n_latent x D) with the mouth and eyes set for ``expression`` (see
    EXPRESSIONS).

    The mouth's coordinates along the vowel vectors are replaced (all zero for a closed
    mouth, one vowel's for that vowel); the eyes' coordinate is set to open (when below) or
    closed. Every other component of ``w`` is kept.
    """
    eyes_now = _eyes_coordinate(d, w)
    eyes_target = EYES_CLOSED if expression == "blink" else max(float(eyes_now), EYES_OPEN)
    # Eyes first: their vector moves the mouth a little too, which the mouth step then undoes.
    w = w + (eyes_target - eyes_now) * d.eyes
    target = torch.zeros(len(VOWELS))
    if expression in VOWELS:
        target[VOWELS.index(expression)] = VOWEL_STRENGTH
    coordinates = _mouth_coordinates(d, w)
    return w + torch.einsum("k,kld->ld", target - coordinates, d.vowels)


def expression_latents(
    d: Directions, w: torch.Tensor, expressions: tuple[str, ...]
) -> torch.Tensor:
    """One ``w`` (n_latent x D) per expression, stacked: len(expressions) x n_latent x D."""
    return torch.stack([set_expression(d, w, name) for name in expressions])


# ---------------------------------------------------------------------------------------------
# Learning


def region_mask(boxes: list[list[float]], size: int, grow: float = 0.04) -> torch.Tensor:
    """1 inside the normalised ``boxes`` grown by ``grow``, 0 elsewhere (size x size)."""
    mask = torch.zeros(size, size)
    for x0, y0, x1, y1 in boxes:
        mask[
            max(0, int((y0 - grow) * size)) : int(np.ceil((y1 + grow) * size)),
            max(0, int((x0 - grow) * size)) : int(np.ceil((x1 + grow) * size)),
        ] = 1
    return mask


#: What each learned edit asks the classifier for, and which face part it may change.
TARGETS = {**{m: ("mouth", m) for m in MOUTHS}, "blink": ("eyes", "closed")}


def _target_loss(read: dict, part: str, value: str) -> torch.Tensor:
    """How far a classifier's reading is from ``value`` of ``part`` (mouth edits must also
    leave the eyes open)."""
    import torch.nn.functional as F

    count = len(read["eyes_open"])
    if part == "eyes":
        return F.binary_cross_entropy_with_logits(read["eyes_open"], torch.zeros(count))
    goal = torch.full((count,), MOUTHS.index(value))
    return F.cross_entropy(read["mouth"], goal) + F.binary_cross_entropy_with_logits(
        read["eyes_open"], torch.ones(count)
    )


def _targets_loss(read: dict, rows: dict[str, torch.Tensor]) -> torch.Tensor:
    """:func:`_target_loss` of a batch whose ``rows`` (per target, the row numbers) ask for
    different targets: each target's loss weighted by its share of the batch."""
    if len(rows) == 1:
        return _target_loss(read, *TARGETS[next(iter(rows))])
    count = sum(len(which) for which in rows.values())
    return sum(
        _target_loss({name: value[which] for name, value in read.items()}, *TARGETS[target])
        * (len(which) / count)
        for target, which in rows.items()
    )


def _reads_target(read: dict, part: str, value: str) -> torch.Tensor:
    """Per row, how surely a classifier's reading is ``value`` of ``part`` (a probability;
    a mouth must also come with open eyes, as :func:`_target_loss` asks)."""
    eyes_open = torch.sigmoid(read["eyes_open"])
    if part == "eyes":
        return 1 - eyes_open
    mouth = torch.softmax(read["mouth"], -1)[:, MOUTHS.index(value)]
    return torch.minimum(mouth, eyes_open)


def guided_edits(
    generator,
    classifiers: list,
    styles: torch.Tensor,
    targets: str | list[str],
    regions: torch.Tensor,
    *,
    start: torch.Tensor | None = None,
    paste: bool = False,
    steps: int = 40,
    keep: float = 4.0,
    lr: float = 0.03,
    layers: int | None = None,
    settle: float | dict[str, float] | None = None,
) -> torch.Tensor:
    """Per-character edits (N x n_latent x D) that make the classifiers read ``targets``
    (a mouth class or "blink": one for every row of ``styles``, or one each) while each
    picture stays the same outside its region (``regions``: H x W, or N x H x W).

    Gradient steps on the styles, from the edits ``start`` (default: none): the classifiers'
    losses for the targets (more than one classifier makes edits that fool one of them less
    likely), plus ``keep`` times the mean absolute change outside the region (so the edit
    stays on the face part), plus a small pull toward no change. With ``paste``, the
    classifiers read what will be shown: the edited picture inside the (soft) region, the
    unedited one outside. Only the first ``layers`` style layers change (the coarse ones,
    which shape the picture; the last ones mostly colour it).

    With ``settle``, a row stops as soon as every classifier reads its target with at least
    that probability (its edit is then the one they read), and the steps go on with the other
    rows only: a character that is quickly done costs no more steps. A mapping gives the
    probability per target; a target it leaves out takes all the steps.
    """
    for module in (generator, *classifiers):
        for p in module.parameters():
            p.requires_grad_(False)
    count = len(styles)
    targets = [targets] * count if isinstance(targets, str) else list(targets)
    with torch.no_grad():
        before = generator.synthesis(styles, noise_mode="const")
    inside = (regions if regions.ndim == 3 else regions.expand(count, -1, -1))[:, None]
    outside = 1 - inside
    editable = (torch.arange(styles.shape[1]) < (layers or styles.shape[1])).float()[:, None]
    delta = (torch.zeros_like(styles) if start is None else start.clone()).requires_grad_(True)
    optimizer = _Adam(delta, lr)
    if isinstance(settle, float | int):
        settle = dict.fromkeys(targets, float(settle))
    enough = torch.tensor([(settle or {}).get(t, 2.0) for t in targets])  # 2: never
    done = torch.zeros_like(styles)  # the edits of the rows that have settled
    active = list(range(count))  # the rows still stepping, in order: delta's rows

    def rows_of(which: list[int]) -> dict[str, torch.Tensor]:
        return {
            t: torch.tensor([i for i, row in enumerate(which) if targets[row] == t])
            for t in dict.fromkeys(targets[row] for row in which)  # in order: the same sums
        }

    for _ in range(steps):
        pictures = generator.synthesis(styles[active] + delta * editable, noise_mode="const")
        shown = before[active] * outside[active] + pictures * inside[active] if paste else pictures
        reads = [c(shown.clamp(-1, 1)) for c in classifiers]
        kept = list(range(len(active)))
        rows = rows_of(active)
        if settle:
            with torch.no_grad():
                sure = torch.stack([_row_sureness(r, rows, len(active)) for r in reads]).amin(0)
            kept = [i for i in kept if float(sure[i]) < float(enough[active[i]])]
            for i in set(range(len(active))) - set(kept):
                done[active[i]] = delta[i].detach() * editable
            if not kept:
                return done
            if len(kept) < len(active):  # this step counts only the rows still stepping
                index = torch.tensor(kept)
                reads = [{name: value[index] for name, value in r.items()} for r in reads]
                pictures = pictures[index]
        stepping = [active[i] for i in kept]
        if len(stepping) < len(active):
            rows = rows_of(stepping)
        loss = sum(_targets_loss(read, rows) for read in reads)
        loss = loss + keep * ((pictures - before[stepping]).abs() * outside[stepping]).mean()
        loss = loss + 0.01 * delta[kept].pow(2).mean()
        if len(stepping) < count:
            # Means over the rows still stepping, scaled back to the whole batch's: each row's
            # gradient stays what it was (Adam's moments remember its size).
            loss = loss * (len(stepping) / count)
        delta.grad = None
        loss.backward()
        optimizer.step()
        if len(stepping) < len(active):
            active = stepping
            delta, optimizer = _kept_rows(delta, optimizer, kept, lr)
    done[active] = (delta * editable).detach()
    return done


def _row_sureness(read: dict, rows: dict[str, torch.Tensor], count: int) -> torch.Tensor:
    """:func:`_reads_target` for each row of a batch whose ``rows`` ask for different
    targets."""
    sure = torch.zeros(count)
    for target, which in rows.items():
        sure[which] = _reads_target(read, *TARGETS[target])[which]
    return sure


class _Adam:
    """Adam (Kingma and Ba) on one tensor, as ``torch.optim.Adam`` computes it with its
    defaults (betas 0.9 and 0.999, eps 1e-8), step for step and bit for bit. Not
    ``torch.optim`` itself: creating its first optimizer imports torch's compiler, 1.6 s of a
    stage that takes 3."""

    BETAS, EPS = (0.9, 0.999), 1e-8

    def __init__(self, param: torch.Tensor, lr: float) -> None:
        self.param, self.lr, self.steps = param, lr, 0
        self.exp_avg = torch.zeros_like(param, memory_format=torch.preserve_format)
        self.exp_avg_sq = torch.zeros_like(param, memory_format=torch.preserve_format)

    @torch.no_grad()
    def step(self) -> None:
        grad = self.param.grad
        beta1, beta2 = self.BETAS
        self.steps += 1
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step = float(self.steps)  # torch keeps the count as a float tensor
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        step_size = self.lr / bias_correction1
        denom = (self.exp_avg_sq.sqrt() / bias_correction2**0.5).add_(self.EPS)
        self.param.addcdiv_(self.exp_avg, denom, value=-step_size)


def _kept_rows(delta: torch.Tensor, optimizer: _Adam, kept: list[int], lr: float):
    """The rows ``kept`` of the edits being fitted, as a new parameter with an Adam that
    goes on where ``optimizer`` was for them (its step count and moments)."""
    index = torch.tensor(kept)
    smaller = delta.detach()[index].clone().requires_grad_(True)
    following = _Adam(smaller, lr)
    following.steps = optimizer.steps
    following.exp_avg = optimizer.exp_avg[index].clone()
    following.exp_avg_sq = optimizer.exp_avg_sq[index].clone()
    return smaller, following


def guide_paths() -> list[Path]:
    """The files of the shipped attribute classifiers that guide edits (:data:`GUIDES`)."""
    from acgmake.models.attributes import shipped_classifier

    return [shipped_classifier().with_name(name) for name in GUIDES]


def guide_classifiers() -> list:
    """The shipped attribute classifiers that guide edits, loaded."""
    return [load_classifier(path) for path in guide_paths()]


def learn_directions(
    generator,
    classifiers: list,
    *,
    count: int = 24,
    seed: int = 0,
    truncation_psi: float = 0.7,
    layers: int | None = None,
    layout: dict | None = None,
    log=print,
) -> tuple[Directions, dict]:
    """Directions for ``generator``: the mean of edits of ``count`` characters guided by
    ``classifiers``.

    The shipped generator draws nearly every character with open eyes and a slightly open
    mouth, so sampling finds too few closed eyes or vowels for InterFaceGAN's class means.
    Instead each sampled character is edited toward each class by gradient steps through the
    generator and the attribute classifier (:func:`guided_edits`), and a direction is the
    mean edit over the characters: one vector per style layer, the same for every character.
    Returns the directions (metadata not yet filled in) and figures about the fit.
    """
    from acgmake.models.drawn import canonical_layout

    layout = layout or canonical_layout()
    z = torch.randn(count, generator.style_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        w = generator.truncate(generator.mapping(z), truncation_psi)
    styles = per_layer(w, generator.n_latent)
    size = generator.size
    regions = {
        "mouth": region_mask([layout["mouth"]], size),
        "eyes": region_mask(layout["eyes"], size),
    }
    edits = {}
    for target, (part, _) in TARGETS.items():
        started = time.perf_counter()
        edits[target] = guided_edits(
            generator, classifiers, styles, target, regions[part], layers=layers
        )
        log(f"{target}: {count} guided edits in {time.perf_counter() - started:.0f} s")
    closed = styles + edits["closed"]
    origin = closed.mean(0)
    vowels = torch.stack([(edits[v] - edits["closed"]).mean(0) for v in VOWELS])
    eyes = -edits["blink"].mean(0)
    eyes_origin = (styles + edits["blink"]).mean(0)
    directions = Directions(origin, vowels, vowels[0].clone(), eyes_origin, eyes, {})
    figures = {
        name: round(float(vector.norm() / styles.mean(0).norm()), 3)
        for name, vector in zip(EDIT_NAMES, (directions.mouth, eyes, *vowels), strict=True)
    }
    return directions, {"relative_size": figures}


def main(argv: list[str] | None = None) -> None:
    from acgmake.models.character import layout_from_metadata
    from acgmake.models.checkpoint import load_generator, read_metadata
    from acgmake.pipeline import sha256_file

    parser = argparse.ArgumentParser(
        prog="python -m acgmake.models.directions",
        description="Learn latent directions (mouth, vowels, eyes) for a generator file and "
        "write them beside it as NAME.directions.safetensors.",
    )
    parser.add_argument("ckpt", type=Path, help="generator file (.safetensors)")
    parser.add_argument("--count", type=int, default=24, help="characters to edit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--truncation", type=float, default=0.7)
    parser.add_argument(
        "--classifier",
        type=Path,
        action="append",
        help=f"attribute classifier to guide the edits; repeat for several [default: {GUIDES}]",
    )
    parser.add_argument("--layers", type=int, default=None, help="edit only the first N styles")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.perf_counter()
    generator = load_generator(args.ckpt)
    guides = args.classifier or guide_paths()
    layout = layout_from_metadata(read_metadata(args.ckpt))
    directions, figures = learn_directions(
        generator,
        [load_classifier(path) for path in guides],
        count=args.count,
        seed=args.seed,
        truncation_psi=args.truncation,
        layers=args.layers,
        layout=layout,
    )
    directions.metadata = {
        "generator": args.ckpt.name,
        "generator_sha256": sha256_file(args.ckpt),
        "classifiers": json.dumps({path.name: sha256_file(path) for path in guides}),
        "command": "python -m acgmake.models.directions " + " ".join(argv or sys.argv[1:]),
        "count": str(args.count),
        "seed": str(args.seed),
        "truncation": str(args.truncation),
        "figures": json.dumps(figures),
        "license": "MIT",
    }
    out = directions_path(args.ckpt)
    save_directions(directions, out)
    print(f"wrote {out} ({out.stat().st_size} bytes) in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
