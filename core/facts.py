"""The facts a language model may use about a segment, and about everyone, in a compact form.

The same dict goes into the prompt and into the grounding check, so "supported" means "the model was
shown it". Shares are given as percentages with one decimal, lifts with two, so numbers in the reply
can be matched back within rounding.
"""
from __future__ import annotations

from typing import Any

# How much detail to keep at each trim level (used when a prompt would overflow the context).
LEVELS = [
    {"categories": 8, "items": 8, "activity": True, "extra": True},
    {"categories": 5, "items": 5, "activity": True, "extra": False},
    {"categories": 3, "items": 3, "activity": False, "extra": False},
]


def _pct(x: Any) -> float | None:
    return None if x is None else round(float(x) * 100, 1)


def segment_facts(seg: dict[str, Any], level: int = 0) -> dict[str, Any]:
    lv = LEVELS[min(level, len(LEVELS) - 1)]
    prof = seg.get("profile", {})
    facts: dict[str, Any] = {"id": seg["id"], "users": seg["size"], "share_of_users_pct": _pct(seg["share"])}
    cats = [c for c in prof.get("top_categories", []) if (c.get("lift") or 0) > 1.0][: lv["categories"]]
    if cats:
        facts["categories_over_indexed"] = [
            {"category": c["category"], "lift": c["lift"], "segment_share_pct": _pct(c["share"]),
             "population_share_pct": _pct(c["population_share"])} for c in cats]
    items = [i for i in prof.get("top_items", []) if (i.get("lift") or 0) > 1.0][: lv["items"]]
    if items:
        facts["items_over_indexed"] = [
            {"title": i.get("title") or i["item_id"], "lift": i["lift"], "users": i["users"]} for i in items]
    if prof.get("rfm"):
        facts["behaviour"] = {k: v for k, v in prof["rfm"].items() if v is not None and k != "users"}
    if lv["activity"] and prof.get("activity"):
        facts["activity"] = prof["activity"]
    if lv["extra"]:
        for name, value in seg.items():
            if isinstance(value, dict) and name not in ("profile", "description_meta") and value:
                facts[name] = value
    return facts


def population_facts(population: dict[str, Any], n_segments: int) -> dict[str, Any]:
    prof = population.get("profile", {}).get("population", {})
    out: dict[str, Any] = {"users": prof.get("n_users"), "segments": n_segments}
    if prof.get("rfm"):
        out["behaviour"] = {k: v for k, v in prof["rfm"].items() if v is not None and k != "users"}
    if prof.get("activity"):
        out["activity"] = prof["activity"]
    if prof.get("top_categories"):
        out["most_common_categories"] = [
            {"category": c["category"], "share_pct": _pct(c["share"])} for c in prof["top_categories"][:8]]
    return out
