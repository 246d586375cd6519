"""Draw ``examples/oc.png``: an original character in a style of its own, to try
``acgmake song examples/kaeru.txt --character examples/oc.png``.

Nothing of acgmake's drawn set is used: other proportions (a rounder face, larger eyes set
lower, a small chin), thick brush outlines, twin buns, cel shading and a full body in a dress,
on a patterned backdrop. Run it again to draw the same picture:

    python examples/oc.py examples/oc.png
"""

from __future__ import annotations

import math
import sys

from PIL import Image, ImageDraw, ImageFilter

SCALE = 2  # drawn at twice the size, then reduced: smooth edges
WIDTH, HEIGHT = 900, 1400
LINE = (58, 40, 70)
SKIN, SKIN_SHADE = (255, 232, 220), (244, 200, 190)
HAIR, HAIR_SHADE, HAIR_LIGHT = (120, 86, 190), (84, 58, 150), (170, 140, 230)
EYE, EYE_DARK = (230, 120, 60), (150, 60, 30)
DRESS, DRESS_SHADE = (110, 190, 180), (70, 150, 145)


def s(*values: float) -> list[float]:
    return [v * SCALE for v in values]


def main(path: str) -> None:
    image = Image.new("RGB", (WIDTH * SCALE, HEIGHT * SCALE), (252, 246, 232))
    d = ImageDraw.Draw(image)
    w = 7 * SCALE  # outline width
    # The backdrop: soft diagonal stripes and dots.
    for k in range(-HEIGHT, WIDTH, 90):
        d.line(s(k, 0, k + HEIGHT, HEIGHT), fill=(246, 232, 214), width=30 * SCALE)
    for x in range(60, WIDTH, 160):
        for y in range(80, HEIGHT, 180):
            d.ellipse(s(x - 10, y - 10, x + 10, y + 10), fill=(240, 214, 200))
    # Twin buns and the back hair.
    for cx in (250, 650):
        d.ellipse(s(cx - 95, 140, cx + 95, 330), fill=HAIR, outline=LINE, width=w)
    d.rounded_rectangle(s(215, 300, 685, 760), 120 * SCALE, fill=HAIR_SHADE, outline=LINE, width=w)
    # The body: neck, a dress with a collar, arms.
    d.rectangle(s(410, 600, 490, 700), fill=SKIN_SHADE, outline=LINE, width=w)
    d.polygon(s(300, 690, 600, 690, 760, 1400, 140, 1400), fill=DRESS, outline=LINE, width=w)
    d.polygon(s(450, 700, 600, 690, 760, 1400, 520, 1400), fill=DRESS_SHADE)
    d.line(s(450, 700, 450, 1400), fill=LINE, width=w // 2)
    d.polygon(s(330, 690, 450, 770, 570, 690), fill=(250, 250, 250), outline=LINE, width=w)
    d.ellipse(s(430, 735, 470, 775), fill=(230, 80, 110), outline=LINE, width=w // 2)
    for x0, x1 in ((235, 300), (600, 665)):
        sleeve = s(x0, 740, x1, 700, x1 + 25, 1060, x0 - 5, 1080)
        d.polygon(sleeve, fill=DRESS, outline=LINE, width=w)
        d.ellipse(s(x0 - 8, 1050, x0 + 62, 1120), fill=SKIN, outline=LINE, width=w)
    # The face: round, a small pointed chin.
    outline = [
        (450 + 200 * math.cos(math.radians(t)), 450 + 190 * math.sin(math.radians(t)))
        for t in range(150, 391, 4)
    ] + [(450, 668)]
    d.polygon(s(*(v for point in outline for v in point)), fill=SKIN, outline=LINE, width=w)
    # Bangs: a row of rounded locks with a highlight band.
    d.chord(s(230, 190, 670, 520), 180, 360, fill=HAIR, outline=LINE, width=w)
    for x in range(260, 660, 70):
        d.pieslice(s(x - 20, 300, x + 70, 450), 0, 180, fill=HAIR, outline=LINE, width=w)
        d.rectangle(s(x - 14, 300, x + 64, 372), fill=HAIR)
    d.arc(s(300, 250, 600, 330), 200, 340, fill=HAIR_LIGHT, width=14 * SCALE)
    # Eyes: tall ovals, set low, with two highlights each.
    for cx in (365, 535):
        d.ellipse(s(cx - 48, 440, cx + 48, 560), fill=(255, 255, 255), outline=LINE, width=w)
        d.ellipse(s(cx - 36, 458, cx + 36, 556), fill=EYE)
        d.ellipse(s(cx - 36, 458, cx + 36, 500), fill=EYE_DARK)
        d.ellipse(s(cx - 16, 488, cx + 16, 532), fill=(40, 20, 30))
        d.ellipse(s(cx - 26, 468, cx - 6, 490), fill=(255, 255, 255))
        d.ellipse(s(cx + 10, 520, cx + 20, 530), fill=(255, 255, 255))
        d.arc(s(cx - 58, 425, cx + 58, 480), 200, 340, fill=LINE, width=10 * SCALE)
    # Blush, and a small smiling mouth.
    for cx in (320, 580):
        d.ellipse(s(cx - 34, 572, cx + 34, 596), fill=(252, 190, 190))
    d.arc(s(425, 585, 475, 615), 20, 160, fill=LINE, width=5 * SCALE)
    picture = image.filter(ImageFilter.GaussianBlur(0.6 * SCALE)).resize(
        (WIDTH, HEIGHT), Image.Resampling.LANCZOS
    )
    picture.save(path, format="PNG", optimize=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "oc.png")
