"""The sing stage: real Sinsy singing, labels that line up with it, and failures as one line."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from acgmake.errors import UserError
from acgmake.music.melody import compose_melody
from acgmake.music.musicxml import write_musicxml
from acgmake.pipeline import run
from acgmake.plugins import Plugins
from acgmake.testing import load_plugins
from acgmake.text.kana import parse_lyrics
from acgmake.voice import sinsy
from acgmake.voice.align import formant_energy_db
from acgmake.voice.labels import SILENCES, Timing, read_lab

TWO_LINES = "かえるの うたが\nきこえて くるよ\n"


def sing_plugins() -> Plugins:
    return load_plugins(builtins=("acgmake.stages.compose", "acgmake.stages.sing"))


def write_score(path: Path, lyrics: str = TWO_LINES, **options) -> Path:
    write_musicxml(compose_melody(parse_lyrics(lyrics), seed=1, **options), path)
    return path


@pytest.fixture(scope="module")
def sung(tmp_path_factory):
    """A two-line score composed and sung once for the tests that look at the results."""
    folder = tmp_path_factory.mktemp("sing")
    score = write_score(folder / "two.musicxml")
    result = run(sing_plugins().registry, folder / "run", ["timing"], inputs={"score": score})
    melody = compose_melody(parse_lyrics(TWO_LINES), seed=1)
    return result, melody


def test_the_vocals_are_48k_mono_16_bit_and_as_long_as_the_score(sung):
    result, melody = sung
    info = soundfile.info(str(result.files["vocals"]))
    assert (info.samplerate, info.channels, info.subtype, info.format) == (
        48000,
        1,
        "PCM_16",
        "WAV",
    )
    assert info.duration == pytest.approx(melody.duration_s, abs=0.01)
    samples, rate = soundfile.read(result.files["vocals"])
    times, energy = formant_energy_db(samples, rate)
    assert energy.max() > -30  # it sings, not whispers
    # The opening bar of rest is quiet until the breath before the first phrase, which is
    # soft (about 15 dB under the singing after --breath-level's 12 dB) and just before it.
    first = Timing.read(result.files["timing"]).lines[0].start_s
    assert energy[times < first - 0.5].max() < energy.max() - 40
    breath = energy[(times > first - 0.5) & (times < first - 0.1)]
    assert energy.max() - 35 < breath.max() < energy.max() - 10


def test_timing_has_a_mora_per_note_in_two_lines_on_the_score_grid(sung):
    result, melody = sung
    timing = Timing.read(result.files["timing"])
    assert [line.text for line in timing.lines] == ["かえるのうたが", "きこえてくるよ"]
    morae = [mora for line in timing.lines for mora in line.morae]
    notes = melody.sung_notes()
    assert len(morae) == len(notes)
    assert [m.midi for m in morae] == [n.midi for n in notes]
    assert (timing.tempo_bpm, timing.beats_per_bar, timing.first_beat_s) == (120, 4, 0.0)
    seconds = 0.0
    starts = []
    for note in melody.notes:
        if not note.is_rest:
            starts.append(seconds)
        seconds += note.quarter_length * 0.5
    assert [m.start_s for m in morae] == pytest.approx(starts, abs=1e-3)
    assert timing.duration_s == pytest.approx(melody.duration_s, abs=0.01)


def test_each_vowel_lies_inside_its_note_and_is_where_the_voice_sounds(sung):
    result, _ = sung
    phonemes = read_lab(result.files["phonemes"])
    timing = Timing.read(result.files["timing"])
    morae = [mora for line in timing.lines for mora in line.morae]
    samples, rate = soundfile.read(result.files["vocals"])
    times, energy = formant_energy_db(samples, rate)
    peak = energy.max()
    vowels = [p for p in phonemes if p.name in "aiueo"]
    assert len(vowels) == len(morae)  # these lyrics have one vowel per mora
    for vowel, mora in zip(vowels, morae, strict=True):
        assert mora.start_s - 1e-4 <= vowel.start_s < vowel.end_s <= mora.end_s + 1e-4
        middle = (times > vowel.start_s + 0.02) & (times < vowel.end_s - 0.02)
        assert np.median(energy[middle]) > peak - 30, vowel  # the vowel is heard there
    # A closure (k, t) comes before its vowel and is much quieter than it.
    for before, vowel in zip(phonemes, phonemes[1:], strict=False):
        if before.name in ("k", "t") and vowel.name in "aiueo":
            assert 0.02 < before.end_s - before.start_s < 0.2
            inside = (times > before.start_s + 0.01) & (times < before.end_s - 0.01)
            assert np.median(energy[inside]) < peak - 25, before
    assert phonemes[0].name in SILENCES and phonemes[-1].name in SILENCES


def test_the_voice_credit_goes_into_the_manifest(sung):
    result, _ = sung
    manifest = json.loads((result.workdir / "manifest.json").read_text("utf-8"))
    assert sinsy.VOICE_CREDIT in manifest["credits"]
    assert "CC BY 3.0" in sinsy.VOICE_CREDIT and "HTS Working Group" in sinsy.VOICE_CREDIT


def test_a_score_that_starts_with_a_note_is_timed_after_sinsys_padding(tmp_path):
    from music21 import meter, note, stream, tempo

    part = stream.Part()
    part.append(tempo.MetronomeMark(number=120))
    part.append(meter.TimeSignature("4/4"))
    for kana in "はるが":
        sung = note.Note("A4", quarterLength=1)
        sung.lyric = kana
        part.append(sung)
    part.append(note.Rest(quarterLength=1))
    path = tmp_path / "こえ.musicxml"  # a non-ASCII name: Sinsy only opens ASCII paths
    stream.Score([part.makeMeasures()]).write("musicxml", fp=path)
    result = run(sing_plugins().registry, tmp_path / "run", ["timing"], inputs={"score": path})
    timing = Timing.read(result.files["timing"])
    # Sinsy pads a bar (2 s at 120 bpm) before a score without a leading rest.
    assert timing.first_beat_s == pytest.approx(2.0)
    assert [m.start_s for m in timing.lines[0].morae] == pytest.approx([2.0, 2.5, 3.0])


# -- failures ------------------------------------------------------------------------------

BAD_NOTE = (
    '<?xml version="1.0" encoding="UTF-8"?><score-partwise version="4.0"><part-list>'
    '<score-part id="P1"><part-name>V</part-name></score-part></part-list><part id="P1">'
    '<measure number="1"><attributes><divisions>{divisions}</divisions></attributes>'
    "<note><pitch><step>{step}</step><octave>5</octave></pitch><duration>4</duration>"
    "<lyric><text>か</text></lyric></note></measure></part></score-partwise>"
)


def fails_fast(call, match: str) -> UserError:
    started = time.perf_counter()
    with pytest.raises(UserError, match=match) as caught:
        call()
    assert time.perf_counter() - started < 10
    assert "\n" not in caught.value.message
    return caught.value


def test_a_score_sinsy_refuses_is_a_user_error(tmp_path):
    path = tmp_path / "score.musicxml"
    path.write_text(BAD_NOTE.format(divisions=1, step="H"), encoding="utf-8")
    fails_fast(lambda: sinsy.synthesize(path), r"Sinsy refused the score score.musicxml")


def test_sinsy_crashing_is_a_user_error_not_a_dead_cli(tmp_path):
    path = tmp_path / "score.musicxml"  # divisions 0: Sinsy divides by it and dies (SIGFPE)
    path.write_text(BAD_NOTE.format(divisions=0, step="C"), encoding="utf-8")
    fails_fast(lambda: sinsy.synthesize(path), r"Sinsy crashed \(SIGFPE\)")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("<score-partwise><part id='P1'><measure>", "not well-formed XML"),
        (
            '<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "aaaaaaaaaaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
            '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">'
            '<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
            "<score-partwise><work><work-title>&d;&d;&d;&d;&d;&d;&d;&d;</work-title></work>"
            "</score-partwise>",
            "declares XML entities",
        ),
    ],
)
def test_a_malformed_or_entity_bomb_score_is_refused_by_the_stage_and_by_synthesize(
    tmp_path, content, match
):
    path = tmp_path / "score.musicxml"
    path.write_text(content, encoding="utf-8")
    fails_fast(lambda: sinsy.synthesize(path), match)
    fails_fast(
        lambda: run(sing_plugins().registry, tmp_path / "run", ["vocals"], inputs={"score": path}),
        match,
    )
    assert not (tmp_path / "run" / "vocals.wav").exists()


def test_a_tiny_time_limit_stops_real_synthesis(tmp_path):
    score = write_score(tmp_path / "score.musicxml")
    fails_fast(
        lambda: sinsy.synthesize(score, timeout_s=0.05),
        r"Sinsy did not finish singing score.musicxml within 0.05 s",
    )


def test_a_missing_or_invalid_voice_is_a_user_error(tmp_path):
    score = write_score(tmp_path / "score.musicxml")
    fails_fast(lambda: sinsy.check_voice(tmp_path / "none.htsvoice"), "does not exist")
    not_a_voice = tmp_path / "voice.htsvoice"
    not_a_voice.write_bytes(b"RIFF....WAVEfmt ")
    fails_fast(lambda: sinsy.check_voice(not_a_voice), "is not an HTS voice")
    # A real voice cut short: the header looks right, hts_engine refuses the rest.
    broken = tmp_path / "broken.htsvoice"
    broken.write_bytes(sinsy.sinsy_files().voice.read_bytes()[:1_300_000])
    fails_fast(lambda: sinsy.synthesize(score, voice_path=broken), "Sinsy could not load the voice")
    fails_fast(
        lambda: run(
            sing_plugins().registry,
            tmp_path / "run",
            ["vocals"],
            inputs={"score": score},
            params={"sing": {"voice": str(tmp_path / "none.htsvoice")}},
        ),
        "does not exist",
    )


def test_sinsy_loads_without_pkg_resources():
    # pysinsy/__init__.py imports pkg_resources (gone in setuptools >= 82); acgmake must not
    # need it. Block it, show pysinsy's own import fails, then sing with acgmake's loader.
    script = (
        "import sys\n"
        "sys.modules['pkg_resources'] = None\n"
        "try:\n"
        "    import pysinsy\n"
        "    print('pysinsy imported')\n"
        "except ImportError:\n"
        "    print('pysinsy needs pkg_resources')\n"
        "from acgmake.voice.sinsy import load_sinsy_module, sinsy_files\n"
        "engine = load_sinsy_module().Sinsy()\n"
        "files = sinsy_files()\n"
        "assert engine.setLanguages('j', str(files.dictionary))\n"
        "assert engine.loadVoices(str(files.voice))\n"
        "assert 'pysinsy' not in sys.modules or sys.modules['pysinsy'] is None\n"
        "print('ok', load_sinsy_module().__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["pysinsy", "needs", "pkg_resources", "ok", "pysinsy.sinsy"]


def test_a_note_without_a_lyric_is_silent_and_is_no_mora(tmp_path):
    from music21 import meter, note, stream, tempo

    part = stream.Part()
    part.append(tempo.MetronomeMark(number=120))
    part.append(meter.TimeSignature("4/4"))
    part.append(note.Rest(quarterLength=1))
    for kana in ("か", "", "な"):
        sung = note.Note("A4", quarterLength=1)
        if kana:
            sung.lyric = kana
        part.append(sung)
    part.append(note.Rest(quarterLength=4))
    path = tmp_path / "score.musicxml"
    stream.Score([part.makeMeasures()]).write("musicxml", fp=path)
    result = run(sing_plugins().registry, tmp_path / "run", ["timing"], inputs={"score": path})
    timing = Timing.read(result.files["timing"])
    assert [(m.text, m.start_s, m.end_s) for m in timing.lines[0].morae] == [
        ("か", 0.5, 1.0),
        ("な", 1.5, 2.0),
    ]
    phonemes = read_lab(result.files["phonemes"])
    # The silent note is a pause (which may begin a few ms early, where the vowel fades).
    silent = [p for p in phonemes if p.end_s > 1.0 + 1e-6 and p.start_s < 1.5 - 1e-6]
    assert [p.name for p in silent] == ["pau"]
    assert silent[0].start_s <= 1.0 and silent[0].end_s >= 1.5


def test_a_score_whose_lyrics_are_not_kana_is_refused(tmp_path):
    from music21 import meter, note, stream

    part = stream.Part([meter.TimeSignature("4/4"), note.Rest(quarterLength=1)])
    for syllable in ("la", "la", "la"):
        sung = note.Note("A4", quarterLength=1)
        sung.lyric = syllable
        part.append(sung)
    path = tmp_path / "score.musicxml"
    stream.Score([part.makeMeasures()]).write("musicxml", fp=path)
    fails_fast(
        lambda: run(sing_plugins().registry, tmp_path / "run", ["vocals"], inputs={"score": path}),
        r"the lyrics of score.musicxml are not kana \(e.g. 'la'\)",
    )


# -- what a creator controls -------------------------------------------------------------------


def test_the_audacity_labels_are_the_phonemes_in_seconds(sung):
    result, _ = sung
    in_seconds = read_lab(result.files["phoneme_labels"])
    htk = read_lab(result.files["phonemes"])
    assert [p.name for p in in_seconds] == [p.name for p in htk]
    assert [p.start_s for p in in_seconds] == pytest.approx([p.start_s for p in htk], abs=1e-6)
    first = result.files["phoneme_labels"].read_text("utf-8").splitlines()[0].split("\t")
    assert first == ["0.000000", f"{htk[0].end_s:.6f}", htk[0].name]


def test_volume_and_alpha_reach_sinsy(tmp_path):
    score = write_score(tmp_path / "score.musicxml", "かえるの\n")
    plain = sinsy.sing(score).samples
    quieter = sinsy.sing(score, options=sinsy.SingingOptions(volume_db=-6.0)).samples
    ratio = np.sqrt(np.mean(quieter**2) / np.mean(plain**2))
    assert ratio == pytest.approx(10 ** (-6 / 20), rel=0.02)
    assert sinsy.voice_alpha(sinsy.sinsy_files().voice) == 0.55
    same = sinsy.sing(score, options=sinsy.SingingOptions(alpha=0.55)).samples
    other = sinsy.sing(score, options=sinsy.SingingOptions(alpha=0.6)).samples
    assert np.array_equal(same, plain) and not np.allclose(other, plain, atol=1e-3)


def test_too_loud_a_volume_is_reported_as_clipping(tmp_path):
    score = write_score(tmp_path / "score.musicxml", "かえるの\n")
    singing = sinsy.sing(score, options=sinsy.SingingOptions(volume_db=20.0))
    assert np.abs(singing.samples).max() == 1.0
    assert any("clipped" in message for message in singing.messages)


def test_transposing_a_score_moves_every_note_and_the_key():
    from music21 import converter

    xml = (Path(__file__).parents[1] / "scores" / "kaeru.musicxml").read_bytes()
    from acgmake.music.musicxml import sinsy_xml

    original = sinsy_xml(Path(__file__).parents[1] / "scores" / "kaeru.musicxml")
    for semitones in (3, -5):
        moved = sinsy.transpose_xml(original, semitones)
        before = converter.parseData(original.decode(), format="musicxml")
        after = converter.parseData(moved.decode(), format="musicxml")
        pitches = [n.pitch.midi for n in before.flatten().notes if n.isNote]
        assert [n.pitch.midi for n in after.flatten().notes if n.isNote] == [
            p + semitones for p in pitches
        ]
        key_before = before.flatten().getElementsByClass("KeySignature")[0].asKey("major")
        key_after = after.flatten().getElementsByClass("KeySignature")[0].asKey("major")
        assert (key_after.tonic.pitchClass - key_before.tonic.pitchClass) % 12 == semitones % 12
    assert sinsy.transpose_xml(xml, 0) is xml


def test_the_online_backend_fails_clearly_when_offline(tmp_path, monkeypatch):
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on: offline, for sure
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("ACGMAKE_SINSY_URL", f"http://127.0.0.1:{port}/")
    score = write_score(tmp_path / "score.musicxml", "かえるの\n")
    error = fails_fast(
        lambda: run(sing_plugins().registry, tmp_path / "run", ["vocals"],
                    inputs={"score": score}, params={"sing": {"sinsy_backend": "online"}}),
        r"cannot reach the Sinsy service at http://127.0.0.1:\d+/ .*--sinsy-backend local",
    )  # fmt: skip
    assert "offline" in error.message
    assert not (tmp_path / "run" / "vocals.wav").exists()


def test_a_failing_sinsy_worker_leaves_the_command_line_standing(tmp_path, use_plugins):
    import importlib

    from click.testing import CliRunner

    from acgmake.cli import cli

    score = write_score(tmp_path / "score.musicxml", "かえるの\n")
    broken = tmp_path / "broken.htsvoice"  # the header is right, hts_engine refuses the rest
    broken.write_bytes(sinsy.sinsy_files().voice.read_bytes()[:1_300_000])
    use_plugins(*(importlib.import_module(f"acgmake.stages.{n}") for n in ("compose", "sing")))
    result = CliRunner().invoke(
        cli, ["sing", str(score), "--voice", str(broken), "--workdir", str(tmp_path / "run")]
    )
    assert result.exit_code == 1
    assert "Sinsy could not load the voice" in result.output
    assert "Traceback" not in result.output and result.output.count("\n") == 1


def test_a_long_song_is_sung_in_sections_with_the_whole_songs_labels_and_length(
    tmp_path, monkeypatch
):
    """pysinsy hands the singing to Python as a list of floats, so a long song is sung in
    sections cut where a rest meets a rest (here every few seconds, for a short test): the
    labels joined are the whole song's, the samples as many, and the singing as much in tune."""
    from acgmake.music.musicxml import sinsy_xml
    from acgmake.voice import sinsy_worker
    from acgmake.voice.intonation import check_intonation
    from acgmake.voice.labels import Timing
    from acgmake.voice.pitch_correction import correct_pitch

    score = write_score(tmp_path / "song.musicxml", TWO_LINES + "\n" + TWO_LINES)
    xml = sinsy_xml(score)
    (tmp_path / "sinsy.musicxml").write_bytes(xml)
    assert sinsy_worker.sections(xml) == [xml]  # a short song is sung whole
    monkeypatch.setattr(sinsy_worker, "SECTION_S", 4.0)
    pieces = sinsy_worker.sections(xml)
    assert len(pieces) >= 2

    files = sinsy.sinsy_files()
    engine = sinsy.load_sinsy_module().Sinsy()
    assert engine.setLanguages("j", str(files.dictionary)) and engine.loadVoices(str(files.voice))
    assert engine.loadScoreFromMusicXML(str(tmp_path / "sinsy.musicxml"))
    whole_labels = engine.createLabelData(True, 1, 1).getData()
    whole, _ = engine.synthesize()
    labels = []
    for piece in pieces:  # each section is a score Sinsy reads, starting at a rest
        (tmp_path / "piece.musicxml").write_bytes(piece)
        engine.clearScore()
        assert engine.loadScoreFromMusicXML(str(tmp_path / "piece.musicxml"))
        offset = sinsy.labels_length_s(labels) * 1e7
        for line in engine.createLabelData(True, 1, 1).getData():
            start, end, name = line.split()
            if labels and name == "pau" and labels[-1].endswith(" pau"):
                labels[-1] = f"{labels[-1].split()[0]} {round(int(end) + offset)} pau"
            else:
                labels.append(f"{round(int(start) + offset)} {round(int(end) + offset)} {name}")
    assert labels == whole_labels

    engine.clearScore()
    assert engine.loadScoreFromMusicXML(str(tmp_path / "sinsy.musicxml"))
    rate, _ = sinsy_worker._sing(engine, str(tmp_path / "sinsy.musicxml"), tmp_path)
    samples = np.load(tmp_path / "samples.npy")
    assert rate == 48000 and len(samples) == len(whole)
    assert not list(tmp_path.glob("section*")) and not (tmp_path / "samples.f32").exists()
    timing = Timing.read(
        run(sing_plugins().registry, tmp_path / "run", ["timing"], inputs={"score": score}).files[
            "timing"
        ]
    )
    # Sinsy sings a note a little differently in a shorter score (it sees the whole score it
    # is given; sections this short are the worst case): once corrected, as the sing stage
    # does, both are as much in tune.
    tune = [
        check_intonation(correct_pitch(s, rate, timing).samples, rate, timing).in_tune_share
        for s in (samples, np.asarray(whole, np.float32) / 32768.0)
    ]
    assert abs(tune[0] - tune[1]) < 0.05 and min(tune) > 0.7, tune
