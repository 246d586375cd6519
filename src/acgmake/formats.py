"""Checked reading of the JSON files the stages exchange (``timing.json``, ``face.json``).

:func:`read_json_file` reads a file within a size and nesting limit; the ``checked_*``
functions check one value each and raise :class:`FormatProblem` naming where it is
(``lines[2].start_s is nan, outside 0 to 3600``), which the file's reader turns into one
:class:`~acgmake.errors.UserError` line naming the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from acgmake.errors import UserError

T = TypeVar("T")
_BREAKS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class FormatProblem(ValueError):
    """What is wrong with a value read from a file, where in it (``lines[2].start_s is ...``);
    the file's reader turns it into a :class:`UserError` naming the file."""


def read_json_file(path: Path, *, what: str, max_bytes: int, max_depth: int, remedy: str) -> Any:
    """The JSON value in the file at ``path``; :class:`UserError` in one line, naming the
    file, when it is missing, larger than ``max_bytes``, not UTF-8, not JSON, or nested more
    than ``max_depth`` deep. ``what`` names the kind of file ("a timing file"), ``remedy``
    says what to do."""
    path = Path(path)
    name = one_line(str(path))
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise UserError(
                f"{name} is {size:,} bytes, too large for {what} (at most "
                f"{max_bytes // 1024:,} KB); is it the right file? {remedy}"
            )
        data = path.read_bytes()
    except OSError as error:
        raise UserError(f"cannot read {what} {name}: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UserError(
            f"{name} is not UTF-8 text (byte 0x{data[error.start]:02x} at position "
            f"{error.start}), so not {what}; {remedy}"
        ) from None
    try:
        value = json.loads(text)
    except RecursionError:  # Python's parser recurses once per level
        value, deep = None, True
    except ValueError as error:  # JSONDecodeError, or an integer of over 4,300 digits
        shown = " ".join(str(error).split())[:120]
        raise UserError(f"{name} is not valid JSON ({shown}), so not {what}; {remedy}") from None
    else:
        deep = _deeper_than(value, max_depth)
    if deep:
        raise UserError(
            f"{name} nests its values more than {max_depth} deep, which {what} never does; {remedy}"
        )
    return value


def checked_value(raw: Any, check: Callable[[Any], T], *, source: str, what: str, remedy: str) -> T:
    """``check(raw)``, or one :class:`UserError` line naming ``source`` (a file) and what is
    wrong, for the :class:`FormatProblem` ``check`` raises. ``what``: "a timing file"."""
    try:
        return check(raw)
    except FormatProblem as problem:
        raise UserError(
            one_line(f"{source} is not {what} acgmake can read: {problem}; ") + remedy
        ) from None


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters (from a file's keys, values or
    name) shown as ``?``, so a message about it stays one line."""
    return _BREAKS.sub("?", text)


def key_path(where: str, key: str) -> str:
    """``where.key``, or ``where["key"]`` for a key that is not a plain name."""
    return (
        f"{where}.{key}" if key.isidentifier() and key.isascii() else f"{where}[{json.dumps(key)}]"
    )


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists and objects more than ``limit`` deep (walked without
    recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def _shown(value: Any) -> str:
    """``value`` as a short JSON-like text for a message."""
    if isinstance(value, (dict, list, tuple)):
        return "an object" if isinstance(value, dict) else f"a list of {len(value)}"
    if value is None:
        return "missing (or null)"
    shown = " ".join(repr(value).split())
    return shown if len(shown) <= 40 else shown[:40] + "…"


def checked_object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FormatProblem(f"{where} is {_shown(value)}, not an object")
    return value


def checked_list(value: Any, where: str, max_items: int) -> Sequence[Any]:
    if not isinstance(value, (list, tuple)):
        raise FormatProblem(f"{where} is {_shown(value)}, not a list")
    if len(value) > max_items:
        raise FormatProblem(f"{where} has {len(value):,} items, more than {max_items:,}")
    return value


def checked_text(value: Any, where: str, max_length: int) -> str:
    if not isinstance(value, str):
        raise FormatProblem(f"{where} is {_shown(value)}, not a text")
    if len(value) > max_length:
        raise FormatProblem(f"{where} is {len(value):,} characters, more than {max_length:,}")
    return value


def checked_number(value: Any, where: str, bounds: tuple[float, float]) -> float:
    """``value`` as a float if it is a number within ``bounds`` (so finite)."""
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FormatProblem(f"{where} is {_shown(value)}, not a number")
    if not low <= value <= high:  # False for NaN; exact for integers of any size
        raise FormatProblem(f"{where} is {_shown(value)}, outside {low:g} to {high:g}")
    return float(value)


def checked_integer(value: Any, where: str, bounds: tuple[int, int]) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FormatProblem(f"{where} is {_shown(value)}, not a whole number")
    checked_number(value, where, bounds)
    return value


def checked_span(
    item: dict[str, Any], where: str, bounds: tuple[float, float]
) -> tuple[float, float]:
    """(start_s, end_s) of ``item``, within ``bounds``, the end not before the start."""
    start = checked_number(item.get("start_s"), f"{where}.start_s", bounds)
    end = checked_number(item.get("end_s"), f"{where}.end_s", bounds)
    if end < start:
        raise FormatProblem(f"{where} ends at {end:g} s, before it starts ({start:g} s)")
    return start, end
