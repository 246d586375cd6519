"""The simplification network of "Learning to Simplify" (Simo-Serra, Iizuka, Sasaki and
Ishikawa, SIGGRAPH 2016), rebuilt small: a fully convolutional encoder-decoder without skip
connections. Down-convolutions (stride 2) shrink a grey rough sketch to 1/8 of its size, flat
convolutions at that size decide which strokes are lines, and up-convolutions (stride 1/2)
draw them back at full size; a sigmoid gives each pixel's ink in [0, 1].

It reads any picture whose sides are multiples of :data:`MULTIPLE` (:func:`simplify_gray` pads
the rest) and works on big pictures tile by tile, so memory stays bounded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

WEIGHTS = Path(__file__).with_name("weights") / "simplify.safetensors"
#: The network halves the picture three times: its sides must be multiples of this.
MULTIPLE = 8
#: Tiles this many pixels square (plus :data:`TILE_MARGIN` each side) bound the memory the
#: network takes, whatever the picture's size.
TILE_PX = 512
#: Context each tile reads beyond its own pixels: with 64 px a tiled picture comes out as the
#: whole picture would (largest difference 1e-7 on a 1024 px page in 256 px tiles; 0.07 with 32).
TILE_MARGIN = 64


def _conv(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _up(cin: int, cout: int) -> nn.Sequential:
    """An up-convolution: twice the size (the paper's 1/2-stride convolution)."""
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class SimplifyNet(nn.Module):
    """Grey rough (B, 1, H, W), 1 = paper, 0 = graphite -> ink (B, 1, H, W) in [0, 1]."""

    def __init__(self, width: int = 24) -> None:
        super().__init__()
        w = width
        self.down = nn.Sequential(
            _conv(1, w, 5, 2), _conv(w, w), _conv(w, w),
            _conv(w, 2 * w, 3, 2), _conv(2 * w, 2 * w),
            _conv(2 * w, 3 * w, 3, 2),
        )  # fmt: skip
        self.flat = nn.Sequential(_conv(3 * w, 4 * w), _conv(4 * w, 4 * w), _conv(4 * w, 3 * w))
        self.up = nn.Sequential(
            _up(3 * w, 2 * w), _conv(2 * w, 2 * w),
            _up(2 * w, w), _conv(w, w),
            _up(w, w // 2 + w // 4),
            nn.Conv2d(w // 2 + w // 4, 1, 3, padding=1),
        )  # fmt: skip

    def forward(self, rough: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(rough))

    def logits(self, rough: torch.Tensor) -> torch.Tensor:
        # Centre the input: paper at 0.5, graphite toward -0.5.
        return self.up(self.flat(self.down(rough - 0.5)))


def save(net: SimplifyNet, path: Path, metadata: dict[str, str]) -> None:
    """``net``'s weights as safetensors with ``metadata`` (how it was trained, its figures)."""
    from safetensors.torch import save_file

    state = {name: tensor.detach().contiguous() for name, tensor in net.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata={"width": str(net_width(net)), **metadata})


def net_width(net: SimplifyNet) -> int:
    return int(net.down[0][0].out_channels)


def load(path: Path = WEIGHTS) -> SimplifyNet:
    """The network stored at ``path`` (safetensors: no code runs on load), in eval mode."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), "pt") as stored:
        width = int((stored.metadata() or {}).get("width", 24))
    net = SimplifyNet(width)
    net.load_state_dict(load_file(str(path)))
    return net.eval()


def simplify_gray(net: SimplifyNet, gray: np.ndarray, *, tile_px: int = TILE_PX) -> np.ndarray:
    """The ink the network draws for a grey rough ``gray`` (float32 H x W, 1 = paper): float32
    in [0, 1] of the same shape, 1 = ink. Pictures larger than ``tile_px`` go tile by tile,
    each tile reading :data:`TILE_MARGIN` pixels of its neighbours."""
    height, width = gray.shape
    ink = np.zeros((height, width), np.float32)
    step = max(MULTIPLE, tile_px // MULTIPLE * MULTIPLE)
    margin = TILE_MARGIN if max(height, width) > step else 0
    with torch.inference_mode():
        for top in range(0, height, step):
            for left in range(0, width, step):
                y0, x0 = max(0, top - margin), max(0, left - margin)
                y1, x1 = min(height, top + step + margin), min(width, left + step + margin)
                piece = gray[y0:y1, x0:x1]
                # Pad with paper to a multiple of 8 (edge-replicated paper, so no frame shows).
                ph, pw = -piece.shape[0] % MULTIPLE, -piece.shape[1] % MULTIPLE
                padded = np.pad(piece, ((0, ph), (0, pw)), mode="edge")
                out = net(torch.from_numpy(np.ascontiguousarray(padded))[None, None])[0, 0]
                out = out.numpy()[: piece.shape[0], : piece.shape[1]]
                bottom, right = min(height, top + step), min(width, left + step)
                ink[top:bottom, left:right] = out[top - y0 : bottom - y0, left - x0 : right - x0]
    return ink
