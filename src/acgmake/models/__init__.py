"""Torch networks and their checkpoints: StyleGAN2, its trainer, the drawn training set.

``from acgmake.models import load_generator`` works without importing torch until the
function is first used (``acgmake --help`` never loads torch).
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "load_generator": "acgmake.models.checkpoint",
    "save_generator": "acgmake.models.checkpoint",
    "Generator": "acgmake.models.stylegan2",
    "Discriminator": "acgmake.models.stylegan2",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'acgmake.models' has no attribute {name!r}")
