"""acgmake-tag: tags and an embedding for the character, in the spirit of illustration2vec.

``acgmake tag colored.png`` writes ``tags.json``: the character's hair colour and style, eye
colour, accessories, mouth and eyes, each with its probability, a 128-number embedding (the
tagger's features: near for characters that look alike), and a one-line description with
hashtags for posting the clip. In ``acgmake song`` it runs on every colored character (what
the clip shows, after any recolouring). The tagger
(:mod:`acgmake_tag.model`) is trained by this package's own command on acgmake's drawn set;
its held-out precision and recall are in the README.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from acgmake import Artifact, Stage, StageContext, UserError, hookimpl

__version__ = "0.1.0"

#: Tags given when the tagger is at least this sure.
THRESHOLD = 0.5
#: How many seeds ``characters-like`` looks through, at most.
MAX_SEARCH = 4096


@hookimpl
def register_artifacts(register):
    register(
        Artifact(
            "tags",
            "tags.json",
            "the character's tags (hair, eyes, accessories, mouth) with their probabilities, "
            "an embedding, and a description with hashtags",
        )
    )


def as_64px(picture):
    """An RGB(A) uint8 picture as the tagger reads it: 64 x 64 RGB, transparency over white."""
    import numpy as np
    from PIL import Image

    image = Image.fromarray(np.asarray(picture))
    if image.mode == "RGBA":
        backdrop = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(backdrop, image)
    # A copy torch may share (PIL's own buffer is read-only).
    return np.array(image.convert("RGB").resize((64, 64), Image.Resampling.LANCZOS))


def tag_picture(picture) -> dict:
    """``tags.json``'s content for an RGB(A) uint8 picture of a character (any size; the
    tagger reads it at 64 px, its transparency over white)."""
    from acgmake_tag.model import ACCESSORY_TAGS, GROUPS, load, predict

    got = predict(load(), as_64px(picture)[None])
    tags: list[str] = []
    scores: dict[str, float] = {}
    for name, values in GROUPS.items():
        probabilities = got[name][0]
        best = int(probabilities.argmax())
        scores[f"{name}:{values[best]}"] = round(float(probabilities[best]), 3)
        tag = _tag_name(name, values[best])
        if tag:
            tags.append(tag)
    for index, accessory in enumerate(ACCESSORY_TAGS):
        probability = float(got["accessories"][0][index])
        scores[f"accessory:{accessory}"] = round(probability, 3)
        if probability >= THRESHOLD:
            tags.append(accessory)
    description = _description(tags)
    return {
        "tags": tags,
        "scores": scores,
        "embedding": [round(float(v), 4) for v in got["embedding"][0]],
        "description": description,
        "hashtags": ["#" + tag.replace(" ", "") for tag in tags] + ["#acgmake", "#vocaloid"],
    }


def _tag_name(group: str, value: str) -> str:
    """The tag as illustration2vec-style words: "blue hair", "twintails", "red eyes"."""
    if group == "hair_color":
        return f"{value} hair"
    if group == "hair_style":
        return {"short": "short hair", "bob": "bob cut", "long": "long hair",
                "hime": "hime cut"}.get(value, value)  # fmt: skip
    if group == "eye_color":
        return f"{value} eyes"
    if group == "mouth":
        return "open mouth" if value == "open" else ""
    return "closed eyes" if value == "closed" else ""


def _description(tags: list[str]) -> str:
    """A line for posting the clip: "A singer with blue hair, twintails, red eyes and a
    ribbon."."""
    looks = [t for t in tags if t not in ("open mouth", "closed eyes")]
    if not looks:
        return "An anime singer made with acgmake."
    items = [f"a {t}" if t in ("ribbon", "hairpin", "headband") else t for t in looks]
    listed = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
    return f"A singer with {listed}, made with acgmake."


def tag(ctx: StageContext) -> None:
    import numpy as np

    from acgmake.image.picture import read_picture
    from acgmake_tag.model import WEIGHTS

    layers = ctx.input("layers")
    if layers is not None:
        # The character as colorize coloured it (and --hair recoloured it): colored.ora's
        # merged picture. colored.png may carry decorations besides, such as the sticker
        # plugin's outline, which the tagger would read as hair (a pink outline: pink hair).
        from acgmake.image.openraster import read_ora

        _, picture = read_ora(layers, layers=False)
    else:
        picture, _ = read_picture(ctx.input("colored"), "colored character")
    ctx.use_asset(WEIGHTS, name="acgmake-tag tagger", license="MIT")
    result = tag_picture(np.asarray(picture))
    ctx.output("tags").write_text(
        json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    ctx.log(", ".join(result["tags"]))


def characters_like(picture, *, search: int = 512, start: int = 0, count: int = 8):
    """The ``count`` seeds from ``start`` .. ``start + search - 1`` whose characters (the
    shipped generator's) look most like ``picture``, by the cosine of their tagger embeddings,
    nearest first: (seed, similarity) pairs and their pictures (uint8 RGB, 64 px)."""
    import numpy as np

    from acgmake.models.character import shipped_checkpoint
    from acgmake.models.checkpoint import load_generator
    from acgmake.models.stylegan2 import generate
    from acgmake_tag.model import load, predict

    if not 1 <= search <= MAX_SEARCH:
        raise UserError(f"--search must be from 1 to {MAX_SEARCH} seeds; got {search}")
    tagger = load()
    wanted = predict(tagger, as_64px(picture)[None])["embedding"][0]
    generator = load_generator(shipped_checkpoint())
    seeds = list(range(start, start + search))
    pictures = np.concatenate(
        [generate(generator, seeds[i : i + 64]) for i in range(0, search, 64)]
    )
    embeddings = predict(tagger, pictures)["embedding"]
    norms = np.linalg.norm(embeddings, axis=1) * max(float(np.linalg.norm(wanted)), 1e-9)
    similarity = embeddings @ wanted / np.maximum(norms, 1e-9)
    best = np.argsort(-similarity, kind="stable")[: max(1, count)]
    return [(seeds[i], round(float(similarity[i]), 4)) for i in best], pictures[best]


@hookimpl
def register_commands(cli):
    @cli.command("characters-like")
    @click.argument("picture", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--search", type=int, default=512, show_default=True, help="Seeds to look at.")
    @click.option("--from-seed", "start", type=click.IntRange(0, 2**32 - MAX_SEARCH - 1),
                  default=0, show_default=True, help="First seed to look at.")  # fmt: skip
    @click.option("--count", type=click.IntRange(1, 64), default=8, show_default=True)
    def like_command(picture, search, start, count):
        """Find the seeds whose characters look most like PICTURE (by the tagger's
        embedding), nearest first, as JSON lines. Example: acgmake characters-like
        my_oc.png, then acgmake song lyrics.txt --seed N"""
        from acgmake.image.picture import read_picture
        from acgmake.pipeline import user_path

        pixels, _ = read_picture(user_path(picture), "picture of a character")
        found, _ = characters_like(pixels, search=search, start=start, count=count)
        for seed, similarity in found:
            click.echo(json.dumps({"seed": seed, "similarity": similarity}))
        click.echo(f"Sing with the nearest: acgmake song lyrics.txt --seed {found[0][0]}", err=True)


@hookimpl
def register_stages(register):
    register(
        Stage(
            "tag",
            cost_s=0.1,
            # The colored character: what the clip shows (its colours, a --hair recolour),
            # read from colored.ora's merged picture when there is one (without decorations).
            needs=("colored",),
            uses=("layers",),
            makes=("tags",),
            run=tag,
            version="2",
            help="Tag the character (hair colour and style, eye colour, accessories, mouth, "
            "eyes), with an embedding and a description with hashtags, in tags.json. "
            "Example: acgmake tag colored.png",
        )
    )
