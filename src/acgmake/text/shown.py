"""The lyrics as the user wrote them, for the screen: each sung mora tied to its characters.

The score holds what is *sung* (a kana per note, in Sinsy's spelling); the clip's karaoke and
the ``.ass``/``.srt`` subtitles show what was *written*: kanji, English words, spaces and
punctuation, without the markup (furigana in brackets, section labels). ``lyrics_shown.json``,
written by the karaoke stage from the lyrics, gives each line as shown and, per mora, the
characters it is sung from (:attr:`ShownLine.spans`): a kana lights up on its own, a kanji word
over all its morae (星 over ほ and し), an English word over the morae of its katakana reading.

:func:`as_written` puts the shown lines onto a song's timing, whose lines are the score's (a
rest ends one). It checks that the morae are the same, in order, and gives the timing as it
was (kana) when they are not: a score edited by hand, or sung from ``--score``.

``lyrics_shown.json``::

    {"lines": [{"text": "星が光る", "morae": ["ほ", "し", "が", "ひ", "か", "る"],
                "spans": [[0, 1], [0, 1], [1, 2], [2, 3], [2, 3], [3, 4]]}, ...]}
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acgmake.formats import (
    FormatProblem,
    checked_integer,
    checked_list,
    checked_object,
    checked_text,
    checked_value,
    read_json_file,
)
from acgmake.music import MAX_SCORE_NOTES
from acgmake.text.kana import Phrase, to_hiragana
from acgmake.voice.labels import Line, Timing

#: A song's lines as shown are a few KB; the file's limit leaves room for any the lyrics allow.
MAX_SHOWN_BYTES = 4 * 1024 * 1024
_REMEDY = "make it again with `acgmake karaoke LYRICS` (or delete it: the lyrics then show as sung)"
#: Characters that get furigana: kanji and digits (their reading is not written).
_READ = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆〇〻0-9０-９]")


@dataclass(frozen=True)
class ShownLine:
    """A lyric line as shown: ``text``, its sung ``morae``, and per mora the (start, stop)
    of the characters of ``text`` it is sung from (non-decreasing)."""

    text: str
    morae: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]


def shown_line(phrase: Phrase) -> ShownLine:
    """``phrase`` as shown: its line as written without the markup and the spaces around
    it, each mora's characters moved to match. Morae whose characters are unknown spread over
    the whole line."""
    text, hidden = phrase.text, sorted(phrase.hidden)
    keep = [True] * len(text)
    for start, stop in hidden:
        for index in range(max(start, 0), min(stop, len(text))):
            keep[index] = False
    shown, position = [], []  # the shown characters; where each written index lands
    for index, char in enumerate(text):
        position.append(len(shown))
        if keep[index]:
            shown.append(char)
    position.append(len(shown))
    joined = "".join(shown)
    lead = len(joined) - len(joined.lstrip())
    stripped = joined.strip()
    spans = phrase.spans if len(phrase.spans) == len(phrase.morae) else ()
    if not spans:
        spans = ((0, len(text)),) * len(phrase.morae)

    def moved(at: int) -> int:
        return min(max(position[at] - lead, 0), len(stripped))

    return ShownLine(stripped, tuple(phrase.morae), tuple((moved(s), moved(e)) for s, e in spans))


def write_shown(phrases: list[Phrase], path: Path) -> None:
    """``lyrics_shown.json`` for ``phrases`` (see the module's description)."""
    lines = []
    for phrase in phrases:
        line = shown_line(phrase)
        lines.append(
            {"text": line.text, "morae": list(line.morae), "spans": [list(s) for s in line.spans]}
        )
    # A line a row: readable, and a diff shows which line changed.
    rows = ",\n  ".join(json.dumps(line, ensure_ascii=False) for line in lines)
    Path(path).write_text('{"lines": [\n  ' + rows + "\n]}\n", encoding="utf-8")


def read_shown(path: Path) -> list[ShownLine]:
    """The lines in ``lyrics_shown.json`` at ``path``; :class:`UserError` in one line naming
    the file and what is wrong when it is not one."""
    raw = read_json_file(
        path, what="a shown-lyrics file", max_bytes=MAX_SHOWN_BYTES, max_depth=6, remedy=_REMEDY
    )
    return checked_value(
        raw, _checked, source=str(path), what="a shown-lyrics file", remedy=_REMEDY
    )


def _checked(raw: Any) -> list[ShownLine]:
    top = checked_object(raw, "the file")
    lines, count = [], 0
    for i, value in enumerate(checked_list(top.get("lines"), "lines", MAX_SCORE_NOTES)):
        where = f"lines[{i}]"
        item = checked_object(value, where)
        text = checked_text(item.get("text"), f"{where}.text", 20_000)
        morae = tuple(
            checked_text(m, f"{where}.morae[{j}]", 20)
            for j, m in enumerate(checked_list(item.get("morae"), f"{where}.morae", 2_000))
        )
        count += len(morae)
        if count > MAX_SCORE_NOTES:
            raise FormatProblem(f"it has more than {MAX_SCORE_NOTES} morae")
        raw_spans = checked_list(item.get("spans"), f"{where}.spans", 2_000)
        if len(raw_spans) != len(morae):
            raise FormatProblem(f"{where} has {len(morae)} morae but {len(raw_spans)} spans")
        spans = []
        for j, span in enumerate(raw_spans):
            pair = checked_list(span, f"{where}.spans[{j}]", 2)
            if len(pair) != 2:
                raise FormatProblem(f"{where}.spans[{j}] is not a [start, stop] pair")
            start = checked_integer(pair[0], f"{where}.spans[{j}][0]", (0, len(text)))
            stop = checked_integer(pair[1], f"{where}.spans[{j}][1]", (start, len(text)))
            spans.append((start, stop))
        lines.append(ShownLine(text, morae, tuple(spans)))
    return lines


def as_written(timing: Timing, shown: list[ShownLine]) -> Timing:
    """``timing`` with its lines showing the lyrics as written (``Line.text`` and
    ``Line.chars``), or ``timing`` unchanged when its morae are not those of ``shown``.

    A sung line (the score's: a rest ends it) shows the part of its written line that its
    morae are sung from, with the punctuation after them; a sung line that runs over two
    written lines shows both parts, a space between."""
    sung = [mora.text for line in timing.lines for mora in line.morae]
    written = [
        (number, index) for number, line in enumerate(shown) for index in range(len(line.morae))
    ]
    if sung != [shown[n].morae[i] for n, i in written]:
        return timing
    lines, at = [], 0
    for line in timing.lines:
        owners = written[at : at + len(line.morae)]
        at += len(line.morae)
        text, chars = "", []
        for number in dict.fromkeys(n for n, _ in owners):
            indices = [i for n, i in owners if n == number]
            part, part_chars = _part(shown[number], indices[0], indices[-1] + 1)
            if text:
                text += " "
            chars.extend((len(text) + s, len(text) + e) for s, e in part_chars)
            text += part
        lines.append(dataclasses.replace(line, text=text, chars=chars))
    return dataclasses.replace(timing, lines=lines)


def _part(line: ShownLine, first: int, end: int) -> tuple[str, list[tuple[int, int]]]:
    """The text that shows morae ``first``..``end - 1`` of ``line``, and their spans in it."""
    spans = line.spans
    start = 0 if first == 0 else spans[first][0]
    if end >= len(spans):
        stop = len(line.text)
    else:  # up to where the next sung line's characters begin, keeping shared characters
        stop = max(spans[end - 1][1], spans[end][0])
    piece = line.text[start:stop]
    lead = len(piece) - len(piece.lstrip())
    piece = piece.strip()

    def moved(x: int) -> int:
        return min(max(x - start - lead, 0), len(piece))

    return piece, [(moved(s), moved(e)) for s, e in spans[first:end]]


def span_groups(chars) -> list[tuple[tuple[int, int], int, int]]:
    """The runs of consecutive morae sung from the same characters (a kanji word's), as
    (span, first mora, one past the last) in order, from each mora's ``(start, stop)``."""
    groups: list[tuple[tuple[int, int], int, int]] = []
    for index, span in enumerate(chars):
        span = tuple(span)
        if groups and groups[-1][0] == span:
            groups[-1] = (span, groups[-1][1], index + 1)
        else:
            groups.append((span, index, index + 1))
    return groups


def ruby(line: Line) -> list[tuple[int, int, str]]:
    """The furigana of a line shown as written: (start, stop, reading) for each run of
    characters (kanji, digits) sung by a reading not written, the reading being the morae
    actually sung over it."""
    if not line.chars or len(line.chars) != len(line.morae):
        return []
    return [
        (start, stop, to_hiragana("".join(m.text for m in line.morae[first:end])))
        for (start, stop), first, end in span_groups(line.chars)
        if stop > start and _READ.search(line.text[start:stop])
    ]
