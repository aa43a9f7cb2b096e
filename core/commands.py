"""Read commands that explore a finished run folder: `show` and `similar`.

They read only the run folder (never the original logs), and each has --json for scripting.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .cli import NegativeIdCommand, cli
from .runfolder import RunFolder


def _out() -> Console:
    return Console()


def _cats(seg: dict[str, Any], n: int = 3) -> str:
    return ", ".join(f"{c['category']} ({c['lift']:.1f}x)" for c in seg.get("profile", {}).get("top_categories", [])[:n])


@cli.command(cls=NegativeIdCommand)
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.argument("segment", required=False, type=int)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show(run_dir: Path, segment: int | None, as_json: bool) -> None:
    """A table of a run's segments, or one SEGMENT's profile."""
    run = RunFolder(run_dir)
    if segment is None:
        segs = run.segments()
        if as_json:
            click.echo(json.dumps([{k: s.get(k) for k in ("id", "name", "size", "share", "description")}
                                   for s in segs], indent=2, ensure_ascii=False))
            return
        q = (run.manifest.get("counts") or {})
        t = Table(title=f"{q.get('users', 0):,} users in {q.get('segments', 0)} segments")
        for col, just in (("id", "right"), ("name", "left"), ("users", "right"), ("share", "right"),
                          ("top categories (lift)", "left")):
            t.add_column(col, justify=just)
        for s in segs:
            t.add_row(str(s["id"]), escape(s.get("name", "")), f"{s['size']:,}", f"{s['share']:.1%}",
                      escape(_cats(s)))
        _out().print(t)
        return
    seg = run.segment(segment)
    if as_json:
        click.echo(json.dumps(seg, indent=2, ensure_ascii=False))
        return
    _print_segment(seg)


def _print_segment(seg: dict[str, Any]) -> None:
    con = _out()
    p = seg.get("profile", {})
    name = escape(seg.get("name", ""))
    con.print(f"[bold]{seg['id']}. {name}[/bold]  {seg['size']:,} users ({seg['share']:.1%})",
              markup=True, highlight=False)
    if seg.get("description"):
        con.print(seg["description"], markup=False, highlight=False)
    for t in seg.get("traits", []):
        con.print(f"  • {t}", markup=False, highlight=False)
    for key, label, col in (("top_categories", "Lifted categories", "category"), ("top_items", "Lifted items", "title")):
        rows = p.get(key, [])
        if not rows:
            continue
        t = Table(title=label)
        for c in (col, "users", "share", "population", "lift"):
            t.add_column(c, justify="left" if c == col else "right")
        for r in rows:
            t.add_row(escape(str(r.get(col) or r.get("item_id"))), str(r["users"]), f"{r['share']:.1%}",
                      f"{r['population_share']:.1%}", f"{r['lift']:.2f}")
        con.print(t)
    rfm = p.get("rfm", {})
    if rfm:
        t = Table(title="Behaviour")
        t.add_column("measure")
        t.add_column("value", justify="right")
        for k, v in {**rfm, **p.get("activity", {})}.items():
            t.add_row(k.replace("_", " "), f"{v:,.2f}" if isinstance(v, float) else str(v))
        con.print(t)
    reps = p.get("representatives", [])
    if reps:
        con.print("Representative users: " + ", ".join(r["user_id"] for r in reps), markup=False, highlight=False)
    for a in seg.get("actions", []):
        con.print(f"  → {a}", markup=False, highlight=False)


@cli.command(cls=NegativeIdCommand)
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.argument("user_id", required=False)
@click.option("--segment", type=int, help="Show the segments nearest to segment N instead of users.")
@click.option("-k", "k", type=int, default=None, help="How many neighbours (default 10 users, or 3 segments).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def similar(run_dir: Path, user_id: str | None, segment: int | None, k: int | None, as_json: bool) -> None:
    """The K users most similar to USER_ID (FAISS nearest neighbours) and their segments,
    or with --segment N the segments most similar to segment N."""
    from .errors import SeglensError

    if (user_id is None) == (segment is None):
        raise SeglensError("give either USER_ID or --segment N", hint="e.g. `seglens similar RUN 42` or "
                           "`seglens similar RUN --segment 3`")
    run = RunFolder(run_dir)
    if segment is not None:
        from .default_plugins.analysis_similarity import print_nearest_segments

        print_nearest_segments(run, segment, 3 if k is None else k, as_json)
        return
    k = 10 if k is None else k
    users = run.users()
    row = run.user_row(user_id)
    vec = np.asarray(run.embeddings()[row], dtype=np.float32)
    sims, rows = run.index().search(vec[None, :], k + 1)
    names = {s["id"]: s.get("name", "") for s in run.segments()}
    out = []
    for s, r in zip(sims[0], rows[0]):
        if r < 0 or r == row:
            continue
        seg = int(users["segment"].iat[r])
        out.append({"user_id": str(users["user_id"].iat[r]), "similarity": round(float(s), 4), "segment": seg,
                    "segment_name": names.get(seg, "")})
    out = out[:k]
    me = int(users["segment"].iat[row])
    if as_json:
        click.echo(json.dumps({"user_id": user_id, "segment": me, "neighbours": out}, indent=2, ensure_ascii=False))
        return
    t = Table(title=escape(f"users most similar to {user_id} (segment {me}: {names.get(me, '')})"))
    for c in ("user", "similarity", "segment", "segment name"):
        t.add_column(c, justify="right" if c in ("similarity", "segment") else "left")
    for o in out:
        t.add_row(escape(o["user_id"]), f"{o['similarity']:.3f}", str(o["segment"]), escape(o["segment_name"]))
    _out().print(t)
