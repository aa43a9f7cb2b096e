"""Describing segments with a language model, grounded in the facts.

Per segment: render the prompt from the facts (trimming them if the context would overflow), ask for
JSON, repair invalid output once, fall back to the keyword describer with the reason recorded, keep
names distinct, and drop every sentence the grounding check cannot support.
"""
from __future__ import annotations

import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from . import plugins, progress
from .facts import LEVELS, population_facts, segment_facts
from .grounding import GroundingChecker
from .llm import ChatModel, LLMError
from .llm_cache import LLMCache, cached_chat
from .model import SegmentDescription
from .prompting import instructions_of, parse_reply, primed_reply, render_messages

REPLY_FORMATS = ("json", "lines")
# The line format's lines with their share of the reply's token budget (at max_tokens 300: about an
# 11-token name, a 91-token description...). A backend that controls decoding holds the reply to these.
REPLY_LINES = [("NAME:", 12), ("DESCRIPTION:", 90), ("TRAIT:", 36), ("TRAIT:", 36), ("TRAIT:", 36),
               ("ACTION:", 30), ("ACTION:", 30)]

log = logging.getLogger(__name__)


def _words(name: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", name.lower()) if w not in {"the", "and", "of", "a", "fans", "lovers"}}


def near_duplicate(name: str, others: list[str]) -> str | None:
    """The other name this one is (nearly) the same as: equal, or sharing most of its words."""
    mine = _words(name)
    for other in others:
        theirs = _words(other)
        if name.strip().lower() == other.strip().lower():
            return other
        if mine and theirs and len(mine & theirs) / len(mine | theirs) >= 0.75:
            return other
    return None


def _plain_words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def name_problem(name: str, messages: list[dict[str, str]]) -> str | None:
    """Why a name is not a name, or None. Small models fill a name line with what they last read: a
    word cut short ("The"), a chat turn ("User: Name one primary colour."), or the instructions
    themselves ("Name the segment."). Text inside the fenced facts may be copied (a title is a fair
    name when the facts back it); the checker judges that."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    words = _plain_words(name).split()
    if not any(len(w) > 1 and w not in ENGLISH_STOP_WORDS for w in words):
        return "the name is only function words"
    if re.match(r"\s*(user|assistant|system|model)\s*:", name, re.IGNORECASE):
        return "the name is a chat turn"
    if len(words) >= 2 and f" {' '.join(words)} " in f" {_plain_words(instructions_of(messages))} ":
        return "the name is copied from the prompt"
    return None


def line_budgets(max_tokens: int) -> list[tuple[str, int]]:
    """REPLY_LINES scaled to the reply budget; the backend fits them around its labels."""
    scale = max_tokens / sum(b for _, b in REPLY_LINES)
    return [(label, max(1, round(b * scale))) for label, b in REPLY_LINES]


def validate(obj: dict[str, Any]) -> str | None:
    """None if the reply has the required shape, else what is wrong (fed to the repair prompt)."""
    name = obj.get("name")
    if not isinstance(name, str) or not name.strip():
        return "missing 'name'"
    n = len(name.split())
    if not 1 <= n <= 6:
        return f"'name' must be 2 to 5 words, got {n}"
    if not isinstance(obj.get("description"), str) or not obj["description"].strip():
        return "missing 'description'"
    if not isinstance(obj.get("traits", []), list) or not isinstance(obj.get("actions", []), list):
        return "'traits' and 'actions' must be lists"
    return None


def _trait_text(t: Any) -> tuple[str, str]:
    if isinstance(t, dict):
        claim = str(t.get("claim", "")).strip()
        fact = str(t.get("fact", "")).strip()
        return claim, fact
    return str(t).strip(), ""


class LLMDescriber:
    """A describer over any ChatModel; the `local` and `openai` plugins only supply the model."""

    def __init__(self, make_model: Callable[[], ChatModel], options: dict[str, Any], backend: str,
                 reply_format: str = "json") -> None:
        self.make_model = make_model
        self.backend = backend
        fmt = str(options.get("reply_format") or "auto")
        self.reply_format = reply_format if fmt == "auto" else fmt
        from .errors import SeglensError

        if self.reply_format not in REPLY_FORMATS:
            raise SeglensError(f"unknown describe.reply_format '{fmt}'", hint="use auto, json or lines")
        self.constrain_lines = options.get("constrain_lines", True)
        if not isinstance(self.constrain_lines, bool):
            raise SeglensError(f"describe.constrain_lines must be true or false, not {self.constrain_lines!r}",
                               hint="--set describe.constrain_lines=false")
        self.max_tokens = int(options.get("max_tokens", 300))
        self.temperature = float(options.get("temperature", 0.0))
        self.seed = int(options.get("seed", 42))
        self.workers = max(1, int(options.get("concurrency", 1)))
        self.prompts = Path(options["prompts_dir"]) if options.get("prompts_dir") else None
        self.cache = LLMCache() if options.get("cache", True) else None
        self.options = options
        self._model: ChatModel | None = None

    def model(self) -> ChatModel:
        if self._model is None:
            self._model = self.make_model()
        return self._model

    # --- the describer API ----------------------------------------------------------------------
    def describe(self, segments: list[dict[str, Any]], population: dict[str, Any]) -> list[SegmentDescription]:
        keywords = plugins.create("describer", "keywords", self.options)
        fallback = {d.segment_id: d for d in keywords.describe(segments, population)}
        facts = {s["id"]: segment_facts(s) for s in segments}
        checker = GroundingChecker(list(facts.values()))
        pop = population_facts(population, len(segments))
        try:
            model = self.model()
        except LLMError as exc:
            return [self._fallback(fallback[s["id"]], exc.one_line()) for s in segments]
        out: dict[int, SegmentDescription] = {}
        with progress.task(f"describing segments ({self.backend})", total=len(segments)) as bar:
            if self.workers == 1:
                # One at a time, each prompt showing the names already given.
                for seg in segments:
                    out[seg["id"]] = self.describe_one(model, seg, pop, checker, fallback[seg["id"]],
                                                       [d.name for d in out.values()])
                    bar.advance()
            else:
                def one(seg: dict[str, Any]) -> SegmentDescription:
                    d = self.describe_one(model, seg, pop, checker, fallback[seg["id"]], [])
                    bar.advance()
                    return d

                with ThreadPoolExecutor(max_workers=self.workers) as pool:
                    for d in pool.map(one, segments):
                        out[d.segment_id] = d
        # Names must differ: regenerate a near-duplicate once with the taken name shown to the model.
        used: list[str] = []
        for seg in segments:
            d = out[seg["id"]]
            clash = near_duplicate(d.name, used)
            if clash and d.describer == self.backend:
                again = self.describe_one(model, seg, pop, checker, fallback[seg["id"]], used, taken=clash)
                if not near_duplicate(again.name, used):
                    again.extra["renamed_from"] = d.name
                    d = out[seg["id"]] = again
            used.append(d.name)
        return [out[s["id"]] for s in segments]

    # --- one segment ----------------------------------------------------------------------------
    def describe_one(self, model: ChatModel, seg: dict[str, Any], pop: dict[str, Any], checker: GroundingChecker,
                     fallback: SegmentDescription, used: list[str], taken: str | None = None) -> SegmentDescription:
        t0 = time.perf_counter()
        level, reply, messages = 0, None, None
        while level < len(LEVELS):
            facts = segment_facts(seg, level)
            messages = render_messages(self._template("describe_segment"), self.prompts, segment=facts, population=pop,
                                       other_names=used, taken=taken)
            prompt_tokens = sum(model.count_tokens(m["content"]) for m in messages)
            if prompt_tokens + self.max_tokens > model.context_tokens:
                level += 1
                continue
            try:
                reply = self._chat(model, messages)
                break
            except LLMError as exc:
                if exc.reason == "context":
                    level += 1
                    continue
                return self._fallback(fallback, exc.one_line(), time.perf_counter() - t0)
        if reply is None:
            return self._fallback(fallback, "the facts do not fit the model's context even when trimmed",
                                  time.perf_counter() - t0)
        facts = segment_facts(seg, level)
        obj, problem, repaired = None, None, False
        try:
            obj = parse_reply(primed_reply(messages, reply.text), self.reply_format)
            problem = validate(obj)
        except ValueError as exc:
            problem = str(exc)
        if problem:
            repaired = True
            try:
                repair = render_messages(self._template("repair"), self.prompts, error=problem,
                                         reply=primed_reply(messages, reply.text))
                fix = self._chat(model, repair)
                obj = parse_reply(primed_reply(repair, fix.text), self.reply_format)
                problem = validate(obj)
            except (LLMError, ValueError) as exc:
                problem = str(exc) if not isinstance(exc, LLMError) else exc.one_line()
        if problem or obj is None:
            return self._fallback(fallback, f"invalid model output after one repair: {problem}",
                                  time.perf_counter() - t0)
        return self._grounded(obj, facts, pop, checker, fallback, reply, level, repaired, time.perf_counter() - t0,
                              messages)

    def _template(self, task: str) -> str:
        """describe_segment / repair_json for JSON replies; describe_segment_lines / repair_lines otherwise."""
        if self.reply_format == "json":
            return "repair_json" if task == "repair" else task
        return "repair_lines" if task == "repair" else f"{task}_lines"

    def _chat(self, model: ChatModel, messages: list[dict[str, str]]):
        params: dict[str, Any] = {}
        if self.reply_format == "lines" and self.constrain_lines:
            params["line_labels"] = line_budgets(self.max_tokens)
        return cached_chat(model, messages, self.cache, max_tokens=self.max_tokens, temperature=self.temperature,
                           json_mode=self.reply_format == "json", seed=self.seed, **params)

    def _grounded(self, obj: dict[str, Any], facts: dict[str, Any], pop: dict[str, Any], checker: GroundingChecker,
                  fallback: SegmentDescription, reply: Any, level: int, repaired: bool,
                  seconds: float, messages: list[dict[str, str]]) -> SegmentDescription:
        desc = checker.check(obj["description"], facts, pop)
        dropped = list(desc.dropped)
        traits = []
        for t in obj.get("traits", [])[:3]:
            claim, fact = _trait_text(t)
            if not claim:
                continue
            r = checker.check(f"{claim}. {fact}" if fact else claim, facts, pop)
            if r.dropped:
                dropped.append({"sentence": claim, "reason": r.dropped[0]["reason"], "field": "traits"})
            else:
                traits.append(f"{claim} ({fact})" if fact else claim)
        actions = []
        for a in obj.get("actions", [])[:2]:
            r = checker.check(str(a), facts, pop, must_cite=False)  # a suggestion, not a claim
            if r.dropped:
                dropped.append({"sentence": str(a), "reason": r.dropped[0]["reason"], "field": "actions"})
            else:
                actions.append(str(a).strip())
        description = desc.text or fallback.description
        name = " ".join(str(obj["name"]).split())
        named = checker.check(name, facts, pop, must_cite=False)
        reason = named.dropped[0]["reason"] if named.dropped else name_problem(name, messages)  # a claim too
        if reason:
            dropped.append({"sentence": name, "reason": reason, "field": "name"})
            name = fallback.name
        extra = {"model": getattr(self._model, "model_id", "?"), "seconds": round(seconds, 3),
                 "completion_tokens": reply.completion_tokens,
                 "tokens_per_second": round(reply.tokens_per_second, 2), "cached": bool(reply.extra.get("cached")),
                 "trim_level": level, "repaired": repaired}
        if not desc.text:
            extra["description_fallback"] = "no sentence of the model's description was supported"
        if reason:
            extra["name_fallback"] = f"the keyword name stands in: {reason}"
        return SegmentDescription(fallback.segment_id, name, description,
                                  traits, actions or fallback.actions, describer=self.backend,
                                  grounding=desc.score, ungrounded=dropped, extra=extra)

    def _fallback(self, d: SegmentDescription, reason: str, seconds: float | None = None) -> SegmentDescription:
        """The keyword description, marked with why; `seconds` is the time the model took to fail, so
        seconds per segment stays honest about a model that is slow and then unusable."""
        log.warning("segment %s: %s; using the keyword describer", d.segment_id, reason)
        d.extra = {**d.extra, "fallback_reason": reason, "requested_describer": self.backend}
        if seconds is not None:
            d.extra["seconds"] = round(seconds, 3)
        return d
