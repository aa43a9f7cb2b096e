"""Answering a question about a run from segments.json only.

With a language model the question and the (fenced) facts go into the `ask` prompt. Without one
(`keywords`), a small set of fact look-ups answers the common questions -- largest, smallest, most
valuable, best rated, most active, highest lift for a named category or item -- and says plainly when
the facts do not answer.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

NO_ANSWER = "The facts in this run do not answer that."


@dataclass
class Answer:
    text: str
    segments: list[int] = field(default_factory=list)
    backend: str = "keywords"


def _seg_label(s: dict[str, Any]) -> str:
    return f"[segment {s['id']}] {s.get('name', '')}".strip()


def _metric(segments: list[dict[str, Any]], key: str) -> list[tuple[float, dict[str, Any]]]:
    out = []
    for s in segments:
        v = s.get("profile", {}).get("rfm", {}).get(key)
        if v is not None:
            out.append((float(v), s))
    return out


def answer_from_facts(question: str, segments: list[dict[str, Any]]) -> Answer:
    q = question.lower()
    real = [s for s in segments if s["id"] >= 0]
    if not real:
        return Answer(NO_ANSWER + " (this run has no segments)")
    low = bool(re.search(r"\b(smallest|least|lowest|fewest|worst)\b", q))
    pick = min if low else max
    # A category or item named in the question: the segment with the highest lift for it.
    names: dict[str, list[tuple[float, dict[str, Any]]]] = {}
    for s in real:
        for c in s.get("profile", {}).get("top_categories", []):
            names.setdefault(str(c["category"]).lower(), []).append((c["lift"], s))
        for i in s.get("profile", {}).get("top_items", []):
            if i.get("title"):
                names.setdefault(str(i["title"]).lower(), []).append((i["lift"], s))
    named = sorted((n for n in names if len(n) > 2 and re.search(rf"(?<!\w){re.escape(n)}(?!\w)", q)),
                   key=len, reverse=True)
    if named:
        n = named[0]
        lift, s = max(names[n], key=lambda t: t[0])
        return Answer(f"{_seg_label(s)} over-indexes most on {n} (lift {lift:.2f}x against all users).", [s["id"]])
    if re.search(r"\b(rate|rates|rating|ratings|rated|satisf\w*|happ\w*)\b", q):
        vals = _metric(real, "rating_mean")
        if not vals:
            return Answer(NO_ANSWER + " (the events carry no ratings)")
        v, s = pick(vals, key=lambda t: t[0])
        return Answer(f"{_seg_label(s)} has the {'lowest' if low else 'highest'} mean rating, {v:.2f}.", [s["id"]])
    if re.search(r"\b(valuable|value|spend\w*|revenue|money|rich\w*|pay\w*|promotion|offer|premium)\b", q):
        vals = _metric(real, "monetary_mean")
        if not vals:
            return Answer(NO_ANSWER + " (the events carry no monetary amounts)")
        v, s = pick(vals, key=lambda t: t[0])
        return Answer(f"{_seg_label(s)} has the {'lowest' if low else 'highest'} spend per user, "
                      f"{v:,.2f} on average.", [s["id"]])
    if re.search(r"\b(active|engaged|heavy|frequent\w*|events)\b", q):
        vals = _metric(real, "events_median")
        v, s = pick(vals, key=lambda t: t[0])
        return Answer(f"{_seg_label(s)} is the {'least' if low else 'most'} active: median {v:g} events per user.",
                      [s["id"]])
    if re.search(r"\b(churn\w*|lapsed|inactive|dormant|recent\w*)\b", q):
        vals = _metric(real, "recency_days_median")
        v, s = (max if not re.search(r"\brecent", q) else min)(vals, key=lambda t: t[0])
        return Answer(f"{_seg_label(s)} has a median of {v:g} days since the last activity.", [s["id"]])
    if re.search(r"\b(largest|biggest|smallest|size|how many|most users|fewest users)\b", q):
        s = pick(real, key=lambda x: x["size"])
        return Answer(f"{_seg_label(s)} is the {'smallest' if low else 'largest'} segment with {s['size']:,} users "
                      f"({s['share']:.1%}).", [s["id"]])
    return Answer(NO_ANSWER + " Without a language model seglens answers questions about size, value, ratings, "
                  "activity, recency, and which segment over-indexes on a named category or item.")


def answer_with_model(question: str, segments: list[dict[str, Any]], population: dict[str, Any], model: Any,
                      prompts_dir: Any = None, max_tokens: int = 300) -> Answer:
    from .facts import LEVELS, population_facts, segment_facts
    from .llm import LLMError
    from .prompting import render_messages

    real = [s for s in segments if s["id"] >= 0]
    pop = population_facts(population, len(real))
    for level in range(len(LEVELS)):
        facts = [segment_facts(s, level) for s in real]
        messages = render_messages("ask", prompts_dir, segments=facts, population=pop, question=question)
        if sum(model.count_tokens(m["content"]) for m in messages) + max_tokens <= model.context_tokens:
            break
    else:
        raise LLMError("the run's facts do not fit the model's context even when trimmed", reason="context",
                       hint="use a model with a larger context (describe.model)")
    reply = model.chat(messages, max_tokens=max_tokens, temperature=0.0)
    cited = sorted({int(x) for x in re.findall(r"segment\s+(-?\d+)", reply.text, flags=re.I)})
    return Answer(reply.text.strip(), cited, backend=model.model_id)
