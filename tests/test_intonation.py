"""The pitch check on a real score sung by Sinsy, and the pitch correction it measures."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import soundfile

from acgmake.pipeline import run
from acgmake.plugins import Plugins
from acgmake.voice.intonation import check_intonation, track_f0
from acgmake.voice.labels import Timing
from audio_inputs import write_score

RATE = 48000


def registry():
    plugins = Plugins()
    plugins.load(builtins=("acgmake.stages.compose", "acgmake.stages.sing"), entry_points=False)
    return plugins.registry


@pytest.fixture(scope="module")
def sung(tmp_path_factory):
    """The G-major score of audio_inputs sung as Sinsy sings it, corrected, and a tone higher."""
    folder = tmp_path_factory.mktemp("intonation")
    score = write_score(folder / "score.musicxml")
    runs = {}
    for name, params in (
        ("raw", {"pitch_correction": 0.0, "vibrato": 0.0}),
        ("corrected", {}),
        ("flat", {"vibrato": 0.0}),
        ("shifted", {"pitch_shift": 2}),
    ):
        result = run(registry(), folder / name, ["timing"], inputs={"score": score},
                     params={"sing": params})  # fmt: skip
        samples, rate = soundfile.read(result.files["vocals"])
        runs[name] = (samples, rate, Timing.read(result.files["timing"]))
    return runs


def test_the_tracker_finds_a_known_pitch():
    t = np.arange(RATE) / RATE
    tone = 0.3 * np.sin(2 * np.pi * 392.0 * t) + 0.1 * np.sin(2 * np.pi * 784.0 * t)
    _, f0 = track_f0(tone, RATE, low_hz=200, high_hz=800)
    assert np.median(f0[f0 > 0]) == pytest.approx(392.0, rel=0.003)


def test_sinsys_own_singing_is_checked_note_by_note(sung):
    samples, rate, timing = sung["raw"]
    report = check_intonation(samples, rate, timing)
    assert [n.midi for n in report.notes] == [67, 69, 71, 72, 74, 72, 71, 69, 67]
    assert all(n.voiced_frames > 20 for n in report.notes)  # every note is sung, voiced
    summary = report.summary()
    # Sinsy's own singing is often off its notes (0.43 of frames in tune here; 26-29 % over
    # the example songs): the check must see that, not pass everything as in tune.
    assert summary["notes"] == 9 and 0.1 <= summary["in_tune_share"] <= 0.7


def test_corrected_singing_is_on_the_written_notes(sung):
    raw = check_intonation(*sung["raw"])
    corrected = check_intonation(*sung["corrected"])
    assert corrected.held_in_tune_share >= 0.85
    assert corrected.held_in_tune_share > raw.held_in_tune_share
    summary = corrected.summary()
    assert summary["median_abs_cents"] < 15
    assert summary["onsets_missed"] == 0
    assert -20 < summary["onset_median_ms"] < 80  # the voice arrives on its notes in time


def test_long_notes_get_a_vibrato_that_keeps_them_on_their_notes(sung):
    """The default vibrato: on the long notes a swing of about 25 cents either side at
    5-6.5 Hz, which Sinsy's own singing and the flat correction do not have; every note's
    body still sits on its written note (the check the issue asks of any expression)."""

    def whole_note(intonation):  # the score's one long note (2 s); its quarters are 0.5 s
        (note,) = [n for n in intonation.notes if n.end_s - n.start_s > 1.5]
        return note

    with_vibrato = check_intonation(*sung["corrected"])
    note = whole_note(with_vibrato)
    assert 5.0 <= note.vibrato_hz <= 6.6 and 15 <= note.vibrato_cents <= 35, note
    assert abs(note.held_median_cents) < 15
    assert with_vibrato.notes_on_pitch_share >= 0.95
    for flat in (check_intonation(*sung["flat"]), check_intonation(*sung["raw"])):
        # Sinsy's own wobble: a slow drift of about 10 cents, well under the vibrato's swing.
        assert whole_note(flat).vibrato_cents < 0.6 * note.vibrato_cents, note
    assert check_intonation(*sung["flat"]).notes_on_pitch_share >= 0.95


def test_the_check_fails_singing_that_is_off_the_score(sung):
    samples, rate, timing = sung["corrected"]
    a_semitone_off = dataclasses.replace(
        timing,
        lines=[
            dataclasses.replace(
                line, morae=[dataclasses.replace(m, midi=m.midi + 1) for m in line.morae]
            )
            for line in timing.lines
        ],
    )
    assert check_intonation(samples, rate, a_semitone_off).held_in_tune_share < 0.1


def test_a_pitch_shift_sings_every_note_higher(sung):
    samples, rate, timing = sung["shifted"]
    assert timing.pitch_shift == 2
    assert [m.midi for line in timing.lines for m in line.morae][:3] == [69, 71, 73]
    assert check_intonation(samples, rate, timing).held_in_tune_share >= 0.85


def test_pauses_keep_the_samples_as_sung_and_phrases_are_resynthesized_in_spans():
    """Pitch correction works phrase by phrase: a pause between two sung tones is left
    sample for sample as it was, each tone is moved onto its note, and no span grows past
    the limit however long the singing goes on."""
    from acgmake.voice import pitch_correction
    from acgmake.voice.labels import Line, Mora

    rate = 48000
    tone = lambda hz, s: 0.3 * np.sin(2 * np.pi * hz * np.arange(int(s * rate)) / rate)  # noqa: E731
    quiet = 1e-4 * np.random.default_rng(0).standard_normal(int(0.6 * rate))
    samples = np.concatenate([tone(430.0, 1.0), quiet, tone(430.0, 1.0)]).astype(np.float32)
    morae = [Mora("あ", 0.0, 1.0, 69), Mora("あ", 1.6, 2.6, 69)]
    timing = Timing(120.0, 4, 0.0, 2.6, lines=[Line("ああ", 0.0, 2.6, morae)])
    corrected = pitch_correction.correct_pitch(samples, rate, timing)
    assert all(30 < cents < 50 for cents in corrected.shifts_cents)  # 430 Hz up to 440 Hz
    pause = slice(int(1.2 * rate), int(1.4 * rate))
    np.testing.assert_array_equal(corrected.samples[pause], samples[pause])
    times, f0 = track_f0(corrected.samples, rate, low_hz=300, high_hz=600)
    held = (f0 > 0) & (((times > 0.2) & (times < 0.9)) | ((times > 1.8) & (times < 2.5)))
    assert abs(np.median(1200 * np.log2(f0[held] / 440.0))) < 10

    voiced = np.ones(20_000, bool)  # 100 s of singing without a break
    voiced[::997] = False
    spans = pitch_correction._spans(voiced)
    longest = pitch_correction._MAX_SPAN_S / pitch_correction._FRAME_S
    assert max(last - first for first, last in spans) <= longest
    assert spans[0][0] == 0 and spans[-1][1] == len(voiced)
    assert all(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))  # overlapping cuts


def test_phrases_corrected_side_by_side_give_the_same_singing(sung):
    """WORLD's pieces run in as many threads as the stage has cores: the result is the same
    sample for sample, and the progress reaches the end."""
    from acgmake.voice import pitch_correction

    samples, rate, timing = sung["raw"]
    samples = np.asarray(samples, np.float32)
    alone = pitch_correction.correct_pitch(samples, rate, timing)
    heard: list[float] = []
    together = pitch_correction.correct_pitch(
        samples, rate, timing, workers=lambda: 3, progress=heard.append
    )
    np.testing.assert_array_equal(together.samples, alone.samples)
    assert together.shifts_cents == alone.shifts_cents
    assert heard[-1] == 1.0 and heard == sorted(heard)
