"""The "lifecycle" analysis: the stage rule on hand-made users, the planted churning persona on the
demo, a full consistency check on UCI Online Retail, and the edge cases."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from growth_value_runs import (HAND_USERS, analyse, analyses, context, demo_run, hand_events, retail_run,
                               segment_of, segments, strict_json)

from seglens.analyses import run_analyses
from seglens import plugins

# one worker builds the shared runs once (effective with pytest-xdist's --dist loadgroup)
pytestmark = pytest.mark.xdist_group("growth_value_runs")

STAGES = {"new", "active", "reactivated", "at_risk", "churned"}


@pytest.fixture(scope="module")
def hand_ctx(tmp_path_factory):
    events = hand_events(tmp_path_factory.mktemp("hand"))
    return context(events, {u: seg for u, (seg, _, _) in HAND_USERS.items()})


def test_stage_rule_on_hand_made_users(hand_ctx):
    r = analyse(hand_ctx, "lifecycle")
    assert r.skipped is None
    t = r.tables["lifecycle"].set_index("user_id")
    assert {u: t.at[u, "stage"] for u in HAND_USERS} == {u: spec[2] for u, spec in HAND_USERS.items()}
    assert t.at["steady", "reference_gap_days"] == 7 and t.at["steady", "gap_source"] == "own"
    assert t.at["once", "gap_source"] == "segment" and t.at["once", "reference_gap_days"] == 7
    # alone in its segment and with one gap: judged on the population's typical gap
    assert t.at["loner", "gap_source"] == "population"
    assert t.at["loner", "reference_gap_days"] == pytest.approx(r.run_level["population"]["typical_gap_days"])
    assert r.run_level["period"] == "month" and r.run_level["last_period_start"] == "2024-09-01"
    # the segment of one user still gets a complete, valid mix
    one = r.per_segment[2]
    assert one["stage_counts"] == {"new": 0, "active": 0, "reactivated": 1, "at_risk": 0, "churned": 0}
    assert one["stage_shares"]["reactivated"] == 1.0
    zero = r.per_segment[0]
    assert zero["at_risk_or_churned_share"] == pytest.approx(3 / 6, abs=1e-4)
    assert zero["vs_population"]["churned"] == pytest.approx((2 / 6) / (3 / 11), abs=0.01)  # gone, once vs + fortnight3
    strict_json(r.per_segment)
    strict_json(r.run_level)


def test_options_change_the_thresholds(hand_ctx):
    # with a 3x risk factor, 21 silent days against a 7-day rhythm is no longer at risk
    r = analyse(hand_ctx, "lifecycle", lifecycle_risk_factor=3.0)
    t = r.tables["lifecycle"].set_index("user_id")
    assert t.at["fading", "stage"] == "active"
    # a 100-day horizon churns anyone silent longer, whatever their rhythm
    r = analyse(hand_ctx, "lifecycle", lifecycle_horizon_days=100, lifecycle_churn_factor=1000)
    t = r.tables["lifecycle"].set_index("user_id")
    assert t.at["gone", "stage"] == "churned" and t.at["fading", "stage"] == "at_risk"


def test_single_segment_and_edge_cases(tmp_path, hand_ctx):
    single = context(hand_events(tmp_path / "single"))  # everyone in segment 0
    r = analyse(single, "lifecycle")
    assert list(r.per_segment) == [0]
    assert r.per_segment[0]["stage_shares"] == r.run_level["population"]["stage_shares"]
    assert all(v == 1.0 for v in r.per_segment[0]["vs_population"].values() if v is not None)
    # a short history (17 days) switches to weeks and still classifies everyone
    short = context(hand_events(tmp_path / "short", days=20))
    r = analyse(short, "lifecycle")
    assert r.skipped is None and r.run_level["period"] == "week"
    assert set(r.tables["lifecycle"]["stage"]) <= STAGES
    # no spread in time: the runner skips it with the reason, and writes nothing broken
    flat = context(hand_events(tmp_path / "flat", flat=True))
    plugins.load_plugins()
    out = tmp_path / "flat-run"
    out.mkdir()
    run_analyses(flat, ["lifecycle"], out, lambda stage, name: plugins.create(stage, name, {}))
    import json
    got = json.loads((out / "analyses.json").read_text())["lifecycle"]
    assert "one timestamp" in got["skipped"]
    # nobody active on two different days: no rhythm to judge silence against
    once = tmp_path / "once"
    once.mkdir()
    (once / "events.csv").write_text("user_id,item_id,timestamp,event,value\n" + "\n".join(
        f"u{i},shop,2024-0{1 + i % 9}-01T10:00:00,purchase,5" for i in range(12)) + "\n")
    r = analyse(context(once / "events.csv"), "lifecycle")
    assert r.skipped and "two different days" in r.skipped


@pytest.mark.slow
def test_churning_persona_has_the_highest_risk_on_the_demo(tmp_path_factory):
    out, files = demo_run(tmp_path_factory.mktemp("demo"))
    segs = segments(out)
    churning = segment_of(out, files, "sports_fans")
    growing = segment_of(out, files, "home_cooks")
    risk = {sid: s["lifecycle"]["at_risk_or_churned_share"] for sid, s in segs.items() if sid >= 0}
    assert max(risk, key=risk.get) == churning, risk
    assert risk[churning] > 0.8
    assert min(risk, key=risk.get) == growing, risk
    new = {sid: s["lifecycle"]["stage_shares"]["new"] for sid, s in segs.items() if sid >= 0}
    assert max(new, key=new.get) == growing
    run = analyses(out)["lifecycle"]
    assert run["skipped"] is None and run["facts"]["most_at_risk_segment"] == churning
    assert "at-risk + churned" in run["markdown"]
    t = pd.read_parquet(out / "lifecycle.parquet")
    users = pd.read_parquet(out / "users.parquet")
    assert len(t) == len(users) and set(t["stage"]) == STAGES
    # per-segment counts match the per-user table
    for sid, s in segs.items():
        got = t.loc[t["segment"] == sid, "stage"].value_counts().to_dict()
        assert {k: v for k, v in s["lifecycle"]["stage_counts"].items() if v} == got


@pytest.mark.slow
def test_online_retail_stages_are_consistent(shared_data, tmp_path_factory):
    out = retail_run(tmp_path_factory.mktemp("retail"), shared_data)
    t = pd.read_parquet(out / "lifecycle.parquet").set_index("user_id")
    events = pd.read_parquet(out / "events.parquet")
    end = events["ts"].max().normalize()
    last = events.groupby("user_id")["ts"].max().dt.normalize()
    first = events.groupby("user_id")["ts"].min()
    rec = (end - last.reindex(t.index)).dt.days.to_numpy()
    np.testing.assert_array_equal(t["recency_days"].to_numpy(), rec)
    ref = t["reference_gap_days"].to_numpy()
    st = t["stage"].to_numpy()
    is_new = (first.reindex(t.index) >= pd.Timestamp("2011-11-10")).to_numpy()
    assert (st[is_new] == "new").all() and not (st[~is_new] == "new").any()
    old = ~is_new
    assert (st[old & (rec > np.minimum(4 * ref, 365))] == "churned").all()
    assert (rec[old & (st == "active")] <= 2 * ref[old & (st == "active")]).all()
    assert (ref >= 1).all() and set(t["gap_source"]) <= {"own", "segment", "population"}
    for s in segments(out).values():
        lc = s["lifecycle"]
        assert sum(lc["stage_counts"].values()) == s["size"]
        assert sum(lc["stage_shares"].values()) == pytest.approx(1.0, abs=1e-3)
        strict_json(lc)
