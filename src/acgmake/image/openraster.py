"""OpenRaster (``.ora``): layered pictures that Krita, GIMP and MyPaint open.

An OpenRaster file (https://www.openraster.org/, baseline 0.0.6) is a zip holding, in this
order: ``mimetype`` (stored uncompressed, first, the text ``image/openraster``), ``stack.xml``
(the layers, topmost first), each layer as a PNG under ``data/``, ``Thumbnails/thumbnail.png``
(at most 256 px) and ``mergedimage.png`` (the composite at full size).
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
from PIL import Image

MIMETYPE = "image/openraster"


def _png(rgba: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    # The fastest zlib level: a 1024 px layer encodes in a third of the time, a fifth
    # larger; the file is for opening in a paint program, not for keeping small.
    Image.fromarray(np.ascontiguousarray(rgba)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def stack_xml(names: Sequence[str], width: int, height: int) -> bytes:
    """The ``stack.xml`` of layers ``names`` (bottom first), each ``data/<name>.png``."""
    image = ElementTree.Element(
        "image", {"version": "0.0.6", "w": str(width), "h": str(height), "xres": "72", "yres": "72"}
    )
    stack = ElementTree.SubElement(image, "stack")
    for name in reversed(names):  # OpenRaster lists the topmost layer first
        ElementTree.SubElement(
            stack,
            "layer",
            {
                "name": name,
                "src": f"data/{name}.png",
                "x": "0",
                "y": "0",
                "opacity": "1.0",
                "visibility": "visible",
                "composite-op": "svg:src-over",
            },
        )
    return ElementTree.tostring(image, encoding="UTF-8", xml_declaration=True)


def write_ora(path: Path, layers: Sequence[tuple[str, np.ndarray]], merged: np.ndarray) -> None:
    """Write ``layers`` ((name, RGBA uint8), bottom first, all one size) and their composite
    ``merged`` as an OpenRaster file at ``path``."""
    height, width = merged.shape[:2]
    for name, rgba in layers:
        if rgba.shape[:2] != (height, width):
            # Paint programs place every layer at the canvas's top left: one of another size
            # would not lie over the others.
            raise ValueError(
                f"layer {name!r} is {rgba.shape[1]}x{rgba.shape[0]}, not {width}x{height}"
            )
    thumbnail = Image.fromarray(np.ascontiguousarray(merged))
    thumbnail.thumbnail((256, 256))

    def entry(name: str, data: bytes | str, compression: int = zipfile.ZIP_STORED) -> None:
        # A fixed date, so the same picture gives the same file (not today's time).
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        archive.writestr(info, data, compress_type=compression)

    with zipfile.ZipFile(path, "w") as archive:
        entry("mimetype", MIMETYPE)
        names = [name for name, _ in layers]
        entry("stack.xml", stack_xml(names, width, height), zipfile.ZIP_DEFLATED)
        for name, rgba in layers:
            # PNG is compressed already; storing it keeps the file quick to open.
            entry(f"data/{name}.png", _png(rgba))
        entry("Thumbnails/thumbnail.png", _png(np.asarray(thumbnail)), zipfile.ZIP_DEFLATED)
        entry("mergedimage.png", _png(merged), zipfile.ZIP_DEFLATED)


#: Limits on an OpenRaster file acgmake reads (a user's, from Krita or GIMP, may be given with
#: ``--layers``): layers, the size of stack.xml, and the pixels of the canvas and each layer.
MAX_LAYERS, MAX_STACK_BYTES = 256, 1_000_000


def read_ora(path: Path, *, layers: bool = True) -> tuple[list[tuple[str, np.ndarray]], np.ndarray]:
    """The layers (name, RGBA; bottom first) and merged image of the OpenRaster file ``path``,
    each the canvas's size: a layer a paint program stored cropped to what it holds is placed
    at its ``x``, ``y`` on a clear canvas (with ``layers=False`` the merged image only, the
    layers' list empty). UserError when it is not an OpenRaster file this reads, or past the
    limits (:data:`MAX_LAYERS`, :data:`MAX_STACK_BYTES`, the canvas at most
    :data:`acgmake.image.picture.MAX_PICTURE_PIXELS`)."""
    from acgmake.errors import UserError
    from acgmake.image.picture import MAX_PICTURE_PIXELS

    def refuse(why: str) -> UserError:
        return UserError(
            f"cannot read the layers file {path}: {why}; give the colored.ora acgmake wrote, "
            "or one saved as OpenRaster (.ora) by Krita, GIMP or MyPaint"
        )

    def picture(archive: zipfile.ZipFile, name: str) -> np.ndarray:
        try:
            with archive.open(name) as member, Image.open(member) as image:
                if image.width * image.height > MAX_PICTURE_PIXELS:
                    raise refuse(f"{name} is {image.width}x{image.height} pixels, too large")
                return np.asarray(image.convert("RGBA"))
        except Image.DecompressionBombError:  # PIL's own limit, far above ours
            raise refuse(f"{name} is over {2 * Image.MAX_IMAGE_PIXELS} pixels, too large") from None
        except (OSError, ValueError, zlib.error) as error:
            # (not the error's text: PIL's names the zip member's Python object)
            raise refuse(f"{name} is not a picture ({type(error).__name__})") from None

    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename: info for info in archive.infolist()}
            for needed in ("stack.xml", "mergedimage.png"):
                if needed not in members:
                    raise refuse(f"it has no {needed}")
            if members["stack.xml"].file_size > MAX_STACK_BYTES:
                raise refuse("its stack.xml is larger than a layer list can be")
            try:
                root = ElementTree.fromstring(archive.read("stack.xml"))
                width, height = int(root.get("w", "")), int(root.get("h", ""))
            except (ElementTree.ParseError, ValueError):
                raise refuse("its stack.xml is not a layer list with the canvas size") from None
            if not (0 < width and 0 < height and width * height <= MAX_PICTURE_PIXELS):
                raise refuse(f"its canvas is {width}x{height} pixels")
            stack = root.find("stack")
            found = [] if stack is None else stack.iter("layer")  # those in groups as well
            entries = [layer for layer in found if layer.get("src")]
            if len(entries) > MAX_LAYERS:
                raise refuse(f"it has more than {MAX_LAYERS} layers")
            found_layers = []
            for layer in reversed(entries if layers else []):  # topmost first in stack.xml
                source = layer.get("src", "")
                if source not in members:
                    raise refuse(f"its layer {source} is missing")
                pixels = picture(archive, source)
                try:
                    x, y = round(float(layer.get("x", 0))), round(float(layer.get("y", 0)))
                except ValueError:
                    raise refuse(f"the layer {source} has no place on the canvas") from None
                placed = _on_canvas(pixels, x, y, width, height)
                found_layers.append((layer.get("name", source), placed))
            merged = _on_canvas(picture(archive, "mergedimage.png"), 0, 0, width, height)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError) as error:
        raise refuse(f"it is not an OpenRaster (zip) file ({error})") from None
    except NotImplementedError as error:  # a compression zipfile does not know
        raise refuse(str(error)) from None
    return found_layers, merged


def _on_canvas(rgba: np.ndarray, x: int, y: int, width: int, height: int) -> np.ndarray:
    """``rgba`` placed with its top-left corner at (x, y) on a clear ``width`` x ``height``
    canvas (itself when it is that canvas already)."""
    if (x, y) == (0, 0) and rgba.shape[:2] == (height, width):
        return rgba
    canvas = np.zeros((height, width, 4), np.uint8)
    top, left = max(y, 0), max(x, 0)
    bottom, right = min(y + rgba.shape[0], height), min(x + rgba.shape[1], width)
    if top < bottom and left < right:
        canvas[top:bottom, left:right] = rgba[top - y : bottom - y, left - x : right - x]
    return canvas
