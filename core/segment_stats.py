"""Small statistics shared by the segment analytics analyses (preferences, recommendations,
satisfaction): shares of a segment against the population with confidence intervals.

Two kinds of share, each with the interval that fits how it was sampled:

- **user shares** ("what fraction of the segment's users did X at least once", or "have country =
  PL"): every user is one independent Bernoulli draw, so the segment share gets a *Wilson score
  interval*. Unlike the textbook Wald interval it stays inside [0, 1] and keeps its coverage at small
  counts and near 0 or 1, which is exactly where small segments and rare items live.
- **event shares** ("what fraction of the segment's events are Horror", "... happen at 23:00"): the
  events of one user are *not* independent (a horror fan's 40 events are one taste, not 40 draws),
  so a binomial interval on event counts would be absurdly narrow. The share is a ratio estimator
  r = sum(x_u) / sum(t_u) over users (x_u: the user's events with the attribute, t_u: all of the
  user's events in the dimension), and its standard error is the cluster-robust (users as clusters)
  delta-method one: Var(r) = n/(n-1) * sum((x_u - r t_u)^2) / (sum t_u)^2. The interval is built on
  the log scale, where a ratio is closer to normal, and exp()'d back, so it is never negative.

Lift = segment share / population share. The population share is estimated from every user (the
segment included), so its error is much smaller than the segment's and is treated as fixed: the
lift interval is the segment share's interval divided by the population share. For a segment that
is most of the population this makes the interval slightly conservative, and its lift is ~1 anyway.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .analysis_helpers import rnd


r = rnd  # a float rounded for JSON and prompts; None for missing or non-finite values


def z_value(confidence: float) -> float:
    """The two-sided normal quantile for a confidence level such as 0.95 (1.96)."""
    from scipy.stats import norm

    c = float(confidence)
    if not 0.5 <= c < 1.0:
        c = 0.95
    return float(norm.ppf(0.5 + c / 2))


def wilson(k: Any, n: Any, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for k successes in n trials (vectorized; NaN where n == 0)."""
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        z2 = z * z
        denom = 1.0 + z2 / n
        centre = (p + z2 / (2 * n)) / denom
        half = z * np.sqrt(np.maximum(p * (1 - p) / n + z2 / (4 * n * n), 0.0)) / denom
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def support_threshold(min_support: int, segment_users: int) -> int:
    """Users needed before a row is reported: `min_support`, relaxed for tiny segments the same way
    the profile does (a quarter of the segment, at least 2), so a 6-user segment still gets a
    profile while a lone user's every item is not reported as a 'preference'."""
    return int(min(int(min_support), max(2, int(segment_users) // 4)))


def user_share_lift(df: pd.DataFrame, z: float) -> pd.DataFrame:
    """Add share, population_share, lift and a Wilson-based lift interval to a frame with columns
    `users` (segment users with the attribute), `base` (segment users who could have it),
    `pop_users` and `pop_base` (the same over everyone)."""
    out = df.copy()
    out["share"] = out["users"] / out["base"]
    out["population_share"] = out["pop_users"] / out["pop_base"]
    lo, hi = wilson(out["users"].to_numpy(), out["base"].to_numpy(), z)
    out["lift"] = out["share"] / out["population_share"]
    out["ci_low"] = lo / out["population_share"].to_numpy()
    out["ci_high"] = hi / out["population_share"].to_numpy()
    return out


def event_share_lift(con: Any, units_sql: str, members: str, z: float,
                     params: list[Any] | None = None) -> pd.DataFrame:
    """Event shares per (segment, key) with cluster-robust log-scale lift intervals.

    `units_sql` yields rows (user_id, key, w): one row per event (w = 1) or any non-negative weight
    (integer weights keep the parallel DuckDB sums exact, so the result is repeatable).
    `members` is a registered relation (user_id, segment). Returns one row per (segment, key) the
    segment has at least one event in: segment, key, users (segment users with the key), events (sum
    of w), share, population_share, lift, ci_low, ci_high, segment_users (users with any weight in
    this dimension). Population sums are the sums over all segments (the noise group included).
    """
    agg = con.execute(
        f"""
        WITH u AS (SELECT user_id, key, sum(w)::DOUBLE AS x FROM ({units_sql}) WHERE key IS NOT NULL
                   GROUP BY ALL HAVING sum(w) > 0),
        t AS (SELECT user_id, sum(x) AS t FROM u GROUP BY user_id),
        ut AS (SELECT m.segment, u.key, u.x, t.t FROM u JOIN t USING (user_id) JOIN {members} m USING (user_id))
        SELECT segment, key, sum(x) AS X, sum(x * x) AS Sxx, sum(x * t) AS Sxt, count(*) AS users
        FROM ut GROUP BY ALL
        """,
        params or [],
    ).df()
    tot = con.execute(
        f"""
        WITH u AS (SELECT user_id, sum(w)::DOUBLE AS t FROM ({units_sql}) WHERE key IS NOT NULL
                   GROUP BY user_id HAVING sum(w) > 0)
        SELECT m.segment, sum(t) AS T, sum(t * t) AS Stt, count(*) AS n FROM u JOIN {members} m USING (user_id)
        GROUP BY m.segment
        """,
        params or [],
    ).df()
    cols = ["segment", "key", "users", "events", "share", "population_share", "lift", "ci_low", "ci_high",
            "segment_users"]
    if agg.empty or tot.empty:
        return pd.DataFrame(columns=cols)
    pop_k = agg.groupby("key", as_index=False)[["X", "users"]].sum().rename(columns={"X": "pX", "users": "pusers"})
    pT = float(tot["T"].sum())
    df = agg.merge(tot, on="segment").merge(pop_k, on="key")
    share = df["X"] / df["T"]
    n = df["n"].astype(float)
    resid = (df["Sxx"] - 2 * share * df["Sxt"] + share * share * df["Stt"]).clip(lower=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = np.where(n > 1, n / (n - 1) * resid / (df["T"] ** 2), np.nan)
        se_log = np.sqrt(var) / share
    pop_share = df["pX"] / pT
    lift = share / pop_share
    out = pd.DataFrame({
        "segment": df["segment"].astype(int),
        "key": df["key"],
        "users": df["users"].astype(int),
        "events": df["X"],
        "share": share,
        "population_share": pop_share,
        "lift": lift,
        "ci_low": lift * np.exp(-z * se_log),
        "ci_high": lift * np.exp(z * se_log),
        "segment_users": df["n"].astype(int),
    })
    return out.sort_values(["segment", "key"]).reset_index(drop=True)


def ratio_ci(x: np.ndarray, t: np.ndarray, z: float) -> tuple[float, float, float]:
    """Ratio estimator sum(x)/sum(t) over users with its cluster-robust delta-method interval (on the
    natural scale, for means such as a mean rating; NaN bounds with fewer than two users)."""
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    T = t.sum()
    if T <= 0:
        return float("nan"), float("nan"), float("nan")
    est = x.sum() / T
    n = len(x)
    if n < 2:
        return float(est), float("nan"), float("nan")
    se = math.sqrt(n / (n - 1) * float(((x - est * t) ** 2).sum())) / T
    return float(est), float(est - z * se), float(est + z * se)


def lift_row(rec: dict[str, Any], key: str, label: Any) -> dict[str, Any]:
    """One compact, rounded row for segments.json and prompts."""
    return {
        key: label,
        "users": int(rec["users"]),
        "share": r(rec["share"], 4),
        "population_share": r(rec["population_share"], 4),
        "lift": r(rec["lift"], 2),
        "ci": [r(rec["ci_low"], 2), r(rec["ci_high"], 2)],
    }


def members_frame(ctx: Any) -> pd.DataFrame:
    return pd.DataFrame({"user_id": ctx.user_ids.astype(str), "segment": ctx.segmentation.labels.astype(np.int64)})
