"""The core profile of every segment: size, lifted categories and items, RFM, activity times,
representative users (nearest the segment centroid through the FAISS index), and quality figures.

Lift compares a segment with the whole population (share in segment / share overall), so a
segment is described by what sets it apart, not by what everybody likes.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from seglens import hookimpl
from seglens.model import AnalysisContext, AnalysisResult
from seglens.analysis_helpers import rnd as _r

WEEKDAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]


class ProfileAnalysis:
    requires: tuple[str, ...] = ()

    def __init__(self, options: dict[str, Any]) -> None:
        self.top_n = int(options.get("top_n", 10))
        self.min_support = int(options.get("min_support", 5))
        self.n_reps = int(options.get("representatives", 5))
        self.sil_sample = int(options.get("silhouette_sample", 5000))
        self.seed = int(options.get("seed", 42))

    def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
        labels = ctx.segmentation.labels
        con = ctx.dataset.con
        members = pd.DataFrame({"user_id": ctx.user_ids.astype(str), "segment": labels})
        con.register("_members", members)
        try:
            cats = self._category_lift(ctx) if ctx.dataset.has_catalog else {}
            items = self._item_lift(ctx)
        finally:
            con.unregister("_members")
        feats = ctx.features.table
        centroids, reps = self._centroids_and_reps(ctx)
        per: dict[int, dict[str, Any]] = {}
        for sid in sorted(set(labels.tolist())):
            mask = labels == sid
            f = feats[mask]
            per[sid] = {
                "top_categories": cats.get(sid, []),
                "top_items": items.get(sid, []),
                "rfm": self._rfm(f, feats),
                "activity": self._activity(f),
                "membership_mean": _r(ctx.segmentation.probabilities[mask].mean()),
                "representatives": reps.get(sid, []),
            }
        run = {
            "quality": self._quality(ctx),
            "population": {"rfm": self._rfm(feats, feats), "activity": self._activity(feats),
                           "n_users": int(len(labels)), "top_categories": self._population_categories(ctx)},
        }
        seg_ids = [s for s in sorted(set(labels.tolist())) if s >= 0]
        arrays = {"segment_centroids": centroids} if len(seg_ids) else {}
        return AnalysisResult("profile", per, run, arrays=arrays, markdown=self._markdown(run))

    # --- pieces -------------------------------------------------------------------------------
    def _category_lift(self, ctx: AnalysisContext) -> dict[int, list[dict[str, Any]]]:
        df = ctx.dataset.con.execute(
            """
            WITH ev AS (
                SELECT m.segment, e.user_id, unnest(i.categories) AS category
                FROM events e JOIN items i USING (item_id) JOIN _members m USING (user_id)),
            seg AS (SELECT segment, category, count(*) AS n, count(DISTINCT user_id) AS users
                    FROM ev GROUP BY ALL),
            seg_tot AS (SELECT segment, count(*) AS n FROM ev GROUP BY segment),
            pop AS (SELECT category, count(*) AS n FROM ev GROUP BY category),
            pop_tot AS (SELECT count(*) AS n FROM ev)
            SELECT seg.segment, seg.category, seg.users, seg.n AS events,
                   seg.n / seg_tot.n AS share, pop.n / pop_tot.n AS population_share
            FROM seg JOIN seg_tot USING (segment) JOIN pop USING (category), pop_tot
            """
        ).df()
        df["lift"] = df["share"] / df["population_share"]
        return self._top(df, "category", "users")

    def _population_categories(self, ctx: AnalysisContext) -> list[dict[str, Any]]:
        if not ctx.dataset.has_catalog:
            return []
        df = ctx.dataset.con.execute(
            """
            WITH ev AS (SELECT unnest(i.categories) AS category FROM events e JOIN items i USING (item_id))
            SELECT category, count(*) / (SELECT count(*) FROM ev) AS share FROM ev
            GROUP BY category ORDER BY share DESC, category LIMIT ?
            """,
            [self.top_n],
        ).df()
        return [{"category": r.category, "share": _r(r.share, 4)} for r in df.itertuples()]

    def _item_lift(self, ctx: AnalysisContext) -> dict[int, list[dict[str, Any]]]:
        df = ctx.dataset.con.execute(
            """
            WITH ui AS (SELECT DISTINCT m.segment, e.user_id, e.item_id
                        FROM events e JOIN _members m USING (user_id)),
            sizes AS (SELECT segment, count(*) AS size FROM _members GROUP BY segment),
            seg AS (SELECT segment, item_id, count(*) AS users FROM ui GROUP BY ALL),
            pop AS (SELECT item_id, count(*) AS users FROM ui GROUP BY item_id)
            SELECT seg.segment, seg.item_id, any_value(i.title) AS title, seg.users,
                   seg.users / any_value(sizes.size) AS share,
                   any_value(pop.users) / (SELECT count(*) FROM _members) AS population_share
            FROM seg JOIN sizes USING (segment) JOIN pop USING (item_id) LEFT JOIN items i USING (item_id)
            GROUP BY seg.segment, seg.item_id, seg.users
            """
        ).df()
        df["lift"] = df["share"] / df["population_share"]
        return self._top(df, "item_id", "users")

    def _top(self, df: pd.DataFrame, key: str, support_col: str) -> dict[int, list[dict[str, Any]]]:
        out: dict[int, list[dict[str, Any]]] = {}
        for sid, g in df.groupby("segment"):
            size = int(g[support_col].max()) if len(g) else 0
            support = min(self.min_support, max(2, size // 4))  # tiny segments still get a profile
            g = g[g[support_col] >= support]
            g = g.sort_values(["lift", support_col, key], ascending=[False, False, True]).head(self.top_n)
            rows = []
            for rec in g.to_dict("records"):
                row = {key: rec[key]}
                if "title" in rec:
                    row["title"] = rec["title"] if isinstance(rec["title"], str) else None
                row.update({"users": int(rec["users"]), "share": _r(rec["share"]),
                            "population_share": _r(rec["population_share"]), "lift": _r(rec["lift"], 2)})
                rows.append(row)
            out[int(sid)] = rows
        return out

    def _rfm(self, f: pd.DataFrame, population: pd.DataFrame) -> dict[str, Any]:
        """RFM figures; money and ratings only where the events carry them, each also as an index
        against the population (1.0 = average) so describers can compare without arithmetic."""
        out = {
            "users": int(len(f)),
            "events_mean": _r(f["n_events"].mean(), 2),
            "events_median": _r(f["n_events"].median(), 2),
            "recency_days_median": _r(f["recency_days"].median(), 1),
            "tenure_days_median": _r(f["tenure_days"].median(), 1),
            "active_days_mean": _r(f["active_days"].mean(), 2),
            "frequency_per_month_median": _r(f["frequency_per_month"].median(), 2),
        }
        if population["monetary"].notna().any():
            pop_mean = population["monetary"].mean()
            out.update({"monetary_total": _r(f["monetary"].sum(), 2), "monetary_mean": _r(f["monetary"].mean(), 2),
                        "monetary_median": _r(f["monetary"].median(), 2),
                        "monetary_mean_index": _r(f["monetary"].mean() / pop_mean, 2) if pop_mean else None})
        if population["mean_value"].notna().any():
            out["rating_mean"] = _r(f["mean_value"].mean(), 2)
        pop_events = population["n_events"].median()
        out["events_median_index"] = _r(f["n_events"].median() / pop_events, 2) if pop_events else None
        return out

    def _activity(self, f: pd.DataFrame) -> dict[str, Any]:
        if len(f) == 0:
            return {}
        hour = f["peak_hour"].mode()
        day = f["peak_weekday"].mode()
        return {
            "peak_hour": int(hour.iloc[0]) if len(hour) else None,
            "peak_weekday": WEEKDAYS[int(day.iloc[0])] if len(day) else None,
            "weekend_share": _r(f["weekend_share"].mean()),
            "night_share": _r(f["night_share"].mean()),
        }

    def _centroids_and_reps(self, ctx: AnalysisContext) -> tuple[np.ndarray, dict[int, list[dict[str, Any]]]]:
        labels = ctx.segmentation.labels
        vecs = ctx.embeddings.vectors
        ids = ctx.user_ids.astype(str)
        seg_ids = [s for s in sorted(set(labels.tolist())) if s >= 0]
        centroids = np.zeros((len(seg_ids), vecs.shape[1]), dtype=np.float32)
        reps: dict[int, list[dict[str, Any]]] = {}
        for j, sid in enumerate(seg_ids):
            c = vecs[labels == sid].mean(axis=0)
            c = c / max(np.linalg.norm(c), 1e-12)
            centroids[j] = c
            # Ask FAISS for the nearest users and keep those in this segment; widen if needed.
            k = self.n_reps * 4
            while True:
                sims, rows = ctx.index.search(c[None, :], k)
                picked = [(float(s), int(r)) for s, r in zip(sims[0], rows[0]) if r >= 0 and labels[r] == sid]
                if len(picked) >= self.n_reps or k >= len(labels):
                    break
                k = min(len(labels), k * 4)
            reps[sid] = [{"user_id": ids[r], "similarity": _r(s)} for s, r in picked[: self.n_reps]]
        return centroids, reps

    def _quality(self, ctx: AnalysisContext) -> dict[str, Any]:
        from sklearn.metrics import silhouette_score

        labels = ctx.segmentation.labels
        q = dict(ctx.segmentation.quality)
        q["n_segments"] = int(len(set(labels[labels >= 0].tolist())))
        q["noise_share"] = _r((labels < 0).mean(), 4)
        keep = np.flatnonzero(labels >= 0)
        if len(set(labels[keep].tolist())) >= 2:
            rng = np.random.default_rng(self.seed)
            pick = rng.choice(keep, size=min(len(keep), self.sil_sample), replace=False)
            if len(set(labels[pick].tolist())) >= 2:
                q["silhouette"] = _r(silhouette_score(ctx.segmentation.reduced[pick], labels[pick]), 4)
                q["silhouette_sample"] = int(len(pick))
        return q

    def _markdown(self, run: dict[str, Any]) -> str:
        q = run["quality"]
        parts = [f"- segments: {q.get('n_segments')}", f"- noise share: {q.get('noise_share')}"]
        for key in ("silhouette", "relative_validity"):
            if key in q:
                parts.append(f"- {key.replace('_', ' ')}: {q[key]:.3f}")
        return "\n".join(parts)


@hookimpl
def register_analyses(register):
    register("profile", ProfileAnalysis, description="size, lifted categories/items, RFM, activity, "
             "representative users, quality")
