"""OpenRaster (``.ora``): layered pictures that Krita, GIMP and MyPaint open.

An OpenRaster file (https://www.openraster.org/, baseline 0.0.6) is a zip holding, in this
order: ``mimetype`` (stored uncompressed, first, the text ``image/openraster``), ``stack.xml``
(the layers, topmost first), each layer as a PNG under ``data/``, ``Thumbnails/thumbnail.png``
(at most 256 px) and ``mergedimage.png`` (the composite at full size).
"""

from __future__ import annotations

import io
import zipfile
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


def read_ora(path: Path) -> tuple[list[tuple[str, np.ndarray]], np.ndarray]:
    """The layers (name, RGBA; bottom first) and merged image of the OpenRaster file ``path``."""
    with zipfile.ZipFile(path) as archive:
        root = ElementTree.fromstring(archive.read("stack.xml"))
        layers = []
        for layer in reversed(root.find("stack").findall("layer")):
            with Image.open(io.BytesIO(archive.read(layer.get("src")))) as image:
                layers.append((layer.get("name"), np.asarray(image.convert("RGBA"))))
        with Image.open(io.BytesIO(archive.read("mergedimage.png"))) as image:
            merged = np.asarray(image.convert("RGBA"))
    return layers, merged
