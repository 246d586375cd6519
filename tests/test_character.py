"""The character part: StyleGAN2, its checkpoints, the trainer, the drawn set, the stage."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from acgmake.errors import UserError
from acgmake.models.checkpoint import load_generator, read_metadata, save_generator
from acgmake.models.drawn import (
    HAIR_STYLES,
    MOUTH_SHAPES,
    canonical_layout,
    draw_character,
    measure_layout,
    write_set,
)
from acgmake.models.stylegan2 import (
    Discriminator,
    Generator,
    ModulatedConv2d,
    generate,
    upfirdn2d,
)
from acgmake.models.train import (
    TrainConfig,
    Trainer,
    attribute_shares,
    augment,
    coverage_loss,
    load_images,
)

TINY = {4: 16, 8: 16, 16: 8}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_generator(seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    generator = Generator(16, style_dim=16, n_mlp=2, channels=TINY)
    # Untrained noise strengths are zero; make them matter so noise tests can fail.
    with torch.no_grad():
        for module in generator.modules():
            if type(module).__name__ == "NoiseInjection":
                module.weight.fill_(0.5)
        generator.compute_w_avg(256)
    return generator.eval()


# ---------------------------------------------------------------------------------------------
# The network


def test_generator_and_discriminator_shapes():
    generator = tiny_generator()
    z = torch.randn(3, 16)
    images = generator(z)
    assert images.shape == (3, 3, 16, 16)
    assert generator.n_latent == 6 and generator.num_layers == 5
    images, w = generator(z, return_latents=True)
    assert w.shape == (3, 16)
    assert generator.synthesis(w[:, None].expand(-1, 6, -1)).shape == (3, 3, 16, 16)
    discriminator = Discriminator(16, channels=TINY)
    assert discriminator(images).shape == (3, 1)
    assert discriminator(torch.randn(8, 3, 16, 16)).shape == (8, 1)


def test_state_dict_names_follow_rosinality():
    keys = set(Generator(32, style_dim=16, n_mlp=3, channels={**TINY, 32: 8}).state_dict())
    for name in (
        "style.1.weight",
        "style.3.bias",
        "input.input",
        "conv1.conv.weight",
        "conv1.conv.modulation.weight",
        "conv1.conv.modulation.bias",
        "conv1.noise.weight",
        "conv1.activate.bias",
        "to_rgb1.conv.weight",
        "to_rgb1.bias",
        "convs.0.conv.blur.kernel",
        "convs.3.conv.weight",
        "to_rgbs.1.upsample.kernel",
        "to_rgbs.1.conv.modulation.weight",
        "noises.noise_0",
        "noises.noise_6",
    ):
        assert name in keys, name
    assert "noises.noise_7" not in keys
    d_keys = set(Discriminator(16, channels=TINY).state_dict())
    assert {"convs.0.0.weight", "convs.1.conv2.0.kernel", "final_linear.1.weight"} <= d_keys


def test_modulated_conv_matches_per_sample_weights():
    # The reference builds one modulated, demodulated weight per sample (grouped conv).
    torch.manual_seed(1)
    for upsample in (False, True):
        layer = ModulatedConv2d(6, 5, 3, 8, upsample=upsample)
        x, style = torch.randn(2, 6, 8, 8), torch.randn(2, 8)
        s = layer.modulation(style).view(2, 1, 6, 1, 1)
        weight = layer.scale * layer.weight * s
        weight = weight * torch.rsqrt(weight.square().sum((2, 3, 4)) + 1e-8).view(2, 5, 1, 1, 1)
        if upsample:
            grouped = weight.transpose(1, 2).reshape(12, 5, 3, 3)
            expected = F.conv_transpose2d(x.view(1, 12, 8, 8), grouped, stride=2, groups=2)
            expected = layer.blur(expected.view(2, 5, 17, 17))
        else:
            expected = F.conv2d(x.view(1, 12, 8, 8), weight.view(10, 6, 3, 3), padding=1, groups=2)
            expected = expected.view(2, 5, 8, 8)
        assert torch.allclose(layer(x, style), expected, atol=1e-5)


def test_upfirdn_keeps_a_flat_image_flat():
    kernel = torch.tensor([[1.0, 3, 3, 1]]).t() @ torch.tensor([[1.0, 3, 3, 1]]) / 64 * 4
    out = upfirdn2d(torch.ones(1, 2, 8, 8), kernel, up=2, pad=(2, 1))
    assert out.shape == (1, 2, 16, 16)
    assert torch.allclose(out[..., 2:-2, 2:-2], torch.ones(1, 2, 12, 12))


def test_truncation_zero_gives_the_average_latent_image():
    generator = tiny_generator()
    first = generator(torch.randn(1, 16), truncation_psi=0.0)
    second = generator(torch.randn(1, 16) * 3, truncation_psi=0.0)
    average = generator.synthesis(generator.w_avg[None])
    assert torch.allclose(first, average, atol=1e-6)
    assert torch.allclose(second, average, atol=1e-6)
    assert not torch.allclose(generator(torch.randn(1, 16), truncation_psi=1.0), average)


def test_constant_noise_is_deterministic_and_random_noise_is_not():
    generator = tiny_generator()
    z = torch.randn(2, 16)
    assert torch.equal(generator(z, noise_mode="const"), generator(z, noise_mode="const"))
    assert not torch.equal(generator(z, noise_mode="random"), generator(z, noise_mode="random"))
    assert np.array_equal(generate(generator, [5, 6]), generate(generator, [5, 6]))
    assert not np.array_equal(generate(generator, [5]), generate(generator, [6]))


def test_style_mixing_takes_coarse_layers_from_one_latent_and_fine_from_the_other():
    generator = tiny_generator()
    z_a, z_b = torch.randn(1, 16), torch.randn(1, 16)
    w_a, w_b = generator.mapping(z_a), generator.mapping(z_b)
    mixed = generator.mix_latents(w_a, w_b, index=3)
    assert torch.equal(mixed[0, :3], w_a.expand(3, -1))
    assert torch.equal(mixed[0, 3:], w_b.expand(3, -1))
    image_a, image_b = generator(z_a), generator(z_b)
    image_mix = generator(z_a, z_mix=z_b, mix_index=3)
    assert not torch.allclose(image_mix, image_a) and not torch.allclose(image_mix, image_b)
    assert torch.allclose(generator(z_a, z_mix=z_b, mix_index=generator.n_latent), image_a)


def test_a_rosinality_state_dict_loads():
    source = tiny_generator(seed=3)
    state = {k: v for k, v in source.state_dict().items() if k != "w_avg"}  # as in g_ema
    target = Generator(16, style_dim=16, n_mlp=2, channels=TINY)
    target.load_rosinality(state, latent_avg=source.w_avg[None])
    z = torch.randn(2, 16)
    assert torch.equal(target.eval()(z, truncation_psi=0.7), source(z, truncation_psi=0.7))


# ---------------------------------------------------------------------------------------------
# Checkpoints


def test_checkpoint_round_trip(tmp_path):
    generator = tiny_generator()
    path = save_generator(generator, tmp_path / "g.safetensors", metadata={"license": "MIT"})
    loaded = load_generator(path)
    z = torch.randn(2, 16)
    assert torch.equal(loaded(z, truncation_psi=0.5), generator(z, truncation_psi=0.5))
    metadata = read_metadata(path)
    assert metadata["license"] == "MIT"
    assert json.loads(metadata["config"])["channels"] == {"16": 8, "4": 16, "8": 16}


def test_bad_checkpoints_are_user_errors(tmp_path, load_error):
    from safetensors.torch import save_file

    good = save_generator(tiny_generator(), tmp_path / "good.safetensors")
    data = good.read_bytes()

    assert "does not exist" in load_error(tmp_path / "missing.safetensors")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    assert "truncated" in load_error(truncated)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a model at all" * 10)
    assert "truncated or not a safetensors file" in load_error(garbage)
    flipped = bytearray(data)
    flipped[-100] ^= 0xFF
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(bytes(flipped))
    assert "damaged" in load_error(corrupt)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(2)}, str(foreign))
    assert "not an acgmake StyleGAN2 generator" in load_error(foreign)
    # A file whose tensors do not fit the architecture it declares.
    other = tmp_path / "other.safetensors"
    big = Generator(16, style_dim=16, n_mlp=2, channels={4: 16, 8: 16, 16: 16})
    save_generator(big, other, config=tiny_generator().config)
    assert "does not match the architecture" in load_error(other)


def test_models_package_does_not_import_torch():
    code = "import sys, acgmake.models, acgmake.stages.character; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


# ---------------------------------------------------------------------------------------------
# The trainer


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("drawn")
    write_set(folder, 12, size=16, seed=3)
    return folder


def tiny_config(**changes) -> TrainConfig:
    settings = dict(
        size=16,
        style_dim=16,
        n_mlp=2,
        channels=TINY,
        batch=4,
        iters=4,
        r1_every=2,
        augment="color,translation,cutout",
        seed=7,
    )
    settings.update(changes)
    return TrainConfig(**settings)


def test_augment_keeps_shape_and_passes_gradients():
    torch.manual_seed(0)
    images = torch.rand(4, 3, 16, 16, requires_grad=True)
    out = augment(images, "color,translation,cutout")
    assert out.shape == images.shape
    out.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    # Translation moves content and fills with zeros (black is -1 only after color).
    shifted = augment(torch.ones(64, 1, 16, 16), "translation")
    assert (shifted == 0).any() and (shifted == 1).any()
    assert torch.equal(augment(images, ""), images)


def test_trainer_steps_and_resumes_exactly(tiny_set, tmp_path):
    images = load_images(tiny_set, 16)
    assert images.shape == (12, 3, 16, 16) and images.dtype == torch.uint8

    trainer = Trainer(tiny_config(), images)
    ema_before = [p.clone() for p in trainer.ema.parameters()]
    for _ in range(2):
        stats = trainer.step()
        assert all(math.isfinite(v) for v in stats.values())
    assert "r1" in stats or trainer.iteration == 2
    moved = any(
        not torch.equal(a, b) for a, b in zip(ema_before, trainer.ema.parameters(), strict=True)
    )
    assert moved, "the EMA generator did not follow the generator"
    trainer.save(tmp_path / "checkpoint.pt")
    trainer.step()
    trainer.step()

    resumed = Trainer(tiny_config(), images)
    resumed.load(tmp_path / "checkpoint.pt")
    assert resumed.iteration == 2
    resumed.step()
    resumed.step()
    for a, b in zip(
        trainer.ema.state_dict().values(), resumed.ema.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    with pytest.raises(SystemExit):
        Trainer(tiny_config(lr=0.01), images).load(tmp_path / "checkpoint.pt")


def _read(mouth: list[int], closed: list[bool], sure: float = 12.0) -> dict[str, torch.Tensor]:
    """What a classifier would say of pictures with these mouth classes and eye states."""
    logits = torch.full((len(mouth), 6), -sure / 2)
    logits[torch.arange(len(mouth)), torch.tensor(mouth)] = sure / 2
    eyes = torch.tensor([-sure if c else sure for c in closed])
    return {"mouth": logits, "eyes_open": eyes}


def test_coverage_loss_is_low_at_the_shares_and_pulls_toward_a_dropped_class():
    shares = torch.tensor([0.5, 0.0, 0.0, 0.0, 0.5, 0.0])
    matched = _read([0, 0, 4, 4], [True, False, False, False])
    dropped = _read([4, 4, 4, 4], [False] * 4)
    blurred = _read([0, 4, 0, 4], [False] * 4, sure=0.5)
    at_shares = coverage_loss([matched], shares, 0.25).item()
    assert at_shares < 0.01
    assert coverage_loss([dropped], shares, 0.25).item() > 1.0
    # Meeting the shares by making every picture a little of each class costs too.
    assert coverage_loss([blurred], shares, 0.25).item() > 0.5

    # Its gradient raises the dropped classes: closed mouth and closed eyes.
    logits = dropped["mouth"].clone().requires_grad_(True)
    eyes = dropped["eyes_open"].clone().requires_grad_(True)
    coverage_loss([{"mouth": logits, "eyes_open": eyes}], shares, 0.25).backward()
    assert (logits.grad[:, 0] < 0).all() and (eyes.grad > 0).all()


def test_attribute_shares_come_from_the_drawn_set(tiny_set, tmp_path):
    rows = [json.loads(line) for line in (tiny_set / "attributes.jsonl").open()]
    mouth, closed = attribute_shares(tiny_set)
    assert mouth.sum().item() == pytest.approx(1.0)
    assert mouth[MOUTH_SHAPES.index(rows[0]["mouth"])] > 0
    assert closed == sum(not r["eyes_open"] for r in rows) / len(rows)
    with pytest.raises(SystemExit, match="attributes"):
        attribute_shares(tmp_path)


def test_fine_tuning_with_coverage_starts_from_another_run(tiny_set, tmp_path):
    images = load_images(tiny_set, 16)
    plain = Trainer(tiny_config(), images)
    plain.step()
    plain.save(tmp_path / "checkpoint.pt")

    config = tiny_config(cover=1.0, guides=("attributes64.safetensors",), iters=3)
    tuned = Trainer(config, images, shares=attribute_shares(tiny_set))
    tuned.start_from(tmp_path / "checkpoint.pt")
    assert tuned.iteration == 1
    for a, b in zip(plain.ema.parameters(), tuned.ema.parameters(), strict=True):
        assert torch.equal(a, b)
    stats = tuned.step()
    assert math.isfinite(stats["cover"]) and stats["cover"] > 0
    # Its settings differ, so it cannot resume the run; other sizes cannot start from it.
    with pytest.raises(SystemExit, match="other settings"):
        Trainer(config, images, shares=attribute_shares(tiny_set)).load(tmp_path / "checkpoint.pt")
    with pytest.raises(SystemExit, match="network sizes"):
        Trainer(tiny_config(style_dim=8), images).start_from(tmp_path / "checkpoint.pt")
    with pytest.raises(SystemExit, match="no checkpoint at"):
        Trainer(tiny_config(), images).start_from(tmp_path / "missing.pt")


def test_train_command_writes_samples_and_a_loadable_export(tiny_set, tmp_path):
    from acgmake.models.train import main

    export = tmp_path / "tiny.safetensors"
    main(
        [
            *("--data", str(tiny_set), "--out", str(tmp_path / "run"), "--size", "16"),
            *("--style-dim", "16", "--n-mlp", "2", "--channels", "4:16,8:16,16:8"),
            *("--batch", "4", "--iters", "2", "--sample-every", "2", "--threads", "1"),
            *("--device", "cpu", "--export", str(export)),
        ]
    )
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
    assert (tmp_path / "run" / "samples" / "000002.png").is_file()
    generator = load_generator(export)
    assert generator.size == 16 and json.loads(read_metadata(export)["iterations"]) == 2
    # Export recomputes the average latent of the EMA generator itself.
    assert torch.allclose(generator.w_avg, generator.mean_latent(10_000, seed=0)[0])


# ---------------------------------------------------------------------------------------------
# The drawn set


def test_drawn_set_is_deterministic_by_seed_and_records_attributes(tmp_path):
    first = write_set(tmp_path / "a", 6, size=32, seed=11, holdout=2)
    second = write_set(tmp_path / "b", 6, size=32, seed=11, holdout=2)
    other = write_set(tmp_path / "c", 4, size=32, seed=12)
    names = sorted(p.name for p in first.iterdir() if p.is_file())
    assert names == [f"{i:06d}.png" for i in range(4)] + ["attributes.jsonl"]
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes()
    assert (first / "000000.png").read_bytes() != (other / "000000.png").read_bytes()
    # Picture i does not depend on how many are drawn.
    assert (first / "000001.png").read_bytes() != b""
    assert draw_character(11, 1, 32).image.tobytes() == draw_character(11, 1, 32).image.tobytes()

    records = [json.loads(line) for line in (first / "attributes.jsonl").read_text().splitlines()]
    held = [
        json.loads(line)
        for line in (first / "holdout" / "attributes.jsonl").read_text().splitlines()
    ]
    assert [r["index"] for r in records] == [0, 1, 2, 3] and [r["index"] for r in held] == [4, 5]
    for record in records + held:
        assert record["hair_style"] in HAIR_STYLES and record["mouth"] in MOUTH_SHAPES
        assert record["hair_rgb"].startswith("#") and len(record["eye_rgb"]) == 7
        assert isinstance(record["eyes_open"], bool) and -1 <= record["turn"] <= 1
        assert (record["mouth"] == "closed") == (record["mouth_open"] == 0)
        for box in [record["face"], record["mouth_box"], *record["eyes"]]:
            assert 0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1
        left, right = record["eyes"]
        assert left[0] < right[0]


def test_canonical_layout_matches_the_drawings():
    layout = canonical_layout()
    measured = measure_layout(count=150, seed=5, size=64)
    assert np.allclose(measured["face"], layout["face"], atol=0.02)
    assert np.allclose(measured["eyes"], layout["eyes"], atol=0.02)
    mouth = layout["mouth"]
    assert mouth[0] < measured["mouth_center"][0] < mouth[2]
    assert mouth[1] < measured["mouth_center"][1] < mouth[3]
    for name, rate in measured["hit_rate"].items():
        assert rate >= (0.85 if name.startswith("eye") else 0.97), (name, rate)


# ---------------------------------------------------------------------------------------------
# The stage, with the shipped weights


def _run_character(folder: Path, seed: int, params: dict | None = None):
    from acgmake.pipeline import run
    from acgmake.plugins import Plugins

    plugins = Plugins()
    plugins.load(builtins=("acgmake.stages.character",), entry_points=False)
    return run(
        plugins.registry,
        folder,
        ["character", "face"],
        seed=seed,
        params={"character": params or {}},
    )


def test_character_stage_with_the_shipped_model(tmp_path):
    from acgmake.models.character import shipped_checkpoint

    if not shipped_checkpoint().is_file():
        pytest.skip(f"the shipped weights {shipped_checkpoint()} are not there yet")
    first = _run_character(tmp_path / "one", seed=1)
    again = _run_character(tmp_path / "two", seed=1)
    other = _run_character(tmp_path / "three", seed=2)
    png = first.files["character"]
    assert png.read_bytes() == again.files["character"].read_bytes()
    assert png.read_bytes() != other.files["character"].read_bytes()

    from PIL import Image

    with Image.open(png) as image:
        assert image.mode == "RGB" and image.size == (64, 64)
        pixels = np.asarray(image)
    assert pixels.std() > 20, "the character is a flat image"

    face = json.loads(first.files["face"].read_text("utf-8"))
    assert first.files["face"].read_bytes() == again.files["face"].read_bytes()
    for box in (face["face"], face["mouth"], *face["eyes"]):
        assert len(box) == 4 and 0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1
    points = face["points"]
    assert set(points) == {"hair", "skin", "eyes", "clothes", "background"}
    assert len(points["eyes"]) == 2
    assert all(c.startswith("#") and len(c) == 7 for c in face["colors"]["eyes"])
    # The background of a drawn-set character is light.
    background = face["colors"]["background"]
    assert sum(int(background[i : i + 2], 16) for i in (1, 3, 5)) > 3 * 170

    # The picture does not depend on how many threads torch uses.
    from acgmake.models.character import generate_character

    generator = load_generator(shipped_checkpoint())
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert np.array_equal(generate_character(generator, 1), pixels)
    finally:
        torch.set_num_threads(threads)

    manifest = json.loads((tmp_path / "one" / "manifest.json").read_text("utf-8"))
    assets = manifest["stages"]["character"]["assets"]
    assert assets and assets[0]["license"] and "drawn64" in assets[0]["path"]


def test_character_stage_reports_a_bad_checkpoint(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(UserError, match="bad.safetensors"):
        _run_character(tmp_path / "run", seed=1, params={"ckpt": str(bad)})
