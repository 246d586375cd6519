"""acgmake-attributes: ask for a character by what it looks like, as make.girls.moe let you.

``acgmake find-character --hair blue --mouth open`` draws the shipped generator's characters
for many seeds (512 by default, about 5 s), reads each with acgmake's attribute classifier (its
hair colour, mouth, whether its eyes are open), and prints the seeds that fit best, with a
grid of them; ``acgmake song lyrics.txt --seed N`` then sings with the one you like.

The search is a guided choice among real samples, not a latent optimisation: every character
it offers is one the generator draws for that seed, unedited. What the classifier reads is
checked by a second, held-out classifier (the "judge") in :func:`judge`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import click

from acgmake import UserError, hookimpl

__version__ = "0.1.0"

#: Hair colours by name (sRGB), as the shipped model draws them.
HAIR: dict[str, tuple[int, int, int]] = {
    "black": (60, 50, 56),
    "brown": (120, 80, 56),
    "blonde": (236, 206, 120),
    "orange": (238, 140, 70),
    "red": (196, 60, 60),
    "pink": (240, 150, 186),
    "purple": (150, 100, 190),
    "blue": (80, 120, 210),
    "green": (90, 165, 100),
    "silver": (200, 204, 214),
}
#: How many seeds a search looks through, at most.
MAX_SEARCH = 4096


@dataclass(frozen=True)
class Wanted:
    """What a character should look like; None: anything."""

    hair: tuple[int, int, int] | None = None
    mouth: str | None = None  # "open" or "closed"
    eyes: str | None = "open"  # "open" or "closed"


@dataclass(frozen=True)
class Found:
    """A seed and what the classifier reads in its character."""

    seed: int
    score: float  # lower fits better
    hair: tuple[int, int, int]
    hair_delta_e: float | None
    mouth_open: float  # probability that the mouth is open
    eyes_open: float


def hair_colour(text: str) -> tuple[int, int, int]:
    """A hair colour's name or ``#rrggbb`` as sRGB; UserError otherwise."""
    word = text.strip().lower()
    if word in HAIR:
        return HAIR[word]
    if len(word) == 7 and word.startswith("#"):
        try:
            return (int(word[1:3], 16), int(word[3:5], 16), int(word[5:7], 16))
        except ValueError:
            pass
    raise UserError(f"--hair {text!r} is not a colour; give one of {', '.join(HAIR)} or #rrggbb")


def read(pictures, classifier=None):
    """What ``classifier`` (default: the shipped one) reads in uint8 RGB ``pictures``."""
    from acgmake.models.attributes import load_classifier, read_attributes

    return read_attributes(classifier or load_classifier(), pictures)


def fit(attributes, wanted: Wanted):
    """Per picture: (score, hair ΔE00 or None, probability the mouth is open); lower scores
    fit ``wanted`` better. A hair colour 10 ΔE away costs as much as a sure mouth or eyes
    mismatch costs 3."""
    import numpy as np
    from skimage.color import deltaE_ciede2000, rgb2lab

    count = len(attributes.hair_rgb)
    score = np.zeros(count)
    delta_e = None
    if wanted.hair is not None:
        read_lab = rgb2lab(attributes.hair_rgb[None] / 255.0)[0]
        want_lab = rgb2lab(np.array([[wanted.hair]], np.float64) / 255.0)[0]
        delta_e = deltaE_ciede2000(read_lab, np.repeat(want_lab, count, axis=0))
        score += delta_e / 10.0
    mouth_open = 1.0 - attributes.mouth_probs[:, 0]  # MOUTHS[0] is "closed"
    if wanted.mouth is not None:
        score += 3.0 * (1.0 - mouth_open if wanted.mouth == "open" else mouth_open)
    if wanted.eyes is not None:
        eyes = attributes.eyes_open
        score += 3.0 * (1.0 - eyes if wanted.eyes == "open" else eyes)
    return score, delta_e, mouth_open


def find(wanted: Wanted, *, search: int = 512, start: int = 0, count: int = 8):
    """The ``count`` seeds from ``start`` .. ``start + search - 1`` whose characters fit
    ``wanted`` best, best first, and their pictures (uint8 RGB, the model's size)."""
    import numpy as np

    from acgmake.models.character import shipped_checkpoint
    from acgmake.models.checkpoint import load_generator
    from acgmake.models.stylegan2 import generate

    if not 1 <= search <= MAX_SEARCH:
        raise UserError(f"--search must be from 1 to {MAX_SEARCH} seeds; got {search}")
    generator = load_generator(shipped_checkpoint())
    seeds = list(range(start, start + search))
    batches = [generate(generator, seeds[i : i + 64]) for i in range(0, search, 64)]
    pictures = np.concatenate(batches)
    attributes = read(pictures)
    score, delta_e, mouth_open = fit(attributes, wanted)
    best = np.argsort(score, kind="stable")[: max(1, count)]
    found = [
        Found(
            seed=seeds[i],
            score=round(float(score[i]), 3),
            hair=tuple(int(round(v)) for v in attributes.hair_rgb[i]),
            hair_delta_e=None if delta_e is None else round(float(delta_e[i]), 1),
            mouth_open=round(float(mouth_open[i]), 2),
            eyes_open=round(float(attributes.eyes_open[i]), 2),
        )
        for i in best
    ]
    return found, pictures[best]


def judge(pictures, wanted: Wanted) -> dict[str, float]:
    """What the held-out judge classifier reads in ``pictures`` against ``wanted``: the
    share whose hair is within 15 ΔE00 of the colour, whose mouth and eyes are as asked, and
    the median hair ΔE00."""
    import numpy as np

    from acgmake.models.attributes import load_classifier, shipped_classifier

    judged = read(
        pictures, load_classifier(shipped_classifier().with_name("attributes64-judge.safetensors"))
    )
    _, delta_e, mouth_open = fit(judged, wanted)
    result: dict[str, float] = {}
    if delta_e is not None:
        result["hair_within_15"] = float(np.mean(delta_e <= 15))
        result["hair_median_delta_e"] = float(np.median(delta_e))
    if wanted.mouth is not None:
        opened = mouth_open > 0.5
        result["mouth_as_asked"] = float(np.mean(opened == (wanted.mouth == "open")))
    if wanted.eyes is not None:
        opened = judged.eyes_open > 0.5
        result["eyes_as_asked"] = float(np.mean(opened == (wanted.eyes == "open")))
    return result


@hookimpl
def register_commands(cli):
    @cli.command("find-character")
    @click.option("--hair", help=f"Hair colour: {', '.join(HAIR)}, or #rrggbb.")
    @click.option("--mouth", type=click.Choice(["open", "closed"]), help="Mouth open or closed.")
    @click.option(
        "--eyes", type=click.Choice(["open", "closed", "any"]), default="open", show_default=True
    )
    @click.option("--search", type=int, default=512, show_default=True, help="Seeds to look at.")
    @click.option("--from-seed", "start", type=click.IntRange(0, 2**32 - MAX_SEARCH - 1),
                  default=0, show_default=True, help="First seed to look at.")  # fmt: skip
    @click.option("--count", type=click.IntRange(1, 64), default=8, show_default=True)
    @click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
                  help="Also write a grid of the characters found (PNG).")  # fmt: skip
    def find_character(hair, mouth, eyes, search, start, count, output):
        """Find the character you ask for among the generator's seeds (hair colour, mouth,
        eyes), and print the best seeds as JSON lines. Example: acgmake find-character
        --hair blue --mouth open -o blue.png, then acgmake song lyrics.txt --seed N"""
        from acgmake.models.character import character_grid

        wanted = Wanted(
            hair=hair_colour(hair) if hair else None,
            mouth=mouth,
            eyes=None if eyes == "any" else eyes,
        )
        if wanted.hair is None and wanted.mouth is None and wanted.eyes is None:
            raise UserError("ask for something: --hair, --mouth or --eyes")
        found, pictures = find(wanted, search=search, start=start, count=count)
        for item in found:
            click.echo(json.dumps(asdict(item)))
        if output is not None:
            import os

            from PIL import Image

            from acgmake.pipeline import check_writable

            check_writable(output)
            grid = Image.fromarray(character_grid(pictures))
            grid = grid.resize((grid.width * 3, grid.height * 3), Image.Resampling.LANCZOS)
            partial = output.with_name(output.name + ".partial")
            grid.save(partial, format="PNG")  # under its final name only once whole
            os.replace(partial, output)
            click.echo(f"Wrote {output}", err=True)
        click.echo(f"Sing with the first: acgmake song lyrics.txt --seed {found[0].seed}", err=True)
