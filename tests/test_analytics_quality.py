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
    assert "UMAP" in q["stability_method"]  # said plainly: stability does not re-run the reducer
    # the seed ARI re-runs reduce + cluster, here on every user (1,500 is under the 5,000 cap)
    assert q["seed_rows"] == 1500 and q["seed_runs"] == 3 and len(q["seed_aris"]) == 3
    assert len(set(q["seeds"])) == 3 and 42 not in q["seeds"] and "umap" in q["seed_method"]
    assert -1 <= q["seed_ari_min"] <= q["seed_ari"] <= 1 and q["seed_ari_min"] == min(q["seed_aris"])
    assert q["seed_ari"] > 0.8  # planted segments survive another UMAP layout
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
    assert f"over 3 re-runs of reduce + cluster with seeds {q['seeds']} on 1,500 users" in facts["markdown"]
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
    assert abs(res.run_level["seed_ari"]) < 0.1  # re-run segments do not reproduce random labels


def test_stability_cap_keeps_cost_bounded(demo_ctx):
    res = QualityAnalysis({"seed": 1, "stability_boots": 3, "stability_max_rows": 400, "seed_runs": 2,
                           "silhouette_sample": 300}).analyse(demo_ctx)
    r = res.run_level
    assert r["stability_rows"] == 400 and r["stability_boots"] == 3
    assert r["seed_rows"] == 1500 and r["seed_runs"] == 2  # seed_max_rows (5,000) is its own cap
    assert r["silhouette_sample"] == 300
    # planted segments survive even a 27% subsample (min_cluster_size 'auto' scales with the rows)
    assert r["stability_mean_jaccard"] >= 0.75


def _rerun_by_hand(run: RunFolder, rows: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The run's own reducer and clusterer, by name through the plugin manager, on `rows` of the
    run's embeddings with `seed`: what the seed ARI claims to do, done independently of it."""
    from seglens import plugins

    cfg = run.manifest["config"]
    vectors = np.load(run.path / "embeddings.npy")
    reducer = plugins.create("reducer", cfg["reduce"]["method"], {**cfg["reduce"], "seed": seed})
    reduced = reducer.reduce(vectors[rows], int(cfg["reduce"]["n_components"]), seed)
    clusterer = plugins.create("clusterer", cfg["cluster"]["method"], {**cfg["cluster"], "seed": seed})
    return np.asarray(reduced), np.asarray(clusterer.cluster(reduced, seed).labels)


def test_seed_ari_reruns_the_reducer_and_is_reproducible_by_hand(demo):
    """One seed's figure recomputed outside the analysis; and that seed really moves UMAP's layout
    while the run's own seed reproduces it (the old check re-ran only the deterministic HDBSCAN on
    a fixed layout, so it could only ever say 1.0)."""
    from sklearn.metrics import adjusted_rand_score

    out, _ = demo
    run = RunFolder(out)
    q = json.loads((out / "analyses.json").read_text())["quality"]["facts"]
    labels = run.users()["segment"].to_numpy()
    rows = np.arange(len(labels))  # seed_rows is every user on this run
    reduced, new = _rerun_by_hand(run, rows, q["seeds"][0])
    ari = adjusted_rand_score(labels, new)
    assert -1 <= ari <= 1 and ari == pytest.approx(q["seed_aris"][0], abs=6e-4)
    own = np.load(out / "reduced.npy")
    same, _ = _rerun_by_hand(run, rows, run.manifest["seed"])
    np.testing.assert_allclose(same, own, atol=1e-4)  # the run's seed reproduces the run's layout...
    assert np.abs(reduced - own).max() > 0.5  # ...another seed gives another one


def test_seed_ari_on_a_capped_subsample(demo, demo_ctx):
    """Above `seed_max_rows` the figure is taken over a seeded subsample of that size, against the
    run's labels restricted to it; recomputed by hand for the first seed."""
    from sklearn.metrics import adjusted_rand_score

    res = QualityAnalysis({"seed": 5, "stability_boots": 0, "seed_runs": 2, "seed_max_rows": 600}).analyse(demo_ctx)
    r = res.run_level
    assert r["seed_rows"] == 600 and r["seed_runs"] == 2 and len(r["seed_aris"]) == 2
    assert "600-user subsample" in r["seed_note"] and -1 <= r["seed_ari_between"] <= 1
    labels = np.asarray(demo_ctx.segmentation.labels)
    rows = np.sort(np.random.default_rng(5 + 7).choice(len(labels), size=600, replace=False))
    _, new = _rerun_by_hand(RunFolder(demo[0]), rows, r["seeds"][0])
    assert adjusted_rand_score(labels[rows], new) == pytest.approx(r["seed_aris"][0], abs=6e-4)
    assert r["seed_ari_min"] <= r["seed_ari"] <= 1


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
