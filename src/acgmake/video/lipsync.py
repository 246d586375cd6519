"""Lip sync: how far the mouth is open in each frame, from the sung phonemes.

Every phoneme has a target openness: vowels by how wide they are sung (``a`` widest, ``i``
and ``u`` narrow, the moraic ``N`` nearly closed), silence and the lip-closing consonants
``m``, ``b``, ``p`` shut, other consonants a little open. Between two phonemes the mouth
eases (smoothstep) from one target to the next over a short ramp *centred on the boundary*,
so it starts to move just before the sound changes, as a real mouth does, and never lags it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from acgmake.voice.labels import SILENCES, Phoneme

#: How far each vowel opens the mouth (1 = fully open).
VOWEL_OPENNESS = {"a": 1.0, "o": 0.8, "e": 0.65, "u": 0.45, "i": 0.4, "N": 0.15}
#: Consonants sung with closed lips.
LIP_CLOSERS = frozenset({"m", "b", "p", "my", "by", "py"})
#: Openness during any other consonant (teeth nearly together).
CONSONANT_OPENNESS = 0.15
#: Longest time the mouth takes to go from one shape to the next, in seconds.
RAMP_S = 0.08


def phoneme_openness(name: str) -> float:
    """The openness a phoneme aims for: 0 (closed) to 1 (wide open)."""
    if name in SILENCES or name in LIP_CLOSERS:
        return 0.0
    if name == "N":
        return VOWEL_OPENNESS["N"]
    if name.lower() in VOWEL_OPENNESS:
        # Devoiced vowels (capital A, I, U, ...) are whispered: half as open.
        amount = VOWEL_OPENNESS[name.lower()]
        return amount if name.islower() else amount * 0.5
    return CONSONANT_OPENNESS


def openness_at(
    phonemes: Sequence[Phoneme], times_s: np.ndarray, *, ramp_s: float = RAMP_S
) -> np.ndarray:
    """Mouth openness (float32, 0..1) at each of ``times_s`` (seconds, vocals time).

    Closed before the first and after the last phoneme. Each change of target is a smoothstep
    over ``ramp_s`` (shortened so that neighbouring ramps never overlap) centred on the
    phoneme boundary.
    """
    times_s = np.asarray(times_s, dtype=np.float64)
    openness = np.zeros(times_s.shape, np.float64)
    if not phonemes:
        return openness.astype(np.float32)
    starts = np.array([p.start_s for p in phonemes])
    ends = np.array([p.end_s for p in phonemes])
    targets = np.array([phoneme_openness(p.name) for p in phonemes])
    # Boundaries: before each phoneme (from the previous target, or closed) and after the last.
    boundary_s = np.append(starts, ends[-1])
    before = np.concatenate([[0.0], targets])
    after = np.append(targets, 0.0)
    durations = np.maximum(ends - starts, 0.0)
    # A ramp may use at most half of each phoneme it touches, so ramps never overlap.
    left = np.concatenate([[np.inf], durations])
    right = np.append(durations, np.inf)
    ramps = np.minimum(ramp_s, np.minimum(left, right))

    # The target in effect at each time, then each boundary's ramp overwrites its window.
    # held[k] is the target after the k-th boundary; held[0] is closed, before any phoneme.
    held = np.concatenate([[0.0], after])
    openness[:] = held[np.searchsorted(boundary_s, times_s, side="right")]
    changes = zip(boundary_s, ramps, before, after, strict=True)
    for boundary, ramp, start_value, end_value in changes:
        if ramp <= 0 or start_value == end_value:
            continue
        lo, hi = np.searchsorted(times_s, [boundary - ramp / 2, boundary + ramp / 2])
        if lo == hi:
            continue
        progress = (times_s[lo:hi] - (boundary - ramp / 2)) / ramp
        eased = progress * progress * (3.0 - 2.0 * progress)
        openness[lo:hi] = start_value + (end_value - start_value) * eased
    return openness.astype(np.float32)


def mouth_openness(
    phonemes: Sequence[Phoneme], fps: float, frame_count: int, *, ramp_s: float = RAMP_S
) -> np.ndarray:
    """Mouth openness (float32, 0..1) for each of ``frame_count`` frames at ``fps``.

    Frame ``i`` is shown from ``i / fps`` and is drawn as the mouth is at that moment.
    """
    return openness_at(phonemes, np.arange(frame_count) / fps, ramp_s=ramp_s)
