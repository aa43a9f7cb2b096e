"""`seglens evaluate RUN`: figures that say how good a run's outputs are, kept in the manifest.

`--descriptions`: matching accuracy (embed each segment's name and description with the run's own
embedder and see whether it lands nearest its own segment's centroid; chance is 1/K), grounding rate
(supported sentences over all sentences), seconds per segment and tokens per second.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import numpy as np

from . import atomic, plugins
from .cli import cli
from .grounding import split_sentences
from .runfolder import RunFolder


def description_metrics(run: RunFolder) -> dict[str, Any]:
    segs = [s for s in run.segments() if s["id"] >= 0]
    out: dict[str, Any] = {"segments": len(segs), "chance": round(1 / len(segs), 4) if segs else None}
    supported = total = 0
    for s in segs:
        # Kept sentences are the description (unless it had to be replaced); dropped ones are listed.
        dropped = [u for u in s.get("ungrounded", []) if u.get("field", "description") == "description"]
        replaced = s.get("description_meta", {}).get("description_fallback")
        n_kept = 0 if replaced else len(split_sentences(s.get("description", "")))
        supported += n_kept
        total += n_kept + len(dropped)
    out["grounding_rate"] = round(supported / total, 4) if total else None
    out["describers"] = sorted({s.get("describer", "?") for s in segs})
    out["fallbacks"] = sum(1 for s in segs if s.get("description_meta", {}).get("fallback_reason"))
    metas = [s.get("description_meta", {}) for s in segs if s.get("description_meta", {}).get("seconds") is not None]
    fresh = [m for m in metas if not m.get("cached")]
    if fresh:
        out["seconds_per_segment"] = round(float(np.mean([m["seconds"] for m in fresh])), 3)
        tps = [m["tokens_per_second"] for m in fresh if m.get("tokens_per_second")]
        out["tokens_per_second"] = round(float(np.mean(tps)), 2) if tps else None
    out["matching_accuracy"] = _matching_accuracy(run, segs)
    return out


def _matching_accuracy(run: RunFolder, segs: list[dict[str, Any]]) -> float | None:
    name = run.manifest.get("plugins", {}).get("embedder", {}).get("name")
    centroids_path = run.path / "segment_centroids.npy"
    if name not in ("item-pool", "history-text") or not centroids_path.exists() or len(segs) < 2:
        return None  # behaviour vectors have no text space to match descriptions in
    embedder = plugins.create("embedder", name, run.manifest["config"]["embed"])
    texts = [f"{s['name']}. {s.get('description', '')}" for s in segs]
    t = embedder.encode_texts(texts)
    t = t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    c = np.load(centroids_path)
    order = sorted(s["id"] for s in segs)
    sims = t @ c.T
    hits = [order[int(np.argmax(sims[i]))] == s["id"] for i, s in enumerate(segs)]
    return round(float(np.mean(hits)), 4)


def quality_metrics(run: RunFolder) -> dict[str, Any]:
    """Segment quality and stability, from the `quality` analysis (stored, or computed now)."""
    if "quality" not in plugins.registrations("analysis"):
        return {"source": "no quality analysis plugin is installed"}
    options = {**run.manifest.get("config", {}).get("analysis", {}), "seed": run.manifest.get("seed", 42)}
    return plugins.create("analysis", "quality", options).figures(run)


@cli.command()
@click.argument("target", metavar="RUN|EVENTS", type=click.Path(path_type=Path))
@click.option("--descriptions", is_flag=True, help="Only the segment descriptions.")
@click.option("--quality", is_flag=True, help="Only segment quality and stability.")
@click.option("--recs", is_flag=True, help="Offline recommendation evaluation: TARGET is an events file or folder.")
@click.option("-k", "k", default=10, show_default=True, help="Cut-off for --recs (HR@k, NDCG@k).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Config overrides for the --recs run.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def evaluate(target: Path, descriptions: bool, quality: bool, recs: bool, k: int, overrides: tuple[str, ...],
             as_json: bool) -> None:
    """Print (and record in the manifest) quality figures for a run; with --recs, evaluate
    seglens recommendations offline on an events file against popularity and item-kNN."""
    if recs:
        if "recommendations" not in plugins.registrations("analysis"):
            from .errors import SeglensError

            raise SeglensError("no recommendations analysis plugin is installed")
        rec = plugins.create("analysis", "recommendations", {})
        figures = rec.evaluate_offline(target, k=k, config_overrides=overrides)
        click.echo(json.dumps(figures, indent=2) if as_json else _format({"recommendations": figures}))
        return
    run = RunFolder(target)
    both = not (descriptions or quality)
    results: dict[str, Any] = {}
    if descriptions or both:
        results["descriptions"] = description_metrics(run)
    if quality or both:
        results["quality"] = quality_metrics(run)
    m = run.manifest
    m.setdefault("evaluation", {}).update(results)
    atomic.write_json(run.path / "manifest.json", m)
    click.echo(json.dumps(results, indent=2) if as_json else _format(results))


def _format(results: dict[str, Any]) -> str:
    lines = []
    for section, figures in results.items():
        lines.append(f"{section}:")
        for key, value in figures.items():
            lines.append(f"  {key}: {value}")
    return "\n".join(lines)
