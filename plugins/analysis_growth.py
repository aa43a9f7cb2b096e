"""Growth of each segment over time: active users and new members per period, growth rates, and a
forecast of the next periods with prediction intervals.

Why these measures:
- *active users* (distinct users with any event in the period) is the size of the segment as the
  service feels it; *new members* (users whose first event in the log falls in the period) is its
  intake. Counting distinct users, not events, keeps one heavy user from looking like growth.
- *growth* compares the last `growth_window` periods with the `growth_window` before them (sums, so
  one odd period does not decide it); *trend* is the slope of log(1 + active users) over the last
  12 periods, as a percentage change per period, which is steadier than any two-point comparison.
- the *forecast* is an exponential-smoothing state-space model (statsmodels ETSModel, additive
  errors, additive trend, damped when there are 10+ periods so the trend does not run away), whose
  prediction intervals come from the model's error variance. Counts cannot be negative, so means
  and bounds are clipped at 0. A segment too small to forecast, or a fit that fails, gets no
  forecast and says why; the growth figures stay.

Periods are whole calendar months when the history spans ~6 months or more, else weeks (see
`seglens.analysis_helpers`). With fewer than `growth_min_periods` complete periods (6) the analysis is
skipped: a growth rate or a trend from three points says nothing. New-member counts of the first
periods include old customers first seen when the log starts (the log cannot know they are old).

Tables: `growth_series` (segment, period_start, period_end (exclusive), active_users, new_members,
events) and `growth_forecast` (segment, series, step, period_start, mean, lower, upper). Every user
belongs to exactly one segment (noise is -1), so the population series is the sum of the segment
series; the population's own forecast is in the run-level facts.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from seglens import hookimpl
from seglens.analysis_helpers import (Periods, make_periods, md_table, members, rnd,
                                                    segment_list, step_back)
from seglens.model import AnalysisContext, AnalysisResult

TREND_PERIODS = 12
DAMPED_MIN_PERIODS = 10


class GrowthAnalysis:
    requires: tuple[str, ...] = ("timestamps",)

    def __init__(self, options: dict[str, Any]) -> None:
        self.period = options.get("period", "auto")
        self.min_periods = max(2, int(options.get("growth_min_periods", 6)))
        self.window = max(1, int(options.get("growth_window", 3)))
        self.horizon = max(1, int(options.get("growth_horizon", 3)))
        self.interval = float(options.get("growth_interval", 0.9))
        self.min_forecast_users = int(options.get("growth_min_forecast_users", 10))

    def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
        periods = make_periods(ctx.dataset.con, self.period)
        if periods is None or periods.n < self.min_periods:
            n = 0 if periods is None else periods.n
            span = 0.0 if periods is None else periods.span_days
            unit = "week" if periods is None else periods.unit
            return AnalysisResult("growth", skipped=(
                f"the history spans {span:.0f} days: {n} complete {unit}s, and growth needs at least "
                f"{self.min_periods} periods for a trend or a forecast"))
        series = self._series(ctx, periods)
        labels = ctx.segmentation.labels
        sizes = pd.Series(labels).value_counts().to_dict()
        per: dict[int, dict[str, Any]] = {}
        forecasts: list[pd.DataFrame] = []
        future = [_step(periods, h) for h in range(1, self.horizon + 1)]
        for sid in segment_list(labels):
            g = series[series["segment"] == sid]
            facts, fc = self._facts(g["active_users"].to_numpy(float), g["new_members"].to_numpy(float),
                                    int(sizes.get(sid, 0)), periods, future)
            per[sid] = facts
            if fc is not None:
                forecasts.append(fc.assign(segment=sid))
        tot = series.groupby("period_start", sort=True)[["active_users", "new_members"]].sum()
        pop, pop_fc = self._facts(tot["active_users"].to_numpy(float), tot["new_members"].to_numpy(float),
                                  len(labels), periods, future, keep_horizon=True)
        run = {
            "period": periods.unit,
            "periods": periods.n,
            "first_period_start": str(periods.edges[0].date()),
            "last_period_end": str(periods.end.date()),
            "window": self.window,
            "horizon": self.horizon,
            "interval": self.interval,
            "forecast_model": "statsmodels ETSModel: additive error and trend, damped with 10+ periods",
            "population": pop,
        }
        ranked = [(f["active_growth"], sid) for sid, f in per.items() if sid >= 0 and f.get("active_growth") is not None
                  and sizes.get(sid, 0) >= self.min_forecast_users]
        if ranked:
            run["fastest_growing_segment"] = max(ranked)[1]
            run["fastest_shrinking_segment"] = min(ranked)[1]
        fc_table = pd.concat(forecasts, ignore_index=True) if forecasts else _empty_forecast()
        fc_table = fc_table[["segment", "series", "step", "period_start", "mean", "lower", "upper"]]
        return AnalysisResult("growth", per, run, tables={"growth_series": series, "growth_forecast": fc_table},
                              markdown=self._markdown(per, run, sizes))

    # --- pieces -------------------------------------------------------------------------------
    def _series(self, ctx: AnalysisContext, periods: Periods) -> pd.DataFrame:
        """Active users, new members and events per segment and period, zeros filled in."""
        con = ctx.dataset.con
        con.register("_growth_members", members(ctx))
        con.register("_growth_periods", periods.frame())
        try:
            active = con.execute("""
                SELECT m.segment, p.idx, count(DISTINCT e.user_id) AS active_users, count(*) AS events
                FROM events e JOIN _growth_periods p ON e.ts >= p.start AND e.ts < p.stop
                JOIN _growth_members m USING (user_id) GROUP BY ALL""").df()
            new = con.execute("""
                SELECT m.segment, p.idx, count(*) AS new_members
                FROM (SELECT user_id, min(ts) AS ts FROM events GROUP BY user_id) f
                JOIN _growth_periods p ON f.ts >= p.start AND f.ts < p.stop
                JOIN _growth_members m USING (user_id) GROUP BY ALL""").df()
        finally:
            con.unregister("_growth_members")
            con.unregister("_growth_periods")
        segs = segment_list(ctx.segmentation.labels)
        grid = pd.MultiIndex.from_product([segs, range(periods.n)], names=["segment", "idx"]).to_frame(index=False)
        out = grid.merge(active, on=["segment", "idx"], how="left").merge(new, on=["segment", "idx"], how="left")
        for col in ("active_users", "new_members", "events"):
            out[col] = out[col].fillna(0).astype(np.int64)
        frame = periods.frame()
        out["period_start"] = frame["start"].to_numpy()[out["idx"].to_numpy()]
        out["period_end"] = frame["stop"].to_numpy()[out["idx"].to_numpy()]
        out["segment"] = out["segment"].astype(np.int64)
        return out[["segment", "period_start", "period_end", "active_users", "new_members", "events"]]

    def _facts(self, active: np.ndarray, new: np.ndarray, size: int, periods: Periods, future: list[pd.Timestamp],
               keep_horizon: bool = False) -> tuple[dict[str, Any], pd.DataFrame | None]:
        w = min(self.window, len(active) // 2)
        facts: dict[str, Any] = {
            "period": periods.unit,
            "active_users_last_period": int(active[-1]),
            "new_members_last_period": int(new[-1]),
            "active_growth": _growth(active, w),
            "new_members_growth": _growth(new, w),
            "trend_per_period": _trend(active[-TREND_PERIODS:]),
        }
        if size < self.min_forecast_users:
            facts["forecast_skipped"] = f"{size} users are too few for a forecast (needs {self.min_forecast_users})"
            return facts, None
        rows = []
        for name, y in (("active_users", active), ("new_members", new)):
            try:
                mean, lo, hi, method = forecast(y, self.horizon, self.interval)
            except Exception as exc:  # a numerical failure of one fit must not sink the analysis
                facts["forecast_skipped"] = f"the {name} forecast failed: {type(exc).__name__}: {exc}"[:200]
                return facts, None
            nxt = {"mean": rnd(mean[0], 1), "lower": rnd(lo[0], 1), "upper": rnd(hi[0], 1)}
            facts[f"{name}_forecast_next"] = nxt
            if keep_horizon:
                facts[f"{name}_forecast"] = {"period_start": [str(d.date()) for d in future[:self.horizon]],
                                             "mean": [rnd(v, 1) for v in mean], "lower": [rnd(v, 1) for v in lo],
                                             "upper": [rnd(v, 1) for v in hi], "method": method}
            rows.append(pd.DataFrame({"series": name, "step": np.arange(1, self.horizon + 1),
                                      "period_start": pd.to_datetime(future[:self.horizon]).astype("datetime64[us]"),
                                      "mean": mean, "lower": lo, "upper": hi}))
        return facts, pd.concat(rows, ignore_index=True)

    def _markdown(self, per: dict[int, dict[str, Any]], run: dict[str, Any], sizes: dict[int, int]) -> str:
        pop = run["population"]
        pct = lambda v: "-" if v is None else f"{v:+.1%}"  # noqa: E731
        lines = [f"{run['periods']} complete {run['period']}s from {run['first_period_start']} to "
                 f"{run['last_period_end']}. Growth compares the last {run['window']} {run['period']}s with the "
                 f"{run['window']} before; trend is the change per {run['period']} of a log-linear fit; forecasts "
                 f"are for the next {run['period']} with a {run['interval']:.0%} prediction interval.", "",
                 f"Population: {pop['active_users_last_period']:,} active users in the last {run['period']}, "
                 f"growth {pct(pop['active_growth'])}, trend {pct(pop['trend_per_period'])}.", ""]
        rows = []
        for sid, f in per.items():
            fc = f.get("active_users_forecast_next")
            rows.append([sid, sizes.get(sid, 0), f["active_users_last_period"], f["new_members_last_period"],
                         pct(f["active_growth"]), pct(f["trend_per_period"]),
                         "-" if not fc else f"{fc['mean']:.0f} [{fc['lower']:.0f}, {fc['upper']:.0f}]"])
        lines.append(md_table(["segment", "users", "active last", "new last", "growth", "trend",
                               "active next (interval)"], rows))
        return "\n".join(lines)


def _step(periods: Periods, h: int) -> pd.Timestamp:
    """Start of the h-th period after the data (h = 1 starts where the data ends)."""
    return step_back(periods.end, periods.unit, 1 - h)


def _growth(y: np.ndarray, w: int) -> float | None:
    """Sum of the last w periods over the w before, minus 1; None when the earlier sum is 0."""
    if w < 1 or len(y) < 2 * w:
        return None
    before = float(y[-2 * w:-w].sum())
    return rnd(float(y[-w:].sum()) / before - 1.0, 4) if before > 0 else None


def _trend(y: np.ndarray) -> float | None:
    """exp(slope) - 1 of a least-squares line through log(1 + y): relative change per period."""
    if len(y) < 3 or not np.any(y > 0):
        return None
    x = np.arange(len(y), dtype=float)
    slope = np.polyfit(x, np.log1p(y), 1)[0]
    return rnd(np.expm1(slope), 4)


def forecast(y: np.ndarray, horizon: int, interval: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Mean and prediction interval for the next `horizon` values of a count series.

    A constant series needs no model (and would make the likelihood degenerate): the forecast is
    the constant with no spread. OpenBLAS threads are held to one during fitting: the optimizer's
    tiny problems run ten times slower when two threads fight over them.
    """
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel
    from threadpoolctl import threadpool_limits

    y = np.asarray(y, dtype=float)
    if np.ptp(y) == 0:
        c = np.full(horizon, y[-1])
        return c, c.copy(), c.copy(), "constant"
    damped = len(y) >= DAMPED_MIN_PERIODS
    series = pd.Series(y)  # statsmodels' prediction results need an index
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = ETSModel(series, error="add", trend="add", damped_trend=damped).fit(disp=False)
        frame = res.get_prediction(start=len(y), end=len(y) + horizon - 1).summary_frame(alpha=1 - interval)
    mean = frame["mean"].to_numpy(float)
    lo = frame["pi_lower"].to_numpy(float)
    hi = frame["pi_upper"].to_numpy(float)
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise ValueError("the model gave non-finite forecasts")
    method = "ETS(A,Ad,N)" if damped else "ETS(A,A,N)"
    return np.maximum(mean, 0.0), np.maximum(lo, 0.0), np.maximum(hi, 0.0), method


def _empty_forecast() -> pd.DataFrame:
    return pd.DataFrame({"segment": pd.Series(dtype=np.int64), "series": pd.Series(dtype=object),
                         "step": pd.Series(dtype=np.int64), "period_start": pd.Series(dtype="datetime64[us]"),
                         "mean": pd.Series(dtype=float), "lower": pd.Series(dtype=float),
                         "upper": pd.Series(dtype=float)})


@hookimpl
def register_analyses(register):
    register("growth", GrowthAnalysis, description="active users and new members per period and segment, "
             "growth rates, trend, forecast with prediction intervals")
