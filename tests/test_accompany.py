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
from acgmake.music.accompaniment import STYLES, arrange, auto_style, harmonise, read_harmony
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


# -- the form: sections, grooves, fills, intro and outro -------------------------------------


def write_song(path, roles: tuple[str, ...], *, bars_per_section: int = 4, rest_bars: int = 1):
    """A 4/4 song in C at 120 bpm: ``rest_bars`` bars of rest, then ``bars_per_section`` sung
    bars per section, each under a rehearsal mark of its role, and a bar of rest; chords
    C F G Am, a bar each."""
    from music21 import expressions, harmony, key, meter, note, stream, tempo

    part = stream.Part()
    part.append([tempo.MetronomeMark(number=120), meter.TimeSignature("4/4"), key.Key("C")])
    part.append([note.Rest(quarterLength=4) for _ in range(rest_bars)])
    for name in ["C5", "D5", "E5", "G4"] * bars_per_section * len(roles):
        sung = note.Note(name, quarterLength=1)
        sung.lyric = "ら"
        part.append(sung)
    part.append(note.Rest(quarterLength=4))
    bars = list(part.makeMeasures().getElementsByClass(stream.Measure))
    for index, role in enumerate(roles):
        bars[rest_bars + index * bars_per_section].insert(0, expressions.RehearsalMark(role))
    for number, bar in enumerate(bars[rest_bars:-1]):
        symbol = harmony.ChordSymbol(["C", "F", "G", "Am"][number % 4])
        symbol.writeAsChord = False
        bar.insert(0, symbol)
    stream.Score([stream.Part(bars)]).write("musicxml", fp=path)
    return path


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    """Bar 0 rest (the intro), verse in bars 1-4, a second verse (the pre-chorus) in 5-8,
    the chorus in 9-12; the singing ends on bar 13's line (the outro), the final chord on 14."""
    folder = tmp_path_factory.mktemp("song")
    return read_harmony(write_song(folder / "song.musicxml", ("Verse", "Verse", "Chorus")))


BEAT_S = 0.5  # at 120 bpm


def notes_in_bar(midi, bar: int, part: str | None = None) -> list:
    """The notes (of ``part``, or of every part) that start in 4/4 bar ``bar``."""
    return [
        note
        for instrument in midi.instruments
        if part in (None, instrument.name)
        for note in instrument.notes
        if bar * 4 <= round(note.start / BEAT_S * 4) / 4 < (bar + 1) * 4
    ]


def drum_onsets(midi, bar: int) -> set[tuple[int, float]]:
    """(key, beat of the bar to the sixteenth) of each drum hit in ``bar``."""
    return {
        (note.pitch, round(note.start / BEAT_S * 4) / 4 - bar * 4)
        for note in notes_in_bar(midi, bar, "drums")
    }


TOMS = {41, 43, 45, 47, 48, 50}


def fill_bars(midi) -> set[int]:
    """The bars with a drum fill: a tom, or a snare off the eighth-note grid."""
    return {
        int(round(note.start / BEAT_S * 4) / 4 // 4)
        for instrument in midi.instruments
        if instrument.name == "drums"
        for note in instrument.notes
        if note.pitch in TOMS or (note.pitch == 38 and round(note.start / BEAT_S * 4) % 2)
    }


def test_the_scores_sections_reach_the_band(song):
    assert song.sections == [(4.0, "verse"), (20.0, "verse"), (36.0, "chorus")]
    assert song.transposed(2).sections == song.sections


@pytest.mark.parametrize("style", ["pop", "ballad", "upbeat"])
def test_the_chorus_plays_bigger_than_the_verse(song, style):
    midi = arrange(song, seed=2, style=style)
    # Bars 1-3 and 9-11: the verse and the chorus, before their fills.
    verse = [n for bar in (1, 2, 3) for n in notes_in_bar(midi, bar)]
    chorus = [n for bar in (9, 10, 11) for n in notes_in_bar(midi, bar)]
    assert len(chorus) > 1.3 * len(verse)
    velocity = np.mean([n.velocity for n in chorus]) - np.mean([n.velocity for n in verse])
    assert velocity > 3
    # Each part plays as many notes or more in the chorus (the pad doubles its root, the piano
    # adds the root below and pushes, the drums add cymbals), the bass and chords louder, the
    # kick and snare (or side-stick) harder.
    for part in ("bass", "piano", "pad", "drums"):
        in_verse = [n for bar in (1, 2, 3) for n in notes_in_bar(midi, bar, part)]
        in_chorus = [n for bar in (9, 10, 11) for n in notes_in_bar(midi, bar, part)]
        assert len(in_chorus) >= len(in_verse), part
        if part == "drums":  # the chorus's soft sixteenth hats would pull its mean down
            in_verse, in_chorus = ([n for n in notes if n.pitch in (36, 37, 38)]
                                   for notes in (in_verse, in_chorus))  # fmt: skip
        louder = np.mean([n.velocity for n in in_chorus]) - np.mean([n.velocity for n in in_verse])
        assert louder > 2, part
    # The chorus's cymbals: a crash every other bar in pop and upbeat, every fourth in ballad.
    crashes = {bar for bar in range(9, 13) if (49, 0.0) in drum_onsets(midi, bar)}
    assert crashes == ({9} if style == "ballad" else {9, 11})


@pytest.mark.parametrize("style", ["pop", "ballad", "upbeat"])
def test_each_style_has_a_verse_a_lift_and_a_chorus_groove(song, style):
    """The verse (bar 2), the pre-chorus's lift in half time (bar 6) and the chorus (bar 10)
    each play their own drums, the lift the fewest."""
    midi = arrange(song, seed=2, style=style)
    verse, lift, chorus = (frozenset(drum_onsets(midi, bar)) for bar in (2, 6, 10))
    assert len({verse, lift, chorus}) == 3
    assert len(lift) < min(len(verse), len(chorus))
    # The lift's backbeat is on 3 alone (half time); the verse's and chorus's are on 2 and 4.
    backbeat = {37, 38}
    assert {beat for key, beat in lift if key in backbeat} <= {2.0}
    assert {beat for key, beat in chorus if key in backbeat} == {1.0, 3.0}


def test_a_fill_leads_into_each_section_and_the_ending_and_nowhere_else(song):
    fills = set()
    for seed in range(6):
        midi = arrange(song, seed=seed, style="pop")
        # Into the verse (bar 1), the pre-chorus (5), the chorus (9) and the final chord (14).
        assert fill_bars(midi) == {0, 4, 8, 13}
        for bar in (0, 4, 8, 13):
            hits = drum_onsets(midi, bar)
            run = sorted((beat, key) for key, beat in hits if key in TOMS | {38} and beat % 0.5)
            assert run[0][0] >= 2.0  # in the last one or two beats
            assert (49, 0.0) in drum_onsets(midi, bar + 1)  # a crash as the section starts
            fills.add((bar, tuple(run)))
    # The seed picks the fills: the same bar gets other fills with other seeds.
    assert len(fills) > 4 + 4


@pytest.mark.parametrize(("rest_bars", "intro_bars"), [(0, 0), (1, 1), (3, 2)])
def test_the_intro_is_up_to_two_bars_where_the_score_has_room(tmp_path, rest_bars, intro_bars):
    harmony = read_harmony(
        write_song(tmp_path / "song.musicxml", ("Verse",), bars_per_section=2, rest_bars=rest_bars)
    )
    midi = arrange(harmony, seed=1)
    first = min(n.start for instrument in midi.instruments for n in instrument.notes)
    assert first / BEAT_S == pytest.approx(4 * (rest_bars - intro_bars), abs=0.05)
    if intro_bars:  # only the hi-hat keeps time before the singing, then a crash
        intro = {key for bar in range(rest_bars - intro_bars, rest_bars)
                 for key, _ in drum_onsets(midi, bar)}  # fmt: skip
        assert intro <= {42, 36} | TOMS | {38} and 42 in intro
        assert (49, 0.0) in drum_onsets(midi, rest_bars)


def test_the_outro_resolves_onto_the_final_chord(tmp_path):
    """The singing ends on beat 16 (G); the outro bar plays C then D (IV, V of G), and all
    four parts hit G on beat 20 and hold it a bar; nothing starts after."""
    harmony = read_harmony(write_score(tmp_path / "score.musicxml"))
    midi = arrange(harmony, seed=4)
    bass = sorted(notes_in_bar(midi, 4, "bass"), key=lambda n: n.start)
    assert {n.pitch % 12 for n in bass if n.start < 18 * BEAT_S - FEEL_S} == {0}
    assert {n.pitch % 12 for n in bass if n.start > 18 * BEAT_S - FEEL_S} == {2}
    for instrument in midi.instruments:
        last = max(n.start for n in instrument.notes)
        assert last / BEAT_S == pytest.approx(20, abs=0.05), instrument.name
        final = [n for n in instrument.notes if n.start / BEAT_S > 19.9]
        if instrument.name != "drums":
            assert {n.pitch % 12 for n in final} <= {7, 11, 2}
            assert all(n.end / BEAT_S == pytest.approx(24, abs=0.05) for n in final)
    assert fill_bars(midi) == {0, 4}


def test_a_score_without_sections_plays_the_verse_groove_throughout(tmp_path):
    harmony = read_harmony(write_score(tmp_path / "score.musicxml"))
    assert harmony.sections == []
    midi = arrange(harmony, seed=0, style="pop")
    # No ride, clap or open hat; a crash only where the singing starts and on the final chord.
    keys = {key for bar in range(1, 5) for key, _ in drum_onsets(midi, bar)}
    assert not keys & {51, 39, 46}
    crashes = [n.start / BEAT_S for n in midi.instruments[-1].notes if n.pitch == 49]
    assert crashes == pytest.approx([4, 20], abs=0.05)


def test_the_same_seed_plays_the_same_band(song):
    def played(seed: int) -> list[tuple]:
        midi = arrange(song, seed=seed, start_s=0.25)
        return [(i.name, n.pitch, n.velocity, n.start, n.end) for i in midi.instruments
                for n in i.notes]  # fmt: skip

    assert played(7) == played(7)
    assert played(7) != played(8)


def test_auto_picks_the_style_by_tempo_and_the_stage_offers_every_style():
    assert [auto_style(bpm) for bpm in (76, 89.9, 90, 120, 139.9, 140, 152)] == [
        "ballad", "ballad", "pop", "pop", "pop", "upbeat", "upbeat",
    ]  # fmt: skip
    band = next(p for p in plugins().registry.stage("accompany").params if p.name == "band")
    assert tuple(band.type.choices) == STYLES


# -- the stage --------------------------------------------------------------------------------


def test_accompany_alone_writes_a_backing_in_the_scores_time(tmp_path):
    score = write_score(tmp_path / "score.musicxml")
    result = run(plugins().registry, tmp_path / "run", ["backing"], inputs={"score": score},
                 only=["accompany"], seed=1)  # fmt: skip
    info = soundfile.info(str(result.files["backing"]))
    assert (info.samplerate, info.channels, info.subtype) == (48000, 2, "PCM_24")
    # 20 beats of score at 120 bpm (10 s); the last note ends on beat 16, then the band plays
    # an outro bar (to 10 s) and holds the final chord a bar (to 12 s), which rings 2 s.
    assert 13.0 <= info.duration <= 15.0
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
