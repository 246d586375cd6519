"""Lyric text: a Japanese font and outlined lines of lyrics drawn as RGBA images.

The font is IPAexGothic, shipped by the PyPI package ``matplotlib-fontja`` under the IPA Font
License; it is found by path, without importing matplotlib (slow to import).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from acgmake.errors import UserError
from acgmake.video.layers import Layer

FONT_NAME = "IPAexGothic"
FONT_LICENSE = "IPA Font License Agreement v1.0"
FONT_CREDIT = "Font: IPAexGothic (Information-technology Promotion Agency, Japan; IPA Font License)"

RGBA = tuple[int, int, int, int]


def font_path() -> Path:
    """The IPAexGothic .ttf inside the installed ``matplotlib-fontja`` package.

    Raises UserError if the package is missing.
    """
    spec = importlib.util.find_spec("matplotlib_fontja")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            path = Path(folder) / "fonts" / "ipaexg.ttf"
            if path.is_file():
                return path
    raise UserError(
        "the Japanese font IPAexGothic was not found; install it with "
        "`pip install matplotlib-fontja`"
    )


@lru_cache(maxsize=8)
def load_font(size_px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_path()), size_px)


@dataclass(frozen=True)
class TextImage:
    """A line of lyrics drawn once: plain and highlighted, plus where each mora is.

    ``plain`` and ``sung`` are layers of the same size (white and highlighted letters).
    ``mora_edges_px`` are the x positions (pixels) where the morae meet: the first mora starts
    at ``[0]``, the last ends at ``[-1]``. When the morae are not spelled out in the text (kanji
    sung as kana) they are spaced evenly across the line.
    """

    plain: Layer
    sung: Layer
    mora_edges_px: tuple[float, ...]

    def sung_until_px(self, morae_sung: float) -> float:
        """The x (pixels) the highlight reaches after ``morae_sung`` morae (fractional)."""
        edges = self.mora_edges_px
        return float(np.interp(morae_sung, np.arange(len(edges)), edges))


def render_text(
    text: str,
    *,
    size_px: int,
    fill: RGBA = (255, 255, 255, 255),
    outline: RGBA = (40, 30, 60, 255),
    outline_px: int | None = None,
) -> np.ndarray:
    """``text`` drawn with an outline, as straight (not premultiplied) RGBA uint8.

    The image is just large enough for the text and its outline.
    """
    font = load_font(size_px)
    stroke = max(1, round(size_px * 0.08)) if outline_px is None else outline_px
    left, top, right, bottom = font.getbbox(text, stroke_width=stroke)
    # Height from the font's full ascent/descent, so every line has the same baseline.
    ascent, descent = font.getmetrics()
    width = max(1, right - min(left, 0))
    height = ascent + descent + 2 * stroke
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    ImageDraw.Draw(image).text(
        (-min(left, 0), stroke),
        text,
        font=font,
        fill=fill,
        stroke_width=stroke,
        stroke_fill=outline,
    )
    return np.asarray(image)


class LyricRenderer:
    """Draws lyric lines for one frame width, each line once (cached by its text)."""

    def __init__(
        self,
        frame_width: int,
        size_px: int,
        *,
        fill: RGBA = (255, 255, 255, 255),
        sung_fill: RGBA = (255, 214, 90, 255),
        outline: RGBA = (40, 30, 60, 255),
    ) -> None:
        self.frame_width = frame_width
        self.size_px = size_px
        self.fill, self.sung_fill, self.outline = fill, sung_fill, outline
        self._cache: dict[tuple[str, tuple[str, ...]], TextImage] = {}

    def line(self, text: str, morae: tuple[str, ...] = ()) -> TextImage:
        """The line ``text`` drawn plain and highlighted; ``morae`` are its sung syllables."""
        key = (text, morae)
        if key not in self._cache:
            self._cache[key] = self._draw(text, morae)
        return self._cache[key]

    def _draw(self, text: str, morae: tuple[str, ...]) -> TextImage:
        size = self.size_px
        max_width = int(self.frame_width * 0.92)
        font = load_font(size)
        # Shrink a line too long for the frame rather than cut it.
        while size > 8 and font.getlength(text) > max_width:
            size = max(8, int(size * max_width / font.getlength(text)))
            font = load_font(size)
        plain = render_text(text, size_px=size, fill=self.fill, outline=self.outline)
        sung = render_text(text, size_px=size, fill=self.sung_fill, outline=self.outline)
        stroke = max(1, round(size * 0.08))
        x0 = stroke + max(0, -font.getbbox(text)[0])
        x1 = x0 + font.getlength(text)
        spaces = " \u3000"
        letters = [i for i, char in enumerate(text) if char not in spaces]
        if morae and "".join(morae) == "".join(text[i] for i in letters):
            # Each mora is spelled out in the line: measure where each one ends.
            edges, count = [x0], 0
            for mora in morae:
                count += len(mora)
                edges.append(x0 + font.getlength(text[: letters[count - 1] + 1]))
        else:
            edges = list(np.linspace(x0, x1, max(len(morae), 1) + 1))
        return TextImage(
            Layer.from_rgba(plain), Layer.from_rgba(sung), tuple(float(x) for x in edges)
        )
