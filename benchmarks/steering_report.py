"""Steering and quality of the shipped character model, measured by the attribute classifier.

    python benchmarks/steering_report.py [--seeds 50] [--holdout DATA/holdout]
        [--figure docs/expressions.png] [--edits-only]

Edits: for seeds S..S+N-1 (default 100..149: the fit's settings were chosen on seeds 0-19) at
truncation 0.7, the expressions (rest, a, i, u, e, o, blink) are drawn from each character's
latent with the learned directions, then fitted to the character (acgmake.models.expressions.
fit_expressions; --no-fit: the directions alone). Two attribute classifiers read
every raw edited picture and every frame of the strip: the "guide" (attributes64, which with
attributes64-b guided the directions, so it can be fooled by them) and the "judge"
(attributes64-judge: another seed and width, trained the same way, never used for learning
directions). Reported: P(eyes open), and how often the
mouth class is the intended one (closed for rest and blink, the vowel for a..o).

Identity: mean absolute RGB difference (0..255) outside the mouth/eye edit mask between each
raw edited picture and the character itself, and the change of the classifiers' hair colour
estimates (0..255). The strip composites each edit onto character.png inside the mask, so
its frames are identical outside it by construction; the raw figure says how much the edit
alone moves the rest of the picture.

--edit: for the same seeds, each of EDIT_CASES drawn two ways: "latent" (the styles moved by
the edit, the whole picture drawn from them: what `acgmake character --edit` drew up to the
character stage's version 2) and "pasted" (acgmake.models.expressions.draw_edited, the
picture since: each edit drawn on its own and pasted into the unedited character inside the
soft mask of its face part). Reported: the mean absolute RGB change (0..255) against the
unedited character outside the mouth and eye masks, outside the edited part's own mask, and
inside it (where the mask is 1: how much the part changes); and what both classifiers read
(the intended mouth, P(eyes open), the share read as closed eyes, mouth openness), with the
unedited characters' readings beside them.

Quality: KID (x 1000, polynomial kernel, unbiased, mean of 50 subsets of 250) between drawn64
samples and the 500 held-out drawn pictures, in the 128-d penultimate features of each
attribute classifier (the judge's count more: the guide also served the trainer's coverage
loss) (no Inception network is available offline; these features know the drawn set's
attributes, not general image statistics), each standardised by the held-out set's mean and
spread. Reference: KID between the held-out pictures and 1,000 pictures drawn with another
seed of the same drawer, which should be about 0. Coverage: the share of closed eyes and of
each mouth class among the samples at truncation 1, against the held-out set's labels.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from acgmake.image.face import EXPRESSIONS, Face
from acgmake.models.attributes import (
    MOUTHS,
    load_classifier,
    load_labelled,
    read_attributes,
    shipped_classifier,
)
from acgmake.models.character import (
    character_latent,
    draw_latent,
    face_info,
    layout_from_metadata,
    shipped_checkpoint,
)
from acgmake.models.checkpoint import load_generator, read_metadata
from acgmake.models.directions import (
    apply_edits,
    edits_by_part,
    guide_classifiers,
    load_directions,
    parse_edit,
)
from acgmake.models.expressions import (
    FIT_STEPS,
    draw_edited,
    draw_expressions,
    edit_mask,
    face_part_mask,
    outside_difference,
    strip_from_pictures,
)
from acgmake.models.train import kid

#: The --edit cases measured: each vowel and ``mouth`` at 1 (``a`` is the ``mouth`` vector),
#: the eyes toward closed, and the README's combined example.
EDIT_CASES = ("mouth=1", "i=1", "u=1", "e=1", "o=1", "eyes=-1", "eyes=-1.5", "o=0.8,eyes=-0.5")


def steering(
    generator,
    directions,
    classifiers: dict,
    layout,
    seeds: range,
    guides: list | None,
) -> tuple[dict, list]:
    raw_all, strips, characters = [], [], []
    started = time.perf_counter()
    for seed in seeds:
        styles = character_latent(generator, seed, truncation_psi=0.7)
        character = draw_latent(generator, styles[None])[0]
        face = Face.from_dict(face_info(character, layout))
        raw = draw_expressions(generator, directions, styles, face, guides)
        raw_all.append(raw)
        strips.append(strip_from_pictures(raw, character, face))
        characters.append(character)
    seconds = (time.perf_counter() - started) / len(seeds)
    face = Face.from_dict(face_info(characters[0], layout))
    raw = np.stack(raw_all)  # seeds x 7 x H x W x 3
    n, k = raw.shape[:2]
    report: dict = {
        "seeds": f"{seeds.start}..{seeds.stop - 1}",
        "seconds_per_strip": round(seconds, 3),
    }
    for j, name in enumerate(EXPRESSIONS):
        report[name] = {
            "outside_l1_vs_character": round(
                float(
                    np.mean([outside_difference(raw[i, j], characters[i], face) for i in range(n)])
                ),
                2,
            )
        }
    frames = {
        "raw": raw,
        "strip": np.stack([np.stack(np.split(strip, k, axis=1)) for strip in strips]),
    }
    for who, classifier in classifiers.items():
        base = read_attributes(classifier, np.stack(characters))
        report[f"character ({who})"] = {
            "mouth": {m: float(np.mean(np.array(base.mouth) == m)) for m in MOUTHS},
            "p_eyes_open": round(float(base.eyes_open.mean()), 3),
        }
        for source, pictures in frames.items():
            got = read_attributes(classifier, pictures.reshape(n * k, *pictures.shape[2:]))
            mouth = np.array(got.mouth).reshape(n, k)
            eyes = got.eyes_open.reshape(n, k)
            hair = got.hair_rgb.reshape(n, k, 3)
            for j, name in enumerate(EXPRESSIONS):
                intended = name if name in MOUTHS else "closed"
                report[name] |= {
                    f"mouth_is_intended ({who}, {source})": float(np.mean(mouth[:, j] == intended)),
                    f"p_eyes_open ({who}, {source})": round(float(eyes[:, j].mean()), 3),
                    f"eyes_closed ({who}, {source})": float(np.mean(eyes[:, j] < 0.5)),
                    f"hair_rgb_change ({who}, {source})": round(
                        float(np.abs(hair[:, j] - base.hair_rgb).mean()), 2
                    ),
                }
    return report, strips


def _mean_change(pictures: np.ndarray, characters: np.ndarray, where: np.ndarray) -> float:
    """Mean absolute RGB difference (0..255) of ``pictures`` from ``characters`` (both
    N x H x W x 3) over the pixels ``where`` (H x W, bool)."""
    diff = np.abs(pictures.astype(np.float32) - characters.astype(np.float32)).mean(-1)
    return round(float(diff[:, where].mean()), 2)


def _readings(classifier, pictures: np.ndarray, mouth: str | None) -> dict:
    got = read_attributes(classifier, pictures)
    read = {
        "p_eyes_open": round(float(got.eyes_open.mean()), 3),
        "eyes_closed": round(float(np.mean(got.eyes_open < 0.5)), 3),
        "mouth_open": round(float(got.mouth_open.mean()), 3),
    }
    if mouth:
        read[f"mouth_is_{mouth}"] = round(float(np.mean(np.array(got.mouth) == mouth)), 3)
    return read


def edits(generator, directions, classifiers: dict, layout, seeds: range) -> dict:
    """``--edit`` drawn as the latent alone and pasted onto its part, for every case of
    EDIT_CASES on ``seeds`` (see the module's docstring)."""
    styles = [character_latent(generator, seed, truncation_psi=0.7) for seed in seeds]
    characters = np.stack([draw_latent(generator, s[None])[0] for s in styles])
    face = Face.from_dict(face_info(characters[0], layout))
    size = characters.shape[1]
    outside_face_parts = edit_mask(face, size, size) < 0.01  # as outside_difference
    report: dict = {"seeds": f"{seeds.start}..{seeds.stop - 1}"}
    for who, classifier in classifiers.items():
        report[f"character ({who})"] = _readings(classifier, characters, "closed")
    for case in EDIT_CASES:
        amounts = parse_edit(case)
        masks = [face_part_mask(face, part, size, size) for part in edits_by_part(amounts)]
        region = np.max(masks, axis=0)
        vowels = [name for name in amounts if name != "eyes"]
        mouth = ("a" if vowels[0] == "mouth" else vowels[0]) if vowels else None
        latent = [
            draw_latent(generator, apply_edits(directions, s[None], amounts))[0] for s in styles
        ]
        started = time.perf_counter()
        pasted = [draw_edited(generator, directions, s, amounts, face) for s in styles]
        seconds = (time.perf_counter() - started) / len(styles)
        drawn = {"latent": np.stack(latent), "pasted": np.stack(pasted)}
        report[case] = {"seconds_per_pasted_character": round(seconds, 3)}
        for way, pictures in drawn.items():
            report[case][way] = {
                "outside_mouth_and_eyes_l1": _mean_change(pictures, characters, outside_face_parts),
                "outside_edited_part_l1": _mean_change(pictures, characters, region < 0.01),
                "inside_edited_part_l1": _mean_change(pictures, characters, region > 0.99),
                **{
                    who: _readings(classifier, pictures, mouth)
                    for who, classifier in classifiers.items()
                },
            }
    return report


def quality(generator, classifiers: dict, holdout: Path, count: int = 1000) -> dict:
    from acgmake.models.drawn import draw_character
    from acgmake.models.stylegan2 import generate

    held, labels = load_labelled(holdout)
    reference = np.stack(
        [np.asarray(draw_character(1, i).image.convert("RGB")) for i in range(count)]
    )
    pictures = {"heldout": held, "drawn_seed1": reference}
    for psi in (1.0, 0.7):
        seeds = list(range(100_000, 100_000 + count))
        pictures[f"drawn64_psi{psi}"] = generate(generator, seeds, truncation_psi=psi)
    result: dict = {}
    for who, classifier in classifiers.items():
        reads = {name: read_attributes(classifier, p) for name, p in pictures.items()}
        # Standardise every feature by the held-out set's mean and spread, so that the cubic
        # kernel sees numbers of the size Inception features have (these are unbounded).
        mean = reads["heldout"].features.mean(0)
        spread = reads["heldout"].features.std(0) + 1e-6
        feats = {name: (r.features - mean) / spread for name, r in reads.items()}
        for name in ("drawn_seed1", "drawn64_psi1.0", "drawn64_psi0.7"):
            kid_mean, kid_std = kid(feats[name], feats["heldout"])
            result[f"kid_x1000_{name}_vs_heldout ({who})"] = [
                round(kid_mean * 1000, 2),
                round(kid_std * 1000, 2),
            ]
        # Coverage: how often the samples at psi 1 blink or show each mouth, against the
        # held-out set's own labels (mode dropping shows here first).
        read = reads["drawn64_psi1.0"]
        result[f"samples_psi1.0 ({who})"] = {
            "eyes_closed": round(float(np.mean(read.eyes_open < 0.5)), 3),
            **{m: round(float(np.mean(np.array(read.mouth) == m)), 3) for m in MOUTHS},
        }
    result["heldout (labels)"] = {
        "eyes_closed": round(float(np.mean(labels["eyes_open"] < 0.5)), 3),
        **{m: round(float(np.mean(labels["mouth"] == i)), 3) for i, m in enumerate(MOUTHS)},
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument(
        "--first-seed",
        type=int,
        default=100,
        help="first seed (the fit's settings were chosen on seeds 0-19)",
    )
    parser.add_argument("--ckpt", type=Path, default=None, help="generator (default: drawn64)")
    parser.add_argument(
        "--holdout",
        type=Path,
        default=None,
        help="the drawn set's held-out folder (python -m acgmake.models.reproduce draws it "
        "into DATA/holdout): KID and attribute coverage are measured against it",
    )
    parser.add_argument("--figure", type=Path, default=None, help="write strips of 6 seeds here")
    parser.add_argument(
        "--no-fit", action="store_true", help="the directions alone, no per-character fit"
    )
    parser.add_argument(
        "--edits-only", action="store_true", help="only the --edit figures (no strips, 30 s)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    path = args.ckpt or shipped_checkpoint()
    generator = load_generator(path)
    directions = load_directions(path)
    classifier = load_classifier()
    judge = load_classifier(shipped_classifier().with_name("attributes64-judge.safetensors"))
    classifiers = {"guide": classifier, "judge": judge}
    layout = layout_from_metadata(read_metadata(path))
    guides = None if args.no_fit else guide_classifiers()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    edit_report = edits(generator, directions, classifiers, layout, seeds)
    if args.edits_only:
        print(json.dumps({"edit": edit_report}, indent=2))
        return
    report, strips = steering(generator, directions, classifiers, layout, seeds, guides)
    report["fit_steps"] = 0 if args.no_fit else FIT_STEPS
    report["edit"] = edit_report
    if args.holdout:
        report["quality"] = quality(generator, classifiers, args.holdout)
    print(json.dumps(report, indent=2))
    if args.figure:
        from PIL import Image

        grid = np.vstack(strips[:6])
        height, width = grid.shape[:2]
        Image.fromarray(grid).resize((width * 2, height * 2), Image.NEAREST).save(args.figure)


if __name__ == "__main__":
    main()
