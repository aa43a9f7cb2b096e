"""Runs shared by the segment analytics tests (preferences, recommendations, satisfaction).

Each builder runs the real pipeline once per test process (cached), so the three test modules share
one planted demo run and one MovieLens leave-last-out evaluation run instead of building six. Also
a builder for tiny hand-made analysis contexts (real DuckDB, real FAISS, chosen segment labels) for
the edge cases a clusterer would never produce on purpose.
"""
from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from helpers import SHARED

ANALYSES = 'analyses=["profile","preferences","satisfaction","recommendations"]'
_ROOT = Path(tempfile.mkdtemp(prefix="seglens-analytics-tests-"))
atexit.register(shutil.rmtree, _ROOT, True)


@functools.cache
def demo_run() -> tuple[Path, Any]:
    """A planted demo (1,200 users, seed 7) run with every analytics analysis; (run folder, files)."""
    from seglens.config import build_config
    from seglens.default_plugins.demo_data import generate_demo
    from seglens.model import LoadRequest
    from seglens.pipeline import Pipeline

    files = generate_demo(_ROOT / "demo-data", n_users=1200, seed=7)
    out = _ROOT / "demo-run"
    cfg = build_config(overrides=["describe.describer=keywords", ANALYSES])
    Pipeline(LoadRequest(events=files.events, items=files.items, users=files.users), cfg, out).run()
    return out, files


@functools.cache
def movielens_eval() -> tuple[dict[str, Any], Path]:
    """evaluate_recs on ml-latest-small (k=10); its training run (every user's last item held out)
    is kept with all analytics analyses, so it also serves the preferences and satisfaction tests."""
    from seglens.default_plugins.analysis_recommendations import evaluate_recs

    out = _ROOT / "ml-run"
    result = evaluate_recs(SHARED / "movielens-ml-latest-small", k=10, config_overrides=[ANALYSES], keep_run=out)
    return result, out


def tiny_context(folder: Path, events: list[str], labels: list[int] | None = None, *,
                 items: list[str] | None = None, users: list[str] | None = None,
                 header: str = "user_id,item_id,timestamp,event,value,text") -> Any:
    """An AnalysisContext over a hand-made events CSV, loaded through the real loader, with real
    features and a real FAISS index over random unit vectors; `labels` per user (sorted user ids)."""
    from seglens.config import build_config
    from seglens.default_plugins.faiss_index import FaissIndex
    from seglens.features import compute_features
    from seglens.ingest import load_dataset
    from seglens.model import AnalysisContext, Embeddings, LoadRequest, Segmentation

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "events.csv").write_text(header + "\n" + "\n".join(events) + "\n", encoding="utf-8")
    ipath = upath = None
    if items is not None:
        ipath = folder / "items.csv"
        ipath.write_text("item_id,title,categories,description,price\n" + "\n".join(items) + "\n", encoding="utf-8")
    if users is not None:
        upath = folder / "users.csv"
        upath.write_text("user_id,country\n" + "\n".join(users) + "\n", encoding="utf-8")
    cfg = build_config(overrides=["describe.describer=keywords"])
    ds = load_dataset(LoadRequest(events=folder / "events.csv", items=ipath, users=upath), cfg["load"])
    feats = compute_features(ds)
    n = len(feats.user_ids)
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(n, 8)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    index = FaissIndex({"kind": "flat"})
    index.build(vecs)
    lab = np.zeros(n, dtype=np.int64) if labels is None else np.asarray(labels, dtype=np.int64)
    assert len(lab) == n, (len(lab), n)
    seg = Segmentation(lab, np.ones(n), vecs[:, :2], vecs[:, :2])
    emb = Embeddings(feats.user_ids, vecs, "test", "random")
    return AnalysisContext(ds, feats, emb, seg, index, cfg)


def run_analyses_on(ctx: Any, folder: Path, names: list[str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The real run_analyses on a context (writes segments.json/analyses.json); returns both, read back."""
    import json

    from seglens import plugins
    from seglens.analyses import run_analyses

    plugins.load_plugins()
    folder.mkdir(parents=True, exist_ok=True)
    opts = {**ctx.config["analysis"], "seed": 42}
    run_analyses(ctx, names, folder, lambda stage, name: plugins.create(stage, name, opts))
    return (json.loads((folder / "segments.json").read_text()), json.loads((folder / "analyses.json").read_text()))
