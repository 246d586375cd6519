"""The character's expressions as one sprite whose mouth and eyes change from frame to frame.

The seven expressions (:data:`acgmake.image.face.EXPRESSIONS`: rest, the five vowel mouths,
blink) come either from ``colored_expressions.png`` (the character model's latent edits,
colorized: :func:`split_strip`) or, without it, are drawn over the colored character
(:func:`drawn_expressions`: a mouth per vowel, eyelids for the blink).

:class:`CharacterSprite` keeps the rest expression as the sprite and, for the mouth and for
the eyes, a small patch per expression: the expression inside a soft-edged region, the rest
expression outside it. Everything outside the patches is the rest picture in every frame, so
the small differences a latent edit makes elsewhere (a strand of hair) never flicker; inside,
the mouth cross-fades between shapes as the lip sync mixes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from acgmake.image.face import EXPRESSIONS, Face, split_expressions
from acgmake.video.layers import Layer, premultiply, unpremultiply
from acgmake.video.lipsync import drawn_shape

#: The mouth shapes among the expressions (rest and the five vowels), in strip order.
MOUTHS = EXPRESSIONS[:6]
BLINK = EXPRESSIONS.index("blink")


def split_strip(strip: np.ndarray) -> list[np.ndarray]:
    """The seven RGBA images of an expressions strip (side by side, each the same width).

    Raises UserError when the strip cannot hold seven equal images.
    """
    if strip.ndim == 2:
        strip = cv2.cvtColor(strip, cv2.COLOR_GRAY2RGBA)
    elif strip.shape[2] == 3:
        strip = np.dstack([strip, np.full(strip.shape[:2], 255, np.uint8)])
    return split_expressions(strip)


@dataclass(frozen=True)
class MouthDrawing:
    """How a drawn mouth looks: half its width and how far it opens (of the mouth box), and
    how round it is (0 a flat upper lip, 1 an O)."""

    half_width: float
    opening: float
    roundness: float


#: The drawn mouth for each vowel (the fallback when there are no expressions from the model).
MOUTH_DRAWINGS = {
    "a": MouthDrawing(0.38, 1.0, 0.25),
    "i": MouthDrawing(0.42, 0.34, 0.0),
    "u": MouthDrawing(0.19, 0.42, 1.0),
    "e": MouthDrawing(0.36, 0.62, 0.1),
    "o": MouthDrawing(0.25, 0.8, 0.9),
}


@dataclass(frozen=True)
class Ink:
    """Colours of the drawn mouth and eyelids."""

    mouth: tuple[int, int, int] = (122, 38, 52)
    tongue: tuple[int, int, int] = (226, 112, 124)
    line: tuple[int, int, int] = (70, 24, 32)


def scale_rgba(rgba: np.ndarray, width: int, height: int) -> np.ndarray:
    """Straight RGBA ``rgba`` resized to ``width`` x ``height`` (through premultiplied colour,
    so the transparent background does not tint the edges)."""
    if rgba.shape[1] == width and rgba.shape[0] == height:
        return rgba.copy()
    shrinking = width < rgba.shape[1]
    method = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return unpremultiply(cv2.resize(premultiply(rgba), (width, height), interpolation=method))


def picture_ink(rgba: np.ndarray, face: Face) -> Ink:
    """The drawn mouth's and eyelids' colours for a picture of the user's: the lines in the
    colour of its own darkest strokes in the face, the mouth a dark red toned by them, the
    tongue a pink toned by the skin."""
    height, width = rgba.shape[:2]
    x0, y0, x1, y1 = Face.pixel_box(face.face, width, height)
    pixels = rgba[y0:y1, x0:x1].reshape(-1, 4)
    pixels = pixels[pixels[:, 3] > 250, :3].astype(np.float32)
    if len(pixels) < 16:
        return Ink()
    brightness = pixels.sum(axis=1)
    line = np.median(pixels[brightness <= np.quantile(brightness, 0.04)], axis=0)
    skin = np.median(pixels[brightness >= np.quantile(brightness, 0.5)], axis=0)

    def mix(a, b, t: float) -> tuple[int, int, int]:
        return tuple(int(round(v)) for v in np.asarray(a) * (1 - t) + np.asarray(b) * t)

    default = Ink()
    return Ink(
        mouth=mix(default.mouth, line, 0.35),
        tongue=mix(default.tongue, skin, 0.3),
        line=mix(default.line, line, 0.8),
    )


def _window(rgba: np.ndarray, box: tuple[int, int, int, int], grow: tuple[float, float, float]):
    """The part of ``rgba`` around ``box`` grown by ``grow`` (sideways, up, down) times its
    size: (window view, its top-left corner, the box in its coordinates)."""
    x0, y0, x1, y1 = box
    box_w, box_h = x1 - x0, y1 - y0
    height, width = rgba.shape[:2]
    side, up, down = grow
    wx0, wx1 = max(int(x0 - box_w * side), 0), min(int(x1 + box_w * side), width)
    wy0, wy1 = max(int(y0 - box_h * up), 0), min(int(y1 + box_h * down), height)
    return rgba[wy0:wy1, wx0:wx1], (wx0, wy0), (x0 - wx0, y0 - wy0, x1 - wx0, y1 - wy0)


def _inside(parts: np.ndarray, count: int) -> np.ndarray:
    """Per label of ``parts``: whether it stays clear of the window's edge."""
    edge = np.zeros(count, bool)
    for border in (parts[0], parts[-1], parts[:, 0], parts[:, -1]):
        edge[border] = True
    return ~edge


def _paint_out(window: np.ndarray, mask: np.ndarray, reach: float) -> None:
    """Fill ``mask`` of the straight RGBA ``window`` (a view) from the colours around it
    (inpainting), in place."""
    if not mask.any():
        return
    rgb = np.ascontiguousarray(window[..., :3])
    filled = cv2.inpaint(rgb, mask.astype(np.uint8) * 255, max(3.0, reach), cv2.INPAINT_TELEA)
    window[..., :3] = np.where(mask[..., None], filled, rgb)


def erase_mouth(rgba: np.ndarray, mouth: tuple[int, int, int, int]) -> None:
    """Paint the picture's own mouth out of straight RGBA ``rgba``, in place: the strokes
    around the ``mouth`` box that differ from the skin there and stand free of the face's
    outline are filled from the skin around them (inpainting), so the drawn mouths are the
    only ones. A mouth drawn larger than the box is still caught whole."""
    window, _, box = _window(rgba, mouth, (0.8, 0.8, 1.0))
    if window.shape[0] < 3 or window.shape[1] < 3:
        return
    skin = _skin_above_mouth(window, box)
    if skin is None:
        return
    lab = cv2.cvtColor(window[..., :3].astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    skin_lab = cv2.cvtColor(skin.reshape(1, 1, 3).astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    unlike = (np.linalg.norm(lab - skin_lab, axis=2) > 12.0) & (window[..., 3] > 200)
    count, parts = cv2.connectedComponents(unlike.astype(np.uint8), connectivity=8)
    x0, y0, x1, y1 = box
    touching = np.unique(parts[y0:y1, x0:x1])
    keep = np.zeros(count, bool)
    keep[touching] = True
    keep &= _inside(parts, count)
    keep[0] = False
    mask = keep[parts]
    if mask.any():
        grown = cv2.dilate(mask.astype(np.uint8), _disk(max(1.0, (y1 - y0) * 0.08))) > 0
        _paint_out(window, grown, (y1 - y0) * 0.25)


def eye_shape(rgba: np.ndarray, eye: tuple[int, int, int, int]):
    """Where a picture's own eye is drawn, around its ``eye`` box of straight RGBA ``rgba``:
    (mask over the window, the window view), or None when the eye has no closed outline.

    An anime eye is outlined: the light areas the lines enclose (white, iris, highlights)
    that reach into the box, filled and grown by the outline's width, are the eye. Bangs and
    skin reach the window's edge and are left out, however close the eye is drawn to them."""
    window, _, box = _window(rgba, eye, (0.45, 0.35, 0.45))
    if window.shape[0] < 5 or window.shape[1] < 5:
        return None
    lightness = cv2.cvtColor(window[..., :3], cv2.COLOR_RGB2Lab)[..., 0].astype(np.float32)
    dark = (lightness < 0.5 * np.percentile(lightness, 90)) | (window[..., 3] < 128)
    count, parts = cv2.connectedComponents((~dark).astype(np.uint8), connectivity=4)
    x0, y0, x1, y1 = box
    keep = np.zeros(count, bool)
    keep[np.unique(parts[y0:y1, x0:x1])] = True
    keep &= _inside(parts, count)
    keep[0] = False
    enclosed = keep[parts]
    if enclosed.sum() < 0.15 * (x1 - x0) * (y1 - y0):
        return None
    filled = ndimage_fill(enclosed)
    line = max(2.0, (y1 - y0) * 0.12)
    return cv2.dilate(filled.astype(np.uint8), _disk(line)) > 0, window


def ndimage_fill(mask: np.ndarray) -> np.ndarray:
    """``mask`` with its holes filled (the pupil inside the iris)."""
    from scipy import ndimage

    return ndimage.binary_fill_holes(mask)


def _own_eyelid(sprite: np.ndarray, eye: tuple[int, int, int, int], ink: Ink, half: bool) -> bool:
    """The drawn eyelid on a picture of the user's, in place: its eye (:func:`eye_shape`, all
    of it, however much larger than its box it is drawn) painted out from the skin around it
    (the upper half for a ``half`` closed one) and the lid's lash line drawn across it.
    False, changing nothing, when the eye has no closed outline to find it by."""
    found = eye_shape(sprite, eye)
    if found is None:
        return False
    mask, window = found
    rows, cols = np.nonzero(mask)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    middle = (top + bottom) / 2
    if half:
        mask = mask.copy()
        mask[int(np.ceil(middle)) :] = False
    # The lid is the skin below the eye, flat: inpainting would also draw in the bangs above.
    skin = _skin_around(window, (left, bottom, right, min(bottom + (bottom - top) // 2, len(mask))))
    if skin is None:
        return False
    weight = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 0.8)[..., None]
    weight = np.maximum(weight, mask[..., None])
    blended = window[..., :3] * (1 - weight) + skin * weight
    window[..., :3] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    scale = 8
    span, tall = right - left, bottom - top
    patch = np.ascontiguousarray(window)
    if half:
        centre = (round((left + right) / 2 * scale), round(middle * scale))
        axes = (round(span * 0.48 * scale), round(tall * 0.1 * scale))
        angles = (180, 360)
    else:
        centre = (round((left + right) / 2 * scale), round((middle + tall * 0.05) * scale))
        axes = (round(span * 0.45 * scale), round(tall * 0.18 * scale))
        angles = (0, 180)
    thickness = max(1, round(tall * 0.08))
    cv2.ellipse(patch, centre, axes, 0, *angles, (*ink.line, 255), thickness, cv2.LINE_AA, 3)
    window[...] = patch
    return True


def _disk(radius: float) -> np.ndarray:
    size = 2 * max(1, round(radius)) + 1
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def drawn_expressions(colored: np.ndarray, face: Face, ink: Ink | None = None) -> list[np.ndarray]:
    """The seven expressions drawn over straight RGBA ``colored``: its own mouth covered with
    skin (painted out first for a picture of the user's, :func:`erase_mouth`), then a closed
    mouth (rest), a mouth per vowel, and closed eyelids (blink)."""
    ink = ink or Ink()
    height, width = colored.shape[:2]
    mouth = Face.pixel_box(face.mouth, width, height)
    if face.picture is not None:
        colored = colored.copy()
        erase_mouth(colored, mouth)
    images = []
    for name in EXPRESSIONS:
        image = colored.copy()
        draw_mouth(image, mouth, MOUTH_DRAWINGS.get(name), ink)
        images.append(drawn_blink(image, face, ink) if name == "blink" else image)
    return images


def drawn_blink(rest: np.ndarray, face: Face, ink: Ink | None = None) -> np.ndarray:
    """Straight RGBA ``rest`` with closed eyelids drawn over its eyes."""
    return _each_eye(rest, face, draw_closed_eye, ink)


def _each_eye(rest: np.ndarray, face: Face, draw, ink: Ink | None) -> np.ndarray:
    """A copy of straight RGBA ``rest`` with ``draw(picture, eye box, ink)`` on each eye; on
    a picture of the user's, whose eyes may be drawn larger than their boxes, the eye itself
    is painted out under the lid (:func:`_own_eyelid`)."""
    image = rest.copy()
    height, width = image.shape[:2]
    for eye in face.eyes:
        box = Face.pixel_box(eye, width, height)
        half = draw is draw_half_closed_eye
        if face.picture is None or not _own_eyelid(image, box, ink or Ink(), half=half):
            draw(image, box, ink or Ink())
    return image


def drawn_half_blink(rest: np.ndarray, face: Face, ink: Ink | None = None) -> np.ndarray:
    """Straight RGBA ``rest`` with its eyes half closed: the upper lids drawn down to the
    middle of the eyes (the in-between drawing of a blink, as limited animation has it)."""
    return _each_eye(rest, face, draw_half_closed_eye, ink)


def _skin_above_mouth(sprite: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray | None:
    """The skin colour of the face just above the mouth ``box`` (the cheeks and the lip
    above it): below a mouth drawn near the chin there may be more hair or clothes than skin."""
    x0, y0, x1, y1 = box
    return _skin_around(sprite, (x0, max(y0 - (y1 - y0), 0), x1, y0))


def _skin_around(sprite: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray | None:
    """The median colour of the opaque, light pixels around ``box`` (the skin there)."""
    x0, y0, x1, y1 = box
    pad_x, pad_y = (x1 - x0) // 2 + 2, (y1 - y0) // 2 + 2
    around = sprite[max(y0 - pad_y, 0) : y1 + pad_y, max(x0 - pad_x, 0) : x1 + pad_x]
    pixels = around.reshape(-1, 4)
    pixels = pixels[pixels[:, 3] > 250, :3]
    if not len(pixels):
        return None
    light = pixels[pixels.sum(axis=1) >= np.median(pixels.sum(axis=1))]
    return np.median(light, axis=0)


def _cover(
    sprite: np.ndarray, box: tuple[int, int, int, int], colour: np.ndarray, grow: float
) -> None:
    """Paint a soft ellipse of ``colour`` over ``box`` (``grow`` times its size), in place."""
    x0, y0, x1, y1 = box
    patch = np.zeros(sprite.shape[:2], np.float32)
    centre = (int((x0 + x1) / 2), int((y0 + y1) / 2))
    axes = (max(1, int((x1 - x0) * grow / 2)), max(1, int((y1 - y0) * grow / 2)))
    cv2.ellipse(patch, centre, axes, 0, 0, 360, 1.0, cv2.FILLED, cv2.LINE_AA)
    patch = cv2.GaussianBlur(patch, (0, 0), max((y1 - y0) * 0.08, 0.8))[..., None]
    blended = sprite[..., :3] * (1 - patch) + colour * patch
    sprite[..., :3] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def _around(sprite: np.ndarray, box: tuple[int, int, int, int], below: float):
    """A contiguous copy of the patch around ``box`` (cv2 draws only into contiguous arrays),
    the box in its coordinates, and a function that puts the patch back."""
    x0, y0, x1, y1 = box
    box_w, box_h = x1 - x0, y1 - y0
    left, right = max(x0 - box_w, 0), min(x1 + box_w, sprite.shape[1])
    top, bottom = max(y0 - box_h, 0), min(y1 + int(below * box_h), sprite.shape[0])
    patch = np.ascontiguousarray(sprite[top:bottom, left:right])

    def put_back() -> None:
        sprite[top:bottom, left:right] = patch

    return patch, (x0 - left, y0 - top, x1 - left, y1 - top), put_back


def draw_mouth(
    sprite: np.ndarray,
    mouth: tuple[int, int, int, int],
    shape: MouthDrawing | None,
    ink: Ink | None = None,
) -> None:
    """Draw a mouth over the ``mouth`` box of straight RGBA ``sprite``, in place: closed (a
    short smile) when ``shape`` is None, else open as ``shape`` says.

    The character's own mouth is first covered with the skin colour around the box, so the
    drawn mouth is the only one.
    """
    ink = ink or Ink()
    patch, box, put_back = _around(sprite, mouth, below=2.0)
    x0, y0, x1, y1 = box
    box_w, box_h = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    skin = _skin_above_mouth(patch, box)
    if skin is not None:
        _cover(patch, box, skin, 1.2)
    scale = 8  # cv2 draws with sub-pixel precision in 1/8 pixel units (shift=3)

    def at(x: float, y: float) -> tuple[int, int]:
        return int(round(x * scale)), int(round(y * scale))

    line_px = max(1, round(box_h * 0.09))
    lip = (*ink.line, 255)
    if shape is None:
        centre, axes = at(cx, cy - box_h * 0.15), at(box_w * 0.3, box_h * 0.22)
        cv2.ellipse(patch, centre, axes, 0, 20, 160, lip, line_px, cv2.LINE_AA, 3)
        put_back()
        return
    # Open: an upper lip (flat, or arched for a round mouth) and a round lower one; a tongue
    # in the bottom of it.
    half_w = box_w * shape.half_width
    bottom = box_h * (0.75 * shape.opening + 0.08)
    top = box_h * 0.12 * shape.opening + bottom * 0.7 * shape.roundness
    middle = cy - top * 0.2
    upper = cv2.ellipse2Poly(at(cx, middle), at(half_w, top), 0, 180, 360, 10)
    lower = cv2.ellipse2Poly(at(cx, middle), at(half_w, bottom), 0, 0, 180, 10)
    outline = np.vstack([upper, lower])
    cv2.fillPoly(patch, [outline], (*ink.mouth, 255), cv2.LINE_AA, 3)
    inside = np.zeros(patch.shape[:2], np.uint8)
    cv2.fillPoly(inside, [outline], 255, cv2.LINE_AA, 3)
    tongue = np.zeros_like(inside)
    centre, axes = at(cx, middle + bottom * 0.95), at(half_w * 0.7, bottom * 0.55)
    cv2.ellipse(tongue, centre, axes, 0, 0, 360, 255, cv2.FILLED, cv2.LINE_AA, 3)
    weight = (np.minimum(inside, tongue).astype(np.float32) / 255.0)[..., None]
    patch[..., :3] = np.clip(
        patch[..., :3] * (1 - weight) + np.asarray(ink.tongue) * weight + 0.5, 0, 255
    ).astype(np.uint8)
    cv2.polylines(patch, [outline], True, lip, line_px, cv2.LINE_AA, 3)
    put_back()


def draw_closed_eye(sprite: np.ndarray, eye: tuple[int, int, int, int], ink: Ink) -> None:
    """Cover the ``eye`` box of straight RGBA ``sprite`` with skin and draw a closed eyelid
    (a curved lash line), in place."""
    patch, box, put_back = _around(sprite, eye, below=1.0)
    x0, y0, x1, y1 = box
    skin = _skin_around(patch, (x0, y1, x1, y1 + (y1 - y0) // 2))
    if skin is None:
        return
    _cover(patch, box, skin, 1.4)
    scale = 8
    width = max(1, round((y1 - y0) * 0.1))
    centre = (round((x0 + x1) / 2 * scale), round((y0 + (y1 - y0) * 0.55) * scale))
    axes = (round((x1 - x0) * 0.5 * scale), round((y1 - y0) * 0.22 * scale))
    cv2.ellipse(patch, centre, axes, 0, 0, 180, (*ink.line, 255), width, cv2.LINE_AA, 3)
    put_back()


def draw_half_closed_eye(sprite: np.ndarray, eye: tuple[int, int, int, int], ink: Ink) -> None:
    """Cover the upper half of the ``eye`` box of straight RGBA ``sprite`` with skin and draw
    the upper lid's edge across its middle, in place: the open eye below it stays as drawn."""
    patch, box, put_back = _around(sprite, eye, below=1.0)
    x0, y0, x1, y1 = box
    skin = _skin_around(patch, (x0, y1, x1, y1 + (y1 - y0) // 2))
    if skin is None:
        return
    cut = y0 + (y1 - y0) * 0.5
    # The skin of the lid: the eye's ellipse (a little larger), above the cut.
    lid = np.zeros(patch.shape[:2], np.float32)
    centre = (int((x0 + x1) / 2), int((y0 + y1) / 2))
    axes = (max(1, int((x1 - x0) * 0.6)), max(1, int((y1 - y0) * 0.7)))
    cv2.ellipse(lid, centre, axes, 0, 0, 360, 1.0, cv2.FILLED, cv2.LINE_AA)
    lid[int(np.ceil(cut)) :] = 0.0
    lid = cv2.GaussianBlur(lid, (0, 0), max((y1 - y0) * 0.05, 0.6))[..., None]
    blended = patch[..., :3] * (1 - lid) + skin * lid
    patch[..., :3] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    # The lid's edge with its lashes: a shallow arc along the cut, as thick as the closed lid's.
    scale = 8
    width = max(1, round((y1 - y0) * 0.12))
    arc = (round((x0 + x1) / 2 * scale), round((cut + (y1 - y0) * 0.08) * scale))
    arc_axes = (round((x1 - x0) * 0.52 * scale), round((y1 - y0) * 0.12 * scale))
    cv2.ellipse(patch, arc, arc_axes, 0, 180, 360, (*ink.line, 255), width, cv2.LINE_AA, 3)
    put_back()


@dataclass(frozen=True)
class _Patches:
    """One region of the sprite and each expression's pixels there, premultiplied RGBA
    float32 (count, height, width, 4), blended into the rest expression at the edges."""

    top: int
    left: int
    pixels: np.ndarray


class CharacterSprite:
    """The character in its expressions, composed for a frame into one reused layer.

    ``images`` are the seven expressions (straight RGBA, one size, in
    :data:`~acgmake.image.face.EXPRESSIONS` order); ``face`` says where the mouth and eyes
    are. The sprite is cropped to where any expression is opaque (``offset`` is where the
    crop starts in the full picture, ``size`` the full picture's size, ``visible`` the crop
    normalised to it, 0..1).
    """

    def __init__(
        self, images: Sequence[np.ndarray], face: Face, half_blink: np.ndarray | None = None
    ) -> None:
        if len(images) != len(EXPRESSIONS):
            raise ValueError(f"expected {len(EXPRESSIONS)} expressions, got {len(images)}")
        height, width = images[0].shape[:2]
        self.size = (width, height)
        opaque = np.zeros((height, width), bool)
        for image in images:
            opaque |= image[..., 3] > 0
        rows, columns = np.nonzero(opaque)
        if len(rows) == 0:
            rows, columns = np.array([0, height - 1]), np.array([0, width - 1])
        top, bottom = int(rows.min()), int(rows.max()) + 1
        left, right = int(columns.min()), int(columns.max()) + 1
        self.offset = (left, top)
        self.face = face
        #: The middle of the face, normalised (0..1) in the full picture.
        self.face_centre = ((face.face[0] + face.face[2]) / 2, (face.face[1] + face.face[3]) / 2)
        #: The mouth's box (face.json's) in the cropped sprite: (x0, y0, x1, y1) pixels.
        x0, y0, x1, y1 = Face.pixel_box(face.mouth, width, height)
        self.mouth_box = (x0 - left, y0 - top, x1 - left, y1 - top)
        crop = [
            premultiply(np.ascontiguousarray(image[top:bottom, left:right])) for image in images
        ]
        if half_blink is not None:  # the in-between drawing, after the expressions
            crop.append(premultiply(np.ascontiguousarray(half_blink[top:bottom, left:right])))
        self.rest = Layer.from_rgba(crop[0], premultiplied=True)
        self.layer = Layer(self.rest.colour.copy(), self.rest.clear.copy())
        mouth_box, eye_box = self._regions(face, crop[0].shape[1], crop[0].shape[0])
        self.mouth = _patches(crop, range(len(MOUTHS)), mouth_box)
        #: With an in-between drawing the eyes snap open, half closed, closed (as limited
        #: animation draws a blink); without, the closed eyes fade in and out.
        self.half_blink = half_blink is not None
        eyes = (0, len(crop) - 1, BLINK) if self.half_blink else (0, BLINK)
        self.eyes = _patches(crop, eyes, eye_box)
        self._shown: tuple[bytes, float] | None = None

    @property
    def visible(self) -> tuple[float, float, float, float]:
        """The cropped sprite's box in the full picture, normalised (x0, y0, x1, y1)."""
        (left, top), (width, height) = self.offset, self.size
        right, bottom = left + self.rest.width, top + self.rest.height
        return left / width, top / height, right / width, bottom / height

    def _regions(self, face: Face, width: int, height: int):
        """(x0, y0, x1, y1) of the mouth's and the eyes' regions in the cropped sprite."""
        full_w, full_h = self.size
        left, top = self.offset

        def box(normalised) -> tuple[int, int, int, int]:
            x0, y0, x1, y1 = Face.pixel_box(normalised, full_w, full_h)
            return x0 - left, y0 - top, x1 - left, y1 - top

        mx0, my0, mx1, my1 = box(face.mouth)
        mouth_w, mouth_h = mx1 - mx0, my1 - my0
        eyes = [box(eye) for eye in face.eyes]
        eye_bottom = max((eye[3] for eye in eyes), default=my0 - mouth_h)
        # Room for the widest and the lowest mouth, never up into the eyes.
        mouth = (
            mx0 - mouth_w,
            max(my0 - mouth_h, (eye_bottom + my0) // 2),
            mx1 + mouth_w,
            my1 + 2 * mouth_h,
        )
        if eyes:
            ex0 = min(eye[0] for eye in eyes)
            ey0 = min(eye[1] for eye in eyes)
            ex1 = max(eye[2] for eye in eyes)
            eye_w = ex1 - ex0
            eye_h = eye_bottom - ey0
            eye_region = (
                ex0 - int(0.15 * eye_w),
                ey0 - int(0.5 * eye_h),
                ex1 + int(0.15 * eye_w),
                min(eye_bottom + int(0.4 * eye_h), mouth[1]),
            )
        else:
            eye_region = (0, 0, 1, 1)

        def clip(region):
            x0, y0, x1, y1 = region
            x0, y0 = min(max(x0, 0), width - 1), min(max(y0, 0), height - 1)
            return x0, y0, min(max(x1, x0 + 1), width), min(max(y1, y0 + 1), height)

        return clip(mouth), clip(eye_region)

    def compose(self, mouth: np.ndarray, blink: float) -> Layer:
        """The sprite with ``mouth`` (weights of the six mouth shapes, shown as the one drawing
        :func:`acgmake.video.lipsync.drawn_shape` picks) and eyes ``blink`` closed (0 open .. 1
        closed): the same :class:`Layer` object every call."""
        weights = drawn_shape(mouth)
        key = (weights.tobytes(), round(float(blink), 3))
        if key == self._shown:
            return self.layer  # a held vowel: nothing changed since the last frame
        self._shown = key
        self._put(self.mouth, weights)
        if self.half_blink:
            shown = 0 if blink < 0.25 else 1 if blink < 0.75 else 2
            self._put(self.eyes, np.eye(3, dtype=np.float32)[shown])
        else:
            self._put(self.eyes, np.array([1.0 - blink, blink], np.float32))
        return self.layer

    def _put(self, patches: _Patches, weights: np.ndarray) -> None:
        used = np.flatnonzero(weights > 1e-3)
        if used.size == 0:
            used = np.array([0])
        mixed = patches.pixels[used[0]] * (weights[used[0]] / weights[used].sum())
        for index in used[1:]:
            mixed += patches.pixels[index] * (weights[index] / weights[used].sum())
        rgba = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
        height, width = rgba.shape[:2]
        area = (
            slice(patches.top, patches.top + height),
            slice(patches.left, patches.left + width),
        )
        self.layer.colour[area] = rgba[..., :3]
        self.layer.clear[area] = (255 - rgba[..., 3])[..., None]


def _patches(crop: list[np.ndarray], which: Sequence[int], region) -> _Patches:
    """Each of the expressions ``which`` inside ``region``, faded into the rest expression
    over a soft edge, as premultiplied float32 RGBA."""
    x0, y0, x1, y1 = region
    rest = crop[0][y0:y1, x0:x1].astype(np.float32)
    height, width = rest.shape[:2]
    # 1 in the middle of the region, falling to 0 at its edges: no seam where it meets the rest.
    feather = max(2.0, 0.12 * min(height, width))
    ys = np.minimum(np.arange(height) + 0.5, height - np.arange(height) - 0.5) / feather
    xs = np.minimum(np.arange(width) + 0.5, width - np.arange(width) - 0.5) / feather
    ramp = np.minimum(np.clip(ys, 0, 1)[:, None], np.clip(xs, 0, 1)[None, :])
    mask = (ramp * ramp * (3 - 2 * ramp))[..., None].astype(np.float32)
    pixels = np.stack(
        [crop[i][y0:y1, x0:x1].astype(np.float32) * mask + rest * (1 - mask) for i in which]
    )
    return _Patches(y0, x0, pixels)
