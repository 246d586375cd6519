"""The ``character`` stage: a StyleGAN2 generator draws the singer; face.json says where its
face, eyes and mouth are (normalised, so a resized character.png keeps it valid) and keeps
the character's latent. The ``expressions`` stage draws the same character's mouth shapes and
blink from that latent with the generator's learned directions, at the model's size."""

from __future__ import annotations

import json
from pathlib import Path

import click

from acgmake import Artifact, Param, Stage, hookimpl
from acgmake.image.face import MAX_FACE_BYTES
from acgmake.pipeline import SEED, NotAvailable


@hookimpl
def register_artifacts(register):
    register(
        Artifact(
            "character",
            "character.png",
            "the character: generated (RGB, plain light background) or your own picture "
            "(--character, RGBA); enlarged by the upscale stage",
        )
    )
    register(
        Artifact(
            "face",
            "face.json",
            "where face, eyes and mouth are in character.png (normalised 0..1) and colour hints",
            max_bytes=MAX_FACE_BYTES,
        )
    )
    register(
        Artifact(
            "expressions",
            "expressions.png",
            "the character's mouth shapes (rest, a, i, u, e, o) and blink, side by side",
        )
    )


def _check_edit(text: str) -> None:
    from acgmake.models.directions import parse_edit

    parse_edit(text)


def _checkpoint(ckpt: str) -> Path:
    from acgmake.models.character import shipped_checkpoint
    from acgmake.pipeline import user_path

    return user_path(ckpt) if ckpt else shipped_checkpoint()


def make_character(ctx) -> None:
    from PIL import Image

    from acgmake.models.character import (
        character_latent,
        draw_latent,
        face_info,
        latent_record,
        layout_from_metadata,
    )
    from acgmake.models.checkpoint import load_generator, read_metadata
    from acgmake.models.directions import directions_path, load_directions, parse_edit
    from acgmake.pipeline import sha256_file

    if ctx.params["character"]:
        make_own_character(ctx)
        return
    path = _checkpoint(ctx.params["ckpt"])
    edits = parse_edit(ctx.params["edit"])  # a malformed --edit fails before any loading
    generator = load_generator(path)  # a bad file is a UserError naming it
    metadata = read_metadata(path)
    ctx.use_asset(
        path,
        name=f"character model {path.name} ({generator.size} px)",
        license=metadata.get("license", "unknown (user-supplied checkpoint)"),
        credit=metadata.get("credit", f"Character model: {path.name}"),
    )
    generator_sha256 = sha256_file(path)
    mix_seed = ctx.params["mix_seed"]
    styles = character_latent(
        generator,
        ctx.seed,
        truncation_psi=ctx.params["truncation"],
        mix_seed=mix_seed,
        mix_layer=ctx.params["mix_layer"] if mix_seed is not None else None,
    )
    layout = layout_from_metadata(metadata)
    if edits:
        from acgmake.image.face import Face
        from acgmake.models.drawn import canonical_layout
        from acgmake.models.expressions import draw_edited

        directions = load_directions(path, generator_sha256)
        ctx.use_asset(directions_path(path), name=f"latent directions for {path.name}")
        # Each edit only on its face part: the latent edit alone also moves hair and collar.
        face = Face.from_dict(layout or canonical_layout(), source="the generator's layout")
        image = draw_edited(generator, directions, styles, edits, face)
    else:
        image = draw_latent(generator, styles[None])[0]
    Image.fromarray(image).save(ctx.output("character"), format="PNG")
    info = face_info(image, layout)
    info["latent"] = latent_record(styles, generator_sha256, str(path.resolve()), edits)
    ctx.output("face").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def _user_file(text: str, option: str) -> Path:
    """The file a path option names; UserError when it is not a readable file."""
    import os

    from acgmake.errors import UserError
    from acgmake.pipeline import user_path

    path = user_path(text)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise UserError(f"{option} {path} {what}; give the path of a file")
    if not os.access(path, os.R_OK):
        raise UserError(f"{option} {path}: cannot read it; check its permissions")
    return path


def _check_character(text: str) -> None:
    """``--character``: a readable file, checked before anything runs (not once the song has
    been composed and sung)."""
    if text:
        _user_file(text, "--character")


def _check_face(text: str) -> None:
    if text:
        _user_file(text, "--face")


def make_own_character(ctx) -> None:
    """``--character PICTURE``: the user's own picture is the character (see
    :mod:`acgmake.image.portrait`): its face found (or given with ``--face``), its background
    made transparent, cut to the framing the clip needs."""
    from PIL import Image

    from acgmake.formats import read_json_file
    from acgmake.image.face import MAX_FACE_BYTES, MAX_FACE_DEPTH
    from acgmake.image.picture import read_picture
    from acgmake.image.portrait import (
        checked_size,
        found_layout,
        given_layout,
        make_portrait,
        picture_record,
        sampled_colours,
    )
    from acgmake.pipeline import sha256_file

    path = _user_file(ctx.params["character"], "--character")
    original, _ = read_picture(path, "character picture")
    ctx.use_asset(path, name=f"your character {path.name}", license="yours")
    picture = checked_size(original, str(path))
    height, width = picture.shape[:2]
    if ctx.params["face"]:
        face_path = _user_file(ctx.params["face"], "--face")
        ctx.use_asset(face_path, name=f"face positions {face_path.name}", license="yours")
        raw = read_json_file(
            face_path,
            what="a face file",
            max_bytes=MAX_FACE_BYTES,
            max_depth=MAX_FACE_DEPTH,
            remedy="give face, mouth and eyes as boxes [x0, y0, x1, y1]",
        )
        # Pixel positions are of the picture as the user has it, before any scaling down.
        layout = given_layout(raw, original.shape[1], original.shape[0], str(face_path))
    else:
        from acgmake.models.facefind import shipped_detector

        ctx.use_asset(
            shipped_detector(),
            name="face detector facefind (trained by acgmake on its drawn characters)",
            license="MIT",
        )
        layout = found_layout(picture, str(path), ctx.params["face_index"])
    framing = ctx.params["framing"]
    portrait = make_portrait(picture, layout, framing="bust" if framing == "auto" else framing)
    Image.fromarray(portrait.rgba).save(ctx.output("character"), format="PNG")
    info = dict(portrait.layout)
    info["colors"] = sampled_colours(portrait.rgba, info["points"])
    size = (original.shape[1], original.shape[0])
    info["picture"] = picture_record(path, sha256_file(path), portrait, size)
    ctx.output("face").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def _blink_of_the_clip(given, stages) -> dict[str, bool]:
    """When animate runs with its drawn eyelids (the default), the strip's blink is not shown:
    it is left to the latent directions instead of fitted (1.45 s instead of 2.2 s)."""
    if "animate" not in stages:
        return {}
    from acgmake.stages.animate import DEFAULT_BLINK

    return {"fit_blink": given.get("animate", {}).get("blink", DEFAULT_BLINK) == "model"}


def _framing_of_the_clip(given, stages) -> dict[str, str]:
    """A user's picture is cut to the bust for a landscape or square clip and kept taller for
    a portrait one (animate's ``--size``)."""
    options = given.get("character", {})
    if "animate" not in stages or not options.get("character") or "framing" in options:
        return {}
    from acgmake.stages.animate import DEFAULT_SIZE, parse_size

    width, height = parse_size(given.get("animate", {}).get("size", DEFAULT_SIZE))
    return {"framing": "tall" if width / height < 0.85 else "bust"}


def make_expressions(ctx) -> None:
    from PIL import Image

    from acgmake.image.face import Face
    from acgmake.models.character import draw_latent, latent_from_record, one_thread
    from acgmake.models.checkpoint import load_generator
    from acgmake.models.directions import (
        directions_path,
        guide_classifiers,
        guide_paths,
        load_directions,
        reproduce_command,
    )
    from acgmake.models.expressions import expressions_strip
    from acgmake.pipeline import sha256_file

    face = Face.read(ctx.input("face"))  # one clear line for a malformed face.json
    record = face.latent
    if record is None:
        raise NotAvailable(
            "face.json holds no latent (the character was not drawn by acgmake's generator), "
            "so the animation draws its own mouths"
        )
    path = Path(record.get("generator", ""))
    if not path.is_file() or sha256_file(path) != record.get("generator_sha256"):
        raise NotAvailable(f"the generator {path} that drew the character is not there any more")
    if not directions_path(path).is_file():
        raise NotAvailable(
            f"{path.name} has no latent directions, so the animation draws its own mouths; "
            f"learn them with `{reproduce_command(path)}`"
        )
    generator = load_generator(path)
    directions = load_directions(path, record["generator_sha256"])
    ctx.use_asset(path, name=f"character model {path.name}")
    ctx.use_asset(directions_path(path), name=f"latent directions for {path.name}")
    steps, guides = ctx.params["fit_steps"], None
    if steps:
        for guide in guide_paths():
            ctx.use_asset(guide, name=f"attribute classifier {guide.name}")
        guides = guide_classifiers()
    # The resting face is drawn again from the latent, at the model's size: character.png
    # may already be enlarged by the upscale stage, which enlarges this strip the same way.
    styles = latent_from_record(record)
    character = draw_latent(generator, styles[None])[0]
    with one_thread():  # the fitted mouths must not depend on the cores (see one_thread)
        strip = expressions_strip(
            generator, directions, styles, character, face, guides, steps,
            fit_blink=ctx.params["fit_blink"],
        )  # fmt: skip
    Image.fromarray(strip).save(ctx.output("expressions"), format="PNG")


@hookimpl
def register_stages(register):
    register(
        Stage(
            "character",
            cost_s=1.0,
            needs=(),
            makes=("character", "face"),
            run=make_character,
            # 2: face.json keeps the latent; --edit, --mix-seed, --mix-layer
            # 3: --edit pasted onto its face part; face.json: latent before edits
            # 4: --character, --face, --face-index, --framing
            # 5: a --character's hint points kept inside its crop, its skin point nearer
            # the nose (under the eye's middle, a narrow jaw may already be hair)
            version="5",
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
                    "StyleGAN2 generator file: acgmake's .safetensors, a rosinality .pt or an "
                    "NVlabs stylegan2-ada-pytorch .pkl (loaded without running its code); "
                    "default: the shipped drawn64 model",
                ),
                Param(
                    "edit",
                    "",
                    "latent edits, e.g. mouth=0.8,eyes=-1 (mouth, eyes, a, i, u, e, o; "
                    "1 = from one class mean to the other); needs the model's directions",
                    check=_check_edit,
                ),
                Param(
                    "mix_seed",
                    None,
                    "style mixing: take the layers from --mix-layer on from this seed",
                    type=SEED,
                ),
                Param(
                    "mix_layer",
                    6,
                    "first style layer taken from --mix-seed (lower: more of that seed)",
                    type=click.IntRange(1, 32),
                ),
                Param(
                    "character",
                    "",
                    "your own character picture (PNG, JPEG or WebP, any anime-style picture "
                    "with a face) in place of a generated one: its face is found, its "
                    "background made transparent, its colours kept",
                    check=_check_character,
                ),
                Param(
                    "face",
                    "",
                    "with --character: a JSON file saying where the face is, when it is not "
                    'found: {"face": [x0, y0, x1, y1], "mouth": [...], "eyes": [[...], [...]]} '
                    "in pixels of the picture (or 0..1)",
                    check=_check_face,
                ),
                Param(
                    "face_index",
                    None,
                    "with --character: which face sings when the picture has several "
                    "(1 = the largest, 2 = the next, ...)",
                    type=click.IntRange(1, 64),
                ),
                Param(
                    "framing",
                    "auto",
                    "with --character: how much of the picture the clip shows: bust (head and "
                    "shoulders), tall (to the waist), whole, or auto (bust for a landscape "
                    "clip, tall for a portrait one)",
                    type=click.Choice(["auto", "bust", "tall", "whole"]),
                ),
            ),
            derive=_framing_of_the_clip,
            help="Generate the character (character.png) and its face layout (face.json), "
            "or make your own picture the character (--character my_oc.png).",
        )
    )
    register(
        Stage(
            "expressions",
            cost_s=2.4,
            needs=("face",),
            makes=("expressions",),
            run=make_expressions,
            # 2: each expression fitted to the character; 3: at the model's size, from the
            # latent alone (the upscale stage enlarges it as it enlarges character.png)
            # 4: mouths fitted on one thread (the same on any machine and with -j); 5: a mouth
            # stops being fitted once the guides are sure of it (FIT_SETTLE); 6: --fit-blink
            version="6",
            params=(
                Param(
                    "fit_steps",
                    40,  # acgmake.models.expressions.FIT_STEPS, not imported here (numpy)
                    "guided steps that fit each expression to this character (0: the latent "
                    "directions alone; each step draws 5 pictures, so a large model takes long)",
                    type=click.IntRange(0, 500),
                ),
                Param(
                    "fit_blink",
                    True,
                    "fit the blink to the character too (its fit takes every step: a third of "
                    "the stage's time); in a song, only when animate shows the model's own "
                    "blink (--blink model), as the drawn eyelids cover it otherwise",
                ),
            ),
            derive=_blink_of_the_clip,
            help="Draw the character's mouth shapes (rest, a, i, u, e, o) and a blink with the "
            "generator's latent directions, fitted to the character, side by side in "
            "expressions.png.",
        )
    )


def _generator_and_edits(ckpt: str, edit: str):
    """(generator, a function drawing styles as `acgmake character` does with ``edit``)."""
    from acgmake.image.face import Face
    from acgmake.models.character import draw_latent, layout_from_metadata
    from acgmake.models.checkpoint import load_generator, read_metadata
    from acgmake.models.directions import load_directions, parse_edit
    from acgmake.models.drawn import canonical_layout
    from acgmake.models.expressions import draw_edited

    path = _checkpoint(ckpt)
    edits = parse_edit(edit)
    generator = load_generator(path)
    if not edits:
        return generator, lambda one: draw_latent(generator, one[None])[0]
    directions = load_directions(path)
    layout = layout_from_metadata(read_metadata(path)) or canonical_layout()
    face = Face.from_dict(layout, source="the generator's layout")
    # Each part from its own edit, pasted into the unedited character (see draw_edited).
    return generator, lambda one: draw_edited(generator, directions, one, edits, face)


def _styles(generator, seeds, truncation: float):
    import torch

    from acgmake.models.character import character_latent

    return torch.stack([character_latent(generator, s, truncation_psi=truncation) for s in seeds])


_MODEL_OPTIONS = (
    click.option(
        "--truncation",
        type=click.FloatRange(0.0, 1.5),
        default=0.7,
        show_default=True,
        help="How typical: 0 = the average face, 1 = the full variety.",
    ),
    click.option("--ckpt", default="", help="Generator file [default: the shipped drawn64]."),
    click.option("--edit", default="", help="Latent edits for every character, e.g. eyes=-1."),
)


def _model_options(command):
    for option in reversed(_MODEL_OPTIONS):
        command = option(command)
    return command


def _output_option(help_text: str):
    return click.option(
        "-o", "--output", type=click.Path(path_type=Path), required=True, help=help_text
    )


@hookimpl
def register_commands(cli):
    @cli.command("characters")
    @click.option("--seed", type=SEED, default=0, show_default=True, help="First seed.")
    @click.option(
        "--count",
        type=click.IntRange(1, 1024),
        default=16,
        show_default=True,
        help="How many characters (seeds --seed, --seed+1, ...).",
    )
    @_model_options
    @_output_option("The grid picture to write (.png).")
    def characters(seed, count, truncation, ckpt, edit, output):
        """Draw COUNT characters from consecutive seeds as one grid picture.

        Example: acgmake characters --seed 7 --count 16 -o grid.png
        """
        import numpy as np
        from PIL import Image

        from acgmake.models.character import character_grid
        from acgmake.pipeline import atomic_path, check_writable

        check_writable(output)
        generator, draw = _generator_and_edits(ckpt, edit)
        styles = _styles(generator, range(seed, seed + count), truncation)
        # One at a time: a batch computes the last bits differently, and each cell should be
        # exactly what `acgmake character --seed N` draws.
        pictures = np.stack([draw(one) for one in styles])
        with atomic_path(output) as temporary:
            Image.fromarray(character_grid(pictures)).save(temporary, format="PNG")
        click.echo(f"Wrote {output}")

    @cli.command("interpolate")
    @click.option(
        "--seed",
        "seeds",
        type=SEED,
        multiple=True,
        required=True,
        help="A character to pass through; give two or more, in order.",
    )
    @click.option(
        "--seconds",
        type=click.FloatRange(0.1, 60),
        default=1.5,
        show_default=True,
        help="Seconds from one character to the next.",
    )
    @click.option("--fps", type=click.IntRange(1, 60), default=24, show_default=True)
    @click.option(
        "--size",
        type=click.IntRange(16, 2048),
        default=256,
        show_default=True,
        help="Width and height of the video in pixels.",
    )
    @_model_options
    @_output_option("The video to write (.mp4).")
    def interpolate(seeds, seconds, fps, size, truncation, ckpt, edit, output):
        """Write a video that walks through the latent space from one character to the next.

        Example: acgmake interpolate --seed 1 --seed 7 --seed 3 -o walk.mp4
        """
        import numpy as np
        from PIL import Image

        from acgmake.errors import UserError
        from acgmake.models.character import latent_walk
        from acgmake.pipeline import atomic_path, check_writable
        from acgmake.video.encode import VideoEncoder

        if len(seeds) < 2:
            raise UserError("give two or more --seed to walk between (e.g. --seed 1 --seed 7)")
        check_writable(output)
        size += size % 2  # H.264 needs even sides
        generator, draw = _generator_and_edits(ckpt, edit)
        walk = latent_walk(_styles(generator, seeds, truncation), max(1, round(seconds * fps)))
        with atomic_path(output) as temporary, VideoEncoder(temporary, size, size, fps) as encoder:
            for one in walk:
                frame = Image.fromarray(draw(one)).resize((size, size), Image.LANCZOS)
                encoder.write(np.asarray(frame))
        click.echo(f"Wrote {output} ({len(walk)} frames)")
