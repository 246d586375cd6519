"""Generators made by other projects: rosinality ``.pt``, NVlabs ``.pkl``, bare safetensors.

Each reader turns a file into a state dict in :class:`~acgmake.models.stylegan2.Generator`'s
(rosinality's) key layout; :func:`infer_config` reads the architecture from the tensors' shapes
and :func:`build_generator` checks every name and shape before loading. Nothing in a file is
ever run:

- rosinality ``.pt`` files are read with ``torch.load(weights_only=True)``, which builds only
  tensors and plain containers; ``argparse.Namespace`` (the training options rosinality stores
  beside the weights) is the one class added, for that call only.
- NVlabs network pickles carry the Python source of their classes and, loaded the usual way,
  run it. :class:`NetworkUnpickler` knows the handful of globals such a pickle names (tensor
  and storage rebuilders, ``OrderedDict``, NumPy scalars, NVlabs' persistent-object
  constructor) and refuses every other one before anything is called. Persistent objects
  become :class:`PersistentObject` records (class name + attribute dict); their embedded
  source is never executed, only their tensors and a few numbers are read.

Problems are :class:`~acgmake.errors.UserError` with one line naming the file.
"""

from __future__ import annotations

import argparse
import collections
import io
import math
import pickle
import re
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from acgmake.errors import UserError
from acgmake.models.checkpoint import check_tensor_sizes, check_tensors
from acgmake.models.stylegan2 import BLUR_KERNEL, MAX_SIZE, ArchitectureTooLarge, Generator

REMEDY = "download it again, or use a generator from rosinality/stylegan2-pytorch or NVlabs"

# ---------------------------------------------------------------------------------------------
# Architecture from a rosinality-layout state dict


def infer_config(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """The :class:`Generator` arguments (size, style_dim, n_mlp, channels, blur_kernel) that fit
    ``state``, a rosinality ``g_ema`` state dict, read from the tensors' shapes.

    Raises ValueError (with what is missing or odd) when ``state`` is not such a state dict.
    """
    for name in ("style.1.weight", "input.input", "conv1.conv.weight"):
        if name not in state:
            raise ValueError(f"no {name} tensor")
    mapping = sorted(int(m[1]) for k in state if (m := re.fullmatch(r"style\.(\d+)\.weight", k)))
    if mapping != list(range(1, len(mapping) + 1)):
        raise ValueError(f"mapping layers numbered {mapping}, not 1..{len(mapping)}")
    style_dim = int(state["style.1.weight"].shape[1])
    for index in mapping:
        shape = tuple(state[f"style.{index}.weight"].shape)
        if shape != (style_dim, style_dim):
            raise ValueError(
                f"mapping layer style.{index} is {shape[0]} x {shape[1]}; acgmake needs "
                f"every mapping layer {style_dim} x {style_dim} (z and w the same size)"
            )
    convs = sorted(
        int(m[1]) for k in state if (m := re.fullmatch(r"convs\.(\d+)\.conv\.weight", k))
    )
    if convs != list(range(len(convs))) or len(convs) % 2:
        raise ValueError(f"synthesis convolutions numbered {convs}, not 0..2n-1")
    size = 4 * 2 ** (len(convs) // 2)
    channels = {4: int(state["input.input"].shape[1])}
    for level in range(len(convs) // 2):
        channels[8 * 2**level] = int(state[f"convs.{2 * level}.conv.weight"].shape[1])
    blur_kernel: tuple[float, ...] = BLUR_KERNEL
    if "convs.0.conv.blur.kernel" in state:
        blur_kernel = _taps(state["convs.0.conv.blur.kernel"])
    return {
        "size": size,
        "style_dim": style_dim,
        "n_mlp": len(mapping),
        "channels": channels,
        "blur_kernel": blur_kernel,
    }


def _taps(kernel: torch.Tensor) -> tuple[float, ...]:
    """The 1-D taps of a separable 2-D FIR kernel (any scale; :class:`Generator` normalises)."""
    kernel = kernel.detach().double()
    if kernel.ndim == 1:  # NVlabs keeps long filters separable
        kernel = kernel[:, None] * kernel[None, :]
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1] or float(kernel[0, 0]) == 0:
        raise ValueError(f"a resampling filter of shape {tuple(kernel.shape)}")
    taps = kernel[0] / kernel[0, 0]
    if not torch.allclose(kernel / kernel[0, 0], taps[:, None] * taps[None, :], rtol=1e-5):
        raise ValueError("a resampling filter that is not separable")
    default = torch.tensor(BLUR_KERNEL, dtype=torch.float64)
    if len(taps) == len(default) and torch.allclose(taps, default):
        return BLUR_KERNEL
    return tuple(float(t) for t in taps)


def build_generator(
    path: Path,
    state: Mapping[str, torch.Tensor],
    config: Mapping[str, Any] | None = None,
    latent_avg: torch.Tensor | None = None,
) -> Generator:
    """A :class:`Generator` (eval mode, CPU) holding ``state``; the architecture is ``config``
    or, by default, inferred from the shapes. ``latent_avg`` (or a ``w_avg`` in ``state``) is
    the truncation centre; without either it is computed from 10,000 latents.
    """
    state = {k: v for k, v in state.items() if k != "latent_avg"}
    try:
        config = dict(config or infer_config(state))
        generator = Generator(**config)
    except ArchitectureTooLarge as error:
        raise UserError(
            f"{path} declares a generator too large to load ({error}); use a StyleGAN2 "
            f"checkpoint of at most {MAX_SIZE} pixels, or check that the file is the one you meant"
        ) from None
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise UserError(
            f"{path} does not hold a StyleGAN2 generator acgmake can read ({error}); {REMEDY}"
        ) from None
    expected = generator.state_dict()
    has_w_avg = "w_avg" in state
    if not has_w_avg:
        state["w_avg"] = expected["w_avg"]
    check_tensors(path, expected, state, "the architecture its weights describe", REMEDY)
    # A sum is NaN or infinite when any element is: one cheap pass instead of isfinite's.
    broken = [name for name, tensor in state.items() if not math.isfinite(tensor.sum())]
    if broken:  # what a flipped exponent bit often leaves in a file without checksums
        raise UserError(f"{path} is damaged (NaN or infinite numbers in {broken[0]}); {REMEDY}")
    generator.load_state_dict({k: v.float() for k, v in state.items()})
    if latent_avg is not None:
        if latent_avg.numel() != generator.style_dim:
            raise UserError(
                f"{path} has a latent_avg of {latent_avg.numel()} numbers for a style size of "
                f"{generator.style_dim}; {REMEDY}"
            )
        generator.w_avg.copy_(latent_avg.reshape(-1))
    elif not has_w_avg:
        generator.compute_w_avg()
    return generator.eval()


def looks_like_rosinality(names: Any) -> bool:
    """Whether tensor ``names`` are those of a rosinality ``g_ema`` (without acgmake metadata)."""
    return {"style.1.weight", "input.input", "conv1.conv.weight"} <= set(names)


# ---------------------------------------------------------------------------------------------
# rosinality/stylegan2-pytorch .pt


def load_rosinality(path: Path) -> Generator:
    """The ``g_ema`` of a rosinality ``.pt`` file: a training checkpoint (g, d, g_ema, optimiser
    states, args) or a converted g_ema-only file (with ``latent_avg``), or a bare state dict.
    """
    _check_zip(path)
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals([argparse.Namespace]):
            warnings.simplefilter("ignore")
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"GLOBAL (\S+)", str(error))
        what = found[1] if found else "not a tensor"
        if what.startswith("torch"):  # a name cut short by truncation looks like this too
            raise UserError(
                f"{path} is truncated or damaged, or holds {what}, which acgmake does not load; "
                f"{REMEDY}"
            ) from None
        raise UserError(
            f"{path} holds a Python object ({what}) besides weights; acgmake refuses it because "
            f"loading it could run code from the file; use a checkpoint that holds only tensors"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError) as error:
        raise UserError(
            f"{path} is truncated or damaged ({_first_line(error)}); {REMEDY}"
        ) from None
    if isinstance(checkpoint, Mapping) and "g_ema" in checkpoint:
        state = checkpoint["g_ema"]
    elif isinstance(checkpoint, Mapping) and looks_like_rosinality(checkpoint):
        state = checkpoint
    else:
        keys = ""
        if isinstance(checkpoint, Mapping):
            keys = ", ".join(sorted(map(str, checkpoint))[:5])
        raise UserError(
            f"{path} is a PyTorch file without a g_ema generator (it holds "
            f"{keys or type(checkpoint).__name__}); give a rosinality/stylegan2-pytorch checkpoint"
        )
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise UserError(f"{path} has a g_ema that is not a state dict of tensors; {REMEDY}")
    latent_avg = checkpoint.get("latent_avg") if isinstance(checkpoint, Mapping) else None
    if latent_avg is None:
        latent_avg = state.get("latent_avg")
    if latent_avg is not None and not isinstance(latent_avg, torch.Tensor):
        latent_avg = None
    return build_generator(path, state, latent_avg=latent_avg)


def _check_zip(path: Path) -> None:
    """Raise UserError if ``path`` is a zip (torch.save's format) with a damaged member.

    torch.load does not check the CRC-32 sums that torch.save writes; a flipped bit in the
    weights would load silently.
    """
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise UserError(
            f"{path} is truncated or damaged ({_first_line(error)}); {REMEDY}"
        ) from None
    if bad is not None:
        raise UserError(f"{path} is damaged (the checksum of its part {bad} is wrong); {REMEDY}")


# ---------------------------------------------------------------------------------------------
# NVlabs stylegan2-ada-pytorch network pickles


class RefusedPickle(Exception):
    """The pickle names something outside the allowlist (so it could run code)."""


@dataclass
class PersistentObject:
    """A ``torch_utils.persistence`` object, not rebuilt: its class name and attribute dict."""

    class_name: str
    state: dict[str, Any] = field(default_factory=dict)

    def child(self, name: str) -> PersistentObject | None:
        child = self.state.get("_modules", {}).get(name)
        return child if isinstance(child, PersistentObject) else None

    def tensors(self) -> dict[str, torch.Tensor]:
        """Parameters and buffers, by name (as in a state dict), this object's and below."""
        found: dict[str, torch.Tensor] = {}
        for group in ("_parameters", "_buffers"):
            for name, tensor in (self.state.get(group) or {}).items():
                if isinstance(tensor, torch.Tensor):
                    found[name] = tensor.detach()
        for name, module in (self.state.get("_modules") or {}).items():
            if isinstance(module, PersistentObject):
                for key, tensor in module.tensors().items():
                    found[f"{name}.{key}"] = tensor
        return found


def _persistent_object(meta: Any) -> PersistentObject:
    # Stands in for torch_utils.persistence._reconstruct_persistent_obj, which would exec
    # meta["module_src"]; here the source is ignored and only the state is kept.
    if not isinstance(meta, Mapping) or meta.get("type") != "class":
        raise RefusedPickle("a persistent object that is not a class instance")
    state = meta.get("state")
    class_name = meta.get("class_name")
    if not isinstance(class_name, str) or not isinstance(state, Mapping):
        raise RefusedPickle("a persistent object without a class name and state")
    return PersistentObject(class_name, dict(state))


def _storage_from_bytes(data: Any) -> Any:
    # torch.storage._load_from_bytes calls torch.load(weights_only=False); this does not.
    if not isinstance(data, bytes | bytearray):
        raise RefusedPickle("a tensor storage that is not bytes")
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _tensor(storage: Any, offset: Any, size: Any, stride: Any, *_: Any) -> torch.Tensor:
    if not isinstance(storage, torch.TypedStorage):
        raise RefusedPickle("a tensor without a storage")
    return torch._utils._rebuild_tensor(storage, int(offset), tuple(size), tuple(stride))


def _parameter(data: Any, *_: Any) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise RefusedPickle("a parameter that is not a tensor")
    return data


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise RefusedPickle("a NumPy scalar that is not a number")
    return np.frombuffer(data, dtype=dtype)[0].item()


def _numpy_dtype(name: Any, *_: Any) -> np.dtype:
    dtype = np.dtype(str(name))
    if dtype.hasobject:
        raise RefusedPickle("a NumPy object dtype")
    return dtype


class _Allowed:
    """One allowlisted function, handed out afresh for every lookup and called with positional
    arguments only, so that a pickle cannot change the shared function's attributes."""

    __slots__ = ("function",)

    def __init__(self, function: Any) -> None:
        self.function = function

    def __call__(self, *args: Any) -> Any:
        return self.function(*args)


class NetworkUnpickler(pickle.Unpickler):
    """Reads an NVlabs network pickle without importing or running anything from it.

    Only the globals in :attr:`ALLOWED` resolve, each to a small function here that checks its
    arguments; any other global (``os.system``, ``builtins.exec``, a class of the pickle's own
    source...) raises :class:`RefusedPickle` before it could be called.
    """

    ALLOWED = {
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent_object,
        ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
        ("torch._utils", "_rebuild_tensor_v2"): _tensor,
        ("torch._utils", "_rebuild_tensor"): _tensor,
        ("torch._utils", "_rebuild_parameter"): _parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _parameter,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("dnnlib.util", "EasyDict"): dict,
        ("dnnlib", "EasyDict"): dict,
        ("numpy.core.multiarray", "scalar"): _numpy_scalar,
        ("numpy._core.multiarray", "scalar"): _numpy_scalar,
        ("numpy", "dtype"): _numpy_dtype,
    }

    def find_class(self, module: str, name: str) -> Any:
        try:
            found = self.ALLOWED[(module, name)]
        except KeyError:
            raise RefusedPickle(f"{module}.{name}") from None
        # Types (built-in, so their attributes cannot be set) are needed as they are: a pickle
        # creates dict subclasses with NEWOBJ, which takes only a type.
        return found if isinstance(found, type) else _Allowed(found)

    def persistent_load(self, pid: Any) -> Any:
        raise RefusedPickle("a persistent id (this is not a network pickle)")


def read_network_pickle(path: Path) -> dict[str, Any]:
    """The top-level dict of an NVlabs network pickle, its networks as PersistentObjects."""
    try:
        with path.open("rb") as handle, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = NetworkUnpickler(handle).load()
    except RefusedPickle as refused:
        if str(refused).startswith("dnnlib.tflib"):
            raise UserError(
                f"{path} is a TensorFlow StyleGAN pickle, which acgmake cannot read; convert it "
                "to a PyTorch one first (NVlabs stylegan2-ada-pytorch's legacy.py)"
            ) from None
        raise UserError(
            f"{path} refers to {refused}, which is not part of a StyleGAN2 network; acgmake "
            "refused the pickle without running it (loading it elsewhere could run that code)"
        ) from None
    except Exception as error:  # a damaged pickle can fail in any of a dozen ways
        raise UserError(
            f"{path} is truncated or damaged ({type(error).__name__}: {_first_line(error)}); "
            f"{REMEDY}"
        ) from None
    if not isinstance(data, Mapping):
        raise UserError(f"{path} is a pickle of a {type(data).__name__}, not a network; {REMEDY}")
    return dict(data)


def load_network_pickle(path: Path) -> Generator:
    """The ``G_ema`` of an NVlabs stylegan2-ada-pytorch network pickle, as a :class:`Generator`."""
    networks = read_network_pickle(path)
    network = networks.get("G_ema")
    if not isinstance(network, PersistentObject):
        raise UserError(
            f"{path} has no G_ema network (it holds {', '.join(map(str, networks)) or 'nothing'})"
            f"; {REMEDY}"
        )
    # A stride-0 tensor takes a few bytes in the file whatever its shape: check what the
    # tensors declare before the conversion copies them.
    check_tensor_sizes(path, network.tensors(), REMEDY)
    try:
        state, config = convert_nvlabs(network)
    except ValueError as error:
        raise UserError(f"{path}: {error}") from None
    except KeyError as error:
        raise UserError(
            f"{path} lacks the G_ema tensor {error.args[0]} of a StyleGAN2 generator; {REMEDY}"
        ) from None
    except (AttributeError, TypeError, IndexError, RecursionError) as error:
        raise UserError(
            f"{path} has a G_ema that is not laid out like a StyleGAN2 generator "
            f"({type(error).__name__}: {_first_line(error)}); {REMEDY}"
        ) from None
    return build_generator(path, state, config)


def _attribute(module: PersistentObject | None, name: str, default: Any = None) -> Any:
    return default if module is None else module.state.get(name, default)


def convert_nvlabs(network: PersistentObject) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An NVlabs ``G_ema`` as (state dict in rosinality's layout, :class:`Generator` config).

    NVlabs applies its weight gains at run time just as rosinality does, except in the
    synthesis convolutions: there the gain is left out, which demodulation cancels, so the
    weights are scaled by sqrt(fan-in) to make the arithmetic (and its 1e-8) the same.
    Raises ValueError saying what is not a StyleGAN2 'skip' generator.
    """
    mapping, synthesis = network.child("mapping"), network.child("synthesis")
    if mapping is None or synthesis is None:
        raise ValueError(f"its G_ema ({network.class_name}) is not a StyleGAN2 generator")
    tensors = network.tensors()
    if "synthesis.input.affine.weight" in tensors:
        raise ValueError(
            "it is a StyleGAN3 generator, which acgmake cannot run (only StyleGAN2 'skip')"
        )
    if "synthesis.b4.const" not in tensors:
        raise ValueError("its G_ema has no synthesis.b4.const; it is not a StyleGAN2 generator")
    if _attribute(mapping, "c_dim", 0) or "mapping.embed.weight" in tensors:
        raise ValueError("it is a class-conditional generator, which acgmake cannot run yet")

    state: dict[str, torch.Tensor] = {}
    n_mlp = 0
    lr_mlp = None
    while f"mapping.fc{n_mlp}.weight" in tensors:
        layer = mapping.child(f"fc{n_mlp}")
        gain = float(_attribute(layer, "bias_gain", 0.01))
        if lr_mlp is not None and not math.isclose(gain, lr_mlp):
            raise ValueError("its mapping layers have different learning-rate multipliers")
        lr_mlp = gain
        state[f"style.{n_mlp + 1}.weight"] = tensors[f"mapping.fc{n_mlp}.weight"]
        state[f"style.{n_mlp + 1}.bias"] = tensors[f"mapping.fc{n_mlp}.bias"]
        n_mlp += 1
    if n_mlp == 0:
        raise ValueError("its mapping network has no layers")
    style_dim = int(tensors[f"mapping.fc{n_mlp - 1}.weight"].shape[0])
    for index in range(n_mlp):
        out_features, in_features = tensors[f"mapping.fc{index}.weight"].shape
        if (in_features, out_features) != (style_dim, style_dim):
            raise ValueError(
                f"its mapping layer fc{index} maps {in_features} to {out_features} numbers; "
                f"acgmake runs only generators whose z, w and mapping layers are one size"
            )
    if "mapping.w_avg" in tensors:
        state["w_avg"] = tensors["mapping.w_avg"]

    resolutions = []
    while f"synthesis.b{4 * 2 ** len(resolutions)}.conv1.weight" in tensors:
        resolutions.append(4 * 2 ** len(resolutions))
    channels: dict[int, int] = {}
    clamps = set()
    filter_taps = None
    layer_index = 0
    for level, resolution in enumerate(resolutions):
        block_name = f"b{resolution}"
        block = synthesis.child(block_name)
        architecture = _attribute(block, "architecture", "skip")
        if architecture != "skip":
            raise ValueError(
                f"its synthesis network is of the '{architecture}' kind; acgmake runs only "
                "StyleGAN2's default 'skip' generators"
            )
        prefix = f"synthesis.{block_name}."
        channels[resolution] = int(tensors[prefix + "conv1.weight"].shape[0])
        if f"{prefix}torgb.weight" not in tensors:
            raise ValueError(f"its block {block_name} has no torgb layer (not a 'skip' generator)")
        if resolution == 4:
            state["input.input"] = tensors[prefix + "const"][None]
            convs = [("conv1", "conv1")]
            state["to_rgb1.conv.modulation.weight"] = tensors[prefix + "torgb.affine.weight"]
            rgb = "to_rgb1"
        else:
            convs = [("conv0", f"convs.{2 * level - 2}"), ("conv1", f"convs.{2 * level - 1}")]
            rgb = f"to_rgbs.{level - 1}"
            taps = _taps(tensors[prefix + "resample_filter"])
            if filter_taps not in (None, taps):
                raise ValueError("its blocks use different resampling filters")
            filter_taps = taps
        for theirs, ours in convs:
            layer = block.child(theirs) if block else None
            clamps.add(_attribute(layer, "conv_clamp"))
            weight = tensors[f"{prefix}{theirs}.weight"]
            fan_in = weight.shape[1] * weight.shape[2] * weight.shape[3]
            state[f"{ours}.conv.weight"] = (weight.double() * math.sqrt(fan_in)).float()[None]
            state[f"{ours}.conv.modulation.weight"] = tensors[f"{prefix}{theirs}.affine.weight"]
            state[f"{ours}.conv.modulation.bias"] = tensors[f"{prefix}{theirs}.affine.bias"]
            state[f"{ours}.activate.bias"] = tensors[f"{prefix}{theirs}.bias"]
            noise = tensors.get(f"{prefix}{theirs}.noise_const")
            strength = tensors.get(f"{prefix}{theirs}.noise_strength")
            if noise is None or strength is None:  # use_noise=False: no noise at all
                noise = torch.zeros(resolution, resolution)
                strength = torch.zeros(())
            state[f"{ours}.noise.weight"] = strength.reshape(1)
            state[f"noises.noise_{layer_index}"] = noise.reshape(1, 1, *noise.shape[-2:])
            layer_index += 1
        state[f"{rgb}.conv.weight"] = tensors[prefix + "torgb.weight"][None]
        state[f"{rgb}.conv.modulation.weight"] = tensors[prefix + "torgb.affine.weight"]
        state[f"{rgb}.conv.modulation.bias"] = tensors[prefix + "torgb.affine.bias"]
        state[f"{rgb}.bias"] = tensors[prefix + "torgb.bias"].reshape(1, -1, 1, 1)
        clamps.add(_attribute(block.child("torgb") if block else None, "conv_clamp"))
    if len(clamps) > 1:
        raise ValueError("its layers clamp their outputs differently, which acgmake cannot run")
    conv_clamp = clamps.pop() if clamps else None

    config: dict[str, Any] = {
        "size": resolutions[-1],
        "style_dim": style_dim,
        "n_mlp": n_mlp,
        "channels": channels,
        "blur_kernel": filter_taps or BLUR_KERNEL,
        "lr_mlp": lr_mlp,
    }
    if conv_clamp is not None:
        config["conv_clamp"] = float(conv_clamp)
    # Our FIR buffers are derived from the taps, not read: NVlabs stores them differently.
    reference = Generator(**config).state_dict()
    for name, tensor in reference.items():
        if name.endswith("kernel"):
            state[name] = tensor
    return state, config


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
