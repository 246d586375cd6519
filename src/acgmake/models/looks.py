"""The drawn set's vocabulary: hair styles and colours, eye colours, accessories, by name.

Kept apart from :mod:`acgmake.models.drawn` (which draws with numpy and PIL) so that a
command's options can list them without loading either: a plugin's options are built each
time acgmake starts.
"""

from __future__ import annotations

HAIR_STYLES = ("short", "bob", "long", "twintails", "hime")
ACCESSORIES = ("ribbon", "hairpin", "glasses", "headband")

HAIR_COLORS = {
    "black": (45, 42, 58),
    "dark brown": (92, 62, 48),
    "brown": (156, 104, 64),
    "blonde": (244, 214, 128),
    "orange": (240, 146, 72),
    "red": (200, 54, 62),
    "pink": (246, 158, 192),
    "purple": (150, 104, 196),
    "blue": (74, 116, 212),
    "light blue": (138, 198, 242),
    "silver": (206, 208, 224),
    "green": (98, 178, 122),
}
EYE_COLORS = {
    "blue": (52, 110, 220),
    "green": (46, 160, 96),
    "red": (206, 44, 58),
    "purple": (136, 76, 200),
    "brown": (140, 84, 44),
    "gold": (222, 164, 40),
    "pink": (232, 96, 160),
    "teal": (34, 164, 170),
    "grey": (110, 118, 136),
}
