"""The "preferences" analysis on real runs: the planted horror persona's segment prefers Horror with an
interval that excludes 1 and is active late at night; MovieLens segments have release-decade
preferences; the interval maths agree with statsmodels and a direct computation; edge cases."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pref_rec_sat_runs import demo_run, movielens_eval, run_analyses_on, tiny_context

from seglens.segment_stats import event_share_lift, wilson, z_value

pytestmark = pytest.mark.xdist_group("pref_rec_sat_runs")  # one worker builds the shared runs once


@pytest.fixture(scope="module")
def demo():
    out, files = demo_run()
    return out, json.loads((out / "segments.json").read_text()), json.loads((out / "analyses.json").read_text())


def _horror(segs):
    """The segment where Horror's lift is highest (found from the output, not assumed)."""
    def lift(s):
        return max([c["lift"] for c in s["preferences"]["categories"] if c["category"] == "Horror"] or [0])
    return max((s for s in segs if s["id"] >= 0), key=lift)


def test_horror_segment_prefers_horror_late_at_night(demo):
    _, segs, _ = demo
    h = _horror(segs)["preferences"]
    top = h["categories"][0]
    assert top["category"] == "Horror"
    assert top["ci"][0] > 1.5 and top["significant"]  # the interval excludes 1 by far
    assert top["ci"][0] <= top["lift"] <= top["ci"][1]
    assert top["users"] >= 5 and 0 < top["population_share"] < top["share"] <= 1
    # planted hours: a peak around 01:00 plus a 22:30 shoulder
    act = h["activity"]
    assert set(act["peak_hours"]) <= {22, 23, 0, 1, 2, 3}
    assert act["night_share"] > 0.5
    assert any(x["hour"] in (0, 1, 2, 3) and x["significant"] for x in act["hours_by_lift"])
    assert sum(act["weekday_shares"].values()) == pytest.approx(1.0, abs=0.01)
    assert h["items"] and all(i["title"] and i["lift"] > 1 for i in h["items"])
    # Horror is what sets it apart, so something else must be under-represented
    assert all(u["ci"][1] < 1 for u in h.get("categories_under", []))


def test_demo_dimensions_price_bands_and_user_attributes(demo):
    out, segs, analyses = demo
    run = analyses["preferences"]
    assert run["skipped"] is None
    facts = run["facts"]
    labels = facts["price_bands"]["labels"]
    assert len(labels) >= 3 and labels[0].startswith("low") and labels[-1].startswith("high")
    assert facts["skipped"]["release_decades"].startswith("no item")  # demo titles carry no years
    assert "country" in facts["user_attribute_columns"]
    for s in segs:
        p = s["preferences"]
        assert [b["band"] for b in p["price_bands"]] == [x for x in labels if x in {b["band"] for b in p["price_bands"]}]
        for rows in p.get("user_attributes", {}).values():
            for row in rows:
                assert row["ci"][0] <= row["lift"] <= row["ci"][1]
        assert len(json.dumps(p)) < 6000  # compact: it goes into prompts
    # at least one planted persona has a significant country tilt
    assert any(row["significant"] for s in segs for row in s["preferences"].get("user_attributes", {}).get("country", []))
    grid = pd.read_parquet(out / "preferences_activity.parquet")
    assert set(grid.columns) == {"segment", "weekday", "hour", "events", "share", "population_share", "lift"}
    assert grid.groupby("segment")["share"].sum().round(6).eq(1.0).all()
    assert grid.groupby("segment").size().max() <= 7 * 24


def test_event_share_interval_matches_direct_computation(demo):
    """The cluster-robust interval recomputed by hand from the run's events for one cell."""
    import duckdb

    out, segs, _ = demo
    con = duckdb.connect()
    con.execute(f"CREATE TABLE events AS SELECT * FROM read_parquet('{out / 'events.parquet'}')")
    con.execute(f"CREATE TABLE items AS SELECT * FROM read_parquet('{out / 'items.parquet'}')")
    users = pd.read_parquet(out / "users.parquet")[["user_id", "segment"]]
    con.register("m", users)
    z = z_value(0.95)
    df = event_share_lift(con, "SELECT e.user_id, unnest(i.categories) AS key, 1 AS w FROM events e "
                          "JOIN items i USING (item_id)", "m", z)
    sid = _horror(segs)["id"]
    row = df[(df["segment"] == sid) & (df["key"] == "Horror")].iloc[0]
    per_user = con.execute("""
        SELECT m.segment, e.user_id, count(*) FILTER (WHERE list_contains(i.categories, 'Horror')) AS x,
               sum(len(i.categories)) AS t
        FROM events e JOIN items i USING (item_id) JOIN m USING (user_id) GROUP BY ALL""").df()
    seg = per_user[per_user["segment"] == sid]
    share = seg["x"].sum() / seg["t"].sum()
    n = len(seg[seg["t"] > 0])
    se = np.sqrt(n / (n - 1) * ((seg["x"] - share * seg["t"]) ** 2).sum()) / seg["t"].sum()
    pop = per_user["x"].sum() / per_user["t"].sum()
    assert row["share"] == pytest.approx(share)
    assert row["lift"] == pytest.approx(share / pop)
    assert row["ci_low"] == pytest.approx(share / pop * np.exp(-z * se / share))
    assert row["ci_high"] == pytest.approx(share / pop * np.exp(z * se / share))


def test_wilson_matches_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    k = np.array([0, 1, 5, 30, 99, 100])
    n = np.array([10, 3, 40, 60, 100, 100])
    lo, hi = wilson(k, n, z_value(0.95))
    for i in range(len(k)):
        a, b = proportion_confint(k[i], n[i], alpha=0.05, method="wilson")
        assert lo[i] == pytest.approx(a, abs=1e-9) and hi[i] == pytest.approx(b, abs=1e-9)


@pytest.mark.slow
def test_movielens_release_decades(shared_data):
    _, out = movielens_eval()
    segs = json.loads((out / "segments.json").read_text())
    facts = json.loads((out / "analyses.json").read_text())["preferences"]["facts"]
    assert facts["skipped"]["price_bands"] == "the items carry no prices"
    assert "user_attributes" in facts["skipped"]
    decades = {d["decade"] for d in facts["population_decades"]}
    assert {"1990s", "2000s", "1980s"} <= decades
    real = [s for s in segs if s["id"] >= 0]
    rows = [d for s in real for d in s["preferences"]["release_decades"]]
    assert rows and any(d["significant"] for d in rows)
    assert all(d["decade"].endswith("0s") and d["ci"][0] <= d["lift"] <= d["ci"][1] for d in rows)
    assert any(s["preferences"]["categories"] for s in real)


def test_edge_cases_one_user_segment_single_segment_no_time_spread(tmp_path):
    items = [f"i{i},Film {i} ({1990 + i}),{'Horror' if i % 2 else 'Comedy'},,{0}" for i in range(6)]
    # u0 alone in segment 1; every event at the same instant; all prices zero
    events = [f"u{u},i{(u + k) % 6},2024-03-01 12:00:00,view,," for u in range(8) for k in range(3)]
    ctx = tiny_context(tmp_path / "a", events, [1, 0, 0, 0, 0, 0, 0, 0], items=items,
                       users=[f"u{u},{'PL' if u < 4 else 'DE'}" for u in range(8)])
    segs, analyses = run_analyses_on(ctx, tmp_path / "a-out", ["preferences"])
    facts = analyses["preferences"]["facts"]
    assert facts["skipped"].get("activity") == "all events share one timestamp", facts
    assert facts["skipped"].get("price_bands") == "every item has the same price", facts
    by_id = {s["id"]: s for s in segs}
    lone = by_id[1]["preferences"]
    assert lone["users"] == 1 and lone["categories"] == [] and lone["items"] == [], lone  # below support
    assert "activity" not in lone, lone
    assert [d["decade"] for d in facts["population_decades"]] == ["1990s"], facts  # "Film 0 (1990)"...

    # a single segment: everything has lift 1, so nothing is "preferred"
    ctx = tiny_context(tmp_path / "b", [f"u{u},i{(u + k) % 6},2024-03-0{1 + k} {8 + u}:00:00,view,,"
                                        for u in range(8) for k in range(3)], None, items=items)
    segs, analyses = run_analyses_on(ctx, tmp_path / "b-out", ["preferences"])
    (only,) = segs
    p = only["preferences"]
    assert p["categories"] == [] and p["items"] == [] and p["release_decades"] == [], p
    assert p["activity"]["hours_by_lift"] == [] and len(p["activity"]["peak_hours"]) == 3, p["activity"]


def test_edge_case_no_catalog_everyone_noise(tmp_path):
    events = [f"u{u},i{k},2024-03-0{1 + k} 0{u}:00:00,view,," for u in range(5) for k in range(2)]
    ctx = tiny_context(tmp_path / "c", events, [-1] * 5)
    segs, analyses = run_analyses_on(ctx, tmp_path / "c-out", ["preferences"])
    facts = analyses["preferences"]["facts"]
    assert facts["skipped"]["categories"] == "there is no item catalog"
    assert [s["id"] for s in segs] == [-1]
    assert segs[0]["preferences"]["items"] == []
