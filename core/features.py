"""Behaviour features per user, computed in DuckDB so 100k users and millions of events stay fast.

These feed the profiles (RFM, activity times, category shares), the behaviour embedder, and later
analyses; the order of rows here is the order of every per-user array in a run (sorted user_id).
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .determinism import single_threaded
from .model import Dataset, UserFeatures

TOP_CATEGORIES = 30


def category_column(name: str) -> str:
    return "cat_" + re.sub(r"[^0-9a-zA-Z]+", "_", name.strip().lower()).strip("_")[:40]


def compute_features(dataset: Dataset, top_categories: int = TOP_CATEGORIES) -> UserFeatures:
    with single_threaded(dataset.con):
        return _compute(dataset, top_categories)


MONEY_EVENTS = ("purchase", "order", "buy", "transaction", "sale", "checkout", "payment")
RATING_EVENTS = ("rating", "rate", "review", "score")


def value_filters(dataset: Dataset) -> tuple[str | None, str | None]:
    """SQL conditions picking the events whose value is money and whose value is a rating.

    Logs often mix event types in one value column (minutes watched on views, stars on ratings,
    pounds on purchases); when purchase-like or rating-like event types exist, only they count.
    """
    types = {r[0].lower() for r in dataset.con.execute("SELECT DISTINCT event FROM events").fetchall() if r[0]}
    money = [t for t in types if t in MONEY_EVENTS]
    ratings = [t for t in types if t in RATING_EVENTS]

    def cond(names: list[str]) -> str:
        return "lower(e.event) IN (" + ", ".join("'" + n.replace("'", "''") + "'" for n in names) + ")"
    money_cond = cond(money) if money else ("TRUE" if dataset.value_kind in ("amount", "quantity") else None)
    rating_cond = cond(ratings) if ratings else ("TRUE" if dataset.value_kind == "rating" else None)
    return money_cond, rating_cond


def _compute(dataset: Dataset, top_categories: int) -> UserFeatures:
    con = dataset.con
    money_cond, rating_cond = value_filters(dataset)
    base = con.execute(
        f"""
        WITH bounds AS (SELECT max(ts) AS end_ts FROM events)
        SELECT
            e.user_id,
            count(*)::BIGINT AS n_events,
            count(DISTINCT e.item_id)::BIGINT AS n_items,
            count(DISTINCT CAST(e.ts AS DATE))::BIGINT AS active_days,
            min(e.ts) AS first_ts,
            max(e.ts) AS last_ts,
            date_diff('second', max(e.ts), any_value(b.end_ts)) / 86400.0 AS recency_days,
            date_diff('second', min(e.ts), max(e.ts)) / 86400.0 AS tenure_days,
            {f'coalesce(sum(e.value) FILTER (WHERE {money_cond}), 0)' if money_cond else 'NULL::DOUBLE'} AS monetary,
            {f'avg(e.value) FILTER (WHERE {rating_cond})' if rating_cond else 'NULL::DOUBLE'} AS mean_value,
            avg(CASE WHEN dayofweek(e.ts) IN (0, 6) THEN 1.0 ELSE 0.0 END) AS weekend_share,
            avg(CASE WHEN hour(e.ts) >= 22 OR hour(e.ts) < 5 THEN 1.0 ELSE 0.0 END) AS night_share,
            mode(hour(e.ts))::INTEGER AS peak_hour,
            mode(dayofweek(e.ts))::INTEGER AS peak_weekday
        FROM events e, bounds b
        GROUP BY e.user_id
        ORDER BY e.user_id
        """
    ).df()
    # Frequency in the RFM sense: distinct active days per 30 days of tenure (at least one day).
    base["frequency_per_month"] = base["active_days"] / np.maximum(base["tenure_days"], 1.0) * 30.0
    cat_cols: list[str] = []
    if dataset.has_catalog:
        top = [
            r[0]
            for r in con.execute(
                """
                SELECT c, count(*) AS n FROM (
                    SELECT unnest(i.categories) AS c FROM events e JOIN items i USING (item_id))
                GROUP BY c ORDER BY n DESC, c LIMIT ?
                """,
                [top_categories],
            ).fetchall()
        ]
        if top:
            shares = con.execute(
                """
                WITH ev AS (
                    SELECT e.user_id, unnest(i.categories) AS c FROM events e JOIN items i USING (item_id)),
                tot AS (SELECT user_id, count(*) AS n FROM events GROUP BY user_id)
                SELECT ev.user_id, ev.c, count(*) / any_value(tot.n) AS share
                FROM ev JOIN tot USING (user_id) WHERE ev.c IN (SELECT unnest(?::VARCHAR[]))
                GROUP BY ev.user_id, ev.c
                """,
                [top],
            ).df()
            wide = shares.pivot(index="user_id", columns="c", values="share")
            wide = wide.reindex(columns=top).fillna(0.0)
            used: set[str] = set()
            names = []
            for c in top:
                col = category_column(c)
                while col in used:
                    col += "_"
                used.add(col)
                names.append(col)
            wide.columns = names
            base = base.merge(wide, left_on="user_id", right_index=True, how="left")
            base[names] = base[names].fillna(0.0)
            cat_cols = names
            base.attrs["category_names"] = dict(zip(names, top))
    return UserFeatures(table=base.reset_index(drop=True), category_columns=cat_cols)


NUMERIC_FEATURES = (
    "n_events",
    "n_items",
    "active_days",
    "recency_days",
    "tenure_days",
    "monetary",
    "mean_value",
    "weekend_share",
    "night_share",
    "frequency_per_month",
)


def feature_matrix(features: UserFeatures) -> np.ndarray:
    """Standardized numeric features (counts log-scaled) plus category shares, for vector uses."""
    t = features.table
    cols = []
    for name in NUMERIC_FEATURES:
        if name not in t or t[name].isna().all():
            continue
        x = t[name].astype(float).fillna(t[name].astype(float).median()).to_numpy()
        if name in ("n_events", "n_items", "active_days", "monetary", "tenure_days", "recency_days",
                    "frequency_per_month"):
            x = np.log1p(np.maximum(x, 0.0))
        sd = x.std()
        cols.append((x - x.mean()) / sd if sd > 0 else np.zeros_like(x))
    for name in features.category_columns:
        x = t[name].to_numpy(dtype=float)
        sd = x.std()
        cols.append((x - x.mean()) / sd if sd > 0 else np.zeros_like(x))
    if not cols:
        return np.zeros((len(t), 1), dtype=np.float32)
    return np.column_stack(cols).astype(np.float32)


def category_names(features: UserFeatures) -> dict[str, str]:
    return dict(features.table.attrs.get("category_names", {}))


def load_features(frame: pd.DataFrame, names: dict[str, str]) -> UserFeatures:
    frame.attrs["category_names"] = names
    return UserFeatures(table=frame, category_columns=list(names))
