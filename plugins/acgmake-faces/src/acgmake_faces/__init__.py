"""acgmake-faces: find the anime faces in any picture, crop and align them.

``acgmake faces picture.png`` finds every face with acgmake's own detector
(:func:`acgmake.models.facefind.find_faces`, trained on the drawn set with wide style
augmentation) and the ``animeface`` package (the nvxs AnimeFace library, Apache-2.0) as a
second opinion, and writes beside the picture a folder ``picture.faces/`` with:

- ``face-1.png``, ``face-2.png``, ...: each face cropped and aligned: turned so that its eyes
  are level, the face in the middle, largest face first (the order ``--face-index`` counts);
- ``faces.json``: for each face its box, eyes, mouth and chin in the picture (pixels), the
  turn, the score, which detector found it, and its crop's file.

That is what the field's classic tool (lbpcascade_animeface with a crop script) is used for:
making a face data set from pictures (``acgmake train prepare`` uses such crops), or checking
where acgmake will think a character's face is before ``acgmake song --character``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from acgmake import UserError, hookimpl

__version__ = "0.1.0"

#: How much of the picture around the face a crop shows: the face box grown this many times.
CROP_SCALE = 1.6
MAX_FACES = 64


def _centre(box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def aligned_crop(picture, face, size: int):
    """The ``size`` px square crop of ``picture`` (uint8 RGB or RGBA) around ``face`` (a
    :class:`~acgmake.models.facefind.FoundFace`), turned so its eyes are level, and the turn
    in degrees (positive: the face was turned anticlockwise in the picture)."""
    import cv2
    import numpy as np

    height, width = picture.shape[:2]
    (lx, ly), (rx, ry) = (_centre(eye) for eye in face.eyes)
    turn = math.degrees(math.atan2((ry - ly) * height, (rx - lx) * width))
    cx, cy = _centre(face.box)
    cx, cy = cx * width, cy * height
    side = CROP_SCALE * max(
        (face.box[2] - face.box[0]) * width, (face.box[3] - face.box[1]) * height
    )
    scale = size / max(side, 1.0)
    matrix = cv2.getRotationMatrix2D((cx, cy), turn, scale)
    matrix[0, 2] += size / 2 - cx
    matrix[1, 2] += size / 2 - cy
    fill = (255, 255, 255, 0) if picture.shape[2] == 4 else (255, 255, 255)
    crop = cv2.warpAffine(
        np.ascontiguousarray(picture), matrix, (size, size), flags=cv2.INTER_AREA if scale < 1
        else cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT, borderValue=fill,
    )  # fmt: skip
    return crop, turn


def find(picture, *, min_score: float = 0.5, second_opinion: bool = True) -> list[dict]:
    """The faces in ``picture`` as ``faces.json`` records (pixels), largest first."""
    from acgmake.models.facefind import find_faces

    height, width = picture.shape[:2]
    scale = (width, height, width, height)

    def pixels(box) -> list[float]:
        return [round(v * s, 1) for v, s in zip(box, scale, strict=True)]

    records = []
    for face in find_faces(picture, min_score=min_score, second_opinion=second_opinion):
        records.append(
            {
                "box": pixels(face.box),
                "eyes": [pixels(eye) for eye in face.eyes],
                "mouth": pixels(face.mouth),
                "chin": [round(face.chin[0] * width, 1), round(face.chin[1] * height, 1)],
                "score": round(float(face.score), 3),
                "found_by": face.source,
                "_face": face,
            }
        )
    return records[:MAX_FACES]


@hookimpl
def register_commands(cli):
    @cli.command("faces")
    @click.argument("picture", type=click.Path(dir_okay=False, path_type=Path))
    @click.option(
        "-o",
        "--output",
        type=click.Path(file_okay=False, path_type=Path),
        help="The folder for the crops and faces.json. [default: PICTURE-stem.faces/]",
    )
    @click.option("--size", type=click.IntRange(32, 2048), default=256, show_default=True,
                  help="Width and height of each crop in pixels.")  # fmt: skip
    @click.option("--min-score", type=click.FloatRange(0.05, 1.0), default=0.5,
                  show_default=True, help="Leave out faces found less surely.")  # fmt: skip
    @click.option("--no-second-opinion", is_flag=True,
                  help="Only acgmake's own detector, not the animeface package's.")  # fmt: skip
    def faces_command(picture, output, size, min_score, no_second_opinion):
        """Find the anime faces in PICTURE; write each cropped and aligned, and faces.json
        with its box, eyes, mouth and chin (pixels), largest first.

        Example: acgmake faces group.png -o faces/   (then: acgmake song lyrics.txt
        --character group.png --face-index 2)
        """
        import shutil
        import tempfile

        from PIL import Image

        from acgmake.image.picture import read_picture
        from acgmake.pipeline import user_path

        source = user_path(picture)
        pixels, _ = read_picture(source, "picture")
        folder = output or source.with_name(source.stem + ".faces")
        if folder.exists() and not (folder / "faces.json").is_file():
            raise UserError(
                f"{folder} exists and is not a faces folder (no faces.json in it); give another "
                "folder with -o"
            )
        found = find(pixels, min_score=min_score, second_opinion=not no_second_opinion)
        if not found:
            raise UserError(
                f"no face found in {source}; acgmake finds faces that look at the viewer, "
                "at least about 24 pixels wide"
            )
        parent = folder.resolve().parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=parent))
        except OSError as error:
            raise UserError(f"cannot write {folder}: {error.strerror or error}") from None
        try:
            for number, record in enumerate(found, start=1):
                crop, turn = aligned_crop(pixels, record.pop("_face"), size)
                record["turn_deg"] = round(turn, 1)
                record["crop"] = f"face-{number}.png"
                Image.fromarray(crop).save(staging / record["crop"], format="PNG")
            report = {"picture": source.name, "size": [pixels.shape[1], pixels.shape[0]],
                      "faces": found}  # fmt: skip
            (staging / "faces.json").write_text(
                json.dumps(report, indent=1) + "\n", encoding="utf-8"
            )
            if folder.exists():
                shutil.rmtree(folder)
            staging.rename(folder)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        for record in found:
            x0, y0, x1, y1 = record["box"]
            click.echo(
                f"{record['crop']}: face at {x0:.0f},{y0:.0f} {x1 - x0:.0f}x{y1 - y0:.0f} px, "
                f"score {record['score']:.2f} ({record['found_by']})"
            )
        click.echo(f"Wrote {len(found)} face{'s' if len(found) != 1 else ''} to {folder}/")
