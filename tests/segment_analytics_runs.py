"""Runs shared by the tests of the quality, features, similarity and differences analyses.

Each run is built in-process at most once per test process (a full pipeline run costs most of a
test module's time budget), in the first requesting module's temporary folder; later modules reuse
it. The describer is always `keywords` (the default local LLM is slow).
"""
from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers import write_csv

from seglens.config import build_config
from seglens.default_plugins.demo_data import generate_demo
from seglens.model import LoadRequest
from seglens.pipeline import Pipeline

ANALYSES = '["profile","quality","features","similarity","differences"]'
_cache: dict[str, Any] = {}


def _pipeline(request: LoadRequest, out: Path, *overrides: str) -> Path:
    cfg = build_config(overrides=["describe.describer=keywords", f"analyses={ANALYSES}", *overrides])
    Pipeline(request, cfg, out).run()
    return out


def demo_run(tmp_root: Path) -> tuple[Path, Any]:
    """The planted demo (1,500 users, seed 1) through the default pipeline plus every analysis."""
    if "demo" not in _cache:
        files = generate_demo(tmp_root / "demo-data", n_users=1500, seed=1)
        out = _pipeline(LoadRequest(events=files.events, items=files.items, users=files.users), tmp_root / "demo-run")
        _cache["demo"] = (out, files)
    return _cache["demo"]


def movielens_run(tmp_root: Path, shared: Path) -> Path:
    """MovieLens small (610 users, 100k ratings), users embedded from behaviour (no text model)."""
    if "ml" not in _cache:
        _cache["ml"] = _pipeline(LoadRequest(events=shared / "movielens-ml-latest-small"), tmp_root / "ml-run",
                                 "embed.strategy=behaviour")
    return _cache["ml"]


def tiny_run(tmp_root: Path) -> Path:
    """Eight hand-made users whose events all share one timestamp and carry value 0: no time spread,
    all values zero, two obvious tastes."""
    if "tiny" not in _cache:
        d = tmp_root / "tiny-data"
        d.mkdir(parents=True, exist_ok=True)
        rows = []
        for u in range(8):
            items = ["a1", "a2", "a3"] if u < 4 else ["b1", "b2", "b3"]
            rows += [f"t{u},{i},2024-03-01T12:00:00,view,0" for i in items]
        events = write_csv(d / "events.csv", "user_id,item_id,timestamp,event,value", rows)
        items = write_csv(d / "items.csv", "item_id,title,categories,description,price", [
            "a1,Apple Pie,Baking,A pie,0", "a2,Apple Cake,Baking,A cake,0", "a3,Apple Tart,Baking,A tart,0",
            "b1,Bike Race,Sports,A race,0", "b2,Bike Tour,Sports,A tour,0", "b3,Bike Sprint,Sports,A sprint,0"])
        _cache["tiny"] = _pipeline(LoadRequest(events=events, items=items), tmp_root / "tiny-run",
                                   "embed.strategy=behaviour", "cluster.min_cluster_size=2")
    return _cache["tiny"]


def segment_of(run: Path, files: Any, persona: str) -> int:
    """The segment holding most of a planted persona's users."""
    users = pd.read_parquet(run / "users.parquet")
    labels = pd.read_csv(files.labels)
    m = users.merge(labels, on="user_id")
    return int(m.loc[m["persona"] == persona, "segment"].mode().iloc[0])


def with_labels(ctx: Any, labels: np.ndarray) -> Any:
    """The same context with another labelling (analyses are pure functions of the context)."""
    import dataclasses

    seg = dataclasses.replace(ctx.segmentation, labels=np.asarray(labels, dtype=np.int64),
                              probabilities=np.ones(len(labels)))
    return dataclasses.replace(ctx, segmentation=seg, profiles={})


def cli(*args: Any) -> tuple[int, str, str]:
    """The real `seglens` entry point in-process (fast): exit code, stdout, stderr."""
    from seglens.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "200"  # rich tables as wide as in a terminal, no wrapped headers
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main([str(a) for a in args])
            except SystemExit as exc:
                code = int(exc.code or 0)
    finally:
        if columns is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = columns
    return code, out.getvalue(), err.getvalue()
