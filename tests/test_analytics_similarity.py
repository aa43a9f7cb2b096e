"""The "similarity" analysis and `seglens similar RUN --segment N`: a symmetric segment x segment
table with ones on the diagonal, nearest segments that follow the planted shared tastes, and the
unchanged user mode of `similar`."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from segment_analytics_runs import cli, demo_run, segment_of, tiny_run, with_labels
from helpers import seglens

from seglens.default_plugins.analysis_similarity import SimilarityAnalysis
from seglens.runfolder import RunFolder, load_context

pytestmark = pytest.mark.xdist_group("segment_analytics_runs")  # one worker builds the shared runs once


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return demo_run(tmp_path_factory.mktemp("analytics"))


def _matrix(table: pd.DataFrame, col: str) -> np.ndarray:
    return table.pivot(index="segment_a", columns="segment_b", values=col).to_numpy()


def test_matrix_is_symmetric_with_ones_on_the_diagonal(demo):
    out, _ = demo
    table = pd.read_parquet(out / "segment_similarity.parquet")
    segs = [s for s in json.loads((out / "segments.json").read_text()) if s["id"] >= 0]
    k = len(segs)
    assert len(table) == k * k and -1 not in set(table["segment_a"])  # noise has no centroid
    for col in ("centroid_cosine", "item_jaccard"):
        m = _matrix(table, col)
        np.testing.assert_allclose(m, m.T)
        np.testing.assert_allclose(np.diag(m), 1.0)
        off = m[~np.eye(k, dtype=bool)]
        assert (off >= -1).all() and (off < 0.9).all()
    cos = _matrix(table, "centroid_cosine")
    c = np.load(out / "segment_centroids.npy").astype(np.float64)  # the profile's centroids agree
    expected = np.clip(c @ c.T, -1, 1)
    np.fill_diagonal(expected, 1.0)
    np.testing.assert_allclose(cos, expected, atol=1e-5)


def test_nearest_segments_follow_the_planted_shared_tastes(demo):
    out, files = demo
    segs = {s["id"]: s for s in json.loads((out / "segments.json").read_text())}
    table = pd.read_parquet(out / "segment_similarity.parquet")
    for sid, s in segs.items():
        if sid < 0:
            continue
        near = s["similarity"]["nearest"]
        assert len(near) == 3 and sid not in [n["segment"] for n in near]
        cos = [n["centroid_cosine"] for n in near]
        assert cos == sorted(cos, reverse=True)
        others = table[(table["segment_a"] == sid) & (table["segment_b"] != sid)]
        assert cos[0] == pytest.approx(others["centroid_cosine"].max(), abs=1e-3)
    crime = segment_of(out, files, "true_crime_buffs")
    horror = segment_of(out, files, "horror_night_owls")
    docs = segment_of(out, files, "documentary_lovers")
    # true crime shares thriller/mystery with horror and history documentaries with the doc lovers
    assert {n["segment"] for n in segs[crime]["similarity"]["nearest"][:2]} == {horror, docs}
    pair = table[(table["segment_a"] == crime) & (table["segment_b"] == horror)].iloc[0]
    assert pair["item_jaccard"] > 0.02
    run = json.loads((out / "analyses.json").read_text())["similarity"]["facts"]
    assert sorted(run["most_similar_pairs"][0]["segments"]) == sorted([crime, horror])


def test_similar_segment_command(demo, tmp_path):
    out, files = demo
    crime = segment_of(out, files, "true_crime_buffs")
    code, stdout, _ = cli("similar", out, "--segment", crime, "--json")
    assert code == 0
    res = json.loads(stdout)
    stored = next(s for s in json.loads((out / "segments.json").read_text()) if s["id"] == crime)
    assert res["segment"] == crime and res["source"] == "segment_similarity.parquet"
    assert [n["segment"] for n in res["nearest"]] == [n["segment"] for n in stored["similarity"]["nearest"]]
    assert all(n["name"] for n in res["nearest"])
    code, stdout, _ = cli("similar", out, "--segment", crime, "-k", "5")
    assert code == 0 and "centroid cosine" in stdout and "lifted-item Jaccard" in stdout
    assert all(n["name"] in stdout for n in res["nearest"])
    # without the saved table (a run made without the analysis) it is computed from the run folder
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    (copy / "segment_similarity.parquet").unlink()
    code, stdout, _ = cli("similar", copy, "--segment", crime, "--json")
    again = json.loads(stdout)
    assert code == 0 and again["source"] == "computed now"
    assert [(n["segment"], n["centroid_cosine"], n["item_jaccard"]) for n in again["nearest"]] == \
        [(n["segment"], n["centroid_cosine"], n["item_jaccard"]) for n in res["nearest"]]


def test_similar_user_mode_unchanged_and_mistakes_are_one_line(demo):
    out, _ = demo
    users = pd.read_parquet(out / "users.parquet")
    uid = str(users["user_id"].iat[5])
    code, stdout, _ = cli("similar", out, uid, "-k", "4", "--json")
    res = json.loads(stdout)
    assert code == 0 and res["user_id"] == uid and len(res["neighbours"]) == 4
    code, stdout, _ = cli("similar", out, uid, "--json")
    assert len(json.loads(stdout)["neighbours"]) == 10  # the default k for users is still 10
    r = seglens("similar", out)  # the real command line: neither a user nor --segment
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "--segment" in r.stderr
    for args in ((uid, "--segment", "0"), ("--segment", "99")):
        code, _, err = cli("similar", out, *args)
        assert code == 2 and err.startswith("error:"), (args, err)


def test_one_segment_and_tiny_runs(tmp_path_factory):
    out = tiny_run(tmp_path_factory.mktemp("analytics"))
    segs = {s["id"]: s for s in json.loads((out / "segments.json").read_text())}
    assert segs[0]["similarity"]["nearest"][0]["segment"] == 1  # only one other segment to name
    ctx = load_context(RunFolder(out))
    n = len(ctx.user_ids)
    one = SimilarityAnalysis({}).analyse(with_labels(ctx, np.zeros(n)))
    assert one.per_segment == {0: {"nearest": []}} and one.run_level["most_similar_pairs"] == []
    assert len(one.tables["segment_similarity"]) == 1 and "note" in one.run_level
    noise = SimilarityAnalysis({}).analyse(with_labels(ctx, np.full(n, -1)))
    assert noise.per_segment == {} and noise.tables["segment_similarity"].empty
    single = SimilarityAnalysis({}).analyse(with_labels(ctx, np.array([0] * (n - 1) + [1])))
    json.dumps(single.per_segment), json.dumps(single.run_level)
