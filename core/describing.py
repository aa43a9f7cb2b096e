"""Turns profiles into names and descriptions through the chosen describer, keeping names unique,
and records how well grounded each description is.

A name an analyst gave (`name_source: "human"`, set by `rename` in `seglens explore`) is kept: the
describer still rewrites the description, but never that name, and generated names avoid it."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import atomic
from .facts import population_facts, segment_facts
from .grounding import GroundingChecker


def make_describer(cfg: dict[str, Any]) -> Any:
    """The describer the config names, with the run's seed (for `describe`, `ask`, edits and compare)."""
    from . import plugins

    return plugins.create("describer", cfg["describe"]["describer"], {**cfg["describe"], "seed": cfg["seed"]})


def unique_names(names: list[str]) -> list[str]:
    """Two segments never share a name: a remaining exact duplicate gets a numeric suffix."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        key = name.strip().lower()
        if key in seen:
            seen[key] += 1
            name = f"{name} ({seen[key]})"
        else:
            seen[key] = 1
        out.append(name)
    return out


HUMAN_NAMED = "human"  # the value of a segment's "name_source" when an analyst named it


def _final_names(real: list[dict[str, Any]], todo: set[int], descriptions: dict[int, Any]) -> dict[int, str]:
    """Kept names (human-given, or of segments not being described) first, so that a generated
    name that collides with one of them is the one that gets the suffix."""
    def keeps(s: dict[str, Any]) -> bool:
        return s.get("name_source") == HUMAN_NAMED or s["id"] not in todo

    kept = [s for s in real if keeps(s)]
    fresh = [s for s in real if not keeps(s)]
    generated = [descriptions[s["id"]].name if s["id"] in descriptions else f"Segment {s['id']}" for s in fresh]
    names = unique_names([s.get("name", "") for s in kept] + generated)
    return {s["id"]: n for s, n in zip(kept + fresh, names)}


def describe_run(folder: Path, describer: Any, config: dict[str, Any], only: set[int] | None = None) -> list[str]:
    """Describe the segments in the run folder in place (all, or the ids in `only`, e.g. a merged
    segment); returns warnings (fallbacks) for the manifest."""
    folder = Path(folder)
    segments = json.loads((folder / "segments.json").read_text(encoding="utf-8"))
    analyses = json.loads((folder / "analyses.json").read_text(encoding="utf-8"))
    population = {name: a.get("facts", {}) for name, a in analyses.items()}
    real = [s for s in segments if s["id"] >= 0]
    todo = {s["id"] for s in real if only is None or s["id"] in only}
    described = [s for s in real if s["id"] in todo]
    descriptions = {d.segment_id: d for d in describer.describe(described, population)} if described else {}
    names = _final_names(real, todo, descriptions)
    facts = {s["id"]: segment_facts(s) for s in real}
    checker = GroundingChecker(list(facts.values()))
    pop = population_facts(population, len(real))
    warnings = []
    for seg in described:
        name = names[seg["id"]]
        for key in ("traits", "actions", "describer", "grounding", "ungrounded", "description_meta"):
            seg.pop(key, None)
        d = descriptions.get(seg["id"])
        seg["name"] = name
        if d is None:
            continue
        seg["description"] = d.description
        seg["traits"] = d.traits
        seg["actions"] = d.actions
        seg["describer"] = d.describer
        if d.grounding is None:  # describers that write from the facts are checked all the same
            check = checker.check(d.description, facts[seg["id"]], pop)
            d.grounding, d.ungrounded = check.score, check.dropped
        seg["grounding"] = d.grounding
        seg["ungrounded"] = d.ungrounded
        if d.extra:
            seg["description_meta"] = d.extra
            if d.extra.get("fallback_reason"):
                warnings.append(f"segment {seg['id']}: {d.extra.get('requested_describer')} describer fell back "
                                f"to keywords: {d.extra['fallback_reason']}")
    atomic.write_json(folder / "segments.json", segments)
    return warnings
