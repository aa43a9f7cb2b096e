"""The `keywords` describer: names a segment from its most lifted categories, no LLM needed.

Every word it writes comes straight from the profile facts, so it is always grounded; it is also
the fallback whenever an LLM describer fails.
"""
from __future__ import annotations

from typing import Any

from seglens import hookimpl
from seglens.model import SegmentDescription


def _title_case(s: str) -> str:
    return " ".join(w if w.isupper() and len(w) > 1 else w.capitalize() for w in str(s).split())


def _value_phrase(rfm: dict[str, Any], pop: dict[str, Any]) -> str | None:
    if rfm.get("monetary_mean_index") is not None and pop.get("monetary_mean"):
        return (f"spend {rfm['monetary_mean_index']:.2f}x the average per user "
                f"({rfm['monetary_mean']:,.2f} vs {pop['monetary_mean']:,.2f})")
    if "rating_mean" in rfm and pop.get("rating_mean") is not None:
        return f"rate {rfm['rating_mean']:.2f} on average (population {pop['rating_mean']:.2f})"
    return None


def describe_one(seg: dict[str, Any], population: dict[str, Any]) -> SegmentDescription:
    prof = seg.get("profile", {})
    pop = population.get("profile", {}).get("population", {})
    cats = [c for c in prof.get("top_categories", []) if (c.get("lift") or 0) > 1.0]
    items = [i for i in prof.get("top_items", []) if (i.get("lift") or 0) > 1.0]
    rfm = prof.get("rfm", {})
    pop_rfm = pop.get("rfm", {})
    if cats:
        name = " & ".join(_title_case(c["category"]) for c in cats[:2]) + " fans"
    elif items:
        name = f"{_title_case(items[0].get('title') or items[0]['item_id'])} crowd"
    else:
        name = _behaviour_name(rfm, pop_rfm)
    sentences = [f"{seg['size']:,} users ({seg['share'] * 100:.1f}% of all users)."]
    if cats:
        sentences.append("They over-index on " + ", ".join(
            f"{c['category']} ({c['lift']:.1f}x)" for c in cats[:3]) + " compared with everyone.")
    if items:
        sentences.append("Most distinctive items: " + ", ".join(
            f"{i.get('title') or i['item_id']} ({i['lift']:.1f}x)" for i in items[:3]) + ".")
    value = _value_phrase(rfm, pop_rfm)
    if value:
        sentences.append(f"They {value}.")
    traits = []
    if cats:
        traits.append(f"{cats[0]['category']} share {cats[0]['share']:.1%} vs {cats[0]['population_share']:.1%} "
                      f"overall (lift {cats[0]['lift']:.1f}x)")
    if rfm.get("recency_days_median") is not None:
        traits.append(f"median {rfm['recency_days_median']:g} days since last activity "
                      f"(population {pop_rfm.get('recency_days_median', 0):g})")
    if rfm.get("events_median") is not None:
        traits.append(f"median {rfm['events_median']:g} events per user (population {pop_rfm.get('events_median', 0):g})")
    actions = []
    if cats:
        actions.append(f"Feature new {cats[0]['category']} items prominently for this segment.")
    if items:
        actions.append(f"Recommend items similar to {items[0].get('title') or items[0]['item_id']} to members "
                       "who have not seen it.")
    if not actions:
        actions.append("Target with offers matched to their activity level.")
    return SegmentDescription(seg["id"], name, " ".join(sentences), traits[:3], actions[:2], describer="keywords")


def _behaviour_name(rfm: dict[str, Any], pop: dict[str, Any]) -> str:
    """A name from behaviour alone, for data without a catalog (e.g. CDNOW)."""
    bits = []
    if rfm.get("recency_days_median") is not None and pop.get("recency_days_median"):
        r = rfm["recency_days_median"] / max(pop["recency_days_median"], 1e-9)
        bits.append("Lapsed" if r > 1.5 else "Recent" if r < 0.67 else "Steady")
    if rfm.get("monetary_mean") is not None and pop.get("monetary_mean"):
        m = rfm["monetary_mean"] / max(pop["monetary_mean"], 1e-9)
        bits.append("high spenders" if m > 1.5 else "low spenders" if m < 0.67 else "mid spenders")
    elif rfm.get("events_median") is not None and pop.get("events_median"):
        e = rfm["events_median"] / max(pop["events_median"], 1e-9)
        bits.append("heavy users" if e > 1.5 else "light users" if e < 0.67 else "regular users")
    return " ".join(bits) or "Segment"


class KeywordDescriber:
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def describe(self, segments: list[dict[str, Any]], population: dict[str, Any]) -> list[SegmentDescription]:
        return [describe_one(s, population) for s in segments]


@hookimpl
def register_describers(register):
    register("keywords", KeywordDescriber, description="names from the most lifted categories (no LLM)")
