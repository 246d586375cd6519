"""Lyrics text -> phrases of morae, and the checks a user's lyrics file must pass.

Rules for the text:

- a line is a phrase; blank lines separate sections (verse, chorus...); a label line such as
  ``[chorus]`` or ``【サビ】`` names the section that follows it and is not sung;
- Japanese in any script (kana, kanji, numbers; furigana ``星(ほし)`` win over the
  dictionaries, and where two dictionaries read a word differently the reading chosen is in
  :attr:`Phrase.guesses`), English and romaji (see :mod:`acgmake.text.reading`); punctuation,
  emoji and markup are not sung;
- a line in a script acgmake cannot read (Hangul, Cyrillic, ...) is refused, naming the line,
  as is a line with control characters (which are not text, and which a score cannot hold)
  and a line far longer than a phrase.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from acgmake.errors import UserError
from acgmake.text.kana import Phrase, problem_message

#: A whole song's lyrics in kana are a few KB; anything far larger is the wrong file.
MAX_LYRICS_BYTES = 64 * 1024
#: About 4–5 minutes of singing at the default tempo (one eighth note per mora).
MAX_MORAE = 1000
#: A line is a phrase of a few dozen characters; one of twice the morae a whole song may have
#: is a text without line breaks (OpenJTalk, which reads the lines, fails past 5,461).
MAX_LINE_CHARACTERS = 2 * MAX_MORAE


#: A line that is only a section label: ``[chorus]``, ``【サビ】``, ``[Verse 2]``.
_LABEL_LINE = re.compile(r"\s*(?:\[([^\]]*)\]|【([^】]*)】)\s*")
_ADVICE = {
    "other": (
        "characters acgmake cannot sing",
        "write the lyrics in Japanese (kana or kanji) or in English",
    ),
    "kanji": ("kanji acgmake cannot read", "add the reading after them, e.g. 星(ほし)"),
    "control": (
        "characters that are not text (control characters)",
        "delete them (an editor may show them as boxes, or not at all) and save again",
    ),
    "openjtalk": ("text OpenJTalk cannot read", "break the line into shorter lines"),
}
#: Characters that are never lyrics: control characters (tab aside) and the noncharacters
#: U+FFFE and U+FFFF, which XML forbids (the score would not be XML).
_NOT_TEXT = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\ufffe\uffff]")


def parse_lyrics(text: str) -> list[Phrase]:
    """The phrases of a lyrics text, in order; lines with nothing to sing are left out.

    Raises :class:`UserError` naming the first line that cannot be read (and counting the
    others), and when nothing at all can be sung.
    """
    from acgmake.text.reading import Unreadable, read_line

    phrases: list[Phrase] = []
    section = 0
    label = ""  # the label of the current section
    pending: str | None = None  # a label line read, for the section it opens
    new_section = False
    problems: list[tuple[int, str, list[str]]] = []
    for number, raw in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        line = raw.strip()
        if not line:
            new_section = True
            continue
        controls = _NOT_TEXT.findall(line)
        if controls:
            problems.append((number, "control", [f"U+{ord(c):04X}" for c in controls]))
            continue
        _check_length(line, number)
        labelled = _LABEL_LINE.fullmatch(line)
        if labelled:
            new_section = True
            pending = (labelled.group(1) or labelled.group(2) or "").strip()
            continue
        try:
            reading = read_line(line)
        except Unreadable as error:
            problems.append((number, error.what, error.characters))
            continue
        if not reading.morae:
            continue
        if new_section and phrases:
            section += 1
        if (new_section or not phrases) and (phrases or pending is not None):
            label = pending or ""
        pending, new_section = None, False
        phrases.append(
            Phrase(
                reading.morae,
                number,
                section,
                line,
                reading.accent,
                reading.starts,
                label,
                reading.guesses,
                reading.spans,
                reading.hidden,
            )
        )
    if problems:
        raise UserError(problem_message(problems, _ADVICE))
    if not phrases:
        raise UserError(
            "the lyrics have nothing to sing; write them in Japanese or English, a line per "
            "phrase (e.g. かえるのうたが)"
        )
    return phrases


def read_lyrics(path: str | Path) -> list[Phrase]:
    """The phrases of the lyrics file at ``path`` (UTF-8 text, a line per phrase).

    Raises :class:`UserError` with one line saying what to do when the file is missing, too
    large, binary, not UTF-8, empty, has text that cannot be sung, or too many morae.
    """
    path = Path(path)
    try:
        _check_size(path.stat().st_size, path.name)  # before reading a huge file in
        data = path.read_bytes()
    except OSError as error:
        raise UserError(f"cannot read the lyrics {path}: {error.strerror or error}") from None
    return lyrics_from_bytes(data, name=path.name)


def lyrics_from_bytes(data: bytes, *, name: str = "the lyrics") -> list[Phrase]:
    """The phrases of lyrics given as bytes; the same checks as :func:`read_lyrics`."""
    _check_size(len(data), name)
    if b"\x00" in data:
        raise UserError(
            f"{name} looks like a binary file (it has NUL bytes); give a plain text file of "
            "lyrics, saved as UTF-8"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UserError(
            f"{name} is not UTF-8 text (byte 0x{data[error.start]:02x} at position "
            f"{error.start}); save it as UTF-8 in your editor"
        ) from None
    if not text.strip("\ufeff \t\r\n\u3000"):
        raise UserError(f"{name} is empty; write the lyrics, a line per phrase")
    phrases = parse_lyrics(text)
    count = sum(len(phrase.morae) for phrase in phrases)
    if count > MAX_MORAE:
        raise UserError(
            f"{name} has {count} morae to sing; acgmake sings up to {MAX_MORAE} "
            "(about 4–5 minutes): split the song into shorter parts"
        )
    return phrases


def _check_length(line: str, number: int) -> None:
    # Measured as OpenJTalk is given it: NFKC turns one character into up to 18.
    length = max(len(line), len(unicodedata.normalize("NFKC", line)))
    if length > MAX_LINE_CHARACTERS:
        raise UserError(
            f"line {number} of the lyrics is {length:,} characters long; a line is one phrase "
            f"(acgmake reads up to {MAX_LINE_CHARACTERS:,} characters a line) — break it into "
            "lines"
        )


def _check_size(size: int, name: str) -> None:
    if size > MAX_LYRICS_BYTES:
        raise UserError(
            f"{name} is {size:,} bytes; lyrics files are limited to "
            f"{MAX_LYRICS_BYTES // 1024} KB (a song is a few KB) — is it the right file?"
        )
