"""How satisfied each segment is, from what users said: their ratings and their words.

- **Ratings** (events the dataset marks as ratings: event types like 'rating', or every event when
  the values are ratings): mean rating, the distribution, and the share of low ratings, per segment
  against the population. "Low" is at most 40% of the scale's top, i.e. <= 2 on a 5-star scale; the
  top is the largest rating in the data (a 10-point scale then has low <= 4). Means and shares are
  ratios over users' ratings, so their intervals are cluster-robust (users as clusters): one user's
  50 grumpy ratings are one grumpy user, not 50 independent opinions.
- **Text** (tags, reviews: events with text, e.g. MovieLens tags): VADER sentiment (vaderSentiment
  ships its lexicon, so nothing is downloaded), the mean compound score and the share of negative
  texts (compound <= -0.05, VADER's own threshold), with the same kind of interval, plus the most
  frequent short negative and positive texts. Each distinct text is scored once; beyond
  `sentiment_max_texts` distinct texts a deterministic sample of them is scored and the facts say so.

VADER reads tags as words, so for tags the sentiment describes content as much as opinion ("murder"
and "dark" are negative words on a thriller someone loves); the facts say "texts", not "complaints",
and the frequent examples let a reader see which it is.

Either half is skipped with its reason when the data lacks it, and the whole analysis when both are
missing, never filled with guesses. Segments with fewer raters/writers than `min_support` get their
figures with "low_support": true so a describer does not build a story on three users.
"""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd

from seglens import hookimpl
from seglens.segment_stats import members_frame, r, ratio_ci, z_value
from seglens.features import value_filters
from seglens.model import AnalysisContext, AnalysisResult

LOW_FRACTION = 0.4  # low rating: at most 40% of the top of the scale (<= 2 of 5)
NEG, POS = -0.05, 0.05  # VADER's conventional thresholds on the compound score
QUOTE_CHARS = 40  # texts up to this long (tags) may be quoted; longer ones (reviews) are not


class SatisfactionAnalysis:
    requires: tuple[str, ...] = ()

    def __init__(self, options: dict[str, Any]) -> None:
        self.min_support = int(options.get("min_support", 5))
        self.confidence = float(options.get("confidence", 0.95))
        self.z = z_value(self.confidence)
        self.max_texts = int(options.get("sentiment_max_texts", 200_000))
        self.seed = int(options.get("seed", 42))

    def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
        members = members_frame(ctx)
        per: dict[int, dict[str, Any]] = {int(s): {} for s in sorted(members["segment"].unique())}
        run: dict[str, Any] = {"skipped": {}}
        # DuckDB only selects rows here; every sum is taken in pandas, in a fixed order.
        rating_reason = self._ratings(ctx, members, per, run)
        text_reason = self._text(ctx, members, per, run)
        if rating_reason:
            run["skipped"]["ratings"] = rating_reason
        if text_reason:
            run["skipped"]["text"] = text_reason
        if rating_reason and text_reason:
            return AnalysisResult("satisfaction", skipped=f"{rating_reason}, and {text_reason}")
        per = {sid: facts for sid, facts in per.items() if facts}
        return AnalysisResult("satisfaction", per, run, markdown=self._markdown(run))

    # --- ratings ------------------------------------------------------------------------------
    def _ratings(self, ctx: AnalysisContext, members: pd.DataFrame, per: dict[int, dict[str, Any]],
                 run: dict[str, Any]) -> str | None:
        _, cond = value_filters(ctx.dataset)
        if cond is None:
            return "the events carry no ratings"
        con = ctx.dataset.con
        ev = con.execute(f"SELECT e.user_id, e.value FROM events e WHERE ({cond}) AND e.value IS NOT NULL "
                         "AND isfinite(e.value)").df()
        if ev.empty:
            return "the rating events carry no values"
        top = float(ev["value"].max())
        if top <= 0:
            return "every rating is zero or below, so the scale is unknown"
        low_at = LOW_FRACTION * top
        ev["user_id"] = ev["user_id"].astype(str)
        ev["low"] = (ev["value"] <= low_at + 1e-9).astype(float)
        levels = np.sort(ev["value"].unique())
        if len(levels) <= 11:
            ev["level"] = ev["value"].map(lambda v: f"{v:g}")
            order = [f"{v:g}" for v in levels]
        else:  # a fine or continuous scale: five equal-width bins up to the top
            edges = np.linspace(0, top, 6)
            idx = np.clip(np.searchsorted(edges, ev["value"].to_numpy(), side="left") - 1, 0, 4)
            order = [f"{edges[i]:g}-{edges[i + 1]:g}" for i in range(5)]
            ev["level"] = np.asarray(order, dtype=object)[idx]
        users = ev.groupby("user_id").agg(n=("value", "size"), total=("value", "sum"), low=("low", "sum"))
        users = users.join(members.set_index("user_id"), how="inner")
        dist = ev.merge(members, on="user_id").groupby(["segment", "level"]).size().unstack(fill_value=0)
        pop = self._rating_facts(users, dist.sum(axis=0), order, None)
        run["ratings"] = {"scale_max": r(top, 2), "low_at_most": r(low_at, 2), "levels": order, "population": pop}
        for sid, g in users.groupby("segment"):
            facts = self._rating_facts(g, dist.loc[sid] if sid in dist.index else None, order, pop)
            per[int(sid)]["ratings"] = facts
        return None

    def _rating_facts(self, g: pd.DataFrame, dist: pd.Series | None, order: list[str],
                      pop: dict[str, Any] | None) -> dict[str, Any]:
        n = g["n"].to_numpy(dtype=float)
        mean, mlo, mhi = ratio_ci(g["total"].to_numpy(dtype=float), n, self.z)
        low, llo, lhi = ratio_ci(g["low"].to_numpy(dtype=float), n, self.z)
        out: dict[str, Any] = {"ratings": int(n.sum()), "raters": int(len(g)), "mean": r(mean, 2),
                               "mean_ci": [r(mlo, 2), r(mhi, 2)], "low_share": r(low, 3),
                               "low_share_ci": [r(max(llo, 0.0), 3), r(min(lhi, 1.0), 3)]}
        if dist is not None and dist.sum() > 0:
            out["distribution"] = {lv: r(dist.get(lv, 0) / dist.sum(), 3) for lv in order}
        if pop is not None:
            out["mean_vs_population"] = r(mean - pop["mean"], 2) if pop.get("mean") is not None else None
            out["low_share_index"] = r(low / pop["low_share"], 2) if pop.get("low_share") else None
            if np.isfinite(llo) and pop.get("low_share") is not None:
                out["low_share_differs"] = bool(llo > pop["low_share"] or lhi < pop["low_share"])
            if len(g) < self.min_support:
                out["low_support"] = True
        return out

    # --- text ---------------------------------------------------------------------------------
    def _text(self, ctx: AnalysisContext, members: pd.DataFrame, per: dict[int, dict[str, Any]],
              run: dict[str, Any]) -> str | None:
        con = ctx.dataset.con
        ev = con.execute("SELECT user_id, trim(text) AS text FROM events WHERE text IS NOT NULL AND trim(text) <> ''").df()
        if ev.empty:
            return "the events carry no text (tags or reviews)"
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        ev["user_id"] = ev["user_id"].astype(str)
        distinct = pd.Series(ev["text"].unique())
        sampled = None
        if len(distinct) > self.max_texts:
            # deterministic: keep the texts with the smallest salted hashes
            keys = distinct.map(lambda t: hashlib.blake2b(f"{self.seed}:{t}".encode(), digest_size=8).hexdigest())
            distinct = distinct[keys.rank(method="first") <= self.max_texts]
            sampled = round(len(distinct) / ev["text"].nunique(), 4)
            ev = ev[ev["text"].isin(set(distinct))]
        analyzer = SentimentIntensityAnalyzer()
        compound = {t: analyzer.polarity_scores(t)["compound"] for t in distinct}
        ev["compound"] = ev["text"].map(compound).astype(float)
        ev["neg"] = (ev["compound"] <= NEG).astype(float)
        ev["pos"] = (ev["compound"] >= POS).astype(float)
        ev = ev.merge(members, on="user_id")
        users = ev.groupby("user_id").agg(n=("compound", "size"), total=("compound", "sum"), neg=("neg", "sum"),
                                          pos=("pos", "sum"), segment=("segment", "first"))
        pop = self._text_facts(users, ev, None)
        run["text"] = {"method": "VADER compound; negative <= -0.05, positive >= 0.05", "distinct_texts":
                       int(len(distinct)), "population": pop}
        if sampled is not None:
            run["text"]["sampled_share_of_distinct_texts"] = sampled
        for sid, g in users.groupby("segment"):
            per[int(sid)]["text"] = self._text_facts(g, ev[ev["segment"] == sid], pop)
        return None

    def _text_facts(self, g: pd.DataFrame, ev: pd.DataFrame, pop: dict[str, Any] | None) -> dict[str, Any]:
        n = g["n"].to_numpy(dtype=float)
        mean, mlo, mhi = ratio_ci(g["total"].to_numpy(dtype=float), n, self.z)
        neg, nlo, nhi = ratio_ci(g["neg"].to_numpy(dtype=float), n, self.z)
        pos, _, _ = ratio_ci(g["pos"].to_numpy(dtype=float), n, self.z)
        out: dict[str, Any] = {"texts": int(n.sum()), "writers": int(len(g)), "mean_compound": r(mean, 3),
                               "mean_compound_ci": [r(mlo, 3), r(mhi, 3)], "negative_share": r(neg, 3),
                               "negative_share_ci": [r(max(nlo, 0.0), 3), r(min(nhi, 1.0), 3)],
                               "positive_share": r(pos, 3)}
        if pop is not None:
            out["mean_compound_vs_population"] = r(mean - pop["mean_compound"], 3)
            out["negative_share_index"] = r(neg / pop["negative_share"], 2) if pop.get("negative_share") else None
            if np.isfinite(nlo) and pop.get("negative_share") is not None:
                out["negative_share_differs"] = bool(nlo > pop["negative_share"] or nhi < pop["negative_share"])
            if len(g) < self.min_support:
                out["low_support"] = True
            out["frequent_negative"] = self._examples(ev[ev["compound"] <= NEG])
            out["frequent_positive"] = self._examples(ev[ev["compound"] >= POS])
        return out

    @staticmethod
    def _examples(ev: pd.DataFrame, n: int = 3) -> list[str]:
        """The most frequent short texts (tags), by distinct users then text; long texts are not quoted."""
        short = ev[ev["text"].str.len() <= QUOTE_CHARS]
        if short.empty:
            return []
        key = short["text"].str.lower()
        counts = short.assign(key=key).groupby("key")["user_id"].nunique()
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
        return [k for k, _ in top]

    def _markdown(self, run: dict[str, Any]) -> str:
        parts = []
        if "ratings" in run:
            p = run["ratings"]["population"]
            parts.append(f"- ratings: mean {p['mean']} on a scale to {run['ratings']['scale_max']}, "
                         f"{p['low_share']:.1%} low (<= {run['ratings']['low_at_most']})")
        if "text" in run:
            p = run["text"]["population"]
            parts.append(f"- text sentiment (VADER): mean compound {p['mean_compound']}, "
                         f"{p['negative_share']:.1%} negative over {p['texts']:,} texts")
        for what, why in run.get("skipped", {}).items():
            parts.append(f"- {what} skipped: {why}")
        return "\n".join(parts)


@hookimpl
def register_analyses(register):
    register("satisfaction", SatisfactionAnalysis, description="ratings (mean, distribution, low share) and "
             "VADER text sentiment per segment vs population")
