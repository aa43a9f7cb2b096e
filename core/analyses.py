"""Runs the configured analyses and assembles segments.json and analyses.json from their results.

An analysis whose data is missing is skipped with the reason recorded, never faked. Each
analysis's wall seconds (its data check, its work and writing its tables) are recorded beside its
facts in analyses.json, because the analyse stage's single figure cannot say which analysis to make
cheaper.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import atomic, plugins, progress
from .errors import SeglensError, StageFailed
from .model import AnalysisContext, AnalysisResult

log = logging.getLogger(__name__)


def data_supports(ctx: AnalysisContext, need: str) -> str | None:
    """None if the dataset has what `need` names, else the reason it does not."""
    ds = ctx.dataset
    if need == "values" and ds.value_kind == "none":
        return "the events carry no values"
    if need == "ratings" and ds.value_kind != "rating":
        return "the events carry no ratings"
    if need == "amounts" and ds.value_kind not in ("amount", "quantity"):
        return "the events carry no monetary amounts"
    if need == "catalog" and not ds.has_catalog:
        return "there is no item catalog"
    if need == "timestamps":
        lo, hi = ds.con.execute("SELECT min(ts), max(ts) FROM events").fetchall()[0]
        if lo is None or lo == hi:
            return "all events share one timestamp"
    if need == "text":
        n = ds.con.execute("SELECT count(*) FROM events WHERE text IS NOT NULL AND text <> ''").fetchall()[0][0]
        if n == 0:
            return "the events carry no text (tags or reviews)"
    return None


def base_segments(ctx: AnalysisContext) -> list[dict[str, Any]]:
    labels = ctx.segmentation.labels
    n = len(labels)
    ids, counts = np.unique(labels, return_counts=True)
    out = []
    for sid, size in sorted(zip(ids.tolist(), counts.tolist()), key=lambda t: (t[0] < 0, t[0])):
        out.append({
            "id": int(sid),
            "size": int(size),
            "share": round(size / n, 6) if n else 0.0,
            "name": "Unassigned users" if sid < 0 else "",
            "description": "",
        })
    return out


def _analyse(analysis: Any, name: str, ctx: AnalysisContext) -> AnalysisResult:
    """One analysis; a crash names the analysis and its plugin, since twelve run in one stage."""
    try:
        return analysis.analyse(ctx)
    except (SeglensError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise StageFailed(f"stage 'analyse' failed in plugin '{plugins.plugin_of('analysis', name)}' "
                          f"(analysis '{name}'): {type(exc).__name__}: {exc}") from exc


def run_analyses(ctx: AnalysisContext, names: list[str], folder: Path,
                 create: Callable[[str, str], Any]) -> list[str]:
    segments = base_segments(ctx)
    by_id = {s["id"]: s for s in segments}
    run_level: dict[str, Any] = {}
    files = ["segments.json", "analyses.json"]
    for name in names:
        t0 = time.perf_counter()
        analysis = create("analysis", name)
        reason = None
        for need in getattr(analysis, "requires", ()):
            reason = data_supports(ctx, need)
            if reason:
                break
        if reason:
            result = AnalysisResult(name=name, skipped=reason)
            progress.info(f"[yellow]analysis {name} skipped:[/yellow] {reason}")
        else:
            result = _analyse(analysis, name, ctx)
        entry = {"facts": result.run_level, "markdown": result.markdown, "skipped": result.skipped}
        run_level[name] = entry
        for sid, facts in result.per_segment.items():
            if int(sid) in by_id:
                by_id[int(sid)][name] = facts
                ctx.profiles.setdefault(int(sid), {})[name] = facts
        for fname, arr in result.arrays.items():
            atomic.write_npy(folder / f"{fname}.npy", np.asarray(arr))
            files.append(f"{fname}.npy")
        for fname, frame in result.tables.items():
            atomic.write_parquet(folder / f"{fname}.parquet", frame)
            files.append(f"{fname}.parquet")
        entry["seconds"] = round(time.perf_counter() - t0, 3)
        log.info("analysis %s: %.2fs", name, entry["seconds"])
    atomic.write_json(folder / "segments.json", segments)
    atomic.write_json(folder / "analyses.json", run_level)
    return files
