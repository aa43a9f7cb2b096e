"""`report.md`: a readable summary of a run for wikis, pull requests and the terminal.

Text from the data (titles, categories) is escaped so a title cannot inject Markdown or HTML.

The reporter also draws PNG charts with matplotlib into `<report>_files/` beside the report (the map of
users, and each segment's lifted categories) and links them with relative paths, so the report and
its folder can be copied into a wiki or a pull request together. `--set report.md_charts=false`
turns them off; without matplotlib the report is written without them. `render(run)` alone gives the
text without charts.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from seglens import atomic, hookimpl
from seglens.runfolder import RunFolder

log = logging.getLogger(__name__)
_MD_SPECIAL = re.compile(r"([\\`*_\[\]#|<>])")


def md_escape(text: Any) -> str:
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:,.3g}" if abs(x) < 1000 else f"{x:,.0f}"
    return md_escape(x)


def render(run: RunFolder, charts: dict[str, Any] | None = None) -> str:
    """The Markdown text; `charts` ({"map": relpath, "segments": {id: relpath}}) adds image links."""
    charts = charts or {}
    m = run.manifest
    segs = run.segments()
    counts = m.get("counts", {})
    lines = [
        "# seglens report",
        "",
        f"{counts.get('users', 0):,} users, {counts.get('events', 0):,} events, {counts.get('items', 0):,} items; "
        f"{counts.get('segments', 0)} segments, {counts.get('noise_users', 0):,} unassigned users.",
        "",
        f"- loader: {md_escape(m.get('loader'))}; value kind: {m.get('value_kind')}; seed: {m.get('seed')}",
        f"- embedding: {md_escape(m['config']['embed']['strategy'])} with {md_escape(m['plugins'].get('embedder', {}).get('name', '?'))}",
        f"- reducer: {m['config']['reduce']['method']}; clusterer: {m['config']['cluster']['method']}",
        "",
    ]
    if charts.get("map"):
        lines += ["## Map", "", f"![Map of users coloured by segment]({charts['map']})", ""]
    analyses = _analyses(run)
    prof = analyses.get("profile", {})
    if prof.get("markdown"):
        lines += ["## Quality", "", prof["markdown"], ""]
    lines += ["## Segments", "", "| id | name | users | share | top categories |", "|---:|---|---:|---:|---|"]
    for s in segs:
        cats = ", ".join(f"{md_escape(c['category'])} ({c['lift']:.1f}x)"
                         for c in s.get("profile", {}).get("top_categories", [])[:3])
        lines.append(f"| {s['id']} | {md_escape(s.get('name', ''))} | {s['size']:,} | {s['share']:.1%} | {cats} |")
    lines.append("")
    for s in segs:
        if s["id"] < 0:
            continue
        p = s.get("profile", {})
        lines += [f"### {s['id']}. {md_escape(s.get('name', ''))}", "", md_escape(s.get("description", "")), ""]
        chart = charts.get("segments", {}).get(s["id"])
        if chart:
            lines += [f"![Lifted categories of segment {s['id']}]({chart})", ""]
        for t in s.get("traits", []):
            lines.append(f"- {md_escape(t)}")
        if s.get("traits"):
            lines.append("")
        items = p.get("top_items", [])[:5]
        if items:
            lines.append("Top items by lift: " + "; ".join(
                f"{md_escape(i.get('title') or i['item_id'])} ({i['lift']:.1f}x, {i['users']} users)" for i in items))
            lines.append("")
        rfm = p.get("rfm", {})
        if rfm:
            lines.append("RFM: " + ", ".join(f"{k.replace('_', ' ')} {_fmt(v)}" for k, v in rfm.items() if v is not None))
            lines.append("")
        reps = p.get("representatives", [])
        if reps:
            lines.append("Representative users: " + ", ".join(md_escape(r["user_id"]) for r in reps))
            lines.append("")
    for name, a in analyses.items():
        if name == "profile":
            continue
        lines += [f"## {name}", ""]
        lines.append(f"Skipped: {md_escape(a['skipped'])}" if a.get("skipped") else a.get("markdown", ""))
        lines.append("")
    if m.get("warnings"):
        lines += ["## Warnings", ""] + [f"- {md_escape(wn)}" for wn in m["warnings"]] + [""]
    lines += ["## Timings (seconds)", ""] + [f"- {k}: {v:.2f}" for k, v in m.get("seconds", {}).items()]
    return "\n".join(lines) + "\n"


def _analyses(run: RunFolder) -> dict[str, Any]:
    import json

    p = run.path / "analyses.json"
    return json.loads(p.read_text(encoding="utf-8")) if p.exists() else {}


def write_charts(run: RunFolder, report_path: Path, max_points: int | None = None) -> dict[str, Any]:
    """Draw the map and each segment's lifted-categories chart into `<report stem>_files/` beside the
    report; returns their paths relative to the report (for `render`). Old segment charts are removed."""
    from seglens.default_plugins.map_command import (DEFAULT_MAX_POINTS, segment_colours, write_categories_png,
                                                     write_map_png)

    report_path = Path(report_path)
    folder = report_path.parent / f"{report_path.stem}_files"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("segment-*.png"):
        old.unlink()
    out: dict[str, Any] = {"segments": {}}
    write_map_png(run, folder / "map.png", max_points=max_points or DEFAULT_MAX_POINTS, dpi=100)
    out["map"] = f"{folder.name}/map.png"
    segs = run.segments()
    colours = segment_colours([s["id"] for s in segs] or [0])
    for s in segs:
        if s["id"] < 0:
            continue
        name = f"segment-{int(s['id'])}-categories.png"
        if write_categories_png(s, folder / name, colour=colours.get(s["id"], "#4e79a7")) is not None:
            out["segments"][s["id"]] = f"{folder.name}/{name}"
    return out


class MarkdownReporter:
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def write(self, run: RunFolder, path: Path) -> Path:
        charts = None
        if self.options.get("md_charts", True):
            try:
                charts = write_charts(run, Path(path), self.options.get("map_max_points"))
            except ImportError as exc:
                log.warning("report.md is written without charts (%s); pip install matplotlib", exc)
            except Exception as exc:  # a chart must never cost the report
                log.warning("report.md is written without charts: %s: %s", type(exc).__name__, exc)
        return atomic.write_text(Path(path), render(run, charts))


@hookimpl
def register_reporters(register):
    register("md", MarkdownReporter, description="report.md: a Markdown summary")
