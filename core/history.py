"""Rendering every user's history as text through the `render_history` hook.

Only the newest `2 x history.max_items` events per user are fetched (in SQL), which bounds the
work however long a user's history is; the renderer picks what fits the character budget.
"""
from __future__ import annotations

from typing import Any

from . import plugins, progress
from .model import Dataset, Histories, UserFeatures


def fetch_recent(dataset: Dataset, limit: int, user_ids: list[str] | None = None):
    where = "WHERE e.user_id IN (SELECT unnest(?::VARCHAR[]))" if user_ids is not None else ""
    params: list[Any] = [user_ids] if user_ids is not None else []
    return dataset.con.execute(
        f"""
        SELECT * FROM (
            SELECT e.user_id, e.item_id, e.ts, e.event, e.value, e.text, i.title, i.categories,
                   row_number() OVER (PARTITION BY e.user_id ORDER BY e.ts DESC, e.item_id) AS r
            FROM events e LEFT JOIN items i USING (item_id) {where})
        WHERE r <= {int(limit)} ORDER BY user_id, ts
        """,
        params,
    ).df()


def render_all(dataset: Dataset, features: UserFeatures, options: dict[str, Any]) -> Histories:
    hook = plugins.load_plugins().hook.render_history
    max_items = int(options.get("max_items", 40))
    frame = fetch_recent(dataset, max_items * 2).drop(columns="r")
    groups = dict(tuple(frame.groupby("user_id", sort=False)))
    catalog = {"value_kind": dataset.value_kind, "has_catalog": dataset.has_catalog}
    texts = []
    ids = features.user_ids.astype(str)
    with progress.task("rendering histories", total=len(ids)) as bar:
        for uid in ids:
            events = groups.get(uid)
            text = hook(user_id=uid, events=events if events is not None else frame.iloc[:0],
                        catalog=catalog, options=options)
            texts.append(text or "")
            bar.advance()
    return Histories(user_ids=features.user_ids, texts=texts)
