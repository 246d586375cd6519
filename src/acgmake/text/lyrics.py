"""Reading a lyrics file: the checks a user's text file must pass before it is set to music."""

from __future__ import annotations

from pathlib import Path

from acgmake.errors import UserError
from acgmake.text.kana import Phrase, parse_lyrics

#: A whole song's lyrics in kana are a few KB; anything far larger is the wrong file.
MAX_LYRICS_BYTES = 64 * 1024
#: About 4–5 minutes of singing at the default tempo (one eighth note per mora).
MAX_MORAE = 1000


def read_lyrics(path: str | Path) -> list[Phrase]:
    """The phrases of the lyrics file at ``path`` (UTF-8 kana, a line per phrase).

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
            "lyrics in kana, saved as UTF-8"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UserError(
            f"{name} is not UTF-8 text (byte 0x{data[error.start]:02x} at position "
            f"{error.start}); save it as UTF-8 in your editor"
        ) from None
    if not text.strip("\ufeff \t\r\n\u3000"):
        raise UserError(f"{name} is empty; write the lyrics in kana, a line per phrase")
    phrases = parse_lyrics(text)
    count = sum(len(phrase.morae) for phrase in phrases)
    if count > MAX_MORAE:
        raise UserError(
            f"{name} has {count} morae to sing; acgmake sings up to {MAX_MORAE} "
            "(about 4–5 minutes): split the song into shorter parts"
        )
    return phrases


def _check_size(size: int, name: str) -> None:
    if size > MAX_LYRICS_BYTES:
        raise UserError(
            f"{name} is {size:,} bytes; lyrics files are limited to "
            f"{MAX_LYRICS_BYTES // 1024} KB (a song is a few KB) — is it the right file?"
        )
