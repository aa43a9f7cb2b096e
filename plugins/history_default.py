"""The default history renderer: a user's most recent and most characteristic items as text.

It is a `firstresult` hook, so a plugin that knows a domain better can return its own text first.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

from seglens import hookimpl


def _value_text(value: Any, kind: str) -> str:
    if value is None or value != value:  # NaN
        return ""
    if kind == "rating":
        return f" (rated {value:g})"
    if kind in ("amount", "quantity"):
        return f" ({value:,.2f})" if kind == "amount" else f" (x{value:g})"
    return ""


@hookimpl(trylast=True)
def render_history(user_id, events, catalog, options):
    max_items = int(options.get("max_items", 40))
    max_chars = int(options.get("max_chars", 1000))
    kind = catalog.get("value_kind", "none")
    if events is None or len(events) == 0:
        return "No recorded activity."
    cats: Counter[str] = Counter()
    for c in events["categories"]:
        if c is not None and len(c):
            cats.update(list(c))
    lines = [f"{len(events)} recent events."]
    if cats:
        lines.append("Top categories: " + ", ".join(f"{c} ({n})" for c, n in cats.most_common(5)) + ".")
    # Half the budget to the newest items, half to the highest-valued (most characteristic) ones.
    newest = events.iloc[::-1].drop_duplicates("item_id").head(max_items // 2)
    rest = events[~events["item_id"].isin(newest["item_id"])]
    if kind != "none":
        rest = rest.sort_values("value", ascending=False, na_position="last")
    picked = list(newest.itertuples()) + list(rest.drop_duplicates("item_id").head(max_items - len(newest)).itertuples())
    for row in picked:
        title = row.title if isinstance(row.title, str) and row.title else f"item {row.item_id}"
        c = list(row.categories) if row.categories is not None and len(row.categories) else []
        line = f"- {title}" + (f" [{', '.join(c[:3])}]" if c else "") + _value_text(row.value, kind)
        if sum(len(x) + 1 for x in lines) + len(line) > max_chars:
            break
        lines.append(line)
    text = "\n".join(lines)
    while len(text) > max_chars and "\n" in text:  # the budget is a promise, headers included
        text = text.rsplit("\n", 1)[0]
    return text[:max_chars]
