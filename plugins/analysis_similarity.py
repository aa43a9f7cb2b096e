"""Which segments resemble each other: a segment x segment matrix and each segment's nearest ones.

Two views, because they answer different questions:

- centroid cosine: the cosine between the segments' mean user vectors (each the L2-normalized mean of
  its members' embeddings, as in the profile) -- how close the tastes are in the embedding space;
- item Jaccard: the overlap of the segments' lifted items (items over-represented in the segment:
  lift > 1, held by at least `min_support` members; at most `similarity_items`, 500 by default, the
  most used first) -- whether they actually consume the same things. The profile's top 10 items by
  lift cannot serve: the highest-lift items are by construction the ones unique to a segment, so two
  top-10 lists almost never overlap even for neighbouring tastes. The sets are recomputed here with
  the profile's lift definition but without the top-by-lift cut.

Nearest segments are ranked by centroid cosine (defined for every pair; item overlap is often zero
between distinct segments) with the item Jaccard beside it. Noise (-1) has no centroid and is left
out. The matrix goes to `segment_similarity.parquet` in long form (segment_a, segment_b, both figures;
symmetric, ones on the diagonal).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from seglens import SeglensError, hookimpl
from seglens.model import AnalysisContext, AnalysisResult
from seglens.analysis_helpers import rnd as _r

TABLE = "segment_similarity"


def centroids(vectors: np.ndarray, labels: np.ndarray, seg_ids: list[int]) -> np.ndarray:
    """L2-normalized mean vector per segment, in `seg_ids` order (the profile's definition)."""
    out = np.zeros((len(seg_ids), vectors.shape[1]), dtype=np.float64)
    for j, s in enumerate(seg_ids):
        c = np.asarray(vectors[labels == s], dtype=np.float64).mean(axis=0)
        out[j] = c / max(np.linalg.norm(c), 1e-12)
    return out


def lifted_items(con: Any, user_ids: np.ndarray, labels: np.ndarray, top: int,
                 min_support: int) -> dict[int, set[str]]:
    """Per segment the item ids with lift > 1 and enough members, at most `top` (most users first)."""
    members = pd.DataFrame({"user_id": np.asarray(user_ids).astype(str), "segment": labels})
    members = members[members["segment"] >= 0]
    con.register("_sim_members", members)
    try:
        df = con.execute(
            """
            WITH ui AS (SELECT DISTINCT m.segment, e.user_id, e.item_id
                        FROM events e JOIN _sim_members m USING (user_id)),
            sizes AS (SELECT segment, count(*) AS size FROM _sim_members GROUP BY segment),
            seg AS (SELECT segment, item_id, count(*) AS users FROM ui GROUP BY ALL),
            pop AS (SELECT item_id, count(*) AS users FROM ui GROUP BY item_id),
            lifted AS (
                SELECT seg.segment, seg.item_id, seg.users, sizes.size,
                       (seg.users / sizes.size) / (pop.users / (SELECT count(*) FROM _sim_members)) AS lift
                FROM seg JOIN sizes USING (segment) JOIN pop USING (item_id))
            SELECT segment, item_id, lift FROM lifted
            WHERE lift > 1 AND users >= least(?, greatest(2, size // 4))
            QUALIFY row_number() OVER (PARTITION BY segment ORDER BY users DESC, lift DESC, item_id) <= ?
            """,
            [min_support, top],
        ).df()
    finally:
        con.unregister("_sim_members")
    out: dict[int, set[str]] = {}
    for sid, g in df.groupby("segment"):
        out[int(sid)] = set(g["item_id"].astype(str))
    return out


def similarity_table(vectors: np.ndarray, labels: np.ndarray, items: dict[int, set[str]] | None) -> pd.DataFrame:
    """Long-form segment x segment table with centroid cosine and (if given) lifted-item Jaccard."""
    labels = np.asarray(labels)
    seg_ids = sorted(int(s) for s in np.unique(labels) if s >= 0)
    cols = ["segment_a", "segment_b", "centroid_cosine", "item_jaccard"]
    if not seg_ids:
        return pd.DataFrame(columns=cols)
    c = centroids(vectors, labels, seg_ids)
    cos = np.clip(c @ c.T, -1.0, 1.0)
    np.fill_diagonal(cos, 1.0)
    cos = (cos + cos.T) / 2  # exact symmetry despite float summation order
    rows = []
    for i, a in enumerate(seg_ids):
        for j, b in enumerate(seg_ids):
            if items is None:
                jac = np.nan
            elif a == b:
                jac = 1.0
            else:
                sa, sb = items.get(a, set()), items.get(b, set())
                jac = len(sa & sb) / len(sa | sb) if (sa or sb) else 0.0
            rows.append((a, b, float(cos[i, j]), float(jac)))
    return pd.DataFrame(rows, columns=cols)


def nearest(table: pd.DataFrame, segment: int, k: int) -> list[dict[str, Any]]:
    """The k segments most similar to `segment` by centroid cosine, with the item Jaccard beside it."""
    t = table[(table["segment_a"] == segment) & (table["segment_b"] != segment)]
    t = t.sort_values(["centroid_cosine", "segment_b"], ascending=[False, True]).head(k)
    return [{"segment": int(r.segment_b), "centroid_cosine": _r(r.centroid_cosine),
             "item_jaccard": _r(r.item_jaccard)} for r in t.itertuples()]


class SimilarityAnalysis:
    requires: tuple[str, ...] = ()

    def __init__(self, options: dict[str, Any]) -> None:
        self.n_items = int(options.get("similarity_items", 500))
        self.k = int(options.get("similarity_nearest", 3))
        self.min_support = int(options.get("min_support", 5))

    def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
        labels = np.asarray(ctx.segmentation.labels)
        seg_ids = ctx.segmentation.segment_ids
        items = lifted_items(ctx.dataset.con, ctx.user_ids, labels, self.n_items, self.min_support)
        table = similarity_table(ctx.embeddings.vectors, labels, items)
        per = {s: {"nearest": nearest(table, s, self.k)} for s in seg_ids}
        off = table[table["segment_a"] < table["segment_b"]]
        pairs = off.sort_values(["centroid_cosine", "segment_a", "segment_b"], ascending=[False, True, True]).head(5)
        run: dict[str, Any] = {
            "n_segments": len(seg_ids),
            "measures": {"centroid_cosine": "cosine of the segments' mean user vectors",
                         "item_jaccard": f"overlap of up to {self.n_items} lifted items per segment"},
            "most_similar_pairs": [{"segments": [int(r.segment_a), int(r.segment_b)],
                                    "centroid_cosine": _r(r.centroid_cosine), "item_jaccard": _r(r.item_jaccard)}
                                   for r in pairs.itertuples()],
        }
        if len(off):
            run["centroid_cosine_mean"] = _r(off["centroid_cosine"].mean())
            run["item_jaccard_mean"] = _r(off["item_jaccard"].mean())
        else:
            run["note"] = "fewer than two segments: nothing to compare"
        return AnalysisResult("similarity", per, run, tables={TABLE: table}, markdown=self._markdown(run))

    def _markdown(self, run: dict[str, Any]) -> str:
        if not run["most_similar_pairs"]:
            return run.get("note", "")
        lines = ["Most similar segment pairs:", "", "| segments | centroid cosine | lifted-item Jaccard |",
                 "|---|---:|---:|"]
        for p in run["most_similar_pairs"]:
            lines.append(f"| {p['segments'][0]} & {p['segments'][1]} | {p['centroid_cosine']:.3f} | "
                         f"{p['item_jaccard']:.3f} |")
        return "\n".join(lines)


# --- `seglens similar RUN --segment N` --------------------------------------------------------------
def run_similarity_table(run: Any) -> tuple[pd.DataFrame, str]:
    """The run's segment x segment table: the saved one, or computed now from the run folder."""
    path = Path(run.path) / f"{TABLE}.parquet"
    if path.exists():
        return pd.read_parquet(path), "segment_similarity.parquet"
    users = run.users()
    labels = users["segment"].to_numpy()
    options = run.manifest.get("config", {}).get("analysis", {})
    import duckdb

    con = duckdb.connect()  # only the events are needed (and a view cannot take a prepared path)
    try:
        events = str(Path(run.path) / "events.parquet").replace("'", "''")
        con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{events}')")
        items = lifted_items(con, users["user_id"].to_numpy(), labels, int(options.get("similarity_items", 500)),
                             int(options.get("min_support", 5)))
    finally:
        con.close()
    return similarity_table(np.asarray(run.embeddings()), labels, items), "computed now"


def nearest_segments(run: Any, segment: int, k: int = 3) -> dict[str, Any]:
    seg = run.segment(segment)  # a SeglensError naming the run's segments if there is no such one
    if int(segment) < 0:
        raise SeglensError("unassigned users (-1) are not a segment and have no centroid",
                           hint="pass a segment id from `seglens show RUN`")
    table, source = run_similarity_table(run)
    names = {s["id"]: s.get("name", "") for s in run.segments()}
    out = nearest(table, int(segment), k)
    for o in out:
        o["name"] = names.get(o["segment"], "")
    return {"segment": int(segment), "name": seg.get("name", ""), "nearest": out, "source": source}


def print_nearest_segments(run: Any, segment: int, k: int, as_json: bool) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    res = nearest_segments(run, segment, k)
    if as_json:
        click.echo(json.dumps(res, indent=2, ensure_ascii=False))
        return
    t = Table(title=escape(f"segments most similar to {res['segment']} ({res['name']})"))
    for c, just in (("segment", "right"), ("name", "left"), ("centroid cosine", "right"),
                    ("lifted-item Jaccard", "right")):
        t.add_column(c, justify=just)
    for o in res["nearest"]:
        jac = o["item_jaccard"]
        t.add_row(str(o["segment"]), escape(o["name"]), f"{o['centroid_cosine']:.3f}",
                  "" if jac is None else f"{jac:.3f}")
    con = Console()
    if not res["nearest"]:
        con.print("this run has no other segment to compare with", markup=False, highlight=False)
        return
    con.print(t)


@hookimpl
def register_analyses(register):
    register("similarity", SimilarityAnalysis, description="segment x segment similarity (centroid cosine, "
             "lifted-item Jaccard) and each segment's nearest segments")
