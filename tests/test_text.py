"""Lyrics text -> phrases of morae, and the checks on a lyrics file."""

from __future__ import annotations

import pytest

from acgmake.errors import UserError
from acgmake.text.kana import LONG_VOWEL, SINSY_KANA, parse_lyrics, split_morae
from acgmake.text.lyrics import MAX_LYRICS_BYTES, MAX_MORAE, read_lyrics


def sinsy_table_spellings() -> set[str]:
    from acgmake.voice.sinsy import sinsy_files

    table = sinsy_files().dictionary / "japanese.utf_8.table"
    return {line.split()[0] for line in table.read_text("utf-8").splitlines() if line.strip()}


def to_hiragana(text: str) -> str:
    return "".join(chr(ord(c) - 0x60) if 0x30A1 <= ord(c) <= 0x30F6 else c for c in text)


def test_the_kana_list_is_exactly_the_hiragana_of_sinsys_table():
    table = sinsy_table_spellings()
    hiragana = {k for k in table if all(0x3041 <= ord(c) <= 0x309F for c in k)}
    assert SINSY_KANA == hiragana
    # The table spells everything in katakana too, so katakana morae need no conversion.
    assert {"".join(chr(ord(c) + 0x60) for c in k) for k in SINSY_KANA} <= table


@pytest.mark.parametrize(
    ("line", "morae"),
    [
        ("かえるのうた", ["か", "え", "る", "の", "う", "た"]),
        ("きゃっと", ["きゃ", "っ", "と"]),
        ("しゃしんを とった", ["しゃ", "し", "ん", "を", "と", "っ", "た"]),
        ("ふぁいと", ["ふぁ", "い", "と"]),
        ("ティーンエイジャー", ["ティ", "ー", "ン", "エ", "イ", "ジャ", "ー"]),
        ("ヴァイオリン", ["ヴァ", "イ", "オ", "リ", "ン"]),
        ("ｶﾞｯｺｳ", ["ガ", "ッ", "コ", "ウ"]),  # half-width katakana
        ("ら〜ら～", ["ら", "ー", "ら", "ー"]),
        ("ねぇ", ["ね", "ぇ"]),  # no ねぇ in the table: two morae, the second a vowel
        ("ぢゃあ", ["じゃ", "あ"]),  # respelled as the table spells the same sound
        ("こゝろ いすゞ", ["こ", "こ", "ろ", "い", "す", "ず"]),
    ],
)
def test_a_line_splits_into_morae_sinsy_can_read(line, morae):
    assert split_morae(line) == morae
    assert all(to_hiragana(m) in SINSY_KANA or m == LONG_VOWEL for m in morae)


def test_a_long_vowel_or_closure_with_nothing_before_it_is_not_a_mora():
    assert split_morae("ーっあっっー") == ["あ", "っ"]


def test_punctuation_spaces_emoji_and_labels_are_not_sung():
    assert split_morae("[chorus] 【サビ】 ね、ねぇ！ ♪🎵 (らら)") == ["ね", "ね", "ぇ", "ら", "ら"]


def test_lines_are_phrases_and_blank_lines_separate_sections():
    text = "\ufeffかえるの\r\nうたが\r\n\r\n[chorus]\r\nきこえて\r\n♪♪\r\n\r\n\r\nくるよ\r\n"
    phrases = parse_lyrics(text)
    assert [(p.line, p.section, "".join(p.morae)) for p in phrases] == [
        (1, 0, "かえるの"),
        (2, 0, "うたが"),
        (5, 1, "きこえて"),
        (9, 2, "くるよ"),
    ]
    assert phrases[2].text == "きこえて"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ゆめを\nみた\n夢を見た\n", "line 3 has kanji (夢, 見); write the kanji in kana"),
        ("I love you", "line 1 has Latin letters (I, love, you)"),
        ("ＡＢＣの うた", "line 1 has Latin letters (ABC)"),
        ("いち\n2かい", "line 2 has digits (2)"),
        ("사랑해", "line 1 has characters acgmake cannot sing (사랑해)"),
    ],
)
def test_text_that_cannot_be_read_names_its_line(text, message):
    with pytest.raises(UserError) as caught:
        parse_lyrics(text)
    assert caught.value.message.startswith(message)
    assert "\n" not in caught.value.message


def test_every_line_with_a_problem_is_counted_in_the_message():
    with pytest.raises(UserError, match=r"line 1 has kanji \(空\).*\(lines 2, 4 too\)"):
        parse_lyrics("空\n海\nうみ\n山\n")


def test_lyrics_with_nothing_singable_are_refused():
    with pytest.raises(UserError, match="nothing to sing"):
        parse_lyrics("[intro]\n♪ ♪ ♪\n、。！？\n")


def write(tmp_path, data: bytes):
    path = tmp_path / "lyrics.txt"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "lyrics.txt is empty"),
        (b" \n\r\n\xe3\x80\x80\n", "lyrics.txt is empty"),  # spaces, ideographic space
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "lyrics.txt looks like a binary file"),
        ("かえる".encode("shift_jis"), "lyrics.txt is not UTF-8 text (byte 0x82 at position 0)"),
        (
            b"a" * (MAX_LYRICS_BYTES + 1),
            "lyrics.txt is 65,537 bytes; lyrics files are limited to 64 KB",
        ),
        (("か" * (MAX_MORAE + 1)).encode(), f"lyrics.txt has {MAX_MORAE + 1} morae to sing"),
        ("[verse]\n♪\n".encode(), "the lyrics have nothing to sing"),
        ("ゆめ\n\n夢\n".encode(), "line 3 has kanji (夢)"),
    ],
)
def test_a_bad_lyrics_file_gets_one_line_saying_what_to_do(tmp_path, data, message):
    with pytest.raises(UserError) as caught:
        read_lyrics(write(tmp_path, data))
    assert caught.value.message.startswith(message)
    assert "\n" not in caught.value.message


def test_a_missing_lyrics_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="cannot read the lyrics"):
        read_lyrics(tmp_path / "nope.txt")


def test_the_example_lyrics_read(tmp_path):
    from pathlib import Path

    examples = sorted((Path(__file__).parent.parent / "examples").glob("*.txt"))
    assert len(examples) >= 2
    for example in examples:
        phrases = read_lyrics(example)
        assert len({p.section for p in phrases}) >= 2  # each has a verse and a chorus
