"""The "recommendations" analysis and `seglens recommend`: the shrinkage formula holds on the saved
table, the horror segment's list is horror, per-user lists are unseen and agree between the single
and --all paths (CSV and Parquet), errors are one line, and on MovieLens leave-last-out seglens beats
global popularity (HR@10)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from helpers import seglens
from pref_rec_sat_runs import demo_run, movielens_eval, run_analyses_on, tiny_context

from seglens.default_plugins.analysis_recommendations import MAX_PRIOR, Recommender, prior_strength
from seglens.runfolder import RunFolder

pytestmark = pytest.mark.xdist_group("pref_rec_sat_runs")  # one worker builds the shared runs once


@pytest.fixture(scope="module")
def demo():
    out, files = demo_run()
    return out, files


@pytest.fixture(scope="module")
def rec(demo):
    return Recommender.from_run(RunFolder(demo[0]))


def test_segment_table_follows_the_documented_formula(demo, rec):
    out, _ = demo
    table = pd.read_parquet(out / "recommendations_segments.parquet")
    facts = json.loads((out / "analyses.json").read_text())["recommendations"]["facts"]
    m = facts["prior_strength"]
    assert 0 < m < MAX_PRIOR and facts["prior_strength_source"] == "method of moments"
    events = pd.read_parquet(out / "events.parquet")[["user_id", "item_id"]].drop_duplicates()
    users = pd.read_parquet(out / "users.parquet")[["user_id", "segment"]]
    ev = events.merge(users, on="user_id")
    n_all = len(users)
    for sid, g in table.groupby("segment"):
        assert list(g["rank"]) == list(range(1, len(g) + 1))
        assert (np.diff(g["score"].to_numpy()) <= 1e-12).all()
        top = g.iloc[0]
        n_s = int((users["segment"] == sid).sum())
        c = ev[(ev["segment"] == sid) & (ev["item_id"] == top["item_id"])]["user_id"].nunique()
        p = ev[ev["item_id"] == top["item_id"]]["user_id"].nunique() / n_all
        assert top["users"] == c and top["population_share"] == pytest.approx(p)
        theta = (c + m * p) / (n_s + m)
        assert top["share_shrunk"] == pytest.approx(theta, rel=1e-3)  # m is rounded in the facts
        assert top["score"] == pytest.approx(theta * (theta / p) ** 1.0, rel=2e-3)


def test_horror_segment_list_is_horror_and_facts_are_small(demo):
    out, _ = demo
    segs = json.loads((out / "segments.json").read_text())
    items = pd.read_parquet(out / "items.parquet")
    cats = dict(zip(items["item_id"], items["categories"].map(list)))

    def horror_share(s):
        ids = [r["item_id"] for r in s["recommendations"]["top_items"]]
        return np.mean(["Horror" in cats[i] for i in ids])

    real = [s for s in segs if s["id"] >= 0]
    assert max(horror_share(s) for s in real) == 1.0
    for s in real:
        top = s["recommendations"]["top_items"]
        assert len(top) == 5 and all(t["lift"] >= 1 for t in top)
        assert len(json.dumps(s["recommendations"])) < 1500


def test_user_lists_are_unseen_blended_and_batched(demo, rec):
    out, _ = demo
    events = pd.read_parquet(out / "events.parquet")
    seen = events.groupby("user_id")["item_id"].agg(set)
    uid = rec.user_ids[3]
    one = rec.recommend_user(uid, 10)
    assert [r["rank"] for r in one] == list(range(1, 11))
    assert not {r["item_id"] for r in one} & seen[uid]
    scores = [r["score"] for r in one]
    assert scores == sorted(scores, reverse=True)
    for r in one:  # score = 0.3 segment + 0.7 neighbours (+ a 1e-6 popularity tie-break)
        assert r["score"] == pytest.approx(0.3 * r["segment_part"] + 0.7 * r["neighbour_part"], abs=2e-4)
    rows = np.arange(0, len(rec.user_ids), 7)
    small = rec.recommend_all(10, rows)
    assert small.groupby("user_id").size().eq(10).all()
    bad = small.apply(lambda r: r["item_id"] in seen[r["user_id"]], axis=1)
    assert not bad.any()
    mine = small[small["user_id"] == uid] if uid in set(small["user_id"]) else None
    if mine is not None:
        assert list(mine["item_id"]) == [r["item_id"] for r in one]


def test_recommend_command_single_all_and_errors(demo, tmp_path):
    out, _ = demo
    users = pd.read_parquet(out / "users.parquet")
    uid = users["user_id"].iloc[10]
    r = seglens("recommend", out, uid, "-k", "5", "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["user_id"] == uid and got["segment"] == int(users["segment"].iloc[10])
    assert len(got["items"]) == 5 and got["items"][0]["title"]
    r = seglens("recommend", out, "--all", "-k", "4", "-o", tmp_path / "recs.csv")
    assert r.returncode == 0, r.stderr
    csv = pd.read_csv(tmp_path / "recs.csv", dtype={"user_id": str, "item_id": str})
    assert list(csv.columns) == ["user_id", "rank", "item_id", "score"]
    assert len(csv) == 4 * len(users) and csv["user_id"].nunique() == len(users)
    assert list(csv[csv["user_id"] == uid]["item_id"]) == [i["item_id"] for i in got["items"][:4]]
    r = seglens("recommend", out, "--all", "-k", "4", "-o", tmp_path / "recs.parquet")
    assert r.returncode == 0, r.stderr
    pq = pd.read_parquet(tmp_path / "recs.parquet")
    pd.testing.assert_frame_equal(pq[["user_id", "rank", "item_id"]].astype(str),
                                  csv[["user_id", "rank", "item_id"]].astype(str))
    for args, needle in (((uid, "--all", "-o", tmp_path / "x.csv"), "not both"),
                         (("--all", "-o", tmp_path / "x.txt"), "unknown output format"),
                         (("nobody",), "'nobody' is not in this run")):
        r = seglens("recommend", out, *args)
        assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_prior_strength_by_hand():
    pop = np.array([0.5, 0.2, 0.1])
    sizes = np.array([100.0, 100.0])
    same = np.vstack([pop * 100, pop * 100])
    assert prior_strength(same, sizes, pop) == MAX_PRIOR  # no between-segment difference: popularity
    sharp = np.array([[100.0, 40.0, 0.0], [0.0, 0.0, 20.0]])
    assert prior_strength(sharp, sizes, np.array([0.5, 0.2, 0.1])) < 5


def test_edge_cases_single_segment_lone_user_and_noise(tmp_path):
    events = [f"u{u},i{(u * 3 + k) % 9},2024-03-0{1 + k} 10:00:00,view,," for u in range(10) for k in range(4)]
    events.append("u99,i0,2024-03-09 10:00:00,view,,")
    ctx = tiny_context(tmp_path / "a", events, [0] * 10 + [1])  # u99 is a segment of one
    segs, analyses = run_analyses_on(ctx, tmp_path / "a-out", ["recommendations"])
    by_id = {s["id"]: s for s in segs}
    assert by_id[1]["recommendations"]["top_items"]
    rec = Recommender.from_context(ctx)
    one = rec.recommend_user("u99", 20)
    assert len(one) == 8 and "i0" not in {r["item_id"] for r in one}  # 9 items, one seen
    full = rec.recommend_all(3)
    assert full.groupby("user_id").size().max() <= 3

    ctx = tiny_context(tmp_path / "b", events, [-1] * 11)  # nobody in a segment: population popularity
    segs, analyses = run_analyses_on(ctx, tmp_path / "b-out", ["recommendations"])
    assert [s["id"] for s in segs] == [-1]
    top = segs[0]["recommendations"]["top_items"]
    assert [t["lift"] for t in top] == [1.0] * len(top)


@pytest.mark.slow
def test_movielens_leave_last_out_beats_popularity(shared_data):
    result, _ = movielens_eval()
    m = result["methods"]
    assert result["users_evaluated"] == 610 and result["k"] == 10
    assert m["seglens"]["hr@10"] > m["popularity"]["hr@10"]
    assert m["seglens"]["ndcg@10"] > m["popularity"]["ndcg@10"]
    assert m["item_knn"]["hr@10"] > 0
    assert set(result["seconds"]) >= {"split", "run", "total"}
