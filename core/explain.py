"""A written explanation of how two segments differ, for `seglens compare --explain`.

The tests of the differences analysis say *what* differs; a reader wants two or three sentences on
what that means. With a language model the `compare_segments` prompt gets both segments' facts and the
largest significant differences (fenced as data), and every sentence of the reply goes through the
same grounding check as descriptions: unsupported ones are dropped and listed with the reason. With
`keywords` (or when the model fails) the sentences are built from the largest significant differences
themselves, so they are grounded by construction.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .facts import LEVELS, population_facts, segment_facts

MAX_DIFFERENCES = 8


@dataclass
class Explanation:
    text: str
    backend: str = "keywords"
    grounding: float = 1.0
    ungrounded: list[dict[str, str]] = field(default_factory=list)
    fallback_reason: str | None = None


def difference_facts(tests: list[dict[str, Any]], alpha: float, top: int = MAX_DIFFERENCES) -> list[dict[str, Any]]:
    """The significant tests, largest effect first, in the compact shape a prompt can hold; shares as
    percentages so a model that writes "45%" is matched against 45."""
    out = []
    for r in tests:
        if r.get("p_adj") is None or r["p_adj"] >= alpha or r.get("effect") is None:
            continue
        if r["kind"] == "category":
            out.append({"users_with_category": r["category"], "share_a_pct": _pct(r.get("share_a")),
                        "share_b_pct": _pct(r.get("share_b")), "cohens_h": round(float(r["effect"]), 2)})
        else:
            out.append({"feature": str(r["feature"]).replace("_", " "), "mean_a": _num(r.get("mean_a")),
                        "mean_b": _num(r.get("mean_b")), "cohens_d": round(float(r["effect"]), 2)})
        if len(out) >= top:
            break
    return out


def explain_from_facts(a: int, b_label: str, diffs: list[dict[str, Any]]) -> Explanation:
    """Sentences from the three largest significant differences (no model)."""
    if not diffs:
        return Explanation(f"No tested feature or category share differs significantly between segment {a} "
                           f"and {b_label} after the Benjamini-Hochberg correction.")
    sentences = []
    for d in diffs[:3]:
        if "users_with_category" in d:
            more = "more" if d["share_a_pct"] > d["share_b_pct"] else "fewer"
            sentences.append(f"Segment {a} has {more} users with {d['users_with_category']} than {b_label} "
                             f"({d['share_a_pct']}% vs {d['share_b_pct']}%, Cohen's h {d['cohens_h']:+.2f}).")
        else:
            more = "higher" if d["mean_a"] > d["mean_b"] else "lower"
            sentences.append(f"Segment {a} has a {more} mean {d['feature']} than {b_label} "
                             f"({d['mean_a']:g} vs {d['mean_b']:g}, Cohen's d {d['cohens_d']:+.2f}).")
    return Explanation(" ".join(sentences))


def explain_with_model(seg_a: dict[str, Any], seg_b: dict[str, Any] | None, diffs: list[dict[str, Any]],
                       all_segments: list[dict[str, Any]], population: dict[str, Any], model: Any,
                       prompts_dir: Any = None, max_tokens: int = 300) -> Explanation:
    """Ask the model with the `compare_segments` prompt (facts trimmed to fit its context) and keep
    only the sentences the facts support. `seg_b` None means "everyone else": B is the population."""
    from .grounding import GroundingChecker
    from .llm import LLMError
    from .prompting import render_messages

    real = [s for s in all_segments if s["id"] >= 0]
    pop = population_facts(population, len(real))
    for level in range(len(LEVELS)):
        fa = segment_facts(seg_a, level)
        fb = segment_facts(seg_b, level) if seg_b is not None else {"id": "rest", **pop}
        messages = render_messages("compare_segments", prompts_dir, a=fa, b=fb, differences=diffs)
        if sum(model.count_tokens(m["content"]) for m in messages) + max_tokens <= model.context_tokens:
            break
    else:
        raise LLMError("the two segments' facts do not fit the model's context even when trimmed",
                       reason="context", hint="use a model with a larger context (describe.model)")
    reply = model.chat(messages, max_tokens=max_tokens, temperature=0.0)
    if not reply.text.strip():
        raise LLMError("the model returned an empty reply", reason="empty")
    checker = GroundingChecker([segment_facts(s) for s in real])
    result = checker.check(reply.text.strip(), {"segment_a": fa, "segment_b": fb, "differences": diffs}, pop)
    if not result.kept:
        raise LLMError("no sentence of the model's explanation was supported by the facts", reason="ungrounded")
    return Explanation(result.text, backend=model.model_id, grounding=result.score, ungrounded=result.dropped)


def _pct(v: Any) -> float | None:
    return None if v is None else round(100 * float(v), 1)


def _num(v: Any) -> float | None:
    return None if v is None else float(f"{float(v):.3g}")
