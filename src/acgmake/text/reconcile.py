"""A second reading of a lyric line from Sudachi, and the rules that settle where it and
OpenJTalk disagree.

OpenJTalk's dictionary knows the pitch accent of words but misreads compounds it does not
have: it splits them into single kanji and reads each alone (夕焼小焼 ゆうやけ|しょう|やき,
sung ゆうやけこやけ). Sudachi's ``sudachidict_core`` is a larger dictionary that knows many of
them; it has no accent and reads digits one by one. So OpenJTalk reads every line, Sudachi
reads the lines with kanji again, and where the two read a stretch of a line differently
(a *disagreement*: a stretch between word boundaries both analysers share), the first of these
rules that decides, decides:

1. **numbers** — a numeral or a counter in the stretch: OpenJTalk, whose number rules give the
   counters' sound changes (ひゃっかい, さんぼん), and no guess is reported: Sudachi reads 100
   as いちれいれい and 3本 as 3|ぽん;
2. **no rendaku** — the readings differ only in voicing (さお/ざお): the unvoiced one where the
   word begins a phrase (after a particle, a space or at the line's start: rendaku voices only
   a compound's later part), or where the voiced mora begins a verb or an adjective (山越えて
   やまこえて: a noun and a verb are not a compound);
3. **names** — OpenJTalk took a word for a name where Sudachi has a common word (金蔵 きんぞう,
   かねぐら), or for a person's name where Sudachi has another reading (亀さん ひさしさん,
   佐渡 さわたり — surnames): Sudachi;
4. **longer word** — one analyser reads the stretch as fewer words, all in its dictionary: it
   knows the compound the other cut up (小焼 こやけ, not 小|焼 しょう|やき) — unless its long
   word ends in what the other reads as a particle, a suffix or a verb (食べ|に, 月|さん,
   今|来|た), or is a name where the other has common words;
5. **boundaries** — the two cut the stretch apart differently: each reads the other's words one
   by one, and the analyser whose reading the other then gives too (but for the sound changes
   of joining words: rendaku, っ) wins (追い|し おい|し: OpenJTalk reads 追い alone as おい, not
   as its own 追|いし おい|いし);
6. **native reading** — one word of one or two kanji on both sides: the native (kun) reading
   where the other sounds Sino-Japanese (on) and it does not (菜 な, not さい; 山中 やまなか, not
   さんちゅう), as songs use them;
7. otherwise **OpenJTalk**, whose reading also carries the accent.

Every disagreement but numbers is reported with the reading chosen and the one not taken
(:class:`Disagreement`, then :class:`Guess`), so that the user can check it and write furigana
where it is wrong. The rules look at words, never at whole lines; ``benchmarks/reading_report.py``
measures them on real songs.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from acgmake.text.kana import is_kana, kana_morae

_KANJI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆〇〻ヶ]")
_KATAKANA = re.compile(r"[\u30a1-\u30fa\u30fc]+")
_SAME_SOUND = str.maketrans({"ヂ": "ジ", "ヅ": "ズ"})
_VOICE_MARKS = ("\u3099", "\u309a")  # combining dakuten and handakuten


@dataclass(frozen=True)
class Word:
    """One word as an analyser read it: its reading in katakana and where it is in the line."""

    surface: str
    reading: str  # katakana, particles as written (ハ)
    pos: str  # part of speech: 名詞, 動詞, 形容詞, 助詞, ...
    start: int  # character offsets in the line
    end: int
    #: "number" (a numeral), "counter" (a counter word: 本, 回), "person" (a person's name),
    #: "name" (another proper noun) or "".
    kind: str = ""
    known: bool = True  # False: not in the dictionary, a reading made up


@dataclass(frozen=True)
class Disagreement:
    """A stretch of the line, OpenJTalk's words ``[first, end)``, that the analysers read
    differently; ``sung`` is the reading chosen (katakana), by ``rule``."""

    first: int
    end: int
    start: int  # character offsets of the stretch
    stop: int
    openjtalk: str
    sudachi: str
    sung: str
    rule: str


@dataclass(frozen=True)
class Guess:
    """A stretch of a line the dictionaries read differently: ``written`` is read ``sung``
    (hiragana), not ``other``; ``override`` is the furigana that sets the reading
    (``夕焼小焼(ゆうやけこやけ)``), or "" when the stretch cannot take furigana."""

    written: str
    sung: str
    other: str
    rule: str
    override: str

    def message(self, line: int) -> str:
        """One line telling the user what was guessed on lyrics line ``line`` and how to
        choose another reading."""
        how = (
            f"write the sung reading after the kanji: {self.override}"
            if self.override
            else "write the line's reading in kana"
        )
        return (
            f"line {line}: {self.written} read as {self.sung}, not {self.other} "
            f"(a guess: the dictionaries disagree) — to override, {how}"
        )


def has_kanji(text: str) -> bool:
    """Whether ``text`` has a kanji: the analysers read only kanji differently."""
    return bool(_KANJI.search(text))


@functools.lru_cache(maxsize=1)
def _sudachi_tokenizer():
    # Loaded on the first line with kanji, once per process: the dictionary is memory-mapped
    # (about 0.05 s), and lyrics in kana never load it.
    from sudachipy import Dictionary, SplitMode

    return Dictionary().tokenizer(mode=SplitMode.C)


@functools.lru_cache(maxsize=4096)
def sudachi_words(text: str) -> tuple[Word, ...]:
    """Sudachi's words of ``text`` (the longest units its dictionary has), spaces and
    punctuation left out; none for a text Sudachi refuses (over 49,149 bytes), which
    OpenJTalk then reads alone."""
    from sudachipy.errors import SudachiError

    try:
        morphemes = _sudachi_tokenizer().tokenize(text)
    except SudachiError:
        return ()
    words = []
    for morpheme in morphemes:
        pos, detail, name = morpheme.part_of_speech()[:3]
        if pos in ("空白", "補助記号"):
            continue
        kind = ""
        if detail == "数詞":
            kind = "number"
        elif detail == "固有名詞":
            kind = "person" if name == "人名" else "name"
        words.append(
            Word(
                morpheme.surface(),
                morpheme.reading_form(),
                pos,
                morpheme.begin(),
                morpheme.end(),
                kind,
                not morpheme.is_oov(),
            )
        )
    return tuple(words)


def reconcile(
    text: str, openjtalk: Sequence[Word | None], read_alone: Callable[[str], str]
) -> list[Disagreement]:
    """Where Sudachi reads ``text`` differently from OpenJTalk's ``openjtalk`` words (None for a
    word OpenJTalk rewrote, such as digits it read as a numeral), and what to sing there.

    ``read_alone`` is OpenJTalk's reading of a word on its own (rule 5).
    """
    sudachi = sudachi_words(text)
    shared = {w.start for w in sudachi} | {w.end for w in sudachi}
    shared &= {w.start for w in openjtalk if w} | {w.end for w in openjtalk if w}
    disagreements = []
    first = None
    for index, word in enumerate(openjtalk):
        if word is None:
            first = None
            continue
        if first is None and word.start in shared:
            first = index
        if first is None or word.end not in shared:
            continue
        ours = list(openjtalk[first : index + 1])
        theirs = [w for w in sudachi if ours[0].start <= w.start and w.end <= word.end]
        found = _disagreement(text, first, ours, theirs, read_alone)
        if found:
            disagreements.append(found)
        first = None
    return disagreements


def _disagreement(
    text: str,
    first: int,
    ours: list[Word],
    theirs: list[Word],
    read_alone: Callable[[str], str],
) -> Disagreement | None:
    start, stop = ours[0].start, ours[-1].end
    if not has_kanji(text[start:stop]) or not theirs:
        return None
    openjtalk = "".join(w.reading for w in ours)
    sudachi = "".join(w.reading for w in theirs)
    if not _is_reading(openjtalk) or not _is_reading(sudachi):
        return None  # a symbol, or a word Sudachi could not read
    if openjtalk.translate(_SAME_SOUND) == sudachi.translate(_SAME_SOUND):
        return None
    if any(w.kind == "counter" for w in ours) or any(w.kind == "number" for w in theirs):
        return None  # numbers: OpenJTalk's (rule 1), Sudachi's are no second opinion
    for rule in _RULES:
        winner = rule(text, ours, theirs, read_alone)
        if winner:
            break
    else:
        rule, winner = _default, "openjtalk"
    sung = openjtalk if winner == "openjtalk" else _sung_particles(theirs)
    name = rule.__name__.strip("_").replace("_", " ")
    return Disagreement(first, first + len(ours), start, stop, openjtalk, sudachi, sung, name)


def _no_rendaku(text, ours, theirs, read_alone) -> str:
    openjtalk = _morae("".join(w.reading for w in ours))
    sudachi = _morae("".join(w.reading for w in theirs))
    if len(openjtalk) != len(sudachi) or list(map(_unvoiced, openjtalk)) != list(
        map(_unvoiced, sudachi)
    ):
        return ""
    differs = next(i for i, (a, b) in enumerate(zip(openjtalk, sudachi, strict=True)) if a != b)
    unvoiced = "openjtalk" if _unvoiced(openjtalk[differs]) == openjtalk[differs] else "sudachi"
    if differs == 0 and _starts_phrase(text, ours[0].start):
        return unvoiced
    position = 0
    for word in theirs:  # Sudachi's parts of speech: OpenJTalk's call 山越え a noun
        if position == differs and word.pos in ("動詞", "形容詞"):
            return unvoiced
        position += len(_morae(word.reading))
    return ""


def _starts_phrase(text: str, start: int) -> bool:
    """Whether a word at ``start`` can be no compound's second part: it begins the line, or
    follows a space, a punctuation mark, a particle or an auxiliary (Sudachi's words)."""
    if not start or not text[start - 1].isalnum() and not is_kana(text[start - 1]):
        return True
    before = [w for w in sudachi_words(text) if w.end == start]
    return bool(before) and before[0].pos in ("助詞", "助動詞")


def _names(text, ours, theirs, read_alone) -> str:
    if not _same_words(ours, theirs) or not any(w.kind in _NAMES for w in ours):
        return ""
    if not all(w.known and w.pos not in _AFFIXES for w in theirs):
        return ""
    common = not any(w.kind in _NAMES for w in theirs)  # 金蔵 かねぐら, 小籠 こかご
    # A surname reading where Sudachi has a place (佐渡 さわたり, さど), or one that only the
    # context gave (亀 alone is かめ, 亀さん ひさしさん).
    place = any(w.kind == "person" for w in ours) and not any(w.kind == "person" for w in theirs)
    alone = "".join(read_alone(w.surface) for w in ours).translate(_SAME_SOUND)
    if common or place or alone == _reading(theirs):
        return "sudachi"
    return ""


def _longer_word(text, ours, theirs, read_alone) -> str:
    fewer, more, side = (
        (ours, theirs, "openjtalk") if len(ours) < len(theirs) else (theirs, ours, "sudachi")
    )
    if len(fewer) == len(more) or not all(w.known for w in fewer):
        return ""
    # A word that swallows the other's particle, suffix or conjugating word (食べに, 月さん,
    # 今来|た) is a dictionary's oddity, not a compound; nor is a name (幾月 as a surname).
    if more[-1].pos in _BOUND_ENDINGS:
        return ""
    if any(w.kind in _NAMES for w in fewer) and not any(w.kind in _NAMES for w in more):
        return ""
    return side


def _boundaries(text, ours, theirs, read_alone) -> str:
    if _same_words(ours, theirs):
        return ""
    sudachi_alone = "".join(w.reading for word in ours for w in sudachi_words(word.surface))
    openjtalk_alone = "".join(read_alone(w.surface) for w in theirs)
    sudachi_agrees = _joined(_reading(ours), sudachi_alone)
    openjtalk_agrees = _joined(_reading(theirs), openjtalk_alone)
    if openjtalk_agrees and not sudachi_agrees:
        return "sudachi"
    if sudachi_agrees and not openjtalk_agrees:
        return "openjtalk"
    return ""


def _joined(whole: str, parts: str) -> bool:
    """Whether ``whole`` is ``parts`` (readings of its words one by one) joined: joining may
    voice a mora (rendaku: こはる|ひ -> こはるび) or close one (ぼう|ちゃん -> ぼっちゃん)."""
    whole_morae, part_morae = _morae(whole), _morae(parts.translate(_SAME_SOUND))
    if len(whole_morae) != len(part_morae):
        return False
    return all(
        a == b or _unvoiced(a) == _unvoiced(b) or a == "ッ"
        for a, b in zip(whole_morae, part_morae, strict=True)
    )


def _native_reading(text, ours, theirs, read_alone) -> str:
    if not _same_words(ours, theirs) or len(ours) != 1:
        return ""
    surface = ours[0].surface
    okurigana = len(re.search("[ぁ-ゖ]*$", surface).group())  # kana after the kanji
    kanji = len(_KANJI.findall(surface))
    if kanji > 2 or len(_KANJI.findall(surface[: len(surface) - okurigana])) != kanji:
        return ""
    stems = [_morae(w.reading) for w in (ours[0], theirs[0])]
    stems = [stem[: len(stem) - okurigana] for stem in stems]
    if _sino(stems[1], kanji) and _native(stems[0], kanji):
        return "openjtalk"
    if _sino(stems[0], kanji) and _native(stems[1], kanji):
        return "sudachi"
    return ""


def _default(text, ours, theirs, read_alone) -> str:
    return "openjtalk"


_RULES = (_no_rendaku, _names, _longer_word, _boundaries, _native_reading)
#: Sudachi's bound morphemes: a prefix or suffix reading (秋- しゅう) is no word of its own.
_AFFIXES = ("接頭辞", "接尾辞")
#: What ends no compound: particles, auxiliaries, suffixes, and verbs and adjectives, which
#: conjugate (both analysers' names for them).
_BOUND_ENDINGS = ("助詞", "助動詞", "接尾辞", "動詞", "形容詞")
_NAMES = ("person", "name")
#: The second mora of a two-mora Sino-Japanese (on) reading: かん, せい, こう, がく, いち, ぶつ,
#: and the closure that some take before another (にっ-ぽん, がっ-こう).
_ON_ENDINGS = frozenset("ンイウキクチツッ")


def _same_words(ours: list[Word], theirs: list[Word]) -> bool:
    return [w.end for w in ours] == [w.end for w in theirs]


def _reading(words: list[Word]) -> str:
    return "".join(w.reading for w in words).translate(_SAME_SOUND)


def _splits(morae: list[str], parts: int) -> list[list[str]]:
    """The ways to cut ``morae`` into ``parts`` pieces (each kanji's reading), pieces joined."""
    if parts == 1:
        return [["".join(morae)]] if morae else []
    return [
        ["".join(morae[:cut]), *rest]
        for cut in range(1, len(morae))
        for rest in _splits(morae[cut:], parts - 1)
    ]


def _sino(morae: list[str], kanji: int) -> bool:
    """Whether ``morae`` read ``kanji`` kanji each as a Sino-Japanese (on) reading sounds."""
    return any(all(map(_sino_piece, split)) for split in _splits(morae, kanji))


def _native(morae: list[str], kanji: int) -> bool:
    """Whether no kanji of the ``kanji`` can have a Sino-Japanese share of ``morae``."""
    return not any(_sino_piece(piece) for split in _splits(morae, kanji) for piece in split)


def _sino_piece(reading: str) -> bool:
    """Whether one kanji's ``reading`` sounds Sino-Japanese: two morae ending in ん, い, う, き,
    く, ち, つ or っ (せん, こう, がく, にっ), or a contracted mora (しょ, きゅう). One plain mora
    (な, み) could be either."""
    morae = _morae(reading)
    return len(morae) in (1, 2) and (
        len(morae[0]) == 2 or (len(morae) == 2 and morae[1] in _ON_ENDINGS)
    )


def _sung_particles(words: list[Word]) -> str:
    """Sudachi's reading of ``words`` with the particles は and へ as sung (わ, え)."""
    sounds = {"ハ": "ワ", "ヘ": "エ"}
    return "".join(
        sounds.get(w.reading, w.reading) if w.pos == "助詞" else w.reading for w in words
    )


def _is_reading(reading: str) -> bool:
    return bool(_KATAKANA.fullmatch(reading))


def _morae(katakana: str) -> list[str]:
    return [mora for mora, _ in kana_morae([katakana])]


def _unvoiced(mora: str) -> str:
    """``mora`` without its voicing marks (ガ -> カ, パ -> ハ)."""
    decomposed = unicodedata.normalize("NFD", mora)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in _VOICE_MARKS))
