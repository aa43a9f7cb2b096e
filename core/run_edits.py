"""Edits an analyst makes to a finished run: renaming and merging segments, with an edit log.

Every edit is one transaction. The run folder is copied to a hidden sibling staging folder
(`.<run>.edit-partial`; the large files an edit never rewrites are hard-linked, not copied), the edit
and everything that depends on it (analyses, descriptions, reports, the log line) are written there,
and the staging folder is swapped in only at the end. A crash or Ctrl-C mid-edit leaves the old run
exactly as it was; the next edit clears the leftover staging folder.

Each edit appends one JSON line to `edits.jsonl` in the run folder: time, command, arguments, and
what the edited segments looked like before and after. A renamed segment is marked
`name_source: "human"`, so a later `seglens describe` keeps the name (see describing.py).

Merging B into A keeps A's id and retires B's (ids are not renumbered, so the edit log, the report
and the analyst's notes keep meaning the same segments). B's users keep their membership
probability from the original clustering.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
import unicodedata
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from . import __version__, atomic, plugins
from .describing import HUMAN_NAMED
from .errors import SeglensError
from .runfolder import RunFolder, swap_into_place

EDIT_LOG = "edits.jsonl"
MAX_NAME_CHARS = 80
# Files no edit rewrites: hard-linked into the staging copy (every seglens write replaces a file
# through os.replace, so the original run's copy is never touched through the link).
LINKED = frozenset({"embeddings.npy", "index.faiss", "events.parquet", "items.parquet", "user_attrs.parquet",
                    "item_vectors.npy", "item_vectors.parquet", "reduced.npy", "coords.npy", "features.parquet"})
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")  # can disguise text
DESCRIPTION_KEYS = ("name", "name_source", "description", "traits", "actions", "describer", "grounding",
                    "ungrounded", "description_meta")


# --- the transaction -----------------------------------------------------------------------------
def staging_path(run_path: Path) -> Path:
    run_path = Path(run_path)
    return run_path.with_name(f".{run_path.name}.edit-partial")


def _copy_or_link(src: str, dst: str) -> None:
    if Path(src).name in LINKED:
        try:
            os.link(src, dst)
            return
        except OSError:  # a file system without hard links: copy instead
            pass
    shutil.copy2(src, dst)


@contextmanager
def _edit_lock(run_path: Path) -> Iterator[None]:
    """One edit at a time per folder of runs: an exclusive lock on the run's parent folder."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, edits are still atomic
        yield
        return
    fd = os.open(Path(run_path).resolve().parent, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SeglensError("another seglens session is editing a run in this folder",
                               file=Path(run_path).parent, hint="wait for it to finish, then retry") from None
        yield
    finally:
        os.close(fd)


@contextmanager
def edit_transaction(run_path: Path) -> Iterator[Path]:
    """Yield a staging copy of the run to edit; swap it in when the block finishes, discard it if
    the block raises or is interrupted."""
    run_path = Path(run_path)
    staging = staging_path(run_path)
    with _edit_lock(run_path):
        if staging.exists():  # left behind by an edit that crashed
            shutil.rmtree(staging)
        try:
            shutil.copytree(run_path, staging, copy_function=_copy_or_link)
            yield staging
            swap_into_place(staging, run_path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


# --- the edit log --------------------------------------------------------------------------------
def read_edits(run_path: Path) -> list[dict[str, Any]]:
    """The run's edit log, oldest first (empty when the run was never edited)."""
    path = Path(run_path) / EDIT_LOG
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def append_edit(folder: Path, command: str, arguments: dict[str, Any], before: Any, after: Any) -> dict[str, Any]:
    """Add one line to the edit log (rewritten atomically, inside the edit's staging folder)."""
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": command,
             "arguments": arguments, "before": before, "after": after, "seglens_version": __version__}
    path = Path(folder) / EDIT_LOG
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    atomic.write_text(path, old + json.dumps(entry, ensure_ascii=False, default=str) + "\n")
    return entry


# --- checks --------------------------------------------------------------------------------------
def clean_name(name: str) -> str:
    """A segment name as stored: whitespace collapsed; no control characters (they could drive the
    terminal), not empty, not longer than MAX_NAME_CHARS."""
    text = " ".join(str(name).split())
    if not text:
        raise SeglensError("the new name is empty", hint='give a name in quotes, e.g. rename 3 "Weekend cooks"')
    if any(unicodedata.category(c) == "Cc" or c in BIDI_CONTROLS for c in text):
        raise SeglensError("the new name contains control characters", hint="use printable text only")
    if len(text) > MAX_NAME_CHARS:
        raise SeglensError(f"the new name is {len(text)} characters long", hint=f"keep it to {MAX_NAME_CHARS}")
    return text


def _name_key(name: str) -> str:
    return " ".join(str(name).split()).casefold()


def real_segment(segments: list[dict[str, Any]], segment_id: int, run_path: Path) -> dict[str, Any]:
    """The segment with this id; a one-line error for unassigned users (-1) or an unknown id."""
    ids = [int(s["id"]) for s in segments if int(s["id"]) >= 0]
    if int(segment_id) < 0:
        raise SeglensError("unassigned users (-1) are not a segment and cannot be edited",
                           hint=f"segments: {', '.join(map(str, ids))}")
    for s in segments:
        if int(s["id"]) == int(segment_id):
            return s
    raise SeglensError(f"no segment {segment_id} in this run", file=run_path,
                       hint=f"segments: {', '.join(map(str, ids))}")


# --- rename --------------------------------------------------------------------------------------
def _check_rename(segments: list[dict[str, Any]], segment_id: int, name: str, run_path: Path) -> dict[str, Any]:
    """The segment to rename; a one-line error if it is not one, or if another segment has the name."""
    seg = real_segment(segments, segment_id, run_path)
    for other in segments:
        if int(other["id"]) != int(segment_id) and _name_key(other.get("name", "")) == _name_key(name):
            raise SeglensError(f"segment {other['id']} is already called '{other.get('name')}'",
                               hint="segment names must be unique; choose another name")
    return seg


def rename_segment(run_path: Path, segment_id: int, new_name: str) -> dict[str, Any]:
    """Give segment `segment_id` a name chosen by the analyst (unique across the run), regenerate the
    reports and log the edit; returns the log entry."""
    run = RunFolder(run_path)
    name = clean_name(new_name)
    _check_rename(run.segments(), segment_id, name, run.path)  # fail fast, before copying anything
    with edit_transaction(run.path) as staging:
        staged = RunFolder(staging)
        segs = staged.segments()
        target = _check_rename(segs, segment_id, name, run.path)  # again under the lock
        before = {"segment": int(segment_id), "name": target.get("name", ""),
                  "name_source": target.get("name_source")}
        target["name"] = name
        target["name_source"] = HUMAN_NAMED
        staged.save_segments(segs)
        entry = append_edit(staging, "rename", {"segment": int(segment_id), "name": name}, before,
                            {"segment": int(segment_id), "name": name, "name_source": HUMAN_NAMED})
        regenerate_reports(staging)
    return entry


# --- merge ---------------------------------------------------------------------------------------
def merge_segments(run_path: Path, a: int, b: int) -> dict[str, Any]:
    """Move every user of segment B into segment A, then recompute what depends on membership:
    the run's analyses (profiles, centroids...), A's description, the manifest's counts and the
    reports. All in one transaction; returns the log entry."""
    run = RunFolder(run_path)
    _check_merge(run.segments(), a, b, run.path)  # fail fast, before copying anything
    t0 = time.perf_counter()
    with edit_transaction(run.path) as staging:
        segments = RunFolder(staging).segments()
        before = [_summary(s) for s in _check_merge(segments, a, b, run.path)]  # again under the lock
        moved = _relabel(staging, int(b), int(a))
        cfg = _reanalyse(staging)
        _carry_descriptions(staging, segments, keep_name_of={int(a)})
        warnings = _describe(staging, cfg, int(a))
        _update_manifest(staging, warnings, {int(a), int(b)})
        merged = RunFolder(staging).segment(int(a))
        entry = append_edit(staging, "merge", {"into": int(a), "merged": int(b)}, before,
                            {**_summary(merged), "moved_users": moved, "retired_segment": int(b),
                             "seconds": round(time.perf_counter() - t0, 2)})
        regenerate_reports(staging)
    return entry


def _check_merge(segments: list[dict[str, Any]], a: int, b: int, run_path: Path) -> tuple[dict, dict]:
    """Segments A and B; a one-line error for the same id twice, -1, or an unknown id."""
    if int(a) == int(b):
        raise SeglensError(f"cannot merge segment {a} with itself", hint="give two different segment ids")
    return real_segment(segments, a, run_path), real_segment(segments, b, run_path)


def _summary(seg: dict[str, Any]) -> dict[str, Any]:
    return {"segment": int(seg["id"]), "name": seg.get("name", ""), "size": int(seg.get("size", 0))}


def _relabel(folder: Path, source: int, target: int) -> int:
    import pandas as pd

    users = pd.read_parquet(Path(folder) / "users.parquet")
    mask = users["segment"].to_numpy() == source
    users.loc[mask, "segment"] = target
    atomic.write_parquet(Path(folder) / "users.parquet", users)
    return int(mask.sum())


def _reanalyse(folder: Path) -> dict[str, Any]:
    """Re-run the run's configured analyses on its (edited) files, as the pipeline's analyse stage
    does; this rewrites segments.json, analyses.json and the analyses' tables and arrays."""
    from .analyses import run_analyses
    from .runfolder import load_context

    run = RunFolder(folder)
    cfg = run.manifest["config"]
    ctx = load_context(run)
    ctx.profiles.clear()  # as in a fresh run: analyses fill it in order
    options = {**cfg.get("analysis", {}), "seed": cfg["seed"]}
    try:
        run_analyses(ctx, list(cfg["analyses"]), Path(folder),
                     lambda stage, name: plugins.create(stage, name, options))
    finally:
        ctx.dataset.con.close()
    return cfg


def _carry_descriptions(folder: Path, old: list[dict[str, Any]], keep_name_of: set[int]) -> None:
    """run_analyses writes segments without names: put back every unchanged segment's name and
    description, and a human-given name of the merged segment (its description is redone)."""
    by_id = {int(s["id"]): s for s in old}
    run = RunFolder(folder)
    segments = run.segments()
    for seg in segments:
        prev = by_id.get(int(seg["id"]))
        if prev is None:
            continue
        if int(seg["id"]) in keep_name_of:
            if prev.get("name_source") == HUMAN_NAMED:
                seg["name"], seg["name_source"] = prev["name"], HUMAN_NAMED
            continue
        for key in DESCRIPTION_KEYS:
            if key in prev:
                seg[key] = prev[key]
    run.save_segments(segments)


def _describe(folder: Path, cfg: dict[str, Any], segment_id: int) -> list[str]:
    from .describing import describe_run, make_describer

    return describe_run(Path(folder), make_describer(cfg), cfg, only={segment_id})


def _update_manifest(folder: Path, warnings: list[str], touched: set[int]) -> None:
    """New segment count, and describer warnings of the touched segments replaced by the new ones."""
    run = RunFolder(folder)
    m = run.manifest
    m.setdefault("counts", {})["segments"] = len([s for s in run.segments() if int(s["id"]) >= 0])
    stale = re.compile(r"segment (" + "|".join(str(t) for t in sorted(touched)) + r"): .*describer fell back")
    m["warnings"] = [w for w in m.get("warnings", []) if not stale.match(w)] + warnings
    atomic.write_json(Path(folder) / "manifest.json", m)


def regenerate_reports(folder: Path) -> list[str]:
    """Rewrite the run's configured reports so they show the edit."""
    from .reporting import write_reports

    run = RunFolder(folder)
    cfg = run.manifest.get("config", {})
    report = cfg.get("report", {})
    return write_reports(run, list(report.get("formats", [])), {**report, "seed": cfg.get("seed", 0)})
