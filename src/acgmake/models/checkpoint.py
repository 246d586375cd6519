"""Generator checkpoints as safetensors: tensors only, architecture as JSON in the metadata.

acgmake's own files are never unpickled: the architecture is rebuilt from the stored JSON
config and the tensors are checked against it (names, shapes, and a SHA-256 of their bytes, so
a damaged download is caught). :func:`load_generator` also reads community generators, told
apart by their first bytes, not their names (see :mod:`acgmake.models.community`): rosinality
``.pt`` files, NVlabs ``.pkl`` network pickles and safetensors in rosinality's key layout. Any
problem with a file is a :class:`~acgmake.errors.UserError` with one line that names the file
and what to do. What a file declares (its config, its tensors' shapes, its zip parts' sizes) is
checked against sane limits before anything of that size is allocated: a few hundred bytes can
declare a network of many gigabytes (:func:`acgmake.models.stylegan2.check_architecture`).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from acgmake.errors import UserError
from acgmake.models.stylegan2 import MAX_NUMBERS, MAX_SIZE, ArchitectureTooLarge, Generator

FORMAT = "acgmake-stylegan2-generator"
FORMAT_VERSION = "1"
# torch.save's pre-zip format starts with this "magic number", pickled.
LEGACY_TORCH_MAGIC = (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
REMEDY = (
    "export it again with `python -m acgmake.models.train --export` or reinstall acgmake "
    "for the shipped model"
)


def _digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over the tensors' names, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_generator(
    generator: Generator,
    path: str | Path,
    *,
    config: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``generator``'s weights and buffers to ``path`` (safetensors); returns the path.

    ``config`` (default ``generator.config``) is what :func:`load_generator` rebuilds the
    architecture from. ``metadata`` (training settings, licence, credit...) is stored as JSON
    strings beside it. The file is written under a temporary name and renamed when complete.
    """
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {
        name: tensor.detach().to("cpu", torch.float32).contiguous().clone()
        for name, tensor in generator.state_dict().items()
    }
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": json.dumps(dict(config or generator.config), sort_keys=True),
        "sha256": _digest(tensors),
    }
    for key, value in (metadata or {}).items():
        if key in header:
            raise ValueError(f"metadata key {key!r} is reserved")
        header[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    try:
        save_file(tensors, str(temporary), metadata=header)
        os.chmod(temporary, 0o644)  # a model file is for everyone to read
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata strings stored in a generator file (config, training settings, ...).

    Community ``.pt`` and ``.pkl`` files have none: for them this is ``{}``.
    """
    from safetensors import safe_open

    path = _existing(path)
    if file_kind(path) in ("torch", "pickle"):
        return {}
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except Exception as error:
        raise _damaged(path, error) from None


def file_kind(path: str | Path) -> str:
    """What ``path`` holds, from its first bytes: "safetensors", "torch" (a ``torch.save``
    file, zip or legacy), "pickle" (e.g. an NVlabs network pickle) or "unknown"."""
    with Path(path).open("rb") as handle:
        head = handle.read(16)
    if head.startswith(b"PK\x03\x04"):
        return "torch"
    if head.startswith(b"\x80\x02\x8a\x0a" + LEGACY_TORCH_MAGIC):
        return "torch"
    if len(head) >= 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] < 100_000_000:
        return "safetensors"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:  # pickle protocol 2..5
        return "pickle"
    return "unknown"


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> Generator:
    """The :class:`Generator` stored at ``path``, in eval mode on ``device``.

    ``path`` may be an acgmake ``.safetensors`` file, a rosinality/stylegan2-pytorch ``.pt``
    checkpoint (its ``g_ema``), an NVlabs stylegan2-ada-pytorch ``.pkl`` (its ``G_ema``, read
    without running the pickle's code) or safetensors holding a rosinality ``g_ema``. Raises
    UserError for a missing, truncated, corrupt, unsafe or wrong-architecture file.
    """
    from acgmake.models import community

    path = _existing(path)
    kind = file_kind(path)
    if kind == "torch":
        _check_unpacked_size(path)
        return community.load_rosinality(path).to(device)
    if kind == "pickle":
        return community.load_network_pickle(path).to(device)
    return _load_safetensors(path).to(device)


def _load_safetensors(path: Path) -> Generator:
    from safetensors import safe_open

    from acgmake.models import community

    try:
        with safe_open(str(path), framework="pt") as handle:
            header = dict(handle.metadata() or {})
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except Exception as error:
        raise _damaged(path, error) from None

    if header.get("format") != FORMAT and community.looks_like_rosinality(tensors):
        return community.build_generator(path, tensors, latent_avg=tensors.get("latent_avg"))
    if header.get("format") != FORMAT or "config" not in header:
        raise UserError(
            f"{path} is not an acgmake StyleGAN2 generator (its metadata has no architecture "
            f"config and its tensors are not named like a rosinality g_ema); {REMEDY}"
        )
    if header.get("format_version") != FORMAT_VERSION:
        raise UserError(
            f"{path} is a generator file of format version {header.get('format_version')!r}, "
            f"which this acgmake cannot read (it reads {FORMAT_VERSION}); upgrade acgmake"
        )
    if header.get("sha256") and header["sha256"] != _digest(tensors):
        raise UserError(f"{path} is damaged (its weights do not match their checksum); {REMEDY}")
    try:
        config = json.loads(header["config"])
        generator = Generator(
            int(config["size"]),
            style_dim=int(config["style_dim"]),
            n_mlp=int(config["n_mlp"]),
            channels={int(k): int(v) for k, v in config["channels"].items()},
            blur_kernel=tuple(config.get("blur_kernel", (1, 3, 3, 1))),
            lr_mlp=float(config.get("lr_mlp", 0.01)),
            conv_clamp=None if config.get("conv_clamp") is None else float(config["conv_clamp"]),
        )
    except ArchitectureTooLarge as error:
        raise UserError(
            f"{path} declares a generator too large to load ({error}); use a StyleGAN2 "
            f"checkpoint of at most {MAX_SIZE} pixels, or check that the file is the one you meant"
        ) from None
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError) as error:
        raise UserError(
            f"{path} has an unreadable architecture config ({error}); {REMEDY}"
        ) from None

    check_tensors(path, generator.state_dict(), tensors, "the architecture it declares", REMEDY)
    generator.load_state_dict(tensors)
    return generator.eval()


def check_tensors(
    path: Path,
    expected: Mapping[str, torch.Tensor],
    tensors: Mapping[str, torch.Tensor],
    architecture: str,
    remedy: str,
) -> None:
    """Raise UserError unless ``tensors`` has exactly ``expected``'s names and shapes.

    The message says ``path`` does not match ``architecture`` and lists the first names wrong.
    """
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(
        name
        for name in set(expected) & set(tensors)
        if not isinstance(tensors[name], torch.Tensor)
        or tuple(expected[name].shape) != tuple(tensors[name].shape)
    )
    problems = [
        f"{label}: {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"
        for label, names in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("wrong shape", wrong),
        )
        if names
    ]
    if problems:
        raise UserError(f"{path} does not match {architecture} ({'; '.join(problems)}); {remedy}")


def check_tensor_sizes(path: Path, tensors: Mapping[str, Any], remedy: str) -> None:
    """Raise UserError when ``tensors`` hold more numbers than any generator acgmake builds.

    For files whose tensors are views (``torch.load``, network pickles): a tensor of stride 0
    takes a few bytes in the file whatever shape it declares, and the first copy of it (a
    ``.float()``) would allocate all of it. Check before converting anything.
    """
    total = sum(t.numel() for t in tensors.values() if isinstance(t, torch.Tensor))
    if total > MAX_NUMBERS:
        raise UserError(
            f"{path} declares {total / 1e6:,.0f} million numbers of weights, more than the "
            f"{MAX_NUMBERS // 1_000_000} million of the largest generator acgmake loads; {remedy}"
        )


def _check_unpacked_size(path: Path) -> None:
    """Raise UserError if ``path``, a zip (``torch.save``'s format), unpacks to much more than
    its own size. torch.save stores its parts uncompressed, but torch.load also reads
    deflated ones, and allocates what their headers declare: 4 MB can unpack to 4 GB."""
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # a damaged zip: the reader says so
    size = path.stat().st_size
    if unpacked > 2 * size + 16 * 1024**2:
        raise UserError(
            f"{path} unpacks to {unpacked / 1024**2:,.0f} MB from a file of "
            f"{size / 1024**2:,.1f} MB, which torch.save never does (it does not compress); "
            "use the checkpoint as it was published"
        )


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise UserError(
            f"cannot load the character model {path}: it {what}; give the path of a "
            "generator file (.safetensors, rosinality .pt or NVlabs .pkl)"
        )
    return path


def _damaged(path: Path, error: Exception) -> UserError:
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return UserError(
        f"{path} is truncated or not a safetensors file ({reason}), nor a .pt or .pkl "
        f"generator; {REMEDY}"
    )
