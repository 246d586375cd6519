"""Drawing the frames of the clip: background, the singing character, the lyric line.

Everything that does not change from frame to frame (the background, the character at each
mouth openness, the lyric lines) is drawn once when a :class:`FrameRenderer` is made; a frame
is then a copy of the background, at most one resize and a few uint8 blends of
:class:`~acgmake.video.layers.Layer` s into one reused buffer: under 1 ms at 1280x720, where
float frames would cost about 13 ms each.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from acgmake.image.face import Face
from acgmake.video.layers import Layer, blend, premultiply, unpremultiply
from acgmake.video.text import LyricRenderer
from acgmake.voice.labels import Line, Timing

#: Mouth drawings made in advance, from closed to wide open.
MOUTH_LEVELS = 16


@dataclass(frozen=True)
class Look:
    """Colours and proportions of the clip (the defaults give a soft pastel stage)."""

    sky_top: tuple[int, int, int] = (196, 214, 255)
    sky_bottom: tuple[int, int, int] = (255, 222, 236)
    character_height: float = 0.92  # of the frame height
    bob: float = 0.014  # up-and-down on each beat, of the frame height
    sway: float = 0.006  # side to side over two beats, of the frame width
    squash: float = 0.018  # how much the character squashes on each beat
    text_size: float = 0.065  # lyric letters, of the frame height
    mouth_colour: tuple[int, int, int] = (122, 38, 52)
    tongue_colour: tuple[int, int, int] = (226, 112, 124)
    lip_colour: tuple[int, int, int] = (70, 24, 32)


def gradient_background(
    width: int, height: int, top: Sequence[int], bottom: Sequence[int], *, seed: int = 0
) -> np.ndarray:
    """A vertical gradient with a few soft light spots, RGB uint8 (drawn once per clip)."""
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    sky = (1 - t) * np.asarray(top, np.float32) + t * np.asarray(bottom, np.float32)
    sky = np.broadcast_to(sky, (height, width, 3)).copy()
    # Soft round lights ("bokeh"), placed by seed so a clip looks the same when re-made.
    rng = np.random.default_rng(seed)
    spots = np.zeros((height, width), np.float32)
    for _ in range(9):
        x, y = rng.uniform(0, width), rng.uniform(0, height * 0.8)
        radius = rng.uniform(0.03, 0.09) * height
        brightness = float(rng.uniform(0.2, 0.45))
        cv2.circle(spots, (int(x), int(y)), int(radius), brightness, cv2.FILLED, cv2.LINE_AA)
    spots = cv2.GaussianBlur(spots, (0, 0), height * 0.01)[..., None]
    sky = sky + (255.0 - sky) * spots
    return np.clip(sky + 0.5, 0, 255).astype(np.uint8)


def draw_mouth(
    sprite: np.ndarray, mouth: tuple[int, int, int, int], openness: float, look: Look
) -> None:
    """Draw a mouth ``openness`` open (0..1) over the ``mouth`` box of straight RGBA ``sprite``.

    The character's own mouth is first covered with skin colour taken from around the box,
    so the drawn mouth is the only one; a closed mouth is a short smiling line. Works in place
    on a patch around the box (the open mouth hangs below it).
    """
    x0, y0, x1, y1 = mouth
    box_w, box_h = x1 - x0, y1 - y0
    left, right = max(x0 - box_w, 0), min(x1 + box_w, sprite.shape[1])
    top, bottom = max(y0 - box_h, 0), min(y1 + 2 * box_h, sprite.shape[0])
    # cv2 draws only into contiguous arrays: draw on a copy of the patch and put it back.
    patch = np.ascontiguousarray(sprite[top:bottom, left:right])
    _draw_mouth_here(patch, (x0 - left, y0 - top, x1 - left, y1 - top), openness, look)
    sprite[top:bottom, left:right] = patch


def _draw_mouth_here(
    sprite: np.ndarray, mouth: tuple[int, int, int, int], openness: float, look: Look
) -> None:
    x0, y0, x1, y1 = mouth
    box_w, box_h = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    scale = 8  # cv2 draws with sub-pixel precision in 1/8 pixel units (shift=3)

    # Skin: the median colour of the opaque, light pixels around the mouth box.
    pad_x, pad_y = box_w // 2 + 2, box_h // 2 + 2
    around = sprite[max(y0 - pad_y, 0) : y1 + pad_y, max(x0 - pad_x, 0) : x1 + pad_x]
    pixels = around.reshape(-1, 4)
    pixels = pixels[pixels[:, 3] > 250, :3]
    if len(pixels):
        light = pixels[pixels.sum(axis=1) >= np.median(pixels.sum(axis=1))]
        skin = np.median(light, axis=0)
        patch = np.zeros(sprite.shape[:2], np.float32)
        axes = (int(box_w * 0.6), int(box_h * 0.6))
        cv2.ellipse(patch, (int(cx), int(cy)), axes, 0, 0, 360, 1.0, cv2.FILLED, cv2.LINE_AA)
        patch = cv2.GaussianBlur(patch, (0, 0), max(box_h * 0.08, 0.8))[..., None]
        blended = sprite[..., :3] * (1 - patch) + skin * patch
        sprite[..., :3] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)

    def at(x: float, y: float) -> tuple[int, int]:
        return int(round(x * scale)), int(round(y * scale))

    half_w = box_w * (0.30 + 0.06 * openness)
    line_px = max(1, round(box_h * 0.09))
    lip = (*look.lip_colour, 255)
    if openness < 0.05:
        centre, axes = at(cx, cy - box_h * 0.15), at(half_w, box_h * 0.22)
        cv2.ellipse(sprite, centre, axes, 0, 20, 160, lip, line_px, cv2.LINE_AA, 3)
        return
    # Open: a flat upper lip and a round lower one; a tongue in the bottom of it.
    top = box_h * 0.12 * openness
    bottom = box_h * 0.75 * openness + box_h * 0.08
    upper = cv2.ellipse2Poly(at(cx, cy - top * 0.2), at(half_w, top), 0, 180, 360, 10)
    lower = cv2.ellipse2Poly(at(cx, cy - top * 0.2), at(half_w, bottom), 0, 0, 180, 10)
    outline = np.vstack([upper, lower])
    cv2.fillPoly(sprite, [outline], (*look.mouth_colour, 255), cv2.LINE_AA, 3)
    inside = np.zeros(sprite.shape[:2], np.uint8)
    cv2.fillPoly(inside, [outline], 255, cv2.LINE_AA, 3)
    tongue = np.zeros_like(inside)
    centre, axes = at(cx, cy - top * 0.2 + bottom * 0.95), at(half_w * 0.7, bottom * 0.55)
    cv2.ellipse(tongue, centre, axes, 0, 0, 360, 255, cv2.FILLED, cv2.LINE_AA, 3)
    weight = (np.minimum(inside, tongue).astype(np.float32) / 255.0)[..., None]
    sprite[..., :3] = np.clip(
        sprite[..., :3] * (1 - weight) + np.asarray(look.tongue_colour) * weight + 0.5, 0, 255
    ).astype(np.uint8)
    cv2.polylines(sprite, [outline], True, lip, line_px, cv2.LINE_AA, 3)


class FrameRenderer:
    """The frames of one clip, drawn one at a time into one reused buffer.

    ``colored`` is the RGBA character (straight alpha), ``face`` where its mouth is,
    ``timing`` the tempo and lyric lines, ``openness`` the mouth openness per frame (from
    :func:`acgmake.video.lipsync.mouth_openness`); its length is the number of frames.
    """

    def __init__(
        self,
        colored: np.ndarray,
        face: Face,
        timing: Timing,
        openness: np.ndarray,
        *,
        width: int,
        height: int,
        fps: float,
        look: Look | None = None,
        seed: int = 0,
    ) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.look = look or Look()
        self.timing = timing
        self.openness = np.clip(np.asarray(openness, np.float32), 0.0, 1.0)
        self.background = gradient_background(
            width, height, self.look.sky_top, self.look.sky_bottom, seed=seed
        )
        self.sprites = self._mouth_sprites(colored, face)
        self.lyrics = LyricRenderer(width, max(8, round(height * self.look.text_size)))
        self.frame = np.empty((height, width, 3), np.uint8)
        self._shade = self._text_shade()

    @property
    def frame_count(self) -> int:
        return len(self.openness)

    def _mouth_sprites(self, colored: np.ndarray, face: Face) -> list[Layer]:
        """The character scaled to its place in the frame, one layer per mouth openness."""
        target_h = self.height * self.look.character_height
        factor = min(target_h / colored.shape[0], self.width * 0.9 / colored.shape[1])
        size = (max(1, round(colored.shape[1] * factor)), max(1, round(colored.shape[0] * factor)))
        # Resize premultiplied, so the transparent background does not tint the edges.
        base = cv2.resize(premultiply(colored), size, interpolation=cv2.INTER_CUBIC)
        base = unpremultiply(base)
        mouth = Face.pixel_box(face.mouth, size[0], size[1])
        # Keep only the part with the character in it: less to resize and blend every frame.
        rows, columns = np.nonzero(base[..., 3])
        if len(rows) == 0:
            rows, columns = np.array([0, size[1] - 1]), np.array([0, size[0] - 1])
        top, bottom, left, right = rows.min(), rows.max() + 1, columns.min(), columns.max() + 1
        self.sprite_size, self.sprite_offset = size, (int(left), int(top))
        sprites = []
        for level in range(MOUTH_LEVELS):
            sprite = base.copy()
            draw_mouth(sprite, mouth, level / (MOUTH_LEVELS - 1), self.look)
            sprites.append(Layer.from_rgba(sprite[top:bottom, left:right]))
        return sprites

    def _text_shade(self) -> Layer:
        """A dark band fading up from the bottom, so the lyrics read over the character."""
        band_h = max(2, round(self.height * 0.2))
        alpha = (np.linspace(0.0, 1.0, band_h, dtype=np.float32) ** 1.5 * 110)[:, None]
        alpha = np.broadcast_to(alpha, (band_h, self.width)).astype(np.uint8)
        shade = np.zeros((band_h, self.width, 4), np.uint8)
        shade[..., :3] = (30, 20, 50)
        shade[..., 3] = alpha
        return Layer.from_rgba(shade)

    def motion(self, time_s: float) -> tuple[float, float, float, float]:
        """How the character moves at ``time_s``: (dx, dy) in pixels, (x, y) scale factors.

        It rises between beats and lands on each one, squashing a little as it lands, and
        sways over every two beats; still before the first beat and after the song.
        """
        timing, look = self.timing, self.look
        if timing.tempo_bpm <= 0 or not timing.first_beat_s <= time_s <= timing.duration_s:
            return 0.0, 0.0, 1.0, 1.0
        beat = (time_s - timing.first_beat_s) * timing.tempo_bpm / 60.0
        since = beat - math.floor(beat)
        dy = -look.bob * self.height * math.sin(math.pi * since)
        dx = look.sway * self.width * math.sin(math.pi * beat)
        landing = math.exp(-since * 8.0)
        return dx, dy, 1.0 + 0.6 * look.squash * landing, 1.0 - look.squash * landing

    def render(self, index: int) -> np.ndarray:
        """Frame ``index`` as RGB uint8 (height, width, 3) — the same buffer every call."""
        frame = self.frame
        np.copyto(frame, self.background)
        time_s = index / self.fps

        level = int(round(float(self.openness[index]) * (MOUTH_LEVELS - 1)))
        sprite = self.sprites[level]
        dx, dy, scale_x, scale_y = self.motion(time_s)
        size = (round(sprite.width * scale_x), round(sprite.height * scale_y))
        if size != (sprite.width, sprite.height):
            sprite = sprite.resized(*size)
        # The bottom of the bust stays on the bottom edge; the squash pivots there.
        full_w, full_h = self.sprite_size
        left, top = self.sprite_offset
        x = round((self.width - full_w * scale_x) / 2 + left * scale_x + dx)
        y = round(self.height - full_h * scale_y + top * scale_y + self.height * 0.02 + dy)
        blend(frame, sprite, x, y)

        # The band under the lyrics stays all through, so it does not flash between lines.
        blend(frame, self._shade, 0, self.height - self._shade.height)
        line = self.timing.line_at(time_s)
        if line is not None and time_s >= line.start_s - 1.5:
            text = self.lyrics.line(line.text, tuple(m.text for m in line.morae))
            tx = (self.width - text.plain.width) // 2
            ty = self.height - text.plain.height - round(self.height * 0.04)
            blend(frame, text.plain, tx, ty)
            sung_px = round(text.sung_until_px(_morae_sung(line, time_s)))
            if sung_px > 0:
                blend(frame, text.sung.left_part(sung_px), tx, ty)
        return frame

    def frames(self) -> Iterator[np.ndarray]:
        """Every frame in order (each the same buffer, overwritten by the next)."""
        for index in range(self.frame_count):
            yield self.render(index)


def _morae_sung(line: Line, time_s: float) -> float:
    """How many morae of ``line`` are sung by ``time_s``, counting the current one in part."""
    sung = 0.0
    for mora in line.morae:
        if time_s >= mora.end_s:
            sung += 1.0
        elif time_s > mora.start_s:
            sung += (time_s - mora.start_s) / max(mora.end_s - mora.start_s, 1e-6)
            break
        else:
            break
    return sung
