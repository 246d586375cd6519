"""The hint colorizer: a small U-Net that paints line art from a few coloured hint dots.

In the manner of PaintsChainer and AlacGAN (Ci et al., "User-Guided Deep Anime Line Art
Colorization with Conditional Adversarial Networks", 2018), without the adversarial part: the
network sees the line art and a sparse hint map (the hint colours where the user put a dot or
a stroke, and a mask saying where) and gives back a colour for every pixel. It learns from the
project's own drawn characters (:mod:`acgmake.models.drawn`): XDoG lines of a drawing, dots
sampled from its true colours, the drawing as the target (:mod:`acgmake.models.colorizer_train`).

Input channels (9, :func:`net_features`): ink (1 = ink, 0 = paper), hint red, green, blue
(0..1, zero where there is no hint), the hint mask (1 = hint), and the hints flooded up to
the lines (:func:`flat_for_net`: their RGB, and 1 where the area holds a hint of its own).
Output: RGB in 0..1. The network works at :data:`NET_SIZE_PX` on the longer side; sides are
padded to a multiple of 16.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

#: The side the network sees (the longer side; the shorter is padded to a multiple of 16).
NET_SIZE_PX = 128
#: The shipped weights (safetensors) and the command that reproduces them (in their metadata).
SHIPPED = Path(__file__).parent / "weights" / "colorizer128.safetensors"
IN_CHANNELS = 9
#: Gaps in the lines (network pixels) that hold a flood of hint colour in (8 px at 512).
NET_GAP_PX = 2.0


@dataclass(frozen=True)
class ColorizerConfig:
    """Architecture sizes: channels at each level of the U-Net (full size first)."""

    channels: tuple[int, ...] = (16, 32, 64, 128, 192)


class ConvBlock(nn.Module):
    """Two 3x3 convolutions, each with batch norm and ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Down(nn.Module):
    """Half the size (a strided convolution), then a block."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pool = nn.Conv2d(in_channels, in_channels, 3, stride=2, padding=1)
        self.block = ConvBlock(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(self.pool(x))


class Up(nn.Module):
    """Twice the size, joined with the encoder's features of that size (the skip)."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(in_channels, skip_channels, 1)
        self.block = ConvBlock(2 * skip_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(self.reduce(x), scale_factor=2, mode="nearest")
        return self.block(torch.cat([x, skip], dim=1))


class HintColorizer(nn.Module):
    """U-Net from (ink, hint RGB, hint mask) to RGB; see the module docstring."""

    def __init__(self, config: ColorizerConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or ColorizerConfig()
        widths = config.channels
        self.stem = ConvBlock(IN_CHANNELS, widths[0])
        self.downs = nn.ModuleList(Down(a, b) for a, b in zip(widths, widths[1:], strict=False))
        self.ups = nn.ModuleList(
            Up(widths[i + 1], widths[i], widths[i]) for i in reversed(range(len(widths) - 1))
        )
        self.to_rgb = nn.Conv2d(widths[0], 3, 1)

    @property
    def multiple(self) -> int:
        """Input sides must be a multiple of this."""
        return 2 ** (len(self.config.channels) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: N x 9 x H x W (:func:`net_features`). Returns N x 3 x H x W in 0..1."""
        skips = [self.stem(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for up in self.ups:
            y = up(y, skips.pop())
        return torch.sigmoid(self.to_rgb(y))


def save_colorizer(model: HintColorizer, path: Path, metadata: dict[str, str]) -> None:
    """Write ``model``'s weights as safetensors (float16) with its config in the metadata."""
    from safetensors.torch import save_file

    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    meta = {**metadata, "config": json.dumps(asdict(model.config))}
    save_file(state, str(path), metadata=meta)


def load_colorizer(path: Path = SHIPPED) -> HintColorizer:
    """The colorizer stored at ``path`` (default: the shipped one), in eval mode, float32.

    Raises UserError when the file is missing.
    """
    if not Path(path).is_file():
        from acgmake.errors import UserError

        raise UserError(
            f"the hint colorizer's weights ({path}) are missing; reinstall acgmake, or use "
            "--method flat"
        )
    return _load(str(Path(path).resolve()))


@lru_cache(maxsize=2)
def _load(path: str) -> HintColorizer:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(path, framework="pt") as handle:
        metadata = handle.metadata() or {}
    raw = json.loads(metadata.get("config", "{}"))
    config = ColorizerConfig(**{k: tuple(v) for k, v in raw.items()})
    model = HintColorizer(config)
    state = {k: v.float() for k, v in load_file(path).items()}
    model.load_state_dict(state, strict=False)
    return model.eval()


def colorizer_metadata(path: Path = SHIPPED) -> dict[str, str]:
    """The metadata stored with the weights (the reproduce command, training figures)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata() or {})


def net_shape(height: int, width: int, size_px: int = NET_SIZE_PX) -> tuple[int, int]:
    """(height, width) of a ``height`` x ``width`` picture scaled so its longer side is
    ``size_px``."""
    scale = size_px / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def ink_for_net(ink: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The ink mask ``ink`` (bool, any size) at ``shape`` for the network, float32 0..1.

    Area-averaged, then scaled by half the reduction, so a line two or more pixels wide at
    any size becomes full ink: the network sees lines of the same weight whatever the size of
    the line art it came from.
    """
    import cv2

    height, width = shape
    reduction = max(ink.shape[0] / height, 1.0)
    share = cv2.resize(ink.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
    return np.clip(share * reduction / 2.0, 0.0, 1.0).astype(np.float32)


def hints_for_net(
    hint_rgb: np.ndarray, hint_mask: np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Hint colours (float 0..1) and mask (bool) at ``shape``: a cell holding any hint pixel
    is a hint, of the mean colour of the hint pixels in it."""
    import cv2

    height, width = shape
    mask = hint_mask.astype(np.float32)
    size = (width, height)
    share = cv2.resize(mask, size, interpolation=cv2.INTER_AREA)
    colour = cv2.resize(
        hint_rgb.astype(np.float32) * mask[..., None], size, interpolation=cv2.INTER_AREA
    )
    small_mask = share > 1e-6
    rgb = np.where(small_mask[..., None], colour / np.maximum(share, 1e-6)[..., None], 0.0)
    return np.clip(rgb, 0.0, 1.0).astype(np.float32), small_mask


def flat_for_net(
    ink: np.ndarray, hint_rgb: np.ndarray, hint_mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The hints flooded up to the lines, at the network's size: (colours H x W x 3, sure).

    Each hint pixel floods the area it sits in (:func:`acgmake.image.fill.fill`, gaps up to
    :data:`NET_GAP_PX` sealed); ``sure`` is 1 in areas that hold a hint and 0 where the colour
    came over a line from a neighbour. This does the long reach for the network: it only has
    to judge and shade, not carry a dot's colour across the picture.
    """
    from acgmake.image.fill import areas, fill

    lines = ink > 0.5
    ys, xs = np.nonzero(hint_mask & ~lines)
    if ys.size == 0:
        return np.zeros(ink.shape + (3,), np.float32), np.zeros(ink.shape, np.float32)
    seeds = np.zeros(ink.shape, np.int32)
    seeds[ys, xs] = np.arange(1, ys.size + 1)
    flooded = fill(lines, seeds, gap_px=NET_GAP_PX)
    table = np.vstack([np.zeros((1, 3)), hint_rgb[ys, xs]]).astype(np.float32)
    area_map = areas(lines, gap_px=NET_GAP_PX)
    hinted = np.zeros(area_map.max() + 1, bool)
    hinted[area_map[ys, xs]] = True
    return table[flooded], hinted[area_map].astype(np.float32)


def net_features(ink: np.ndarray, hint_rgb: np.ndarray, hint_mask: np.ndarray) -> np.ndarray:
    """The network's input (9 x H x W float32) from arrays at the network's size.

    ``ink`` float (1 = ink), ``hint_rgb`` float H x W x 3 in 0..1, ``hint_mask`` bool.
    Channels: ink, hint RGB (zero off the hints), hint mask, the flooded hints' RGB and
    whether each pixel's area holds a hint (:func:`flat_for_net`).
    """
    mask = hint_mask.astype(bool)
    flat, sure = flat_for_net(ink, hint_rgb, mask)
    return np.concatenate(
        [
            ink[None].astype(np.float32),
            (hint_rgb.astype(np.float32) * mask[..., None]).transpose(2, 0, 1),
            mask[None].astype(np.float32),
            flat.transpose(2, 0, 1),
            sure[None],
        ],
        axis=0,
    )


@torch.no_grad()
def predict(model: HintColorizer, ink: np.ndarray, hint_rgb: np.ndarray, hint_mask: np.ndarray):
    """Colours (H x W x 3 float32, 0..1) for ink and hints at the network's size.

    Sides that are not a multiple of the network's are padded and cropped back.
    """
    height, width = ink.shape
    m = model.multiple
    pad_h, pad_w = (-height) % m, (-width) % m
    x = torch.from_numpy(np.ascontiguousarray(net_features(ink, hint_rgb, hint_mask)))[None]
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h))
    y = model(x)[0, :, :height, :width]
    return y.permute(1, 2, 0).numpy().astype(np.float32)
