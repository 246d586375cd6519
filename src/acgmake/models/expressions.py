"""The expressions strip from latent edits: the same character with its mouth closed, shaped
for a, i, u, e, o, and blinking (``acgmake.image.face.EXPRESSIONS``).

Each expression is drawn from the character's own styles with the mouth and eyes set by the
learned directions (:func:`acgmake.models.directions.set_expression`), then fitted to this
character by a few steps guided by the attribute classifiers (:func:`fit_expressions`). An
edit in W also nudges colours and outlines elsewhere a little, and the animation needs every
frame to be the same character, so only a soft region around the mouth and the eyes (boxes
from face.json, grown and feathered) is taken from the edited picture; the rest of each frame
is character.png itself, pixel for pixel. All mouth frames share the rest frame's eyes, and
the blink shares its mouth.

``--edit`` is shown the same way (:func:`draw_edited`): each edit only inside the soft region
of its face part, the unedited character everywhere else.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from acgmake.image.face import EXPRESSIONS, Face

#: How far the mouth and eye regions reach past their boxes (fraction of the picture side),
#: and the feather width (Gaussian sigma) as a fraction of the same.
GROW, FEATHER = 0.04, 0.015


def part_mask(boxes, width: int, height: int) -> np.ndarray:
    """Float mask H x W: 1 over the normalised ``boxes`` grown by GROW, fading to 0 past them."""
    from scipy.ndimage import gaussian_filter

    mask = np.zeros((height, width), np.float32)
    for x0, y0, x1, y1 in boxes:
        box = (x0 - GROW, y0 - GROW, x1 + GROW, y1 + GROW)
        left, top, right, bottom = Face.pixel_box(box, width, height)
        mask[top:bottom, left:right] = 1
    sigma = FEATHER * max(width, height)
    # Blur, then stretch so the grown boxes stay fully inside (1) and the edge still fades.
    return np.clip(gaussian_filter(mask, sigma) * 2, 0, 1) if sigma > 0 else mask


def face_part_mask(face: Face, part: str, width: int, height: int) -> np.ndarray:
    """:func:`part_mask` of one face part: "mouth" (its box) or "eyes" (both boxes)."""
    return part_mask([face.mouth] if part == "mouth" else face.eyes, width, height)


def edit_mask(face: Face, width: int, height: int) -> np.ndarray:
    """Where an expression may differ from the character: the mouth and eyes regions."""
    return part_mask([face.mouth, *face.eyes], width, height)


def composite(base: np.ndarray, edited: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``edited`` inside ``mask``, ``base`` outside (uint8 RGB, same size)."""
    m = mask[..., None]
    return (base * (1 - m) + edited * m).round().clip(0, 255).astype(np.uint8)


def _resize(picture: np.ndarray, width: int, height: int) -> np.ndarray:
    from PIL import Image

    if picture.shape[1] == width and picture.shape[0] == height:
        return picture
    return np.asarray(Image.fromarray(picture).resize((width, height), Image.LANCZOS))


#: Guided steps that fit each expression to one character (:func:`fit_expressions`), and how
#: much they hold the picture outside the pasted region. Chosen on seeds 0-19 of the shipped
#: model by what the held-out judge classifier reads in the strip; measured on other seeds by
#: benchmarks/steering_report.py (docs/character.md, "Steering").
FIT_STEPS, FIT_KEEP = 40, 0.5
#: A mouth stops being fitted once both guiding classifiers read it with this probability:
#: most are done in 10-25 of the 40 steps, which are the stage's longest part. "e" is the
#: mouth the held-out judge most often reads otherwise, so it must be surer; the blink takes
#: all the steps (stopped early, the judge reads fewer of them closed). On seeds 100-149
#: (benchmarks/steering_report.py) a strip takes 2.45 s of one core instead of 4.03 s, and the
#: judge reads it as well as after all 40 steps (docs/character.md, "Steering").
FIT_SETTLE = {"i": 0.95, "u": 0.95, "e": 0.99, "o": 0.95}
#: The expressions fitted: the directions alone already give the closed mouth and the "a"
#: (98 and 100 %), and the wide "a" they draw is what a song shows most.
FITTED = ("i", "u", "e", "o", "blink")


def fit_expressions(
    generator: Any,
    directions: Any,
    styles: Any,
    face: Face,
    guides: list,
    *,
    steps: int = FIT_STEPS,
    fitted: tuple[str, ...] = FITTED,
) -> Any:
    """One ``w`` per expression (len(EXPRESSIONS) x n_latent x D) for the character
    ``styles`` (n_latent x D): set by the directions, then fitted to this character by
    ``steps`` steps guided by the attribute classifiers ``guides``
    (:func:`acgmake.models.directions.guided_edits`).

    A direction is the mean edit over many characters, and a generator is not linear: for
    one character the mean often stops short (an "i" that still reads as a closed mouth).
    The fit finishes each edit, judged on the frame as the strip shows it (the edited mouth
    or eyes pasted into the character), so it cannot count on changes the strip throws away.
    """
    import torch

    from acgmake.models.directions import expression_latents, guided_edits

    latents = expression_latents(directions, styles, EXPRESSIONS)
    if steps <= 0 or not guides:
        return latents
    size = generator.size
    mouth = torch.from_numpy(face_part_mask(face, "mouth", size, size))
    eyes = torch.from_numpy(face_part_mask(face, "eyes", size, size))
    rows = [EXPRESSIONS.index(name) for name in fitted]
    regions = torch.stack([eyes if name == "blink" else mouth for name in fitted])
    base = styles.expand(len(rows), -1, -1).contiguous()
    edits = guided_edits(
        generator,
        guides,
        base,
        list(fitted),
        regions,
        start=latents[rows] - base,
        paste=True,
        steps=steps,
        keep=FIT_KEEP,
        settle=FIT_SETTLE,
    )
    latents[rows] = base + edits
    return latents


def draw_expressions(
    generator: Any,
    directions: Any,
    styles: Any,
    face: Face | None = None,
    guides: list | None = None,
    steps: int = FIT_STEPS,
    fit_blink: bool = True,
) -> np.ndarray:
    """The raw edited pictures, one per expression (7 x H x W x 3, model resolution).

    With ``face`` and attribute classifiers ``guides``, each expression is fitted to this
    character by ``steps`` steps (:func:`fit_expressions`); without, the directions alone
    set it. ``fit_blink=False`` leaves the blink to the directions alone (a clip that draws
    its own eyelids does not show it; its fit takes every step, a third of the time).
    """
    from acgmake.models.character import draw_latent
    from acgmake.models.directions import expression_latents

    if face is None:
        return draw_latent(generator, expression_latents(directions, styles, EXPRESSIONS))
    fitted = FITTED if fit_blink else tuple(name for name in FITTED if name != "blink")
    latents = fit_expressions(
        generator, directions, styles, face, guides or [], steps=steps, fitted=fitted
    )
    return draw_latent(generator, latents)


def expressions_strip(
    generator: Any,
    directions: Any,
    styles: Any,
    character: np.ndarray,
    face: Face,
    guides: list | None = None,
    steps: int = FIT_STEPS,
    fit_blink: bool = True,
) -> np.ndarray:
    """expressions.png's pixels: the 7 expressions side by side, each the size of
    ``character`` (uint8 RGB H x 7W x 3), equal to ``character`` outside the edit mask.

    Every frame takes its eyes from the rest picture (the blink from the blink picture) and
    its mouth from its own picture (the blink from the rest picture), so the eyes are the
    same in all six mouth frames and the mouth the same in rest and blink. ``guides``,
    ``steps`` and ``fit_blink``: see :func:`draw_expressions`.
    """
    raw = draw_expressions(generator, directions, styles, face, guides, steps, fit_blink)
    return strip_from_pictures(raw, character, face)


def strip_from_pictures(pictures: np.ndarray, character: np.ndarray, face: Face) -> np.ndarray:
    """:func:`expressions_strip` from the raw expression pictures (:func:`draw_expressions`)."""
    height, width = character.shape[:2]
    mouth = face_part_mask(face, "mouth", width, height)
    eyes = face_part_mask(face, "eyes", width, height)
    raw = [_resize(p, width, height) for p in pictures]
    rest, blink = raw[EXPRESSIONS.index("rest")], raw[EXPRESSIONS.index("blink")]
    frames = []
    for name, picture in zip(EXPRESSIONS, raw, strict=True):
        with_eyes = composite(character, blink if name == "blink" else rest, eyes)
        frames.append(composite(with_eyes, rest if name == "blink" else picture, mouth))
    return np.hstack(frames)


def draw_edited(
    generator: Any, directions: Any, styles: Any, edits: dict[str, float], face: Face
) -> np.ndarray:
    """The character ``styles`` (n_latent x D) with ``edits`` (``--edit``: name -> amount),
    uint8 RGB H x W x 3 at the model's size.

    An edit moves the whole latent, and with it hair, collar and colours (``mouth=1`` turns
    many a bob into long hair), so each face part is drawn from the styles moved by its own
    edits only (:func:`acgmake.models.directions.edits_by_part`) and pasted into the
    unedited character inside that part's soft mask (:func:`face_part_mask`), eyes first,
    as the expressions strip is made. Outside the masks the picture is the unedited
    character, pixel for pixel; inside, the edited picture.
    """
    from acgmake.models.character import draw_latent
    from acgmake.models.directions import apply_edits, edits_by_part

    # One picture at a time: a batch computes the last bits differently, and the unedited
    # character must be exactly what the expressions stage draws again from the latent.
    picture = draw_latent(generator, styles[None])[0]
    height, width = picture.shape[:2]
    for part, part_edits in edits_by_part(edits).items():
        edited = draw_latent(generator, apply_edits(directions, styles[None], part_edits))[0]
        picture = composite(picture, edited, face_part_mask(face, part, width, height))
    return picture


def outside_difference(a: np.ndarray, b: np.ndarray, face: Face) -> float:
    """Identity measure: mean absolute difference (0..255) of two pictures outside the edit
    mask (where the mask is below 0.01)."""
    height, width = a.shape[:2]
    outside = edit_mask(face, width, height) < 0.01
    diff = np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(-1)
    return float(diff[outside].mean())
