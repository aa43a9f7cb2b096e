"""The facts a language model may use about a segment, and about everyone, in a compact form.

The same dict goes into the prompt and into the grounding check, so "supported" means "the model was
shown it". The issue's list is the whole menu (size, share, lifted categories and items with their
lift, value, activity times, ratings, plus lifecycle and growth in one figure each), because a small
model given every analysis (5,000 tokens on the demo) overflows its context and copies noise.
Shares are percentages with one decimal, lifts two decimals, so numbers in a reply can be matched back
within rounding; key names are plain words, because the grounding check ties each number in a
sentence to the words of the fact it came from.
"""
from __future__ import annotations

from typing import Any

# How much detail to keep at each trim level (used when a prompt would overflow the context).
LEVELS = [
    {"categories": 6, "items": 5, "activity": True, "extra": True},
    {"categories": 4, "items": 3, "activity": True, "extra": False},
    {"categories": 3, "items": 2, "activity": False, "extra": False},
]

_BEHAVIOUR = {  # profile rfm key -> fact key
    "events_median": "events_per_user_median",
    "recency_days_median": "days_since_last_activity_median",
    "frequency_per_month_median": "events_per_month_median",
    "monetary_mean": "spend_per_user_mean",
    "monetary_mean_index": "spend_vs_average_user_x",
    "rating_mean": "rating_mean",
}


def _pct(x: Any) -> float | None:
    return None if x is None else round(float(x) * 100, 1)


def _some(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _behaviour(rfm: dict[str, Any] | None) -> dict[str, Any]:
    return _some({new: (rfm or {}).get(old) for old, new in _BEHAVIOUR.items()})


def _activity(act: dict[str, Any] | None) -> dict[str, Any]:
    act = act or {}
    return _some({"peak_hour": act.get("peak_hour"), "peak_weekday": act.get("peak_weekday"),
                  "weekend_share_pct": _pct(act.get("weekend_share")), "night_share_pct": _pct(act.get("night_share"))})


def _extra(seg: dict[str, Any]) -> dict[str, Any]:
    """Value, satisfaction, lifecycle and growth: one or two headline figures each."""
    out: dict[str, Any] = {}
    v = seg.get("value") or {}
    if v.get("revenue_total") is not None:
        out["value"] = _some({"revenue_share_pct": _pct(v.get("revenue_share")),
                              "value_index_vs_average_user": v.get("value_index"),
                              "lifetime_value_per_user": v.get("clv_per_user")})
    rat = (seg.get("satisfaction") or {}).get("ratings") or {}
    if rat.get("mean") is not None:
        out["ratings"] = _some({"rating_mean": rat.get("mean"), "low_rating_share_pct": _pct(rat.get("low_share"))})
    lc = (seg.get("lifecycle") or {}).get("stage_shares") or {}
    if lc:
        out["lifecycle"] = _some({"active_share_pct": _pct(lc.get("active")), "churned_share_pct": _pct(lc.get("churned")),
                                  "at_risk_share_pct": _pct(lc.get("at_risk"))})
    g = seg.get("growth") or {}
    if g.get("active_growth") is not None:
        out["growth"] = {"active_users_growth_last_period_pct": _pct(g["active_growth"]), "period": g.get("period")}
    return {k: v for k, v in out.items() if v}


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
    if _behaviour(prof.get("rfm")):
        facts["behaviour"] = _behaviour(prof.get("rfm"))
    if lv["activity"] and _activity(prof.get("activity")):
        facts["activity"] = _activity(prof.get("activity"))
    if lv["extra"]:
        facts.update(_extra(seg))
    return facts


def population_facts(population: dict[str, Any], n_segments: int) -> dict[str, Any]:
    prof = population.get("profile", {}).get("population", {})
    out: dict[str, Any] = {"users": prof.get("n_users"), "segments": n_segments}
    if _behaviour(prof.get("rfm")):
        out["behaviour"] = _behaviour(prof.get("rfm"))
    if _activity(prof.get("activity")):
        out["activity"] = _activity(prof.get("activity"))
    if prof.get("top_categories"):
        out["most_common_categories"] = [
            {"category": c["category"], "share_pct": _pct(c["share"])} for c in prof["top_categories"][:6]]
    return out
