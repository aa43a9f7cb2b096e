"""`seglens report RUN --format html|md|json [-o FILE]`: (re)write one report of a finished run.

Any registered reporter is a format (`html-section:*` registrations are parts of the HTML page, not
formats). The run's own report settings apply (its seed draws the same map sample); `--max-points`
overrides the map's sample size. By default the file goes into the run folder as `report.<ext>`;
like every file seglens writes, it is replaced atomically. Nothing is recomputed.
"""
from __future__ import annotations

import time
from pathlib import Path

import click

from seglens import hookimpl, plugins
from seglens.default_plugins.map_command import DEFAULT_MAX_POINTS
from seglens.default_plugins.report_data import as_dict
from seglens.default_plugins.report_html import SECTION_PREFIX
from seglens.runfolder import RunFolder


@click.command(name="report")
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.option("--format", "fmt", default="html", show_default=True, help="html, md, json, or another reporter.")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="The file to write (default RUN/report.<ext>).")
@click.option("--max-points", type=int, default=None,
              help=f"Largest number of users on the map (default {DEFAULT_MAX_POINTS:,}; larger runs are sampled).")
def report_cmd(run_dir: Path, fmt: str, out: Path | None, max_points: int | None) -> None:
    """Write a report of a finished run (HTML by default) without recomputing anything."""
    from rich.markup import escape
    from seglens import progress
    from seglens.errors import SeglensError
    from seglens.reporting import EXTENSIONS

    run = RunFolder(run_dir)
    fmt = {"markdown": "md"}.get(fmt, fmt)
    names = sorted(n for n in plugins.registrations("reporter") if not n.startswith(SECTION_PREFIX))
    if fmt not in names:
        raise SeglensError(f"no report format '{fmt}'", hint=f"available: {', '.join(names)}")
    cfg = as_dict(run.manifest.get("config"))
    options = {**as_dict(cfg.get("report")), "seed": cfg.get("seed", run.manifest.get("seed", 0))}
    if max_points is not None:
        if max_points < 1:
            raise SeglensError("--max-points must be at least 1")
        options["map_max_points"] = max_points
    target = Path(out) if out is not None else run.path / f"report.{EXTENSIONS.get(fmt, fmt)}"
    if target.exists() and target.is_dir():
        raise SeglensError("the output path is a folder", file=target, hint="give a file name with -o")
    t0 = time.perf_counter()
    plugins.create("reporter", fmt, options).write(run, target)
    progress.info(escape(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - t0:.1f}s)"))


@hookimpl
def register_commands(cli):
    cli.add_command(report_cmd)
