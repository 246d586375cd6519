"""The tagger on drawn characters it never saw in training, and its stage in the chain."""

from __future__ import annotations

import json
import subprocess

import numpy as np
from acgmake_tag import tag_picture
from PIL import Image

from acgmake.models.drawn import draw_character
from acgmake.pipeline import plan
from acgmake.testing import plugins_loaded, run_command, run_stage

#: The held-out set: the tagger was trained on seed 71 and measured on seed 72.
HELD_OUT_SEED = 73


def _held_out(count: int, size: int = 256):
    """Drawn characters with their labels, enlarged as the chain enlarges a character."""
    for index in range(count):
        drawing = draw_character(HELD_OUT_SEED, index, 128)
        yield (
            drawing.image.convert("RGB").resize((size, size), Image.Resampling.LANCZOS),
            drawing.attributes,
        )


def test_the_tags_name_the_hair_eyes_and_accessories_of_held_out_characters():
    hair = eyes = style = 0
    accessories_said = accessories_right = accessories_real = 0
    count = 60
    for picture, truth in _held_out(count):
        tags = set(tag_picture(np.asarray(picture))["tags"])
        hair += f"{truth['hair_color']} hair" in tags
        eyes += f"{truth['eye_color']} eyes" in tags
        style += any(truth["hair_style"] in tag or tag.startswith(truth["hair_style"])
                     for tag in tags)  # fmt: skip
        said = {t for t in tags if t in ("ribbon", "hairpin", "glasses", "headband")}
        accessories_said += len(said)
        accessories_right += len(said & set(truth["accessories"]))
        accessories_real += len(truth["accessories"])
    assert hair / count >= 0.7 and eyes / count >= 0.6 and style / count >= 0.6
    assert accessories_right / max(accessories_said, 1) >= 0.7
    assert accessories_right / max(accessories_real, 1) >= 0.5


def test_the_embedding_is_nearer_for_the_same_character_than_for_another():
    same, other = [], []
    characters = [draw_character(HELD_OUT_SEED, index, 128).image.convert("RGB")
                  for index in range(12)]  # fmt: skip

    def embedding(image, size):
        vector = np.array(tag_picture(np.asarray(image.resize((size, size))))["embedding"])
        return vector / np.linalg.norm(vector)

    for index, image in enumerate(characters):
        small, large = embedding(image, 96), embedding(image, 384)
        same.append(small @ large)
        other.append(small @ embedding(characters[(index + 1) % len(characters)], 384))
    assert np.mean(same) > np.mean(other) + 0.1


def test_the_stage_writes_tags_json_and_runs_after_the_character_is_colored(tmp_path):
    picture = tmp_path / "colored.png"
    draw_character(HELD_OUT_SEED, 0, 128).image.convert("RGBA").save(picture)
    made = run_stage("tag", {"colored": picture}, plugins=["acgmake_tag"],
                     workdir=tmp_path / "run")  # fmt: skip
    tags = json.loads(made["tags"].read_text("utf-8"))
    assert tags["tags"] and len(tags["embedding"]) == 128
    assert tags["description"].startswith("A singer with") and "#acgmake" in tags["hashtags"]
    assert all(0.0 <= value <= 1.0 for value in tags["scores"].values())
    with plugins_loaded("acgmake_tag") as registry:
        order = [stage.name for stage in plan(registry, ["clip", "tags"], ["lyrics"])]
    assert order.index("colorize") < order.index("tag")


def test_characters_like_finds_the_seed_a_generated_character_came_from(tmp_path):
    from acgmake_tag import characters_like

    from acgmake.models.character import shipped_checkpoint
    from acgmake.models.checkpoint import load_generator
    from acgmake.models.stylegan2 import generate

    generator = load_generator(shipped_checkpoint())
    for seed in (2030, 2077):
        picture = Image.fromarray(generate(generator, [seed])[0]).resize((256, 256))
        found, pictures = characters_like(np.asarray(picture), search=128, start=2000, count=3)
        assert found[0][0] == seed and found[0][1] > found[1][1] and len(pictures) == 3
        if seed == 2077:  # the command, as a user runs it
            path = tmp_path / "mine.png"
            picture.save(path)
            ran = _acgmake("characters-like", str(path), "--search", "128",
                           "--from-seed", "2000", "--count", "2")  # fmt: skip
            assert ran.returncode == 0, ran.stderr
            lines = [json.loads(line) for line in ran.stdout.splitlines()]
            assert [line["seed"] for line in lines][0] == seed and len(lines) == 2


def _acgmake(*arguments: str) -> subprocess.CompletedProcess:
    """The command line as a user runs it, in a process of its own (the plugin's command is
    registered when acgmake starts, whatever other tests did to this process's CLI)."""
    return run_command(*arguments, plugins=["acgmake-tag"], timeout_s=300)
