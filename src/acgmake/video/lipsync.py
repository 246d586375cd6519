"""Lip sync: which mouth shape each frame shows, from the sung phonemes.

Every phoneme has a target *mouth*: a mix of the six mouth shapes of
:data:`MOUTH_SHAPES` (rest = closed, and one per vowel). A vowel is its own shape (a devoiced,
whispered vowel half of it); silence and the lip-closing consonants ``m``, ``b``, ``p`` are
closed; the moraic ``N`` is nearly closed; any other consonant is the coming vowel's shape
barely opened (the lips already shape the vowel, the teeth are nearly together). Between two
phonemes the mouth eases (smoothstep) from one target to the next over a short ramp *centred
on the boundary*, so it moves just before the sound changes, as a real mouth does, and never
lags it. Openness (0 closed .. 1 wide) is the mix's weighted :data:`SHAPE_OPENNESS`.

A frame is drawn as the mouth is at the *middle* of the time it is on screen, which keeps every
mouth opening within half a frame of its vowel (:func:`lipsync_offsets` measures it). The clip
shows one drawing at a time (:func:`drawn_mouths`): each phoneme's main shape, changing at the
phoneme's start, as limited animation draws lip flaps; the eased mix is the mouth's motion,
for measures and for callers that draw in-betweens.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from acgmake.voice.labels import SILENCES, VOWELS, Phoneme

#: The mouth shapes, in the order of ``expressions.png`` (without the blink).
MOUTH_SHAPES = ("rest", "a", "i", "u", "e", "o")
#: How far each shape opens the mouth (1 = fully open).
SHAPE_OPENNESS = np.array([0.0, 1.0, 0.4, 0.45, 0.65, 0.8], np.float32)
#: How far each vowel opens the mouth (1 = fully open); N is the moraic nasal.
VOWEL_OPENNESS = {"a": 1.0, "o": 0.8, "e": 0.65, "u": 0.45, "i": 0.4, "N": 0.15}
#: Consonants sung with closed lips.
LIP_CLOSERS = frozenset({"m", "b", "p", "my", "by", "py"})
#: Openness during any other consonant (teeth nearly together).
CONSONANT_OPENNESS = 0.15
#: Longest time the mouth takes to go from one shape to the next, in seconds.
RAMP_S = 0.08


def _shape(name: str, amount: float = 1.0) -> np.ndarray:
    """Weights of the six shapes for ``name``'s shape opened ``amount`` of the way."""
    weights = np.zeros(len(MOUTH_SHAPES), np.float32)
    index = MOUTH_SHAPES.index(name)
    weights[index] += amount
    weights[0] += 1.0 - amount
    return weights


def phoneme_mouth(name: str, next_vowel: str = "") -> np.ndarray:
    """The mix of mouth shapes (six weights summing to 1) that phoneme ``name`` aims for.

    ``next_vowel`` is the vowel that follows a consonant (its shape is anticipated).
    """
    if name in SILENCES or name in LIP_CLOSERS:
        return _shape("rest")
    if name == "N":
        return _shape("u", VOWEL_OPENNESS["N"] / VOWEL_OPENNESS["u"])
    if name.lower() in VOWELS:
        # Devoiced vowels (capital A, I, U, ...) are whispered: half as open.
        return _shape(name.lower(), 1.0 if name.islower() else 0.5)
    coming = next_vowel.lower() if next_vowel.lower() in VOWELS else "i"
    return _shape(coming, CONSONANT_OPENNESS / VOWEL_OPENNESS[coming])


def phoneme_openness(name: str) -> float:
    """The openness a phoneme aims for: 0 (closed) to 1 (wide open)."""
    return float(phoneme_mouth(name) @ SHAPE_OPENNESS)


def mouth_at(
    phonemes: Sequence[Phoneme], times_s: np.ndarray, *, ramp_s: float = RAMP_S
) -> np.ndarray:
    """The mouth at each of ``times_s`` (seconds, vocals time): float32 (len, 6) weights of
    :data:`MOUTH_SHAPES`, each row summing to 1.

    Closed before the first and after the last phoneme. Each change of target is a smoothstep
    over ``ramp_s`` (shortened so that neighbouring ramps never overlap) centred on the
    phoneme boundary.
    """
    times_s = np.asarray(times_s, dtype=np.float64)
    closed = _shape("rest").astype(np.float64)
    mouth = np.tile(closed, (times_s.size, 1))
    if not phonemes:
        return mouth.astype(np.float32)
    starts = np.array([p.start_s for p in phonemes])
    ends = np.array([p.end_s for p in phonemes])
    targets = np.array(
        [phoneme_mouth(p.name, _next_vowel(phonemes, i)) for i, p in enumerate(phonemes)],
        np.float64,
    )
    # Boundaries: before each phoneme (from the previous target, or closed) and after the last.
    boundary_s = np.append(starts, ends[-1])
    before = np.vstack([closed, targets])
    after = np.vstack([targets, closed])
    durations = np.maximum(ends - starts, 0.0)
    # A ramp may use at most half of each phoneme it touches, so ramps never overlap.
    left = np.concatenate([[np.inf], durations])
    right = np.append(durations, np.inf)
    ramps = np.minimum(ramp_s, np.minimum(left, right))

    # The target in effect at each time, then each boundary's ramp overwrites its window.
    # held[k] is the target after the k-th boundary; held[0] is closed, before any phoneme.
    held = np.vstack([closed, after])
    mouth[:] = held[np.searchsorted(boundary_s, times_s, side="right")]
    for boundary, ramp, start_value, end_value in zip(
        boundary_s, ramps, before, after, strict=True
    ):
        if ramp <= 0 or np.array_equal(start_value, end_value):
            continue
        lo, hi = np.searchsorted(times_s, [boundary - ramp / 2, boundary + ramp / 2])
        if lo == hi:
            continue
        progress = (times_s[lo:hi] - (boundary - ramp / 2)) / ramp
        eased = (progress * progress * (3.0 - 2.0 * progress))[:, None]
        mouth[lo:hi] = start_value + (end_value - start_value) * eased
    return mouth.astype(np.float32)


def _next_vowel(phonemes: Sequence[Phoneme], index: int) -> str:
    """The vowel right after the consonants from ``index`` on (``""`` if a pause comes first)."""
    for phoneme in phonemes[index + 1 : index + 4]:
        if phoneme.name in SILENCES:
            return ""
        if phoneme.name.lower() in VOWELS:
            return phoneme.name
    return ""


def openness_at(
    phonemes: Sequence[Phoneme], times_s: np.ndarray, *, ramp_s: float = RAMP_S
) -> np.ndarray:
    """Mouth openness (float32, 0..1) at each of ``times_s`` (seconds, vocals time)."""
    return mouth_at(phonemes, times_s, ramp_s=ramp_s) @ SHAPE_OPENNESS


def frame_times(fps: float, frame_count: int) -> np.ndarray:
    """The moment each frame shows: the middle of its time on screen, in seconds."""
    return (np.arange(frame_count) + 0.5) / fps


def mouth_shapes(
    phonemes: Sequence[Phoneme], fps: float, frame_count: int, *, ramp_s: float = RAMP_S
) -> np.ndarray:
    """The mouth of each of ``frame_count`` frames at ``fps``: float32 (frames, 6) weights of
    :data:`MOUTH_SHAPES` (see :func:`mouth_at`)."""
    return mouth_at(phonemes, frame_times(fps, frame_count), ramp_s=ramp_s)


def drawn_shape(weights: np.ndarray) -> np.ndarray:
    """The one drawing a frame shows for a mix of the six mouth shapes, as one-hot weights:
    the shape with the most weight, a tie going to the more open one (a whispered vowel, half
    open, shows its vowel). Limited animation draws lip flaps so; two drawings mixed show both
    mouths, one through the other (a consonant's hint of the coming vowel over the closed
    mouth, a held ん's third of "u")."""
    weights = np.asarray(weights, np.float32)
    shown = np.zeros(len(MOUTH_SHAPES), np.float32)
    shown[int(np.argmax(np.round(weights, 3) + 1e-4 * SHAPE_OPENNESS))] = 1.0
    return shown


def drawn_mouths(phonemes: Sequence[Phoneme], fps: float, frame_count: int) -> np.ndarray:
    """The mouth drawing each of ``frame_count`` frames at ``fps`` shows: float32 (frames, 6)
    one-hot rows of :data:`MOUTH_SHAPES`, each phoneme's :func:`drawn_shape` from the frame
    whose middle is past its start (so each change shows within half a frame of the sound's)."""
    held = mouth_at(phonemes, frame_times(fps, frame_count), ramp_s=0.0)
    return np.array([drawn_shape(weights) for weights in held], np.float32).reshape(-1, 6)


def mouth_openness(
    phonemes: Sequence[Phoneme], fps: float, frame_count: int, *, ramp_s: float = RAMP_S
) -> np.ndarray:
    """Mouth openness (float32, 0..1) for each of ``frame_count`` frames at ``fps``."""
    return mouth_shapes(phonemes, fps, frame_count, ramp_s=ramp_s) @ SHAPE_OPENNESS


def lipsync_offsets(
    phonemes: Sequence[Phoneme], openness: np.ndarray, fps: float, *, rise: float = 0.2
) -> np.ndarray:
    """Seconds from each sung vowel onset to the first frame that shows the mouth opening
    for it (negative: the mouth opens early).

    A vowel onset counts where the vowel opens the mouth at least ``rise`` wider than the
    phoneme before it (a pause, a consonant). The mouth shows open in the first frame whose
    openness is past halfway from the one to the other, and is seen from that frame's start
    (``index / fps``). A vowel too short for any frame to show it is left out.
    """
    openness = np.asarray(openness, np.float64)
    offsets = []
    for index in range(1, len(phonemes)):
        previous, vowel = phonemes[index - 1], phonemes[index]
        if vowel.name.lower() not in VOWELS:
            continue
        low, high = phoneme_openness(previous.name), phoneme_openness(vowel.name)
        if high - low < rise:
            continue
        halfway = (low + high) / 2
        # Frames shown from the previous phoneme's start to the vowel's end.
        first = max(int(np.ceil(previous.start_s * fps - 0.5)), 1)
        last = min(int(np.ceil(vowel.end_s * fps - 0.5)), len(openness))
        frames = np.arange(first, last)
        rising = frames[(openness[frames] >= halfway) & (openness[frames - 1] < halfway)]
        if rising.size:
            offsets.append(rising[0] / fps - vowel.start_s)
    return np.array(offsets)
