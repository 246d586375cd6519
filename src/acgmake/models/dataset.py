"""Training pictures: reading a user's folder or archive safely, and ``prepare``'s shards.

DATA for ``acgmake train`` is a folder of PNG/JPEG/WebP pictures (searched recursively), or
a folder of *shards* written by :func:`prepare` (``acgmake train prepare``), which also reads
a ``.zip``, ``.tar``, ``.tar.gz`` or ``.tgz`` of pictures. Per-picture attributes are optional:
``attributes.jsonl`` (one JSON object a line with a ``file`` key, as the drawn set writes it)
and/or Danbooru-style tag lists, ``NAME.txt`` beside ``NAME.png`` (comma-separated tags).

The shard format (``index.json`` names it ``acgmake-shards`` version 1) is plain numpy: each
``train-NNNNN.npy`` (and ``holdout-NNNNN.npy``) holds uint8 N x S x S x 3, at most about
64 MB each, read memory-mapped, so a set of any size trains without being held in memory;
``attributes.jsonl`` beside them has one line per picture, in shard order; ``index.json``
counts them and reports every dropped file with its reason.

Reading is bounded, because DATA may come from anywhere: a picture's size is read from its
header before its pixels are decoded (at most :data:`MAX_PICTURE_PIXELS`), a file over
:data:`MAX_FILE_BYTES` is skipped, and an archive with a member outside its root (``../x``,
``/etc/x``), more than :data:`MAX_MEMBERS` members, more than :data:`MAX_UNPACKED_BYTES`
unpacked or a member that unpacks more than :data:`MAX_RATIO` times its packed size (a zip
bomb) is refused as a whole, before anything is unpacked.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from acgmake.errors import UserError
from acgmake.image.picture import MAX_PICTURE_PIXELS

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
#: A picture file larger than this is skipped (a 25-megapixel PNG is rarely over 60 MB).
MAX_FILE_BYTES = 64 * 2**20
#: Archive limits, checked from its directory before anything is unpacked.
MAX_MEMBERS = 2_000_000
MAX_UNPACKED_BYTES = 200 * 2**30
#: Compressed pictures rarely pack tighter than 10:1 (a flat PNG is already deflated); a
#: zip bomb packs 1000:1 or more. Members under 1 MB unpacked are not held to it.
MAX_RATIO = 100
#: Shards hold about this many bytes of pixels each.
SHARD_BYTES = 64 * 2**20
SHARD_FORMAT = "acgmake-shards"
SHARD_VERSION = 1
#: A face crop is this many times the face box's mean side, centred as the drawn set's
#: portraits are (its canonical layout: the face box spans 0.42 x 0.64 of the picture, so its
#: mean side is 0.534 of it; the face centre sits at 0.500, 0.486).
FACE_FRAME = 1 / 0.534
FACE_CENTER = (0.500, 0.486)
#: Near-duplicates: an 8 x 8 colour thumbnail within NEAR_RMS (of 255, root mean square) of
#: an earlier one. A JPEG re-encode (quality 70-90) of a resized copy differs by 0.6; two
#: different drawn-set portraits by at least 8.2 (the closest pair of 1,500). Candidates are
#: found first by a 64-bit difference hash within NEAR_BITS bits (a re-encode changes 0-2);
#: the hash alone cannot decide, as different drawn portraits share hashes.
NEAR_RMS = 3.0
NEAR_BITS = 3


# ---------------------------------------------------------------------------------------------
# Reading files from a folder or an archive


@dataclass
class Entry:
    """One file of DATA: its name relative to DATA (posix) and a way to read its bytes."""

    name: str
    size: int
    read: Callable[[], bytes]


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _checked_member_name(archive: Path, name: str) -> str:
    """``name`` as a relative posix path; UserError for one that leaves the archive's root."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise UserError(
            f"{archive} has a member outside its folder ({name!r}); acgmake refuses such "
            "archives — unpack it yourself and give the folder"
        )
    return str(path)


def _check_totals(archive: Path, count: int, unpacked: int) -> None:
    if count > MAX_MEMBERS:
        raise UserError(
            f"{archive} has {count} members (at most {MAX_MEMBERS}); split it or give a folder"
        )
    if unpacked > MAX_UNPACKED_BYTES:
        raise UserError(
            f"{archive} unpacks to {unpacked / 2**30:.0f} GiB (at most "
            f"{MAX_UNPACKED_BYTES / 2**30:.0f} GiB); split it or give a folder"
        )


@contextlib.contextmanager
def open_entries(data: Path) -> Iterator[list[Entry]]:
    """Every file of ``data`` (a folder, searched recursively, or an archive), sorted by name;
    an archive stays open (for ``Entry.read``) inside the ``with`` block.

    Archives are checked as a whole first (see the module docstring); links, devices and
    folders inside them are passed over."""
    data = Path(data)
    if data.is_dir():
        paths = sorted(p for p in data.rglob("*") if p.is_file())
        yield [Entry(p.relative_to(data).as_posix(), p.stat().st_size, p.read_bytes) for p in paths]
        return
    if not is_archive(data):
        raise UserError(f"{data} is not a folder or a .zip/.tar/.tar.gz of pictures")
    reader = _zip_entries if data.name.lower().endswith(".zip") else _tar_entries
    yield from reader(data)


def _zip_entries(archive: Path) -> Iterator[list[Entry]]:
    try:
        handle = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as error:
        raise UserError(f"cannot read {archive} as a zip archive ({error})") from None
    with handle:
        members = [m for m in handle.infolist() if not m.is_dir()]
        names = [_checked_member_name(archive, m.filename) for m in members]
        _check_totals(archive, len(members), sum(m.file_size for m in members))
        for member in members:
            if member.file_size > 2**20 and member.file_size > MAX_RATIO * max(
                member.compress_size, 1
            ):
                raise UserError(
                    f"{archive}: {member.filename!r} unpacks {member.file_size // 2**20} MiB "
                    f"from {member.compress_size} bytes (a zip bomb?); acgmake refuses it"
                )

        def read(member: zipfile.ZipInfo) -> bytes:
            # At most the declared size plus one byte: a lying header cannot unpack more.
            with handle.open(member) as stream:
                blob = stream.read(member.file_size + 1)
            if len(blob) > member.file_size:
                raise OSError("the member unpacks to more than its header says")
            return blob

        pairs = sorted(zip(members, names, strict=True), key=lambda m: m[1])
        yield [Entry(name, m.file_size, functools.partial(read, m)) for m, name in pairs]


def _tar_entries(archive: Path) -> Iterator[list[Entry]]:
    try:
        handle = tarfile.open(archive)
    except (tarfile.TarError, OSError) as error:
        raise UserError(f"cannot read {archive} as a tar archive ({error})") from None
    with handle:
        try:
            members = handle.getmembers()
        except (tarfile.TarError, OSError, EOFError) as error:
            raise UserError(f"cannot read {archive} as a tar archive ({error})") from None
        files = [m for m in members if m.isfile()]
        names = [_checked_member_name(archive, m.name) for m in members]
        _check_totals(archive, len(members), sum(m.size for m in files))
        by_name = dict(zip((m.name for m in members), names, strict=True))

        def read(member: tarfile.TarInfo) -> bytes:
            stream = handle.extractfile(member)
            if stream is None:
                raise OSError("not a regular file")
            return stream.read(member.size)

        files.sort(key=lambda m: by_name[m.name])
        yield [Entry(by_name[m.name], m.size, functools.partial(read, m)) for m in files]


# ---------------------------------------------------------------------------------------------
# Pictures and their attributes


def is_picture_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES) and ".labels." not in name


def decode_picture(blob: bytes) -> np.ndarray:
    """uint8 RGB H x W x 3 of an encoded picture (transparency over white). ValueError with
    the reason when it is not one or has more than MAX_PICTURE_PIXELS pixels (checked from the
    header, before decoding)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(blob)) as image:
            width, height = image.size
            if width * height > MAX_PICTURE_PIXELS:
                raise ValueError(f"{width}x{height} pixels is over the limit")
            image.load()
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                rgba = image.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
            return np.asarray(image.convert("RGB"))
    except Image.DecompressionBombError:
        raise ValueError("over PIL's decompression-bomb limit") from None
    except (OSError, SyntaxError) as error:
        raise ValueError(f"not a picture PIL can read ({error})") from None


def parse_tags(text: str) -> list[str]:
    """Danbooru-style tags: comma-separated (or one a line), trimmed, empty ones dropped."""
    return [t.strip() for t in text.replace("\n", ",").split(",") if t.strip()]


def read_attribute_rows(blob: bytes, where: str) -> dict[str, dict]:
    """``attributes.jsonl``: ``{file: row}``. UserError naming the line that is not JSON."""
    rows = {}
    for number, line in enumerate(blob.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rows[str(row["file"])] = row
        except (ValueError, KeyError, TypeError):
            raise UserError(
                f'{where} line {number} is not a JSON object with a "file" key'
            ) from None
    return rows


def _attributes_for(name: str, tables: dict[str, dict[str, dict]]) -> dict:
    """The row for picture ``name`` in the attributes.jsonl of its folder or any above it."""
    path = PurePosixPath(name)
    for parent in [path.parent, *path.parent.parents]:
        table = tables.get(str(parent))
        if table is not None:
            key = str(path.relative_to(parent)) if str(parent) != "." else name
            if key in table:
                return dict(table[key])
    return {}


# ---------------------------------------------------------------------------------------------
# Cropping, resizing and duplicates


def square_box(
    width: int, height: int, crop: str, face_box: tuple | None = None
) -> tuple[int, int, int]:
    """``(left, top, side)`` of the square to cut: around the face (``face_box`` normalised),
    the centred largest square, or the whole picture (``none``: side = the longer side)."""
    if crop == "none":
        side = max(width, height)
        return (width - side) // 2, (height - side) // 2, side
    if crop == "faces" and face_box is not None:
        x0, y0, x1, y1 = face_box
        face_w, face_h = (x1 - x0) * width, (y1 - y0) * height
        side = round((face_w + face_h) / 2 * FACE_FRAME)
        cx, cy = (x0 + x1) / 2 * width, (y0 + y1) / 2 * height
        return round(cx - FACE_CENTER[0] * side), round(cy - FACE_CENTER[1] * side), side
    side = min(width, height)
    return (width - side) // 2, (height - side) // 2, side


def cut_square(rgb: np.ndarray, left: int, top: int, side: int, size: int) -> np.ndarray:
    """The square ``side`` x ``side`` at ``left, top`` resized to ``size`` (area average when
    shrinking); parts outside the picture repeat its edge pixels."""
    from PIL import Image

    height, width = rgb.shape[:2]
    pad = max(0, -left, -top, left + side - width, top + side - height)
    if pad:
        rgb = np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
        left, top = left + pad, top + pad
    square = Image.fromarray(np.ascontiguousarray(rgb[top : top + side, left : left + side]))
    if side != size:
        method = Image.Resampling.BOX if side > size else Image.Resampling.LANCZOS
        square = square.resize((size, size), method)
    return np.asarray(square)


def difference_hash(picture: np.ndarray) -> int:
    """A 64-bit perceptual hash: whether each of 8 x 9 grey cells is brighter than its right
    neighbour. Re-encoding or resizing changes few bits."""
    from PIL import Image

    grey = Image.fromarray(picture).convert("L").resize((9, 8), Image.Resampling.BOX)
    cells = np.asarray(grey, dtype=np.int16)
    bits = (cells[:, 1:] > cells[:, :-1]).flatten()
    return int(sum(1 << i for i, bit in enumerate(bits) if bit))


def thumbnail(picture: np.ndarray) -> np.ndarray:
    """8 x 8 x 3 area-averaged colour thumbnail, float32, flattened (192 values)."""
    from PIL import Image

    small = Image.fromarray(picture).resize((8, 8), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32).ravel()


class DuplicateFinder:
    """Remembers pictures; ``seen(picture, name)`` names an earlier near-duplicate, or None.

    Four 16-bit bands of the difference hash index the pictures: two hashes within 3 bits
    agree on at least one band (pigeonhole), so a picture is compared with those sharing a
    band, not with all; the thumbnails of those candidates decide (:data:`NEAR_RMS`)."""

    def __init__(self) -> None:
        self.bands: list[dict[int, list[int]]] = [{}, {}, {}, {}]
        self.hashes: list[int] = []
        self.thumbs: list[np.ndarray] = []
        self.names: list[str] = []

    def seen(self, picture: np.ndarray, name: str) -> str | None:
        value, thumb = difference_hash(picture), thumbnail(picture)
        keys = [(value >> (16 * band)) & 0xFFFF for band in range(4)]
        found: set[int] = set()
        for table, key in zip(self.bands, keys, strict=True):
            found.update(table.get(key, ()))
        if found:
            index = np.fromiter(found, dtype=np.int64)
            hashes = np.array([self.hashes[i] for i in index], dtype=np.uint64)
            close = np.bitwise_count(hashes ^ np.uint64(value)) <= NEAR_BITS
            index = index[close]
            if len(index):
                thumbs = np.stack([self.thumbs[i] for i in index])
                rms = np.sqrt(np.square(thumbs - thumb).mean(1))
                if rms.min() <= NEAR_RMS:
                    return self.names[int(index[rms.argmin()])]
        number = len(self.names)
        for table, key in zip(self.bands, keys, strict=True):
            table.setdefault(key, []).append(number)
        self.hashes.append(value)
        self.thumbs.append(thumb)
        self.names.append(name)
        return None


# ---------------------------------------------------------------------------------------------
# Preparing shards


@dataclass
class PrepareReport:
    """What :func:`prepare` kept and dropped (also written into ``index.json``)."""

    kept: int = 0
    holdout: int = 0
    faces: int = 0
    dropped: list[dict[str, str]] = field(default_factory=list)

    def drop(self, name: str, reason: str) -> None:
        self.dropped.append({"file": name, "reason": reason})

    def reasons(self) -> dict[str, int]:
        """How many files were dropped for each kind of reason (the words before any colon)."""
        counts: dict[str, int] = {}
        for row in self.dropped:
            kind = row["reason"].split(":")[0].split(" (")[0]
            counts[kind] = counts.get(kind, 0) + 1
        return counts


class ShardWriter:
    """Appends pictures to numbered ``PREFIX-NNNNN.npy`` shards of at most ``per_shard``."""

    def __init__(self, out: Path, prefix: str, size: int) -> None:
        self.out, self.prefix, self.size = out, prefix, size
        self.per_shard = max(16, SHARD_BYTES // (size * size * 3))
        self.pending: list[np.ndarray] = []
        self.shards: list[dict] = []

    def add(self, picture: np.ndarray) -> None:
        self.pending.append(picture)
        if len(self.pending) == self.per_shard:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        name = f"{self.prefix}-{len(self.shards):05d}.npy"
        temporary = self.out / f".{name}.partial"
        with temporary.open("wb") as handle:
            np.save(handle, np.stack(self.pending), allow_pickle=False)
        temporary.replace(self.out / name)
        self.shards.append({"file": name, "count": len(self.pending)})
        self.pending = []


def prepare(
    data: Path,
    out: Path,
    size: int,
    *,
    crop: str = "faces",
    holdout: int = 0,
    min_side: int | None = None,
    log: Callable[[str], None] = print,
) -> PrepareReport:
    """Cut, resize and de-duplicate the pictures of ``data`` into shards in ``out``.

    ``crop``: ``faces`` (a square around the largest face that acgmake's face finder sees,
    framed like the drawn set; pictures without a face are dropped), ``center`` (the largest
    centred square) or ``none`` (the whole picture, padded to a square with its edge pixels).
    A square smaller than ``min_side`` (default ``size // 2``) source pixels is dropped (too
    blurry when scaled up), so are unreadable files and exact or near duplicates
    (:func:`difference_hash`). Pictures under a top-level ``holdout/`` folder, and the last
    ``holdout`` of the rest, go to the held-out shards that KID is measured against. Returns
    the report, also written to ``out/index.json``.
    """
    data, out = Path(data), Path(out)
    if crop not in ("faces", "center", "none"):
        raise UserError(f"--crop {crop!r}: give faces, center or none")
    if not data.exists():
        raise UserError(f"{data} does not exist; give a folder or archive of pictures")
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} is not empty; give a new folder for the shards")
    out.mkdir(parents=True, exist_ok=True)
    min_side = size // 2 if min_side is None else min_side
    with open_entries(data) as entries:
        report = _prepare(data, out, size, crop, holdout, min_side, entries, log)
    log(
        f"kept {report.kept} pictures (+{report.holdout} held out); dropped "
        f"{len(report.dropped)}" + "".join(f", {n} {k}" for k, n in report.reasons().items())
    )
    return report


def _prepare(data, out, size, crop, holdout, min_side, entries, log) -> PrepareReport:
    report = PrepareReport()
    tables: dict[str, dict[str, dict]] = {}
    texts: dict[str, Entry] = {}
    for entry in entries:
        path = PurePosixPath(entry.name)
        if path.name == "attributes.jsonl":
            tables[str(path.parent)] = read_attribute_rows(entry.read(), f"{data}/{entry.name}")
        elif path.suffix.lower() == ".txt":
            texts[str(path.with_suffix(""))] = entry
    pictures = [e for e in entries if is_picture_name(e.name)]
    if not pictures:
        raise UserError(f"{data} has no .png, .jpg or .webp pictures")
    kept: dict[bool, list[tuple[np.ndarray, dict]]] = {False: [], True: []}
    exact: dict[bytes, str] = {}
    near = DuplicateFinder()
    for number, entry in enumerate(pictures, 1):
        if number % 1000 == 0:
            log(f"read {number}/{len(pictures)} pictures, kept {sum(map(len, kept.values()))}")
        if entry.size > MAX_FILE_BYTES:
            report.drop(entry.name, f"too large: {entry.size / 2**20:.0f} MiB")
            continue
        try:
            blob = entry.read()
            rgb = decode_picture(blob)
        except (ValueError, OSError, EOFError, tarfile.TarError, zipfile.BadZipFile) as error:
            report.drop(entry.name, f"unreadable: {error}")
            continue
        height, width = rgb.shape[:2]
        face = None
        if crop == "faces":
            from acgmake.models.facefind import find_faces

            found = find_faces(rgb) if min(width, height) >= 8 else []
            if not found:
                report.drop(entry.name, "no face found")
                continue
            face = found[0].box
        left, top, side = square_box(width, height, crop, face)
        if side < min_side:
            report.drop(entry.name, f"too small: {side} px square (at least {min_side})")
            continue
        picture = cut_square(rgb, left, top, side, size)
        digest = picture.tobytes()
        if digest in exact:
            report.drop(entry.name, f"duplicate: of {exact[digest]}")
            continue
        exact[digest] = entry.name
        other = near.seen(picture, entry.name)
        if other is not None:
            report.drop(entry.name, f"near-duplicate: of {other}")
            continue
        row = _attributes_for(entry.name, tables)
        text = texts.get(str(PurePosixPath(entry.name).with_suffix("")))
        if text is not None:
            row["tags"] = parse_tags(text.read().decode("utf-8", "replace"))
        row["file"] = entry.name
        report.faces += face is not None
        held = PurePosixPath(entry.name).parts[0] == "holdout"
        kept[held].append((picture, row))
    if holdout:
        moved, kept[False] = kept[False][-holdout:], kept[False][:-holdout]
        kept[True] = moved + kept[True]
    if not kept[False]:
        raise UserError(
            f"no usable pictures in {data} ({len(report.dropped)} dropped: "
            f"{', '.join(f'{n} {k}' for k, n in report.reasons().items())}); give other "
            "pictures, or --crop center where no face is found"
        )
    report.kept, report.holdout = len(kept[False]), len(kept[True])
    _write_shards(out, size, crop, kept, report)
    return report


def _write_shards(out: Path, size: int, crop: str, kept: dict, report: PrepareReport) -> dict:
    index: dict = {"format": SHARD_FORMAT, "version": SHARD_VERSION, "size": size, "crop": crop}
    lines = []
    for held, prefix in ((False, "train"), (True, "holdout")):
        writer = ShardWriter(out, prefix, size)
        for picture, row in kept[held]:
            writer.add(picture)
            lines.append(json.dumps({"split": prefix, **row}, ensure_ascii=False))
        writer.flush()
        index[prefix] = writer.shards
    index["count"] = {"train": len(kept[False]), "holdout": len(kept[True])}
    index["faces"] = report.faces
    index["dropped"] = report.dropped
    index["dropped_by_reason"] = report.reasons()
    (out / "attributes.jsonl").write_text("\n".join(lines) + "\n", "utf-8")
    temporary = out / ".index.json.partial"
    temporary.write_text(json.dumps(index, indent=1, ensure_ascii=False) + "\n", "utf-8")
    temporary.replace(out / "index.json")  # written last: its presence means complete
    return index


# ---------------------------------------------------------------------------------------------
# Reading training sets


class PictureSet:
    """Pictures by index: ``len(s)``, ``s.take(indices)`` -> uint8 tensor N x 3 x S x S."""

    size: int
    rows: list[dict]

    def __len__(self) -> int:
        raise NotImplementedError

    def take(self, indices):
        import torch

        array = np.stack([self.picture(int(i)) for i in indices])
        return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()

    def picture(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def all(self, limit: int | None = None) -> np.ndarray:
        """The first ``limit`` pictures (default all) as uint8 N x S x S x 3."""
        count = len(self) if limit is None else min(limit, len(self))
        return np.stack([self.picture(i) for i in range(count)])


class ShardSet(PictureSet):
    """One split (``train`` or ``holdout``) of prepared shards, memory-mapped."""

    def __init__(self, folder: Path, split: str = "train") -> None:
        self.folder = Path(folder)
        self.index = read_index(self.folder)
        self.size = int(self.index["size"])
        self.shards = [self.folder / s["file"] for s in self.index[split]]
        counts = [int(s["count"]) for s in self.index[split]]
        self.starts = np.cumsum([0, *counts])
        self.arrays: dict[int, np.ndarray] = {}
        lines = (self.folder / "attributes.jsonl").read_text("utf-8").splitlines()
        rows = [json.loads(line) for line in lines if line.strip()]
        self.rows = [row for row in rows if row.get("split") == split]

    def __len__(self) -> int:
        return int(self.starts[-1])

    def picture(self, index: int) -> np.ndarray:
        shard = int(np.searchsorted(self.starts, index, side="right")) - 1
        if shard not in self.arrays:
            array = np.load(self.shards[shard], mmap_mode="r", allow_pickle=False)
            if array.dtype != np.uint8 or array.shape[1:] != (self.size, self.size, 3):
                raise UserError(f"{self.shards[shard]} is not a shard of {self.size} px pictures")
            self.arrays[shard] = array
        return np.asarray(self.arrays[shard][index - self.starts[shard]])


class FolderSet(PictureSet):
    """Pictures in a folder (recursively), decoded when taken: centre square, resized to
    ``size`` with an area average, as :func:`acgmake.models.train.load_images` does."""

    def __init__(self, folder: Path, size: int, names: list[str], rows: list[dict]) -> None:
        self.folder, self.size, self.names, self.rows = Path(folder), size, names, rows

    def __len__(self) -> int:
        return len(self.names)

    def picture(self, index: int) -> np.ndarray:
        path = self.folder / self.names[index]
        try:
            rgb = decode_picture(path.read_bytes())
        except (ValueError, OSError) as error:
            raise UserError(
                f"cannot read {path} ({error}); run `acgmake train prepare` on the folder, "
                "which drops unreadable files"
            ) from None
        height, width = rgb.shape[:2]
        return cut_square(rgb, *square_box(width, height, "center"), self.size)


def read_index(folder: Path) -> dict:
    """The ``index.json`` of a shard folder; UserError when it is not one acgmake wrote."""
    path = Path(folder) / "index.json"
    try:
        index = json.loads(path.read_text("utf-8"))
        if index.get("format") != SHARD_FORMAT or int(index["version"]) > SHARD_VERSION:
            raise ValueError
        return index
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise UserError(
            f"{path} is not an index of shards written by `acgmake train prepare`"
        ) from None


def is_shard_folder(folder: Path) -> bool:
    return (Path(folder) / "index.json").is_file()


def open_training_set(data: Path, size: int) -> tuple[PictureSet, PictureSet | None]:
    """The training pictures of ``data`` and its held-out part (None when it has none).

    ``data`` is a folder of prepared shards (its ``holdout`` split is held out) or a folder of
    pictures, searched recursively (a top-level ``holdout/`` folder is held out, as in the
    drawn set). A picture whose header cannot be read is skipped; UserError when none is left.
    """
    data = Path(data)
    if not data.exists():
        raise UserError(f"{data} does not exist; give a folder of pictures or of shards")
    if is_archive(data):
        raise UserError(
            f"{data} is an archive; unpack it once into shards with: acgmake train prepare "
            f"{data} --out SHARDS --size {size}, then train on SHARDS"
        )
    if not data.is_dir():
        raise UserError(f"{data} is not a folder of pictures or of shards")
    if not os.access(data, os.R_OK | os.X_OK):
        raise UserError(f"cannot read the folder {data}; check its permissions")
    if is_shard_folder(data):
        train = ShardSet(data, "train")
        if train.size != size:
            raise UserError(
                f"{data} was prepared at {train.size} px; train with --size {train.size}, or "
                f"prepare again with --size {size}"
            )
        holdout = ShardSet(data, "holdout")
        return train, (holdout if len(holdout) else None)
    return _folder_split(data, size, held=False), _folder_split(data, size, held=True)


def _folder_split(data: Path, size: int, *, held: bool) -> PictureSet | None:
    from PIL import Image

    root = data / "holdout" if held else data
    if held and not root.is_dir():
        return None
    tables: dict[str, dict[str, dict]] = {}
    names, rows = [], []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        name = path.relative_to(root).as_posix()
        if not held and PurePosixPath(name).parts[0] == "holdout":
            continue
        if path.name == "attributes.jsonl":
            tables[str(PurePosixPath(name).parent)] = read_attribute_rows(
                path.read_bytes(), str(path)
            )
        if not is_picture_name(name):
            continue
        try:  # the header only: a set of 100,000 pictures opens in seconds
            with Image.open(path) as image:
                width, height = image.size
            if width * height > MAX_PICTURE_PIXELS:
                continue
        except (OSError, SyntaxError, Image.DecompressionBombError):
            continue
        names.append(name)
    rows = []
    for name in names:
        row = {**_attributes_for(name, tables), "file": name}
        tags = (root / name).with_suffix(".txt")  # a tag list beside the picture, as prepare reads
        if tags.is_file() and tags.stat().st_size <= 1 << 20:
            row["tags"] = parse_tags(tags.read_bytes().decode("utf-8", "replace"))
        rows.append(row)
    if not names:
        if held:
            return None
        raise UserError(
            f"{data} has no readable .png, .jpg or .webp pictures; give a folder of pictures"
        )
    return FolderSet(root, size, names, rows)
