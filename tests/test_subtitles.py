"""Sections, title and credits through the score and timing.json; the subtitles stage; and
lip sync measured on real Sinsy singing."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from acgmake.music.musicxml import read_score
from acgmake.pipeline import run
from acgmake.plugins import Plugins
from acgmake.video.lipsync import lipsync_offsets, mouth_openness
from acgmake.video.subtitles import ass_time, cues, karaoke_text, srt_time
from acgmake.voice import sinsy
from acgmake.voice.labels import Line, Mora, Timing, read_lab

LYRICS = "[verse]\nかえるの うたが\nきこえて くるよ\n\n[chorus]\nけろけろ けろけろ\n"


@pytest.fixture(scope="module")
def sung(tmp_path_factory):
    """The lyrics composed, sung by Sinsy and written as subtitles, once."""
    folder = tmp_path_factory.mktemp("subtitles")
    lyrics = folder / "frog.txt"
    lyrics.write_text(LYRICS, encoding="utf-8")
    plugins = Plugins()
    plugins.load(
        builtins=("acgmake.stages.compose", "acgmake.stages.sing", "acgmake.stages.subtitles"),
        entry_points=False,
    )
    return run(
        plugins.registry,
        folder / "run",
        ["subtitles_ass", "subtitles_srt"],
        inputs={"lyrics": lyrics},
        seed=1,
    )


def test_the_sections_title_and_credits_reach_timing_json(sung):
    score = read_score(sung.files["score"])
    assert [role for _, role in score.sections] == ["verse", "chorus"]
    timing = Timing.read(sung.files["timing"])
    assert [line.section for line in timing.lines] == ["verse", "verse", "chorus"]
    assert timing.title == score.title == "かえるの うたが"
    assert timing.credits[0] == sinsy.VOICE_CREDIT and sinsy.SINSY_CREDIT in timing.credits
    # MuseScore shows the sections as rehearsal marks.
    assert "<rehearsal" in sung.files["score"].read_text("utf-8")


def _karaoke_morae(ass: str) -> list[tuple[float, float, str]]:
    """(start s, end s, text) of every mora in an ASS karaoke script, from its \\k tags."""
    morae = []
    for event in re.findall(r"^Dialogue: 0,([\d:.]+),[\d:.]+,Karaoke,,0,0,0,,(.*)$", ass, re.M):
        hours, minutes, seconds = event[0].split(":")
        at = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        for length, text in re.findall(r"\{\\k(\d+)\}([^{]*)", event[1]):
            if text:
                morae.append((round(at, 2), round(at + int(length) / 100, 2), text))
            at += int(length) / 100
    return morae


def test_the_karaoke_subtitles_time_each_mora_as_the_score_does(sung):
    score = read_score(sung.files["score"])
    ass = sung.files["subtitles_ass"].read_text("utf-8-sig")
    assert "[Script Info]" in ass and "Style: Karaoke,IPAexGothic," in ass
    morae = _karaoke_morae(ass)
    notes = [note for note in score.sung_notes() if note.lyric]
    # Kana lyrics light up a mora at a time; the space after a word goes with its last mora.
    assert [text.strip() for _, _, text in morae] == [note.lyric for note in notes]
    assert [text for _, _, text in morae][3] == "の "
    seconds = 60.0 / score.tempo_bpm  # the score starts with a rest: Sinsy adds no padding
    for (start, end, text), note in zip(morae, notes, strict=True):
        assert start == pytest.approx(note.offset * seconds, abs=0.011), text
        assert end == pytest.approx((note.offset + note.quarter_length) * seconds, abs=0.011)
    # Each mora lights up before its vowel is heard and stays lit while it is sung.
    vowels = [p for p in read_lab(sung.files["phonemes"]) if p.is_vowel]
    assert len(vowels) == len(morae)
    for (start, end, _), vowel in zip(morae, vowels, strict=True):
        assert start - 0.011 <= vowel.start_s < vowel.end_s <= end + 0.011


def test_the_srt_has_a_cue_per_line_around_its_singing(sung):
    timing = Timing.read(sung.files["timing"])
    srt = sung.files["subtitles_srt"].read_text("utf-8-sig")
    blocks = srt.strip().split("\n\n")
    assert len(blocks) == len(timing.lines) == 3
    previous_end = 0.0
    written = ["かえるの うたが", "きこえて くるよ", "けろけろ けろけろ"]  # as in LYRICS
    for block, line, shown in zip(blocks, timing.lines, written, strict=True):
        number, times, text = block.split("\n")
        start, end = (_srt_seconds(t) for t in times.split(" --> "))
        assert text == shown and line.text == shown.replace(" ", "")
        assert previous_end <= start <= line.start_s and line.end_s <= end
        previous_end = end


def test_ffmpeg_reads_both_subtitle_files(sung):
    """The files are well-formed for players and editors: ffmpeg's ASS and SubRip demuxers
    read every line (and drop the karaoke tags converting one to the other)."""
    import subprocess

    from acgmake.video.encode import ffmpeg_exe

    for kind in ("subtitles_ass", "subtitles_srt"):
        converted = subprocess.run(
            [ffmpeg_exe(), "-v", "error", "-i", str(sung.files[kind]), "-f", "srt", "-"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        texts = re.findall(r"^(?:<font[^>]*>)?([^<\n\d][^<\n]*)", converted, re.M)
        assert texts == ["かえるの うたが", "きこえて くるよ", "けろけろ けろけろ"], kind


def _srt_seconds(text: str) -> float:
    hours, minutes, rest = text.split(":")
    seconds, milliseconds = rest.split(",")
    return int(hours) * 3600 + int(minutes) * 60 + int(seconds) + int(milliseconds) / 1000


@pytest.mark.parametrize("fps", [24, 30])
def test_lip_sync_on_real_singing_is_within_half_a_frame(sung, fps):
    phonemes = read_lab(sung.files["phonemes"])
    timing = Timing.read(sung.files["timing"])
    openness = mouth_openness(phonemes, fps, int(np.ceil(timing.duration_s * fps)))
    offsets = lipsync_offsets(phonemes, openness, fps)
    vowels = sum(p.is_vowel for p in phonemes)
    assert len(offsets) >= vowels // 2  # most vowels open the mouth after a consonant
    assert np.abs(offsets).max() <= 0.5 / fps + 1e-4, offsets * fps


def test_times_are_written_as_ass_and_srt_write_them():
    assert ass_time(0) == "0:00:00.00" and ass_time(367_512) == "1:01:15.12"
    assert srt_time(0.0) == "00:00:00,000" and srt_time(3675.1234) == "01:01:15,123"


def test_karaoke_tags_do_not_drift_and_braces_stay_letters():
    # Morae a third of a second long: rounding each length alone would drift 0.3 cs a mora.
    morae = [Mora("{", 1 + i / 3, 1 + (i + 1) / 3, 60) for i in range(30)]
    line = Line("{" * 30, morae[0].start_s, morae[-1].end_s, morae)
    cue = cues(Timing(120.0, 4, 0.0, 12.0, [line]))[0]
    assert cue.start_s == 0.0 and cue.end_s == pytest.approx(11.5)
    text = karaoke_text(cue)
    assert "{" not in re.sub(r"\{\\k\d+\}", "", text)
    lengths = [int(n) for n in re.findall(r"\\k(\d+)", text)]
    assert lengths[0] == 100 and sum(lengths) == 1100


def test_a_timing_file_from_before_sections_still_reads(tmp_path):
    old = {
        "tempo_bpm": 120,
        "beats_per_bar": 4,
        "first_beat_s": 0.0,
        "duration_s": 3.0,
        "lines": [
            {
                "text": "か",
                "start_s": 1.0,
                "end_s": 1.5,
                "morae": [{"text": "か", "start_s": 1.0, "end_s": 1.5, "midi": 67}],
            }
        ],  # fmt: skip
    }
    path = tmp_path / "timing.json"
    path.write_text(json.dumps(old), encoding="utf-8")
    timing = Timing.read(path)
    assert (timing.title, timing.credits, timing.lines[0].section) == ("", [], "")
    timing.title, timing.credits, timing.lines[0].section = "歌", ["Voice: v"], "chorus"
    timing.write(path)
    again = Timing.read(path)
    assert (again.title, again.credits, again.lines[0].section) == ("歌", ["Voice: v"], "chorus")
