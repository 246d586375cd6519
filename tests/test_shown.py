"""The lyrics as written on screen: each sung mora tied to the characters it is sung from."""

from __future__ import annotations

import json

import numpy as np
import pytest

from acgmake.errors import UserError
from acgmake.text.lyrics import parse_lyrics
from acgmake.text.reading import read_line
from acgmake.text.shown import ShownLine, as_written, read_shown, ruby, shown_line, write_shown
from acgmake.video.subtitles import Cue, karaoke_text, srt_text
from acgmake.video.text import LyricRenderer
from acgmake.voice.labels import Line, Mora, Timing


def _sung_from(line: str) -> list[tuple[str, str]]:
    """(mora, the characters of ``line`` it is sung from) for each mora of ``line``."""
    reading = read_line(line)
    assert len(reading.spans) == len(reading.morae)
    return [
        (mora, line[start:stop])
        for mora, (start, stop) in zip(reading.morae, reading.spans, strict=True)
    ]


def test_kana_are_their_own_characters_and_spaces_are_kept_out():
    assert _sung_from("かえるの うた") == [
        ("か", "か"), ("え", "え"), ("る", "る"), ("の", "の"), ("う", "う"), ("た", "た"),
    ]  # fmt: skip
    # A small kana joins the mora before it; a particle は is sung わ from its は.
    assert _sung_from("きょうは") == [("きょ", "きょ"), ("う", "う"), ("わ", "は")]


def test_a_kanji_word_lights_over_all_its_morae_and_okurigana_stay_their_own():
    assert _sung_from("星が光る") == [
        ("ほ", "星"), ("し", "星"), ("が", "が"), ("ひ", "光"), ("か", "光"), ("る", "る"),
    ]  # fmt: skip
    assert _sung_from("食べる")[0] == ("た", "食")
    assert [chars for _, chars in _sung_from("食べる")[1:]] == ["べ", "る"]


def test_furigana_set_the_reading_and_are_hidden_from_the_screen():
    line = "星(ほし)が 夢（ゆめ）"
    reading = read_line(line)
    assert _sung_from(line)[:3] == [("ほ", "星"), ("し", "星"), ("が", "が")]
    assert _sung_from(line)[3:] == [("ゆ", "夢"), ("め", "夢")]
    assert [line[s:e] for s, e in reading.hidden] == ["(ほし)", "（ゆめ）"]
    phrase = parse_lyrics(line)[0]
    shown = shown_line(phrase)
    assert shown.text == "星が 夢"
    assert [shown.text[s:e] for s, e in shown.spans] == ["星", "星", "が", "夢", "夢"]


def test_english_words_numbers_and_full_width_letters_map_to_what_was_written():
    sung = _sung_from("I love 東京")
    assert [chars for _, chars in sung] == [
        "I",
        "I",
        "love",
        "love",
        "東京",
        "東京",
        "東京",
        "東京",
    ]
    assert {chars for _, chars in _sung_from("2024年")} == {"2024", "年"}
    assert {chars for _, chars in _sung_from("ＬＯＶＥ")} == {"ＬＯＶＥ"}
    assert [chars for _, chars in _sung_from("ｶﾞﾝﾊﾞﾚ")] == ["ｶﾞ", "ﾝ", "ﾊﾞ", "ﾚ"]


def test_romaji_light_up_word_by_word():
    assert [chars for _, chars in _sung_from("yume wo miru")] == [
        "yume", "yume", "wo", "miru", "miru",
    ]  # fmt: skip


def test_labels_and_surrounding_spaces_are_not_shown():
    phrase = parse_lyrics("  [chorus] 夢を 見た！  ")[0]
    shown = shown_line(phrase)
    assert shown.text == "夢を 見た！"
    assert [shown.text[s:e] for s, e in shown.spans] == ["夢", "夢", "を", "見", "た"]


def _timing(shown: list[ShownLine], breaks: set[int]) -> Timing:
    """A timing singing the morae of ``shown`` 0.25 s each, a new line after each index in
    ``breaks`` (as a score's rests split them)."""
    lines, morae, at = [], [], 0.0
    everything = [mora for line in shown for mora in line.morae]
    for index, text in enumerate(everything):
        morae.append(Mora(text, at, at + 0.25, 60))
        at += 0.25
        if index in breaks or index == len(everything) - 1:
            text = "".join(m.text for m in morae)
            lines.append(Line(text, morae[0].start_s, morae[-1].end_s, morae))
            morae, at = [], at + 0.5
    return Timing(120.0, 4, 0.0, at + 1.0, lines)


def test_the_timing_shows_the_written_lines_cut_where_the_singing_rests():
    shown = [shown_line(p) for p in parse_lyrics("星(ほし)が きらめく 夜\n君に会いたい")]
    sung = _timing(shown, {2, 8})  # ほしが | きらめくよる | きみにあいたい
    written = as_written(sung, shown)
    assert [line.text for line in written.lines] == ["星が", "きらめく 夜", "君に会いたい"]
    first = written.lines[0]
    assert first.chars == [(0, 1), (0, 1), (1, 2)]
    assert ruby(first) == [(0, 1, "ほし")]
    assert ruby(written.lines[2]) == [(0, 1, "きみ"), (2, 3, "あ")]
    # The ASS lights 星 over its two morae, then が; the SRT shows the lines as written.
    cue = Cue(first.start_s, first.end_s + 0.5, first)
    assert karaoke_text(cue) == "{\\k50}星{\\k25}が"
    assert srt_text(written).split("\n")[2] == "星が"
    # Sung kana are kept as the timing's morae.
    assert [m.text for m in first.morae] == ["ほ", "し", "が"]
    # A rest inside a word (よ | る): the word shows on both sides; a line that runs into
    # the next written line shows both parts.
    split = as_written(_timing(shown, {2, 7}), shown)
    assert [line.text for line in split.lines] == ["星が", "きらめく 夜", "夜 君に会いたい"]


def test_a_timing_of_other_morae_keeps_its_kana():
    shown = [shown_line(p) for p in parse_lyrics("星が光る")]
    other = [ShownLine("ほしがひかる", ("ほ", "し", "が", "ひ", "か", "ら"), ((0, 1),) * 6)]
    sung = _timing(other, set())
    assert as_written(sung, shown) is sung


def test_the_shown_lyrics_file_reads_back_and_refuses_a_bad_one(tmp_path):
    path = tmp_path / "lyrics_shown.json"
    write_shown(parse_lyrics("星が 光る\nI love you"), path)
    lines = read_shown(path)
    assert [line.text for line in lines] == ["星が 光る", "I love you"]
    assert lines[0].spans[:3] == ((0, 1), (0, 1), (1, 2))
    data = json.loads(path.read_text("utf-8"))
    data["lines"][0]["spans"][0] = [0, 99]  # past the end of the line
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(UserError, match=r"lines\[0\]\.spans\[0\]\[1\]"):
        read_shown(path)
    path.write_text('{"lines": [{"text": "あ", "morae": ["あ"], "spans": []}]}', encoding="utf-8")
    with pytest.raises(UserError, match="1 morae but 0 spans"):
        read_shown(path)


def test_the_karaoke_line_lights_a_kanji_over_its_morae_and_draws_furigana_above():
    renderer = LyricRenderer(1280, 48)
    morae = ("ほ", "し", "が")
    chars = ((0, 1), (0, 1), (1, 2))
    plain = renderer.line("星が", morae, chars)
    with_ruby = renderer.line("星が", morae, chars, ((0, 1, "ほし"),))
    edges = plain.mora_edges_px
    # 星 is one character: ほ lights its left half, し its right, が the next character.
    assert edges[0] < edges[1] < edges[2] < edges[3]
    assert edges[1] - edges[0] == pytest.approx(edges[2] - edges[1], abs=0.01)
    # The furigana add height above the letters (the letters keep their place).
    assert with_ruby.ruby_px > 10
    assert with_ruby.plain.height == plain.plain.height + with_ruby.ruby_px
    # Ink above the letters only where the reading is: over 星, not over が.
    ink = 255 - with_ruby.plain.clear[: with_ruby.ruby_px, :, 0].astype(int)
    columns = np.flatnonzero(ink.max(axis=0) > 128)
    assert columns.size and columns.max() < edges[2] + 4
