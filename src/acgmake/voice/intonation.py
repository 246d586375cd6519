"""How well the singing follows the score: sung F0 against the written notes, and onsets.

The sung F0 is tracked with WORLD (pyworld: DIO, refined by StoneMask) every 5 ms on the
vocals resampled to 16 kHz, searching a fifth around the score's range so the tracker has no
octave to jump to. Each mora of ``timing.json`` is a written note with its time in the audio
(Sinsy sings notes at their score times). Per note:

- the share of its voiced frames within 50 cents of the written pitch (all frames, and the
  held part: after the first 80 ms, where the voice glides in from the note before);
- its onset offset: when the sung pitch first arrives within 50 cents of the written one,
  minus when the note is written to start (positive = late). Measured for notes whose pitch
  differs from the previous note's (on a repeated pitch the arrival is not an event).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from acgmake.voice.labels import Timing

#: Within this many cents a frame counts as in tune (a quarter tone).
IN_TUNE_CENTS = 50.0
#: The start of a note where Sinsy's voice glides from the note before.
GLIDE_S = 0.08
#: The F0 a singing voice can be tracked at (G1 to C#6); DIO wants its band inside this.
TRACKED_HZ = (50.0, 1100.0)
_FRAME_S = 0.005
_ANALYSIS_RATE = 16000
#: Notes at least this long are measured for vibrato.
LONG_NOTE_S = 0.45


@dataclass(frozen=True)
class NoteCheck:
    """One written note and how it was sung."""

    text: str
    start_s: float
    end_s: float
    midi: int
    voiced_frames: int
    in_tune_frames: int
    held_frames: int  # voiced frames after the glide
    held_in_tune_frames: int
    median_cents: float | None  # sung minus written, over the voiced frames
    onset_offset_s: float | None  # pitch arrival minus the written start (None: not measured)
    #: Sung minus written over the note's body (its glide left out): where the note sits,
    #: vibrato or not.
    held_median_cents: float | None = None
    #: On a note of at least LONG_NOTE_S: its vibrato's rate (Hz) and depth (cents either side
    #: of the note), from 0.2 s in to its last 50 ms; None where too little of it is voiced.
    vibrato_hz: float | None = None
    vibrato_cents: float | None = None


@dataclass
class Intonation:
    """The notes checked and what they add up to."""

    notes: list[NoteCheck] = field(default_factory=list)

    @property
    def in_tune_share(self) -> float:
        """Share of all voiced frames inside notes that are within 50 cents of the note."""
        voiced = sum(n.voiced_frames for n in self.notes)
        return sum(n.in_tune_frames for n in self.notes) / voiced if voiced else 0.0

    @property
    def held_in_tune_share(self) -> float:
        """The same share over the held part of each note (its first 80 ms left out)."""
        held = sum(n.held_frames for n in self.notes)
        return sum(n.held_in_tune_frames for n in self.notes) / held if held else 0.0

    @property
    def notes_on_pitch_share(self) -> float:
        """Share of the measured notes whose body's median pitch is within 50 cents of the
        written note: what expression (vibrato, glides) must not spoil."""
        held = [n.held_median_cents for n in self.notes if n.held_median_cents is not None]
        return float(np.mean(np.abs(held) <= IN_TUNE_CENTS)) if held else 0.0

    def vibrato(self) -> tuple[float, float, int]:
        """(median rate in Hz, median depth in cents, how many long notes measured)."""
        measured = [n for n in self.notes if n.vibrato_hz is not None]
        if not measured:
            return float("nan"), float("nan"), 0
        rate = float(np.median([n.vibrato_hz for n in measured]))
        return rate, float(np.median([n.vibrato_cents for n in measured])), len(measured)

    def onset_offsets_s(self) -> list[float]:
        return [n.onset_offset_s for n in self.notes if n.onset_offset_s is not None]

    def summary(self) -> dict[str, float | int]:
        """The figures to report, rounded: shares, cents and onset offsets in ms."""
        offsets = np.array(self.onset_offsets_s()) * 1000.0
        cents = np.array([n.median_cents for n in self.notes if n.median_cents is not None])
        changes = sum(
            1 for a, b in zip(self.notes, self.notes[1:], strict=False) if a.midi != b.midi
        ) + (1 if self.notes else 0)

        def stat(values: np.ndarray, function) -> float:
            return round(float(function(values)), 1) if len(values) else float("nan")

        rate, depth, long_notes = self.vibrato()
        return {
            "notes": len(self.notes),
            "notes_on_pitch_share": round(self.notes_on_pitch_share, 3),
            "vibrato_hz": round(rate, 2),
            "vibrato_cents": round(depth, 1),
            "long_notes": long_notes,
            "in_tune_share": round(self.in_tune_share, 3),
            "held_in_tune_share": round(self.held_in_tune_share, 3),
            "median_abs_cents": stat(np.abs(cents), np.median),
            "onsets_measured": len(offsets),
            "onsets_missed": changes - len(offsets),
            "onset_median_ms": stat(offsets, np.median),
            "onset_median_abs_ms": stat(np.abs(offsets), np.median),
            "onset_p90_abs_ms": stat(np.abs(offsets), lambda v: np.percentile(v, 90)),
        }


def track_f0(
    samples: np.ndarray, sample_rate: int, *, low_hz: float = 70.0, high_hz: float = 1000.0
) -> tuple[np.ndarray, np.ndarray]:
    """(frame times in s, F0 in Hz with 0 where unvoiced), a frame every 5 ms (WORLD DIO +
    StoneMask, on the signal resampled to 16 kHz)."""
    import pyworld

    from acgmake.audio.resample import resample

    signal = np.asarray(samples, dtype=np.float64)
    if signal.ndim == 2:
        signal = signal.mean(axis=1)
    signal = np.ascontiguousarray(resample(signal, sample_rate, _ANALYSIS_RATE))
    f0, times = pyworld.dio(
        signal, _ANALYSIS_RATE, f0_floor=low_hz, f0_ceil=high_hz, frame_period=_FRAME_S * 1000
    )
    f0 = pyworld.stonemask(signal, f0, times, _ANALYSIS_RATE)
    return times, f0


def check_intonation(samples: np.ndarray, sample_rate: int, timing: Timing) -> Intonation:
    """The singing in ``samples`` checked against the written notes of ``timing``."""
    morae = [mora for line in timing.lines for mora in line.morae]
    if not morae:
        return Intonation()
    low_hz, high_hz = search_band([m.midi for m in morae])
    times, f0 = track_f0(samples, sample_rate, low_hz=low_hz, high_hz=high_hz)
    checks = []
    previous_midi = None
    for mora in morae:
        inside = (times >= mora.start_s) & (times < mora.end_s)
        voiced = inside & (f0 > 0)
        cents = 1200 * np.log2(np.maximum(f0[voiced], 1e-6) / _hz(mora.midi))
        in_tune = np.abs(cents) <= IN_TUNE_CENTS
        held = times[voiced] >= mora.start_s + GLIDE_S
        onset = None
        if mora.midi != previous_midi:
            window = (times >= mora.start_s - 0.05) & (times < mora.end_s) & (f0 > 0)
            arrival = np.abs(1200 * np.log2(np.maximum(f0[window], 1e-6) / _hz(mora.midi)))
            hits = np.flatnonzero(arrival <= IN_TUNE_CENTS)
            if hits.size:
                onset = float(times[window][hits[0]] - mora.start_s)
        previous_midi = mora.midi
        body = cents[held]
        rate, depth = _vibrato(times, f0, mora)
        checks.append(
            NoteCheck(
                text=mora.text,
                start_s=mora.start_s,
                end_s=mora.end_s,
                midi=mora.midi,
                voiced_frames=int(voiced.sum()),
                in_tune_frames=int(in_tune.sum()),
                held_frames=int(held.sum()),
                held_in_tune_frames=int((in_tune & held).sum()),
                median_cents=float(np.median(cents)) if cents.size else None,
                onset_offset_s=onset,
                held_median_cents=float(np.median(body)) if body.size else None,
                vibrato_hz=rate,
                vibrato_cents=depth,
            )
        )
    return Intonation(checks)


def _vibrato(times: np.ndarray, f0: np.ndarray, mora) -> tuple[float | None, float | None]:
    """(rate Hz, depth cents) of the vibrato on a long note, from 0.2 s in to 50 ms before its
    end: the pitch's swing about its own trend, kept to 3-9 Hz (where vibrato lies; the
    tracker's frame-to-frame jitter is faster), its strongest frequency the rate and sqrt 2
    times its RMS the depth (a sine's amplitude)."""
    if mora.end_s - mora.start_s < LONG_NOTE_S:
        return None, None
    window = (times >= mora.start_s + 0.2) & (times < mora.end_s - 0.05)
    if window.sum() < 40 or np.mean(f0[window] > 0) < 0.9:
        return None, None
    voiced = window & (f0 > 0)
    t, cents = times[voiced], 1200 * np.log2(f0[voiced] / _hz(mora.midi))
    swing = cents - np.polyval(np.polyfit(t, cents, 1), t)
    padded = 4 * len(swing)
    spectrum = np.fft.rfft(swing, padded)
    hz = np.fft.rfftfreq(padded, _FRAME_S)
    band = (hz >= 3.0) & (hz <= 9.0)
    rate = float(hz[band][np.argmax(np.abs(spectrum[band]))])
    kept = np.fft.irfft(np.where(band, spectrum, 0), padded)[: len(swing)]
    depth = float(np.sqrt(2 * np.mean(kept**2)))
    return round(rate, 2), round(depth, 1)


def search_band(midis: list[int]) -> tuple[float, float]:
    """(low, high) Hz to track F0 in for singing of the notes ``midis``: a fifth around them
    (no octave for the tracker to jump to), within :data:`TRACKED_HZ`. Notes all below or all
    above that range (C0, G9: no voice sings them) get the octave at its edge, not the empty
    band DIO fails on."""
    floor, ceiling = TRACKED_HZ
    low = min(max(_hz(min(midis) - 7), floor), ceiling)
    high = min(max(_hz(max(midis) + 7), floor), ceiling)
    if high <= low:
        low, high = (floor, 2 * floor) if high <= floor else (ceiling / 2, ceiling)
    return low, high


def is_tracked(midi: int) -> bool:
    """Whether the written note ``midi`` lies where F0 is tracked (:data:`TRACKED_HZ`)."""
    return TRACKED_HZ[0] <= _hz(midi) <= TRACKED_HZ[1]


def _hz(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)
