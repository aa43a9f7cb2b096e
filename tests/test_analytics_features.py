"""The "features" analysis: behaviour features per segment beside the population, on the planted
demo (horror night owls watch at night, families at weekends), MovieLens, and degenerate data."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from segment_analytics_runs import demo_run, movielens_run, segment_of, tiny_run, with_labels

from seglens.default_plugins.analysis_features import FeaturesAnalysis
from seglens.runfolder import RunFolder, load_context

pytestmark = pytest.mark.xdist_group("segment_analytics_runs")  # one worker builds the shared runs once


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return demo_run(tmp_path_factory.mktemp("analytics"))


def test_planted_behaviour_shows_against_the_population(demo):
    out, files = demo
    segs = {s["id"]: s for s in json.loads((out / "segments.json").read_text())}
    horror = segs[segment_of(out, files, "horror_night_owls")]["features"]
    night = horror["night_share"]
    assert night["mean"] > 2 * night["pop_mean"] and night["std_diff"] > 1.0
    assert set(night) == {"mean", "median", "pop_mean", "pop_median", "std_diff"}
    assert list(horror)[0] == "night_share"  # the most distinctive feature comes first
    diffs = [abs(v["std_diff"]) for v in horror.values()]
    assert diffs == sorted(diffs, reverse=True)
    kids = segs[segment_of(out, files, "family_kids")]["features"]
    assert kids["weekend_share"]["std_diff"] > 0.3 and kids["night_share"]["std_diff"] < -0.5
    for s in segs.values():
        assert len(json.dumps(s["features"])) < 1500  # compact enough for prompts
        for v in s["features"].values():
            assert (v["std_diff"] > 0) == (v["mean"] > v["pop_mean"]) or v["std_diff"] == 0


def test_table_matches_a_direct_computation(demo):
    out, _ = demo
    table = pd.read_parquet(out / "segment_features.parquet")
    feats = pd.read_parquet(out / "features.parquet")
    users = pd.read_parquet(out / "users.parquet")
    meta = json.loads((out / "features_meta.json").read_text())
    cats = list(meta["category_names"])
    assert cats and set(cats) <= set(table["feature"])  # category shares are in the file, not in segments.json
    n_features = table["feature"].nunique()
    assert len(table) == users["segment"].nunique() * n_features
    x = feats.assign(segment=users["segment"].to_numpy())
    for seg, col in ((0, "n_events"), (3, "monetary"), (2, cats[0])):
        row = table[(table["segment"] == seg) & (table["feature"] == col)].iloc[0]
        vals = x.loc[x["segment"] == seg, col]
        assert row["mean"] == pytest.approx(vals.mean()) and row["median"] == pytest.approx(vals.median())
        assert row["std_diff"] == pytest.approx((vals.mean() - x[col].mean()) / x[col].std(ddof=0))
    label = table.loc[table["feature"] == cats[0], "label"].iloc[0]
    assert label == meta["category_names"][cats[0]]
    run_facts = json.loads((out / "analyses.json").read_text())["features"]["facts"]
    assert run_facts["population"]["n_events"]["median"] == pytest.approx(feats["n_events"].median())


def test_movielens_keeps_ratings_and_leaves_out_money(tmp_path_factory, shared_data):
    out = movielens_run(tmp_path_factory.mktemp("analytics"), shared_data)
    a = json.loads((out / "analyses.json").read_text())["features"]["facts"]
    assert "mean_value" in a["features"] and a["left_out"] == {"monetary": "no user has a value"}
    assert 3.0 < a["population"]["mean_value"]["mean"] < 4.0  # MovieLens stars
    segs = [s for s in json.loads((out / "segments.json").read_text()) if s["id"] >= 0]
    assert segs and all("monetary" not in s["features"] and "mean_value" in s["features"] for s in segs)


def test_degenerate_data(tmp_path_factory):
    out = tiny_run(tmp_path_factory.mktemp("analytics"))
    segs = json.loads((out / "segments.json").read_text())
    for s in segs:  # one timestamp, all values zero: every user alike, no division by zero
        assert all(v["std_diff"] == 0.0 for v in s["features"].values())
    ctx = load_context(RunFolder(out))
    n = len(ctx.user_ids)
    for labels in (np.zeros(n), np.array([0] * (n - 1) + [1]), np.full(n, -1)):
        res = FeaturesAnalysis({}).analyse(with_labels(ctx, labels))
        json.dumps(res.per_segment), json.dumps(res.run_level)
        assert set(res.per_segment) == set(np.unique(labels).tolist())
    res = FeaturesAnalysis({"features_top": 3}).analyse(ctx)
    assert all(len(v) == 3 for v in res.per_segment.values())
