"""Lyric text: a Japanese font and outlined lines of lyrics drawn as RGBA images.

The font is IPAexGothic, shipped by the PyPI package ``matplotlib-fontja`` under the IPA Font
License; it is found by path, without importing matplotlib (slow to import).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from acgmake.errors import UserError
from acgmake.text.shown import span_groups
from acgmake.video.layers import Layer

FONT_NAME = "IPAexGothic"
FONT_LICENSE = "IPA Font License Agreement v1.0"
FONT_CREDIT = "Font: IPAexGothic (Information-technology Promotion Agency, Japan; IPA Font License)"

RGBA = tuple[int, int, int, int]
#: Furigana are drawn this size of the letters they read, as printed lyrics have them.
RUBY_SCALE = 0.45


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
    at ``[0]``, the last ends at ``[-1]``. A mora lights up the characters it is sung from (a
    kanji word over all its morae); when those are not known and the morae are not spelled out
    in the text, the morae are spaced evenly across the line. ``ruby_px`` is the height of the
    furigana above the letters (0 without): the letters' top is that far below the image's.
    """

    plain: Layer
    sung: Layer
    mora_edges_px: tuple[float, ...]
    ruby_px: int = 0

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

    def line(
        self,
        text: str,
        morae: tuple[str, ...] = (),
        chars: tuple[tuple[int, int], ...] = (),
        ruby: tuple[tuple[int, int, str], ...] = (),
    ) -> TextImage:
        """The line ``text`` drawn plain and highlighted; ``morae`` are its sung syllables,
        ``chars`` the (start, stop) of the characters each is sung from (see
        :class:`acgmake.voice.labels.Line`), ``ruby`` furigana to draw above the letters:
        (start, stop, reading)."""
        key = (text, morae, chars, ruby)
        if key not in self._cache:
            self._cache[key] = self._draw(text, morae, chars, ruby)
        return self._cache[key]

    def _draw(
        self,
        text: str,
        morae: tuple[str, ...],
        chars: tuple[tuple[int, int], ...],
        ruby: tuple[tuple[int, int, str], ...],
    ) -> TextImage:
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

        def x_at(index: int) -> float:
            return x0 + font.getlength(text[:index])

        spaces = " \u3000"
        letters = [i for i, char in enumerate(text) if char not in spaces]
        if morae and len(chars) == len(morae):
            # The morae sung from one run of characters share its width.
            edges = [x0]
            for (start, stop), first, end in span_groups(chars):
                left, right = max(x_at(start), edges[-1]), max(x_at(stop), edges[-1])
                count = end - first
                edges.extend(left + (right - left) * (k + 1) / count for k in range(count))
            edges[-1] = x1  # what follows the last mora (a ！) lights up with it
        elif morae and "".join(morae) == "".join(text[i] for i in letters):
            # Each mora is spelled out in the line: measure where each one ends.
            edges, count = [x0], 0
            for mora in morae:
                count += len(mora)
                edges.append(x0 + font.getlength(text[: letters[count - 1] + 1]))
        else:
            edges = list(np.linspace(x0, x1, max(len(morae), 1) + 1))
        ruby_px = 0
        if ruby:
            plain, sung, ruby_px = self._with_ruby(plain, sung, ruby, size, x_at)
        return TextImage(
            Layer.from_rgba(plain),
            Layer.from_rgba(sung),
            tuple(float(x) for x in edges),
            ruby_px,
        )

    def _with_ruby(
        self,
        plain: np.ndarray,
        sung: np.ndarray,
        ruby: tuple[tuple[int, int, str], ...],
        size: int,
        x_at: Callable[[int], float],
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """``plain`` and ``sung`` with the furigana drawn above them, each reading centred
        over its characters (kept inside the image), and the height added on top."""
        ruby_size = max(6, round(size * RUBY_SCALE))
        drawn = [
            (
                (x_at(start) + x_at(stop)) / 2,
                render_text(reading, size_px=ruby_size, fill=self.fill, outline=self.outline),
                render_text(reading, size_px=ruby_size, fill=self.sung_fill, outline=self.outline),
            )
            for start, stop, reading in ruby
        ]
        # The readings sit close over the letters: the font's line has room above its kanji.
        overlap = round(size * 0.12)
        ruby_px = max(image.shape[0] for _, image, _ in drawn) - overlap
        height, width = plain.shape[0] + ruby_px, max(plain.shape[1], 1)
        results = []
        for base, which in ((plain, 1), (sung, 2)):
            canvas = Image.new("RGBA", (width, height), (0, 0, 0, 0))
            canvas.alpha_composite(Image.fromarray(base), (0, ruby_px))
            for centre, *images in drawn:
                image = images[which - 1]
                left = int(round(centre - image.shape[1] / 2))
                left = min(max(left, 0), max(width - image.shape[1], 0))
                canvas.alpha_composite(Image.fromarray(image), (left, 0))
            results.append(np.asarray(canvas))
        return results[0], results[1], ruby_px
