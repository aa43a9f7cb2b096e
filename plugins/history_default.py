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
    """Plain Python over the frame's columns: pandas operations per user (dedupe, isin, sort) cost
    ~4 ms each, which made rendering, not encoding, the bottleneck of history-text at 10k users."""
    max_items = int(options.get("max_items", 40))
    max_chars = int(options.get("max_chars", 1000))
    kind = catalog.get("value_kind", "none")
    if events is None or len(events) == 0:
        return "No recorded activity."
    rows = list(zip(events["item_id"].tolist(), events["title"].tolist(), events["categories"].tolist(),
                    events["value"].tolist()))
    cats: Counter[str] = Counter()
    for _, _, c, _ in rows:
        if c is not None and len(c):
            cats.update(list(c))
    lines = [f"{len(rows)} recent events."]
    if cats:
        lines.append("Top categories: " + ", ".join(f"{c} ({n})" for c, n in cats.most_common(5)) + ".")
    # Half the budget to the newest items, half to the highest-valued (most characteristic) ones.
    newest = _first_per_item(reversed(rows), max_items // 2)
    taken = {r[0] for r in newest}
    rest = [r for r in rows if r[0] not in taken]
    if kind != "none":  # highest value first, missing values last; ties keep their time order
        rest.sort(key=lambda r: (r[3] is None or r[3] != r[3], -(r[3] or 0.0) if r[3] == r[3] else 0.0))
    for item_id, title, c, value in newest + _first_per_item(rest, max_items - len(newest)):
        title = title if isinstance(title, str) and title else f"item {item_id}"
        c = list(c) if c is not None and len(c) else []
        line = f"- {title}" + (f" [{', '.join(c[:3])}]" if c else "") + _value_text(value, kind)
        if sum(len(x) + 1 for x in lines) + len(line) > max_chars:
            break
        lines.append(line)
    text = "\n".join(lines)
    while len(text) > max_chars and "\n" in text:  # the budget is a promise, headers included
        text = text.rsplit("\n", 1)[0]
    return text[:max_chars]


def _first_per_item(rows, limit: int) -> list[tuple]:
    """The first row of each item, in the given order, at most `limit` of them."""
    out, seen = [], set()
    for r in rows:
        if len(out) >= limit:
            break
        if r[0] not in seen:
            seen.add(r[0])
            out.append(r)
    return out
