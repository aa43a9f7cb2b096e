"""Checks every sentence a language model wrote against the facts it was shown.

A sentence is supported when every number in it matches a number in the facts (within the rounding
it was written with, shares as percentages too) that the sentence also names (by its key's words, a
synonym, or the category or title it belongs to: "Horror 3.1x" passes only if Horror's lift is 3.1x,
not merely some lift), every category or item title of the run it names
belongs to this segment's facts, and every superlative is backed by a rank in the facts. Unsupported
sentences are dropped and reported with the reason; the grounding score is supported / all.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_NUMBER = re.compile(r"(?<![\w.])[-+]?\d[\d,]*(?:\.\d+)?(?:\s*%|x\b|×)?", re.I)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_SENTENCE_END = re.compile(r"[.!?]\s")
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


def split_sentences(text: str, names: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Sentences of `text`; a known name with sentence punctuation inside ("Who's Afraid of Virginia
    Woolf? (1966)", "Dr. Strangelove") is kept whole instead of ending a sentence."""
    text = " ".join(str(text).split())
    held: list[str] = []

    def hold(m: re.Match) -> str:
        held.append(m.group(0))
        return f"\x00{len(held) - 1}\x00"

    for name in sorted((n for n in names if _SENTENCE_END.search(n)), key=len, reverse=True):
        text = re.sub(re.escape(name), hold, text, flags=re.I)
    out = [s.strip() for s in _SENTENCE.split(text) if s.strip()]
    return [re.sub(r"\x00(\d+)\x00", lambda m: held[int(m.group(1))], s) for s in out] if held else out


# Words a sentence may use for what a fact's key names ("spend 40.73" for spend_per_user_mean).
_SYNONYMS = {
    "users": ("user", "members", "member", "people", "customers", "customer", "size", "segment"),
    "spend": ("spends", "spending", "spent", "revenue", "value", "money", "worth", "pay", "pays", "buy", "buys"),
    "revenue": ("spend", "spends", "spending", "value", "money", "sales"),
    "value": ("spend", "spends", "spending", "revenue", "worth", "valuable", "clv"),
    "lifetime": ("clv", "worth", "value"),
    "days": ("day", "recency", "recent", "recently", "ago", "last", "since"),
    "events": ("event", "interactions", "actions", "views", "purchases", "ratings", "activity", "active"),
    "month": ("monthly", "months"),
    "rating": ("rate", "rates", "rated", "ratings", "stars", "score", "scores"),
    "hour": ("pm", "am", "o'clock", "time", "hours"),
    "weekend": ("weekends", "saturday", "sunday"),
    "night": ("nights", "nightly", "late"),
    "churned": ("churn", "churns", "lost", "lapsed", "inactive", "gone"),
    "risk": ("at-risk", "risky"),
    "growth": ("grow", "grew", "grows", "growing", "increase", "increased", "decline", "declined", "shrank",
               "shrinking", "fell", "rose"),
    "lift": ("x", "times", "more", "likely", "over-index", "over-indexes", "over-indexed", "overindex"),
    "population": ("everyone", "overall", "average", "all", "typical", "whole"),
    "segments": ("groups", "clusters", "segment"),
    "id": ("segment", "group", "cluster"),
}
_NOT_LABELS = {"of", "pct", "mean", "median", "share", "per", "the", "vs", "index", "x", "over", "indexed",
               "most", "common", "id", "user"}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9][a-z0-9'-]*", text.lower())


def _key_labels(path: tuple[str, ...]) -> set[str]:
    labels: set[str] = set()
    for key in path:
        for w in _words(key.replace("_", " ")):
            if w not in _NOT_LABELS:
                labels.add(w)
                labels.update(_SYNONYMS.get(w, ()))
    if path and path[0] == "id":
        labels.update(_SYNONYMS["id"])
    return labels


_ENTITY_KEYS = ("category", "title", "item_id")  # what a lift or a share inside a list belongs to


def _numbers_in(obj: Any, out: list[tuple[float, frozenset[str], frozenset[str]]], path: tuple[str, ...] = (),
                entity: frozenset[str] = frozenset()) -> None:
    """Every number in the facts with what names it: the words of its key path (and their synonyms),
    and the category or title it belongs to, if any."""
    if isinstance(obj, bool):
        return
    if isinstance(obj, (int, float)):
        out.append((float(obj), frozenset(_key_labels(path)), entity))
    elif isinstance(obj, str):
        for m in _NUMBER.finditer(obj):
            v = _parse_number(m.group(0))
            if v is not None:  # a number inside a title is named by the title
                out.append((v, frozenset(), entity | {obj.lower()}))
    elif isinstance(obj, dict):
        names = frozenset(str(obj[k]).lower() for k in _ENTITY_KEYS if isinstance(obj.get(k), str))
        for k, v in obj.items():
            _numbers_in(v, out, path + (str(k),), entity | names)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _numbers_in(v, out, path, entity)


def _named_in(labels: frozenset[str], low: str, words: set[str]) -> bool:
    for label in labels:
        if " " in label:  # a category or title: the phrase, or two longer words of a long title
            long_words = [w for w in _words(label) if len(w) >= 5]
            if label in low or (len(_words(label)) >= 3 and sum(w in words for w in long_words) >= 2):
                return True
        elif label in words or (len(label) >= 4 and any(w.startswith(label) for w in words)):
            return True
    return False


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


def _matches(tok: str, value: float) -> bool:
    v = _parse_number(tok)
    if v is None:
        return True
    dec = _decimals(tok)
    tol = 0.5 * 10 ** (-dec) + 1e-9
    if abs(value - v) <= tol or abs(round(value, dec) - v) <= 1e-9:
        return True
    if tok.strip().endswith("%") and abs(value * 100 - v) <= tol:
        return True
    return dec == 0 and abs(value) >= 1 and abs(round(value) - v) <= 1e-9  # "about 28%" for 27.6


def _number_reason(tok: str, facts_numbers: list[tuple[float, frozenset[str], frozenset[str]]], low: str,
                   words: set[str]) -> str | None:
    """None when the number matches a fact that the sentence also names: the category or title it
    belongs to if it has one, else its key's words. Matching the value alone is not enough: with
    dozens of facts, small numbers match something by coincidence."""
    if _parse_number(tok) is None:
        return None
    candidates = [(keys, entity) for value, keys, entity in facts_numbers if _matches(tok, value)]
    if not candidates:
        return f"the number {tok.strip()} is not in the facts"
    if any(_named_in(entity or keys, low, words) for keys, entity in candidates):
        return None
    return f"the number {tok.strip()} is in the facts, but not for anything this sentence names"


# Words too common to count as citing a measure ("more", "all", "average" appear in any prose).
_GENERIC_LABELS = {"more", "all", "average", "x", "times", "likely", "segment", "segments", "whole", "overall",
                   "typical", "everyone", "groups", "clusters", "last", "since", "time", "late", "value", "worth"}


def _cites_a_fact(sentence: str, low: str, words: set[str],
                  numbers: list[tuple[float, frozenset[str], frozenset[str]]], own: set[str]) -> bool:
    """A supported sentence rests on something shown: a number (checked before this), one of this
    segment's own strings (a category, a title, a weekday), or the words of a measure ("spend",
    "rating", "weekend"). Prose that cites nothing ("The film follows a group of wolves") is a story
    the model told, not a fact about the segment."""
    if _NUMBER.search(sentence):
        return True
    if any(len(o) > 3 and re.search(rf"(?<!\w){re.escape(o)}(?!\w)", low) for o in own):
        return True
    labels = set().union(*(keys for _, keys, _ in numbers)) - _GENERIC_LABELS if numbers else set()
    return _named_in(frozenset(labels), low, words)


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
        money = {f["id"]: f.get("behaviour", {}).get("spend_per_user_mean") for f in all_segment_facts}
        money = {k: v for k, v in money.items() if v is not None}
        self.richest = max(money, key=money.get) if money else None

    def check(self, text: str, facts: dict[str, Any], population: dict[str, Any] | None = None,
              must_cite: bool = True) -> GroundingResult:
        """`must_cite=False` for a name: "The Nightmare Collective" claims nothing, so it needs no fact,
        but a name that borrows another segment's category or invents a number is still dropped."""
        numbers: list[tuple[float, frozenset[str], frozenset[str]]] = []
        _numbers_in(facts, numbers)
        _numbers_in(population or {}, numbers, ("population",))
        own: list[str] = []
        _strings_in(facts, own)
        own_lower = {s.lower() for s in own}
        own_text = " ".join(own_lower)
        result = GroundingResult()
        for sentence in split_sentences(text, self.vocabulary):
            reason = self._reason(sentence, facts, numbers, own_lower, own_text, must_cite)
            if reason:
                result.dropped.append({"sentence": sentence, "reason": reason})
            else:
                result.kept.append(sentence)
        return result

    def _reason(self, sentence: str, facts: dict[str, Any], numbers: list[tuple[float, frozenset[str], frozenset[str]]],
                own: set[str], own_text: str, must_cite: bool = True) -> str | None:
        low = sentence.lower()
        words = set(_words(low))
        for m in _NUMBER.finditer(sentence):
            tok = m.group(0)
            if tok.strip().rstrip("%x×").strip() in ("", "-", "+"):
                continue
            reason = _number_reason(tok, numbers, low, words)
            if reason:
                return reason
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
        if must_cite and not _cites_a_fact(sentence, low, words, numbers, own):
            return "cites no fact: no number, category, title or measure from the facts"
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
