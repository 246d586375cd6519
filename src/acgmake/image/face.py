"""``face.json``: where the face, mouth, eyes and colour-hint points are in ``character.png``.

Coordinates are normalised to 0..1 (x, y), so the file stays valid when a plugin resizes the
picture; :meth:`Face.pixel_point` and :meth:`Face.pixel_box` scale them to a given size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acgmake.errors import UserError

Box = tuple[float, float, float, float]
Point = tuple[float, float]

#: The expressions of one character, in the order ``expressions.png`` holds them side by side:
#: mouth closed, the five vowel mouths, and a blink (eyes closed, mouth closed).
EXPRESSIONS = ("rest", "a", "i", "u", "e", "o", "blink")


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

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Face:
        points: dict[str, tuple[Point, ...]] = {}
        for name, value in raw.get("points", {}).items():
            # "eyes" is a list of points, every other region a single point.
            many = value and isinstance(value[0], (list, tuple))
            points[name] = tuple(_point(p) for p in (value if many else [value]))
        return cls(
            face=_box(raw["face"]),
            mouth=_box(raw["mouth"]),
            eyes=tuple(_box(eye) for eye in raw.get("eyes", [])),
            points=points,
            colors=dict(raw.get("colors", {})),
        )

    @classmethod
    def read(cls, path: Path) -> Face:
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError, IndexError) as error:
            raise UserError(
                f"{path} is not a face file acgmake can read ({type(error).__name__}: {error}); "
                "it needs face, mouth and points in 0..1 coordinates"
            ) from None

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


def _point(value: Any) -> Point:
    x, y = (float(v) for v in value)
    return (x, y)


def _box(value: Any) -> Box:
    x0, y0, x1, y1 = (float(v) for v in value)
    if not (x0 < x1 and y0 < y1):
        raise ValueError(f"box {list(value)} is empty")
    return (x0, y0, x1, y1)


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
