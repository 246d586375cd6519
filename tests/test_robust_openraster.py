"""OpenRaster files acgmake reads (``colored.ora``, or a user's own given with ``--layers``, as
Krita, GIMP and MyPaint save them): every layer lands on the canvas where the file places it,
and anything else is a one-line UserError naming the file, in bounded memory and time."""

from __future__ import annotations

import importlib.util
import io
import zipfile
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from acgmake.errors import UserError
from acgmake.image.openraster import MAX_LAYERS, read_ora, write_ora
from robust_support import acgmake_limited, assert_clear_failure

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def png(rgba: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgba).save(buffer, format="PNG")
    return buffer.getvalue()


def solid(width: int, height: int, colour=(200, 40, 40, 255)) -> np.ndarray:
    return np.broadcast_to(np.array(colour, np.uint8), (height, width, 4)).copy()


def ora(path, stack: str, members: dict[str, bytes], *, merged: bytes | None = None) -> None:
    """An OpenRaster file as a paint program may write it: ``stack`` is stack.xml's text."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("mimetype", "image/openraster", zipfile.ZIP_STORED)
        archive.writestr("stack.xml", stack)
        for name, data in members.items():
            archive.writestr(name, data)
        if merged is not None:
            archive.writestr("mergedimage.png", merged)


KRITA_STACK = """<?xml version="1.0" encoding="UTF-8"?>
<image w="64" h="48" xres="72" yres="72" version="0.0.6">
 <stack name="root">
  <stack name="Group 1" x="0" y="0">
   <layer name="hair" src="data/layer2.png" x="10" y="5" opacity="1" visibility="visible"/>
  </stack>
  <layer name="face" src="data/layer1.png" x="-4" y="30" opacity="1" visibility="visible"/>
 </stack>
</image>"""


def test_layers_stored_cropped_are_placed_on_the_canvas_where_the_file_says(tmp_path):
    # Krita stores each layer cropped to what it holds, at its x and y, and groups layers in
    # nested stacks: each comes back the canvas's size with its pixels in their place.
    path = tmp_path / "krita.ora"
    ora(
        path,
        KRITA_STACK,
        {
            "data/layer2.png": png(solid(20, 10)),
            "data/layer1.png": png(solid(30, 30, (1, 2, 3, 255))),
        },
        merged=png(solid(64, 48, (9, 9, 9, 255))),
    )
    layers, merged = read_ora(path)
    assert [name for name, _ in layers] == ["face", "hair"]  # bottom first
    face, hair = layers[0][1], layers[1][1]
    assert hair.shape == face.shape == merged.shape == (48, 64, 4)
    assert (hair[5:15, 10:30] == (200, 40, 40, 255)).all()
    assert hair[..., 3].sum() == 20 * 10 * 255  # nothing else of it
    # The face layer starts 4 px left of the canvas and runs past its bottom: what is on the
    # canvas of it is kept, the rest cut.
    assert (face[30:48, 0:26] == (1, 2, 3, 255)).all() and face[..., 3].sum() == 18 * 26 * 255


def test_the_files_acgmake_writes_read_back_as_written(tmp_path):
    rng = np.random.default_rng(4)
    layers = [(name, rng.integers(0, 256, (20, 30, 4), np.uint8)) for name in ("flats", "lines")]
    merged = rng.integers(0, 256, (20, 30, 4), np.uint8)
    write_ora(tmp_path / "colored.ora", layers, merged)
    read, read_merged = read_ora(tmp_path / "colored.ora")
    assert [n for n, _ in read] == ["flats", "lines"] and (read_merged == merged).all()
    assert all((a == b).all() for (_, a), (_, b) in zip(read, layers, strict=True))
    none, merged_only = read_ora(tmp_path / "colored.ora", layers=False)
    assert none == [] and (merged_only == merged).all()


def _stack(*layers: str, w: str = "64", h: str = "48") -> str:
    return f'<image w="{w}" h="{h}"><stack>{"".join(layers)}</stack></image>'


LAYER = '<layer name="a" src="data/a.png" x="0" y="0"/>'
SMALL = {"data/a.png": png(solid(8, 8))}
MERGED = png(solid(64, 48))


@pytest.mark.robust(2)
@pytest.mark.parametrize(
    ("stack", "members", "merged", "words"),
    [
        (None, None, None, ("not an openraster",)),
        (_stack(LAYER), SMALL, None, ("mergedimage.png",)),
        ("<image w=", SMALL, MERGED, ("stack.xml",)),
        ("<image><stack/></image>", {}, MERGED, ("canvas size",)),
        (_stack(LAYER, w="100000", h="100000"), SMALL, MERGED, ("100000x100000",)),
        (_stack(LAYER, w="-5"), SMALL, MERGED, ("canvas",)),
        (_stack('<layer name="a" src="data/gone.png"/>'), SMALL, MERGED, ("data/gone.png",)),
        (_stack(LAYER), {"data/a.png": b"not a png"}, MERGED, ("data/a.png", "not a picture")),
        (_stack(LAYER), SMALL, b"\x89PNG broken", ("mergedimage.png",)),
        (_stack('<layer src="data/a.png" x="left"/>'), SMALL, MERGED, ("place",)),
        (_stack(LAYER * (MAX_LAYERS + 1)), SMALL, MERGED, (f"more than {MAX_LAYERS}",)),
        # A stack.xml of 50 MB that the zip holds in about 50 KB.
        (_stack(LAYER) + " " * 50_000_000, SMALL, MERGED, ("stack.xml",)),
    ],
)
def test_broken_openraster_files_are_one_line_naming_the_file(
    tmp_path, stack, members, merged, words
):
    path = tmp_path / "mine.ora"
    if stack is None:
        path.write_bytes(b"GIMP? no: a plain text file named .ora")
    else:
        ora(path, stack, members, merged=merged)
    assert path.stat().st_size < 200_000
    with pytest.raises(UserError) as caught:
        read_ora(path)
    message = str(caught.value)
    assert message.splitlines() == [message] and "mine.ora" in message
    for word in words:
        assert word.lower() in message.lower(), message


@pytest.mark.robust(1)
def test_a_layer_picture_of_gigapixels_is_refused_before_it_is_decoded(tmp_path):
    # PNG headers claiming 60000 x 60000 and 6000 x 6000 pixels: refused from their sizes,
    # nothing decoded (the first is past PIL's own limit, the second past acgmake's).
    header = png(solid(1, 1))
    for side, words in ((60000, "too large"), (6000, "6000x6000 pixels, too large")):
        ihdr = b"IHDR" + side.to_bytes(4, "big") * 2 + header[24:29]
        wide = header[:12] + ihdr + zlib.crc32(ihdr).to_bytes(4, "big") + header[33:]
        path = tmp_path / f"huge{side}.ora"
        ora(path, _stack(LAYER), {"data/a.png": wide}, merged=MERGED)
        with pytest.raises(UserError, match=words):
            read_ora(path)


def _valid_file() -> bytes:
    buffer = io.BytesIO()
    write_ora(buffer, [("hair", solid(16, 12)), ("lines", solid(16, 12, (0, 0, 0, 128)))],
              solid(16, 12))  # fmt: skip
    return buffer.getvalue()


VALID = _valid_file()


@pytest.mark.robust(2)
@PROPERTY
@given(cuts=st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.binary(max_size=16)), max_size=4))
def test_any_damaged_openraster_file_reads_or_is_refused_in_one_line(tmp_path, cuts):
    data = bytearray(VALID)
    for where, what in cuts:
        data[where : where + len(what)] = what
    path = tmp_path / "damaged.ora"
    path.write_bytes(bytes(data))
    try:
        layers, merged = read_ora(path)
    except UserError as error:
        assert str(error).splitlines() == [str(error)] and "damaged.ora" in str(error)
    else:
        assert all(layer.shape == merged.shape for _, layer in layers)


@pytest.mark.robust(2)
@pytest.mark.skipif(
    importlib.util.find_spec("acgmake_haircolor") is None,
    reason="the acgmake-haircolor plugin is not installed (CI installs it)",
)
def test_a_users_broken_layers_file_is_one_line_from_the_command(tmp_path):
    Image.fromarray(solid(16, 12)).save(tmp_path / "colored.png")
    (tmp_path / "mine.ora").write_bytes(b"not a zip")
    before = (tmp_path / "mine.ora").read_bytes()
    result = acgmake_limited(
        "haircolor", "colored.png", "--layers", "mine.ora", "--hair", "silver",
        cwd=tmp_path, env={"ACGMAKE_PLUGINS": "acgmake-haircolor"},
    )  # fmt: skip
    assert_clear_failure(result, "mine.ora", "openraster")
    assert (tmp_path / "mine.ora").read_bytes() == before
