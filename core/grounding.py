"""Checks every sentence a language model wrote against the facts it was shown.

A sentence is supported when every number in it matches a number in the facts (within the rounding
it was written with, shares as percentages too), every category or item title of the run it names
belongs to this segment's facts, and every superlative is backed by a rank in the facts. Unsupported
sentences are dropped and reported with the reason; the grounding score is supported / all.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_NUMBER = re.compile(r"(?<![\w.])[-+]?\d[\d,]*(?:\.\d+)?(?:\s*%|x\b|×)?", re.I)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_SUPERLATIVE = re.compile(
    r"\b(most|least|highest|lowest|largest|smallest|biggest|top|best|worst|strongest|weakest|"
    r"greatest|fewest|\w+est)\b", re.I)
_NOT_SUPERLATIVE = {"interest", "interested", "interests", "forest", "test", "latest", "honest", "modest",
                    "request", "suggest", "guest", "west", "western", "best-selling", "rest", "nest", "quest",
                    "contest", "harvest", "invest", "manifest", "protest", "digest", "earnest", "arrest",
                    "chest", "pest", "vest", "zest", "fest", "jest", "crest", "priest", "northwest",
                    "southwest", "midwest", "everest", "tempest", "conquest", "inquest", "behest"}


@dataclass
class GroundingResult:
    kept: list[str] = field(default_factory=list)
    dropped: list[dict[str, str]] = field(default_factory=list)

    @property
    def score(self) -> float:
        total = len(self.kept) + len(self.dropped)
        return round(len(self.kept) / total, 4) if total else 1.0

    @property
    def text(self) -> str:
        return " ".join(self.kept)


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(" ".join(str(text).split())) if s.strip()]


def _numbers_in(obj: Any, out: list[float]) -> None:
    if isinstance(obj, bool):
        return
    if isinstance(obj, (int, float)):
        out.append(float(obj))
    elif isinstance(obj, str):
        for m in _NUMBER.finditer(obj):
            v = _parse_number(m.group(0))
            if v is not None:
                out.append(v)
    elif isinstance(obj, dict):
        for v in obj.values():
            _numbers_in(v, out)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _numbers_in(v, out)


def _parse_number(tok: str) -> float | None:
    t = tok.strip().rstrip("%xX×").strip().replace(",", "")
    try:
        return float(t)
    except ValueError:
        return None


def _decimals(tok: str) -> int:
    t = tok.strip().rstrip("%xX×").strip()
    return len(t.split(".")[1]) if "." in t else 0


def _strings_in(obj: Any, out: list[str]) -> None:
    if isinstance(obj, str):
        out.append(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            _strings_in(v, out)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _strings_in(v, out)


def _number_supported(tok: str, facts_numbers: list[float]) -> bool:
    v = _parse_number(tok)
    if v is None:
        return True
    dec = _decimals(tok)
    tol = 0.5 * 10 ** (-dec) + 1e-9
    is_pct = tok.strip().endswith("%")
    for f in facts_numbers:
        if abs(f - v) <= tol or abs(round(f, dec) - v) <= 1e-9:
            return True
        if is_pct and (abs(f * 100 - v) <= tol):
            return True
        if dec == 0 and abs(f) >= 1 and abs(round(f) - v) <= 1e-9:  # "about 28%" for 27.6
            return True
    return False


class GroundingChecker:
    """Built once per run: knows every category and title of the run, to spot names borrowed from
    other segments, and the ranks needed to judge superlatives."""

    def __init__(self, all_segment_facts: list[dict[str, Any]]) -> None:
        self.vocabulary: set[str] = set()
        self.best_for: dict[str, int] = {}  # category/title (lower) -> segment id with the highest lift
        best_lift: dict[str, float] = {}
        for f in all_segment_facts:
            for c in f.get("categories_over_indexed", []):
                key = str(c["category"]).lower()
                self.vocabulary.add(key)
                if c["lift"] > best_lift.get(key, -1):
                    best_lift[key], self.best_for[key] = c["lift"], f["id"]
            for i in f.get("items_over_indexed", []):
                key = str(i["title"]).lower()
                self.vocabulary.add(key)
                if i["lift"] > best_lift.get(key, -1):
                    best_lift[key], self.best_for[key] = i["lift"], f["id"]
        sizes = {f["id"]: f.get("users", 0) for f in all_segment_facts}
        self.largest = max(sizes, key=sizes.get) if sizes else None
        self.smallest = min(sizes, key=sizes.get) if sizes else None
        money = {f["id"]: f.get("behaviour", {}).get("monetary_mean") for f in all_segment_facts}
        money = {k: v for k, v in money.items() if v is not None}
        self.richest = max(money, key=money.get) if money else None

    def check(self, text: str, facts: dict[str, Any], population: dict[str, Any] | None = None) -> GroundingResult:
        numbers: list[float] = []
        _numbers_in(facts, numbers)
        _numbers_in(population or {}, numbers)
        own: list[str] = []
        _strings_in(facts, own)
        own_lower = {s.lower() for s in own}
        own_text = " ".join(own_lower)
        result = GroundingResult()
        for sentence in split_sentences(text):
            reason = self._reason(sentence, facts, numbers, own_lower, own_text)
            if reason:
                result.dropped.append({"sentence": sentence, "reason": reason})
            else:
                result.kept.append(sentence)
        return result

    def _reason(self, sentence: str, facts: dict[str, Any], numbers: list[float], own: set[str],
                own_text: str) -> str | None:
        low = sentence.lower()
        for m in _NUMBER.finditer(sentence):
            tok = m.group(0)
            if tok.strip().rstrip("%x×").strip() in ("", "-", "+"):
                continue
            if not _number_supported(tok, numbers):
                return f"the number {tok.strip()} is not in the facts"
        mentioned = [v for v in self.vocabulary if len(v) > 3 and re.search(rf"(?<!\w){re.escape(v)}(?!\w)", low)]
        foreign = [v for v in mentioned if v not in own and v not in own_text]
        if foreign:
            return f"names '{foreign[0]}', which is not among this segment's facts"
        for m in re.finditer(r"[\"“']([^\"”']{4,80})[\"”']", sentence):
            quoted = m.group(1).lower().strip()
            if quoted not in own_text:
                return f"quotes '{m.group(1)}', which is not in the facts"
        sup = [w for w in _SUPERLATIVE.findall(low) if w not in _NOT_SUPERLATIVE]
        if sup:
            return self._superlative_reason(sup[0], low, facts, mentioned)
        return None

    def _superlative_reason(self, word: str, low: str, facts: dict[str, Any], mentioned: list[str]) -> str | None:
        sid = facts.get("id")
        if re.search(r"\b(largest|biggest)\b", low) and "segment" in low:
            return None if sid == self.largest else f"'{word}': this is not the largest segment"
        if re.search(r"\bsmallest\b", low) and "segment" in low:
            return None if sid == self.smallest else f"'{word}': this is not the smallest segment"
        if re.search(r"\b(spend|spending|value|revenue|valuable)\b", low) and word in ("most", "highest", "top", "biggest"):
            return None if sid == self.richest else f"'{word}': another segment spends more"
        top_own = [str(c["category"]).lower() for c in facts.get("categories_over_indexed", [])[:1]] + \
                  [str(i["title"]).lower() for i in facts.get("items_over_indexed", [])[:1]]
        within = bool(re.search(r"\b(their|its)\b", low))  # "their strongest X": a rank inside the segment
        for v in mentioned:
            if v in top_own or (not within and self.best_for.get(v) == sid):
                return None
        return f"the superlative '{word}' is not backed by the highest lift or rank in the facts"
