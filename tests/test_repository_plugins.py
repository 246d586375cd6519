"""The repository's plugins (``plugins/``) installed together, as CI installs them: ``acgmake
plugins`` lists each with its version, and their stages do their jobs inside ``acgmake song``,
one after another on the same character (each plugin's own tests try it alone)."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess

import numpy as np
import pytest
from PIL import Image

from acgmake.testing import run_command

#: Distribution name -> the stages and commands it adds.
PLUGINS = {
    "acgmake-sticker": {"stages": ["sticker"]},
    "acgmake-svs-export": {"stages": ["svs_export"]},
    "acgmake-haircolor": {"stages": ["haircolor"]},
    "acgmake-attributes": {"commands": ["find-character"]},
    "acgmake-tag": {"stages": ["tag"], "commands": ["characters-like"]},
    "acgmake-faces": {"commands": ["faces"]},
    "acgmake-simplify": {"stages": ["simplify"]},
}


def _installed(name: str) -> bool:
    try:
        importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


MISSING = [name for name in PLUGINS if not _installed(name)]
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"not installed (CI installs them all): {', '.join(MISSING)}"
)
#: The hair colour asked for, and an outline colour no character has.
HAIR, OUTLINE = "silver", (255, 0, 255)


def test_acgmake_plugins_lists_each_with_its_version_and_what_it_adds(tmp_path):
    listed = run_command("plugins", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    found = {entry["name"]: entry for entry in json.loads(listed.stdout)}
    for name, adds in PLUGINS.items():
        entry = found[name]
        assert entry["status"] == "ok", entry
        assert entry["version"] == importlib.metadata.version(name)
        assert entry.get("stages", []) == adds.get("stages", [])
        assert set(adds.get("commands", [])) <= set(entry.get("commands", []))


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    """One ``acgmake song`` with every plugin installed: the hair recoloured, a magenta sticker
    outline, the character tagged, the score exported for the singing editors."""
    folder = tmp_path_factory.mktemp("plugins-song")
    (folder / "spring.txt").write_text("はるの かぜが ふく\nそらに うたう\n", encoding="utf-8")
    ran = run_command("song", "spring.txt", "--hair", HAIR, "--sticker-colour", "#ff00ff",
                      "--also", "svs_export", "--size", "320x180", "--fps", "12", "--seed", "3",
                      "--fit-steps", "0", cwd=folder)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    return folder / "spring.acgmake", folder / "spring.mp4"


def _picture(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGBA"))


@pytest.mark.slow
def test_the_plugins_stages_run_in_the_song_where_their_kinds_put_them(song):
    run, _ = song
    manifest = json.loads((run / "manifest.json").read_text("utf-8"))
    order = manifest["order"]
    # The recolour and the outline refine the colored character before the expressions take
    # their colours from it and the clip is drawn; the tags are read after the recolour.
    assert order.index("colorize") < order.index("haircolor") < order.index("sticker")
    assert order.index("sticker") < order.index("colorize_expressions") < order.index("animate")
    assert order.index("haircolor") < order.index("tag")
    assert order.index("compose") < order.index("svs_export")
    assert "simplify" not in order  # optional, not asked for
    for name, adds in PLUGINS.items():
        for stage in adds.get("stages", []):
            if stage in order:
                entry = manifest["stages"][stage]
                assert entry["plugin"] == name
                assert entry["plugin_version"] == importlib.metadata.version(name)
    for kind in ("ustx", "ust", "svp", "vsqx"):
        assert (run / f"score.{kind}").stat().st_size > 500


@pytest.mark.slow
def test_the_hair_is_the_asked_colour_in_the_pictures_the_clip_is_drawn_from(song):
    from acgmake_haircolor import hair_mask, target_colour
    from skimage.color import deltaE_ciede2000, rgb2lab

    from acgmake.image.face import EXPRESSIONS
    from acgmake.image.openraster import read_ora

    run, _ = song
    layers, _ = read_ora(run / "stages" / "colorize" / "colored.ora")
    hair = hair_mask(dict(layers)["hair"]) > 0.5
    assert hair.mean() > 0.05
    want = rgb2lab(np.array([[target_colour(HAIR)]], float) / 255.0)[0, 0]
    strip = _picture(run / "colored_expressions.png")
    width = strip.shape[1] // len(EXPRESSIONS)
    pictures = [_picture(run / "colored.png")] + [
        strip[:, i * width : (i + 1) * width] for i in range(len(EXPRESSIONS))
    ]
    for picture in pictures:
        lab = rgb2lab(picture[..., :3] / 255.0)
        body = hair & (lab[..., 0] > 40)  # the hair's colour, not its outline
        assert deltaE_ciede2000(lab[body].mean(axis=0), want) < 3.0


@pytest.mark.slow
def test_the_sticker_outline_is_round_the_character_and_in_the_clip(song):
    from imageio_ffmpeg import get_ffmpeg_exe

    run, clip = song
    before = _picture(run / "stages" / "haircolor" / "colored.png")
    after = _picture(run / "colored.png")
    inside = before[..., 3] == 255
    assert (after[inside] == before[inside]).all()  # the character itself untouched
    grown = np.zeros_like(inside)
    ys, xs = np.nonzero(inside)
    for dy, dx in ((0, 6), (0, -6), (6, 0), (-6, 0)):  # half the outline's 12 px out
        grown[np.clip(ys + dy, 0, grown.shape[0] - 1), np.clip(xs + dx, 0, grown.shape[1] - 1)] = 1
    ring = grown & (before[..., 3] == 0)
    assert ring.sum() > 300
    assert (np.abs(after[ring][:, :3].astype(int) - OUTLINE).max(axis=1) < 8).mean() > 0.95
    # The clip draws the outlined character: a frame mid-song shows the outline's colour.
    frame = subprocess.run(
        [get_ffmpeg_exe(), "-v", "error", "-ss", "4", "-i", str(clip), "-frames:v", "1",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    pixels = np.frombuffer(frame, np.uint8).reshape(180, 320, 3).astype(int)
    assert (np.abs(pixels - OUTLINE).max(axis=2) < 40).sum() > 150


@pytest.mark.slow
def test_the_tags_describe_the_recoloured_character_not_its_outline(song):
    run, _ = song
    tags = json.loads((run / "tags.json").read_text("utf-8"))
    # Read from colored.png, the magenta outline was tagged "pink hair".
    assert f"{HAIR} hair" in tags["tags"] and "pink hair" not in tags["tags"]
    assert tags["description"].startswith(f"A singer with {HAIR} hair")
