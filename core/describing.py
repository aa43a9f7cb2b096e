"""Turns profiles into names and descriptions through the chosen describer, keeping names unique,
and records how well grounded each description is."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import atomic
from .facts import population_facts, segment_facts
from .grounding import GroundingChecker


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


def describe_run(folder: Path, describer: Any, config: dict[str, Any]) -> list[str]:
    """Describe every segment in the run folder in place; returns warnings (fallbacks) for the manifest."""
    folder = Path(folder)
    segments = json.loads((folder / "segments.json").read_text(encoding="utf-8"))
    analyses = json.loads((folder / "analyses.json").read_text(encoding="utf-8"))
    population = {name: a.get("facts", {}) for name, a in analyses.items()}
    real = [s for s in segments if s["id"] >= 0]
    descriptions = {d.segment_id: d for d in describer.describe(real, population)}
    names = unique_names([descriptions[s["id"]].name if s["id"] in descriptions else f"Segment {s['id']}"
                          for s in real])
    facts = {s["id"]: segment_facts(s) for s in real}
    checker = GroundingChecker(list(facts.values()))
    pop = population_facts(population, len(real))
    warnings = []
    for seg, name in zip(real, names):
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
