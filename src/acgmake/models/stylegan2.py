"""StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN").

The whole network in one file of small modules, each named for what it is in the paper. Sizes
are arguments, so the few-MB model acgmake ships and a 1024-pixel community model are the same
code. Pure PyTorch: the FIR filters (blur, up- and down-sampling) are depthwise ``conv2d``, so it
runs anywhere torch does, without compiling CUDA extensions.

Parameter and buffer names follow rosinality/stylegan2-pytorch's ``model.py`` state dict
(``style.1.weight``, ``input.input``, ``conv1.conv.modulation.weight``, ``convs.0.noise.weight``,
``to_rgbs.0.upsample.kernel``, ``noises.noise_0``, ...), so the ``g_ema`` of a community
checkpoint converted by that project loads into :class:`Generator` (see
:meth:`Generator.load_rosinality`). The one addition is the buffer ``w_avg``: the average
latent that truncation pulls toward, tracked during training.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

BLUR_KERNEL = (1, 3, 3, 1)
NOISE_MODES = ("const", "random", "none")

# The largest architecture a Generator is built with, checked before anything is allocated: a
# file of a few hundred bytes can declare any sizes in its config or its tensors' shapes. Each
# is far above every published StyleGAN2 (at most 1024 pixels, a style of 512 numbers, 8
# mapping layers, 512 feature maps, about 33 million numbers in all).
MAX_SIZE = 4096
MAX_STYLE_DIM = 2048
MAX_MAPPING_LAYERS = 32
MAX_CHANNELS = 4096
MAX_BLUR_TAPS = 16
#: Parameters and buffers in all (600 MB as float32).
MAX_NUMBERS = 150_000_000


class ArchitectureTooLarge(ValueError):
    """A generator architecture larger than acgmake builds (see :func:`check_architecture`)."""


def check_architecture(
    size: int,
    style_dim: int,
    n_mlp: int,
    channels: dict[int, int],
    blur_kernel: Sequence[float] = BLUR_KERNEL,
) -> int:
    """The numbers (parameters and buffers) a :class:`Generator` of this architecture holds.

    Raises :class:`ArchitectureTooLarge` when a size is past its ``MAX_*`` limit or the total
    past :data:`MAX_NUMBERS`, and ValueError when a size is not a positive whole number or
    ``channels`` lacks a resolution; nothing is allocated either way.
    """
    for name, value, smallest, limit in (
        ("size", size, 4, MAX_SIZE),
        ("style size", style_dim, 1, MAX_STYLE_DIM),
        ("number of mapping layers", n_mlp, 0, MAX_MAPPING_LAYERS),
        ("number of resampling filter taps", len(blur_kernel), 1, MAX_BLUR_TAPS),
    ):
        if not isinstance(value, numbers.Integral) or value < smallest:
            raise ValueError(f"its {name} is {value!r}, not a whole number from {smallest}")
        if value > limit:
            raise ArchitectureTooLarge(
                f"its {name} is {value}, more than the {limit} acgmake builds"
            )
    log_size = int(math.log2(size))
    if 2**log_size != size:
        raise ValueError(f"size must be a power of two >= 4, not {size}")
    levels = [2**i for i in range(2, log_size + 1)]
    for resolution in levels:
        count = channels.get(resolution)
        if not isinstance(count, numbers.Integral) or count < 1:
            raise ValueError(f"it gives {count!r} feature maps at {resolution} pixels")
        if count > MAX_CHANNELS:
            raise ArchitectureTooLarge(
                f"it has {count} feature maps at {resolution} pixels, more than the "
                f"{MAX_CHANNELS} acgmake builds"
            )

    def styled(in_channel: int, out_channel: int) -> int:
        # 3x3 weight, modulation weight and bias, noise strength, activation bias
        return 9 * out_channel * in_channel + (style_dim + 1) * in_channel + 1 + out_channel

    def to_rgb(in_channel: int) -> int:
        return 3 * in_channel + (style_dim + 1) * in_channel + 3

    total = n_mlp * (style_dim + 1) * style_dim + style_dim  # mapping network, w_avg
    in_channel = channels[4]
    total += 16 * in_channel + styled(in_channel, in_channel) + to_rgb(in_channel)
    for resolution in levels[1:]:
        out_channel = channels[resolution]
        total += styled(in_channel, out_channel) + styled(out_channel, out_channel)
        total += to_rgb(out_channel)
        in_channel = out_channel
    total += sum(4 ** ((layer + 5) // 2) for layer in range(2 * log_size - 3))  # noise buffers
    if total > MAX_NUMBERS:
        raise ArchitectureTooLarge(
            f"it holds {total / 1e6:,.0f} million numbers, more than the "
            f"{MAX_NUMBERS // 1_000_000} million acgmake builds"
        )
    return total


def default_channels(
    size: int, channel_multiplier: float = 2, channel_max: int = 512
) -> dict[int, int]:
    """Feature maps per resolution, 4 .. ``size``.

    With ``channel_max=512`` this is rosinality's table (512 up to 32 pixels, then
    ``256 * channel_multiplier`` at 64, halving at each doubling); a small ``channel_max`` and
    ``channel_multiplier`` give a model of a few MB.
    """
    log_size = int(math.log2(size))
    return {
        2**i: max(1, min(channel_max, int(round(16384 * channel_multiplier / 2**i))))
        for i in range(2, log_size + 1)
    }


# ---------------------------------------------------------------------------------------------
# Filters and activations


def make_kernel(taps: Sequence[float]) -> torch.Tensor:
    """A separable 2-D FIR kernel from 1-D taps, normalised to sum to 1."""
    kernel = torch.tensor(taps, dtype=torch.float32)
    if kernel.ndim == 1:
        kernel = kernel[None, :] * kernel[:, None]
    return kernel / kernel.sum()


def upfirdn2d(
    x: torch.Tensor,
    kernel: torch.Tensor,
    up: int = 1,
    down: int = 1,
    pad: tuple[int, int] = (0, 0),
) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative crops), filter, and downsample.

    The same operation as the CUDA kernel of the reference code, written with a depthwise
    ``conv2d`` (the kernel is flipped: upfirdn is a true convolution).
    """
    batch, channels, height, width = x.shape
    if up > 1:
        x = x.reshape(batch, channels, height, 1, width, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(batch, channels, height * up, width * up)
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    weight = torch.flip(kernel, (0, 1)).to(x.dtype)
    weight = weight[None, None].expand(channels, 1, *kernel.shape)
    return F.conv2d(x, weight, stride=down, groups=channels)


class Blur(nn.Module):
    """Low-pass FIR filter (anti-aliasing around up- and down-sampling)."""

    def __init__(
        self, kernel: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1
    ) -> None:
        super().__init__()
        # After zero-insertion upsampling the signal lost energy: scale the filter back up.
        self.register_buffer("kernel", make_kernel(kernel) * upsample_factor**2)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """2x upsampling with a FIR filter (for the RGB skip connections)."""

    def __init__(self, kernel: Sequence[float], factor: int = 2) -> None:
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(kernel) * factor**2)
        excess = len(kernel) - factor
        self.pad = ((excess + 1) // 2 + factor - 1, excess // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class PixelNorm(nn.Module):
    """Normalise each latent to unit root-mean-square (the mapping network's input)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


def leaky_relu_with_bias(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Add a per-channel bias, leaky ReLU (0.2), and scale by sqrt(2) to keep unit variance."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return F.leaky_relu(x + bias.view(shape), 0.2) * math.sqrt(2)


class FusedLeakyReLU(nn.Module):
    """Bias + scaled leaky ReLU, named after the reference's fused CUDA op (plain torch here)."""

    def __init__(self, channels: int, bias: bool = True) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bias is None:
            return F.leaky_relu(x, 0.2) * math.sqrt(2)
        return leaky_relu_with_bias(x, self.bias)


# ---------------------------------------------------------------------------------------------
# Equalized-learning-rate layers


class EqualLinear(nn.Module):
    """Linear layer whose weights are scaled at run time (equalized learning rate).

    ``lr_mul`` slows a layer's effective learning rate (0.01 in the mapping network).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: str | None = None,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.activation = activation
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.lr_mul
        if self.activation:
            out = F.linear(x, self.weight * self.scale)
            return leaky_relu_with_bias(out, bias) if bias is not None else F.leaky_relu(out, 0.2)
        return F.linear(x, self.weight * self.scale, bias=bias)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, lr_mul={self.lr_mul}"


class EqualConv2d(nn.Module):
    """Convolution with equalized learning rate."""

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channel, in_channel, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_channel * kernel_size**2)
        self.stride = stride
        self.padding = padding
        self.bias = nn.Parameter(torch.zeros(out_channel)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(
            x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding
        )

    def extra_repr(self) -> str:
        out_channel, in_channel, k, _ = self.weight.shape
        return f"{in_channel}, {out_channel}, {k}, stride={self.stride}, padding={self.padding}"


# ---------------------------------------------------------------------------------------------
# Generator blocks


class ModulatedConv2d(nn.Module):
    """Convolution whose weights are scaled per sample by a style, then demodulated.

    Demodulation rescales each output feature map to unit expected variance, replacing
    StyleGAN's AdaIN (and its droplet artifacts). Up-sampling is a stride-2 transposed
    convolution followed by a blur.

    The style multiplies the input activations and the demodulation the outputs, instead of
    building a weight per sample: the same arithmetic, but one ordinary batched convolution,
    which is much faster on a CPU than the grouped convolution of the reference.
    """

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
        downsample: bool = False,
        blur_kernel: Sequence[float] = BLUR_KERNEL,
    ) -> None:
        super().__init__()
        self.in_channel = in_channel
        self.out_channel = out_channel
        self.kernel_size = kernel_size
        self.upsample = upsample
        self.downsample = downsample
        self.demodulate = demodulate
        factor = 2
        if upsample:
            excess = (len(blur_kernel) - factor) - (kernel_size - 1)
            pad = ((excess + 1) // 2 + factor - 1, excess // 2 + 1)
            self.blur = Blur(blur_kernel, pad=pad, upsample_factor=factor)
        if downsample:
            excess = (len(blur_kernel) - factor) + (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((excess + 1) // 2, excess // 2))
        self.scale = 1 / math.sqrt(in_channel * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(
            torch.randn(1, out_channel, in_channel, kernel_size, kernel_size)
        )
        # Starts at 1 so that, untrained, a style leaves the weights as they are.
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        style = self.modulation(style)  # batch x in_channel
        weight = self.weight[0] * self.scale  # out x in x k x k
        x = x * style[:, :, None, None]
        if self.upsample:
            out = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
            out = self.blur(out)
        elif self.downsample:
            out = F.conv2d(self.blur(x), weight, stride=2)
        else:
            out = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            # |w * s|^2 summed over inputs and taps, per sample and output feature.
            energy = style.square() @ weight.square().sum((2, 3)).t()
            out = out * torch.rsqrt(energy + 1e-8)[:, :, None, None]
        return out

    def extra_repr(self) -> str:
        return (
            f"{self.in_channel}, {self.out_channel}, {self.kernel_size}, "
            f"upsample={self.upsample}, downsample={self.downsample}"
        )


class NoiseInjection(nn.Module):
    """Adds per-pixel noise scaled by a learned strength (stochastic detail such as hair)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, image: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            batch, _, height, width = image.shape
            noise = image.new_empty(batch, 1, height, width).normal_()
        return image + self.weight * noise


class ConstantInput(nn.Module):
    """The learned 4x4 tensor the synthesis network starts from."""

    def __init__(self, channel: int, size: int = 4) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.expand(batch, -1, -1, -1)


def _clamp(x: torch.Tensor, limit: float | None) -> torch.Tensor:
    """``x`` clamped to +-``limit`` (NVlabs' ``conv_clamp``, which keeps FP16 from overflowing)."""
    return x if limit is None else x.clamp(-limit, limit)


class StyledConv(nn.Module):
    """Modulated 3x3 convolution, noise, bias and activation: one synthesis layer."""

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        style_dim: int,
        upsample: bool = False,
        blur_kernel: Sequence[float] = BLUR_KERNEL,
        demodulate: bool = True,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.conv = ModulatedConv2d(
            in_channel,
            out_channel,
            kernel_size,
            style_dim,
            upsample=upsample,
            blur_kernel=blur_kernel,
            demodulate=demodulate,
        )
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)

    def forward(
        self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        out = self.activate(self.noise(self.conv(x, style), noise=noise))
        return _clamp(out, self.conv_clamp)


class ToRGB(nn.Module):
    """1x1 modulated convolution to RGB, added to the upsampled RGB of the previous level."""

    def __init__(
        self,
        in_channel: int,
        style_dim: int,
        upsample: bool = True,
        blur_kernel: Sequence[float] = BLUR_KERNEL,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(
        self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None
    ) -> torch.Tensor:
        out = _clamp(self.conv(x, style) + self.bias, self.conv_clamp)
        if skip is not None:
            out = out + self.upsample(skip)
        return out


# ---------------------------------------------------------------------------------------------
# Generator


class Generator(nn.Module):
    """Latent ``z`` -> mapping network -> ``w`` -> synthesis network -> RGB image.

    ``generator(z)`` gives images N x 3 x size x size, nominally in [-1, 1] (not clamped, so
    training sees the raw output; :func:`images_to_uint8` clamps). ``n_latent`` styles feed
    the layers: two per resolution, the first at 4x4 shared with its RGB layer.
    ``conv_clamp`` limits every layer's output to +-conv_clamp, as NVlabs' models do (256).
    """

    def __init__(
        self,
        size: int,
        style_dim: int = 512,
        n_mlp: int = 8,
        channel_multiplier: float = 2,
        blur_kernel: Sequence[float] = BLUR_KERNEL,
        lr_mlp: float = 0.01,
        channel_max: int = 512,
        channels: dict[int, int] | None = None,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        # (A size past MAX_SIZE is refused just below, not given a default table.)
        channels = channels or default_channels(
            min(size, 2 * MAX_SIZE), channel_multiplier, channel_max
        )
        self.channels = {int(k): int(v) for k, v in channels.items()}
        # Before any tensor is made: a checkpoint's few bytes can declare a huge network.
        check_architecture(size, style_dim, n_mlp, self.channels, blur_kernel)
        log_size = int(math.log2(size))
        self.size = size
        self.style_dim = style_dim
        self.log_size = log_size
        # Everything needed to build this architecture again (stored in checkpoints).
        self.config = {
            "size": size,
            "style_dim": style_dim,
            "n_mlp": n_mlp,
            "channels": {str(k): v for k, v in sorted(self.channels.items())},
            "blur_kernel": list(blur_kernel),
            "lr_mlp": lr_mlp,
        }
        if conv_clamp is not None:
            # Only NVlabs models clamp; leaving the key out keeps other configs as they were.
            self.config["conv_clamp"] = conv_clamp
        layer_options = {"blur_kernel": blur_kernel, "conv_clamp": conv_clamp}

        self.style = nn.Sequential(
            PixelNorm(),
            *(
                EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation="fused_lrelu")
                for _ in range(n_mlp)
            ),
        )

        self.input = ConstantInput(self.channels[4])
        self.conv1 = StyledConv(self.channels[4], self.channels[4], 3, style_dim, **layer_options)
        self.to_rgb1 = ToRGB(self.channels[4], style_dim, upsample=False, **layer_options)

        self.num_layers = (log_size - 2) * 2 + 1
        self.n_latent = log_size * 2 - 2
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for layer in range(self.num_layers):
            side = 2 ** ((layer + 5) // 2)
            self.noises.register_buffer(f"noise_{layer}", torch.randn(1, 1, side, side))

        in_channel = self.channels[4]
        for i in range(3, log_size + 1):
            out_channel = self.channels[2**i]
            self.convs.append(
                StyledConv(in_channel, out_channel, 3, style_dim, upsample=True, **layer_options)
            )
            self.convs.append(StyledConv(out_channel, out_channel, 3, style_dim, **layer_options))
            self.to_rgbs.append(ToRGB(out_channel, style_dim, **layer_options))
            in_channel = out_channel

        # The average w, pulled toward by truncation. Training tracks it as an EMA
        # (update_w_avg); export recomputes it for the EMA generator (compute_w_avg).
        self.register_buffer("w_avg", torch.zeros(style_dim))

    # -- latents ----------------------------------------------------------------------------

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """``w`` (N x style_dim) for latents ``z`` (N x style_dim)."""
        return self.style(z)

    get_latent = mapping  # rosinality's name

    def mean_latent(self, n_latent: int, seed: int = 0) -> torch.Tensor:
        """The mean ``w`` over ``n_latent`` random ``z`` (1 x style_dim), reproducible by seed."""
        rng = torch.Generator().manual_seed(seed)
        z = torch.randn(n_latent, self.style_dim, generator=rng).to(self.w_avg.device)
        with torch.no_grad():
            return self.mapping(z).mean(0, keepdim=True)

    @torch.no_grad()
    def compute_w_avg(self, n_latent: int = 10_000, seed: int = 0) -> None:
        """Set ``w_avg`` to :meth:`mean_latent` (done once for the exported EMA generator)."""
        self.w_avg.copy_(self.mean_latent(n_latent, seed)[0])

    @torch.no_grad()
    def update_w_avg(self, w: torch.Tensor, beta: float = 0.995) -> None:
        """Move ``w_avg`` toward the batch mean of ``w`` (an exponential moving average)."""
        self.w_avg.copy_(torch.lerp(w.detach().mean(0), self.w_avg, beta))

    def truncate(self, w: torch.Tensor, psi: float) -> torch.Tensor:
        """Pull ``w`` toward ``w_avg``: psi=1 leaves it, psi=0 gives the average latent."""
        if psi == 1:
            return w
        return torch.lerp(self.w_avg.to(w.dtype), w, psi)

    def mix_latents(
        self, w: torch.Tensor, w_mix: torch.Tensor, index: int | None = None
    ) -> torch.Tensor:
        """Per-layer styles (N x n_latent x D): ``w`` for layers < ``index``, ``w_mix`` after.

        ``index`` defaults to a random crossover point in 1 .. n_latent-1 (style mixing).
        """
        if index is None:
            index = int(torch.randint(1, self.n_latent, ()).item())
        layers = torch.arange(self.n_latent, device=w.device)[None, :, None]
        return torch.where(layers < index, w[:, None], w_mix[:, None])

    def make_noise(self, seed: int | None = None) -> list[torch.Tensor]:
        """One fresh noise image per layer (batch 1), optionally reproducible by seed."""
        rng = torch.Generator().manual_seed(seed) if seed is not None else None
        noises = []
        for layer in range(self.num_layers):
            shape = getattr(self.noises, f"noise_{layer}").shape
            noises.append(torch.randn(shape, generator=rng).to(self.w_avg.device))
        return noises

    # -- synthesis --------------------------------------------------------------------------

    def synthesis(
        self,
        w: torch.Tensor,
        noise_mode: str = "const",
        noise: Sequence[torch.Tensor | None] | None = None,
    ) -> torch.Tensor:
        """Images (N x 3 x size x size) from ``w``: N x style_dim, or N x n_latent x style_dim.

        ``noise_mode``: "const" uses the stored noise buffers (same w -> same image),
        "random" draws new noise, "none" adds none. ``noise`` (one tensor per layer) overrides.
        """
        if noise is None:
            if noise_mode == "const":
                noise = [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]
            elif noise_mode == "random":
                noise = [None] * self.num_layers
            elif noise_mode == "none":
                noise = [
                    torch.zeros_like(getattr(self.noises, f"noise_{i}"))
                    for i in range(self.num_layers)
                ]
            else:
                raise ValueError(f"noise_mode must be one of {NOISE_MODES}, not {noise_mode!r}")
        if w.ndim == 2:
            w = w[:, None].expand(-1, self.n_latent, -1)

        out = self.input(w.shape[0])
        out = self.conv1(out, w[:, 0], noise=noise[0])
        skip = self.to_rgb1(out, w[:, 1])
        i = 1
        for up_conv, conv, to_rgb, noise1, noise2 in zip(
            self.convs[::2],
            self.convs[1::2],
            self.to_rgbs,
            noise[1::2],
            noise[2::2],
            strict=True,
        ):
            out = up_conv(out, w[:, i], noise=noise1)
            out = conv(out, w[:, i + 1], noise=noise2)
            skip = to_rgb(out, w[:, i + 2], skip)
            i += 2
        return skip

    def forward(
        self,
        z: torch.Tensor,
        truncation_psi: float = 1.0,
        noise_mode: str = "const",
        *,
        z_mix: torch.Tensor | None = None,
        mix_index: int | None = None,
        noise: Sequence[torch.Tensor | None] | None = None,
        return_latents: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Images for latents ``z`` (N x style_dim); with ``return_latents``, also the ``w``.

        ``z_mix`` mixes styles: its ``w`` drives the layers from ``mix_index`` on.
        """
        w = self.truncate(self.mapping(z), truncation_psi)
        if z_mix is not None:
            w = self.mix_latents(w, self.truncate(self.mapping(z_mix), truncation_psi), mix_index)
        images = self.synthesis(w, noise_mode=noise_mode, noise=noise)
        return (images, w) if return_latents else images

    # -- community checkpoints --------------------------------------------------------------

    def load_rosinality(
        self, state_dict: dict[str, torch.Tensor], latent_avg: torch.Tensor | None = None
    ) -> None:
        """Load a rosinality ``g_ema`` state dict (it has no ``w_avg``).

        ``latent_avg`` (stored beside ``g_ema`` by rosinality's converter) becomes ``w_avg``;
        without it the average is computed from 10,000 latents.
        """
        state = dict(state_dict)
        missing = "w_avg" not in state
        if missing:
            state["w_avg"] = self.w_avg
        self.load_state_dict(state, strict=True)
        if latent_avg is not None:
            self.w_avg.copy_(latent_avg.reshape(-1))
        elif missing:
            self.compute_w_avg()


# ---------------------------------------------------------------------------------------------
# Discriminator


class ConvLayer(nn.Sequential):
    """[blur] + equalized conv + bias/activation, as one sequential (reference key layout)."""

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        downsample: bool = False,
        blur_kernel: Sequence[float] = BLUR_KERNEL,
        bias: bool = True,
        activate: bool = True,
    ) -> None:
        layers: list[nn.Module] = []
        if downsample:
            factor = 2
            excess = (len(blur_kernel) - factor) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, pad=((excess + 1) // 2, excess // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(
            EqualConv2d(
                in_channel,
                out_channel,
                kernel_size,
                padding=padding,
                stride=stride,
                bias=bias and not activate,
            )
        )
        if activate:
            layers.append(FusedLeakyReLU(out_channel, bias=bias))
        super().__init__(*layers)


class ResBlock(nn.Module):
    """Two convolutions (the second halves the resolution) plus a 1x1 skip, scaled by 1/sqrt 2."""

    def __init__(
        self, in_channel: int, out_channel: int, blur_kernel: Sequence[float] = BLUR_KERNEL
    ) -> None:
        super().__init__()
        self.conv1 = ConvLayer(in_channel, in_channel, 3)
        self.conv2 = ConvLayer(in_channel, out_channel, 3, downsample=True)
        self.skip = ConvLayer(
            in_channel, out_channel, 1, downsample=True, activate=False, bias=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)


class Discriminator(nn.Module):
    """Residual discriminator: image N x 3 x size x size -> realness logit N x 1.

    Before the last convolution a minibatch standard-deviation feature lets it see how varied
    a batch is, which discourages the generator from collapsing to a few images.
    """

    def __init__(
        self,
        size: int,
        channel_multiplier: float = 2,
        blur_kernel: Sequence[float] = BLUR_KERNEL,
        channel_max: int = 512,
        channels: dict[int, int] | None = None,
        stddev_group: int = 4,
    ) -> None:
        super().__init__()
        channels = dict(channels or default_channels(size, channel_multiplier, channel_max))
        log_size = int(math.log2(size))
        layers: list[nn.Module] = [ConvLayer(3, channels[size], 1)]
        in_channel = channels[size]
        for i in range(log_size, 2, -1):
            out_channel = channels[2 ** (i - 1)]
            layers.append(ResBlock(in_channel, out_channel, blur_kernel))
            in_channel = out_channel
        self.convs = nn.Sequential(*layers)
        self.stddev_group = stddev_group
        self.stddev_feat = 1
        self.final_conv = ConvLayer(in_channel + 1, channels[4], 3)
        self.final_linear = nn.Sequential(
            EqualLinear(channels[4] * 4 * 4, channels[4], activation="fused_lrelu"),
            EqualLinear(channels[4], 1),
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        out = self.convs(image)
        batch, channel, height, width = out.shape
        # Largest group size <= stddev_group that divides the batch.
        group = next(g for g in range(min(batch, self.stddev_group), 0, -1) if batch % g == 0)
        stddev = out.view(group, -1, self.stddev_feat, channel // self.stddev_feat, height, width)
        stddev = torch.sqrt(stddev.var(0, unbiased=False) + 1e-8)
        stddev = stddev.mean((2, 3, 4), keepdim=True).squeeze(2)
        stddev = stddev.repeat(group, 1, height, width)
        out = self.final_conv(torch.cat([out, stddev], 1))
        return self.final_linear(out.view(batch, -1))


# ---------------------------------------------------------------------------------------------
# Pixels


def images_to_uint8(images: torch.Tensor) -> np.ndarray:
    """Generator output (N x 3 x H x W, [-1, 1]) as uint8 RGB arrays N x H x W x 3."""
    pixels = (images.detach().float().clamp(-1, 1) + 1) * 127.5
    return pixels.round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def latents_for_seeds(seeds: Sequence[int], style_dim: int) -> torch.Tensor:
    """One ``z`` per seed (N x style_dim), the same on every machine (CPU generator)."""
    return torch.cat(
        [torch.randn(1, style_dim, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
    )


@torch.no_grad()
def generate(
    generator: Generator,
    seeds: Sequence[int],
    truncation_psi: float = 0.7,
    noise_mode: str = "const",
) -> np.ndarray:
    """uint8 RGB images (N x H x W x 3), one per seed."""
    generator.eval()
    device = generator.w_avg.device
    z = latents_for_seeds(seeds, generator.style_dim).to(device)
    return images_to_uint8(generator(z, truncation_psi=truncation_psi, noise_mode=noise_mode))
