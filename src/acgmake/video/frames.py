"""Drawing the frames of the clip: background, the singing character, lyrics, title, credits.

Everything that does not change from frame to frame (the background, the character's
expressions, lyric lines, the title card and the credits) is drawn once when a
:class:`FrameRenderer` is made, and the motion of every frame (bobbing and swaying on the
beat, breathing, blinks, the camera) is planned at once as arrays; a frame is then a crop of
the background, the character's mouth and eye patches mixed, one resize and a few uint8
blends of :class:`~acgmake.video.layers.Layer` s into a frame buffer: a few ms at 1280x720,
where float frames would cost about 13 ms each.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from acgmake.text.shown import ruby
from acgmake.video.backdrop import backdrop
from acgmake.video.expressions import CharacterSprite
from acgmake.video.layers import Layer, blend
from acgmake.video.lipsync import frame_times
from acgmake.video.text import LyricRenderer, load_font, render_text
from acgmake.voice.labels import Line, Timing

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Look:
    """Colours and amounts of motion (the defaults give a soft pastel stage)."""

    sky_top: RGB = (196, 214, 255)
    sky_bottom: RGB = (255, 222, 236)
    bob: float = 0.014  # up and down on each beat, of the frame height
    sway: float = 0.006  # side to side over two beats, of the frame width
    squash: float = 0.018  # how much the character squashes as it lands on a beat
    breath: float = 0.006  # how much it grows as it breathes in, over two bars
    zoom: float = 0.05  # how much closer the camera is in the chorus
    punch: float = 0.012  # the camera's push on each downbeat
    pan: float = 0.012  # the camera's drift over four bars, of the frame width
    #: How much the character moves in each part of the song (1 = the chorus).
    energy: tuple[tuple[str, float], ...] = (
        ("chorus", 1.0),
        ("verse", 0.55),
        ("", 0.55),
        ("between", 0.3),
    )
    blink_every_s: tuple[float, float] = (2.0, 5.5)  # shortest and longest gap between blinks
    title_s: float = 4.0  # the longest the title card stays
    credits_fade_s: float = 0.6
    credits_slide_s: float = 1.0  # in a wide frame the character steps aside for the credits


#: Where the face is in a generated bust when face.json is not at hand (normalised 0..1).
TYPICAL_FACE = (0.29, 0.16, 0.71, 0.81)

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Layout:
    """Where things go in a frame of one size (landscape, square or portrait).

    The character's full picture is ``character_w`` x ``character_h`` pixels, its bottom edge
    centred on (``centre_x``, ``bottom_y``); lyric letters are ``text_px`` high, the current
    line's top at ``lyric_y``; ``next_y`` is the top of the line after it (portrait only,
    else None); the title card's top is at ``title_y``. The dark band behind the lyrics
    starts at ``band_top``: the face stays above it in every frame, however the character
    and the camera move. ``fade_h`` is how many rows (at the picture's shown size) the bust's
    bottom edge fades out over, where that edge is inside the frame (0: it runs off the
    bottom of the frame).
    """

    width: int
    height: int
    character_w: int
    character_h: int
    centre_x: int
    bottom_y: int
    text_px: int
    lyric_y: int
    next_y: int | None
    title_y: int
    band_top: int
    fade_h: int = 0

    @property
    def portrait(self) -> bool:
        return self.next_y is not None


def line_height(size_px: int) -> int:
    """The height of a line of lyrics drawn ``size_px`` high, as :func:`render_text` draws
    it (the font's ascent and descent, and the outline)."""
    ascent, descent = load_font(size_px).getmetrics()
    return ascent + descent + 2 * max(1, round(size_px * 0.08))


def layout_for(
    width: int,
    height: int,
    picture_w: int,
    picture_h: int,
    look: Look,
    *,
    visible: Box = (0.0, 0.0, 1.0, 1.0),
    face: Box = TYPICAL_FACE,
) -> Layout:
    """The layout of a ``width`` x ``height`` frame for a character picture of
    ``picture_w`` x ``picture_h`` pixels whose drawn (not transparent) part is ``visible``
    and whose face is ``face`` (boxes normalised 0..1, as face.json's).

    The character is the subject. In landscape and square frames the head and shoulders
    fill about 72% of the frame's height, the chest running off its bottom, and the lyrics
    run along the bottom, below the chin. In portrait frames the bust fills the top, 92% of
    the width, and two lyric lines (the one sung and the next) go below the chin. The face
    is placed so that no motion of :func:`plan_motion` takes it under the lyrics or out of
    the frame (:class:`FrameRenderer` zooms about the chin).
    """
    short = min(width, height)
    portrait = width / height < 0.85
    vx0, vy0, vx1, vy1 = visible
    crop_w = max((vx1 - vx0) * picture_w, 1.0)  # the drawn part, in picture pixels
    crop_h = max((vy1 - vy0) * picture_h, 1.0)
    chin = min(max((face[3] - vy0) / max(vy1 - vy0, 1e-6), 0.05), 1.0)  # of the way down
    # How far the motion can take the bust from where it rests, for a bust h pixels high:
    # the head's top up to a * h + b (the zoom about the chin, breathing in, bobbing, the
    # drift), the chin down to c * h + d (a squash, breathing out, the drift; the zoom
    # never lowers it), the bottom edge up to `rise`.
    energy = max(level for _, level in look.energy)
    zoom = 1.0 + look.zoom + look.punch
    pan_y = 0.5 * look.pan * height * energy
    a = chin * (zoom - 1) + look.breath * zoom
    b = look.bob * height * energy * zoom + pan_y + 2
    c = (look.squash * energy + look.breath) * (1 - chin) * zoom
    d = pan_y + 2
    rise = look.bob * height * energy + pan_y + 2
    widest = width * (0.92 if portrait else 0.96) * crop_h / crop_w  # never wider than that
    if portrait:
        text_px = max(8, round(short * 0.062))
        head_room = height * 0.04
        # As wide as the frame allows, the chin above 58% of the height.
        h = min(widest, (height * 0.58 - head_room - b - d) / (a + chin + c))
        h = max(h, 1.0)
        top = head_room + a * h + b
        bottom = top + h
        chin_low = top + (chin + c) * h + d
        lyric_y = round(max(chin_low + 0.6 * text_px, height * 0.6))
        next_y = lyric_y + round(text_px * 1.6)
        band_top = math.ceil(chin_low)
        title_y = next_y + round(text_px * 2.2)
    else:
        text_px = max(8, round(short * 0.056))
        lyric_y = height - round(height * 0.03) - line_height(text_px)
        next_y = None
        band_top = lyric_y - round(text_px * 0.4)
        title_y = round(height * 0.06)
        head_room = height * 0.03
        bottom = height + rise  # the bust's bottom edge never shows
        # 72% of the frame's height shown; more if the chin would be too low for the
        # lyrics; less if the head would leave the frame as the camera comes closer.
        h = max(height * 0.72 + rise, (bottom + d - band_top) / max(1 - chin - c, 1e-3))
        h = min(h, height * 0.76 + rise, widest, (bottom - b - head_room) / (1 + a))
        h = max(h, 1.0)
        # A face low in its picture: the bust rises until its chin clears the lyrics (its
        # bottom edge then fades out inside the frame).
        bottom = min(bottom, band_top - d + (1 - chin - c) * h)
    scale = h / crop_h
    character_w = max(1, round(picture_w * scale))
    character_h = max(1, round(picture_h * scale))
    bottom_y = round(bottom + (1 - vy1) * picture_h * scale)
    centre_x = round(width / 2 + (0.5 - (face[0] + face[2]) / 2) * character_w)  # face centred
    fade_h = 0
    if bottom - rise < height:
        fade_h = round(min(0.5 * (1 - chin) * h, 0.2 * h))
    return Layout(
        width, height, character_w, character_h, centre_x, bottom_y,
        text_px, lyric_y, next_y, title_y, band_top, fade_h,
    )  # fmt: skip


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
    short = min(width, height)
    for _ in range(max(9, round(9 * max(width, height) / short))):
        x, y = rng.uniform(0, width), rng.uniform(0, height * 0.8)
        radius = rng.uniform(0.03, 0.09) * short
        brightness = float(rng.uniform(0.2, 0.45))
        cv2.circle(spots, (int(x), int(y)), int(radius), brightness, cv2.FILLED, cv2.LINE_AA)
    spots = cv2.GaussianBlur(spots, (0, 0), short * 0.01)[..., None]
    sky = sky + (255.0 - sky) * spots
    return np.clip(sky + 0.5, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Motion:
    """How the character and the camera move, one value per frame (arrays of one length).

    ``dx``, ``dy``: the character's sway and bob in pixels; ``scale_x``, ``scale_y``: its
    squash and breathing; ``zoom``: the camera's (about the face); ``pan_x``, ``pan_y``: the
    camera's drift in pixels; ``energy``: how lively that moment of the song is (0..1).
    """

    dx: np.ndarray
    dy: np.ndarray
    scale_x: np.ndarray
    scale_y: np.ndarray
    zoom: np.ndarray
    pan_x: np.ndarray
    pan_y: np.ndarray
    energy: np.ndarray


def section_energy(timing: Timing, times_s: np.ndarray, look: Look) -> np.ndarray:
    """How lively the motion is at each of ``times_s``: the level of the section being sung
    (the chorus most), lower before the singing and after it, eased over a beat."""
    levels = dict(look.energy)
    energy = np.full(times_s.shape, levels["between"], np.float64)
    lines = timing.lines
    beat_s = 60.0 / timing.tempo_bpm if timing.tempo_bpm > 0 else 0.5
    for index, line in enumerate(lines):
        # A line's section holds from the end of the line before (the rest leading into it).
        start = lines[index - 1].end_s if index else line.start_s - 2 * beat_s
        level = levels.get(line.section, levels[""])
        energy[(times_s >= start) & (times_s < line.end_s)] = level
    if len(times_s) > 1:
        step = float(np.median(np.diff(times_s)))
        width = max(1, round(beat_s / step))
        kernel = np.ones(width) / width
        padded = np.pad(energy, (width, width), mode="edge")
        energy = np.convolve(padded, kernel, mode="same")[width:-width]
    return energy


def plan_motion(timing: Timing, times_s: np.ndarray, layout: Layout, look: Look) -> Motion:
    """The motion at each of ``times_s`` (seconds): the character rises between beats and
    lands on each one, squashing a little; sways over two beats and breathes over two bars;
    the camera pushes in on each downbeat, drifts over four bars and comes closer in the
    chorus. Everything moves more in the chorus; nothing bounces before the first beat or
    after the song (the credits)."""
    times_s = np.asarray(times_s, np.float64)
    width, height = layout.width, layout.height
    energy = section_energy(timing, times_s, look)
    bpm = timing.tempo_bpm if timing.tempo_bpm > 0 else 120.0
    bar_beats = max(1, timing.beats_per_bar)
    beat = (times_s - timing.first_beat_s) * bpm / 60.0
    # The beat moves start from rest on the first beat (every wave starts at 0 there) and
    # die away over the song's last bar, so the credits after it begin still.
    bar_s = bar_beats * 60.0 / bpm
    fade = np.clip((timing.duration_s - times_s) / bar_s, 0.0, 1.0)
    on = (times_s >= timing.first_beat_s) * fade * fade * (3.0 - 2.0 * fade)
    since = beat - np.floor(beat)
    landing = np.exp(-since * 8.0) * on
    bar = beat / bar_beats
    since_bar = bar - np.floor(bar)
    breathing = 1.0 + look.breath * np.sin(2 * np.pi * bar / 2)
    levels = dict(look.energy)
    chorus = np.clip((energy - levels[""]) / max(levels["chorus"] - levels[""], 1e-6), 0, 1)
    return Motion(
        dx=look.sway * width * energy * np.sin(np.pi * beat) * on,
        dy=-look.bob * height * energy * np.sin(np.pi * since) * on,
        scale_x=1.0 + 0.6 * look.squash * energy * landing,
        scale_y=(1.0 - look.squash * energy * landing) * breathing,
        zoom=1.0 + look.zoom * chorus + look.punch * energy * np.exp(-since_bar * 6.0) * on,
        pan_x=look.pan * width * energy * np.sin(2 * np.pi * bar / 4) * on,
        pan_y=0.5 * look.pan * height * energy * np.sin(2 * np.pi * bar / 8) * on,
        energy=energy,
    )


def blink_amounts(fps: float, frame_count: int, *, seed: int = 0, look: Look | None = None):
    """How closed the eyes are in each frame (float32, 0 open .. 1 closed).

    Blinks come every 2–5.5 s (by seed), now and then two in a row; each closes the eyes in
    60 ms, holds them shut 40 ms and opens them in 100 ms, as people blink.
    """
    look = look or Look()
    times = frame_times(fps, frame_count)
    closed = np.zeros(frame_count, np.float32)
    rng = np.random.default_rng(seed + 1)
    start = float(rng.uniform(0.8, 2.0))
    end_s = frame_count / fps
    while start < end_s:
        starts = [start, start + 0.32] if rng.random() < 0.15 else [start]
        for begin in starts:
            t = times - begin
            shape = np.interp(t, [0.0, 0.06, 0.10, 0.20], [0.0, 1.0, 1.0, 0.0], left=0, right=0)
            closed = np.maximum(closed, shape.astype(np.float32))
        start = starts[-1] + float(rng.uniform(*look.blink_every_s))
    return closed


def wrap_text(text: str, size_px: int, max_width: float) -> list[str]:
    """``text`` broken into lines no wider than ``max_width`` pixels at ``size_px`` (between
    words; Japanese, which has no spaces, between any two letters)."""
    font = load_font(size_px)
    lines: list[str] = []
    current = ""
    tokens = text.split(" ") if " " in text else list(text)
    joiner = " " if " " in text else ""
    for token in tokens:
        candidate = f"{current}{joiner}{token}" if current else token
        if current and font.getlength(candidate) > max_width:
            lines.append(current)
            current = token
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines


def card(lines: Sequence[tuple[str, int]], max_width: int, *, padding: float = 0.6) -> np.ndarray:
    """Lines of text (text, size in px) centred on a dark, rounded, see-through panel: RGBA
    uint8. Each line is wrapped to ``max_width`` (panel included)."""
    pictures = []
    for text, size in lines:
        pad = round(size * padding)
        room = max(1, max_width - 2 * pad)
        for part in wrap_text(text, size, room):
            picture = render_text(part, size_px=size, outline_px=max(1, size // 14))
            if picture.shape[1] > room:  # one word longer than a line (an address): shrink it
                height = max(1, round(picture.shape[0] * room / picture.shape[1]))
                picture = cv2.resize(picture, (room, height), interpolation=cv2.INTER_AREA)
            pictures.append(picture)
    gap = round(min(size for _, size in lines) * 0.25)
    pad = round(max(size for _, size in lines) * padding)
    width = min(max_width, max(p.shape[1] for p in pictures) + 2 * pad)
    height = sum(p.shape[0] for p in pictures) + gap * (len(pictures) - 1) + 2 * pad
    panel = np.zeros((height, width, 4), np.uint8)
    radius = max(2, pad)
    mask = np.zeros((height, width), np.uint8)
    cv2.rectangle(mask, (radius, 0), (width - 1 - radius, height - 1), 255, cv2.FILLED)
    cv2.rectangle(mask, (0, radius), (width - 1, height - 1 - radius), 255, cv2.FILLED)
    for x in (radius, width - 1 - radius):
        for y in (radius, height - 1 - radius):
            cv2.circle(mask, (x, y), radius, 255, cv2.FILLED, cv2.LINE_AA)
    panel[..., :3] = (30, 22, 48)
    panel[..., 3] = (mask.astype(np.uint16) * 165 // 255).astype(np.uint8)
    y = pad
    for picture in pictures:
        x = (width - picture.shape[1]) // 2
        _over(panel, picture[:, : width - x], x, y)
        y += picture.shape[0] + gap
    return panel


def fade_bottom(layer: Layer, rows: int) -> None:
    """Fade the last ``rows`` rows of ``layer`` out to transparent, in place (a bust whose
    bottom edge is inside the frame ends softly instead of in a cut)."""
    rows = min(max(int(rows), 0), layer.height)
    if rows == 0:
        return
    ramp = np.linspace(1.0, 0.0, rows + 1, dtype=np.float32)[1:]
    keep = (ramp * ramp * (3 - 2 * ramp))[:, None, None]
    part = slice(layer.height - rows, None)
    opacity = (255 - layer.clear[part]).astype(np.float32) * keep
    layer.colour[part] = (layer.colour[part] * keep + 0.5).astype(np.uint8)
    layer.clear[part] = (255.5 - opacity).astype(np.uint8)


def _over(under: np.ndarray, over: np.ndarray, x: int, y: int) -> None:
    """Straight RGBA ``over`` composited onto straight RGBA ``under`` at (x, y), in place."""
    height = min(over.shape[0], under.shape[0] - y)
    width = min(over.shape[1], under.shape[1] - x)
    region = under[y : y + height, x : x + width].astype(np.float32) / 255
    top = over[:height, :width].astype(np.float32) / 255
    alpha = top[..., 3:] + region[..., 3:] * (1 - top[..., 3:])
    colour = top[..., :3] * top[..., 3:] + region[..., :3] * region[..., 3:] * (1 - top[..., 3:])
    colour = colour / np.maximum(alpha, 1e-6)
    merged = np.dstack([colour, alpha]) * 255 + 0.5
    under[y : y + height, x : x + width] = np.clip(merged, 0, 255).astype(np.uint8)


class FrameRenderer:
    """The frames of one clip, drawn one at a time into a frame buffer.

    ``character`` is the sprite in its expressions, ``timing`` the tempo, sections and lyric
    lines, ``mouth`` the mouth of each frame (float (frames, 6), from
    :func:`acgmake.video.lipsync.drawn_mouths`, or a mix the sprite shows as its main shape;
    its length is the number of frames).
    ``title`` shows at the start; ``credits`` (lines) at the end, from ``credits_from_s``.
    """

    def __init__(
        self,
        character: CharacterSprite,
        timing: Timing,
        mouth: np.ndarray,
        *,
        width: int,
        height: int,
        fps: float,
        look: Look | None = None,
        seed: int = 0,
        title: str = "",
        credits: Sequence[str] = (),
        credits_from_s: float | None = None,
        background: np.ndarray | None = None,
        background_style: str = "photo",
        furigana: bool = False,
    ) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.furigana = furigana
        self.look = look or Look()
        self.timing = timing
        self.character = character
        self.mouth = np.asarray(mouth, np.float32)
        if self.mouth.ndim != 2 or self.mouth.shape[1] != 6:
            raise ValueError(f"mouth must be (frames, 6) shape weights, got {self.mouth.shape}")
        self.layout = layout_for(
            width,
            height,
            *character.size,
            self.look,
            visible=character.visible,
            face=character.face.face,
        )
        self.times = frame_times(fps, self.frame_count)
        self.motion = plan_motion(timing, self.times, self.layout, self.look)
        self.blink = blink_amounts(fps, self.frame_count, seed=seed, look=self.look)
        # The background is larger than the frame by the camera's drift, which crops it.
        self._margin = (
            math.ceil(np.abs(self.motion.pan_x).max() * 0.4) + 1,
            math.ceil(np.abs(self.motion.pan_y).max() * 0.4) + 1,
        )
        mx, my = self._margin
        self.background = gradient_background(
            width + 2 * mx, height + 2 * my, self.look.sky_top, self.look.sky_bottom, seed=seed
        )
        if background is not None:
            self.background = backdrop(background, style=background_style, under=self.background)
        self._scale = self.layout.character_w / character.size[0]
        self._pivot = self._chin()
        if self.layout.fade_h:
            rows = round(self.layout.fade_h / self._scale)
            for layer in (character.rest, character.layer):
                fade_bottom(layer, rows)
        layout = self.layout
        self.lyrics = LyricRenderer(width, layout.text_px)
        self.next_lyrics = LyricRenderer(
            width,
            max(8, round(layout.text_px * 0.8)),
            fill=(255, 255, 255, 190),
            sung_fill=(255, 255, 255, 190),
            outline=(40, 30, 60, 190),
        )
        self._shade = self._text_shade()
        short = min(width, height)
        self._title = self._title_card(title, short) if title else None
        self._title_until = self._title_end()
        last_end = timing.lines[-1].end_s if timing.lines else 0.0
        self.credits_from_s = last_end + 0.3 if credits_from_s is None else credits_from_s
        self._credits = self._credits_card(title, credits, short) if credits else None
        self._slide_x = self._credits_slide()
        self.frame = np.empty((height, width, 3), np.uint8)

    @property
    def frame_count(self) -> int:
        return len(self.mouth)

    # -- things drawn once ------------------------------------------------------------------

    def _chin(self) -> tuple[float, float]:
        """Where the chin is in the frame when nothing moves: the camera zooms about it, so
        coming closer never takes the face down under the lyrics."""
        layout, face = self.layout, self.character.face.face
        left = layout.centre_x - layout.character_w / 2
        top = layout.bottom_y - layout.character_h
        x = left + (face[0] + face[2]) / 2 * layout.character_w
        return x, top + face[3] * layout.character_h

    def _text_shade(self) -> tuple[Layer, int]:
        """A dark band behind the lyrics so they read over anything (and where it goes)."""
        layout = self.layout
        top = layout.band_top  # never over the face
        if layout.portrait:
            bottom = layout.next_y + line_height(layout.text_px) + layout.text_px
            band_h = max(2, min(bottom, self.height) - top)
            y = np.linspace(-1.0, 1.0, band_h, dtype=np.float32)
            ramp = np.clip((1.0 - np.abs(y)) * 2.5, 0, 1)  # soft at the top and the bottom
            alpha = ramp * ramp * (3 - 2 * ramp) * 90
        else:
            band_h = max(2, self.height - top)
            ramp = np.clip(np.linspace(0.0, 1.6, band_h, dtype=np.float32), 0, 1)
            alpha = ramp * ramp * (3 - 2 * ramp) * 110
        shade = np.zeros((band_h, self.width, 4), np.uint8)
        shade[..., :3] = (30, 20, 50)
        shade[..., 3] = np.broadcast_to(alpha[:, None], (band_h, self.width)).astype(np.uint8)
        return Layer.from_rgba(shade), top

    def _title_card(self, title: str, short: int) -> Layer:
        size = max(10, round(short * 0.075))
        return Layer.from_rgba(card([(title, size)], round(self.width * 0.9), padding=0.45))

    def _credits_card(self, title: str, credits: Sequence[str], short: int) -> Layer:
        """The credits, in the space the face leaves them: below the face in a tall frame
        (and in a square one where they fit there in letters of 2% of the frame), else in
        the right half while the character steps to the left (:meth:`_credits_slide`). The
        letters get smaller until the card fits (down to 8 px)."""
        readable = max(12, round(short * 0.02))
        if self.layout.portrait or self.width < self.height * 1.2:
            below = self._fitted_card(
                title, credits, short, self.width * 0.94, self.height - self.layout.band_top
            )
            if below[1] >= readable or self.layout.portrait:
                self._credits_beside = False
                return below[0]
        self._credits_beside = True
        return self._fitted_card(title, credits, short, self.width * 0.52, self.height * 0.9)[0]

    def _fitted_card(
        self, title: str, credits: Sequence[str], short: int, max_width: float, max_height: float
    ) -> tuple[Layer, int]:
        """The credits card at the largest letter size (down to 8 px) that fits, and that
        size."""
        size = max(8, round(short * 0.03))
        while True:
            lines = ([(f"♪ {title}", round(size * 1.5))] if title else []) + [
                (credit, size) for credit in credits
            ]
            panel = card(lines, round(max_width))
            if panel.shape[0] <= max_height or size <= 8:
                return Layer.from_rgba(panel), size
            size = max(8, round(size * 0.9))

    def _credits_slide(self) -> float:
        """How far (pixels) the character moves left while the credits show in a wide frame:
        from the centre to the middle of the left half, clear of the card."""
        if self._credits is None or not self._credits_beside:
            return 0.0
        card_left = self.width - round(self.width * 0.02) - self._credits.width
        return min(0.0, card_left / 2 - self.layout.centre_x)

    def _slide(self, time_s: float) -> float:
        """The character's move aside for the credits at ``time_s`` (eased in and out)."""
        if not self._slide_x or time_s <= self.credits_from_s:
            return 0.0
        t = min((time_s - self.credits_from_s) / self.look.credits_slide_s, 1.0)
        return self._slide_x * t * t * (3 - 2 * t)

    def _title_end(self) -> float:
        """The title card leaves as the singing begins (within 1.5 .. ``title_s`` s)."""
        first = self.timing.lines[0].start_s if self.timing.lines else self.look.title_s
        return min(max(first, 1.5), self.look.title_s)

    # -- a frame ----------------------------------------------------------------------------

    def render(self, index: int, out: np.ndarray | None = None) -> np.ndarray:
        """Frame ``index`` as RGB uint8 (height, width, 3), drawn into ``out`` (by default one
        buffer reused by every call) and returned."""
        frame = self.frame if out is None else out
        motion = self.motion
        mx, my = self._margin
        x0 = mx - round(float(motion.pan_x[index]) * 0.4)  # the far background moves less
        y0 = my - round(float(motion.pan_y[index]) * 0.4)
        np.copyto(frame, self.background[y0 : y0 + self.height, x0 : x0 + self.width])
        self._draw_character(frame, index)
        time_s = float(self.times[index])
        self._draw_lyrics(frame, time_s)
        if self._title is not None and time_s < self._title_until:
            opacity = min(time_s / 0.3, (self._title_until - time_s) / 0.5, 1.0)
            x = (self.width - self._title.width) // 2
            blend(frame, self._title.faded(opacity), x, self.layout.title_y)
        if self._credits is not None and time_s >= self.credits_from_s:
            # In a wide frame the character steps aside first, then the card fades in.
            shown_s = (
                time_s
                - self.credits_from_s
                - (self.look.credits_slide_s * 0.8 if self._slide_x else 0.0)
            )
            opacity = min(max(shown_s / self.look.credits_fade_s, 0.0), 1.0)
            if self._slide_x:  # beside the character, which has stepped aside
                x = self.width - round(self.width * 0.02) - self._credits.width
                y = (self.height - self._credits.height) // 2
            else:  # where the lyrics were (the singing is over), below the face
                x = (self.width - self._credits.width) // 2
                if self.layout.portrait:
                    y = self.layout.lyric_y + self.layout.text_px - self._credits.height // 2
                else:
                    y = round(self.height * 0.96) - self._credits.height
                y = max(y, self.layout.band_top)
                y = min(max(y, 0), self.height - self._credits.height)
            blend(frame, self._credits.faded(opacity), x, y)
        return frame

    def placement(self, index: int) -> tuple[float, float, float, float]:
        """Where the character's (cropped) sprite goes in frame ``index``: the frame position
        of its top-left corner and its scale factors (x, y, scale_x, scale_y)."""
        motion, layout, character = self.motion, self.layout, self.character
        zoom = float(motion.zoom[index])
        squash_x, squash_y = float(motion.scale_x[index]), float(motion.scale_y[index])
        # The squash pivots on the bust's bottom edge; the camera zooms about the face.
        full_w, full_h = character.size
        left, top = character.offset
        x = layout.centre_x + float(motion.dx[index]) - (full_w / 2 - left) * self._scale * squash_x
        y = layout.bottom_y + float(motion.dy[index]) - (full_h - top) * self._scale * squash_y
        px, py = self._pivot
        x = (
            px
            + (x - px) * zoom
            + float(motion.pan_x[index])
            + self._slide(float(self.times[index]))
        )
        y = py + (y - py) * zoom + float(motion.pan_y[index])
        return x, y, self._scale * squash_x * zoom, self._scale * squash_y * zoom

    def face_box(self, index: int) -> tuple[float, float, float, float]:
        """Where the face (face.json's box) is in frame ``index``: (x0, y0, x1, y1) pixels."""
        x, y, scale_x, scale_y = self.placement(index)
        (full_w, full_h), (left, top) = self.character.size, self.character.offset
        x0, y0, x1, y1 = self.character.face.face
        return (
            x + (x0 * full_w - left) * scale_x,
            y + (y0 * full_h - top) * scale_y,
            x + (x1 * full_w - left) * scale_x,
            y + (y1 * full_h - top) * scale_y,
        )

    def mouth_box(self, index: int) -> tuple[int, int, int, int]:
        """Where the mouth is in frame ``index`` (face.json's box, and below it where an open
        mouth reaches): (x0, y0, x1, y1) pixels."""
        x, y, scale_x, scale_y = self._drawn_at(index)
        left, top, right, bottom = self.character.mouth_box
        bottom += (bottom - top) // 2
        return (
            round(x + left * scale_x),
            round(y + top * scale_y),
            round(x + right * scale_x),
            round(y + bottom * scale_y),
        )

    def _drawn_at(self, index: int) -> tuple[int, int, float, float]:
        """:meth:`placement` as the sprite is drawn: at whole pixels, resized to a whole
        number of pixels (so a box computed from it is where the pixels are)."""
        x, y, scale_x, scale_y = self.placement(index)
        rest = self.character.rest
        width, height = round(rest.width * scale_x), round(rest.height * scale_y)
        return round(x), round(y), width / rest.width, height / rest.height

    def _draw_character(self, frame: np.ndarray, index: int) -> None:
        sprite = self.character.compose(self.mouth[index], float(self.blink[index]))
        x, y, scale_x, scale_y = self._drawn_at(index)
        size = (round(sprite.width * scale_x), round(sprite.height * scale_y))
        if size != (sprite.width, sprite.height):
            sprite = sprite.resized(*size)
        blend(frame, sprite, x, y)

    def _draw_lyrics(self, frame: np.ndarray, time_s: float) -> None:
        shade, shade_top = self._shade
        layout = self.layout
        # The band under the lyrics stays all through, so it does not flash between lines.
        blend(frame, shade, 0, shade_top)
        lines = self.timing.lines
        line = self.timing.line_at(time_s)
        if line is None or time_s < line.start_s - 1.5:
            return
        text = self.lyrics.line(
            line.text,
            tuple(m.text for m in line.morae),
            tuple(line.chars),
            tuple(ruby(line)) if self.furigana else (),
        )
        tx = (self.width - text.plain.width) // 2
        ty = layout.lyric_y - text.ruby_px  # furigana above the letters, which stay put
        blend(frame, text.plain, tx, ty)
        sung_px = round(text.sung_until_px(morae_sung(line, time_s)))
        if sung_px > 0:
            blend(frame, text.sung.left_part(sung_px), tx, ty)
        if layout.next_y is not None:
            following = lines.index(line) + 1
            if following < len(lines):
                upcoming = lines[following]
                text = self.next_lyrics.line(upcoming.text, ())
                blend(frame, text.plain, (self.width - text.plain.width) // 2, layout.next_y)

    def frames(self) -> Iterator[np.ndarray]:
        """Every frame in order (each the same buffer, overwritten by the next)."""
        for index in range(self.frame_count):
            yield self.render(index)


def morae_sung(line: Line, time_s: float) -> float:
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
