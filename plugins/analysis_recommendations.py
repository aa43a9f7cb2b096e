"""Segment-aware recommendations: a ranked item list per segment, per-user lists that blend it with
what the user's nearest neighbours (FAISS) consumed, the `seglens recommend` command, and an offline
evaluation against popularity and item-kNN.

**Segment list.** For segment s and item i let c_si be the segment's users who consumed i, n_s the
segment's size, p_i = c_i / N the population's share. The segment share is shrunk toward the
population share with an empirical-Bayes beta-binomial prior of strength m (a Beta(m p_i, m (1 - p_i))
prior, i.e. m pseudo-users who behave like the population):

    theta_si = (c_si + m * p_i) / (n_s + m)        shrunk segment share
    lift_si  = theta_si / p_i                        shrunk lift
    score_si = theta_si * lift_si ** alpha           lift-weighted popularity (alpha in [0, 1])

so a small segment's 2-of-3 users does not beat a large segment's 400-of-1000, and an item the segment
likes no more than everybody (lift 1) ranks by plain popularity. m is estimated from the data by the
method of moments ("auto"): the beta-binomial intra-class correlation rho is the excess of the
between-segment variance of the shares over binomial noise, m = 1/rho - 1 (no real difference
between segments -> large m -> popularity; sharp segments -> small m). Unassigned users (segment -1)
get the population's popularity.

**Per-user list.** Unseen items scored by

    score_ui = w_seg * segment_score(s(u), i) / max_i + w_nn * neighbours(u, i) / max_i

where neighbours(u, i) is the similarity-weighted share of the user's k nearest users (FAISS, the
run's own user vectors, the user excluded) who consumed i. Both parts are scaled to [0, 1] per user
so the weights read as proportions. Ties are broken by popularity. Everything is batched sparse
linear algebra (a users x items CSR matrix, FAISS searches per batch, `argpartition`), so
`seglens recommend RUN --all` scores 100k users without a Python loop per user or a query per user.

Defaults (alpha 1, weights 0.3 / 0.7, 20 neighbours) were chosen on a *validation* split of
ml-latest-small (each user's second-to-last item held out, the last one dropped), never on the test
item: alpha 1 (theta x lift) beat 0 and 0.5, and a neighbour-heavy blend beat both parts alone; with
610 users, differences of a few hundredths of HR are within noise, which `evaluate_recs` reports as
a paired sign test against popularity.

Options (the `analysis` config section): recs_list_size (items kept per segment, 100),
recs_prior_strength ("auto" or a number), recs_lift_exponent (alpha), recs_segment_weight,
recs_neighbour_weight, recs_neighbours (k of the FAISS search), recs_top_n (items in segments.json).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd
import scipy.sparse as sp

from seglens import SeglensError, hookimpl
from seglens.config import DEFAULTS as CONFIG_DEFAULTS
from seglens.segment_stats import r
from seglens.model import AnalysisContext, AnalysisResult

# The recommender's options and their defaults: the `recs_*` keys of the analysis config section.
DEFAULTS = {k: v for k, v in CONFIG_DEFAULTS["analysis"].items() if k.startswith("recs_")}
FORMULA = ("theta = (c_si + m*p_i)/(n_s + m); lift = theta/p_i; segment score = theta * lift**alpha; "
           "user score = w_seg*segment/max + w_nn*neighbours/max over unseen items")
MAX_PRIOR = 1e6
DENSE_CELLS = 4_000_000  # users x items per batch (16 MB of float32)


@dataclass
class RecsOptions:
    list_size: int = 100
    prior: Any = "auto"
    alpha: float = 1.0
    w_seg: float = 0.3
    w_nn: float = 0.7
    neighbours: int = 20
    top_n: int = 5

    @classmethod
    def from_options(cls, options: dict[str, Any] | None) -> "RecsOptions":
        o = {**DEFAULTS, **{k: v for k, v in (options or {}).items() if k in DEFAULTS}}
        prior = o["recs_prior_strength"]
        if not (prior == "auto" or (isinstance(prior, (int, float)) and not isinstance(prior, bool) and prior >= 0)):
            raise SeglensError(f"analysis.recs_prior_strength must be 'auto' or a number >= 0, got {prior!r}")
        out = cls(int(o["recs_list_size"]), prior, float(o["recs_lift_exponent"]), float(o["recs_segment_weight"]),
                  float(o["recs_neighbour_weight"]), int(o["recs_neighbours"]), int(o["recs_top_n"]))
        if out.w_seg < 0 or out.w_nn < 0 or out.w_seg + out.w_nn <= 0:
            raise SeglensError("recommendation weights must be >= 0 and not both 0",
                               hint="set analysis.recs_segment_weight / analysis.recs_neighbour_weight")
        if not 0.0 <= out.alpha <= 2.0:
            raise SeglensError(f"analysis.recs_lift_exponent must be in [0, 2], got {out.alpha}")
        return out


def interactions(con: Any, user_ids: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """The binary users x items matrix (rows in `user_ids` order) and the item ids of its columns."""
    users = pd.DataFrame({"user_id": np.asarray(user_ids).astype(str), "row": np.arange(len(user_ids), dtype=np.int64)})
    con.register("_rec_users", users)
    try:
        items = con.execute("SELECT DISTINCT item_id FROM events WHERE item_id IS NOT NULL ORDER BY item_id").df()
        item_ids = items["item_id"].to_numpy(dtype=object)
        pairs = con.execute("""
            WITH it AS (SELECT item_id, (row_number() OVER (ORDER BY item_id) - 1)::BIGINT AS col
                        FROM (SELECT DISTINCT item_id FROM events WHERE item_id IS NOT NULL))
            SELECT DISTINCT u.row, it.col FROM events e JOIN _rec_users u USING (user_id) JOIN it USING (item_id)
        """).fetchnumpy()
    finally:
        con.unregister("_rec_users")
    rows = np.asarray(pairs["row"], dtype=np.int64)
    cols = np.asarray(pairs["col"], dtype=np.int64)
    x = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(user_ids), len(item_ids)))
    x.sum_duplicates()
    x.sort_indices()
    return x, item_ids


def prior_strength(counts: np.ndarray, sizes: np.ndarray, pop: np.ndarray) -> float:
    """Method-of-moments beta-binomial prior strength m from a segments x items count table.

    Var(c/n) = p(1-p)/n * (1 + (n-1) rho) for a beta-binomial with rho = 1/(m+1); rho is the
    size-weighted excess of the observed squared deviations over binomial noise, relative to
    p(1-p)(n-1)/n. No excess (segments no different from the population) gives a huge m.
    """
    n = sizes[:, None].astype(np.float64)
    p = pop[None, :]
    if counts.size == 0 or n.sum() <= 0:
        return MAX_PRIOR
    share = counts / np.maximum(n, 1.0)
    binom = p * (1 - p)
    num = (n * ((share - p) ** 2 - binom / np.maximum(n, 1.0))).sum()
    den = (n * binom * (n - 1) / np.maximum(n, 1.0)).sum()
    if den <= 0 or num <= 0:
        return MAX_PRIOR
    rho = min(num / den, 1.0)
    return float(min(MAX_PRIOR, max(0.0, 1.0 / rho - 1.0)))


class Recommender:
    """Segment lists and per-user blended recommendations over one run's interactions."""

    def __init__(self, x: sp.csr_matrix, item_ids: np.ndarray, user_ids: np.ndarray, labels: np.ndarray,
                 vectors: Any, index: Any, options: RecsOptions, titles: dict[str, str] | None = None) -> None:
        self.x = x
        self.item_ids = item_ids
        self.user_ids = np.asarray(user_ids).astype(str)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.vectors = vectors
        self.index = index
        self.opt = options
        self.titles = titles or {}
        self._row_of: dict[str, int] | None = None
        n_users = max(1, x.shape[0])
        self.item_users = np.asarray(x.sum(axis=0)).ravel().astype(np.float64)
        self.pop = self.item_users / n_users
        self.segment_ids = sorted(int(s) for s in np.unique(self.labels) if s >= 0)
        self._segment_scores()

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def from_context(cls, ctx: AnalysisContext, options: dict[str, Any] | None = None) -> "Recommender":
        x, item_ids = interactions(ctx.dataset.con, ctx.user_ids)
        return cls(x, item_ids, ctx.user_ids, ctx.segmentation.labels, ctx.embeddings.vectors, ctx.index,
                   RecsOptions.from_options(options if options is not None else ctx.config.get("analysis", {})),
                   _titles(ctx.dataset.con))

    @classmethod
    def from_run(cls, run: Any, overrides: dict[str, Any] | None = None) -> "Recommender":
        """Everything from the run folder alone: its events, users, vectors and FAISS index."""
        con = _connect(run.path)
        users = run.users()
        options = {**run.manifest.get("config", {}).get("analysis", {}), **(overrides or {})}
        x, item_ids = interactions(con, users["user_id"].to_numpy())
        rec = cls(x, item_ids, users["user_id"].to_numpy(), users["segment"].to_numpy(), run.embeddings(),
                  run.index(), RecsOptions.from_options(options), _titles(con))
        con.close()
        return rec

    # --- segment lists ------------------------------------------------------------------------
    def _segment_scores(self) -> None:
        """theta, lift and score per (segment, item) as dense segments x items arrays (row j is
        segment_ids[j]; the last row is the population, used for unassigned users)."""
        k = len(self.segment_ids)
        pos = {s: j for j, s in enumerate(self.segment_ids)}
        rows = np.array([pos.get(int(s), k) for s in self.labels], dtype=np.int64)
        ind = sp.csr_matrix((np.ones(len(rows)), (rows, np.arange(len(rows)))), shape=(k + 1, len(rows)))
        counts = np.asarray((ind @ self.x).todense(), dtype=np.float64)[:k]
        sizes = np.bincount(rows, minlength=k + 1)[:k].astype(np.float64)
        m = self.opt.prior
        self.prior = prior_strength(counts, sizes, self.pop) if m == "auto" else float(m)
        pop = np.maximum(self.pop, 1e-12)[None, :]
        theta = (counts + self.prior * pop) / np.maximum(sizes[:, None] + self.prior, 1e-12)
        lift = theta / pop
        score = theta * lift ** self.opt.alpha
        # the population row: plain popularity (theta = p, lift = 1)
        self.counts = np.vstack([counts, self.item_users[None, :]])
        self.sizes = np.concatenate([sizes, [float(len(self.labels))]])
        self.theta = np.vstack([theta, pop])
        self.lift = np.vstack([lift, np.ones_like(pop)])
        self.score = np.vstack([score, pop])
        mx = self.score.max(axis=1, keepdims=True) if self.score.shape[1] else np.ones((k + 1, 1))
        mx = np.where(np.isfinite(mx), mx, 1.0)
        self.score_norm = (self.score / np.where(mx > 0, mx, 1.0)).astype(np.float32)
        self.row_of_user = rows

    def segment_table(self) -> pd.DataFrame:
        """The top `list_size` items of every segment (and -1: the population) with their figures."""
        frames = []
        keys = [*self.segment_ids, -1]
        n = min(self.opt.list_size, self.score.shape[1])
        for j, sid in enumerate(keys):
            if n <= 0:
                break
            if sid == -1 and not (self.labels < 0).any():
                continue
            order = np.lexsort((-self.item_users, -self.score[j]))[:n]
            frames.append(pd.DataFrame({
                "segment": sid, "rank": np.arange(1, len(order) + 1), "item_id": self.item_ids[order].astype(str),
                "title": [self.titles.get(str(i)) for i in self.item_ids[order]],
                "score": self.score[j, order], "users": self.counts[j, order].astype(np.int64),
                "share_shrunk": self.theta[j, order], "population_share": self.pop[order],
                "lift": self.lift[j, order]}))
        cols = ["segment", "rank", "item_id", "title", "score", "users", "share_shrunk", "population_share", "lift"]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)

    # --- per user -----------------------------------------------------------------------------
    def row(self, user_id: str) -> int:
        if self._row_of is None:
            self._row_of = {u: i for i, u in enumerate(self.user_ids)}
        if str(user_id) not in self._row_of:
            raise SeglensError(f"user '{user_id}' is not in this run",
                               hint="user ids are matched as text; `seglens show RUN N` lists a segment's users")
        return self._row_of[str(user_id)]

    def neighbour_part(self, rows: np.ndarray) -> sp.csr_matrix:
        """Similarity-weighted share of each user's FAISS neighbours (self excluded) who consumed
        each item, as a sparse batch x items matrix."""
        n_users = self.x.shape[0]
        k = min(self.opt.neighbours, n_users - 1)
        if k <= 0 or self.opt.w_nn <= 0:
            return sp.csr_matrix((len(rows), self.x.shape[1]), dtype=np.float32)
        q = np.ascontiguousarray(np.asarray(self.vectors[rows], dtype=np.float32))
        sims, nb = self.index.search(q, k + 1)
        keep = (nb >= 0) & (nb != rows[:, None])
        w = np.where(keep, np.maximum(sims, 0.0), 0.0).astype(np.float32)
        nb = np.where(keep, nb, 0)
        # keep at most k neighbours per user (self may be missing from an approximate result)
        extra = np.cumsum(keep, axis=1) > k
        w[extra] = 0.0
        tot = w.sum(axis=1, keepdims=True)
        w = w / np.where(tot > 0, tot, 1.0)
        wm = sp.csr_matrix((w.ravel(), (np.repeat(np.arange(len(rows)), nb.shape[1]), nb.ravel())),
                           shape=(len(rows), n_users))
        wm.eliminate_zeros()
        return (wm @ self.x).tocsr()

    def score_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Blended scores (seen items -inf), the segment part and the neighbour part, each dense
        batch x items float32 arrays (parts already scaled to [0, 1] per user)."""
        rows = np.asarray(rows, dtype=np.int64)
        seg = self.score_norm[self.row_of_user[rows]]
        nn = self.neighbour_part(rows).toarray()
        mx = nn.max(axis=1, keepdims=True) if nn.shape[1] else np.ones((len(rows), 1), dtype=np.float32)
        nn = nn / np.where(mx > 0, mx, 1.0)
        total = self.opt.w_seg * seg + self.opt.w_nn * nn
        pmax = self.pop.max() if len(self.pop) else 1.0
        total = total + (1e-6 * self.pop / max(pmax, 1e-12)).astype(np.float32)[None, :]  # popularity tie-break
        seen = self.x[rows]
        total[np.repeat(np.arange(len(rows)), np.diff(seen.indptr)), seen.indices] = -np.inf
        return total.astype(np.float32), seg, nn.astype(np.float32)

    def batch_size(self) -> int:
        return int(max(16, min(4096, DENSE_CELLS // max(1, self.x.shape[1]))))

    def top_k(self, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(item columns, scores, segment parts, neighbour parts), each (len(rows), k); column -1
        where a user has fewer than k unseen items."""
        total, seg, nn = self.score_rows(rows)
        n_items = total.shape[1]
        kk = min(k, n_items)
        cols = np.full((len(rows), k), -1, dtype=np.int64)
        out = np.full((len(rows), k), np.nan, dtype=np.float32)
        segp = np.full((len(rows), k), np.nan, dtype=np.float32)
        nnp = np.full((len(rows), k), np.nan, dtype=np.float32)
        if kk == 0:
            return cols, out, segp, nnp
        part = np.argpartition(-total, kk - 1, axis=1)[:, :kk] if kk < n_items else \
            np.tile(np.arange(n_items), (len(rows), 1))
        ps = np.take_along_axis(total, part, axis=1)
        order = np.argsort(-ps, axis=1, kind="stable")
        part = np.take_along_axis(part, order, axis=1)
        ps = np.take_along_axis(ps, order, axis=1)
        ok = np.isfinite(ps)
        cols[:, :kk] = np.where(ok, part, -1)
        out[:, :kk] = np.where(ok, ps, np.nan)
        segp[:, :kk] = np.where(ok, np.take_along_axis(seg, part, axis=1), np.nan)
        nnp[:, :kk] = np.where(ok, np.take_along_axis(nn, part, axis=1), np.nan)
        return cols, out, segp, nnp

    def recommend_user(self, user_id: str, k: int) -> list[dict[str, Any]]:
        row = self.row(user_id)
        cols, scores, segp, nnp = self.top_k(np.array([row]), k)
        out = []
        for rank, (c, s, a, b) in enumerate(zip(cols[0], scores[0], segp[0], nnp[0]), start=1):
            if c < 0:
                break
            iid = str(self.item_ids[c])
            out.append({"rank": rank, "item_id": iid, "title": self.titles.get(iid), "score": r(s, 4),
                        "segment_part": r(a, 4), "neighbour_part": r(b, 4)})
        return out

    def recommend_all(self, k: int, rows: np.ndarray | None = None) -> pd.DataFrame:
        """user_id, rank, item_id, score for every user (or the given rows), in batches."""
        rows = np.arange(self.x.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
        parts = []
        bs = self.batch_size()
        for start in range(0, len(rows), bs):
            b = rows[start:start + bs]
            cols, scores, _, _ = self.top_k(b, k)
            ok = cols >= 0
            rr, kk = np.nonzero(ok)
            parts.append(pd.DataFrame({
                "user_id": self.user_ids[b][rr], "rank": (kk + 1).astype(np.int32),
                "item_id": self.item_ids[cols[ok]].astype(str), "score": scores[ok].astype(np.float64)}))
        if not parts:
            return pd.DataFrame({"user_id": [], "rank": [], "item_id": [], "score": []})
        return pd.concat(parts, ignore_index=True)


def _connect(folder: Path) -> Any:
    """A DuckDB connection with views on a run's Parquet tables. (RunFolder.connect binds the path
    as a prepared parameter, which DuckDB refuses inside CREATE VIEW, so the literal is used here.)"""
    import duckdb

    con = duckdb.connect()
    for table in ("events", "items", "user_attrs"):
        p = Path(folder) / f"{table}.parquet"
        if p.exists():
            lit = "'" + str(p).replace("'", "''") + "'"
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet({lit})")
    return con


def _titles(con: Any) -> dict[str, str]:
    df = con.execute("SELECT item_id, title FROM items WHERE title IS NOT NULL").df()
    return dict(zip(df["item_id"].astype(str), df["title"].astype(str)))


class RecommendationsAnalysis:
    requires: tuple[str, ...] = ()

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = dict(options)
        self.opt = RecsOptions.from_options(options)

    def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
        t0 = time.perf_counter()
        rec = Recommender.from_context(ctx, self.options)
        if rec.x.nnz == 0:
            return AnalysisResult("recommendations", skipped="the events name no items")
        table = rec.segment_table()
        per: dict[int, dict[str, Any]] = {}
        for sid, g in table.groupby("segment"):
            per[int(sid)] = {"top_items": [
                {"item_id": row.item_id, "title": row.title if isinstance(row.title, str) else None,
                 "score": r(row.score, 4), "lift": r(row.lift, 2), "users": int(row.users)}
                for row in g.head(self.opt.top_n).itertuples()]}
        run = {"formula": FORMULA, "prior_strength": r(rec.prior, 2),
               "prior_strength_source": "method of moments" if self.opt.prior == "auto" else "config",
               "lift_exponent": self.opt.alpha, "segment_weight": self.opt.w_seg,
               "neighbour_weight": self.opt.w_nn, "neighbours": self.opt.neighbours,
               "list_size": self.opt.list_size, "items": int(rec.x.shape[1]),
               "seconds": r(time.perf_counter() - t0, 2)}
        md = (f"- segment lists: lift-weighted popularity with empirical-Bayes shrinkage (prior strength "
              f"m = {run['prior_strength']}, lift exponent {self.opt.alpha}), top {self.opt.list_size} per segment "
              f"in recommendations_segments.parquet\n- per user: {self.opt.w_seg:g} x segment list + "
              f"{self.opt.w_nn:g} x {self.opt.neighbours} FAISS-nearest users (`seglens recommend RUN USER`)")
        return AnalysisResult("recommendations", per, run, tables={"recommendations_segments": table}, markdown=md)

    def evaluate_offline(self, events_path: Path | str, *, k: int = 10,
                         config_overrides: tuple[str, ...] | list[str] = (), **kwargs: Any) -> dict[str, Any]:
        """`seglens evaluate EVENTS --recs`: the leave-last-out evaluation of `evaluate_recs`."""
        return evaluate_recs(events_path, k=k, config_overrides=tuple(config_overrides), **kwargs)


# --- offline evaluation -------------------------------------------------------------------------

def _hits(ranked: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per user: hit (0/1) and NDCG with one relevant item (1/log2(rank + 1))."""
    match = ranked == target[:, None]
    hit = match.any(axis=1)
    pos = np.argmax(match, axis=1)
    return hit.astype(float), np.where(hit, 1.0 / np.log2(pos + 2.0), 0.0)


def _paired(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Users hit by a but not b (wins) and the reverse (losses), with the exact two-sided sign
    test (McNemar's exact test) p-value: with a few hundred users, HR differences of a point or two
    are within noise, and this says how far."""
    from scipy.stats import binomtest

    wins, losses = int(((a > 0) & (b == 0)).sum()), int(((a == 0) & (b > 0)).sum())
    p = binomtest(wins, wins + losses, 0.5).pvalue if wins + losses else 1.0
    return {"wins": wins, "losses": losses, "p_sign_test": r(p, 4)}


def _top_unseen(scores: np.ndarray, seen: sp.csr_matrix, k: int) -> np.ndarray:
    scores = np.array(scores, dtype=np.float64, copy=True)
    scores[np.repeat(np.arange(scores.shape[0]), np.diff(seen.indptr)), seen.indices] = -np.inf
    kk = min(k, scores.shape[1])
    if kk == 0:
        return np.full((scores.shape[0], k), -1, dtype=np.int64)
    part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    out = np.take_along_axis(part, order, axis=1)
    return np.where(np.isfinite(np.take_along_axis(scores, out, axis=1)), out, -1)


def item_knn_scores(x: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """Item-kNN: score(u, j) = sum over the user's items i of cosine(i, j), cosine taken on the
    item columns of the binary co-occurrence matrix; computed as ((x_u D) X^T) X D with
    D = diag(1/sqrt(users per item)) so the items x items matrix is never materialized."""
    n = np.asarray(x.sum(axis=0)).ravel()
    d = sp.diags(1.0 / np.sqrt(np.maximum(n, 1.0)))
    a = (x[rows] @ d) @ x.T
    return np.asarray(((a @ x) @ d).todense())


def evaluate_recs(events_path: Path | str, *, k: int = 10, config_overrides: tuple[str, ...] | list[str] = (),
                  items: Path | None = None, users: Path | None = None, validation: bool = False,
                  variants: dict[str, dict[str, Any]] | None = None, keep_run: Path | None = None) -> dict[str, Any]:
    """Leave-last-out evaluation of seglens recommendations against popularity and item-kNN.

    Each user's last event in time (ties: the larger item id) names the held-out item; *all* of the
    user's events on that item leave the training data, so the item is truly unseen. Users with a
    single distinct item stay in training and are not scored. A run is built on the rest (Pipeline
    in a temporary folder, keyword describer, only the recommendations analysis), and every method
    ranks the user's unseen training items: HR@k (held-out item in the top k) and NDCG@k.

    `validation=True` drops the last item as well and holds out the second-to-last, so options can be
    tuned without touching the test item. `variants` scores extra recommender option sets on the same
    run (e.g. {"segment only": {"recs_neighbour_weight": 0}}). `keep_run` copies the run there.
    """
    import shutil
    import tempfile

    from seglens import ingest
    from seglens.config import build_config
    from seglens.model import LoadRequest
    from seglens.pipeline import Pipeline
    from seglens.runfolder import RunFolder

    t_all = time.perf_counter()
    if k < 1:
        raise SeglensError(f"k must be at least 1, got {k}")
    overrides = ["describe.describer=keywords", 'analyses=["recommendations"]', "report.formats=[]",
                 *config_overrides]
    cfg = build_config(overrides=overrides)
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="seglens-recs-eval-") as tmp:
        tmpd = Path(tmp)
        t = time.perf_counter()
        ds = ingest.load_dataset(LoadRequest(events=Path(events_path), items=items, users=users), cfg["load"])
        holdout, n_users = _split(ds, tmpd, validation)
        seconds["split"] = round(time.perf_counter() - t, 2)
        if holdout.empty:
            raise SeglensError("no user has two distinct items, so none can be held out",
                               file=events_path, hint="leave-one-out needs users with at least two items")
        req = LoadRequest(events=tmpd / "train_events.parquet",
                          items=tmpd / "train_items.parquet" if (tmpd / "train_items.parquet").exists() else None,
                          users=tmpd / "train_users.parquet" if (tmpd / "train_users.parquet").exists() else None,
                          format="tabular", value_kind=ds.value_kind)
        t = time.perf_counter()
        Pipeline(req, cfg, tmpd / "run").run()
        seconds["run"] = round(time.perf_counter() - t, 2)
        run = RunFolder(tmpd / "run")
        results: dict[str, dict[str, Any]] = {}
        hits: dict[str, np.ndarray] = {}
        t = time.perf_counter()
        rec = Recommender.from_run(run)
        item_col = {str(i): j for j, i in enumerate(rec.item_ids)}
        holdout = holdout[holdout["user_id"].isin(set(rec.user_ids))]
        rows = np.array([rec.row(u) for u in holdout["user_id"]], dtype=np.int64)
        target = np.array([item_col.get(str(i), -2) for i in holdout["item_id"]], dtype=np.int64)
        seconds["setup"] = round(time.perf_counter() - t, 2)

        def score(name: str, ranked_fn, bs: int | None = None) -> None:
            t0 = time.perf_counter()
            ranked = []
            bs = bs or rec.batch_size()
            for s in range(0, len(rows), bs):
                ranked.append(ranked_fn(rows[s:s + bs]))
            hit, ndcg = _hits(np.vstack(ranked) if ranked else np.zeros((0, k), dtype=np.int64), target)
            results[name] = {f"hr@{k}": r(hit.mean(), 4), f"ndcg@{k}": r(ndcg.mean(), 4),
                             "seconds": r(time.perf_counter() - t0, 2)}
            hits[name] = hit

        score("seglens", lambda b: rec.top_k(b, k)[0])
        for name, opts in (variants or {}).items():
            base = {kk: v for kk, v in run.manifest["config"]["analysis"].items()}
            other = Recommender(rec.x, rec.item_ids, rec.user_ids, rec.labels, rec.vectors, rec.index,
                                RecsOptions.from_options({**base, **opts}), rec.titles)
            score(f"seglens[{name}]", lambda b, o=other: o.top_k(b, k)[0])
        pop = rec.item_users
        score("popularity", lambda b: _top_unseen(np.tile(pop, (len(b), 1)), rec.x[b], k))
        # item-kNN goes through a batch x users intermediate: keep it near 20M cells
        knn_bs = int(max(16, min(rec.batch_size(), 20_000_000 // max(1, rec.x.shape[0]))))
        score("item_knn", lambda b: _top_unseen(item_knn_scores(rec.x, b), rec.x[b], k), knn_bs)
        for name, hit in hits.items():
            if name != "popularity":
                results[name]["vs_popularity"] = _paired(hit, hits["popularity"])
        if keep_run is not None:
            if Path(keep_run).exists():
                shutil.rmtree(keep_run)
            shutil.copytree(tmpd / "run", keep_run)
        manifest = run.manifest
    return {
        "k": k,
        "protocol": ("leave-last-out: each user's last event names the held-out item, all its events leave "
                     "training; ranked among the user's unseen items" + ("; validation: second-to-last item, "
                                                                         "the last one dropped" if validation else "")),
        "users_evaluated": int(len(rows)),
        "users_total": int(n_users),
        "held_out_items_unknown_in_training": int((target < 0).sum()),
        "methods": results,
        "recommender": {k2: manifest["config"]["analysis"].get(k2, v) for k2, v in DEFAULTS.items()},
        "segments": int(manifest.get("counts", {}).get("segments", 0)),
        "seconds": {**seconds, "total": r(time.perf_counter() - t_all, 2)},
    }


def _split(ds: Any, folder: Path, validation: bool) -> tuple[pd.DataFrame, int]:
    """Write train events/items/users as Parquet; return the held-out (user_id, item_id) pairs."""
    con = ds.con
    drop_last = 1 if validation else 0
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _last AS
        WITH per_item AS (SELECT user_id, item_id, max(ts) AS ts FROM events WHERE item_id IS NOT NULL GROUP BY ALL),
        ranked AS (SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY ts DESC, item_id DESC) AS pos,
                          count(*) OVER (PARTITION BY user_id) AS n_items FROM per_item)
        SELECT user_id, item_id, pos FROM ranked WHERE pos <= {1 + drop_last} AND n_items >= {2 + drop_last}
    """)
    holdout = con.execute(f"SELECT user_id, item_id FROM _last WHERE pos = {1 + drop_last} ORDER BY user_id").df()
    n_users = int(con.execute("SELECT count(DISTINCT user_id) FROM events").fetchall()[0][0])
    con.execute(f"""
        COPY (SELECT e.user_id, e.item_id, e.ts AS timestamp, e.event, e.value, e.text FROM events e
              ANTI JOIN _last l ON e.user_id = l.user_id AND e.item_id = l.item_id
              ORDER BY e.user_id, e.ts, e.item_id) TO '{folder / "train_events.parquet"}' (FORMAT parquet)""")
    if ds.has_catalog:
        con.execute(f"COPY (SELECT * FROM items) TO '{folder / 'train_items.parquet'}' (FORMAT parquet)")
    if ds.has_user_attrs:
        con.execute(f"COPY (SELECT * FROM user_attrs) TO '{folder / 'train_users.parquet'}' (FORMAT parquet)")
    holdout["user_id"] = holdout["user_id"].astype(str)
    holdout["item_id"] = holdout["item_id"].astype(str)
    return holdout, n_users


# --- command ------------------------------------------------------------------------------------

@hookimpl
def register_analyses(register):
    register("recommendations", RecommendationsAnalysis, description="per-segment item lists (lift-weighted, "
             "shrunk popularity) and per-user lists blended with FAISS neighbours")


@hookimpl
def register_commands(cli):
    @cli.command()
    @click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
    @click.argument("user_id", required=False)
    @click.option("-k", "k", default=10, show_default=True, type=int, help="How many items per user.")
    @click.option("--all", "all_users", is_flag=True, help="Every user of the run (needs -o).")
    @click.option("-o", "--out", type=click.Path(path_type=Path),
                  help="With --all: the file to write, .csv or .parquet (user_id, rank, item_id, score).")
    @click.option("--segment-weight", type=float, help="Weight of the segment list (default: the run's config).")
    @click.option("--neighbour-weight", type=float, help="Weight of the FAISS neighbours (default: the run's config).")
    @click.option("--neighbours", type=int, help="How many nearest users to ask FAISS for.")
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    def recommend(run_dir: Path, user_id: str | None, k: int, all_users: bool, out: Path | None,
                  segment_weight: float | None, neighbour_weight: float | None, neighbours: int | None,
                  as_json: bool) -> None:
        """Recommend unseen items to USER_ID (or to every user with --all) from a run folder."""
        from seglens.runfolder import RunFolder

        if k < 1:
            raise SeglensError(f"-k must be at least 1, got {k}")
        if all_users and user_id:
            raise SeglensError("give either a USER_ID or --all, not both")
        if not all_users and not user_id:
            raise SeglensError("give a USER_ID, or --all -o FILE for every user")
        if all_users:
            if out is None:
                raise SeglensError("--all needs -o FILE (.csv or .parquet)")
            fmt = _out_format(out)
        elif out is not None:
            raise SeglensError("-o is only for --all", hint="without --all the list is printed")
        run = RunFolder(run_dir)
        overrides = {k2: v for k2, v in (("recs_segment_weight", segment_weight),
                                         ("recs_neighbour_weight", neighbour_weight),
                                         ("recs_neighbours", neighbours)) if v is not None}
        rec = Recommender.from_run(run, overrides)
        if all_users:
            t0 = time.perf_counter()
            frame = rec.recommend_all(k)
            _write(frame, out, fmt)
            summary = {"file": str(out), "users": int(frame["user_id"].nunique()), "rows": int(len(frame)),
                       "k": k, "seconds": r(time.perf_counter() - t0, 2)}
            click.echo(json.dumps(summary) if as_json else
                       f"wrote {summary['rows']:,} recommendations for {summary['users']:,} users to {out}")
            return
        res = user_recommendations(run, rec, str(user_id), k)
        if as_json:
            click.echo(json.dumps(res, indent=2, ensure_ascii=False))
            return
        print_user_recommendations(res)


def user_recommendations(run: Any, rec: Recommender, user_id: str, k: int) -> dict[str, Any]:
    """One user's top-k unseen items with their segment (shared by `recommend` and `explore`)."""
    items = rec.recommend_user(str(user_id), k)
    seg = int(rec.labels[rec.row(str(user_id))])
    names = {int(s["id"]): s.get("name", "") for s in run.segments()}
    return {"user_id": str(user_id), "segment": seg, "segment_name": names.get(seg, ""), "items": items}


def print_user_recommendations(res: dict[str, Any]) -> None:
    """The table of `user_recommendations`; titles and names are data, never rich markup."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=escape(f"recommendations for {res['user_id']} (segment {res['segment']}: {res['segment_name']})"))
    for c in ("rank", "item", "score", "segment", "neighbours"):
        t.add_column(c, justify="left" if c == "item" else "right")
    for it in res["items"]:
        t.add_row(str(it["rank"]), escape(it["title"] or it["item_id"]), f"{it['score']:.3f}",
                  f"{it['segment_part']:.3f}", f"{it['neighbour_part']:.3f}")
    Console().print(t)


def _out_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise SeglensError("unknown output format", file=path, hint="use a .csv or .parquet file name")


def _write(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    from seglens import atomic

    if fmt == "parquet":
        atomic.write_parquet(path, frame)
    else:
        atomic.write_with(path, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.6g",
                                                         compression="gzip" if path.name.lower().endswith(".gz")
                                                         else None))
