"""The ``character`` stage: a StyleGAN2 generator draws the singer; face.json says where its
face, eyes and mouth are (normalised, so a resized character.png keeps it valid)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from acgmake import Artifact, Param, Stage, hookimpl


@hookimpl
def register_artifacts(register):
    register(
        Artifact(
            "character",
            "character.png",
            "the generated character (RGB, model resolution, plain light background)",
        )
    )
    register(
        Artifact(
            "face",
            "face.json",
            "where face, eyes and mouth are in character.png (normalised 0..1) and colour hints",
        )
    )


def make_character(ctx) -> None:
    from PIL import Image

    from acgmake.models.character import (
        face_info,
        generate_character,
        layout_from_metadata,
        shipped_checkpoint,
    )
    from acgmake.models.checkpoint import load_generator, read_metadata

    ckpt = ctx.params["ckpt"]
    path = Path(ckpt).expanduser() if ckpt else shipped_checkpoint()
    generator = load_generator(path)  # a bad file is a UserError naming it
    metadata = read_metadata(path)
    ctx.use_asset(
        path,
        name=f"character model {path.name} ({generator.size} px)",
        license=metadata.get("license", "unknown (user-supplied checkpoint)"),
        credit=metadata.get("credit", f"Character model: {path.name}"),
    )
    image = generate_character(generator, ctx.seed, truncation_psi=ctx.params["truncation"])
    Image.fromarray(image).save(ctx.output("character"), format="PNG")
    info = face_info(image, layout_from_metadata(metadata))
    ctx.output("face").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


@hookimpl
def register_stages(register):
    register(
        Stage(
            "character",
            needs=(),
            makes=("character", "face"),
            run=make_character,
            version="1",
            params=(
                Param(
                    "truncation",
                    0.7,
                    "how typical the character is: 0 = the average face, 1 = the full variety",
                    type=click.FloatRange(0.0, 1.5),
                ),
                Param(
                    "ckpt",
                    "",
                    "StyleGAN2 generator file (.safetensors from acgmake's trainer); "
                    "default: the shipped drawn64 model",
                ),
            ),
            help="Generate the character (character.png) and its face layout (face.json).",
        )
    )
