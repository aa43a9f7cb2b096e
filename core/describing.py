"""Turns profiles into names and descriptions through the chosen describer, keeping names unique."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import atomic


def unique_names(names: list[str]) -> list[str]:
    """Two segments never share a name: later duplicates get a numeric suffix."""
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


def describe_run(folder: Path, describer: Any, config: dict[str, Any]) -> list[dict[str, Any]]:
    folder = Path(folder)
    segments = json.loads((folder / "segments.json").read_text(encoding="utf-8"))
    analyses = json.loads((folder / "analyses.json").read_text(encoding="utf-8"))
    population = {name: a.get("facts", {}) for name, a in analyses.items()}
    real = [s for s in segments if s["id"] >= 0]
    descriptions = {d.segment_id: d for d in describer.describe(real, population)}
    names = unique_names([descriptions[s["id"]].name if s["id"] in descriptions else f"Segment {s['id']}"
                          for s in real])
    for seg, name in zip(real, names):
        d = descriptions.get(seg["id"])
        seg["name"] = name
        if d is not None:
            seg["description"] = d.description
            seg["traits"] = d.traits
            seg["actions"] = d.actions
            seg["describer"] = d.describer
            if d.extra:
                seg["description_meta"] = d.extra
    atomic.write_json(folder / "segments.json", segments)
    return segments
