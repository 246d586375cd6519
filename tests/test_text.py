"""Lyrics text -> phrases of morae (kana, kanji, numbers, furigana, English, romaji) with
their pitch accent, and the checks on a lyrics file."""

from __future__ import annotations

from pathlib import Path

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
        ("ゆめを\nみた\n사랑해\n", "line 3 has characters acgmake cannot sing (사랑해)"),
        ("Я люблю тебя", "line 1 has characters acgmake cannot sing (Я, люблю, тебя)"),
        ("αβγ の うた", "line 1 has characters acgmake cannot sing (αβγ)"),
    ],
)
def test_text_that_cannot_be_read_names_its_line(text, message):
    with pytest.raises(UserError) as caught:
        parse_lyrics(text)
    assert caught.value.message.startswith(message)
    assert "\n" not in caught.value.message


def test_every_line_with_a_problem_is_counted_in_the_message():
    with pytest.raises(UserError, match=r"line 1 has .* \(사랑\).*\(lines 2, 4 too\)"):
        parse_lyrics("사랑\n해\nうみ\nпесня\n")


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
        ("ゆめ\n\n꿈\n".encode(), "line 3 has characters acgmake cannot sing (꿈)"),
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
    examples = sorted((Path(__file__).parent.parent / "examples").glob("*.txt"))
    assert len(examples) >= 2
    for example in examples:
        phrases = read_lyrics(example)
        assert len({p.section for p in phrases}) >= 2  # each has a verse and a chorus


# -- reading any script ------------------------------------------------------------------


def sung(line: str) -> str:
    """The morae of one lyric line, joined, as parse_lyrics reads them."""
    (phrase,) = parse_lyrics(line)
    return "".join(phrase.morae)


@pytest.mark.parametrize(
    ("line", "morae"),
    [
        # kanji from the dictionary; particles は and へ sung わ and え; を as written (Sinsy
        # reads を as o); a long o or u the dictionary knows is held with ー, え-い is sung.
        ("夜空に輝く星を", "よぞらにかがやくほしを"),
        ("私は東京へ行きます", "わたしわとーきょーえいきます"),
        ("今日は晴れ", "きょーわはれ"),
        ("先生", "せんせい"),
        ("こんにちは", "こんにちわ"),  # は in a set phrase too
        ("へいわ", "へいわ"),  # not a particle
        ("明日の空へ羽ばたけ", "あしたのそらえはばたけ"),
        # kana as written: small kana, っ, ん, ー, 〜, half-width, katakana
        ("きゃっと ティーンエイジャー", "きゃっとティーンエイジャー"),
        ("かえるのうたが", "かえるのうたが"),  # not the dictionary's かえる|のう|た
        ("とどくよ〜", "とどくよー"),
        ("ｶﾞｯｺｳ", "ガッコウ"),
        # numbers
        ("100円で3つ", "ひゃくえんでみっつ"),
        ("2025年の夏", "にせんにじゅーごねんのなつ"),
        # furigana, in ASCII or full-width brackets, win over the dictionary
        ("明日(あす)の星（ほし）", "あすのほし"),
        ("LOVE(らぶ)ソング", "らぶソング"),
        # English, romaji, acronyms
        ("I love you forever", "アイラブユーフォーエバー"),
        ("shining star", "シャイニングスター"),
        ("DJ", "ディージェイ"),  # in the dictionary
        ("QZX", "キューゼットエックス"),  # an acronym it does not know: spelled out
        ("kimi ga suki", "きみがすき"),
        ("go go go", "ゴーゴーゴー"),
        # punctuation, emoji, markup are not sung
        ("[chorus] 君と♪ 🎵ずっと！", "きみとずっと"),
    ],
)
def test_a_line_in_any_script_is_read_as_it_is_sung(line, morae):
    assert sung(line) == morae


def test_every_mora_is_one_sinsy_can_sing():
    text = "夜空に輝く星を 私は東京へ I love you 100円 きゃっと kimi ga suki ヴァイオリン"
    (phrase,) = parse_lyrics(text)
    assert all(to_hiragana(m) in SINSY_KANA or m == LONG_VOWEL for m in phrase.morae)
    assert "を o" in (sinsy_table_text()), "Sinsy sings the particle を as o"


def sinsy_table_text() -> str:
    from acgmake.voice.sinsy import sinsy_files

    return (sinsy_files().dictionary / "japanese.utf_8.table").read_text("utf-8")


def test_pitch_accent_comes_from_the_dictionary():
    # 雨 (a-me, high-low) and 飴 (a-me, low-high) are read alike and accented apart.
    rain, candy = parse_lyrics("雨が\n飴が")
    assert rain.morae == candy.morae == ("あ", "め", "が")
    assert rain.accent == "HLL"
    assert candy.accent == "LHH"
    (phrase,) = parse_lyrics("夜空に輝く星")
    assert len(phrase.accent) == len(phrase.morae)
    assert phrase.starts == (0, 4, 8)  # よぞらに | かがやく | ほし


def test_section_labels_name_the_sections():
    phrases = parse_lyrics("[verse]\nかえる\nうた\n[chorus]\nけろけろ\n\nまた\n\n【サビ】\nけろ\n")
    assert [(p.section, p.label) for p in phrases] == [
        (0, "verse"),
        (0, "verse"),
        (1, "chorus"),
        (2, ""),
        (3, "サビ"),
    ]


def test_reading_a_song_is_fast():
    import time

    text = (Path(__file__).parent.parent / "examples" / "hoshi.txt").read_text("utf-8")
    parse_lyrics(text)  # the dictionary loads once
    started = time.perf_counter()
    parse_lyrics(text.replace("ほし", "星") + "\n東京の夜に 100回 I love you\n")
    assert time.perf_counter() - started < 1.0


def test_a_note_holding_a_vowel_or_a_closure_is_singable():
    from acgmake.text.kana import is_singable

    assert is_singable("ー") and is_singable("っ") and is_singable("きゃ")
    assert not is_singable("夢") and not is_singable("") and not is_singable("love")
