"""A small stand-in for NVlabs stylegan2-ada-pytorch's generator, to test reading its pickles.

Written here from the published description of ``training/networks.py`` (parameter names,
weight gains, fused modulated convolution, ``bias_act``, ``upfirdn2d``), not copied and not
sharing code with ``acgmake.models.stylegan2``: it is the independent reference that the
converted generator must agree with. :func:`network_pickle` pickles it the way NVlabs'
``torch_utils.persistence`` does: each network is reduced to
``torch_utils.persistence._reconstruct_persistent_obj(meta)`` with ``meta`` holding the module
source, the class name and the attribute dict; tensors go through torch's own pickling.
"""

from __future__ import annotations

import math
import pickle
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

PERSISTENCE = "torch_utils.persistence"


def _reconstruct_persistent_obj(meta: dict) -> Any:  # pickled by name only; never called
    raise AssertionError("acgmake must not call the pickle's reconstructor")


class EasyDict(dict):
    """Stands in for dnnlib.util.EasyDict (NVlabs keeps its network kwargs in one)."""


class Persistent(torch.nn.Module):
    """Pickles itself as torch_utils.persistence does: class name, source and state."""

    module_src = "# the networks' source would be here\n"

    def __reduce__(self):
        meta = dict(
            type="class",
            version=6,
            module_src=self.module_src,
            class_name=type(self).__name__,
            state=dict(self.__dict__),
        )
        return _reconstruct_persistent_obj, (meta,)


def setup_filter(taps=(1, 3, 3, 1)) -> torch.Tensor:
    f = torch.tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum()


def fir(x: torch.Tensor, f: torch.Tensor, pad: tuple[int, int], gain: float = 1) -> torch.Tensor:
    """upfirdn2d's filter step: pad (x0, x1 on both axes), then true convolution with ``f``."""
    channels = x.shape[1]
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    weight = (f * gain).flip([0, 1])[None, None].repeat(channels, 1, 1, 1)
    return F.conv2d(x, weight, groups=channels)


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    up = torch.zeros(n, c, h * 2, w * 2, dtype=x.dtype)
    up[:, :, ::2, ::2] = x
    return fir(up, f, (2, 1), gain=4)


def bias_act(x, b, act="linear", gain=None, clamp=None):
    x = x + b.reshape(1, -1, *([1] * (x.ndim - 2)))
    if act == "lrelu":
        x = F.leaky_relu(x, 0.2) * (math.sqrt(2) if gain is None else gain)
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


class FullyConnectedLayer(Persistent):
    def __init__(
        self, in_features, out_features, activation="linear", lr_multiplier=1.0, bias_init=0
    ):
        super().__init__()
        self.activation = activation
        self.weight = torch.nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = torch.nn.Parameter(torch.full([out_features], np.float32(bias_init)))
        self.weight_gain = lr_multiplier / np.sqrt(in_features)  # a numpy float, as in NVlabs
        self.bias_gain = lr_multiplier

    def forward(self, x):
        return bias_act(
            x @ (self.weight * self.weight_gain).t(), self.bias * self.bias_gain, self.activation
        )


class MappingNetwork(Persistent):
    def __init__(self, z_dim, w_dim, num_ws, num_layers, lr_multiplier=0.01):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, 0, w_dim, num_ws
        self.num_layers = num_layers
        for i in range(num_layers):
            fc = FullyConnectedLayer(z_dim if i == 0 else w_dim, w_dim, "lrelu", lr_multiplier)
            setattr(self, f"fc{i}", fc)
        self.register_buffer("w_avg", torch.randn([w_dim]) * 0.1)

    def forward(self, z, truncation_psi=1):
        x = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            x = self.w_avg.lerp(x, truncation_psi)
        return x


def modulated_conv2d(x, weight, styles, noise=None, up=1, padding=0, f=None, demodulate=True):
    """The fused path: one weight per sample, grouped convolution."""
    batch = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    w = weight[None] * styles.reshape(batch, 1, -1, 1, 1)
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt().reshape(batch, -1, 1, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])
    if up == 1:
        w = w.reshape(-1, in_channels, kh, kw)
        x = F.conv2d(x, w, padding=padding, groups=batch)
    else:  # transposed convolution (stride 2, no flip), then the FIR filter, as conv2d_resample
        w = w.transpose(1, 2).reshape(-1, out_channels, kh, kw)
        x = F.conv_transpose2d(x, w, stride=2, groups=batch)
        x = fir(x, f, (1, 1), gain=4)
    x = x.reshape(batch, -1, *x.shape[2:])
    return x if noise is None else x + noise


class SynthesisLayer(Persistent):
    def __init__(self, in_channels, out_channels, w_dim, resolution, up=1, conv_clamp=None):
        super().__init__()
        self.resolution, self.up, self.conv_clamp = resolution, up, conv_clamp
        self.activation = "lrelu"
        self.use_noise = True
        self.padding = 1
        self.act_gain = np.sqrt(2)
        self.register_buffer("resample_filter", setup_filter())
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.register_buffer("noise_const", torch.randn([resolution, resolution]))
        self.noise_strength = torch.nn.Parameter(torch.tensor(0.3))
        self.bias = torch.nn.Parameter(torch.randn([out_channels]) * 0.1)

    def forward(self, x, w, noise_mode="const"):
        styles = self.affine(w)
        noise = None
        if noise_mode == "const" and self.use_noise:
            noise = self.noise_const * self.noise_strength
        x = modulated_conv2d(
            x, self.weight, styles, noise, self.up, self.padding, self.resample_filter
        )
        return bias_act(x, self.bias, "lrelu", self.act_gain, self.conv_clamp)


class ToRGBLayer(Persistent):
    def __init__(self, in_channels, out_channels, w_dim, conv_clamp=None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = torch.nn.Parameter(torch.randn([out_channels]) * 0.1)
        self.weight_gain = 1 / np.sqrt(in_channels)

    def forward(self, x, w):
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False)
        return bias_act(x, self.bias, clamp=self.conv_clamp)


class SynthesisBlock(Persistent):
    def __init__(self, in_channels, out_channels, w_dim, resolution, architecture, conv_clamp):
        super().__init__()
        self.in_channels, self.resolution = in_channels, resolution
        self.architecture = architecture
        self.register_buffer("resample_filter", setup_filter())
        if in_channels == 0:
            self.const = torch.nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, 2, conv_clamp)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, 1, conv_clamp)
        self.torgb = ToRGBLayer(out_channels, 3, w_dim, conv_clamp)
        self.num_conv = 1 if in_channels == 0 else 2

    def forward(self, x, img, ws, noise_mode):
        w = ws.unbind(dim=1)
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
            x = self.conv1(x, w[0], noise_mode)
        else:
            x = self.conv0(x, w[0], noise_mode)
            x = self.conv1(x, w[1], noise_mode)
        y = self.torgb(x, w[self.num_conv])
        return x, y if img is None else upsample2d(img, self.resample_filter) + y


class SynthesisNetwork(Persistent):
    def __init__(self, w_dim, channels: dict[int, int], architecture="skip", conv_clamp=None):
        super().__init__()
        self.block_resolutions = sorted(channels)
        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = channels[res // 2] if res > 4 else 0
            block = SynthesisBlock(in_channels, channels[res], w_dim, res, architecture, conv_clamp)
            self.num_ws += block.num_conv
            setattr(self, f"b{res}", block)
        self.num_ws += 1

    def forward(self, ws, noise_mode="const"):
        x = img = None
        index = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            x, img = block(x, img, ws.narrow(1, index, block.num_conv + 1), noise_mode)
            index += block.num_conv
        return img


class Generator(Persistent):
    def __init__(self, z_dim, channels, n_mlp, architecture="skip", conv_clamp=None, lr=0.01):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, 0, z_dim
        self.img_resolution = max(channels)
        self._init_kwargs = dict(
            z_dim=z_dim,
            c_dim=0,
            mapping_kwargs=EasyDict(num_layers=n_mlp),
            synthesis_kwargs=EasyDict(channel_base=1024, conv_clamp=conv_clamp),
        )
        self.synthesis = SynthesisNetwork(z_dim, channels, architecture, conv_clamp)
        self.mapping = MappingNetwork(z_dim, z_dim, self.synthesis.num_ws, n_mlp, lr)

    def forward(self, z, c=None, truncation_psi=1, noise_mode="const"):
        return self.synthesis(self.mapping(z, truncation_psi), noise_mode)


def _install_fake_modules() -> dict[str, types.ModuleType]:
    persistence = types.ModuleType(PERSISTENCE)
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    _reconstruct_persistent_obj.__module__ = PERSISTENCE
    util = types.ModuleType("dnnlib.util")
    util.EasyDict = EasyDict
    EasyDict.__module__ = "dnnlib.util"
    return {
        "torch_utils": types.ModuleType("torch_utils"),
        PERSISTENCE: persistence,
        "dnnlib": types.ModuleType("dnnlib"),
        "dnnlib.util": util,
    }


def dump(data: Any, path: Path) -> Path:
    """Pickle ``data`` the way NVlabs' training loop does (plain ``pickle.dump``)."""
    modules = _install_fake_modules()
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)
    try:
        with path.open("wb") as handle:
            pickle.dump(data, handle)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return path


def network_pickle(path: Path, G_ema: Generator, **extra: Any) -> Path:  # noqa: N803
    """A network pickle as stylegan2-ada-pytorch's training loop writes it."""
    data = dict(
        G=G_ema,
        D=None,
        G_ema=G_ema,
        augment_pipe=None,
        training_set_kwargs=dict(path="faces.zip", use_labels=False),
    )
    data.update(extra)
    return dump(data, path)
