"""Runs and hand-made datasets shared by the tests of the growth, lifecycle, value and prediction
analyses.

Each pipeline run is built in-process at most once per test process (a run costs most of a module's
time budget) and reused by the other modules. The describer is always `keywords` (the default local
LLM is slow) and the reducer PCA (UMAP's first call compiles for about a minute); the analyses read
only the events and the segment labels, so neither choice changes what they are tested on.
"""
from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers import write_csv

from seglens import ingest, plugins
from seglens.config import build_config
from seglens.default_plugins.demo_data import generate_demo
from seglens.features import compute_features
from seglens.model import AnalysisContext, LoadRequest, Segmentation
from seglens.pipeline import Pipeline

ANALYSES = '["profile","growth","lifecycle","value","prediction"]'
FAST = ["describe.describer=keywords", "reduce.method=pca", "reduce.map_method=pca"]
_cache: dict[str, Any] = {}


def _pipeline(request: LoadRequest, out: Path, *overrides: str) -> Path:
    cfg = build_config(overrides=[*FAST, f"analyses={ANALYSES}", *overrides])
    Pipeline(request, cfg, out).run()
    return out


def demo_run(tmp_root: Path) -> tuple[Path, Any]:
    """The planted demo (2,000 users, seed 1): home_cooks grow, sports_fans churn."""
    if "demo" not in _cache:
        files = generate_demo(tmp_root / "demo-data", n_users=2000, seed=1)
        out = _pipeline(LoadRequest(events=files.events, items=files.items, users=files.users), tmp_root / "demo-run")
        _cache["demo"] = (out, files)
    return _cache["demo"]


def retail_run(tmp_root: Path, shared: Path) -> Path:
    """UCI Online Retail (4,338 customers, Dec 2010 - Dec 2011) in six k-means segments."""
    if "retail" not in _cache:
        _cache["retail"] = _pipeline(LoadRequest(events=shared / "uci-online-retail" / "online_retail.csv.gz"),
                                     tmp_root / "retail-run", "cluster.method=kmeans", "cluster.k=6")
    return _cache["retail"]


def cdnow_run(tmp_root: Path, shared: Path) -> Path:
    """The CDNOW 1/10th sample as the loader yields it, CLV calibrated up to 1997-09-30 (39 weeks),
    as in Fader, Hardie & Lee (2005)."""
    if "cdnow" not in _cache:
        _cache["cdnow"] = _pipeline(LoadRequest(events=shared / "cdnow" / "CDNOW_sample.txt"), tmp_root / "cdnow-run",
                                    'analysis.clv_calibration_end="1997-09-30"')
    return _cache["cdnow"]


def analyses(run: Path) -> dict[str, Any]:
    return json.loads((run / "analyses.json").read_text())


def segments(run: Path) -> dict[int, dict[str, Any]]:
    return {s["id"]: s for s in json.loads((run / "segments.json").read_text())}


def segment_of(run: Path, files: Any, persona: str) -> int:
    """The segment holding most of a planted persona's users."""
    users = pd.read_parquet(run / "users.parquet")
    labels = pd.read_csv(files.labels, dtype={"user_id": str})
    m = users.merge(labels, on="user_id")
    return int(m.loc[m["persona"] == persona, "segment"].mode().iloc[0])


def strict_json(obj: Any) -> str:
    """JSON with no NaN, no infinity and no NumPy types (what segments.json and prompts need)."""
    return json.dumps(obj, allow_nan=False)


# --- hand-made data ---------------------------------------------------------------------------
END = date(2024, 9, 30)


def _days(start: date, stop: date, step: int) -> list[date]:
    out, d = [], start
    while d <= stop:
        out.append(d)
        d += timedelta(days=step)
    return out


# Users of segment 0 whose stage the lifecycle rule fixes (data end 2024-09-30, months, last month
# from 2024-09-01): each buys weekly unless said otherwise.
HAND_USERS: dict[str, tuple[int, list[date], str]] = {
    "steady": (0, _days(date(2024, 1, 1), END, 7) + [END], "active"),
    "newbie": (0, [date(2024, 9, 20), date(2024, 9, 25)], "new"),
    "gone": (0, _days(date(2024, 1, 1), date(2024, 3, 31), 7), "churned"),
    "fading": (0, _days(date(2024, 1, 1), date(2024, 9, 12), 7), "at_risk"),  # silent 21 days, gap 7
    "back": (0, _days(date(2024, 1, 1), date(2024, 4, 1), 7) + [date(2024, 9, 15), date(2024, 9, 22),
                                                                 date(2024, 9, 29)], "reactivated"),
    "once": (0, [date(2024, 2, 1)], "churned"),  # no gap of its own: judged on the segment's 7 days
    "fortnight1": (1, _days(date(2024, 1, 3), END, 14), "active"),
    "fortnight2": (1, _days(date(2024, 2, 3), date(2024, 9, 20), 14), "active"),
    "fortnight3": (1, _days(date(2024, 1, 10), date(2024, 8, 1), 14), "churned"),
    "fortnight4": (1, _days(date(2024, 3, 1), date(2024, 9, 20), 14), "active"),
    # alone in segment 2 with one gap: judged on the population's 10.5 days, so 111 silent days and a
    # return in September make it reactivated
    "loner": (2, [date(2024, 6, 1), date(2024, 9, 20)], "reactivated"),
}


def hand_events(folder: Path, *, value: str = "12.5", flat: bool = False, days: int | None = None) -> Path:
    """HAND_USERS' purchases as a CSV (optionally all at one timestamp, or cut to the last `days`)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for uid, (_, ds, _) in HAND_USERS.items():
        for d in ds:
            if days is not None and (END - d).days >= days:
                continue
            ts = "2024-09-30T12:00:00" if flat else f"{d.isoformat()}T10:00:00"
            rows.append(f"{uid},shop,{ts},purchase,{value}")
    return write_csv(folder / "events.csv", "user_id,item_id,timestamp,event,value", rows)


def random_events(folder: Path, n_users: int = 60, seed: int = 0, value: str | None = None) -> Path:
    """n_users with random purchase days over 2024 (enough customers for BG/NBD), values random or fixed."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        first = int(rng.integers(0, 200))
        life = int(rng.integers(10, 366 - first))
        n = int(rng.integers(1, 12))
        for d in sorted(set((first + rng.integers(0, life, n)).tolist()) | {first}):
            day = date(2024, 1, 1) + timedelta(days=int(d))
            v = value if value is not None else f"{rng.gamma(2.0, 15.0):.2f}"
            rows.append(f"u{u:03d},shop,{day.isoformat()}T09:30:00,purchase,{v}")
    return write_csv(folder / "events.csv", "user_id,item_id,timestamp,event,value", rows)


def context(events: Path, labels: dict[str, int] | None = None, default: int = 0) -> AnalysisContext:
    """An analysis context straight from a file and hand-picked segment labels (embeddings and the
    index are not read by these analyses)."""
    plugins.load_plugins()
    ds = ingest.load_dataset(LoadRequest(events=events, value_kind="amount"), {})
    feats = compute_features(ds)
    ids = feats.user_ids.astype(str)
    lab = np.array([(labels or {}).get(u, default) for u in ids], dtype=np.int64)
    n = len(ids)
    seg = Segmentation(lab, np.ones(n), np.zeros((n, 2), np.float32), np.zeros((n, 2), np.float32))
    return AnalysisContext(ds, feats, None, seg, None, {})


def analyse(ctx: AnalysisContext, name: str, **options: Any):
    opts = {**build_config()["analysis"], "seed": 42, **options}
    return plugins.create("analysis", name, opts).analyse(ctx)
