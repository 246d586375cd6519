"""The accompany stage: chords read from a real score, a band arranged on them, and a real
SoundFont played offline (the General MIDI one pretty_midi ships, and a user's own)."""

from __future__ import annotations

import json

import numpy as np
import pretty_midi
import pytest
import soundfile

from acgmake.audio.soundfont import (
    DEFAULT_SOUNDFONT_CREDIT,
    SoundFont,
    SoundFontNote,
    default_soundfont,
    render_notes,
)
from acgmake.errors import UserError
from acgmake.music.accompaniment import arrange, harmonise, read_harmony
from acgmake.pipeline import run
from acgmake.plugins import Plugins
from acgmake.voice.labels import Line, Mora, Timing
from audio_inputs import write_score, write_tiny_soundfont

RATE = 48000


def plugins() -> Plugins:
    loaded = Plugins()
    loaded.load(
        builtins=("acgmake.stages.compose", "acgmake.stages.sing", "acgmake.stages.accompany"),
        entry_points=False,
    )
    return loaded


def pitch_hz(audio: np.ndarray, rate: int, low: float, high: float) -> float:
    """The strongest frequency between ``low`` and ``high`` Hz (zero-padded FFT)."""
    mono = audio.mean(axis=1) if audio.ndim == 2 else audio
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(len(mono)), 8 * len(mono)))
    frequencies = np.fft.rfftfreq(8 * len(mono), 1 / rate)
    band = (frequencies > low) & (frequencies < high)
    return float(frequencies[band][np.argmax(spectrum[band])])


# -- the SoundFont player ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def general_midi() -> SoundFont:
    return SoundFont(default_soundfont())


def test_the_shipped_soundfont_has_the_general_midi_band(general_midi):
    assert general_midi.name == "TimGM6mb"
    for bank, program in ((0, 0), (0, 33), (0, 89), (128, 0)):
        assert general_midi.has_preset(bank, program)
    assert general_midi.preset_name(128, 0) == "Standard"


@pytest.mark.parametrize(("program", "key", "low", "high"), [(89, 69, 300, 600), (33, 45, 80, 150)])
def test_a_note_sounds_at_its_pitch(general_midi, program, key, low, high):
    audio = render_notes([SoundFontNote(0.0, 1.0, key, 100, program)], general_midi)
    steady = audio[int(0.7 * RATE) : int(1.0 * RATE)]
    expected = 440.0 * 2 ** ((key - 69) / 12)
    cents = 1200 * np.log2(pitch_hz(steady, RATE, low, high) / expected)
    assert abs(cents) < 15


def test_louder_velocity_is_louder_and_a_release_rings_then_stops(general_midi):
    soft = render_notes([SoundFontNote(0.0, 0.5, 60, 40, 0)], general_midi)
    loud = render_notes([SoundFontNote(0.0, 0.5, 60, 120, 0)], general_midi)
    assert np.abs(loud).max() > 3 * np.abs(soft).max()
    after = loud[int(0.55 * RATE) :]
    assert 0 < np.abs(after).max() and np.abs(loud[-2000:]).max() < 1e-3 * np.abs(loud).max()


def test_a_closed_hi_hat_cuts_an_open_one(general_midi):
    open_hat = SoundFontNote(0.0, 1.0, 46, 100, 0, is_drum=True)
    alone = render_notes([open_hat], general_midi, duration_s=1.0)
    cut = render_notes(
        [open_hat, SoundFontNote(0.2, 0.3, 42, 1, 0, is_drum=True)], general_midi, duration_s=1.0
    )
    tail = slice(int(0.4 * RATE), int(0.8 * RATE))
    assert np.abs(alone[tail]).max() > 0.01
    assert np.abs(cut[tail]).max() < 0.1 * np.abs(alone[tail]).max()


def test_voices_played_side_by_side_make_the_same_band(general_midi):
    rng = np.random.default_rng(5)
    notes = [
        SoundFontNote(float(t), float(t) + 0.4, int(k), 90, int(p), is_drum=bool(d))
        for t, k, p, d in zip(
            rng.uniform(0, 3, 60), rng.integers(36, 80, 60), rng.integers(0, 40, 60),
            rng.random(60) < 0.3, strict=True,
        )
    ]  # fmt: skip
    alone = render_notes(notes, general_midi, duration_s=4.0)
    heard: list[float] = []
    together = render_notes(
        notes, general_midi, duration_s=4.0, workers=lambda: 3, progress=heard.append
    )
    np.testing.assert_array_equal(together, alone)
    assert heard[-1] == 1.0 and heard == sorted(heard)


def test_files_that_are_not_soundfonts_are_refused(tmp_path):
    wav = tmp_path / "piano.sf2"
    soundfile.write(wav, np.zeros(100), RATE, format="WAV")
    with pytest.raises(UserError, match="is not a SoundFont 2 file"):
        SoundFont(wav)
    cut_short = tmp_path / "short.sf2"
    cut_short.write_bytes(default_soundfont().read_bytes()[:50_000])
    with pytest.raises(UserError, match="damaged"):
        SoundFont(cut_short)


# -- chords and the arrangement ---------------------------------------------------------------


def test_chords_key_and_tempo_come_from_the_score(tmp_path):
    harmony = read_harmony(write_score(tmp_path / "score.musicxml"))
    assert harmony.chords_from_score
    assert (harmony.tempo_bpm, harmony.beats_per_bar, harmony.tonic, harmony.mode) == (
        120,
        4,
        7,
        "major",
    )
    assert [(c.start, c.root) for c in harmony.chords] == [
        (4.0, 7),
        (6.0, 0),
        (8.0, 2),
        (10.0, 2),
        (12.0, 7),
    ]
    assert set(harmony.chords[3].pitch_classes) == {2, 6, 9, 0}  # D7: D F# A C
    assert (harmony.first_note, harmony.last_note_end) == (4.0, 16.0)


def test_a_score_without_chords_gets_chords_from_its_melody(tmp_path):
    harmony = read_harmony(write_score(tmp_path / "score.musicxml", chords=False))
    assert not harmony.chords_from_score
    sung = [c for c in harmony.chords if 4.0 <= c.start < 16.0]
    # Every chord holds the melody's note on its first beat, and the song ends on the tonic.
    for chord in sung:
        on_beat = next(m for start, end, m in harmony.notes if start <= chord.start < end)
        assert on_beat % 12 in chord.pitch_classes
    assert sung[-1].root == 7
    assert harmonise([], tonic=0, mode="major", beats_per_bar=4, length=4.0)[0].root == 0


#: How far off the grid a note of the band may sound (twice the loosest part's spread).
FEEL_S = 0.017


def test_the_band_plays_the_chords_in_time(tmp_path):
    harmony = read_harmony(write_score(tmp_path / "score.musicxml"))
    midi = arrange(harmony, seed=3, start_s=0.5)
    parts = {instrument.name: instrument for instrument in midi.instruments}
    assert set(parts) == {"bass", "piano", "pad", "drums"}
    beat = 0.5  # seconds at 120 bpm
    # The bass plays each chord's root, from the chord's first beat.
    for chord in harmony.chords[:-1]:
        starts = [
            n for n in parts["bass"].notes if abs(n.start - (0.5 + chord.start * beat)) < FEEL_S
        ]
        assert starts and starts[0].pitch % 12 == chord.root
    # The piano sits below the singer and plays only the chord's notes.
    for note in parts["piano"].notes:
        assert 52 <= note.pitch <= 72

    # Drums: a snare on beats 2 and 4 of a sung bar, a crash where the singing starts.
    def drum_at(seconds: float, pitch: int) -> bool:
        return any(
            abs(n.start - seconds) < FEEL_S and n.pitch == pitch for n in parts["drums"].notes
        )

    assert drum_at(0.5 + 5 * beat, 38) and drum_at(0.5 + 4 * beat, 49)
    # The last sound is the final G chord after the last sung bar.
    final = [n for n in parts["bass"].notes if n.start >= 0.5 + 16 * beat - FEEL_S]
    assert final and final[-1].pitch % 12 == 7


def test_the_band_plays_with_a_players_feel_not_on_the_grid(tmp_path):
    """Each note a few milliseconds off the grid (the drums the tightest), never more than
    twice the part's spread, the same for the same seed."""
    harmony = read_harmony(write_score(tmp_path / "score.musicxml"))
    midi = arrange(harmony, seed=3, start_s=0.5)
    grid = 0.5 / 8  # thirty-second notes at 120 bpm: every note of the band is on this grid
    for instrument in midi.instruments:
        offsets = np.array([(n.start - 0.5) - round((n.start - 0.5) / grid) * grid
                            for n in instrument.notes]) * 1000  # fmt: skip
        spread = {"drums": 4.0, "bass": 6.0, "piano": 8.0, "pad": 0.0}[instrument.name]
        assert np.abs(offsets).max() <= 2 * spread + 1e-6, instrument.name
        if spread:
            assert 0.4 * spread < np.abs(offsets).mean() < 1.2 * spread, instrument.name
    again = arrange(harmony, seed=3, start_s=0.5)
    assert [n.start for i in again.instruments for n in i.notes] == [
        n.start for i in midi.instruments for n in i.notes
    ]


def test_unknown_parts_and_styles_are_user_errors(tmp_path):
    harmony = read_harmony(write_score(tmp_path / "score.musicxml"))
    with pytest.raises(UserError, match="unknown part"):
        arrange(harmony, parts=("bass", "tuba"))
    with pytest.raises(UserError, match="unknown style"):
        arrange(harmony, style="polka")


# -- the stage --------------------------------------------------------------------------------


def test_accompany_alone_writes_a_backing_in_the_scores_time(tmp_path):
    score = write_score(tmp_path / "score.musicxml")
    result = run(plugins().registry, tmp_path / "run", ["backing"], inputs={"score": score},
                 only=["accompany"], seed=1)  # fmt: skip
    info = soundfile.info(str(result.files["backing"]))
    assert (info.samplerate, info.channels, info.subtype) == (48000, 2, "PCM_24")
    # 20 beats of score at 120 bpm (10 s): the band ends on a held final chord and rings.
    assert 10.0 <= info.duration <= 13.0
    audio, _ = soundfile.read(result.files["backing"])
    assert np.abs(audio).max() == pytest.approx(10 ** (-1 / 20), abs=1e-3)
    midi = pretty_midi.PrettyMIDI(str(result.files["backing_midi"]))
    assert {i.name for i in midi.instruments} == {"bass", "piano", "pad", "drums"}
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text("utf-8"))
    assert DEFAULT_SOUNDFONT_CREDIT in manifest["credits"]


def test_the_backing_follows_the_singings_start_and_pitch_shift(tmp_path):
    score = write_score(tmp_path / "score.musicxml")
    timing = tmp_path / "timing.json"
    Timing(120, 4, 2.0, 12.0, [Line("か", 4.0, 4.5, [Mora("か", 4.0, 4.5, 69)])],
           pitch_shift=2).write(timing)  # fmt: skip
    result = run(plugins().registry, tmp_path / "run", ["backing"],
                 inputs={"score": score, "timing": timing}, only=["accompany"],
                 params={"accompany": {"parts": "bass"}})  # fmt: skip
    midi = pretty_midi.PrettyMIDI(str(result.files["backing_midi"]))
    bass = midi.instruments[0].notes
    # The first sung bar (beat 4) now starts 2 s later, its chord G moved up to A.
    first_sung = [n for n in bass if abs(n.start - (2.0 + 4 * 0.5)) < FEEL_S]
    assert first_sung and first_sung[0].pitch % 12 == 9


def test_a_users_own_soundfont_plays_the_band(tmp_path):
    score = write_score(tmp_path / "score.musicxml")
    sine = write_tiny_soundfont(tmp_path / "sine.sf2")
    result = run(plugins().registry, tmp_path / "run", ["backing"], inputs={"score": score},
                 only=["accompany"], params={"accompany": {"soundfont": str(sine),
                                                           "parts": "pad"}})  # fmt: skip
    audio, rate = soundfile.read(result.files["backing"])
    # The pad's first chord (G B D around E3-D#4) played as sines: its lowest note is there.
    lowest = pitch_hz(audio[int(0.5 * rate) : int(1.5 * rate)], rate, 100, 400)
    assert min(abs(1200 * np.log2(lowest / f)) for f in (146.83, 196.0, 246.94)) < 20
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text("utf-8"))
    assert not any("TimGM6mb" in credit for credit in manifest["credits"])
    missing = {"accompany": {"soundfont": str(tmp_path / "no.sf2")}}
    with pytest.raises(UserError, match="does not exist"):
        run(plugins().registry, tmp_path / "run2", ["backing"], inputs={"score": score},
            only=["accompany"], params=missing)  # fmt: skip
