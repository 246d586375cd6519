"""Community checkpoints: rosinality .pt, NVlabs .pkl, bare safetensors; hostile, broken files."""

from __future__ import annotations

import argparse
import builtins
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import nvlabs_reference as nvlabs
from acgmake.errors import UserError
from acgmake.models import load_generator
from acgmake.models.checkpoint import file_kind, save_generator
from acgmake.models.community import infer_config
from acgmake.models.stylegan2 import Discriminator, Generator

CHANNELS = {4: 16, 8: 12, 16: 8, 32: 4}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def source_generator(seed: int = 0, **options) -> Generator:
    """A small generator in rosinality's layout with noise that matters and a known w_avg."""
    torch.manual_seed(seed)
    options = {"style_dim": 16, "n_mlp": 3, "channels": CHANNELS, **options}
    generator = Generator(options.pop("size", 32), **options)
    with torch.no_grad():
        for name, parameter in generator.named_parameters():
            if name.endswith("noise.weight"):
                parameter.fill_(0.4)
            if name.endswith("activate.bias") or name.endswith("to_rgb1.bias"):
                parameter.normal_(0, 0.1)
        generator.w_avg.normal_(0, 0.1)
    return generator.eval()


def g_ema_state(generator: Generator) -> dict[str, torch.Tensor]:
    """The state dict rosinality's Generator has (ours minus the w_avg buffer)."""
    return {k: v.clone() for k, v in generator.state_dict().items() if k != "w_avg"}


def same_images(a: Generator, b: Generator, psi: float = 1.0, noise_mode: str = "const") -> float:
    """Max absolute difference of the two generators' images for a fixed z."""
    z = torch.randn(3, a.style_dim, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        return float((a(z, psi, noise_mode) - b(z, psi, noise_mode)).abs().max())


# ---------------------------------------------------------------------------------------------
# Shape inference


@pytest.mark.parametrize(
    "options",
    [
        {"size": 32, "style_dim": 16, "n_mlp": 3, "channels": CHANNELS},
        {"size": 8, "style_dim": 8, "n_mlp": 1, "channels": {4: 6, 8: 5}},
        {"size": 64, "style_dim": 12, "n_mlp": 5, "channel_multiplier": 1, "channel_max": 24},
        {
            "size": 16,
            "style_dim": 8,
            "n_mlp": 2,
            "channels": {4: 8, 8: 8, 16: 8},
            "blur_kernel": (1, 2, 1),
        },
    ],
)
def test_architecture_is_inferred_from_shapes(options):
    generator = Generator(**options)
    config = infer_config(g_ema_state(generator))
    assert config["size"] == generator.size
    assert config["style_dim"] == generator.style_dim
    assert config["n_mlp"] == len(generator.style) - 1
    assert config["channels"] == generator.channels
    assert tuple(config["blur_kernel"]) == tuple(options.get("blur_kernel", (1, 3, 3, 1)))


def test_content_not_name_decides_the_format(tmp_path):
    generator = source_generator()
    save_generator(generator, tmp_path / "a.bin")
    torch.save({"g_ema": g_ema_state(generator)}, tmp_path / "b.bin")
    nvlabs.network_pickle(tmp_path / "c.bin", nvlabs.Generator(8, {4: 4}, 1))
    (tmp_path / "d.bin").write_bytes(b"hello")
    kinds = [file_kind(tmp_path / f"{name}.bin") for name in "abcd"]
    assert kinds == ["safetensors", "torch", "pickle", "unknown"]
    assert same_images(load_generator(tmp_path / "b.bin"), generator) == 0


# ---------------------------------------------------------------------------------------------
# rosinality/stylegan2-pytorch


def test_a_rosinality_training_checkpoint_loads(tmp_path):
    g, g_ema = source_generator(1), source_generator(2)
    d = Discriminator(32, channels=CHANNELS)
    g_optim = torch.optim.Adam(g.parameters(), lr=0.002, betas=(0.0, 0.99))
    d_optim = torch.optim.Adam(d.parameters(), lr=0.002, betas=(0.0, 0.99))
    g(torch.randn(2, 16)).mean().backward()
    g_optim.step()
    path = tmp_path / "040000.pt"
    torch.save(
        {
            "g": g.state_dict(),
            "d": d.state_dict(),
            "g_ema": g_ema_state(g_ema),
            "g_optim": g_optim.state_dict(),
            "d_optim": d_optim.state_dict(),
            "args": argparse.Namespace(size=32, batch=16, r1=10.0, path="faces", wandb=False),
        },
        path,
    )
    loaded = load_generator(path)
    assert loaded.size == 32 and loaded.channels == CHANNELS
    assert same_images(loaded, g_ema) == 0
    assert same_images(loaded, g_ema, noise_mode="none") == 0
    # No latent_avg in a training checkpoint: the truncation centre is estimated.
    g_ema.compute_w_avg()
    assert same_images(loaded, g_ema, psi=0.7) == 0


def test_a_converted_g_ema_with_latent_avg_loads(tmp_path):
    g_ema = source_generator(3)
    path = tmp_path / "stylegan2-ffhq-config-f.pt"
    torch.save({"g_ema": g_ema_state(g_ema), "latent_avg": g_ema.w_avg.clone()}, path)
    loaded = load_generator(path)
    assert torch.equal(loaded.w_avg, g_ema.w_avg)
    for psi in (1.0, 0.5):
        assert same_images(loaded, g_ema, psi=psi) == 0
    z = torch.randn(2, 16)
    first, second = loaded(z, noise_mode="random"), loaded(z, noise_mode="random")
    assert first.shape == (2, 3, 32, 32) and not torch.equal(first, second)
    # The pre-zip torch.save format too.
    legacy = tmp_path / "legacy.pt"
    torch.save({"g_ema": g_ema_state(g_ema)}, legacy, _use_new_zipfile_serialization=False)
    assert same_images(load_generator(legacy), g_ema) == 0


class RunsCode:
    """Unpickling this calls exec: what a hostile checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return builtins.exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


def test_a_pt_that_would_run_code_is_refused(tmp_path, load_error):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    torch.save({"g_ema": g_ema_state(source_generator()), "extra": RunsCode(marker)}, path)
    message = load_error(path)
    assert "(exec)" in message and "refuses" in message
    assert not marker.exists()


def test_broken_pt_files_are_user_errors(tmp_path, load_error):
    g_ema = source_generator()
    good = tmp_path / "good.pt"
    torch.save({"g_ema": g_ema_state(g_ema), "latent_avg": g_ema.w_avg}, good)
    data = good.read_bytes()

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    assert "truncated or damaged" in load_error(truncated)
    flipped = bytearray(data)
    flipped[data.index(g_ema.state_dict()["input.input"].numpy().tobytes()[:16]) + 8] ^= 0xFF
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(bytes(flipped))
    assert "checksum" in load_error(corrupt)

    for name, change, expected in (
        ("convs.3.conv.modulation.weight", None, "missing: convs.3.conv.modulation.weight"),
        ("to_rgbs.1.bias", torch.zeros(1, 4, 1, 1), "wrong shape: to_rgbs.1.bias"),
        ("convs.1.conv.weight", None, "synthesis convolutions numbered [0, 2, 3"),
        ("style.2.bias", torch.full((16,), float("nan")), "NaN or infinite numbers in style.2"),
    ):
        state = g_ema_state(g_ema)
        if change is None:
            del state[name]
        else:
            state[name] = change
        path = tmp_path / f"{name}.pt"
        torch.save({"g_ema": state}, path)
        assert expected in load_error(path)
    other = tmp_path / "classifier.pt"
    torch.save({"model": {"fc.weight": torch.zeros(2, 2)}}, other)
    assert "without a g_ema" in load_error(other)


# ---------------------------------------------------------------------------------------------
# NVlabs stylegan2-ada-pytorch


@pytest.mark.parametrize("conv_clamp", [None, 0.5])
def test_an_nvlabs_pickle_matches_the_reference_forward(tmp_path, conv_clamp):
    torch.manual_seed(4)
    reference = nvlabs.Generator(16, CHANNELS, 3, conv_clamp=conv_clamp).eval()
    path = nvlabs.network_pickle(tmp_path / "network-snapshot-000200.pkl", reference)
    loaded = load_generator(path)
    assert loaded.size == 32 and loaded.channels == CHANNELS and len(loaded.style) == 4
    assert torch.equal(loaded.w_avg, reference.mapping.w_avg)
    z = torch.randn(4, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for psi in (1.0, 0.7):
            for noise_mode in ("const", "none"):
                expected = reference(z, None, psi, noise_mode)
                got = loaded(z, truncation_psi=psi, noise_mode=noise_mode)
                assert got.shape == (4, 3, 32, 32)
                assert (got - expected).abs().max() < 1e-4 * expected.abs().max()
        first, second = loaded(z, noise_mode="random"), loaded(z, noise_mode="random")
        assert first.shape == (4, 3, 32, 32) and not torch.equal(first, second)
        if conv_clamp is not None:  # the clamp changes the picture, so this tests it
            unclamped = nvlabs.Generator(16, CHANNELS, 3)
            unclamped.load_state_dict(reference.state_dict())
            assert (unclamped(z) - reference(z)).abs().max() > 0.1


def test_an_nvlabs_pickle_without_noise_inputs_loads(tmp_path):
    torch.manual_seed(2)
    reference = nvlabs.Generator(16, CHANNELS, 2).eval()
    for layer in reference.modules():
        if isinstance(layer, nvlabs.SynthesisLayer):  # as built with use_noise=False
            layer.use_noise = False
            del layer._buffers["noise_const"], layer._parameters["noise_strength"]
    loaded = load_generator(nvlabs.network_pickle(tmp_path / "quiet.pkl", reference))
    z = torch.randn(2, 16)
    with torch.no_grad():
        expected = reference(z)
        for noise_mode in ("const", "random"):
            got = loaded(z, noise_mode=noise_mode)
            assert (got - expected).abs().max() < 1e-4 * expected.abs().max()


def test_the_pickles_source_is_never_run(tmp_path, monkeypatch, load_error):
    marker = tmp_path / "marker"
    source = f"open({str(marker)!r}, 'w').write('ran')\n"
    monkeypatch.setattr(nvlabs.Persistent, "module_src", source)
    reference = nvlabs.Generator(8, {4: 4, 8: 4}, 1)
    loaded = load_generator(nvlabs.network_pickle(tmp_path / "net.pkl", reference))
    assert loaded.size == 8
    assert not marker.exists()

    class Evil(nvlabs.Persistent):
        """A persistent class whose (never run) source writes the marker."""

    refused = nvlabs.network_pickle(tmp_path / "evil.pkl", Evil())
    assert "not a StyleGAN2 generator" in load_error(refused)
    assert not marker.exists()


@pytest.mark.parametrize("target", [os.system, builtins.exec, builtins.eval, pickle.loads])
def test_an_nvlabs_pickle_that_would_run_code_is_refused(tmp_path, target, load_error):
    marker = tmp_path / "marker"

    class Hostile:
        def __reduce__(self):
            if target is os.system:
                return target, (f"touch {marker}",)
            if target is pickle.loads:
                return target, (pickle.dumps(RunsCode(marker)),)
            return target, (f"open({str(marker)!r}, 'w').write('ran')",)

    path = nvlabs.dump({"G_ema": Hostile()}, tmp_path / "hostile.pkl")
    message = load_error(path)
    assert f"{target.__module__}.{target.__name__}" in message
    assert "refused the pickle without running it" in message
    assert not marker.exists()


def test_hand_written_hostile_pickles_are_refused(tmp_path, load_error):
    from acgmake.models import community

    marker = tmp_path / "marker"
    system = tmp_path / "system.pkl"  # protocol 2, then GLOBAL os.system, REDUCE
    system.write_bytes(
        b"\x80\x02cos\nsystem\nX"
        + len(f"touch {marker}").to_bytes(4, "little")
        + f"touch {marker}".encode()
        + b"\x85R."
    )
    assert "refers to os.system" in load_error(system)
    # BUILD on an allowlisted function would set its attributes for every later load.
    build = tmp_path / "build.pkl"
    build.write_bytes(
        b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nN}X\x0c\x00\x00\x00__defaults__K\x01\x85s\x86b."
    )
    assert "truncated or damaged" in load_error(build)
    assert community._tensor.__defaults__ is None
    tensorflow = tmp_path / "karras2019stylegan-ffhq-1024x1024.pkl"
    tensorflow.write_bytes(b"\x80\x02cdnnlib.tflib.network\nNetwork\n)\x81.")
    assert "TensorFlow StyleGAN pickle" in load_error(tensorflow)
    assert not marker.exists()


def test_community_files_have_no_metadata(tmp_path):
    from acgmake.models.checkpoint import read_metadata

    path = tmp_path / "g.pt"
    torch.save({"g_ema": g_ema_state(source_generator())}, path)
    assert read_metadata(path) == {}


def test_unsupported_nvlabs_networks_are_refused_clearly(tmp_path, load_error):
    resnet = nvlabs.Generator(8, {4: 4, 8: 4}, 1, architecture="resnet")
    message = load_error(nvlabs.network_pickle(tmp_path / "resnet.pkl", resnet))
    assert "'resnet'" in message and "'skip'" in message

    stylegan3 = nvlabs.Generator(8, {4: 4, 8: 4}, 1)
    stylegan3.synthesis.input = nvlabs.ToRGBLayer(4, 3, 8)  # has input.affine.weight
    assert "StyleGAN3" in load_error(nvlabs.network_pickle(tmp_path / "sg3.pkl", stylegan3))

    no_g_ema = nvlabs.dump({"D": None}, tmp_path / "d-only.pkl")
    assert "no G_ema" in load_error(no_g_ema)

    narrow_z = nvlabs.Generator(8, {4: 4, 8: 4}, 2)
    narrow_z.mapping.fc0.weight = torch.nn.Parameter(torch.randn(8, 6))
    message = load_error(nvlabs.network_pickle(tmp_path / "narrow-z.pkl", narrow_z))
    assert "fc0 maps 6 to 8 numbers" in message


def test_broken_nvlabs_pickles_are_user_errors(tmp_path, load_error):
    torch.manual_seed(0)
    reference = nvlabs.Generator(16, CHANNELS, 3)
    good = nvlabs.network_pickle(tmp_path / "good.pkl", reference)
    data = good.read_bytes()

    truncated = tmp_path / "truncated.pkl"
    truncated.write_bytes(data[: len(data) // 2])
    assert "truncated or damaged" in load_error(truncated)
    for offset in (len(data) // 3, len(data) // 2, 2 * len(data) // 3):
        flipped = bytearray(data)
        flipped[offset : offset + 4] = b"\xff\xfe\x00\x13"
        corrupt = tmp_path / f"corrupt{offset}.pkl"
        corrupt.write_bytes(bytes(flipped))
        try:
            load_generator(corrupt)  # a flip inside tensor bytes goes unnoticed: no checksums
        except UserError as error:
            assert "\n" not in error.message and str(corrupt) in error.message

    del reference.synthesis.b16.conv0.affine._parameters["weight"]
    missing = nvlabs.network_pickle(tmp_path / "missing.pkl", reference)
    assert "synthesis.b16.conv0.affine.weight" in load_error(missing)
    reference.synthesis.b16.conv0.affine.weight = torch.nn.Parameter(torch.zeros(3, 16))
    wrong = nvlabs.network_pickle(tmp_path / "wrong.pkl", reference)
    assert "wrong shape: convs.2.conv.modulation.weight" in load_error(wrong)


# ---------------------------------------------------------------------------------------------
# safetensors without acgmake metadata


def test_safetensors_in_rosinality_layout_load(tmp_path, load_error):
    from safetensors.torch import save_file

    g_ema = source_generator(6)
    path = tmp_path / "g_ema.safetensors"
    save_file({**g_ema_state(g_ema), "latent_avg": g_ema.w_avg.clone()}, str(path))
    loaded = load_generator(path)
    assert same_images(loaded, g_ema, psi=0.6) == 0

    state = g_ema_state(g_ema)
    del state["noises.noise_2"]
    broken = tmp_path / "broken.safetensors"
    save_file(state, str(broken))
    assert "missing: noises.noise_2" in load_error(broken)


# ---------------------------------------------------------------------------------------------
# Through the character stage


@pytest.mark.parametrize("kind", ["pt", "pkl"])
def test_the_character_stage_draws_with_a_community_checkpoint(tmp_path, kind):
    from PIL import Image

    from acgmake.pipeline import run
    from acgmake.plugins import Plugins

    if kind == "pt":
        path = tmp_path / "g.pt"
        torch.save({"g_ema": g_ema_state(source_generator()), "latent_avg": torch.zeros(16)}, path)
    else:
        torch.manual_seed(0)
        path = nvlabs.network_pickle(tmp_path / "g.pkl", nvlabs.Generator(16, CHANNELS, 3))
    plugins = Plugins()
    plugins.load(builtins=("acgmake.stages.character",), entry_points=False)
    result = run(
        plugins.registry,
        tmp_path / "run",
        ["character", "face"],
        seed=1,
        params={"character": {"ckpt": str(path)}},
    )
    with Image.open(result.files["character"]) as image:
        assert image.size == (32, 32) and image.mode == "RGB"
        drawn = np.asarray(image)
    # The picture is what the converted network draws for the seed, not merely 32 px of it.
    from acgmake.models.character import generate_character

    expected = generate_character(load_generator(path), 1)
    assert np.abs(drawn.astype(int) - expected.astype(int)).max() <= 1
