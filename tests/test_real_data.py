"""Full runs on the real public datasets in ../shared/data (MovieLens, UCI Online Retail, CDNOW)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from seglens.config import build_config
from seglens.model import LoadRequest
from seglens.pipeline import Pipeline
from seglens.runfolder import REQUIRED_FILES, RunFolder

pytestmark = pytest.mark.slow
KEYWORDS = ["describe.describer=keywords"]  # the LLM describers have tests of their own


def _check_run(out, n_users, min_segments=3, all_assigned=False):
    for name in REQUIRED_FILES + ("report.md", "events.parquet", "items.parquet", "features.parquet"):
        assert (out / name).exists(), name
    run = RunFolder(out)
    users = run.users()
    assert len(users) == n_users and users["user_id"].is_unique
    assert users["segment"].notna().all()
    if all_assigned:
        assert (users["segment"] >= 0).all()
    segs = [s for s in run.segments() if s["id"] >= 0]
    assert len(segs) >= min_segments
    for s in segs:
        p = s["profile"]
        assert p["rfm"]["users"] == s["size"] > 0
        assert p["representatives"]
        assert s["name"] and s["description"]
    return users, segs


def test_movielens_full_run_is_complete_and_repeatable(shared_data, tmp_path):
    request = LoadRequest(events=shared_data / "movielens-ml-latest-small")
    s1 = Pipeline(request, build_config(overrides=KEYWORDS), tmp_path / "a").run()
    users, segs = _check_run(tmp_path / "a", 610)
    assert all(s["profile"]["top_categories"] and s["profile"]["top_items"] for s in segs)
    assert max(s["profile"]["top_categories"][0]["lift"] for s in segs) > 1.5
    assert s1.n_events == 100836 + 3683
    Pipeline(request, build_config(overrides=KEYWORDS), tmp_path / "b").run()
    again = RunFolder(tmp_path / "b").users()
    pd.testing.assert_frame_equal(users, again)
    m = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert m["loader"] == "movielens" and m["value_kind"] == "rating"


def test_online_retail_full_run_assigns_every_customer(shared_data, tmp_path):
    request = LoadRequest(events=shared_data / "uci-online-retail" / "online_retail.csv.gz")
    cfg = build_config(overrides=["cluster.assign_noise=true", *KEYWORDS])
    summary = Pipeline(request, cfg, tmp_path / "r").run()
    users, segs = _check_run(tmp_path / "r", summary.n_users, all_assigned=True)
    assert summary.n_users > 4000
    assert all("monetary_mean" in s["profile"]["rfm"] for s in segs)
    total = sum(s["profile"]["rfm"]["monetary_total"] for s in segs)
    events = pd.read_parquet(tmp_path / "r" / "events.parquet")
    assert total == pytest.approx(events["value"].sum(), rel=1e-6)
    Pipeline(request, cfg, tmp_path / "r2").run()
    np.testing.assert_array_equal(users["segment"], RunFolder(tmp_path / "r2").users()["segment"])


def test_cdnow_without_catalog_falls_back_to_behaviour(shared_data, tmp_path):
    request = LoadRequest(events=shared_data / "cdnow" / "cdnow_master.csv")
    summary = Pipeline(request, build_config(overrides=KEYWORDS), tmp_path / "c").run()
    assert summary.n_users == 23570
    assert any("behaviour features" in w for w in summary.warnings)
    users, segs = _check_run(tmp_path / "c", 23570, min_segments=2)
    m = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert m["plugins"]["embedder"]["name"] == "behaviour"
    assert all(not s["profile"]["top_categories"] for s in segs)
