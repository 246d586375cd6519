"""The mix stage: real Sinsy vocals over the real backing band, at -14 LUFS under -1 dBTP."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile

from acgmake.audio.loudness import integrated_loudness, limit_true_peak, master, true_peak_db
from acgmake.audio.mixing import vocal_chain
from acgmake.errors import UserError
from acgmake.pipeline import run
from acgmake.plugins import Plugins
from audio_inputs import write_score

RATE = 48000


def plugins() -> Plugins:
    loaded = Plugins()
    loaded.load(
        builtins=(
            "acgmake.stages.compose",
            "acgmake.stages.sing",
            "acgmake.stages.accompany",
            "acgmake.stages.mix",
        ),
        entry_points=False,
    )
    return loaded


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """A ten-second score sung, accompanied and mixed once, with the stages' defaults."""
    folder = tmp_path_factory.mktemp("mix")
    score = write_score(folder / "score.musicxml")
    return run(plugins().registry, folder / "run", ["song"], inputs={"score": score}, seed=1)


def test_the_song_is_at_minus_14_lufs_with_true_peaks_under_minus_1_dbtp(mixed):
    song, rate = soundfile.read(mixed.files["song"])
    info = soundfile.info(str(mixed.files["song"]))
    assert (info.samplerate, info.channels, info.subtype) == (48000, 2, "PCM_24")
    # Measured again here, on the file as written (24-bit), independently of the stage.
    assert integrated_loudness(song, rate) == pytest.approx(-14.0, abs=0.15)
    assert true_peak_db(song, rate) <= -1.0 + 0.02
    report = json.loads(mixed.files["mix_report"].read_text("utf-8"))
    assert report["loudness_lufs"] == pytest.approx(-14.0, abs=0.1)
    assert report["true_peak_dbtp"] <= -1.0
    assert report["vocals_lufs"] - report["backing_lufs"] == pytest.approx(2.0, abs=0.01)


def test_the_stems_line_up_and_add_up_to_the_song(mixed):
    vocals, _ = soundfile.read(mixed.files["vocals_stem"])
    backing, _ = soundfile.read(mixed.files["backing_stem"])
    song, _ = soundfile.read(mixed.files["song"])
    assert vocals.shape == backing.shape == song.shape
    # The stems went through the master's gain and its limiter as the song did: they add up
    # to it (to the 24-bit song's last bit).
    assert np.abs(vocals + backing - song).max() < 1e-5
    # The vocals sit 2 LU above the band, as asked.
    level = integrated_loudness(vocals, RATE) - integrated_loudness(backing, RATE)
    assert level == pytest.approx(2.0, abs=0.3)
    # The backing stem starts with the band's intro bar; the vocals come in with the singing.
    intro = slice(0, int(1.8 * RATE))
    assert np.abs(backing[intro]).max() > 0.05 > np.abs(vocals[intro]).max()


def test_the_stems_add_up_to_the_song_where_the_limiter_works_hard(mixed, tmp_path):
    """Mastered loud (-8 LUFS), the limiter turns the peaks well down: the stems, limited as
    the song was, still add up to it (before, they were the song before its limiter)."""
    result = run(plugins().registry, tmp_path / "loud", ["song"],
                 inputs={"vocals": mixed.files["vocals"], "backing": mixed.files["backing"]},
                 only=["mix"], params={"mix": {"loudness": -8.0}})  # fmt: skip
    report = json.loads(result.files["mix_report"].read_text("utf-8"))
    assert report["limiter_reduction_db"] > 3.0
    vocals, _ = soundfile.read(result.files["vocals_stem"])
    backing, _ = soundfile.read(result.files["backing_stem"])
    song, _ = soundfile.read(result.files["song"])
    assert np.abs(vocals + backing - song).max() < 1e-5


def test_the_vocal_chain_evens_the_voice_and_adds_a_room(mixed):
    raw, rate = soundfile.read(mixed.files["vocals"])
    processed = vocal_chain(raw, rate, reverb=0.3)
    dry = vocal_chain(raw, rate, reverb=0.0)
    assert processed.shape == (len(raw), 2)
    assert -27.0 < integrated_loudness(dry, rate) < -19.0  # -20 in, less the compression

    # Compression: a lower peak-to-loudness ratio than the raw voice brought to the same level.
    def crest(x):
        return true_peak_db(x, rate) - integrated_loudness(x, rate)

    assert crest(dry) < crest(raw) - 1.0
    # Reverb: the voice rings on after the last sung note ends (at 8 s) and is decorrelated.
    after = slice(int(8.15 * rate), int(8.6 * rate))
    assert np.sqrt(np.mean(processed[after] ** 2)) > 3 * np.sqrt(np.mean(dry[after] ** 2))
    assert not np.allclose(processed[:, 0], processed[:, 1])


def test_mix_alone_on_the_same_files_with_another_target(mixed, tmp_path):
    result = run(
        plugins().registry,
        tmp_path / "run",
        ["song"],
        inputs={"vocals": mixed.files["vocals"], "backing": mixed.files["backing"]},
        only=["mix"],
        params={"mix": {"loudness": -18.0, "true_peak": -2.0, "vocal_level": 0.0}},
    )
    song, rate = soundfile.read(result.files["song"])
    assert integrated_loudness(song, rate) == pytest.approx(-18.0, abs=0.15)
    assert true_peak_db(song, rate) <= -2.0 + 0.02
    report = json.loads(result.files["mix_report"].read_text("utf-8"))
    assert report["vocals_lufs"] == pytest.approx(report["backing_lufs"], abs=0.01)


def test_a_peak_between_samples_is_caught():
    # A sine at a quarter of the rate, 45 degrees off: every sample is at 0.707 of its peak, so
    # a sample-peak limiter sees -3 dB where the converter will play 0 dB.
    t = np.arange(RATE)
    tone = np.sin(np.pi / 2 * t + np.pi / 4)
    assert np.abs(tone).max() == pytest.approx(10 ** (-3 / 20), abs=0.01)
    assert true_peak_db(tone, RATE) == pytest.approx(0.0, abs=0.2)
    limited, reduction_db = limit_true_peak(tone, RATE, -1.0)
    assert true_peak_db(limited, RATE) <= -1.0 + 0.01
    assert reduction_db == pytest.approx(1.0, abs=0.2)


def test_master_reaches_a_loud_target_on_a_peaky_signal():
    rng = np.random.default_rng(0)
    signal = 0.05 * rng.standard_normal((3 * RATE, 2))
    signal[RATE : RATE + 200] *= 20  # a drum-like spike far above the rest
    done = master(signal, RATE, loudness_lufs=-10.0, true_peak_dbtp=-1.0)
    assert done.loudness_lufs == pytest.approx(-10.0, abs=0.1)
    assert done.true_peak_dbtp <= -1.0 + 0.01
    assert done.limiter_reduction_db > 3.0


def test_silence_cannot_be_mixed(tmp_path):
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(RATE), RATE)
    with pytest.raises(UserError, match="both silent"):
        run(plugins().registry, tmp_path / "run", ["song"],
            inputs={"vocals": silent, "backing": silent}, only=["mix"])  # fmt: skip
