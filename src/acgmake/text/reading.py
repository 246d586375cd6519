"""One lyric line in any script -> morae to sing, with the words' pitch accent.

Kanji and numbers are read with OpenJTalk's dictionary (``pyopenjtalk-plus``, dictionary
bundled, nothing downloaded), which also marks each accent phrase (a word with its particles)
and its accent type, giving a high or low pitch per mora in the Tokyo accent. The rules a
singer follows:

- kana are sung as written, except the particles は and へ, sung わ and え (を is sung お by
  Sinsy's own dictionary); the same holds inside set phrases such as こんにちは;
- a reading acgmake chose (kanji, numbers) holds an o- or u-vowel where the dictionary says it
  is long (東京 とーきょー), and sings え-い as written (先生 せんせい), as singers do;
- numbers are sung with their counters' sound changes, as OpenJTalk's number rules give them
  (100回 ひゃっかい, 3本 さんぼん, 2024年 にせんにじゅうよねん); 何 is なん before a counter and
  before t, d and n sounds (何本, 何と, 何の), なに elsewhere;
- a line with kanji is read a second time by Sudachi; where the two dictionaries disagree, the
  rules of :mod:`acgmake.text.reconcile` choose, and the choice is reported as a guess
  (:attr:`Reading.guesses`);
- furigana in the lyrics win over the dictionaries: ``星(ほし)``, ``星（ほし）``, also on Latin
  letters and digits (``LOVE(らぶ)``); the reading covers all the kanji just before the
  bracket (``夕焼小焼(ゆうやけこやけ)``, ``釣(つ)り``);
- Latin letters are romaji or English (:mod:`acgmake.text.english`);
- punctuation, emoji and spaces are not sung; scripts acgmake cannot read (Hangul, Cyrillic,
  ...) raise :class:`Unreadable`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import re
import unicodedata
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from acgmake.text import english
from acgmake.text.kana import LONG_VOWEL, is_kana, kana_morae, located_morae, to_hiragana
from acgmake.text.reconcile import Guess, Word, has_kanji, reconcile

#: Labels such as [chorus] or 【サビ】 name a part of the song; they are not sung.
LABEL = re.compile(r"\[[^\]]*\]|【[^】]*】")
_KANJI_MARKS = "々〆〇〻"
_KANJI = rf"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff{_KANJI_MARKS}"
_KANA = r"\u3041-\u3096\u309d\u309e\u30a1-\u30fa\u30fc-\u30fe"
#: ``base(reading)``: a reading in kana for the kanji, Latin letters or digits just before it.
FURIGANA = re.compile(rf"([{_KANJI}A-Za-z0-9]+)\(([{_KANA}]+)\)")
_PARTICLE_SOUNDS = {"ハ": "ワ", "ヘ": "エ"}
_O_OR_U = frozenset("おこそとのほもよろごぞどぼぽょうくすつぬふむゆるぐずづぶぷゅ")
_E_ROW = frozenset("えけせてねへめれげぜでべぺぇ")
_NAN_BEFORE = frozenset("トデダノテドナン")


class Unreadable(Exception):
    """A line has characters acgmake cannot sing: ``what`` ("other", "kanji") and which."""

    def __init__(self, what: str, characters: list[str]) -> None:
        super().__init__(what)
        self.what = what
        self.characters = characters


@dataclass(frozen=True)
class Reading:
    """The morae of a line in Sinsy's spelling, their pitch accent and the accent phrases."""

    morae: tuple[str, ...]
    accent: str  # "H" or "L" per mora (Tokyo accent)
    starts: tuple[int, ...]  # index of the first mora of each accent phrase
    #: Stretches the two dictionaries read differently, with the reading chosen.
    guesses: tuple[Guess, ...] = ()
    #: Per mora, the characters of the line as written that it is sung from, as (start, stop)
    #: indices: a kana's own characters, a kanji word's (or an English word's) whole run for
    #: each of its morae. Empty when not known.
    spans: tuple[tuple[int, int], ...] = ()
    #: (start, stop) of what the line holds that is markup, not lyrics: furigana in brackets
    #: and section labels. The line as shown leaves them out.
    hidden: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Node:
    """One word as OpenJTalk analysed it (the fields of ``pyopenjtalk.run_frontend``)."""

    surface: str
    read: str  # katakana reading, particles as written (ハ)
    pron: str  # katakana pronunciation, particles as sung (ワ), long vowels as ー
    pos: str  # part of speech: 名詞, 助詞, 記号, ...
    accent_type: int  # accent nucleus of the accent phrase this word begins (0 = flat)
    chain: int  # 1 when the word continues the accent phrase before it
    #: "number" (a numeral), "counter" (本, 回, 年 after a numeral), "person" (a person's
    #: name), "name" (another proper noun) or "".
    kind: str = ""


def read_line(line: str, *, second_opinion: bool = True) -> Reading:
    """The morae, pitch accent and accent phrases of one lyric line (labels already allowed),
    the readings guessed where the dictionaries disagree, and which characters of ``line``
    each mora is sung from.

    ``second_opinion=False`` reads with OpenJTalk alone. Raises :class:`Unreadable` for
    characters of a script acgmake cannot sing.
    """
    written = _Tracked.normalized(line)
    hidden = [written.origin_of(m.start(), m.end()) for m in LABEL.finditer(written.text)]
    written = written.sub(LABEL, lambda m: " ")
    written = written.mapped(english.strip_accents)
    _refuse_other_scripts(written.text)
    written = written.mapped(lambda t: t.replace("〜", LONG_VOWEL).replace("~", LONG_VOWEL))
    written = _romaji_as_kana(written)
    text = written.text

    morae: list[str] = []
    accent: list[str] = []
    starts: list[int] = []
    guesses: list[Guess] = []
    spans: list[tuple[int, int]] = []
    for kind, at, chunk_text, reading in _chunks(text):
        if kind == "furigana":
            chunk = _spelled(reading, reading_of=chunk_text)
            # The reading's brackets are markup; its morae are sung from the base.
            hidden.append(
                written.origin_of(at + len(chunk_text), at + len(chunk_text) + 2 + len(reading))
            )
            chunk_spans = [(0, len(chunk_text))] * len(chunk.morae)
        elif kind == "latin":
            chunk = _spelled(english.english_to_katakana(chunk_text))
            chunk_spans = [(0, len(chunk_text))] * len(chunk.morae)
        else:
            chunk = _read(chunk_text, second_opinion=second_opinion)
            chunk_spans = list(chunk.spans) or [(0, len(chunk_text))] * len(chunk.morae)
        starts.extend(len(morae) + start for start in chunk.starts)
        morae.extend(chunk.morae)
        accent.extend(chunk.accent)
        guesses.extend(chunk.guesses)
        spans.extend(written.origin_of(at + start, at + stop) for start, stop in chunk_spans)
    return Reading(
        tuple(morae),
        "".join(accent),
        tuple(dict.fromkeys(starts)),
        tuple(guesses),
        tuple(spans),
        tuple(sorted(hidden)),
    )


@dataclass(frozen=True)
class _Tracked:
    """A line's text as it is changed for reading, with where each character came from:
    ``origin[i]`` is the (start, stop) of the characters of the line as written that
    ``text[i]`` stands for."""

    text: str
    origin: tuple[tuple[int, int], ...]

    @classmethod
    def normalized(cls, line: str) -> _Tracked:
        """``line`` in NFKC (full-width letters to ASCII, half-width kana to full-width, ｶﾞ to
        ガ), each character traced to the written characters it comes from."""
        clusters: list[tuple[int, int]] = []  # a character with the marks that join it
        for index, char in enumerate(line):
            joins = unicodedata.normalize("NFKC", char)[:1]
            if clusters and joins and unicodedata.combining(joins):
                clusters[-1] = (clusters[-1][0], index + 1)
            else:
                clusters.append((index, index + 1))
        text, origin = [], []
        for start, stop in clusters:
            piece = unicodedata.normalize("NFKC", line[start:stop])
            text.append(piece)
            origin.extend([(start, stop)] * len(piece))
        whole = unicodedata.normalize("NFKC", line)
        if "".join(text) != whole:  # composition across clusters: trace to the whole line
            return cls(whole, ((0, len(line)),) * len(whole))
        return cls(whole, tuple(origin))

    def origin_of(self, start: int, stop: int) -> tuple[int, int]:
        """The written characters behind ``text[start:stop]``."""
        if stop <= start:
            at = (
                self.origin[start][0]
                if start < len(self.origin)
                else (self.origin[-1][1] if self.origin else 0)
            )
            return at, at
        return self.origin[start][0], max(o[1] for o in self.origin[start:stop])

    def mapped(self, change: Callable[[str], str]) -> _Tracked:
        """The text through ``change``, which must change characters one for one."""
        text = change(self.text)
        assert len(text) == len(self.text)
        return _Tracked(text, self.origin)

    def sub(self, pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str]) -> _Tracked:
        """``pattern.sub(replace, text)``, what replaces a match traced to what it matched."""
        text: list[str] = []
        origin: list[tuple[int, int]] = []
        position = 0
        for match in pattern.finditer(self.text):
            text.append(self.text[position : match.start()])
            origin.extend(self.origin[position : match.start()])
            new = replace(match)
            text.append(new)
            origin.extend([self.origin_of(match.start(), match.end())] * len(new))
            position = match.end()
        text.append(self.text[position:])
        origin.extend(self.origin[position:])
        return _Tracked("".join(text), tuple(origin))


def _refuse_other_scripts(text: str) -> None:
    runs: list[str] = []
    previous = False
    for char in text:
        other = _is_other_letter(char)
        if other and previous:
            runs[-1] += char
        elif other:
            runs.append(char)
        previous = other
    if runs:
        raise Unreadable("other", runs)


def _is_other_letter(char: str) -> bool:
    """A letter or digit of a script acgmake cannot read (Hangul, Cyrillic, Greek, ...)."""
    if char.isascii() or is_kana(char) or re.match(rf"[{_KANJI}ヶ]", char):
        return False
    category = unicodedata.category(char)
    return category[0] in "LN" and category != "Lm"


def _romaji_as_kana(written: _Tracked) -> _Tracked:
    """``written`` with its Latin words in hiragana when they are romaji (see english)."""
    text = written.text
    words = [m.group() for m in english.LATIN_WORD.finditer(FURIGANA.sub(" ", text))]
    if not english.is_romaji_line(words):
        return written
    return written.sub(
        english.LATIN_WORD, lambda m: english.romaji_to_hiragana(m.group()) or m.group()
    )


def _chunks(text: str) -> list[tuple[str, int, str, str]]:
    """(kind, where, text, reading) pieces of a line in order: "furigana" (a base and its
    reading), "latin" (an English word) and "text" (kana, kanji, digits for OpenJTalk)."""
    chunks: list[tuple[str, int, str, str]] = []
    position = 0
    pattern = re.compile(rf"{FURIGANA.pattern}|({english.LATIN_WORD.pattern})")
    for match in pattern.finditer(text):
        if match.start() > position:
            chunks.append(("text", position, text[position : match.start()], ""))
        if match.group(1):
            chunks.append(("furigana", match.start(), match.group(1), match.group(2)))
        else:
            chunks.append(("latin", match.start(), match.group(3), ""))
        position = match.end()
    if position < len(text):
        chunks.append(("text", position, text[position:], ""))
    return chunks


def _spelled(kana: str, *, reading_of: str = "") -> Reading:
    """Kana sung exactly as given; the accent comes from OpenJTalk's analysis of
    ``reading_of`` (the kanji under furigana) when it has as many morae, else of the kana."""
    morae = tuple(mora for mora, _ in kana_morae([kana]))
    if reading_of:
        analysed = _read(reading_of, allow_empty=True)
        if len(analysed.morae) == len(morae):
            return Reading(morae, analysed.accent, analysed.starts or (0,))
    analysed = _read(_katakana(kana), allow_empty=True)
    if len(analysed.morae) == len(morae):
        return Reading(morae, analysed.accent, analysed.starts or (0,))
    return Reading(morae, _pattern(len(morae), 0), (0,) if morae else ())


def _read(text: str, *, allow_empty: bool = False, second_opinion: bool = True) -> Reading:
    """Kana, kanji and digits read through OpenJTalk, with Sudachi's second opinion on
    kanji (see the module docstring)."""
    nodes = _nan(list(openjtalk_nodes(text)))
    guesses: tuple[Guess, ...] = ()
    if second_opinion and has_kanji(text):
        nodes, guesses = _reconciled(text, nodes)
    places = [place for node, place in zip(nodes, _places(text, nodes), strict=True) if _sung(node)]
    nodes = [node for node in nodes if _sung(node)]
    pieces = [_spelling(node) for node in nodes]
    located = located_morae(pieces)
    owned = [(mora, owner) for mora, owner, _, _ in located]
    morae = tuple(mora for mora, _ in owned)
    spans = tuple(
        _written_span(nodes[owner].surface, pieces[owner], places[owner], start, stop)
        for _, owner, start, stop in located
    )
    counts = [0] * len(nodes)
    for _, owner in owned:
        counts[owner] += 1
    phrases: list[tuple[int, int]] = []  # (morae, accent type) of each accent phrase
    for node, count in zip(nodes, counts, strict=True):
        if node.chain != 1 or not phrases:
            phrases.append((count, node.accent_type))
        else:
            phrases[-1] = (phrases[-1][0] + count, phrases[-1][1])
    starts: list[int] = []
    position = 0
    for count, _ in phrases:
        if count:
            starts.append(position)
        position += count
    if not morae and not allow_empty:
        return Reading((), "", ())
    accent = "".join(_pattern(count, accent_type) for count, accent_type in phrases)
    return Reading(morae, accent, tuple(starts), guesses, spans)


def _places(text: str, nodes: list[Node]) -> list[tuple[int, int]]:
    """Where each of OpenJTalk's words is in ``text``, as (start, stop). A word not there as
    written (digits it read as a numeral) gets what lies between its neighbours' places."""
    found = _located(text, nodes)
    places: list[tuple[int, int]] = []
    before = 0  # where the last word found ends
    for index, place in enumerate(found):
        if place is None:
            after = next((p[0] for p in found[index + 1 :] if p is not None), len(text))
            place = (before, max(before, after))
        else:
            before = place[1]
        places.append(place)
    return places


def _written_span(
    surface: str, spelling: str, place: tuple[int, int], start: int, stop: int
) -> tuple[int, int]:
    """The characters of the line (``place`` is where ``surface`` is) that the mora spelled
    ``spelling[start:stop]`` is sung from: kana as written are their own characters; a run of
    kanji stands for the whole part of the reading between the kana around it (釣り: つ is
    sung from 釣, り from り); a word read otherwise (digits) is one run for all its morae."""
    where, stop_at = place
    if surface == spelling or (len(surface) == len(spelling) and all(map(is_kana, surface))):
        return where + start, where + min(stop, len(surface))
    runs = re.findall(rf"[{_KANA}]+|[^{_KANA}]+", surface)
    if not runs or stop_at - where != len(surface):
        return where, stop_at
    kana_run = [bool(re.fullmatch(rf"[{_KANA}]+", run)) for run in runs]
    pattern = "".join(
        f"({re.escape(to_hiragana(run))})" if kana else "(.+?)"
        for run, kana in zip(runs, kana_run, strict=True)
    )
    match = re.fullmatch(pattern, to_hiragana(spelling))
    if not match:
        return where, stop_at
    begin = stop_end = None
    offset = where
    for group, (run, kana) in enumerate(zip(runs, kana_run, strict=True), start=1):
        g_start, g_stop = match.span(group)
        if g_start < stop and start < g_stop:  # the mora has characters in this run
            if kana:
                first = offset + max(start, g_start) - g_start
                last = offset + min(stop, g_stop) - g_start
            else:
                first, last = offset, offset + len(run)
            begin = first if begin is None else min(begin, first)
            stop_end = last if stop_end is None else max(stop_end, last)
        offset += len(run)
    if begin is None or stop_end is None:
        return where, stop_at
    return begin, stop_end


def _nan(nodes: list[Node]) -> list[Node]:
    """``nodes`` with 何 read なん before a counter and before t, d and n sounds (何本, 何と,
    何で, 何の), as it is said; なに elsewhere (何に, 何も)."""
    for index, node in enumerate(nodes[:-1]):
        after = nodes[index + 1]
        if node.surface == "何" and node.read == "ナニ":
            if after.kind == "counter" or after.read[:1] in _NAN_BEFORE:
                nodes[index] = dataclasses.replace(node, read="ナン", pron="ナン")
    return nodes


def _reconciled(text: str, nodes: list[Node]) -> tuple[list[Node], tuple[Guess, ...]]:
    """OpenJTalk's words of ``text`` with Sudachi's readings where the rules choose them, and
    a guess for each stretch the two read differently."""
    words = _words(text, nodes)
    disagreements = reconcile(text, words, _openjtalk_reading)
    guesses = []
    for found in reversed(disagreements):
        if found.sung != found.openjtalk:
            # One word for the stretch, with OpenJTalk's accent phrase.
            head = nodes[found.first]
            merged = Node(
                "".join(node.surface for node in nodes[found.first : found.end]),
                found.sung,
                found.sung,
                head.pos,
                head.accent_type,
                head.chain,
            )
            nodes[found.first : found.end] = [merged]
            words[found.first : found.end] = [
                Word(merged.surface, found.sung, head.pos, found.start, found.stop)
            ]
    for found in disagreements:
        other = found.sudachi if found.sung == found.openjtalk else found.openjtalk
        guesses.append(
            Guess(
                text[found.start : found.stop],
                to_hiragana(found.sung),
                to_hiragana(other),
                found.rule,
                _override(text, words, found.start, found.stop),
            )
        )
    return nodes, tuple(guesses)


def _words(text: str, nodes: list[Node]) -> list[Word | None]:
    """OpenJTalk's words with where each is in ``text``; None for a word that is not there as
    written (digits it read as a numeral)."""
    return [
        Word(node.surface, node.read, node.pos, *place, node.kind) if place else None
        for node, place in zip(nodes, _located(text, nodes), strict=True)
    ]


def _located(text: str, nodes: list[Node]) -> list[tuple[int, int] | None]:
    """(start, stop) of each of OpenJTalk's words in ``text``, in order; None for a word that
    is not there as written (digits it read as a numeral)."""
    found: list[tuple[int, int] | None] = []
    position = 0
    for node in nodes:
        at = text.find(node.surface, position) if node.surface else -1
        # Only what OpenJTalk does not keep (spaces) or rewrites (digits) may lie between.
        if at < 0 or re.search(rf"[{_KANJI}{_KANA}]", text[position:at]):
            found.append(None)
            continue
        position = at + len(node.surface)
        found.append((at, position))
    return found


def _override(text: str, words: list[Word | None], start: int, stop: int) -> str:
    """The stretch ``[start, stop)`` of ``text`` with furigana that set its reading: the
    reading covers all the kanji before the bracket, so it begins where they begin."""
    while start and re.match(rf"[{_KANJI}A-Za-z0-9]", text[start - 1]):
        start -= 1
    covering = [w for w in words if w and w.end > start and w.start < stop]
    if not covering or covering[0].start > start or covering[-1].end < stop:
        return ""  # digits read as numerals, or a stretch OpenJTalk rewrote
    written = text[covering[0].start : covering[-1].end]
    reading = "".join(w.reading for w in covering)
    runs = re.findall(rf"[{_KANJI}A-Za-z0-9]+|[^{_KANJI}A-Za-z0-9]+", written)
    based = [bool(re.match(rf"[{_KANJI}A-Za-z0-9]", run)) for run in runs]
    pattern = "".join(
        "(.+?)" if base else re.escape(_katakana(run))
        for run, base in zip(runs, based, strict=True)
    )
    match = re.fullmatch(pattern, reading)
    if not match:
        return ""
    sung = iter(match.groups())
    return "".join(
        f"{run}({to_hiragana(next(sung))})" if base else run
        for run, base in zip(runs, based, strict=True)
    )


def _openjtalk_reading(word: str) -> str:
    """OpenJTalk's reading of a word on its own, in katakana."""
    return "".join(node.read for node in openjtalk_nodes(word))


def _sung(node: Node) -> bool:
    """Whether a word is sung: punctuation, emoji and symbols without a reading are not."""
    if node.pos != "記号":
        return True
    return bool(node.read) and all(_is_katakana(c) for c in node.read)


def _spelling(node: Node) -> str:
    """How a word is sung: kana as written (particles as sounded), anything else as read."""
    surface = node.surface
    if node.kind in ("number", "counter") and not all(is_kana(c) for c in surface):
        if node.read and all(_is_katakana(c) for c in node.read):  # also the point of 2.5
            return _number_spelling(node.read, node.pron)
    if not any(_is_read(c) for c in surface):
        if len(surface) != len(node.read) or len(node.read) != len(node.pron):
            return surface
        # は/へ sound わ/え as particles, also inside set phrases (こんにちは).
        sung = []
        for char, read, pron in zip(surface, node.read, node.pron, strict=True):
            if _PARTICLE_SOUNDS.get(read) == pron:
                pron_kana = pron if char != to_hiragana(char) else to_hiragana(pron)
                sung.append(pron_kana)
            else:
                sung.append(char)
        return "".join(sung)
    reading = node.read
    if not reading or not all(_is_katakana(c) for c in reading):
        unread = [c for c in surface if _is_read(c)]
        raise Unreadable("kanji", ["".join(unread) or surface])
    if len(reading) != len(node.pron):
        return to_hiragana(reading)
    # The dictionary's long vowels: an o or u held (とう -> とー), え-い sung as written.
    sung = []
    for index, (read, pron) in enumerate(zip(reading, node.pron, strict=True)):
        before = to_hiragana(sung[-1]) if sung else ""
        if pron == LONG_VOWEL and read == "ウ" and before in _O_OR_U:
            sung.append(LONG_VOWEL)
        elif _PARTICLE_SOUNDS.get(read) == pron and index == 0 and len(reading) == 1:
            sung.append(to_hiragana(pron))
        else:
            sung.append(to_hiragana(read))
    return "".join(sung)


def _number_spelling(read: str, pron: str) -> str:
    """A numeral or counter as OpenJTalk pronounces it, with the sound changes of counting
    (ひゃく|かい -> ひゃっ|かい, さん|ほん -> さん|ぼん, よん|ねん -> よ|ねん); its long vowels
    are held (じゅー), but え-い is sung as written (めい, as in 3名)."""
    if pron == read + LONG_VOWEL:
        pron = read  # the に of 2.5 drawn out (にー), as when reading out digits
    sung = []
    for char in pron:
        before = to_hiragana(sung[-1]) if sung else ""
        if char == LONG_VOWEL and before and before not in _O_OR_U:
            sung.append("い" if before in _E_ROW else LONG_VOWEL)
        else:
            sung.append(to_hiragana(char))
    return "".join(sung)


def _is_read(char: str) -> bool:
    """Whether ``char`` is sung by its reading (kanji, a letter, a digit), not as written."""
    return not is_kana(char) and unicodedata.category(char)[0] in "LN"


def _pattern(count: int, accent_type: int) -> str:
    """The Tokyo pitch pattern of an accent phrase of ``count`` morae: type 0 rises after the
    first mora and stays high, type 1 starts high and falls, type n falls after mora n."""
    if count <= 0:
        return ""
    if accent_type <= 0 or accent_type > count:
        return "L" + "H" * (count - 1) if count > 1 else "L"
    if accent_type == 1:
        return "H" + "L" * (count - 1)
    return "L" + "H" * (accent_type - 1) + "L" * (count - accent_type)


def _katakana(kana: str) -> str:
    return "".join(chr(ord(c) + 0x60) if 0x3041 <= ord(c) <= 0x3096 else c for c in kana)


def _is_katakana(char: str) -> bool:
    return 0x30A1 <= ord(char) <= 0x30FA or char == LONG_VOWEL


@functools.lru_cache(maxsize=2048)
def openjtalk_nodes(text: str) -> tuple[Node, ...]:
    """OpenJTalk's analysis of ``text``: its words with readings and accent phrases.

    Raises :class:`Unreadable` (``"openjtalk"``) for text OpenJTalk refuses (too long)."""
    frontend = _pyopenjtalk()
    with warnings.catch_warnings():
        # pyopenjtalk-plus calls a SudachiPy method that SudachiPy has deprecated.
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            features = frontend.run_frontend(text)
        except RuntimeError:  # "Input text is too long after normalization" (5,461 characters)
            raise Unreadable("openjtalk", [text[:20]]) from None
    nodes = []
    for feature in features:
        nodes.append(
            Node(
                surface=feature["string"],
                read=feature["read"].replace("’", ""),
                pron=feature["pron"].replace("’", ""),
                pos=feature["pos"],
                accent_type=int(feature["acc"]),
                chain=int(feature["chain_flag"]),
                kind=_kind(feature),
            )
        )
    return tuple(nodes)


def _kind(feature: dict) -> str:
    """What kind of word a feature is, as :attr:`Node.kind` names it."""
    if feature["pos_group1"] == "数":
        return "number"
    if feature["pos_group2"] == "助数詞":
        return "counter"
    if feature["pos_group1"] == "固有名詞":
        return "person" if feature["pos_group2"] == "人名" else "name"
    return ""


@functools.lru_cache(maxsize=1)
def _pyopenjtalk():
    # pyopenjtalk-plus prints a notice on import when onnxruntime (used only to choose
    # between なに and なん for 何) is missing; the CLI's output is not the place for it.
    with contextlib.redirect_stdout(io.StringIO()):
        import pyopenjtalk
    return pyopenjtalk
