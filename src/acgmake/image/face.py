"""``face.json``: where the face, mouth, eyes and colour-hint points are in ``character.png``.

Coordinates are normalised to 0..1 (x, y), so the file stays valid when a plugin resizes the
picture; :meth:`Face.pixel_point` and :meth:`Face.pixel_box` scale them to a given size.
A character drawn by a generator also keeps its ``latent`` (the styles, base64, and the
generator that drew it; see :func:`acgmake.models.character.latent_record`).

:meth:`Face.read` is the one reader of ``face.json``: it checks the file's size, nesting,
types and ranges and names what is wrong in one line.
"""

from __future__ import annotations

import base64
import binascii
import math
import sys
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acgmake.errors import UserError
from acgmake.formats import (
    FormatProblem,
    checked_integer,
    checked_list,
    checked_number,
    checked_object,
    checked_text,
    checked_value,
    key_path,
    read_json_file,
)

Box = tuple[float, float, float, float]
Point = tuple[float, float]

#: The expressions of one character, in the order ``expressions.png`` holds them side by side:
#: mouth closed, the five vowel mouths, and a blink (eyes closed, mouth closed).
EXPRESSIONS = ("rest", "a", "i", "u", "e", "o", "blink")

#: face.json is a few KB, or about 50 KB with a latent of 18 x 512 styles.
MAX_FACE_BYTES = 1024 * 1024
#: face.json nests four deep (the file, points, the eyes' points, a point).
MAX_FACE_DEPTH = 8
#: Coordinates are 0..1; a box may reach past the picture's edge, but not far.
COORDINATES = (-0.5, 1.5)
#: Numbers in a latent's styles: a StyleGAN2 generator's are a few units.
MAX_LATENT_VALUES = 1 << 20
_FACE_REMEDY = (
    "make it again with `acgmake character`, or fix it: face, mouth and eyes are boxes "
    "[x0, y0, x1, y1] and points [x, y], in 0..1 coordinates"
)


@dataclass(frozen=True)
class Face:
    """The layout of a character picture, in normalised coordinates (0..1)."""

    face: Box
    mouth: Box
    eyes: tuple[Box, ...]
    #: Hint points by region name: "hair", "skin", "clothes", "background" (one point each)
    #: and "eyes" (one point per eye).
    points: dict[str, tuple[Point, ...]]
    #: Colours the character stage saw at each point, "#rrggbb" (a list for the eyes; optional).
    colors: dict[str, Any] = field(default_factory=dict)
    #: The styles that drew the character and their generator (``float32_base64``,
    #: ``shape``, ``generator``, ``generator_sha256``); None when it was not generated.
    latent: dict[str, Any] | None = None
    #: The user's own picture this character is (``--character``): its file name, sha256,
    #: size, the part of it shown and how its background was found; None for a generated one.
    picture: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, raw: Any, *, source: str = "face.json") -> Face:
        """The layout a ``face.json`` value holds; :class:`UserError` naming ``source`` and
        what is wrong when it is not one."""
        return checked_value(
            raw, cls._checked, source=source, what="a face file", remedy=_FACE_REMEDY
        )

    @classmethod
    def _checked(cls, raw: Any) -> Face:
        top = checked_object(raw, "the file")
        regions = checked_object(top.get("points", {}), "points")
        if len(regions) > 32:
            raise FormatProblem(f"points names {len(regions)} regions, more than 32")
        points: dict[str, tuple[Point, ...]] = {}
        for name, value in regions.items():
            where = key_path("points", checked_text(name, "a region name", 64))
            # "eyes" is a list of points, every other region a single point.
            if isinstance(value, (list, tuple)) and value and isinstance(value[0], (list, tuple)):
                group = checked_list(value, where, 16)
                points[name] = tuple(_point(p, f"{where}[{i}]") for i, p in enumerate(group))
            else:
                points[name] = (_point(value, where),)
        colors = checked_object(top.get("colors", {}), "colors")
        for name, value in colors.items():
            where = key_path("colors", checked_text(name, "a region name", 64))
            if isinstance(value, (list, tuple)):  # the eyes' colours, one per eye
                for i, colour in enumerate(checked_list(value, where, 16)):
                    checked_text(colour, f"{where}[{i}]", 64)
            else:
                checked_text(value, where, 64)
        eyes = checked_list(top.get("eyes", []), "eyes", 8)
        latent = top.get("latent")
        picture = top.get("picture")
        if picture is not None:
            picture = checked_object(picture, "picture")
            for name, value in picture.items():
                where = key_path("picture", checked_text(name, "a key", 64))
                if isinstance(value, list):
                    for i, number in enumerate(checked_list(value, where, 4)):
                        checked_number(number, f"{where}[{i}]", (0, 1e6))
                else:
                    checked_text(value, where, 256)
        return cls(
            face=_box(top.get("face"), "face"),
            mouth=_box(top.get("mouth"), "mouth"),
            eyes=tuple(_box(eye, f"eyes[{i}]") for i, eye in enumerate(eyes)),
            points=points,
            colors=dict(colors),
            latent=None if latent is None else _latent(latent),
            picture=None if picture is None else dict(picture),
        )

    @classmethod
    def read(cls, path: Path) -> Face:
        """The layout in the ``face.json`` at ``path``; UserError naming the file and what is
        wrong with it (too large, not JSON, nested too deep, a value of the wrong type or out
        of range, an empty box)."""
        raw = read_json_file(
            path,
            what="a face file",
            max_bytes=MAX_FACE_BYTES,
            max_depth=MAX_FACE_DEPTH,
            remedy=_FACE_REMEDY,
        )
        return cls.from_dict(raw, source=str(path))

    @staticmethod
    def pixel_point(point: Point, width: int, height: int) -> tuple[int, int]:
        """``point`` as integer (x, y) pixel coordinates in a ``width`` x ``height`` image."""
        x = min(max(round(point[0] * width - 0.5), 0), width - 1)
        y = min(max(round(point[1] * height - 0.5), 0), height - 1)
        return x, y

    @staticmethod
    def pixel_box(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
        """``box`` as integer (x0, y0, x1, y1) pixel bounds (x1, y1 exclusive), never empty."""
        x0 = min(max(int(box[0] * width), 0), width - 1)
        y0 = min(max(int(box[1] * height), 0), height - 1)
        x1 = min(max(round(box[2] * width), x0 + 1), width)
        y1 = min(max(round(box[3] * height), y0 + 1), height)
        return x0, y0, x1, y1


def _point(value: Any, where: str) -> Point:
    x, y = (checked_number(v, where, COORDINATES) for v in _numbers(value, where, 2))
    return (x, y)


def _box(value: Any, where: str) -> Box:
    x0, y0, x1, y1 = (checked_number(v, where, COORDINATES) for v in _numbers(value, where, 4))
    if not (x0 < x1 and y0 < y1):
        raise FormatProblem(f"{where} [{x0:g}, {y0:g}, {x1:g}, {y1:g}] is an empty box")
    return (x0, y0, x1, y1)


def _numbers(value: Any, where: str, count: int) -> list[Any]:
    if not isinstance(value, (list, tuple)) or len(value) != count:
        shape = "[x, y]" if count == 2 else "[x0, y0, x1, y1]"
        raise FormatProblem(f"{where} is {_described(value)}, not {count} numbers {shape}")
    return value


def _described(value: Any) -> str:
    if value is None:
        return "missing (or null)"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)}"
    return "an object" if isinstance(value, dict) else type(value).__name__


def _latent(value: Any) -> dict[str, Any]:
    """The ``latent`` record, checked: a shape, and as many float32 values in base64."""
    record = checked_object(value, "latent")
    shape = checked_list(record.get("shape"), "latent.shape", 4)
    sizes = [
        checked_integer(n, f"latent.shape[{i}]", (1, MAX_LATENT_VALUES))
        for i, n in enumerate(shape)
    ]
    count = math.prod(sizes)
    if not sizes or count > MAX_LATENT_VALUES:
        raise FormatProblem(f"latent.shape {sizes} holds no styles, or more than a generator's")
    encoded = checked_text(record.get("float32_base64"), "latent.float32_base64", 8 * count)
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise FormatProblem("latent.float32_base64 is not base64") from None
    if len(data) != 4 * count:
        raise FormatProblem(
            f"latent.float32_base64 holds {len(data) // 4:,} numbers, not the {count:,} of "
            f"latent.shape {sizes}"
        )
    values = array("f", data)
    if sys.byteorder == "big":
        values.byteswap()  # stored little-endian ("<f4")
    if not all(map(math.isfinite, values)):
        raise FormatProblem("latent.float32_base64 holds numbers that are not finite (NaN, inf)")
    checked_text(record.get("generator", ""), "latent.generator", 4096)
    checked_text(record.get("generator_sha256", ""), "latent.generator_sha256", 128)
    edits = checked_object(record.get("edits", {}), "latent.edits")  # --edit, name -> amount
    if len(edits) > 16:
        raise FormatProblem(f"latent.edits names {len(edits)} edits, more than 16")
    for name, amount in edits.items():
        checked_text(name, "latent.edits key", 32)
        checked_number(amount, key_path("latent.edits", name), (-5.0, 5.0))
    return dict(record)


def split_expressions(strip: Any) -> list[Any]:
    """The pictures of an expressions strip (:data:`EXPRESSIONS`, side by side, one width
    each), as contiguous arrays with the strip's channels. UserError when the strip cannot
    hold that many pictures of one size."""
    import numpy as np

    count = len(EXPRESSIONS)
    height, width = strip.shape[:2]
    if width % count or width < count:
        raise UserError(
            f"the expressions strip is {width}x{height} pixels; it must be {count} pictures "
            f"of one size side by side ({', '.join(EXPRESSIONS)})"
        )
    each = width // count
    return [np.ascontiguousarray(strip[:, i * each : (i + 1) * each]) for i in range(count)]
