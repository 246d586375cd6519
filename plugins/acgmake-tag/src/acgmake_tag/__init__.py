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

from acgmake import Artifact, Stage, StageContext, hookimpl

__version__ = "0.1.0"

#: Tags given when the tagger is at least this sure.
THRESHOLD = 0.5


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


def tag_picture(picture) -> dict:
    """``tags.json``'s content for an RGB(A) uint8 picture of a character (any size; the
    tagger reads it at 64 px, its transparency over white)."""
    import numpy as np
    from PIL import Image

    from acgmake_tag.model import ACCESSORY_TAGS, GROUPS, load, predict

    image = Image.fromarray(np.asarray(picture))
    if image.mode == "RGBA":
        backdrop = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(backdrop, image)
    small = np.asarray(image.convert("RGB").resize((64, 64), Image.Resampling.LANCZOS))
    got = predict(load(), small[None])
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

    picture, _ = read_picture(ctx.input("colored"), "colored character")
    ctx.use_asset(WEIGHTS, name="acgmake-tag tagger", license="MIT")
    result = tag_picture(np.asarray(picture))
    ctx.output("tags").write_text(
        json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    ctx.log(", ".join(result["tags"]))


@hookimpl
def register_stages(register):
    register(
        Stage(
            "tag",
            # The colored character: what the clip shows (its colours, a --hair recolour).
            needs=("colored",),
            makes=("tags",),
            run=tag,
            version="1",
            help="Tag the character (hair colour and style, eye colour, accessories, mouth, "
            "eyes), with an embedding and a description with hashtags, in tags.json. "
            "Example: acgmake tag colored.png",
        )
    )
