"""The "quality" analysis on real runs: planted demo segments are stable under clusterboot while a
random labelling of the same users dissolves; figures for `seglens evaluate`; edge cases."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from segment_analytics_runs import demo_run, tiny_run, with_labels

from seglens.default_plugins.analysis_quality import QualityAnalysis, best_jaccard, quality_figures, verdict
from seglens.runfolder import RunFolder, load_context

pytestmark = pytest.mark.xdist_group("segment_analytics_runs")  # one worker builds the shared runs once


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return demo_run(tmp_path_factory.mktemp("analytics"))


@pytest.fixture(scope="module")
def demo_ctx(demo):
    return load_context(RunFolder(demo[0]))


def test_best_jaccard_by_hand():
    original = np.array([0, 0, 0, 0, 1, 1, 1, 1, -1, -1])
    new = np.array([5, 5, 5, -1, 7, 7, 7, 7, 7, -1])
    got = best_jaccard(original, new, [0, 1, 2])
    assert got[0] == pytest.approx(3 / 4)  # 3 shared, one became noise
    assert got[1] == pytest.approx(4 / 5)  # new cluster 7 also took a noise point
    assert 2 not in got  # not in the sample: not tested, not "dissolved"
    assert best_jaccard(original, np.full(10, -1), [0, 1]) == {0: 0.0, 1: 0.0}
    assert [verdict(x) for x in (0.9, 0.75, 0.7, 0.6, 0.59, None)] == \
        ["stable", "stable", "patterns", "patterns", "dissolving", None]


def test_demo_segments_are_stable_and_facts_are_compact(demo):
    out, _ = demo
    facts = json.loads((out / "analyses.json").read_text())["quality"]
    assert facts["skipped"] is None
    q = facts["facts"]
    users = pd.read_parquet(out / "users.parquet")
    assert q["n_segments"] == users.loc[users["segment"] >= 0, "segment"].nunique() >= 6
    assert q["noise_share"] == pytest.approx((users["segment"] < 0).mean(), abs=1e-4)
    assert 0 < q["relative_validity"] <= 1 and 0.5 < q["silhouette"] <= 1
    assert q["stability_boots"] == 10 and q["stability_rows"] == 1200  # 80% without replacement
    assert q["stability_mean_jaccard"] >= 0.9
    assert "UMAP" in q["stability_method"] and "UMAP" in q["seed_note"]  # said plainly: not re-run
    assert q["seed_ari"] == pytest.approx(1.0, abs=0.05) and q["seed_runs"] == 3
    segs = json.loads((out / "segments.json").read_text())
    for s in segs:
        if s["id"] < 0:
            assert "quality" not in s  # noise is not a cluster
            continue
        f = s["quality"]
        assert f["stability_jaccard"] >= 0.75 and f["stability"] == "stable", s["id"]
        assert f["boots"] == 10 and f["dissolved_in"] == 0 and -1 <= f["silhouette"] <= 1
        assert len(json.dumps(f)) < 200  # goes into LLM prompts
    assert sorted(q["stable_segments"]) == sorted(s["id"] for s in segs if s["id"] >= 0)
    assert "stability" in facts["markdown"] and "UMAP is not re-run" in facts["markdown"]
    assert "## quality" in (out / "report.md").read_text()


def test_random_labelling_dissolves(demo_ctx):
    n = len(demo_ctx.user_ids)
    k = len(demo_ctx.segmentation.segment_ids)
    random = np.random.default_rng(0).integers(0, k, size=n)
    res = QualityAnalysis({"seed": 42, "stability_boots": 5, "seed_runs": 1}).analyse(with_labels(demo_ctx, random))
    jac = [p["stability_jaccard"] for p in res.per_segment.values()]
    assert len(jac) == k and max(jac) < 0.5, jac
    assert all(p["stability"] == "dissolving" for p in res.per_segment.values())
    assert res.run_level["dissolving_segments"] == list(range(k))
    assert res.run_level["silhouette"] < 0.1  # random labels do not separate anything either
    assert res.run_level["seed_ari"] < 0.1  # the clusterer's own clusters are not the random ones


def test_stability_cap_keeps_cost_bounded(demo_ctx):
    res = QualityAnalysis({"seed": 1, "stability_boots": 3, "stability_max_rows": 400, "seed_runs": 2,
                           "silhouette_sample": 300}).analyse(demo_ctx)
    r = res.run_level
    assert r["stability_rows"] == 400 and r["stability_boots"] == 3
    assert r["seed_rows"] == 400 and r["seed_runs"] == 2  # above the cap: a fixed subsample, own reference
    assert r["silhouette_sample"] == 300
    # planted segments survive even a 27% subsample (min_cluster_size 'auto' scales with the rows)
    assert r["stability_mean_jaccard"] >= 0.75


def test_quality_figures_for_evaluate(demo, tmp_path):
    out, _ = demo
    figs = quality_figures(RunFolder(out))
    assert figs["source"] == "analyses.json"
    stored = json.loads((out / "analyses.json").read_text())["quality"]["facts"]
    for k in ("n_segments", "noise_share", "relative_validity", "silhouette", "stability_mean_jaccard", "seed_ari"):
        assert figs[k] == stored[k]
    assert set(figs["segments"]) == {str(s) for s in stored["stable_segments"]}
    assert all(v["verdict"] == "stable" for v in figs["segments"].values())
    json.dumps(figs)


def test_quality_figures_computed_when_the_run_lacks_the_analysis(tmp_path_factory):
    out = tiny_run(tmp_path_factory.mktemp("analytics"))
    run = RunFolder(out)
    analyses = json.loads((out / "analyses.json").read_text())
    assert "quality" in analyses
    stripped = {k: v for k, v in analyses.items() if k != "quality"}
    backup = (out / "analyses.json").read_text()
    try:
        (out / "analyses.json").write_text(json.dumps(stripped))
        assert quality_figures(run, compute=False)["source"].startswith("not measured")
        figs = quality_figures(run)
        assert figs["source"] == "computed now" and figs["n_segments"] == 2 and figs["silhouette"] > 0.5
    finally:
        (out / "analyses.json").write_text(backup)


def test_edge_cases_do_not_crash(tmp_path_factory):
    """Eight users with no timestamp spread and all values zero; then one segment, and a segment of
    one user, on the same users."""
    out = tiny_run(tmp_path_factory.mktemp("analytics"))
    q = json.loads((out / "analyses.json").read_text())["quality"]["facts"]
    assert q["n_segments"] == 2 and q["stability_boots"] == 0 and "too few" in q["stability_note"]
    ctx = load_context(RunFolder(out))
    n = len(ctx.user_ids)
    one = QualityAnalysis({"seed": 3}).analyse(with_labels(ctx, np.zeros(n)))
    assert one.run_level["silhouette"] is None and one.run_level["n_segments"] == 1
    singleton = np.array([0] * (n - 1) + [1])
    res = QualityAnalysis({"seed": 3, "stability_fraction": 1.0}).analyse(with_labels(ctx, singleton))
    json.dumps(res.per_segment), json.dumps(res.run_level)
    empty = QualityAnalysis({"seed": 3}).analyse(with_labels(ctx, np.full(n, -1)))
    assert empty.per_segment == {} and empty.run_level["noise_share"] == 1.0
