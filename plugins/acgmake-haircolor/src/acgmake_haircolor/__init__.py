"""acgmake-haircolor: one word recolours the colored character's hair (``--hair silver``),
keeping its shading and its lines, and nothing else.

The hair is where colorize's ``hair`` layer (in ``colored.ora``) is, its small stray islands
(a blush read as hair) left out. In CIELAB each hair pixel keeps its lightness relative to the
hair's mean (the shading and highlights; squeezed where black or white hair leaves it no
room), moved to the target's; its colour goes to the
target's, keeping half its own deviation (the warm-cool play of the shading); the dark lines
(L < 45) fade out of the change. The expressions strip takes its colours from ``colored.png``,
so the mouths and blinks get the new hair too.
"""

from __future__ import annotations

import warnings

from acgmake import Param, Stage, StageContext, UserError, hookimpl

__version__ = "0.1.0"

#: Hair colours by name, as anime characters have them (sRGB).
COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (50, 48, 60),
    "brown": (112, 74, 52),
    "chestnut": (140, 78, 48),
    "blonde": (236, 206, 120),
    "gold": (230, 180, 60),
    "orange": (238, 132, 58),
    "red": (200, 52, 56),
    "pink": (244, 152, 188),
    "purple": (140, 96, 190),
    "lavender": (190, 170, 226),
    "blue": (72, 110, 200),
    "navy": (44, 56, 110),
    "teal": (48, 160, 160),
    "aqua": (120, 210, 230),
    "green": (84, 160, 96),
    "silver": (196, 200, 212),
    "white": (240, 240, 246),
    "grey": (128, 128, 136),
}
#: Lines darker than this (CIELAB L) keep their colour; the change fades in up to _LINE_L_TO.
_LINE_L_FROM, _LINE_L_TO = 30.0, 45.0
#: Islands of the hair layer smaller than this share of its largest part are not hair.
_ISLAND_SHARE = 0.05


def target_colour(name: str) -> tuple[int, int, int]:
    """The sRGB colour of a hair colour's name or ``#rrggbb``; UserError otherwise."""
    word = name.strip().lower()
    if word in COLOURS:
        return COLOURS[word]
    if len(word) == 7 and word.startswith("#"):
        try:
            return tuple(int(word[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
        except ValueError:
            pass
    raise UserError(
        f"--hair {name!r} is not a hair colour; give one of {', '.join(COLOURS)} or #rrggbb"
    )


def hair_mask(hair_layer):
    """0..1 float mask of the hair from colorize's ``hair`` layer (RGBA), without its small
    islands."""
    import cv2
    import numpy as np

    alpha = hair_layer[..., 3].astype(np.float32) / 255.0
    count, labels, stats, _ = cv2.connectedComponentsWithStats((alpha > 0.5).astype(np.uint8), 8)
    if count <= 1:
        return np.zeros_like(alpha)
    areas = stats[1:, cv2.CC_STAT_AREA]
    kept = np.flatnonzero(areas >= _ISLAND_SHARE * areas.max()) + 1
    keep = np.isin(labels, kept).astype(np.uint8)
    keep = cv2.dilate(keep, np.ones((3, 3), np.uint8))  # the soft edge around each part
    return alpha * keep


def recolour(rgba, mask, target: tuple[int, int, int]):
    """``rgba`` (uint8) with the hair under ``mask`` in ``target``'s colour, its shading kept;
    also the hair's new mean colour (sRGB) over its shaded, unlined part."""
    import numpy as np
    from skimage.color import lab2rgb, rgb2lab

    rgb = rgba[..., :3].astype(np.float64) / 255.0
    lab = rgb2lab(rgb)
    want = rgb2lab(np.array([[target]], np.float64) / 255.0)[0, 0]
    lightness = lab[..., 0]
    body = (mask > 0.5) & (lightness > _LINE_L_TO)
    if body.sum() < 20:
        raise UserError("the hair layer holds almost no hair to recolour")
    mean = lab[body].mean(axis=0)
    # The shading about the mean, squeezed where black or white hair leaves it no room, so
    # that it keeps its order instead of clipping flat.
    darkest, lightest = np.percentile(lightness[body], (2, 98))
    below = min(1.0, (want[0] - 2.0) / max(mean[0] - darkest, 1e-6))
    above = min(1.0, (98.0 - want[0]) / max(lightest - mean[0], 1e-6))
    offset = lightness - mean[0]
    new = np.empty_like(lab)
    new[..., 0] = np.clip(
        want[0] + np.where(offset < 0, offset * max(below, 0.0), offset * max(above, 0.0)),
        0.0,
        100.0,
    )
    new[..., 1:] = want[1:] + 0.5 * (lab[..., 1:] - mean[1:])
    line_weight = np.clip((lightness - _LINE_L_FROM) / (_LINE_L_TO - _LINE_L_FROM), 0.0, 1.0)
    weight = (mask * line_weight)[..., None]
    with warnings.catch_warnings():  # colours outside sRGB are brought into it: expected
        warnings.simplefilter("ignore", UserWarning)
        back = lab2rgb(new)
    changed = back * weight + rgb * (1.0 - weight)
    out = rgba.copy()
    out[..., :3] = np.clip(changed * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out


def haircolor(ctx: StageContext) -> None:
    import shutil

    import numpy as np
    from PIL import Image

    from acgmake.image.openraster import read_ora, write_ora

    if not ctx.params["hair"]:  # nothing asked: pass the pictures on as they are
        shutil.copyfile(ctx.input("colored"), ctx.output("colored"))
        shutil.copyfile(ctx.input("layers"), ctx.output("layers"))
        return
    target = target_colour(ctx.params["hair"])
    layers, merged = read_ora(ctx.input("layers"))
    named = dict(layers)
    if "hair" not in named:
        raise UserError(
            "colored.ora has no hair layer (line art coloured from hints has none); "
            "recolour the hair with colour hints instead"
        )
    with Image.open(ctx.input("colored")) as picture:
        colored = np.asarray(picture.convert("RGBA"))
    mask = hair_mask(named["hair"])
    if mask.shape != colored.shape[:2]:
        raise UserError("colored.png and colored.ora are not the same size; colorize again")
    recoloured = recolour(colored, mask, target)
    Image.fromarray(recoloured).save(ctx.output("colored"), format="PNG")
    layers = [
        (name, recolour(image, mask, target) if name == "hair" else image) for name, image in layers
    ]
    write_ora(ctx.output("layers"), layers, recolour(merged, mask, target))
    ctx.log(f"hair recoloured {ctx.params['hair']} ({int((mask > 0.5).sum())} pixels)")


@hookimpl
def register_stages(register):
    register(
        Stage(
            "haircolor",
            cost_s=0.1,
            needs=("colored", "layers"),
            makes=("colored", "layers"),
            run=haircolor,
            version="1",
            params=(
                Param(
                    "hair",
                    "",
                    "Hair colour: " + ", ".join(COLOURS) + ", or #rrggbb; empty = as coloured.",
                ),
            ),
            help="Recolour the colored character's hair with one word, keeping its shading. "
            "Example: acgmake song lyrics.txt --hair silver",
        )
    )
