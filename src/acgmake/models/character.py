"""A character from a generator and a seed, and where its face parts are (``face.json``).

Array in, array out: :func:`generate_character` gives a uint8 RGB image, :func:`face_info`
the normalised layout plus the colours found at the hint points. The stage in
``acgmake.stages.character`` only reads and writes the files.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from acgmake.errors import UserError
from acgmake.models.drawn import canonical_layout

SHIPPED_NAME = "drawn64.safetensors"


def shipped_checkpoint() -> Path:
    """The generator file that comes with acgmake (trained on the drawn set)."""
    return Path(__file__).with_name("weights") / SHIPPED_NAME


def generate_character(generator: Any, seed: int, *, truncation_psi: float = 0.7) -> np.ndarray:
    """The character for ``seed``: uint8 RGB, H x W x 3 at the generator's resolution.

    The latent comes from torch's CPU generator seeded with ``seed`` and the noise inputs are
    the generator's stored constants, so one seed always gives the same picture. It runs on
    one thread: CPU kernels split work differently with more threads, which changes the
    last bits of the result (and so, now and then, a pixel), and one small image gains
    little from more.
    """
    from acgmake.models.stylegan2 import generate

    with one_thread():
        return generate(generator, [seed], truncation_psi=truncation_psi, noise_mode="const")[0]


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread in this block, so that its results do not depend on how many
    cores it has (with more threads CPU kernels split sums differently, which changes the last
    bits; a gradient-fitted latent drifts further). ``acgmake song -j`` gives a stage fewer
    threads while another runs; a stage must make the same picture either way."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def character_latent(
    generator: Any,
    seed: int,
    *,
    truncation_psi: float = 0.7,
    mix_seed: int | None = None,
    mix_layer: int | None = None,
) -> Any:
    """The styles (n_latent x style_dim tensor) that :func:`generate_character` draws for
    ``seed``; with ``mix_seed``, the layers from ``mix_layer`` on come from that seed (style
    mixing: low layers give the pose and shape, high layers the colours and fine detail)."""
    import torch

    from acgmake.models.stylegan2 import latents_for_seeds

    seeds = [seed] if mix_seed is None else [seed, mix_seed]
    with one_thread(), torch.no_grad():
        w = generator.truncate(
            generator.mapping(latents_for_seeds(seeds, generator.style_dim)), truncation_psi
        )
    styles = w[0][None].expand(generator.n_latent, -1).clone()
    if mix_seed is not None:
        if not 1 <= (mix_layer or 0) < generator.n_latent:
            raise UserError(
                f"--mix-layer must be 1 to {generator.n_latent - 1} for this model "
                f"(it has {generator.n_latent} style layers); got {mix_layer}"
            )
        styles[mix_layer:] = w[1]
    return styles


def draw_latent(generator: Any, styles: Any) -> np.ndarray:
    """The uint8 RGB pictures (N x H x W x 3) for styles N x n_latent x style_dim, drawn on
    one thread with the stored noise, like :func:`generate_character`."""
    import torch

    from acgmake.models.stylegan2 import images_to_uint8

    with one_thread(), torch.no_grad():
        return images_to_uint8(generator.synthesis(styles, noise_mode="const"))


def latent_record(
    styles: Any,
    generator_sha256: str,
    generator_file: str,
    edits: dict[str, float] | None = None,
) -> dict:
    """The ``latent`` entry of face.json: the styles (float32, base64) and their generator.

    With ``edits`` (``--edit``), ``styles`` are the character's before the edits and the
    record keeps the edits too: the picture is the unedited character with each edit pasted
    onto its face part (:func:`acgmake.models.expressions.draw_edited`), which no single
    latent draws. The expressions strip is drawn from the unedited styles, so that it is
    character.png outside the mouth and eyes.
    """
    data = styles.detach().float().contiguous().numpy().astype("<f4")
    record = {
        "shape": list(data.shape),
        "float32_base64": base64.b64encode(data.tobytes()).decode("ascii"),
        "generator": generator_file,
        "generator_sha256": generator_sha256,
    }
    if edits:
        record["edits"] = dict(edits)
    return record


def latent_from_record(record: dict) -> Any:
    """The styles tensor stored by :func:`latent_record`."""
    import torch

    data = np.frombuffer(base64.b64decode(record["float32_base64"]), dtype="<f4")
    return torch.from_numpy(data.reshape(record["shape"]).copy())


def edits_from_record(record: dict) -> dict[str, float]:
    """The ``--edit`` amounts kept by :func:`latent_record` ({} when none); UserError when
    they are not edits acgmake knows."""
    from acgmake.models.directions import EDIT_NAMES, MAX_EDIT

    edits = record.get("edits") or {}
    if not isinstance(edits, dict) or not all(
        name in EDIT_NAMES
        and isinstance(amount, (int, float))
        and not isinstance(amount, bool)
        and -MAX_EDIT <= amount <= MAX_EDIT
        for name, amount in edits.items()
    ):
        raise UserError(
            f"face.json: latent.edits must map edit names ({', '.join(EDIT_NAMES)}) to "
            f"amounts from {-MAX_EDIT:g} to {MAX_EDIT:g}; make it again with `acgmake character`"
        )
    return {name: float(amount) for name, amount in edits.items()}


def character_grid(pictures: np.ndarray, columns: int | None = None) -> np.ndarray:
    """Pictures N x H x W x 3 laid out row by row (``columns`` default: about square),
    empty cells white."""
    count, height, width = pictures.shape[:3]
    columns = columns or int(np.ceil(np.sqrt(count)))
    rows = -(-count // columns)
    grid = np.full((rows * height, columns * width, 3), 255, np.uint8)
    for i, picture in enumerate(pictures):
        r, c = divmod(i, columns)
        grid[r * height : (r + 1) * height, c * width : (c + 1) * width] = picture
    return grid


def latent_walk(styles: Any, steps: int) -> Any:
    """Styles along a walk through ``styles`` (K x n_latent x D), ``steps`` per leg, each leg
    eased in and out so the walk pauses at every character: ((K-1) * steps + 1) x ... ."""
    import torch

    t = torch.linspace(0, 1, steps + 1)[:-1]
    eased = (1 - torch.cos(torch.pi * t)) / 2
    legs = [
        torch.lerp(a[None], b[None], eased[:, None, None])
        for a, b in zip(styles[:-1], styles[1:], strict=True)
    ]
    return torch.cat([*legs, styles[-1:]])


def _hex(rgb: np.ndarray) -> str:
    return "#" + "".join(f"{int(v):02x}" for v in rgb)


def color_at(image: np.ndarray, point: list[float], radius: float = 0.02) -> str:
    """The median colour of ``image`` in a small square around the normalised ``point``."""
    height, width = image.shape[:2]
    x, y = point[0] * width, point[1] * height
    r = max(1, int(round(radius * max(width, height))))
    x0, x1 = max(0, int(x) - r), min(width, int(x) + r + 1)
    y0, y1 = max(0, int(y) - r), min(height, int(y) + r + 1)
    patch = image[y0:y1, x0:x1].reshape(-1, 3)
    return _hex(np.median(patch, axis=0).round())


def face_info(image: np.ndarray, layout: dict | None = None) -> dict:
    """``face.json`` for ``image``: boxes and hint points (normalised) plus sampled colours.

    ``layout`` defaults to the drawn set's canonical layout, which the shipped generator
    follows. ``colors`` mirrors ``points``: one ``#rrggbb`` per point (two for the eyes).
    """
    info = json.loads(json.dumps(layout or canonical_layout()))
    points = info["points"]
    info["colors"] = {
        name: [color_at(image, p) for p in point]
        if isinstance(point[0], list)
        else color_at(image, point)
        for name, point in points.items()
    }
    return info


def layout_from_metadata(metadata: dict[str, str]) -> dict | None:
    """The layout a generator file declares (metadata ``layout``), if it declares one."""
    text = metadata.get("layout")
    if not text:
        return None
    from acgmake.image.face import Face

    try:
        layout = json.loads(text) if len(text) <= MAX_LAYOUT_CHARACTERS else None
    except (ValueError, RecursionError):
        return None
    if not isinstance(layout, dict) or not all(
        key in layout for key in ("face", "mouth", "eyes", "points")
    ):
        return None
    Face.from_dict(layout, source="the generator's layout")  # one clear line if malformed
    return layout


#: A generator's layout metadata is a few hundred characters.
MAX_LAYOUT_CHARACTERS = 100_000
