"""acgmake-attributes: ask for a character by what it looks like, as make.girls.moe let you.

``acgmake find-character --hair blue --eyes red --glasses --smile`` draws the shipped
generator's characters for many seeds (512 by default, about 5 s), reads each with acgmake's
attribute classifier (its hair colour, mouth, whether its eyes are open) and with the tagger of
the ``acgmake-tag`` plugin (eye colour, hair style, accessories), and prints the seeds that fit
best, with a grid of them; ``acgmake song lyrics.txt --seed N`` then sings with the one you
like.

The search is a guided choice among real samples, not a latent optimisation: every character
it offers is one the generator draws for that seed, unedited. What the classifiers read is
checked by held-out ones (the "judges", trained apart) in :func:`judge`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click

from acgmake import UserError, hookimpl
from acgmake.models.looks import ACCESSORIES, EYE_COLORS, HAIR_COLORS, HAIR_STYLES

__version__ = "0.2.0"

#: Hair colours by name (sRGB): the drawn set's, which the shipped model learned to draw.
HAIR: dict[str, tuple[int, int, int]] = dict(HAIR_COLORS)
#: The judge of the tagger's attributes: a tagger trained apart (another part of the drawn
#: set, another initialisation) by ``python -m acgmake_tag.model --seed 81 --out ...``.
TAG_JUDGE = Path(__file__).with_name("weights") / "tag64-judge.safetensors"
#: How many seeds a search looks through, at most.
MAX_SEARCH = 4096


@dataclass(frozen=True)
class Wanted:
    """What a character should look like; None: anything."""

    hair: tuple[int, int, int] | None = None
    mouth: str | None = None  # "open" or "closed" (a closed mouth is the drawn set's smile)
    eyes: str | None = "open"  # "open" or "closed"
    eye_color: str | None = None  # a name of EYE_COLORS
    hair_style: str | None = None  # a name of HAIR_STYLES
    #: Accessories wanted (True) or not wanted (False); the others: either.
    accessories: dict[str, bool] = field(default_factory=dict)

    @property
    def tagged(self) -> bool:
        """Whether the tagger must read what is asked (eye colour, hair style, accessories)."""
        return bool(self.eye_color or self.hair_style or self.accessories)


@dataclass(frozen=True)
class Found:
    """A seed and what the classifiers read in its character."""

    seed: int
    score: float  # lower fits better
    hair: tuple[int, int, int]
    hair_delta_e: float | None
    mouth_open: float  # probability that the mouth is open
    eyes_open: float
    #: What the tagger reads, where something it reads was asked for: eye colour, hair style
    #: and each accessory asked about, with its probability.
    tags: dict[str, float] = field(default_factory=dict)


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


def read_tags(pictures, tagger_path: Path | None = None):
    """What the tagger of ``acgmake-tag`` (or the one at ``tagger_path``) reads in uint8 RGB
    ``pictures``: each group's probabilities and the accessories'."""
    try:
        from acgmake_tag.model import WEIGHTS, load, predict
    except ImportError:
        raise UserError(
            "eye colour, hair style and accessories are read by the acgmake-tag plugin; "
            "install it: pip install ./plugins/acgmake-tag"
        ) from None
    return predict(load(tagger_path or WEIGHTS), pictures)


def tag_scores(tags, wanted: Wanted):
    """Per picture: the cost of what the tagger reads against ``wanted`` (3 for a sure
    mismatch of each thing asked), and the probabilities of the things asked."""
    import numpy as np
    from acgmake_tag.model import ACCESSORY_TAGS, GROUPS

    count = len(tags["accessories"])
    cost = np.zeros(count)
    read: dict[str, np.ndarray] = {}
    for group, name in (("eye_color", wanted.eye_color), ("hair_style", wanted.hair_style)):
        if name is not None:
            probability = tags[group][:, GROUPS[group].index(name)]
            read[f"{group}:{name}"] = probability
            cost += 3.0 * (1.0 - probability)
    for name, present in wanted.accessories.items():
        probability = tags["accessories"][:, ACCESSORY_TAGS.index(name)]
        read[name] = probability
        cost += 3.0 * (1.0 - probability if present else probability)
    return cost, read


def fit(attributes, wanted: Wanted, tags=None):
    """Per picture: (score, hair ΔE00 or None, probability the mouth is open, the tagger's
    probabilities of what was asked); lower scores fit ``wanted`` better. A hair colour 10 ΔE
    away costs as much as a sure mismatch of anything else asked costs 3."""
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
    read: dict[str, np.ndarray] = {}
    if tags is not None:
        cost, read = tag_scores(tags, wanted)
        score += cost
    return score, delta_e, mouth_open, read


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
    tags = read_tags(pictures) if wanted.tagged else None
    score, delta_e, mouth_open, tagged = fit(attributes, wanted, tags)
    best = np.argsort(score, kind="stable")[: max(1, count)]
    found = [
        Found(
            seed=seeds[i],
            score=round(float(score[i]), 3),
            hair=tuple(int(round(v)) for v in attributes.hair_rgb[i]),
            hair_delta_e=None if delta_e is None else round(float(delta_e[i]), 1),
            mouth_open=round(float(mouth_open[i]), 2),
            eyes_open=round(float(attributes.eyes_open[i]), 2),
            tags={name: round(float(values[i]), 2) for name, values in tagged.items()},
        )
        for i in best
    ]
    return found, pictures[best]


def judge(pictures, wanted: Wanted) -> dict[str, float]:
    """What the held-out judges read in ``pictures`` against ``wanted``: the share whose hair
    is within 15 ΔE00 of the colour, whose mouth and eyes are as asked, whose eye colour, hair
    style and accessories are as asked (the tagger's judge), and the median hair ΔE00."""
    import numpy as np

    from acgmake.models.attributes import load_classifier, shipped_classifier

    judged = read(
        pictures, load_classifier(shipped_classifier().with_name("attributes64-judge.safetensors"))
    )
    tags = read_tags(pictures, TAG_JUDGE) if wanted.tagged else None
    _, delta_e, mouth_open, tagged = fit(judged, wanted, tags)
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
    for name, probability in tagged.items():
        present = wanted.accessories.get(name, True)
        group = name.partition(":")[0]  # "eye_color:red" -> eye_color
        result[f"{group}_as_asked"] = float(np.mean((probability > 0.5) == present))
    return result


def _accessory_options(command):
    for name in reversed(ACCESSORIES):
        command = click.option(
            f"--{name}/--no-{name}",
            default=None,
            help=f"With a {name} / without one. [default: either]",
        )(command)
    return command


@hookimpl
def register_commands(cli):
    @cli.command("find-character")
    @click.option("--hair", help=f"Hair colour: {', '.join(HAIR)}, or #rrggbb.")
    @click.option("--mouth", type=click.Choice(["open", "closed"]), help="Mouth open or closed.")
    @click.option("--smile", is_flag=True, help="Smiling: the mouth closed in a smile.")
    @click.option(
        "--eyes",
        default="open",
        show_default=True,
        help=f"open, closed or any; or an eye colour: {', '.join(EYE_COLORS)} (eyes open).",
    )
    @click.option("--hair-style", type=click.Choice(HAIR_STYLES), help="The hair's style.")
    @_accessory_options
    @click.option("--search", type=int, default=512, show_default=True, help="Seeds to look at.")
    @click.option("--from-seed", "start", type=click.IntRange(0, 2**32 - MAX_SEARCH - 1),
                  default=0, show_default=True, help="First seed to look at.")  # fmt: skip
    @click.option("--count", type=click.IntRange(1, 64), default=8, show_default=True)
    @click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
                  help="Also write a grid of the characters found (PNG).")  # fmt: skip
    def find_character(hair, mouth, smile, eyes, hair_style, search, start, count, output,
                       **accessories):  # fmt: skip
        """Find the character you ask for among the generator's seeds (hair colour and style,
        eye colour, mouth, eyes, accessories), and print the best seeds as JSON lines.
        Example: acgmake find-character --hair blue --eyes red --glasses --smile -o blue.png,
        then acgmake song lyrics.txt --seed N"""
        from acgmake.models.character import character_grid

        if smile and mouth == "open":
            raise UserError("--smile is a closed mouth; leave out --mouth open")
        eyes = eyes.strip().lower()
        if eyes not in ("open", "closed", "any", *EYE_COLORS):
            raise UserError(
                f"--eyes {eyes!r}: give open, closed, any or an eye colour "
                f"({', '.join(EYE_COLORS)})"
            )
        colour = eyes if eyes in EYE_COLORS else None
        wanted = Wanted(
            hair=hair_colour(hair) if hair else None,
            mouth="closed" if smile else mouth,
            eyes={"any": None, "closed": "closed"}.get(eyes, "open"),
            eye_color=colour,
            hair_style=hair_style,
            accessories={n: v for n, v in accessories.items() if v is not None},
        )
        if (wanted.hair, wanted.mouth, wanted.eyes) == (None, None, None) and not wanted.tagged:
            raise UserError(
                "ask for something: --hair, --eyes, --mouth, --smile, --hair-style or an "
                "accessory (--glasses, --ribbon, ...)"
            )
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
