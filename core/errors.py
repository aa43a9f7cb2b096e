"""One error type for the user's mistakes, so the launcher can tell them apart from our bugs.

A `SeglensError` becomes one line on stderr and exit code 2; anything else is a bug (exit 1).
"""
from __future__ import annotations

from pathlib import Path


class SeglensError(Exception):
    """A problem the user can fix: bad input, bad config, a missing file or model."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        row: int | None = None,
        column: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = str(file) if file is not None else None
        self.row = row
        self.column = column
        self.hint = hint

    def one_line(self) -> str:
        """The whole story on one line: where, what, and what to do about it."""
        where = []
        if self.file:
            where.append(self.file)
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column '{self.column}'")
        prefix = ", ".join(where)
        text = f"{prefix}: {self.message}" if prefix else self.message
        if self.hint:
            text += f" ({self.hint})"
        return " ".join(text.split())

    def __str__(self) -> str:
        return self.one_line()


class PluginError(SeglensError):
    """A plugin failed to load or misbehaved; the message names the plugin."""


class StageFailed(Exception):
    """A stage crashed inside a plugin: a bug (exit 1), but one whose message names the plugin."""


class InterruptedRun(KeyboardInterrupt):
    """The user interrupted a run after some stage finished: the partial folder is kept for --resume,
    and the message says so. A KeyboardInterrupt still, so every handler of Ctrl-C treats it as one."""
