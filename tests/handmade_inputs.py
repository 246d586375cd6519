"""Small real inputs made by hand for the colorize and animate tests and the benchmark.

:func:`draw_character` draws what colorize and animate look for in a generated
``character.png`` (an outlined face, hair framing it, two eyes, a mouth, clothes, on a plain
light background) with its ``face.json``; :func:`write_expressions` draws the same character
with a mouth per vowel and closed eyes, as ``colored_expressions.png`` holds them.
:func:`write_song` writes a sung-looking ``vocals.wav`` (a tone per mora), the same as the
mixed ``song.wav``, its ``phonemes.lab`` and ``timing.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image, ImageDraw

from acgmake import Artifact, hookimpl
from acgmake.pipeline import Registry
from acgmake.voice.labels import Line, Mora, Phoneme, Timing, write_lab

#: The artifact kinds these inputs stand for, with the file names the real stages use.
KINDS = {
    "character": "character.png",
    "colored": "colored.png",
    "face": "face.json",
    "vocals": "vocals.wav",
    "song": "song.wav",
    "phonemes": "phonemes.lab",
    "timing": "timing.json",
}


class InputKinds:
    """A plugin registering :data:`KINDS`, as the character and sing stages register them."""

    @staticmethod
    @hookimpl
    def register_artifacts(register):
        for kind, filename in KINDS.items():
            register(Artifact(kind, filename))


def load_stages(*modules: str) -> Registry:
    """The registry of the built-in stage ``modules`` plus :class:`InputKinds`."""
    from acgmake.testing import load_plugins

    return load_plugins([InputKinds], builtins=modules).registry


BACKGROUND = (238, 240, 244)
SKIN = (246, 222, 206)
HAIR = (120, 82, 64)
EYES = (70, 110, 170)
CLOTHES = (90, 120, 90)
LINE = (40, 30, 30)
#: The inside of the open mouths of :func:`write_expressions` (blue, unlike a drawn mouth).
EXPRESSION_MOUTH = (60, 40, 150)
#: Each vowel's open mouth on the 512 grid (an ellipse's box), for :func:`draw_character`.
MOUTHS = {
    "a": (236, 288, 276, 334),
    "i": (228, 298, 284, 310),
    "u": (249, 294, 263, 312),
    "e": (232, 292, 280, 318),
    "o": (242, 288, 270, 328),
}


def draw_character(
    size: int = 128, *, canvas: int = 512, mouth: str = "rest", eyes_closed: bool = False
) -> tuple[np.ndarray, dict]:
    """An RGB uint8 portrait ``size`` pixels square and its face.json dict.

    Drawn at ``canvas`` pixels and scaled down with antialiasing, so the small image has the
    soft, thin outlines of a low-resolution generated picture. ``mouth`` is "rest" (a closed
    smile) or a vowel (an open mouth, :data:`EXPRESSION_MOUTH` inside).
    """
    s = canvas / 512  # every coordinate below is on a 512 grid
    image = Image.new("RGB", (canvas, canvas), BACKGROUND)
    draw = ImageDraw.Draw(image)
    width = max(1, round(5 * s))

    def box(x0: float, y0: float, x1: float, y1: float) -> list[float]:
        return [x0 * s, y0 * s, x1 * s, y1 * s]

    def poly(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return [(x * s, y * s) for x, y in points]

    # Clothes: shoulders running off the bottom edge.
    draw.polygon(
        poly([(70, 520), (110, 420), (200, 385), (312, 385), (402, 420), (442, 520)]),
        fill=CLOTHES,
        outline=LINE,
        width=width,
    )
    # Hair behind the head, falling to the shoulders.
    draw.rounded_rectangle(
        box(120, 80, 392, 400), radius=110 * s, fill=HAIR, outline=LINE, width=width
    )
    # Neck.
    draw.rectangle(box(226, 320, 286, 395), fill=SKIN, outline=LINE, width=width)
    # Face.
    draw.ellipse(box(160, 130, 352, 350), fill=SKIN, outline=LINE, width=width)
    # Bangs over the forehead.
    draw.chord(box(140, 70, 372, 260), 180, 360, fill=HAIR, outline=LINE, width=width)
    # Eyes: outlined iris, dark pupil, a white highlight; closed, a curved lash line.
    for cx in (212, 300):
        if eyes_closed:
            draw.arc(box(cx - 24, 215, cx + 24, 250), 10, 170, fill=LINE, width=width)
            continue
        draw.ellipse(box(cx - 22, 205, cx + 22, 260), fill=EYES, outline=LINE, width=width)
        draw.ellipse(box(cx - 9, 222, cx + 9, 248), fill=LINE)
        draw.ellipse(box(cx - 14, 212, cx - 4, 222), fill=(255, 255, 255))
    if mouth == "rest":  # a small closed smile
        draw.arc(box(236, 290, 276, 318), 20, 160, fill=LINE, width=width)
    else:
        draw.ellipse(box(*MOUTHS[mouth]), fill=EXPRESSION_MOUTH, outline=LINE, width=width)

    small = image.resize((size, size), Image.LANCZOS)
    face = {
        "face": [160 / 512, 130 / 512, 352 / 512, 350 / 512],
        "mouth": [232 / 512, 288 / 512, 280 / 512, 322 / 512],
        "eyes": [
            [190 / 512, 205 / 512, 234 / 512, 260 / 512],
            [278 / 512, 205 / 512, 322 / 512, 260 / 512],
        ],
        "points": {
            "hair": [140 / 512, 330 / 512],
            "skin": [256 / 512, 190 / 512],
            "eyes": [[200 / 512, 250 / 512], [288 / 512, 250 / 512]],
            "clothes": [150 / 512, 480 / 512],
            "background": [30 / 512, 30 / 512],
        },
        "colors": {"skin": "#{:02x}{:02x}{:02x}".format(*SKIN)},
    }
    return np.asarray(small), face


#: (mora, consonant, vowel, MIDI note) for "kirakira hikaru", one mora per beat.
SONG = [
    ("き", "k", "i", 72),
    ("ら", "r", "a", 72),
    ("き", "k", "i", 79),
    ("ら", "r", "a", 79),
    ("ひ", "h", "i", 81),
    ("か", "k", "a", 81),
    ("る", "r", "u", 79),
]


def write_song(
    folder: Path,
    *,
    duration_s: float = 2.0,
    phrases: int = 1,
    lead_s: float = 0.3,
    sample_rate: int = 48_000,
) -> dict[str, Path]:
    """Write vocals.wav, phonemes.lab and timing.json for ``phrases`` phrases into ``folder``.

    Each phrase is :data:`SONG` (one lyric line) with ``lead_s`` of silence before and after
    it; its morae share the rest of the phrase's time, each a consonant (the first 20 %) and
    a vowel sung as a tone. Returns the paths by artifact kind.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    phrase_s = duration_s / phrases
    step = (phrase_s - 2 * lead_s) / len(SONG)
    phonemes: list[Phoneme] = []
    lines = []
    audio = np.zeros(round(duration_s * sample_rate), np.float32)
    for phrase in range(phrases):
        begin = phrase * phrase_s
        phonemes.append(Phoneme(begin, begin + lead_s, "sil" if phrase == 0 else "pau"))
        morae = []
        for number, (text, consonant, vowel, midi) in enumerate(SONG):
            start = begin + lead_s + number * step
            vowel_start = start + 0.2 * step
            phonemes += [
                Phoneme(start, vowel_start, consonant),
                Phoneme(vowel_start, start + step, vowel),
            ]
            morae.append(Mora(text, round(start, 4), round(start + step, 4), midi))
            first, last = round(vowel_start * sample_rate), round((start + step) * sample_rate)
            t = np.arange(last - first) / sample_rate
            envelope = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)
            tone = np.sin(2 * np.pi * 440 * 2 ** ((midi - 69) / 12) * t)
            audio[first:last] = 0.3 * envelope * tone
        end = begin + phrase_s
        phonemes.append(Phoneme(end - lead_s, end, "sil" if phrase == phrases - 1 else "pau"))
        text = "".join(m.text for m in morae)
        lines.append(Line(text, morae[0].start_s, morae[-1].end_s, morae))

    paths = {
        "vocals": folder / "vocals.wav",
        "song": folder / "song.wav",
        "phonemes": folder / "phonemes.lab",
        "timing": folder / "timing.json",
    }
    soundfile.write(paths["vocals"], audio, sample_rate, subtype="PCM_16")
    soundfile.write(paths["song"], np.stack([audio, audio], axis=1), sample_rate, subtype="PCM_24")
    write_lab(paths["phonemes"], phonemes)
    Timing(60.0 / step, 4, lead_s, duration_s, lines).write(paths["timing"])
    return paths


def write_character(folder: Path, size: int = 128) -> dict[str, Path]:
    """Write character.png and face.json into ``folder``; returns the paths by kind."""
    return _write_picture(folder, "character", *draw_character(size))


def _write_picture(folder: Path, kind: str, picture: np.ndarray, face: dict) -> dict[str, Path]:
    """Write ``picture`` as ``<kind>.png`` and ``face`` as face.json into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {kind: folder / KINDS[kind], "face": folder / "face.json"}
    Image.fromarray(picture).save(paths[kind])
    paths["face"].write_text(json.dumps(face, indent=1) + "\n", encoding="utf-8")
    return paths


def draw_colored(size: int = 128, **options) -> tuple[np.ndarray, dict]:
    """The character of :func:`draw_character` (same ``options``) as RGBA, its background
    transparent, as colored.png holds a colorized character; and its face.json dict."""
    rgb, face = draw_character(size, **options)
    background = np.all(np.abs(rgb.astype(int) - BACKGROUND) < 6, axis=2)
    alpha = np.where(background, 0, 255).astype(np.uint8)
    return np.dstack([rgb, alpha]), face


def write_colored(folder: Path, size: int = 128) -> dict[str, Path]:
    """Write colored.png (:func:`draw_colored`) and face.json into ``folder``; returns the
    paths by kind."""
    return _write_picture(folder, "colored", *draw_colored(size))


def write_expressions(folder: Path, size: int = 128) -> Path:
    """Write colored_expressions.png into ``folder``: the character of :func:`draw_colored`
    as rest, a, i, u, e, o and blink side by side (as the colorize stage makes it). Returns
    its path."""
    from acgmake.image.face import EXPRESSIONS

    pictures = []
    for name in EXPRESSIONS:
        mouth = "rest" if name in ("rest", "blink") else name
        rgba, _ = draw_colored(size, mouth=mouth, eyes_closed=name == "blink")
        pictures.append(rgba)
    path = Path(folder) / "colored_expressions.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.hstack(pictures)).save(path)
    return path
