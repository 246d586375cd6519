"""Kana -> morae, spelled the way Sinsy's Japanese dictionary reads them.

A *mora* is one beat of Japanese singing: a kana (か), a kana with a small kana (きゃ, ふぁ, てぃ),
the moraic nasal ん, the double-consonant mark っ or the long-vowel mark ー. acgmake sings one
note per mora. Every mora is written as a key of Sinsy's ``japanese.utf_8.table`` (or ー, which
Sinsy's configuration reads as "hold the previous vowel"), so Sinsy never drops a syllable.

Kana are sung as written: hiragana and katakana (half-width too), ``〜`` and ``~`` read as
``ー``, iteration marks (こゝろ); punctuation, spaces and emoji are skipped. Reading kanji,
numbers and Latin letters is :mod:`acgmake.text.reading`'s job; :func:`parse_lyrics` (whole
lyrics in any script) lives in :mod:`acgmake.text.lyrics` and is re-exported here.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

from acgmake.errors import UserError

if TYPE_CHECKING:
    from acgmake.text.reconcile import Guess

#: Every kana spelling in Sinsy's ``_dic/japanese.utf_8.table`` (hiragana; the table has the
#: same spellings in katakana). tests/test_text.py checks this against the installed table.
SINSY_KANA = frozenset(
    """
    ぁ あ ぃ い ぅ う ぇ え ぉ お か が き ぎ く ぐ け げ こ ご さ ざ し じ す ず せ ぜ そ ぞ た
    だ ち ぢ っ つ づ て で と ど な に ぬ ね の は ば ぱ ひ び ぴ ふ ぶ ぷ へ べ ぺ ほ ぼ ぽ ま
    み む め も ゃ や ゅ ゆ ょ よ ら り る れ ろ ゎ わ ゐ ゑ を ん ゔ いぇ うぃ うぇ うぉ きぇ
    きゃ きゅ きょ ぎぇ ぎゃ ぎゅ ぎょ くぁ くぃ くぅ くぇ くぉ くゎ ぐぁ ぐぃ ぐぅ ぐぇ ぐぉ
    ぐゎ しぃ しぇ しゃ しゅ しょ じぇ じゃ じゅ じょ すぃ ずぃ ちぇ ちゃ ちゅ ちょ つぁ つぃ
    つぇ つぉ てぃ てゃ てゅ てょ でぃ でぇ でゃ でゅ でょ とぅ どぅ にぇ にゃ にゅ にょ ひぇ
    ひゃ ひゅ ひょ びぇ びゃ びゅ びょ ぴぇ ぴゃ ぴゅ ぴょ ふぁ ふぃ ふぇ ふぉ みぇ みゃ みゅ
    みょ りぇ りゃ りゅ りょ ゔぁ ゔぃ ゔぇ ゔぉ ゔゃ ゔゅ ゔょ
    """.split()
)
#: Sinsy's "hold the previous vowel" mark (``MACRON`` in ``japanese.utf_8.conf``).
LONG_VOWEL = "ー"
#: The double-consonant mark; Sinsy sings a note of it as the previous vowel cut short.
SOKUON = "っ"
MORAIC_NASAL = "ん"

#: Small kana that join the kana before them into one mora (きゃ, ふぁ, くゎ).
_SMALL = frozenset("ぁぃぅぇぉゃゅょゎ")
#: Spellings missing from Sinsy's table, written as the table's spelling of the same sound.
_RESPELL = {
    "ぢゃ": "じゃ",
    "ぢゅ": "じゅ",
    "ぢょ": "じょ",
    "ぢぇ": "じぇ",
    "うぁ": "わ",
    "ふゅ": "ひゅ",
    "ゕ": "か",
    "ゖ": "け",
}
#: Katakana with no hiragana twin, as the hiragana spelling of the same sound.
_KATAKANA_ONLY = {"ヷ": "ゔぁ", "ヸ": "ゔぃ", "ヹ": "ゔぇ", "ヺ": "ゔぉ", "ヵ": "か", "ヶ": "か"}
_LONG_VOWEL_MARKS = frozenset("ー〜~")
_ITERATION = {"ゝ": False, "ヽ": False, "ゞ": True, "ヾ": True}  # mark -> voiced
#: Labels such as [chorus] or 【サビ】 name a part of the song; they are not sung.
_LABEL = re.compile(r"\[[^\]]*\]|【[^】]*】")
_KANJI_MARKS = frozenset("々〆〇〻")
_DAKUTEN = "\u3099"


@dataclass(frozen=True)
class Phrase:
    """One lyric line: its morae in Sinsy's spelling, where it is, and what was written."""

    morae: tuple[str, ...]
    line: int  # 1-based line number in the lyrics text
    section: int  # 0-based; blank lines start a new section
    text: str  # the line as written, without surrounding spaces
    #: Tokyo pitch accent of each mora, "H" (high) or "L" (low); "" when unknown.
    accent: str = ""
    #: Indices of the morae that begin an accent phrase (a word with its particles).
    starts: tuple[int, ...] = ()
    #: The label of the line's section as written ("chorus", "サビ"), "" when it has none.
    label: str = ""
    #: Readings guessed where the two dictionaries disagree (see acgmake.text.reconcile).
    guesses: tuple[Guess, ...] = ()
    #: Per mora, the (start, stop) of the characters of ``text`` it is sung from; empty when
    #: not known (see :attr:`acgmake.text.reading.Reading.spans`).
    spans: tuple[tuple[int, int], ...] = ()
    #: (start, stop) of the markup in ``text`` (furigana brackets, labels), not shown.
    hidden: tuple[tuple[int, int], ...] = ()


def parse_lyrics(text: str) -> list[Phrase]:
    """The phrases of a lyrics text in any script; see :func:`acgmake.text.lyrics.parse_lyrics`."""
    from acgmake.text.lyrics import parse_lyrics as parse

    return parse(text)


def split_morae(text: str) -> list[str]:
    """The morae of one line of kana, in Sinsy's spelling (``"きゃっと"`` -> きゃ, っ, と).

    Raises :class:`UserError` if the line has kanji, Latin letters, digits or another script.
    """
    try:
        return line_morae(text)
    except _Unsingable as error:
        raise UserError(problem_message([(1, error.what, error.characters)])) from None


def is_singable(text: str) -> bool:
    """Whether ``text`` (a line, or one note's lyric) has kana to sing and nothing unreadable.

    A note's lyric ー (hold the vowel) or っ (a closure) is singable: it continues the note
    before it, as Sinsy sings it."""
    try:
        if line_morae(text):
            return True
    except _Unsingable:
        return False
    marks = unicodedata.normalize("NFKC", text).strip()
    return bool(marks) and all(c in _LONG_VOWEL_MARKS or c in "っッ" for c in marks)


class _Unsingable(Exception):
    def __init__(self, what: str, characters: list[str]) -> None:
        super().__init__(what)
        self.what = what
        self.characters = characters


def line_morae(line: str) -> list[str]:
    """The morae of ``line`` (see :func:`split_morae`); raises ``_Unsingable`` for bad text."""
    text = unicodedata.normalize("NFKC", line)  # half-width kana, full-width letters, ゛
    text = _LABEL.sub(" ", text)
    _refuse_unreadable(text)
    return [mora for mora, _ in kana_morae([text])]


def kana_morae(pieces: list[str]) -> list[tuple[str, int]]:
    """The morae of the kana in ``pieces`` read as one text, each with the index of the piece
    it starts in: a ー, small kana or ゝ continues across pieces (``["ゆめ", "ー"]`` sings
    ゆ, め, ー). Characters that are not kana are skipped."""
    return [(mora, owner) for mora, owner, _, _ in located_morae(pieces)]


def located_morae(pieces: list[str]) -> list[tuple[str, int, int, int]]:
    """:func:`kana_morae` with where each mora is written: (mora, piece, start, stop), the
    characters ``pieces[piece][start:stop]`` (a small kana joined to the kana before it at the
    start of the next piece stretches ``stop`` to the end of the first piece)."""
    morae: list[str] = []  # hiragana spelling
    katakana: list[bool] = []  # whether each mora was written in katakana
    owners: list[int] = []
    places: list[list[int]] = []  # [start, stop] of each mora in its piece

    def add(mora: str, is_katakana: bool, owner: int, at: int) -> None:
        morae.append(mora)
        katakana.append(is_katakana)
        owners.append(owner)
        places.append([at, at + 1])

    for owner, piece in enumerate(pieces):
        for at, char in enumerate(piece):
            if char in _LONG_VOWEL_MARKS:
                # A long-vowel mark holds the vowel before it: nothing to hold at a line start
                # or after っ (Sinsy warns and drops it there).
                if morae and morae[-1] != SOKUON:
                    add(LONG_VOWEL, False, owner, at)
                continue
            if char in _ITERATION:
                if morae and morae[-1] not in (LONG_VOWEL, SOKUON):
                    add(_iterate(morae[-1], _ITERATION[char]), katakana[-1], owner, at)
                continue
            if not _is_kana(char):
                continue  # punctuation, spaces, emoji, symbols
            is_katakana = _is_katakana(char)
            kana = _KATAKANA_ONLY.get(char) or _to_hiragana(char)
            kana = _RESPELL.get(kana, kana)
            if kana in _SMALL and morae and len(morae[-1]) == 1:
                joined = _RESPELL.get(morae[-1] + kana, morae[-1] + kana)
                if joined in SINSY_KANA:
                    morae[-1] = joined
                    places[-1][1] = at + 1 if owners[-1] == owner else len(pieces[owners[-1]])
                    continue
            if kana == SOKUON and (not morae or morae[-1] == SOKUON):
                if morae and owners[-1] == owner:
                    places[-1][1] = at + 1  # two in a row sing as one
                continue  # a closure needs a vowel before it
            if kana not in SINSY_KANA:  # only the few respellings above can reach here
                raise AssertionError(f"no Sinsy spelling for {kana!r}")
            add(kana, is_katakana, owner, at)
    return [
        (_to_katakana(m) if k else m, owner, start, stop)
        for m, k, owner, (start, stop) in zip(morae, katakana, owners, places, strict=True)
    ]


def is_kana(char: str) -> bool:
    """Whether ``char`` is sung as kana: a kana, a long-vowel mark or an iteration mark."""
    return _is_kana(char) or char in _LONG_VOWEL_MARKS or char in _ITERATION


def _refuse_unreadable(text: str) -> None:
    runs: dict[str, list[str]] = {}  # kind -> runs of characters of that kind, in order
    previous = ""
    for char in text:
        kind = _unreadable_kind(char)
        if kind and kind == previous:
            runs[kind][-1] += char
        elif kind:
            runs.setdefault(kind, []).append(char)
        previous = kind
    for kind in ("kanji", "latin", "digits", "other"):
        if kind in runs:
            raise _Unsingable(kind, runs[kind])


def _unreadable_kind(char: str) -> str:
    """Which kind of unsingable character ``char`` is, or "" when it is sung or skipped."""
    if _is_kana(char) or char in _LONG_VOWEL_MARKS or char in _ITERATION:
        return ""
    category = unicodedata.category(char)
    name = unicodedata.name(char, "")
    if char in _KANJI_MARKS or (name.startswith("CJK ") and "IDEOGRAPH" in name):
        return "kanji"
    if category.startswith("L"):
        return "latin" if "LATIN" in name else "other"
    if category == "Nd" or (category == "No" and char.isdigit()):
        return "digits"
    return ""


_ADVICE = {
    "kanji": ("kanji", "write the kanji in kana for now, e.g. 夢 → ゆめ"),
    "latin": ("Latin letters", "write how they are sung in kana, e.g. love → らぶ"),
    "digits": ("digits", "write how they are sung in kana, e.g. 1 → いち"),
    "other": ("characters acgmake cannot sing", "write the lyrics in hiragana or katakana"),
}


def problem_message(
    problems: list[tuple[int, str, list[str]]],
    advice: dict[str, tuple[str, str]] | None = None,
) -> str:
    """One line naming the first (line, kind of problem, characters) and counting the rest;
    ``advice`` maps each kind to (what it is in words, what to do)."""
    number, what, characters = problems[0]
    label, advice = (advice or _ADVICE)[what]
    shown = ", ".join(dict.fromkeys(characters))
    shown = shown if len(shown) <= 30 else shown[:30] + "…"
    message = f"line {number} has {label} ({shown}); {advice}"
    if len(problems) > 1:
        others = ", ".join(str(n) for n, _, _ in problems[1:6])
        more = "…" if len(problems) > 6 else ""
        message += f" (lines {others}{more} too)" if len(problems) > 2 else f" (line {others} too)"
    return message


def _is_kana(char: str) -> bool:
    code = ord(char)
    return 0x3041 <= code <= 0x3096 or 0x30A1 <= code <= 0x30FA


def _is_katakana(char: str) -> bool:
    return 0x30A1 <= ord(char) <= 0x30FE


def to_hiragana(kana: str) -> str:
    """``kana`` with katakana turned into hiragana (ー and other characters kept)."""
    return _to_hiragana(kana)


def _to_hiragana(kana: str) -> str:
    return "".join(chr(ord(c) - 0x60) if 0x30A1 <= ord(c) <= 0x30F6 else c for c in kana)


def _to_katakana(kana: str) -> str:
    return "".join(chr(ord(c) + 0x60) if 0x3041 <= ord(c) <= 0x3096 else c for c in kana)


def _iterate(mora: str, voiced: bool) -> str:
    """The mora an iteration mark (ゝ, ゞ) stands for: the one before, unvoiced or voiced."""
    first = unicodedata.normalize(
        "NFC", unicodedata.normalize("NFD", mora[0]).replace(_DAKUTEN, "")
    )
    if voiced:
        composed = unicodedata.normalize("NFC", first + _DAKUTEN)
        first = composed if len(composed) == 1 else first
    repeated = first + mora[1:]
    return repeated if repeated in SINSY_KANA else mora
