"""Progress bars and logging set-up shared by every stage, so plugins show progress the same way."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)
_quiet = False


def configure(verbose: int = 0, quiet: bool = False) -> None:
    global _quiet
    _quiet = quiet
    level = logging.WARNING
    if quiet:
        level = logging.ERROR
    elif verbose == 1:
        level = logging.INFO
    elif verbose >= 2:
        level = logging.DEBUG
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=verbose >= 2, markup=False)],
        force=True,
    )
    for noisy in ("numba", "sentence_transformers", "transformers", "urllib3", "httpx", "filelock", "faiss",
                  "faiss.loader"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


class Task:
    """A handle a stage advances; a no-op when output is quiet or not a terminal."""

    def __init__(self, progress: Progress | None, task_id: int | None) -> None:
        self._progress = progress
        self._id = task_id

    def advance(self, n: float = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._id, n)

    def total(self, total: float | None) -> None:
        if self._progress is not None:
            self._progress.update(self._id, total=total)


@contextmanager
def task(description: str, total: float | None = None) -> Iterator[Task]:
    if _quiet or not console.is_terminal:
        yield Task(None, None)
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        yield Task(progress, progress.add_task(description, total=total))


def is_quiet() -> bool:
    return _quiet


def status(message: str) -> None:
    """A transient note for someone watching a terminal (which stage runs); silent in pipes."""
    if not _quiet and console.is_terminal:
        console.print(message, highlight=False)


def info(message: str) -> None:
    """A status line the user sees unless -q (logging is for -v details)."""
    if not _quiet:
        console.print(message, highlight=False)
