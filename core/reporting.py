"""Writing a run's reports with the configured reporter plugins (after a run, a re-describe, an edit)."""
from __future__ import annotations

from typing import Any

from . import plugins
from .runfolder import RunFolder

EXTENSIONS = {"markdown": "md", "md": "md", "html": "html", "json": "json"}


def write_reports(run: RunFolder, formats: list[str], options: dict[str, Any]) -> list[str]:
    written = []
    for fmt in formats:
        reporter = plugins.create("reporter", fmt, options)
        name = f"report.{EXTENSIONS.get(fmt, fmt)}"
        reporter.write(run, run.path / name)
        written.append(name)
    return written
