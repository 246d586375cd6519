"""Your own character: a picture the user owns, made ready to sing.

``acgmake song lyrics.txt --character my_oc.png`` puts any anime-style picture in the place of
the generated character. This module turns the picture into what the rest of the chain
expects of ``character.png`` and ``face.json``:

1. **The face.** Found by the project's face detector (:func:`acgmake.models.facefind.find_faces`),
   the largest one unless the user picks another (``--face-index``), or given by the user
   (``--face face.json``, :func:`given_layout`). The mouth box is set to the size the drawn
   mouths need (:data:`MOUTH_OF_FACE`) around the mouth found.
2. **The background.** Kept as it is when the PNG has transparency. Otherwise it is flooded from
   the picture's borders, the line art a barrier (:func:`separate_background`): the areas the
   lines cut the picture into that reach the border and have the border's colours. A picture
   where that finds no clear background (a photo behind the character) stays opaque.
3. **The framing** (:func:`framing_box`). A tall or wide picture is cut to the bust for a
   landscape clip (head and shoulders, as the generated characters are drawn), and kept taller
   for a portrait clip.

Coordinates in the layout are normalised (0..1) like every ``face.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from acgmake.errors import UserError

Box = tuple[float, float, float, float]

#: The smallest picture that can sing: a face needs some pixels for a mouth to be drawn on it.
MIN_SIDE_PX = 128
#: A larger picture is scaled down to this on its longer side: the clip shows the character at
#: most about 1100 px high, and every later stage costs more with more pixels.
MAX_SIDE_PX = 2048
#: The smallest face, as a share of the picture's shorter side, that the mouth can be drawn on.
MIN_FACE_SHARE = 0.04

#: The drawn mouths fill a box this large, as a share of the face box's width and height: the
#: drawn set's box that every mouth shape fits in (``acgmake.models.drawn.LAYOUT``).
MOUTH_OF_FACE = (0.213, 0.124)
#: How the eye boxes found are grown for the drawn blink (which covers 1.4 times the box with
#: skin already: more would paint over the eyebrows and the bangs).
EYE_GROWTH = 1.0

#: Framing by the face box's width (w) and height (h): how far the picture reaches to each side
#: of the face's centre, above the face's top and below its bottom (the chin).
FRAMINGS = {
    # Head and shoulders, a little more than the generated characters show.
    "bust": {"side": 1.7, "above": 0.45, "below": 0.7},
    # Head to the waist, for a portrait clip.
    "tall": {"side": 1.7, "above": 0.45, "below": 3.0},
}
FRAMING_CHOICES = ("auto", "bust", "tall", "whole")

#: Colours (CIELAB distance) that count as the border's own: the background flood takes an area
#: whose median colour is this close to one of the border's main colours.
BACKGROUND_DELTA_E = 14.0
#: A separation that takes less than this share of the picture found no background; more than
#: the upper share, it took the character too. Either way the picture stays opaque.
BACKGROUND_SHARE = (0.03, 0.9)


@dataclass(frozen=True)
class Portrait:
    """A user's picture ready to be the character: straight RGBA and its ``face.json`` fields."""

    rgba: np.ndarray
    layout: dict[str, Any]
    #: How the background was found: "transparency" (the file's own), "flood" or "none".
    background: str
    #: Where the picture was cut from the (scaled) original, in its pixels (x0, y0, x1, y1).
    crop: tuple[int, int, int, int]


def checked_size(picture: np.ndarray, name: str) -> np.ndarray:
    """``picture`` scaled down to :data:`MAX_SIDE_PX` on its longer side; UserError when it is
    smaller than :data:`MIN_SIDE_PX`."""
    height, width = picture.shape[:2]
    if min(height, width) < MIN_SIDE_PX:
        raise UserError(
            f"{name} is {width}x{height} pixels, too small for a face to sing; give a picture "
            f"at least {MIN_SIDE_PX} pixels on each side (512 or more looks best)"
        )
    longer = max(height, width)
    if longer <= MAX_SIDE_PX:
        return picture
    scale = MAX_SIDE_PX / longer
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(picture, size, interpolation=cv2.INTER_AREA)


def has_transparency(picture: np.ndarray) -> bool:
    """Whether an RGBA picture has a transparent background worth keeping (1% of it clear)."""
    return (
        picture.ndim == 3 and picture.shape[2] == 4 and float(np.mean(picture[..., 3] < 128)) > 0.01
    )


# ---------------------------------------------------------------------------------------------
# The face


def layout_from_face(box: Box, eyes: tuple[Box, ...], mouth: Box) -> dict[str, Any]:
    """The face.json boxes and hint points of a face with these (normalised) parts.

    The mouth box becomes :data:`MOUTH_OF_FACE` of the face around the mouth's centre (the
    size the drawn mouths are made for); the eye boxes grow by :data:`EYE_GROWTH`. The hint
    points sit where the drawn set's do relative to the face (hair above the eyes, skin on the
    cheek, clothes below the chin).
    """
    fx0, fy0, fx1, fy1 = box
    fw, fh = fx1 - fx0, fy1 - fy0
    mx, my = (mouth[0] + mouth[2]) / 2, (mouth[1] + mouth[3]) / 2
    half_w, half_h = MOUTH_OF_FACE[0] * fw / 2, MOUTH_OF_FACE[1] * fh / 2
    eyes = tuple(sorted(eyes))
    grown = []
    for x0, y0, x1, y1 in eyes:
        cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
        grown.append(
            [cx - hw * EYE_GROWTH, cy - hh * EYE_GROWTH, cx + hw * EYE_GROWTH, cy + hh * EYE_GROWTH]
        )
    centres = [[(e[0] + e[2]) / 2, (e[1] + e[3]) / 2] for e in eyes]
    eye_bottom = max(e[3] for e in eyes) if eyes else fy0 + 0.6 * fh
    cx = (fx0 + fx1) / 2
    # Skin: under the inner half of an eye, between the eyes and the mouth, where a face is
    # skin whatever its shape (under the eye's middle, a narrow jaw may already be hair).
    cheek_x = (centres[0][0] + cx) / 2 if centres else fx0 + 0.39 * fw

    def clamp(point: list[float]) -> list[float]:
        return [round(min(max(v, 0.0), 1.0), 4) for v in point]

    return {
        "face": [round(v, 4) for v in box],
        "mouth": [round(v, 4) for v in (mx - half_w, my - half_h, mx + half_w, my + half_h)],
        "eyes": [[round(v, 4) for v in eye] for eye in grown],
        "points": {
            "hair": clamp([cx, fy0 + 0.12 * fh]),
            "skin": clamp([cheek_x, (eye_bottom + my) / 2]),
            "eyes": [clamp(c) for c in centres],
            "clothes": clamp([cx - 0.62 * fw, fy1 + 0.22 * fh]),
            "background": [0.02, 0.02],
        },
    }


def found_layout(picture: np.ndarray, name: str, face_index: int | None) -> dict[str, Any]:
    """The layout of the face the detector finds in ``picture`` (the largest, or number
    ``face_index`` counting from 1, largest first); UserError when there is none."""
    from acgmake.models.facefind import find_faces

    found = find_faces(picture)
    height, width = picture.shape[:2]
    if not found:
        raise UserError(
            f"no face found in {name}; give where it is with --face FACE.json (face, mouth "
            "and eyes as boxes [x0, y0, x1, y1] in pixels or 0..1, see `acgmake character "
            "--help`), or use a picture where the face looks at the viewer"
        )
    if face_index is not None:
        if face_index > len(found):
            raise UserError(
                f"--face-index {face_index}: {name} has {len(found)} face"
                f"{'s' if len(found) != 1 else ''} (numbered from 1, largest first)"
            )
        face = found[face_index - 1]
    else:
        face = found[0]
    too_small = _too_small(face.box, width, height)
    if too_small:
        raise UserError(f"the face in {name} is {too_small}")
    return layout_from_face(face.box, face.eyes, face.mouth)


def _too_small(face: Box, width: int, height: int) -> str:
    """Why a face box (normalised) is too small to sing, or "" when it is not."""
    share = min((face[2] - face[0]) * width, (face[3] - face[1]) * height)
    if share < MIN_FACE_SHARE * min(width, height) or share < 24:
        return (
            f"only {share:.0f} pixels wide, too small to sing; crop the picture closer to the "
            "character"
        )
    return ""


def given_layout(raw: Any, width: int, height: int, source: str) -> dict[str, Any]:
    """The layout of a user's ``--face`` file for a ``width`` x ``height`` picture: ``face``,
    ``mouth`` and ``eyes`` boxes, in 0..1 or, when any number is above 1.5, in pixels."""
    from acgmake.formats import (
        FormatProblem,
        checked_list,
        checked_number,
        checked_object,
        checked_value,
    )

    def check(value: Any) -> dict[str, Any]:
        top = checked_object(value, "the file")
        numbers = []

        def box(item: Any, where: str) -> list[float]:
            values = checked_list(item, where, 4)
            if len(values) != 4:
                raise FormatProblem(f"{where} must be a box [x0, y0, x1, y1]")
            found = [checked_number(v, f"{where}[{i}]", (-1e5, 1e5)) for i, v in enumerate(values)]
            if found[2] <= found[0] or found[3] <= found[1]:
                raise FormatProblem(f"{where} is empty: x1 must be right of x0 and y1 below y0")
            numbers.extend(found)
            return found

        face = box(top.get("face"), "face")
        mouth = box(top.get("mouth"), "mouth")
        eyes = [
            box(e, f"eyes[{i}]") for i, e in enumerate(checked_list(top.get("eyes", []), "eyes", 2))
        ]
        if not eyes:
            raise FormatProblem("eyes must list the two eye boxes")
        if max(numbers) > 1.5:  # pixels
            scale = (width, height, width, height)
            face, mouth = (
                [v / s for v, s in zip(face, scale, strict=True)],
                [v / s for v, s in zip(mouth, scale, strict=True)],
            )
            eyes = [[v / s for v, s in zip(e, scale, strict=True)] for e in eyes]
        for where, b in (
            ("face", face),
            ("mouth", mouth),
            *((f"eyes[{i}]", e) for i, e in enumerate(eyes)),
        ):
            if b[2] < 0 or b[3] < 0 or b[0] > 1 or b[1] > 1:
                raise FormatProblem(f"{where} lies outside the picture")
        inside_w = min(face[2], 1.0) - max(face[0], 0.0)
        inside_h = min(face[3], 1.0) - max(face[1], 0.0)
        if inside_w * inside_h < 0.5 * (face[2] - face[0]) * (face[3] - face[1]):
            raise FormatProblem("face lies more than half outside the picture")
        too_small = _too_small(tuple(face), width, height)
        if too_small:
            raise FormatProblem(f"face is {too_small}")
        return layout_from_face(tuple(face), tuple(tuple(e) for e in eyes), tuple(mouth))

    return checked_value(
        raw,
        check,
        source=source,
        what="a face file",
        remedy="give face, mouth and eyes (two) as boxes [x0, y0, x1, y1], in pixels of the "
        "picture or in 0..1",
    )


# ---------------------------------------------------------------------------------------------
# The background


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def _main_colours(pixels: np.ndarray, *, share: float = 0.15) -> np.ndarray:
    """The colours (Lab) that at least ``share`` of ``pixels`` (N x 3 Lab) are near."""
    found = []
    left = pixels
    for _ in range(4):
        if len(left) < share * len(pixels) or not len(left):
            break
        centre = np.median(left, axis=0)
        near = np.linalg.norm(left - centre, axis=1) <= BACKGROUND_DELTA_E
        if near.sum() >= share * len(pixels):
            found.append(np.median(left[near], axis=0))
        left = left[~near]
    return np.asarray(found, np.float32).reshape(-1, 3)


def separate_background(rgb: np.ndarray, face: Box) -> np.ndarray | None:
    """The opacity (uint8, 255 = character) of an opaque picture ``rgb`` whose face is at
    ``face`` (normalised), or None when no background can be told from the character.

    The picture is cut into areas by its lines (gaps sealed, as colorize fills them). The
    background is the areas that touch the picture's border and whose colour is one of the
    border's main colours (in the top corners and along the upper sides, where a bust
    picture shows its backdrop), never an area that reaches into the middle of the face.
    """
    from acgmake.image.colorize import character_alpha
    from acgmake.image.fill import areas, border_areas
    from acgmake.image.lineart import WORKING_SIZE_PX, line_art

    height, width = rgb.shape[:2]
    scale = WORKING_SIZE_PX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    working = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    _, ink = line_art(working)
    if ink.shape != working.shape[:2]:
        ink = cv2.resize(ink.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    area_map = areas(ink, gap_px=4.0)
    lab = _lab(working)
    h, w = area_map.shape
    # The backdrop's colours are read where a portrait shows its backdrop: the top corners
    # and the upper sides (a head cut by the top edge is in the middle of it, not there).
    ring = np.zeros((h, w), bool)
    ring[0, : max(1, w // 5)] = True
    ring[0, -max(1, w // 5) :] = True
    ring[: h // 2, 0] = True
    ring[: h // 2, -1] = True
    ring &= ~ink
    if ring.sum() < 8:
        return None
    references = _main_colours(lab[ring])
    if not len(references):
        return None
    # The middle of the face (half its width and height): never background.
    fx0, fy0, fx1, fy1 = face
    qx, qy = (fx1 - fx0) / 4, (fy1 - fy0) / 4
    inner = np.zeros((h, w), bool)
    inner[
        max(int((fy0 + qy) * h), 0) : max(int((fy1 - qy) * h), 1),
        max(int((fx0 + qx) * w), 0) : max(int((fx1 - qx) * w), 1),
    ] = True
    in_face = np.unique(area_map[inner])
    background = np.zeros((h, w), bool)
    count = area_map.max() + 1
    sums = np.stack(
        [np.bincount(area_map.ravel(), lab[..., c].ravel(), count) for c in range(3)], 1
    )
    sizes = np.maximum(np.bincount(area_map.ravel(), minlength=count), 1)
    means = sums / sizes[:, None]
    for area in border_areas(area_map):
        if area in in_face:
            continue
        if np.min(np.linalg.norm(references - means[area], axis=1)) <= BACKGROUND_DELTA_E:
            background |= area_map == area
    share = float(background.mean())
    if not BACKGROUND_SHARE[0] <= share <= BACKGROUND_SHARE[1]:
        return None
    alpha = character_alpha(~background & ~(ink & background), ink)
    return cv2.resize(alpha, (width, height), interpolation=cv2.INTER_LINEAR)


# ---------------------------------------------------------------------------------------------
# The framing


def framing_box(face: Box, width: int, height: int, framing: str) -> tuple[int, int, int, int]:
    """The part of a ``width`` x ``height`` picture to show (pixels x0, y0, x1, y1): the
    :data:`FRAMINGS` box around the face (normalised ``face``), within the picture; the whole
    picture for ``"whole"``."""
    if framing == "whole":
        return 0, 0, width, height
    spec = FRAMINGS[framing]
    fx0, fy0, fx1, fy1 = face[0] * width, face[1] * height, face[2] * width, face[3] * height
    fw, fh = fx1 - fx0, fy1 - fy0
    cx = (fx0 + fx1) / 2
    x0 = max(0, int(cx - spec["side"] * fw))
    x1 = min(width, int(np.ceil(cx + spec["side"] * fw)))
    y0 = max(0, int(fy0 - spec["above"] * fh))
    y1 = min(height, int(np.ceil(fy1 + spec["below"] * fh)))
    return x0, y0, x1, y1


def _reframed(layout: dict[str, Any], crop: tuple[int, int, int, int], width: int, height: int):
    """``layout`` (normalised to the whole picture) normalised to ``crop`` of it. The hint
    points are kept inside the crop (the background's, at the whole picture's corner, and the
    clothes', below the chin, may lie outside a tight one)."""
    x0, y0, x1, y1 = crop
    cw, ch = x1 - x0, y1 - y0

    def point(p: list[float]) -> list[float]:
        return [round((p[0] * width - x0) / cw, 4), round((p[1] * height - y0) / ch, 4)]

    def box(b: list[float]) -> list[float]:
        return [*point(b[:2]), *point(b[2:])]

    def inside(p: list[float]) -> list[float]:
        return [min(max(v, 0.0), 1.0) for v in point(p)]

    points = {
        name: [inside(p) for p in value] if isinstance(value[0], list) else inside(value)
        for name, value in layout["points"].items()
    }
    return {
        "face": box(layout["face"]),
        "mouth": box(layout["mouth"]),
        "eyes": [box(e) for e in layout["eyes"]],
        "points": points,
    }


def _background_point(alpha: np.ndarray) -> list[float]:
    """A clear pixel of ``alpha`` near the top left (normalised), for the background hint."""
    height, width = alpha.shape
    clear = np.argwhere(alpha[: max(1, height // 2)] == 0)
    if not len(clear):
        return [0.02, 0.02]
    y, x = clear[np.argmin(clear.sum(axis=1))]
    return [round((x + 0.5) / width, 4), round((y + 0.5) / height, 4)]


def make_portrait(
    picture: np.ndarray,
    layout: dict[str, Any],
    *,
    framing: str = "bust",
) -> Portrait:
    """The user's ``picture`` (uint8 RGB or RGBA) as the character: its background made
    transparent (see the module docstring), cut to ``framing`` around the face of ``layout``
    (normalised to the whole picture), with the layout normalised to the cut."""
    height, width = picture.shape[:2]
    if has_transparency(picture):
        rgba, how = picture.copy(), "transparency"
    else:
        rgb = np.ascontiguousarray(picture[..., :3])
        alpha = separate_background(rgb, tuple(layout["face"]))
        how = "flood" if alpha is not None else "none"
        if alpha is None:
            alpha = np.full((height, width), 255, np.uint8)
        rgba = np.dstack([rgb, alpha])
    crop = framing_box(tuple(layout["face"]), width, height, framing)
    x0, y0, x1, y1 = crop
    cut = np.ascontiguousarray(rgba[y0:y1, x0:x1])
    reframed = _reframed(layout, crop, width, height)
    if how != "none":
        reframed["points"]["background"] = _background_point(cut[..., 3])
    return Portrait(cut, reframed, how, crop)


def sampled_colours(rgba: np.ndarray, points: dict[str, Any]) -> dict[str, Any]:
    """face.json's ``colors``: the colour at each hint point (over white where clear)."""
    from acgmake.image.colorize import on_paper
    from acgmake.models.character import color_at

    rgb = np.round(on_paper(rgba)).astype(np.uint8)
    return {
        name: [color_at(rgb, p) for p in value]
        if isinstance(value[0], list)
        else color_at(rgb, value)
        for name, value in points.items()
    }


def picture_record(path: Path, sha256: str, portrait: Portrait, scaled_from: tuple[int, int]):
    """face.json's ``picture``: which file the character is and how it was made ready."""
    return {
        "file": path.name,
        "sha256": sha256,
        "size": list(scaled_from),
        "crop": list(portrait.crop),
        "background": portrait.background,
    }
