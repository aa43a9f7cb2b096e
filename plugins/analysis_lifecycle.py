"""Where each user stands in their lifecycle -- new, active, reactivated, at-risk or churned -- and
how each segment's mix of stages differs from the population's.

Why relative to the user's own rhythm: a fixed "inactive for 30 days" rule calls a monthly shopper
churned the day after a purchase and a daily viewer safe for weeks. Silence is judged against how
often *this* user usually comes back, and, when the user has too little history to say, against how
often users of their segment do.

The rule (days are calendar days; a user's gaps are the days between consecutive active days):
- reference gap: the user's median gap when they have at least `lifecycle_min_gaps` (3) gaps; else
  the segment's typical gap (median over its users of their median gap, when at least 3 of its users
  have a gap); else the population's. It is at least 1 day.
- recency: days from the user's last active day to the last day of the data.
- **new**: first event within the last period (the last whole month or week, as in growth).
- **churned**: recency > `lifecycle_churn_factor` (4) x reference gap, or > `lifecycle_horizon_days`
  (365), whichever comes first.
- **at_risk**: recency > `lifecycle_risk_factor` (2) x reference gap (and not churned).
- **reactivated**: not at risk, and came back within the last period after a gap longer than the
  churn threshold (so they had been churned by this same rule and returned).
- **active**: everyone else.
The first matching stage in that order wins. Users whose reference gap came from their segment or
the population are counted in `gap_source`, so a segment of one-time visitors is visibly judged on
borrowed rhythm.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from seglens import hookimpl
from seglens.analysis_helpers import make_periods, md_table, members, rnd, segment_list
from seglens.model import AnalysisContext, AnalysisResult

STAGES = ("new", "active", "reactivated", "at_risk", "churned")
MIN_USERS_FOR_SEGMENT_GAP = 3


class LifecycleAnalysis:
    requires: tuple[str, ...] = ("timestamps",)

    def __init__(self, options: dict[str, Any]) -> None:
        self.period = options.get("period", "auto")
        self.risk_factor = float(options.get("lifecycle_risk_factor", 2.0))
        self.churn_factor = max(self.risk_factor, float(options.get("lifecycle_churn_factor", 4.0)))
        self.horizon = float(options.get("lifecycle_horizon_days", 365))
        self.min_gaps = max(1, int(options.get("lifecycle_min_gaps", 3)))

    def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
        con = ctx.dataset.con
        periods = make_periods(con, self.period)
        users = self._user_days(ctx)
        if periods is None or users.empty:
            return AnalysisResult("lifecycle", skipped="there are no events")
        if not (users["n_gaps"] > 0).any():
            return AnalysisResult("lifecycle", skipped=(
                "no user was active on two different days, so there is no gap between visits to judge "
                "silence against"))
        end_day = users["last_day"].max()
        last_start = periods.start_of_last().normalize()
        pop_gap = _typical_gap(users, 1)
        seg_gap = {sid: _typical_gap(g) for sid, g in users.groupby("segment")}
        own = users["n_gaps"] >= self.min_gaps
        seg_ref = users["segment"].map(lambda s: seg_gap.get(s) if seg_gap.get(s) is not None else pop_gap)
        users["reference_gap_days"] = np.maximum(np.where(own, users["median_gap"], seg_ref).astype(float), 1.0)
        users["gap_source"] = np.where(own, "own", np.where(users["segment"].map(seg_gap).notna(), "segment",
                                                             "population"))
        users["recency_days"] = (end_day - users["last_day"]).dt.days.astype(float)
        churn_at = np.minimum(self.churn_factor * users["reference_gap_days"], self.horizon)
        risk_at = np.minimum(self.risk_factor * users["reference_gap_days"], churn_at)
        users["last_return_day"] = self._last_return(ctx, users[["user_id"]].assign(threshold=churn_at))
        rec = users["recency_days"]
        returned = users["last_return_day"].notna() & (users["last_return_day"] >= last_start)
        users["stage"] = np.select(
            [users["first_day"] >= last_start, rec > churn_at, rec > risk_at, returned],
            ["new", "churned", "at_risk", "reactivated"], default="active")

        labels = ctx.segmentation.labels
        pop = _mix(users)
        per: dict[int, dict[str, Any]] = {}
        for sid in segment_list(labels):
            g = users[users["segment"] == sid]
            mix = _mix(g)
            per[sid] = {
                "stage_shares": mix["shares"],
                "stage_counts": mix["counts"],
                "at_risk_or_churned_share": mix["at_risk_or_churned_share"],
                "vs_population": {s: rnd(mix["shares"][s] / pop["shares"][s], 2) if pop["shares"][s] else None
                                  for s in STAGES},
                "typical_gap_days": rnd(seg_gap.get(sid) if seg_gap.get(sid) is not None else pop_gap, 1),
                "own_gap_share": rnd((g["gap_source"] == "own").mean(), 4) if len(g) else None,
            }
        run = {
            "period": periods.unit,
            "last_period_start": str(last_start.date()),
            "end_day": str(end_day.date()),
            "risk_factor": self.risk_factor,
            "churn_factor": self.churn_factor,
            "horizon_days": self.horizon,
            "min_gaps": self.min_gaps,
            "rule": (f"new: first event on/after {last_start.date()}; churned: silent > {self.churn_factor:g}x the "
                     f"reference gap or > {self.horizon:g} days; at_risk: silent > {self.risk_factor:g}x; "
                     f"reactivated: back within the last {periods.unit} after a gap beyond the churn threshold; "
                     f"reference gap: own median gap with >= {self.min_gaps} gaps, else the segment's typical gap"),
            "population": {"stage_shares": pop["shares"], "stage_counts": pop["counts"],
                           "at_risk_or_churned_share": pop["at_risk_or_churned_share"],
                           "typical_gap_days": rnd(pop_gap, 1)},
        }
        real = [(f["at_risk_or_churned_share"], sid) for sid, f in per.items() if sid >= 0]
        if real:
            run["most_at_risk_segment"] = max(real)[1]
        table = users[["user_id", "segment", "stage", "recency_days", "reference_gap_days", "gap_source"]].copy()
        table["segment"] = table["segment"].astype(np.int64)
        return AnalysisResult("lifecycle", per, run, tables={"lifecycle": table.reset_index(drop=True)},
                              markdown=self._markdown(per, run, labels))

    # --- pieces -------------------------------------------------------------------------------
    def _user_days(self, ctx: AnalysisContext) -> pd.DataFrame:
        """Per user: first and last active day, number of gaps, median gap (days), in run order."""
        df = ctx.dataset.con.execute("""
            WITH days AS (SELECT DISTINCT user_id, CAST(ts AS DATE) AS d FROM events),
            g AS (SELECT user_id, d, date_diff('day', lag(d) OVER (PARTITION BY user_id ORDER BY d), d) AS gap
                  FROM days)
            SELECT user_id, min(d) AS first_day, max(d) AS last_day, count(gap) AS n_gaps,
                   median(gap)::DOUBLE AS median_gap
            FROM g GROUP BY user_id""").df()
        df["user_id"] = df["user_id"].astype(str)
        out = members(ctx).merge(df, on="user_id", how="inner")
        out["first_day"] = pd.to_datetime(out["first_day"])
        out["last_day"] = pd.to_datetime(out["last_day"])
        return out

    def _last_return(self, ctx: AnalysisContext, thresholds: pd.DataFrame) -> pd.Series:
        """Each user's latest active day that ended a gap longer than their churn threshold."""
        con = ctx.dataset.con
        con.register("_lifecycle_thr", thresholds)
        try:
            df = con.execute("""
                WITH days AS (SELECT DISTINCT user_id, CAST(ts AS DATE) AS d FROM events),
                g AS (SELECT user_id, d, date_diff('day', lag(d) OVER (PARTITION BY user_id ORDER BY d), d) AS gap
                      FROM days)
                SELECT g.user_id, max(g.d) AS last_return_day
                FROM g JOIN _lifecycle_thr t ON g.user_id = t.user_id
                WHERE g.gap > t.threshold GROUP BY g.user_id""").df()
        finally:
            con.unregister("_lifecycle_thr")
        ret = dict(zip(df["user_id"].astype(str), pd.to_datetime(df["last_return_day"])))
        return pd.to_datetime(thresholds["user_id"].map(ret))

    def _markdown(self, per: dict[int, dict[str, Any]], run: dict[str, Any], labels: np.ndarray) -> str:
        pop = run["population"]
        lines = [f"Rule: {run['rule']}.", "",
                 "Population: " + ", ".join(f"{s.replace('_', '-')} {pop['stage_shares'][s]:.1%}" for s in STAGES)
                 + f" (typical gap {pop['typical_gap_days']} days).", ""]
        sizes = pd.Series(labels).value_counts().to_dict()
        rows = [[sid, sizes.get(sid, 0)] + [f"{f['stage_shares'][s]:.1%}" for s in STAGES]
                + [f"{f['at_risk_or_churned_share']:.1%}", f["typical_gap_days"]] for sid, f in per.items()]
        lines.append(md_table(["segment", "users", *[s.replace("_", "-") for s in STAGES], "at-risk + churned",
                               "typical gap (days)"], rows))
        return "\n".join(lines)


def _typical_gap(users: pd.DataFrame, min_users: int = MIN_USERS_FOR_SEGMENT_GAP) -> float | None:
    """Median over users with at least one gap of their median gap; None when fewer than
    `min_users` users have a gap (a segment's rhythm is not one person's)."""
    gaps = users.loc[users["n_gaps"] > 0, "median_gap"]
    if len(gaps) < min_users:
        return None
    return float(gaps.median())


def _mix(users: pd.DataFrame) -> dict[str, Any]:
    counts = users["stage"].value_counts().to_dict()
    n = len(users)
    c = {s: int(counts.get(s, 0)) for s in STAGES}
    shares = {s: rnd(c[s] / n, 4) if n else 0.0 for s in STAGES}
    return {"counts": c, "shares": shares,
            "at_risk_or_churned_share": rnd((c["at_risk"] + c["churned"]) / n, 4) if n else 0.0}


@hookimpl
def register_analyses(register):
    register("lifecycle", LifecycleAnalysis, description="new / active / reactivated / at-risk / churned per user "
             "from recency against their own typical gap; stage mix per segment vs population")
