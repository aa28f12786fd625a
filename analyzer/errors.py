"""Errors a user can cause. Each carries an exit code and a one-line message that names the fix.

Only `analyzer.cli` turns these into output; everything else raises them.
"""

from __future__ import annotations


class AnalyzerError(Exception):
    """Base of all user-facing errors; `exit_code` is what the CLI exits with."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        # One line whatever a file name or a damaged file puts in it: newlines and other control
        # characters are shown escaped (`\n`), printable Unicode as it is.
        message = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in message)
        super().__init__(message)
        self.message = message


class InputError(AnalyzerError):
    """A path, shard, column or option the user gave is wrong (usage/input: exit 2)."""

    exit_code = 2


class ModelError(AnalyzerError):
    """A classifier or tokenizer could not be loaded (usage/input: exit 2)."""

    exit_code = 2


class RunError(AnalyzerError):
    """The run itself failed (disk full, output not writable, shard failures): exit 1."""

    exit_code = 1


def one_line(detail: object, limit: int = 300) -> str:
    """`detail` (often a library's exception) as one printable line of at most `limit` characters.

    Library messages can carry newlines and raw bytes from a damaged file; the CLI promises one
    line per error.
    """
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in str(detail)).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
