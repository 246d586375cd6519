"""Latin letters in lyrics -> katakana, the way creators let a Japanese voice sing English.

A line whose Latin words all spell Japanese syllables (``kimi ga suki``) is romaji and is
spelled in kana letter for letter. Otherwise each word is English and becomes the katakana a
Japanese singer would sing, looked up in this order:

1. a short table of the words lyrics use most, spelled as sung (``I`` アイ, ``the`` ザ,
   ``yeah`` イェー), which also covers the contractions (``don't`` ドント);
2. OpenJTalk's dictionary, which knows a few thousand loanwords (``dream`` ドリーム);
3. a word in capitals of up to 4 letters is an acronym and is spelled out (``DJ`` ディージェー);
4. e2k's character-to-katakana model for everything else (``shining`` シャイニング).

Everything is offline: the dictionary and the model ship inside the packages.
"""

from __future__ import annotations

import functools
import re
import unicodedata

#: Words whose usual sung katakana differs from what the dictionary or the model would give
#: (function words, interjections) or that lyrics use so often they should never vary.
COMMON_WORDS = {
    "a": "ア",
    "all": "オール",
    "an": "アン",
    "and": "アンド",
    "are": "アー",
    "at": "アット",
    "baby": "ベイビー",
    "be": "ビー",
    "but": "バット",
    "by": "バイ",
    "can": "キャン",
    "can't": "キャント",
    "do": "ドゥー",
    "don't": "ドント",
    "every": "エブリ",
    "everyday": "エブリデイ",
    "everything": "エブリシング",
    "for": "フォー",
    "forever": "フォーエバー",
    "go": "ゴー",
    "goodbye": "グッバイ",
    "he": "ヒー",
    "hello": "ハロー",
    "her": "ハー",
    "hey": "ヘイ",
    "i": "アイ",
    "i'll": "アイル",
    "i'm": "アイム",
    "in": "イン",
    "is": "イズ",
    "it": "イット",
    "it's": "イッツ",
    "la": "ラ",
    "let's": "レッツ",
    "me": "ミー",
    "my": "マイ",
    "na": "ナ",
    "never": "ネバー",
    "no": "ノー",
    "now": "ナウ",
    "of": "オブ",
    "oh": "オー",
    "on": "オン",
    "one": "ワン",
    "or": "オア",
    "she": "シー",
    "so": "ソー",
    "that": "ザット",
    "that's": "ザッツ",
    "the": "ザ",
    "they": "ゼイ",
    "this": "ディス",
    "to": "トゥー",
    "together": "トゥギャザー",
    "tonight": "トゥナイト",
    "up": "アップ",
    "we": "ウィー",
    "with": "ウィズ",
    "won't": "ウォント",
    "yeah": "イェー",
    "yes": "イエス",
    "you": "ユー",
    "you're": "ユア",
    "your": "ユア",
}

#: Letter names, for acronyms (``NHK`` エヌエイチケー).
LETTER_NAMES = dict(
    zip(
        "abcdefghijklmnopqrstuvwxyz",
        "エー ビー シー ディー イー エフ ジー エイチ アイ ジェー ケー エル エム エヌ オー ピー "
        "キュー アール エス ティー ユー ブイ ダブリュー エックス ワイ ゼット".split(),
        strict=True,
    )
)

#: A Latin word in lyrics: letters with inner apostrophes (don't) or hyphens (la-la).
LATIN_WORD = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*")

# Romaji: Hepburn, Kunrei-shiki and the spellings typed on Japanese keyboards.
_VOWELS = {"a": "あ", "i": "い", "u": "う", "e": "え", "o": "お"}
_ROWS = {
    "k": "かきくけこ",
    "g": "がぎぐげご",
    "s": "さしすせそ",
    "z": "ざじずぜぞ",
    "t": "たちつてと",
    "d": "だぢづでど",
    "n": "なにぬねの",
    "h": "はひふへほ",
    "b": "ばびぶべぼ",
    "p": "ぱぴぷぺぽ",
    "m": "まみむめも",
    "r": "らりるれろ",
    "y": "や.ゆ.よ",
    "w": "わ...を",
}
_YOON = {"ky": "き", "gy": "ぎ", "ny": "に", "hy": "ひ", "by": "び", "py": "ぴ", "my": "み"}
_YOON |= {"ry": "り", "sy": "し", "zy": "じ", "ty": "ち", "dy": "ぢ"}
_SMALL_Y = {"a": "ゃ", "u": "ゅ", "o": "ょ", "e": "ぇ"}
_SPECIAL = {
    "shi": "し",
    "chi": "ち",
    "tsu": "つ",
    "fu": "ふ",
    "ji": "じ",
    "sha": "しゃ",
    "shu": "しゅ",
    "sho": "しょ",
    "she": "しぇ",
    "cha": "ちゃ",
    "chu": "ちゅ",
    "cho": "ちょ",
    "che": "ちぇ",
    "ja": "じゃ",
    "ju": "じゅ",
    "jo": "じょ",
    "je": "じぇ",
    "fa": "ふぁ",
    "fi": "ふぃ",
    "fe": "ふぇ",
    "fo": "ふぉ",
    "ti": "ち",  # Kunrei; "ティ" is spelled thi in keyboard romaji
    "thi": "てぃ",
    "di": "ぢ",
    "dhi": "でぃ",
    "tu": "つ",
    "du": "づ",
    "hu": "ふ",
    "si": "し",
    "zi": "じ",
    "va": "ゔぁ",
    "vi": "ゔぃ",
    "vu": "ゔ",
    "ve": "ゔぇ",
    "vo": "ゔぉ",
    "wo": "を",
    "wi": "うぃ",
    "we": "うぇ",
    "ye": "いぇ",
}
_MACRONS = {"ā": "aa", "ī": "ii", "ū": "uu", "ē": "ee", "ō": "ou", "â": "aa", "ô": "ou", "û": "uu"}


def romaji_to_hiragana(word: str) -> str | None:
    """The hiragana a romaji word spells (``"arigatou"`` -> ありがとう), or None if it is not
    romaji (a letter or cluster no romaji system uses, as in ``love`` or ``street``)."""
    text = "".join(_MACRONS.get(c, c) for c in word.lower()).replace("’", "'")
    kana: list[str] = []
    i = 0
    while i < len(text):
        rest = text[i:]
        if rest[0] in _VOWELS:
            kana.append(_VOWELS[rest[0]])
            i += 1
            continue
        if rest[0] == "n" and (len(rest) == 1 or rest[1] == "'" or rest[1] not in "aiueoy"):
            kana.append("ん")
            i += 2 if len(rest) > 1 and rest[1] == "'" else 1
            continue
        if rest[0] == "-":
            kana.append("ー")
            i += 1
            continue
        # A doubled consonant (kk, tt, tch) is a closure っ before the syllable.
        if len(rest) > 1 and rest[0] not in "aiueon" and (rest[1] == rest[0] or rest[:3] == "tch"):
            kana.append("っ")
            i += 1
            continue
        spelled, size = _syllable(rest)
        if spelled is None:
            return None
        kana.append(spelled)
        i += size
    return "".join(kana)


def _syllable(text: str) -> tuple[str | None, int]:
    """The kana of the romaji syllable at the start of ``text`` and how many letters it took."""
    for size in (3, 2):
        syllable = text[:size]
        if syllable in _SPECIAL:
            return _SPECIAL[syllable], size
        if len(syllable) == 3 and syllable[:2] in _YOON and syllable[2] in _SMALL_Y:
            return _YOON[syllable[:2]] + _SMALL_Y[syllable[2]], 3
        if len(syllable) == 2 and syllable[0] in _ROWS and syllable[1] in _VOWELS:
            spelled = _ROWS[syllable[0]]["aiueo".index(syllable[1])]
            return (None, 0) if spelled == "." else (spelled, 2)
    return None, 0


def is_romaji_line(words: list[str]) -> bool:
    """Whether the Latin words of one line are romaji: every one spells Japanese syllables and
    at least one is not an English word (``go go go`` is English, ``kimi ga suki`` romaji)."""
    if not words or any(romaji_to_hiragana(word) is None for word in words):
        return False
    return any(_english_reading(word) is None for word in words)


def english_to_katakana(word: str) -> str:
    """The katakana a Japanese singer sings for the English ``word`` (``"love"`` -> ラブ)."""
    known = _english_reading(word)
    if known is not None:
        return known
    plain = word.replace("’", "'")
    if plain.isupper() and len(plain) <= 4 and "'" not in plain:
        return spell_letters(plain)
    return _model_reading(plain.lower().replace("'", ""))


def spell_letters(word: str) -> str:
    """The letter names of ``word`` in katakana (``"DJ"`` -> ディージェー)."""
    return "".join(LETTER_NAMES.get(c, "") for c in word.lower())


def _english_reading(word: str) -> str | None:
    """The table's or OpenJTalk's dictionary's katakana for ``word``; None if neither knows."""
    plain = word.replace("’", "'")
    if plain.lower() in COMMON_WORDS:
        return COMMON_WORDS[plain.lower()]
    if "'" in plain:
        return None
    for form in dict.fromkeys((plain, plain.capitalize(), plain.lower())):
        reading = _dictionary_reading(form)
        if reading:
            return reading
    return None


@functools.lru_cache(maxsize=4096)
def _dictionary_reading(word: str) -> str:
    from acgmake.text.reading import openjtalk_nodes

    nodes = openjtalk_nodes(word)
    # An unknown word comes back spelled letter by letter (as フィラー or 記号 pieces).
    if len(nodes) != 1 or nodes[0].pos in ("フィラー", "記号"):
        return ""
    reading = nodes[0].read
    return reading if reading and all(_is_katakana(c) for c in reading) else ""


@functools.lru_cache(maxsize=4096)
def _model_reading(word: str) -> str:
    reading = _c2k()(word)
    return "".join(c for c in reading if _is_katakana(c)) or spell_letters(word)


@functools.lru_cache(maxsize=1)
def _c2k():
    from e2k import C2K

    return C2K()  # greedy decoding: the same word always gives the same katakana


def _is_katakana(char: str) -> bool:
    return 0x30A1 <= ord(char) <= 0x30FA or char == "ー"


def strip_accents(text: str) -> str:
    """``text`` with accents taken off Latin letters (café -> cafe), macrons kept for romaji."""
    kept = []
    for char in text:
        if char in _MACRONS:
            kept.append(char)
            continue
        decomposed = unicodedata.normalize("NFD", char)
        base = decomposed[0]
        kept.append(base if base.isascii() and base.isalpha() else char)
    return "".join(kept)
