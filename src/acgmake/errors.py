"""Errors a user can act on.

Anything raised as a :class:`UserError` is shown as one line (``Error: ...``) with a non-zero
exit and no traceback. Any other exception is a bug and keeps its traceback. These are plain
exceptions, usable from the Python API without click; only the command line
(:mod:`acgmake.cli`) turns them into click's.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input or environment: the message says what is wrong and what to do."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        # One line, whatever a file name or value in it holds (a control character is "?").
        message = "".join("?" if ord(c) < 32 or 127 <= ord(c) < 160 else c for c in message)
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class PluginError(UserError):
    """A third-party plugin failed to load or raised; the message names the plugin."""

    exit_code = 3


class Interrupted(UserError):
    """The user pressed Ctrl-C; finished stages are kept, nothing half-written remains."""

    exit_code = 130
