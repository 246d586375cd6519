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

WORLD works phrase by phrase (:func:`_spans`): each stretch of singing between pauses is
analysed and resynthesized on its own, so memory follows the longest phrase, not the song, and
the pauses keep Sinsy's own samples. It works on the band below 12 kHz (at 24 kHz); the band
above, where this voice has no harmonics worth moving (it lies 50 dB under the voice), is kept
as sung through a complementary split. Measured on examples/kaeru.txt against resynthesizing
the whole song at 48 kHz: 40% less time, a fifth of the memory, the same intonation (in tune
0.837 against 0.838 of voiced frames; held 0.909 against 0.910).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from acgmake.threads import in_order
from acgmake.voice.expression import Expression, expression_cents
from acgmake.voice.intonation import GLIDE_S, is_tracked, search_band, track_f0
from acgmake.voice.labels import Timing

_FRAME_S = 0.005
#: The shifts change over this long between notes (so a glide stays a glide).
_SMOOTHING_S = 0.04
#: Singing resynthesized in spans: a gap this long between voiced frames is a pause, kept as
#: sung; each span takes this much unvoiced sound on either side, and fades over _FADE_S.
_PAUSE_S = 0.2
_PAD_S = 0.05
_FADE_S = 0.01
#: A span longer than this is cut (memory for WORLD's arrays grows with the span, ~10 MB/s).
_MAX_SPAN_S = 12.0
#: WORLD analyses and resynthesizes at this rate (the band above is kept as sung).
_WORLD_RATE = 24000
#: Vibrato (:func:`vibrato_cents`), as singers and singing editors (OpenUtau, VOCALOID) set
#: it: on notes at least _VIBRATO_MIN_S long, from _VIBRATO_DELAY_S after the note starts,
#: the depth growing over _VIBRATO_RAMP_S and gone by the note's end, at 5.2-6.2 Hz.
_VIBRATO_MIN_S = 0.45
_VIBRATO_DELAY_S = 0.2
_VIBRATO_RAMP_S = 0.3
_VIBRATO_RATE_HZ = (5.2, 6.2)


@dataclass(frozen=True)
class Correction:
    """The corrected singing and the shift each note got."""

    samples: np.ndarray  # float32 mono, the input's rate and length
    shifts_cents: list[float]  # one per mora of the timing, in order


def correct_pitch(
    samples: np.ndarray,
    sample_rate: int,
    timing: Timing,
    *,
    strength: float = 1.0,
    vibrato: float = 0.0,
    expression: Expression | None = None,
    seed: int = 0,
    workers: Callable[[], int] = lambda: 1,
    progress: Callable[[float], None] | None = None,
) -> Correction:
    """``samples`` (mono) with each mora's held pitch moved ``strength`` (0..1) of the way
    onto its written note (``timing``'s morae: times in the audio, MIDI notes as sung).

    ``vibrato`` (cents, 0 for none) adds a vibrato of that depth either side of the note to
    each long note (:func:`vibrato_cents`; ``seed`` varies each note's rate and depth a
    little), on top of the corrected pitch: the note's median pitch stays on it.
    ``expression`` adds its portamento, overshoot, preparation and phrase-end falls, and sets
    the vibrato's rate (:mod:`acgmake.voice.expression`).

    The pieces of the song are analysed and resynthesized ``workers()`` at a time (the same
    result for any number); ``progress(share)`` hears how much is done (0..1)."""
    import pyworld

    # float32 throughout: each span is made float64 for WORLD on its own.
    signal = np.asarray(samples, dtype=np.float32)
    morae = [mora for line in timing.lines for mora in line.morae]
    drawn = expression is not None and (
        expression.portamento_ms > 0 or expression.overshoot_cents > 0 or expression.fall_cents > 0
    )
    if not morae or (strength <= 0 and vibrato <= 0 and not drawn) or not np.any(signal):
        return Correction(np.array(signal), [0.0] * len(morae))
    low_hz, high_hz = search_band([m.midi for m in morae])
    times, f0 = _track_f0_in_pieces(
        signal, sample_rate, low_hz=low_hz, high_hz=high_hz, workers=workers
    )
    if progress is not None:
        progress(0.3)

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
    if not any(shifts) and vibrato <= 0 and not drawn:
        return Correction(np.array(signal), shifts)
    from scipy.ndimage import uniform_filter1d

    from acgmake.audio.resample import resample

    shift = uniform_filter1d(shift, size=max(1, int(_SMOOTHING_S / _FRAME_S)))
    if drawn:
        with np.errstate(divide="ignore"):
            sung_cents = np.where(f0 > 0, 1200 * np.log2(np.maximum(f0, 1e-9) / 440.0), np.nan)
        shift += expression_cents(times, sung_cents, shift, morae, expression)
    if vibrato > 0:
        rate = expression.vibrato_hz if expression is not None else _VIBRATO_RATE_HZ
        shift += vibrato_cents(times, morae, vibrato, seed, rate_hz=rate)
    corrected_f0 = np.where(f0 > 0, f0 * 2 ** (shift / 1200), 0.0)
    sung = np.array(signal)  # pauses keep the samples Sinsy sang
    hop = sample_rate * _FRAME_S
    rate = min(sample_rate, _WORLD_RATE)

    def resynthesize(first: int, last: int) -> tuple[int, np.ndarray]:
        start, end = round(first * hop), min(len(signal), round((last - 1) * hop) + 1)
        part = np.asarray(signal[start:end], dtype=np.float64)
        frames = slice(first, last)
        local_times = times[frames] - times[first]
        # WORLD works on the band below 12 kHz; the band above (breath and sibilance, no
        # harmonic of note) is kept as sung: a complementary split, exact where nothing moves.
        low = np.ascontiguousarray(resample(part, sample_rate, rate))
        envelope = pyworld.cheaptrick(low, f0[frames], local_times, rate)
        aperiodicity = pyworld.d4c(low, f0[frames], local_times, rate)
        made = pyworld.synthesize(
            corrected_f0[frames], envelope, aperiodicity, rate, frame_period=_FRAME_S * 1000
        )
        if rate != sample_rate:
            above = part - _fit(resample(low, rate, sample_rate), len(part))
            made = _fit(resample(made, rate, sample_rate), len(part)) + above
        return start, _fit(made, len(part))

    spans = _spans(f0 > 0)
    tasks = [lambda span=span: resynthesize(*span) for span in spans]

    def step(done: int) -> None:
        if progress is not None:
            progress(0.3 + 0.7 * done / len(spans))

    # Made side by side, blended in order (neighbours cross-fade where they overlap).
    for start, made in in_order(tasks, workers, step):
        _blend(sung, start, made, round(_FADE_S * sample_rate))
    return Correction(np.clip(sung, -1.0, 1.0, out=sung), shifts)


def vibrato_cents(
    times: np.ndarray,
    morae: list,
    depth: float,
    seed: int = 0,
    *,
    rate_hz: tuple[float, float] = _VIBRATO_RATE_HZ,
) -> np.ndarray:
    """Cents to add at ``times`` (seconds): on each mora at least ``_VIBRATO_MIN_S`` long, a
    sine of about ``depth`` cents either side of the note, from ``_VIBRATO_DELAY_S`` after it
    starts, growing over ``_VIBRATO_RAMP_S`` and fading out over its last 80 ms. Each note's
    rate (within ``rate_hz``, 5.2-6.2 Hz by default) and depth (±15 %) vary a little, from
    ``seed``; a whole number of periods, so that the note's median pitch stays where it was."""
    rng = np.random.default_rng(seed)
    out = np.zeros_like(times)
    for mora in morae:
        rate = rng.uniform(*rate_hz)
        amount = depth * rng.uniform(0.85, 1.15)
        start, end = mora.start_s + _VIBRATO_DELAY_S, mora.end_s - 0.02
        if mora.end_s - mora.start_s < _VIBRATO_MIN_S or not is_tracked(mora.midi):
            continue
        periods = math.floor((end - start) * rate)
        if periods < 1:
            continue
        end = start + periods / rate
        inside = (times >= start) & (times < end)
        t = times[inside] - start
        envelope = np.minimum(1.0, t / _VIBRATO_RAMP_S) * np.minimum(1.0, (end - start - t) / 0.08)
        out[inside] = amount * envelope * np.sin(2 * np.pi * rate * t)
    return out


#: A song longer than this is tracked piece by piece: DIO's memory grows with what it is
#: given (about 1 MB a second of song), so a five-minute song whole would take 300 MB.
_PIECE_S = 30.0
#: Each piece is cut in the quietest stretch (0.2 s) within this far of where it would end,
#: and takes this much of its neighbours either side, so that the F0 it finds equals what
#: tracking the whole song finds.
_CUT_SEARCH_S = 5.0
_CUT_QUIET_S = 0.2
_PIECE_MARGIN_S = 1.0


def _track_f0_in_pieces(
    samples: np.ndarray,
    sample_rate: int,
    *,
    low_hz: float,
    high_hz: float,
    workers: Callable[[], int] = lambda: 1,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`acgmake.voice.intonation.track_f0` of ``samples`` (mono), a piece at a time.

    The pieces are cut in pauses (the quietest stretch near every ``_PIECE_S``), each
    analysed with ``_PIECE_MARGIN_S`` of context either side, and only its own frames kept:
    the F0 is what tracking the whole song gives (DIO and StoneMask look a few periods of the
    lowest note either way), in a tenth of the memory.
    """
    from acgmake.audio.resample import resample
    from acgmake.voice.intonation import _ANALYSIS_RATE

    rate = _ANALYSIS_RATE
    signal = np.ascontiguousarray(resample(samples, sample_rate, rate, dtype=np.float64))
    hop = round(rate * _FRAME_S)  # samples a frame (80 at 16 kHz)
    frames = int(1000.0 * len(signal) / rate / (_FRAME_S * 1000)) + 1  # as DIO counts them
    piece = round(_PIECE_S / _FRAME_S)
    if frames <= 2 * piece:
        return track_f0(signal, rate, low_hz=low_hz, high_hz=high_hz)
    usable = len(signal) // hop
    energy = np.square(signal[: usable * hop].reshape(usable, hop)).sum(axis=1)
    quiet = np.convolve(energy, np.ones(round(_CUT_QUIET_S / _FRAME_S)), mode="same")
    search, margin = round(_CUT_SEARCH_S / _FRAME_S), round(_PIECE_MARGIN_S / _FRAME_S)
    cuts = [0]
    while frames - cuts[-1] > 2 * piece:
        target = cuts[-1] + piece
        low, high = target - search, min(usable, target + search)
        cuts.append(low + int(np.argmin(quiet[low:high])))
    cuts.append(frames)
    f0 = np.zeros(frames)

    def track(first: int, last: int) -> np.ndarray:
        begin = max(0, first - margin)
        end = len(signal) if last == frames else min(len(signal), (last + margin) * hop)
        _, part = track_f0(signal[begin * hop : end], rate, low_hz=low_hz, high_hz=high_hz)
        return part[first - begin : last - begin]

    pieces = list(zip(cuts, cuts[1:], strict=False))
    tracked = in_order([lambda p=p: track(*p) for p in pieces], workers)
    for (first, last), part in zip(pieces, tracked, strict=True):
        f0[first:last] = part
    return np.arange(frames) * (_FRAME_S * 1000) / 1000.0, f0


def _spans(voiced: np.ndarray) -> list[tuple[int, int]]:
    """Frame ranges [first, last) that WORLD resynthesizes one at a time: the voiced frames,
    joined across gaps shorter than a pause, padded with the unvoiced frames around them, and
    cut into pieces no longer than ``_MAX_SPAN_S`` (at unvoiced frames where there are). Memory and
    time then follow the longest phrase, not the song, and a pause keeps Sinsy's samples."""
    count = len(voiced)
    pause, pad = round(_PAUSE_S / _FRAME_S), round(_PAD_S / _FRAME_S)
    longest = round(_MAX_SPAN_S / _FRAME_S)
    spans: list[list[int]] = []
    for index in np.flatnonzero(voiced):
        if spans and index - spans[-1][1] < pause:
            spans[-1][1] = index + 1
        else:
            spans.append([int(index), int(index) + 1])
    cut: list[tuple[int, int]] = []
    reach = longest // 10  # how far a cut may move to land on an unvoiced frame
    for first, last in spans:
        first, last = max(0, first - pad), min(count, last + pad)
        pieces = math.ceil((last - first) / (0.75 * longest))
        bounds = [first]
        for k in range(1, pieces):
            at = first + round(k * (last - first) / pieces)
            quiet = np.flatnonzero(~voiced[at - reach : at + reach])
            if quiet.size:
                at += int(quiet[np.argmin(np.abs(quiet - reach))]) - reach
            bounds.append(at)
        bounds.append(last)
        for start, end in zip(bounds, bounds[1:], strict=False):
            # Neighbouring pieces overlap by the padding, where they cross-fade.
            cut.append((max(first, start - pad), min(last, end + pad)))
    return cut


def _fit(samples: np.ndarray, length: int) -> np.ndarray:
    """``samples`` cut or padded with silence to ``length``."""
    return np.pad(samples, (0, max(0, length - len(samples))))[:length]


def _blend(out: np.ndarray, start: int, made: np.ndarray, fade: int) -> None:
    """Put ``made`` into ``out`` at ``start``, cross-fading over ``fade`` samples at both ends
    (which lie in unvoiced padding) from and back to what ``out`` holds there."""
    fade = min(fade, len(made) // 2)
    weight = np.ones(len(made), np.float32)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade + 2, dtype=np.float32)[1:-1]
        weight[:fade], weight[len(made) - fade :] = ramp, ramp[::-1]
    region = out[start : start + len(made)]
    region += weight * (made.astype(np.float32) - region)
