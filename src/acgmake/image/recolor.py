"""Recolouring a generated character: its own lines and shading kept, the colours changed.

A generated character already is finished art: the network drew its lines, shading and
highlights. Re-extracting lines and flat-filling them (what line art needs) can only make it
worse, so a character with its ``face.json`` is recoloured instead, the way a colour
adjustment layer or a hair-colour transfer does it:

1. The regions (background, hair, eyes, skin, clothes) are found as colorize finds them
   (:func:`acgmake.image.colorize.character_regions`, at the working size) and turned into
   soft masks at the picture's own size.
2. Each region's own colour is its median in CIELAB over its painted (not ink) pixels.
3. Every pixel of a region is moved from that colour to the palette's, keeping its light
   and shadow: lightness through a curve that takes the region's colour to the target and
   keeps black black and white white, the colour (a, b) shifted by the difference, less in
   shadows and highlights. Ink (pixels much darker than their region) keeps its lightness
   and colour, so the lines stay exactly as the network drew them.
4. The background becomes transparent, softly at the outline.

A region whose target is its own colour comes out unchanged: colouring a character with
the colours it has gives back the same picture.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from acgmake.image.colorize import BACKGROUND, LABELS, REGIONS, RGB, character_regions
from acgmake.image.face import Face
from acgmake.image.lineart import WORKING_SIZE_PX

#: Soft mask edges: the Gaussian sigma as a fraction of the working size's pixel, and the
#: background's (its edge is the character's outline, which stays on the character).
FEATHER_PX, OUTLINE_FEATHER_PX = 1.2, 0.8
#: A pixel darker than its surroundings by INK_FULL (CIELAB lightness) is ink, kept as it
#: is; by less than INK_FROM it is paint, recoloured; in between it is blended.
INK_FROM, INK_FULL = 10.0, 30.0
#: ... and ink is dark: about this lightness or below (a shadow band beside a highlight is
#: locally darker too, but lighter than this, and is recoloured with its region).
INK_LIGHTNESS = 35.0
#: Line width of the shipped model's characters, as a fraction of the picture's longer side.
LINE_WIDTH = 1 / 170


def _lab(rgb_uint8: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb_uint8.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def _rgb(lab: np.ndarray) -> np.ndarray:
    rgb = cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_Lab2RGB)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def colour_lab(colour: RGB) -> np.ndarray:
    """CIELAB (L 0..100) of one RGB colour."""
    return _lab(np.asarray(colour, np.uint8).reshape(1, 1, 3))[0, 0]


def region_masks(picture: np.ndarray, face: Face) -> np.ndarray:
    """Soft masks (len(LABELS) x H x W float32, summing to 1) of the regions of the
    character ``picture`` (uint8 RGB), found at the working size and brought to its size."""
    height, width = picture.shape[:2]
    scale = WORKING_SIZE_PX / max(height, width)
    if scale < 1.0:  # find the regions where colorize is tuned: lines about 3 px wide
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        source = cv2.resize(picture, size, interpolation=cv2.INTER_AREA)
    else:
        source = picture
    labels = character_regions(source, face)
    _mend_labels(
        labels, _lab(cv2.resize(source, labels.shape[::-1], interpolation=cv2.INTER_AREA)), face
    )
    one_hot = (labels[None] == np.arange(len(LABELS))[:, None, None]).astype(np.float32)
    pixel = max(height, width) / max(labels.shape)  # picture pixels per label pixel
    masks = []
    for index, layer in enumerate(one_hot):
        layer = cv2.resize(layer, (width, height), interpolation=cv2.INTER_LINEAR)
        feather = OUTLINE_FEATHER_PX if LABELS[index] == BACKGROUND else FEATHER_PX
        masks.append(cv2.GaussianBlur(layer, (0, 0), feather * pixel))
    masks = np.stack(masks)
    return masks / np.maximum(masks.sum(axis=0, keepdims=True), 1e-6)


#: A pixel labelled background whose colour is further than this (CIELAB distance) from
#: the background's own is part of the character (a shoulder the flood took for backdrop).
BACKGROUND_DIFFERENCE = 22.0
#: Paint within this of the backdrop's colour, reached from the top and sides of the picture
#: without crossing a line, is backdrop (a pale backdrop the regions took for skin).
BACKDROP_FLOOD_DIFFERENCE = 7.0
#: ... or within twice that and pale (lighter than this, with less chroma than that).
PALE_LIGHTNESS, PALE_CHROMA = 86.0, 16.0
#: A piece of a region whose colour is further than this from the region's sampled colour,
#: and less than half as far from a neighbouring region's, belongs to that neighbour.
PIECE_DIFFERENCE = 18.0
#: ... a part of a region joined to the rest (:func:`_move_unlike_pieces`) belongs to a
#: touching region whose colour is within PIECE_DIFFERENCE and this much nearer than its own.
NEARER = 0.85


def _mend_labels(labels: np.ndarray, lab: np.ndarray, face: Face) -> None:
    """Mends of the regions found from lines and colour (:func:`character_regions`), at the
    working size, in place; each is a check of a region against the colour it must have."""
    _flood_backdrop(labels, lab, face)
    _claim_unlike_backdrop(labels, lab)
    _move_unlike_pieces(labels, lab, face)
    _no_clothes_above_the_chin(labels, face)
    _find_irises(labels, lab, face)


def _no_clothes_above_the_chin(labels: np.ndarray, face: Face) -> None:
    """Clothes begin below the chin in a bust: what the regions call clothes above it, beside
    the face, is long hair of a colour near the clothes'."""
    height, width = labels.shape
    chin = Face.pixel_box(face.face, width, height)[3]
    above = labels[: max(chin - 1, 0)]
    above[above == LABELS.index("clothes")] = LABELS.index("hair")


def _distance(lab: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """CIELAB distance with lightness at half weight: shading changes lightness most."""
    difference = lab - colour
    return np.sqrt(
        (0.5 * difference[..., 0]) ** 2 + difference[..., 1] ** 2 + difference[..., 2] ** 2
    )


def _flood_backdrop(labels: np.ndarray, lab: np.ndarray, face: Face) -> None:
    """The plain backdrop of a generated picture, found as a flood: paint of the backdrop's
    colour (the median of the top and side edges) that connects to those edges without
    crossing a line. The bottom edge is left out (the neck and clothes reach it), and so is
    the skin in the middle of the face (a pale face is near a pale backdrop's colour)."""
    from scipy import ndimage

    height, width = labels.shape
    x0, y0, x1, y1 = face.face
    inset_x, inset_y = 0.15 * (x1 - x0), 0.15 * (y1 - y0)
    left, top, right, bottom = Face.pixel_box(
        (x0 + inset_x, y0 + inset_y, x1 - inset_x, y1 - inset_y), width, height
    )
    face_skin = np.zeros((height, width), bool)
    face_skin[top:bottom, left:right] = True
    face_skin &= np.isin(labels, [LABELS.index("skin"), LABELS.index("eyes")])
    edge = np.zeros((height, width), bool)
    edge[0, :] = True
    edge[: height * 2 // 3, 0] = edge[: height * 2 // 3, -1] = True
    backdrop = np.median(lab[edge], axis=0)
    paint = paint_amount(lab[..., 0], LINE_WIDTH * max(height, width)) > 0.5
    distance = np.linalg.norm(lab - backdrop, axis=2)
    # The backdrop is pale and nearly grey, with soft blotches of pastel: paler pixels may
    # stray further from its median.
    pale = (lab[..., 0] > PALE_LIGHTNESS) & (np.hypot(lab[..., 1], lab[..., 2]) < PALE_CHROMA)
    like = paint & (
        (distance < BACKDROP_FLOOD_DIFFERENCE)
        | (pale & (distance < 2.2 * BACKDROP_FLOOD_DIFFERENCE))
    )
    like &= ~face_skin
    pieces, _ = ndimage.label(like)
    reached = np.unique(pieces[edge & like])
    flood = np.isin(pieces, reached[reached > 0])
    labels[flood] = LABELS.index(BACKGROUND)


def _claim_unlike_backdrop(labels: np.ndarray, lab: np.ndarray) -> None:
    """Backdrop that does not look like the backdrop goes to the nearest character region."""
    from scipy import ndimage

    background = LABELS.index(BACKGROUND)
    is_background = labels == background
    if not is_background.any() or is_background.all():
        return
    own = np.median(lab[is_background], axis=0)
    unlike = is_background & (np.linalg.norm(lab - own, axis=2) > BACKGROUND_DIFFERENCE)
    # Specks in the backdrop stay backdrop; the outline drawn around the character (a line
    # the flood took for background) joins the character.
    touching = unlike & ndimage.binary_dilation(~is_background, iterations=3)
    unlike = ndimage.binary_opening(unlike, iterations=2) | touching
    if unlike.any():
        _, (rows, cols) = ndimage.distance_transform_edt(is_background, return_indices=True)
        labels[unlike] = labels[rows[unlike], cols[unlike]]


def _sampled(face: Face, region: str) -> np.ndarray | None:
    """The CIELAB colour face.json sampled for ``region``, if it has one."""
    from acgmake.image.colorize import parse_colour

    value = face.colors.get(region)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    try:
        return colour_lab(parse_colour(str(value))) if value else None
    except ValueError:
        return None


def _move_unlike_pieces(labels: np.ndarray, lab: np.ndarray, face: Face) -> None:
    """A piece of hair, skin or clothes whose colour is plainly a neighbouring region's (a
    strand of hair the flood gave to the skin) goes to that neighbour. Then the same for a
    part of a region that the lines leave joined to the rest: paint of the region plainly
    unlike its colour (long hair seen between a user's drawn jaw and the strands beside it,
    which the skin's region took in through a gap where the lines meet)."""
    from scipy import ndimage

    names = ("hair", "skin", "clothes")
    references = {name: _sampled(face, name) for name in names}
    if any(colour is None for colour in references.values()):
        return
    minimum = 0.002 * labels.size
    for name in names:
        pieces, _ = ndimage.label(labels == LABELS.index(name))
        _move_pieces(
            labels, lab, name, pieces, references, minimum, lit_only=True,
            accept=lambda own, other: own >= PIECE_DIFFERENCE and other < 0.5 * own,
        )  # fmt: skip
    paint = paint_amount(lab[..., 0], LINE_WIDTH * max(labels.shape)) > 0.5
    paint &= lab[..., 0] > INK_LIGHTNESS  # the middle of a line thicker than the model's
    for name in names:
        unlike = labels == LABELS.index(name)
        unlike &= paint & (_distance(lab, references[name]) >= PIECE_DIFFERENCE)
        pieces, _ = ndimage.label(unlike)
        _move_pieces(
            labels, lab, name, pieces, references, minimum, lit_only=False,
            accept=lambda own, other: other < min(NEARER * own, PIECE_DIFFERENCE),
        )  # fmt: skip


def _move_pieces(
    labels: np.ndarray,
    lab: np.ndarray,
    name: str,
    pieces: np.ndarray,
    references: dict[str, np.ndarray],
    minimum: float,
    *,
    lit_only: bool,
    accept: Callable[[float, float], bool],
) -> None:
    """Each of ``pieces`` (numbered, all of region ``name``) of at least ``minimum`` pixels
    goes to the touching region whose sampled colour is nearest its own median colour (of
    its lit two thirds with ``lit_only``), when ``accept(distance to its own region's
    colour, distance to that one's)`` says so. ``labels`` is changed in place."""
    from scipy import ndimage

    for number, where in enumerate(ndimage.find_objects(pieces), start=1):
        piece = pieces[where] == number
        if piece.sum() < minimum:
            continue
        colours = lab[where][piece]
        if lit_only:
            colours = colours[colours[:, 0] >= np.percentile(colours[:, 0], 33)]
        colour = np.median(colours, axis=0)
        own = float(_distance(colour, references[name]))
        ring = ndimage.binary_dilation(pieces == number, iterations=3) & (pieces != number)
        near = {LABELS[label] for label in np.unique(labels[ring])} & set(references) - {name}
        options = {other: float(_distance(colour, references[other])) for other in near}
        if options:
            other = min(options, key=options.get)
            if accept(own, options[other]):
                labels[pieces == number] = LABELS.index(other)


def _find_irises(labels: np.ndarray, lab: np.ndarray, face: Face) -> None:
    """Inside each eye box, the pixels nearer the iris's colour than the skin's (and not
    the eye's white) are the eye."""
    background, skin, eyes = (LABELS.index(name) for name in (BACKGROUND, "skin", "eyes"))
    height, width = labels.shape
    skin_lab = np.median(lab[labels == skin], axis=0) if (labels == skin).any() else None
    for box in face.eyes:
        x0, y0, x1, y1 = Face.pixel_box(box, width, height)
        part, colour = labels[y0:y1, x0:x1], lab[y0:y1, x0:x1]
        if part.size == 0 or skin_lab is None:
            continue
        lightness = colour[..., 0]
        iris_lab = np.percentile(colour.reshape(-1, 3), 20, axis=0)  # the eye's dark colours
        nearer = np.linalg.norm(colour - iris_lab, axis=2) < np.linalg.norm(
            colour - skin_lab, axis=2
        )
        white = (lightness > 85) & (np.hypot(colour[..., 1], colour[..., 2]) < 12)
        part[nearer & ~white & (part != background)] = eyes


def own_colours(lab: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Each region's own colour (len(LABELS) x 3, CIELAB): the median over the pixels that
    are mostly that region, leaving out its darkest third (ink and deep shadow)."""
    colours = np.zeros((len(LABELS), 3), np.float32)
    for index, mask in enumerate(masks):
        inside = lab[mask > 0.75]
        if len(inside) == 0:
            colours[index] = (50.0, 0.0, 0.0)
            continue
        lit = inside[inside[:, 0] >= np.percentile(inside[:, 0], 33)]
        colours[index] = np.median(lit, axis=0)
    return colours


def lightness_curve(lightness: np.ndarray, own: float, target: float) -> np.ndarray:
    """``lightness`` (0..100) through the line from (0, 0) to (own, target) to (100, 100):
    the region's own lightness becomes the target's, black and white stay where they are,
    and shading keeps its order."""
    own = float(np.clip(own, 5.0, 99.0))
    target = float(np.clip(target, 0.0, 100.0))
    below = lightness * (target / own)
    above = target + (lightness - own) * (100.0 - target) / (100.0 - own)
    return np.where(lightness <= own, below, above)


def paint_amount(lightness: np.ndarray, line_px: float) -> np.ndarray:
    """How much each pixel is paint (1) rather than ink (0): ink is a dark, thin stroke,
    darker than what surrounds it within about ``line_px`` (a morphological black-hat), so
    shadows stay paint and are recoloured while the lines are kept."""
    size = max(3, int(round(line_px * 2.5)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    darker = cv2.morphologyEx(lightness.astype(np.float32), cv2.MORPH_BLACKHAT, kernel)
    stroke = np.clip((darker - INK_FROM) / (INK_FULL - INK_FROM), 0.0, 1.0)
    dark = np.clip((INK_LIGHTNESS + 10.0 - lightness) / 20.0, 0.0, 1.0)
    return 1.0 - stroke * dark


def _shade(lightness: np.ndarray, colour_lightness: float) -> np.ndarray:
    """How much of a colour's chroma its shade at ``lightness`` keeps: all of it at the
    colour's own lightness, falling to none at black and at white."""
    darker = np.clip(lightness / max(colour_lightness, 1.0), 0.0, 1.0)
    lighter = np.clip((100.0 - lightness) / max(100.0 - colour_lightness, 1.0), 0.0, 1.0)
    return darker * lighter


def recolor_region(
    lab: np.ndarray, own: np.ndarray, target: np.ndarray, paint: np.ndarray
) -> np.ndarray:
    """``lab`` (H x W x 3) as if its region's colour ``own`` were ``target`` (both CIELAB);
    ``paint`` (:func:`paint_amount`) keeps the ink as it is."""
    lightness = lab[..., 0]
    new_lightness = lightness + paint * (lightness_curve(lightness, own[0], target[0]) - lightness)
    # A shade of a colour is that colour with less chroma toward black and toward white:
    # each pixel keeps how it differs from the shade of its region's own colour at its
    # lightness and takes the shade of the target at its new lightness.
    own_shade = _shade(lightness, float(own[0]))[..., None] * own[1:]
    target_shade = _shade(new_lightness, float(target[0]))[..., None] * target[1:]
    recoloured = lab[..., 1:] + (target_shade - own_shade)
    shifted = lab[..., 1:] + paint[..., None] * (recoloured - lab[..., 1:])
    return np.dstack([new_lightness, shifted]).astype(np.float32)


@dataclass
class Recolored:
    """A recoloured character: the picture (RGBA uint8, background clear) and its regions."""

    picture: np.ndarray
    #: The region each pixel belongs to most (indexes into LABELS), for the layers.
    labels: np.ndarray

    def composite(self) -> np.ndarray:
        return self.picture

    def layers(self) -> list[tuple[str, np.ndarray]]:
        """(name, RGBA) bottom first: the whole character, then each region on its own
        (the same pixels, so the stack looks like the character; select one to adjust it)."""
        result = [("character", self.picture)]
        for index, region in enumerate(LABELS):
            if region == BACKGROUND:
                continue
            layer = self.picture.copy()
            layer[self.labels != index, 3] = 0
            result.append((region, layer))
        return result


def hinted_palette(picture: np.ndarray, face: Face, hints) -> dict[str, RGB]:
    """The regions (hair, eyes, skin, clothes) a hints image (:class:`acgmake.image.hints.Hints`
    at the picture's size) paints, and the colour it paints each: a stroke of one colour counts
    for the region most of its pixels lie on. A stroke on the background, and a clear (black)
    one, ask for nothing. What a painter means by a dab of blue on a character's hair: the hair
    in blue, the rest as it was."""
    rgb = np.ascontiguousarray(np.asarray(picture)[..., :3])
    labels = region_masks(rgb, face).argmax(axis=0)
    asked: dict[str, RGB] = {}
    for index, colour in enumerate(hints.colours, start=1):
        if hints.clear[index - 1]:
            continue
        under = labels[hints.seeds == index]
        if not under.size:
            continue
        region = LABELS[int(np.bincount(under, minlength=len(LABELS)).argmax())]
        if region in REGIONS:
            asked[region] = tuple(int(v) for v in colour)
    return asked


def recolor_character(
    picture: np.ndarray, face: Face, palette: Mapping[str, RGB] | None = None
) -> Recolored:
    """The character ``picture`` (uint8 RGB, any size) with each region of ``palette``
    (hair, eyes, skin, clothes) moved to its colour, the rest kept; background clear."""
    from acgmake.image.colorize import edge_specks

    rgb = np.ascontiguousarray(np.asarray(picture)[..., :3])
    masks = region_masks(rgb, face)
    background = LABELS.index(BACKGROUND)
    character = masks[background] < 0.99  # with its soft rim
    specks = edge_specks(character)
    if specks.any():
        from scipy import ndimage

        # and the faint last pixels of that rim, away from the character itself
        body = ndimage.binary_dilation(character & ~specks, iterations=2)
        # a hair tip cut off by the top edge: backdrop, not a floating speck
        specks = ndimage.binary_dilation(specks, iterations=6) & ~body
        masks[:, specks] = 0.0
        masks[background, specks] = 1.0
    lab = _lab(rgb)
    owns = own_colours(lab, masks)
    result = lab.copy()
    paint = paint_amount(lab[..., 0], LINE_WIDTH * max(rgb.shape[:2]))
    for region, colour in (palette or {}).items():
        if region not in REGIONS:
            continue
        index = LABELS.index(region)
        target = colour_lab(colour)
        if np.allclose(target, owns[index], atol=0.05):
            continue
        weight = masks[index][..., None]
        result += weight * (recolor_region(lab, owns[index], target, paint) - lab)
    alpha = 1.0 - masks[background]
    out = np.dstack([_rgb(result), np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)])
    return Recolored(out, masks.argmax(axis=0).astype(np.int32))
