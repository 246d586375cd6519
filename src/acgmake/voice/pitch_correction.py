"""Note-by-note pitch correction of Sinsy's singing, with the WORLD vocoder.

The bundled voice's pitch model was trained on 70 songs and picks each note's F0 from a
decision tree over its context (the note, its neighbours, the key): held notes come out up to
two semitones off the score (measured: a C-major scale sung from C4 to D5 lands between -200
and +108 cents), and the same note is sung differently in another key. pysinsy gives no hand on
the F0 Sinsy generates, so the singing is corrected afterwards, as a producer would with
Melodyne: each note's held pitch is moved, as a whole, onto the written note, keeping Sinsy's
vibrato, glides and timbre.

WORLD (pyworld) analyses the singing (F0 with DIO and StoneMask, the spectral envelope with
CheapTrick, the aperiodicity with D4C), the F0 of every note is shifted by the note's median
error over its held part (after the first 80 ms of glide), the shifts are smoothed over 40 ms
so notes still glide into each other, and WORLD synthesizes the result with the original
envelope and aperiodicity. Unvoiced sounds (consonants, breaths, silence) are left as they are,
as are notes written outside the F0 tracker's range (G1 to C#6), which no voice sings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from acgmake.voice.intonation import GLIDE_S, is_tracked, search_band, track_f0
from acgmake.voice.labels import Timing

_FRAME_S = 0.005
#: The shifts change over this long between notes (so a glide stays a glide).
_SMOOTHING_S = 0.04
#: D4C runs at this rate (its bands above 12 kHz are all noise in a singing voice anyway).
_APERIODICITY_RATE = 24000


@dataclass(frozen=True)
class Correction:
    """The corrected singing and the shift each note got."""

    samples: np.ndarray  # float32 mono, the input's rate and length
    shifts_cents: list[float]  # one per mora of the timing, in order


def correct_pitch(
    samples: np.ndarray, sample_rate: int, timing: Timing, *, strength: float = 1.0
) -> Correction:
    """``samples`` (mono) with each mora's held pitch moved ``strength`` (0..1) of the way
    onto its written note (``timing``'s morae: times in the audio, MIDI notes as sung)."""
    import pyworld

    signal = np.ascontiguousarray(np.asarray(samples, dtype=np.float64))
    morae = [mora for line in timing.lines for mora in line.morae]
    if not morae or strength <= 0 or not np.any(signal):
        return Correction(np.asarray(samples, dtype=np.float32), [0.0] * len(morae))
    low_hz, high_hz = search_band([m.midi for m in morae])
    times, f0 = track_f0(signal, sample_rate, low_hz=low_hz, high_hz=high_hz)

    shift = np.zeros_like(f0)
    shifts = []
    for mora in morae:
        held = (times >= mora.start_s + GLIDE_S) & (times < mora.end_s) & (f0 > 0)
        if held.sum() < 3 or not is_tracked(mora.midi):  # a note no voice sings: left as sung
            shifts.append(0.0)
            continue
        written = 440.0 * 2 ** ((mora.midi - 69) / 12)
        error = float(np.median(1200 * np.log2(f0[held] / written)))
        cents = -strength * error
        shifts.append(round(cents, 1))
        shift[(times >= mora.start_s) & (times < mora.end_s)] = cents
    if not any(shifts):
        return Correction(np.asarray(samples, dtype=np.float32), shifts)
    from scipy.ndimage import uniform_filter1d

    shift = uniform_filter1d(shift, size=max(1, int(_SMOOTHING_S / _FRAME_S)))
    envelope = pyworld.cheaptrick(signal, f0, times, sample_rate)
    aperiodicity = _aperiodicity(signal, sample_rate, f0, times, envelope.shape[1])
    corrected_f0 = np.where(f0 > 0, f0 * 2 ** (shift / 1200), 0.0)
    sung = pyworld.synthesize(
        corrected_f0, envelope, aperiodicity, sample_rate, frame_period=_FRAME_S * 1000
    )
    sung = np.pad(sung, (0, max(0, len(signal) - len(sung))))[: len(signal)]
    return Correction(np.clip(sung, -1.0, 1.0).astype(np.float32), shifts)


def _aperiodicity(
    signal: np.ndarray, sample_rate: int, f0: np.ndarray, times: np.ndarray, bins: int
) -> np.ndarray:
    """D4C's aperiodicity at ``_APERIODICITY_RATE`` (three times faster than at 48 kHz) on the
    bins of ``sample_rate``'s spectrum; above half that rate it stays at its top value."""
    import pyworld

    from acgmake.audio.resample import resample

    if sample_rate <= _APERIODICITY_RATE:
        return pyworld.d4c(signal, f0, times, sample_rate)
    low = resample(signal, sample_rate, _APERIODICITY_RATE)
    measured = pyworld.d4c(np.ascontiguousarray(low), f0, times, _APERIODICITY_RATE)
    frequencies = np.linspace(0, sample_rate / 2, bins)
    measured_at = np.linspace(0, _APERIODICITY_RATE / 2, measured.shape[1])
    return np.ascontiguousarray(
        np.stack([np.interp(frequencies, measured_at, frame) for frame in measured])
    )
