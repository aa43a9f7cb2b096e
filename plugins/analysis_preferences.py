"""What each segment prefers, with how sure we are: lifted categories, items and item attributes
(price band, release decade), user attributes (country, channel...), and when it is active.

The profile already ranks categories and items by lift; this analysis adds *uncertainty* so that a
describer (or a person) can tell a real preference from the noise of a 30-user segment:

- categories, price bands, release decades and activity hours are **event shares** (what fraction of
  the segment's events are Horror / in the cheapest band / at 23:00). Their lift interval is the
  cluster-robust log-lift interval of `segment_stats` (users as clusters, because one user's events
  are one taste, not independent draws).
- items and user attributes are **user shares** (what fraction of the segment's users watched this
  title / live in PL), with a Wilson interval: users are the independent units, and Wilson keeps its
  coverage for the small counts typical of items.

Lists are ranked by share x ln(lower bound of the lift): the row's contribution to the KL divergence
of the segment's mix from the population's, taken at the cautious end of the interval. So a lift of 9
seen in 3 users does not outrank a lift of 4 seen in 300, and a genre the segment lives in (Horror,
37% of its events, lift 15) outranks a niche tag that rides along with it (Supernatural, 10%, lift
16). Only over-represented rows (lift > 1) that reach the minimum support (in users) are listed, and
`significant` says whether the interval excludes 1. Categories whose interval lies wholly below 1
(and that matter: at least 1% of the population's events) are listed as `categories_under`, the
segment's avoidances. Price bands are reported in full, in band order, since there are only a few:
they are quantile bands of the catalog's prices (quartiles by default). The release year is parsed
from a title ending in "(1995)" or a description with "Released 1995.". Hours and weekdays are in
the timestamps' own clock (UTC for epoch-second inputs).

Everything is computed in DuckDB with one pass per dimension; at 10k users and 275k events the whole
analysis takes about 2.5 s. The per-segment facts stay small and rounded; the full weekday x hour
matrix goes to `preferences_activity.parquet`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from seglens import hookimpl
from seglens.analyses import data_supports
from seglens.segment_stats import (event_share_lift, lift_row, members_frame, r,
                                                    support_threshold, user_share_lift, z_value)
from seglens.model import AnalysisContext, AnalysisResult

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]  # isodow 1..7
BAND_NAMES = {2: ["low", "high"], 3: ["low", "mid", "high"], 4: ["low", "mid-low", "mid-high", "high"],
              5: ["lowest", "low", "mid", "high", "highest"]}
YEAR_SQL = r"""coalesce(
    try_cast(nullif(regexp_extract(i.title, '\(([12][0-9]{3})\)\s*$', 1), '') AS INTEGER),
    try_cast(nullif(regexp_extract(i.description, 'Released ([12][0-9]{3})', 1), '') AS INTEGER))"""
MAX_ATTR_VALUES = 100  # a text attribute with more distinct values (an email, a city) is not a segment trait


def rank_score(g: pd.DataFrame) -> pd.Series:
    """share x ln(ci_low): the conservative KL contribution (<= 0 when the interval includes 1)."""
    low = g["ci_low"].to_numpy(dtype=float)
    low = np.where(np.isfinite(low) & (low > 0), low, 1.0)
    return pd.Series(g["share"].to_numpy(dtype=float) * np.log(low), index=g.index)


class PreferencesAnalysis:
    requires: tuple[str, ...] = ()

    def __init__(self, options: dict[str, Any]) -> None:
        self.top_n = int(options.get("preferences_top_n", 5))
        self.min_support = int(options.get("min_support", 5))
        self.confidence = float(options.get("confidence", 0.95))
        self.z = z_value(self.confidence)
        self.n_bands = max(2, min(5, int(options.get("price_bands", 4))))

    def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
        con = ctx.dataset.con
        members = members_frame(ctx)
        sizes = members.groupby("segment").size().to_dict()
        per: dict[int, dict[str, Any]] = {int(s): {"users": int(n)} for s, n in sizes.items()}
        run: dict[str, Any] = {"method": {
            "event_shares": "cluster-robust (users as clusters) log-lift interval",
            "user_shares": "Wilson score interval on the segment share, divided by the population share",
            "confidence": self.confidence, "min_support_users": self.min_support,
            "ranking": "share x ln(lift interval lower bound), then lift"}, "skipped": {}}
        tables: dict[str, pd.DataFrame] = {}
        con.register("_pref_members", members)
        try:
            # Every aggregate here sums integer counts, which parallel DuckDB adds exactly, so the
            # facts are repeatable without forcing one thread.
            self._dimensions(ctx, per, run, sizes)
            reason = data_supports(ctx, "timestamps")
            if reason:
                run["skipped"]["activity"] = reason
            else:
                tables["preferences_activity"] = self._activity(ctx, per, run, sizes)
        finally:
            con.unregister("_pref_members")
        return AnalysisResult("preferences", per, run, tables=tables, markdown=self._markdown(run))

    # --- dimensions ---------------------------------------------------------------------------
    def _dimensions(self, ctx: AnalysisContext, per: dict[int, dict[str, Any]], run: dict[str, Any],
                    sizes: dict[int, int]) -> None:
        con = ctx.dataset.con
        if ctx.dataset.has_catalog:
            cats = event_share_lift(con, """
                SELECT e.user_id, unnest(i.categories) AS key, 1 AS w
                FROM events e JOIN items i USING (item_id)""", "_pref_members", self.z)
            self._put(per, cats, "categories", "category", under=True)
            run["population_categories"] = self._population(cats, "category")
        else:
            run["skipped"]["categories"] = data_supports(ctx, "catalog")
        self._put(per, self._items(ctx, sizes), "items", "item_id", title=True)
        bands = self._price_bands(ctx, run)
        if bands is not None:
            self._put(per, bands, "price_bands", "band", keep_all=True, order=run["price_bands"]["labels"])
        decades = event_share_lift(con, f"""
            SELECT e.user_id, (({YEAR_SQL}) // 10 * 10)::VARCHAR || 's' AS key, 1 AS w
            FROM events e JOIN items i USING (item_id)
            WHERE ({YEAR_SQL}) BETWEEN 1870 AND 2100""", "_pref_members", self.z)
        if decades.empty:
            run["skipped"]["release_decades"] = "no item title or description carries a release year"
        else:
            self._put(per, decades, "release_decades", "decade")
            run["population_decades"] = self._population(decades, "decade")
        self._user_attributes(ctx, per, run, sizes)

    def _items(self, ctx: AnalysisContext, sizes: dict[int, int]) -> pd.DataFrame:
        """User shares of items (watched/bought at least once), with titles."""
        df = ctx.dataset.con.execute("""
            WITH ui AS (SELECT DISTINCT m.segment, e.user_id, e.item_id
                        FROM events e JOIN _pref_members m USING (user_id)),
            seg AS (SELECT segment, item_id, count(*) AS users FROM ui GROUP BY ALL),
            pop AS (SELECT item_id, count(*) AS pop_users FROM ui GROUP BY item_id)
            SELECT seg.segment, seg.item_id AS key, seg.users, pop.pop_users, i.title
            FROM seg JOIN pop USING (item_id) LEFT JOIN items i USING (item_id)
        """).df()
        if df.empty:
            return df
        df["base"] = df["segment"].map(sizes).astype(float)
        df["pop_base"] = float(sum(sizes.values()))
        return user_share_lift(df, self.z)

    def _price_bands(self, ctx: AnalysisContext, run: dict[str, Any]) -> pd.DataFrame | None:
        con = ctx.dataset.con
        prices = con.execute("SELECT item_id, price FROM items WHERE price IS NOT NULL AND isfinite(price)").df()
        if prices.empty:
            run["skipped"]["price_bands"] = "the items carry no prices"
            return None
        qs = np.linspace(0, 1, self.n_bands + 1)[1:-1]
        edges = np.unique(np.quantile(prices["price"].to_numpy(dtype=float), qs))
        edges = edges[edges < prices["price"].max()]  # a top edge equal to the maximum makes an empty band
        if len(edges) == 0:
            run["skipped"]["price_bands"] = "every item has the same price"
            return None
        names = BAND_NAMES[len(edges) + 1]
        labels = []
        for j, name in enumerate(names):
            if j == 0:
                labels.append(f"{name} (up to {edges[0]:g})")
            elif j == len(edges):
                labels.append(f"{name} (over {edges[-1]:g})")
            else:
                labels.append(f"{name} ({edges[j - 1]:g} to {edges[j]:g})")
        band = np.searchsorted(edges, prices["price"].to_numpy(dtype=float), side="left")
        con.register("_pref_bands", pd.DataFrame({"item_id": prices["item_id"].astype(str),
                                                  "band": np.asarray(labels, dtype=object)[band]}))
        try:
            df = event_share_lift(con, """
                SELECT e.user_id, b.band AS key, 1 AS w FROM events e JOIN _pref_bands b USING (item_id)""",
                "_pref_members", self.z)
        finally:
            con.unregister("_pref_bands")
        run["price_bands"] = {"labels": labels, "edges": [r(x, 2) for x in edges.tolist()],
                              "population": self._population(df, "band", n=len(labels))}
        return df

    def _user_attributes(self, ctx: AnalysisContext, per: dict[int, dict[str, Any]], run: dict[str, Any],
                         sizes: dict[int, int]) -> None:
        con = ctx.dataset.con
        if not ctx.dataset.has_user_attrs:
            run["skipped"]["user_attributes"] = "no user attributes were given (--users)"
            return
        attrs = con.execute("SELECT * FROM user_attrs").df()
        attrs["user_id"] = attrs["user_id"].astype(str)
        members = pd.DataFrame({"user_id": ctx.user_ids.astype(str), "_segment": ctx.segmentation.labels})
        frame = members.merge(attrs, on="user_id", how="left")
        used: list[str] = []
        for col in [c for c in attrs.columns if c != "user_id"]:
            values = self._attribute_values(frame[col])
            if values is None:
                run["skipped"].setdefault("user_attribute_columns", {})[col] = \
                    f"more than {MAX_ATTR_VALUES} distinct values"
                continue
            known = values.notna()
            if not known.any():
                continue
            g = pd.DataFrame({"segment": frame["_segment"][known].to_numpy(), "key": values[known].to_numpy()})
            counts = g.groupby(["segment", "key"]).size().rename("users").reset_index()
            base = g.groupby("segment").size()
            pop = g.groupby("key").size()
            counts["base"] = counts["segment"].map(base).astype(float)
            counts["pop_users"] = counts["key"].map(pop).astype(float)
            counts["pop_base"] = float(known.sum())
            df = user_share_lift(counts, self.z)
            for sid in per:
                rows = self._top(df[df["segment"] == sid], "value", sizes.get(sid, 0))
                if rows:
                    per[sid].setdefault("user_attributes", {})[col] = rows
            used.append(col)
        run["user_attribute_columns"] = used

    @staticmethod
    def _attribute_values(col: pd.Series) -> pd.Series | None:
        """Text labels for one attribute column: categories as they are, numbers with many values as
        quartile bands ("25 to 34"), None when a text column has too many values to be a trait."""
        s = col
        if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
            s = s.astype("object").where(s.notna(), None)
            labels = s.map(lambda v: None if v is None else str(v))
            if labels.nunique(dropna=True) > MAX_ATTR_VALUES:
                return None
            return labels
        x = s.astype(float)
        if x.nunique(dropna=True) <= 12:
            return x.map(lambda v: None if pd.isna(v) else (f"{v:g}"))
        edges = np.unique(np.nanquantile(x.to_numpy(), [0.25, 0.5, 0.75]))
        bins = np.searchsorted(edges, x.to_numpy(), side="right")
        lo = np.concatenate([[np.nanmin(x)], edges])
        hi = np.concatenate([edges, [np.nanmax(x)]])
        names = [f"{a:g} to {b:g}" for a, b in zip(lo, hi)]
        return pd.Series([None if np.isnan(v) else names[b] for v, b in zip(x.to_numpy(), bins)], index=x.index)

    # --- activity -----------------------------------------------------------------------------
    def _activity(self, ctx: AnalysisContext, per: dict[int, dict[str, Any]], run: dict[str, Any],
                  sizes: dict[int, int]) -> pd.DataFrame:
        """Peak hours and weekday shares per segment, the hours where the segment over-indexes
        most (with intervals), and the full weekday x hour matrix as a table."""
        con = ctx.dataset.con
        hours = event_share_lift(con, "SELECT user_id, hour(ts) AS key, 1 AS w FROM events WHERE ts IS NOT NULL",
                                 "_pref_members", self.z)
        days = event_share_lift(con, "SELECT user_id, isodow(ts) AS key, 1 AS w FROM events WHERE ts IS NOT NULL",
                                "_pref_members", self.z)
        grid = con.execute("""
            SELECT m.segment, isodow(e.ts) AS weekday, hour(e.ts) AS hour, count(*) AS events
            FROM events e JOIN _pref_members m USING (user_id) WHERE e.ts IS NOT NULL GROUP BY ALL
        """).df()
        grid["share"] = grid["events"] / grid.groupby("segment")["events"].transform("sum")
        pop = grid.groupby(["weekday", "hour"], as_index=False)["events"].sum()
        pop["population_share"] = pop["events"] / pop["events"].sum()
        grid = grid.merge(pop[["weekday", "hour", "population_share"]], on=["weekday", "hour"])
        grid["lift"] = grid["share"] / grid["population_share"]
        for sid in per:
            h = hours[hours["segment"] == sid]
            if h.empty:
                continue
            d = days[days["segment"] == sid].set_index("key")
            peak = h.sort_values(["share", "key"], ascending=[False, True]).head(3)
            cells = grid[grid["segment"] == sid].sort_values(["share", "weekday", "hour"],
                                                             ascending=[False, True, True]).head(3)
            support = support_threshold(self.min_support, sizes.get(sid, 0))
            lifted = h[(h["users"] >= support) & (h["lift"] > 1)].copy()
            lifted["rank_low"] = lifted["ci_low"].fillna(0.0)
            lifted = lifted.sort_values(["rank_low", "lift", "key"], ascending=[False, False, True]).head(3)
            shares = {WEEKDAYS[k - 1]: r(d["share"].get(k, 0.0), 3) for k in range(1, 8)}
            night = h[h["key"].isin([22, 23, 0, 1, 2, 3, 4])]["events"].sum() / h["events"].sum()
            per[sid]["activity"] = {
                "peak_hours": [int(k) for k in peak["key"]],
                "peak_hours_share": r(peak["share"].sum(), 3),
                "peak_weekday": max(shares, key=lambda k: (shares[k] or 0.0)),
                "weekday_shares": shares,
                "weekend_share": r((shares["Saturday"] or 0) + (shares["Sunday"] or 0), 3),
                "night_share": r(night, 3),
                "peak_slots": [{"weekday": WEEKDAYS[int(c.weekday) - 1], "hour": int(c.hour), "share": r(c.share, 3),
                                "lift": r(c.lift, 2)} for c in cells.itertuples()],
                "hours_by_lift": [{"hour": int(x.key), "share": r(x.share, 3), "lift": r(x.lift, 2),
                                   "ci": [r(x.ci_low, 2), r(x.ci_high, 2)],
                                   "significant": bool(np.isfinite(x.ci_low) and x.ci_low > 1)}
                                  for x in lifted.itertuples()],
            }
        ph = hours.groupby("key")["events"].sum()
        pd_ = days.groupby("key")["events"].sum()
        run["population_activity"] = {
            "peak_hours": [int(k) for k in ph.sort_values(ascending=False).index[:3]],
            "weekday_shares": {WEEKDAYS[k - 1]: r(pd_.get(k, 0) / pd_.sum(), 3) for k in range(1, 8)},
            "clock": "the timestamps' own clock (UTC for epoch inputs)",
        }
        grid["weekday"] = grid["weekday"].map(lambda k: WEEKDAYS[int(k) - 1])
        return grid[["segment", "weekday", "hour", "events", "share", "population_share", "lift"]].sort_values(
            ["segment", "weekday", "hour"]).reset_index(drop=True)

    # --- shaping ------------------------------------------------------------------------------
    def _top(self, g: pd.DataFrame, key: str, size: int, title: bool = False) -> list[dict[str, Any]]:
        support = support_threshold(self.min_support, size)
        g = g[(g["users"] >= support) & (g["lift"] > 1.0)].copy()
        if g.empty:
            return []
        g["_score"] = rank_score(g)
        g = g.sort_values(["_score", "lift", "key"], ascending=[False, False, True]).head(self.top_n)
        rows = []
        for rec in g.to_dict("records"):
            row = lift_row(rec, key, rec["key"])
            if title:
                row["title"] = rec["title"] if isinstance(rec.get("title"), str) else None
            row["significant"] = bool(np.isfinite(rec["ci_low"]) and rec["ci_low"] > 1.0)
            rows.append(row)
        return rows

    def _put(self, per: dict[int, dict[str, Any]], df: pd.DataFrame, name: str, key: str, *, title: bool = False,
             under: bool = False, keep_all: bool = False, order: list[str] | None = None) -> None:
        for sid in per:
            g = df[df["segment"] == sid] if len(df) else df
            size = per[sid]["users"]
            if keep_all:
                # Few values (price bands): all of them, in band order, so the shape is visible.
                rank = {v: i for i, v in enumerate(order or [])}
                g = g.assign(_o=g["key"].map(rank)).sort_values("_o")
                support = support_threshold(self.min_support, size)
                rows = []
                for rec in g.to_dict("records"):
                    row = lift_row(rec, key, rec["key"])
                    row["significant"] = bool(rec["users"] >= support and np.isfinite(rec["ci_low"])
                                              and (rec["ci_low"] > 1.0 or rec["ci_high"] < 1.0))
                    rows.append(row)
                per[sid][name] = rows
                continue
            per[sid][name] = self._top(g, key, size, title=title)
            if under and len(g):
                support = support_threshold(self.min_support, size)
                u = g[(g["ci_high"] < 1.0) & (g["population_share"] >= 0.01)]
                u = u.sort_values(["ci_high", "key"]).head(3)
                if len(u) and size >= support:
                    per[sid][f"{name}_under"] = [lift_row(rec, key, rec["key"]) for rec in u.to_dict("records")]

    @staticmethod
    def _population(df: pd.DataFrame, key: str, n: int = 8) -> list[dict[str, Any]]:
        if df.empty:
            return []
        pop = df.groupby("key")["events"].sum()
        pop = (pop / pop.sum()).sort_values(ascending=False).head(n)
        return [{key: k, "share": r(v, 4)} for k, v in pop.items()]

    def _markdown(self, run: dict[str, Any]) -> str:
        parts = [f"- lift intervals at {self.confidence:.0%}: event shares (categories, price bands, decades, "
                 "hours) use a cluster-robust log-lift interval; user shares (items, user attributes) a Wilson "
                 f"interval; rows need at least {self.min_support} users"]
        if run.get("price_bands"):
            parts.append("- price bands: " + ", ".join(run["price_bands"]["labels"]))
        if run.get("population_activity"):
            pa = run["population_activity"]
            parts.append(f"- population peak hours: {', '.join(str(h) for h in pa['peak_hours'])}")
        for what, why in run.get("skipped", {}).items():
            if isinstance(why, str):
                parts.append(f"- {what.replace('_', ' ')} skipped: {why}")
        return "\n".join(parts)


@hookimpl
def register_analyses(register):
    register("preferences", PreferencesAnalysis, description="lifted categories, items, price bands, release "
             "decades and user attributes with confidence intervals; weekday x hour activity")
