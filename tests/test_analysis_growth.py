"""The "growth" analysis: counting checked against pandas on UCI Online Retail, the planted growing
persona on the demo, the forecaster on its own, and the refusals and edge cases."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from growth_value_runs import (HAND_USERS, analyse, analyses, context, demo_run, hand_events, retail_run,
                               segment_of, segments, strict_json)

from seglens.default_plugins.analysis_growth import forecast

# one worker builds the shared runs once (effective with pytest-xdist's --dist loadgroup)
pytestmark = pytest.mark.xdist_group("growth_value_runs")


def test_forecast_intervals_are_ordered_and_non_negative():
    rising = np.array([10, 12, 13, 15, 18, 20, 22, 25, 27, 30, 31, 35], dtype=float)
    mean, lo, hi, method = forecast(rising, 3, 0.9)
    assert method == "ETS(A,Ad,N)" and len(mean) == 3
    assert (lo <= mean).all() and (mean <= hi).all() and mean[0] > 33
    assert (np.diff(hi - lo) >= 0).all()  # uncertainty grows with the horizon
    wide = forecast(rising, 3, 0.99)
    assert (wide[2] - wide[1] > hi - lo).all()
    mean, lo, hi, method = forecast(np.array([3, 3, 3, 3, 3, 3.0]), 2, 0.9)
    assert method == "constant" and mean.tolist() == lo.tolist() == hi.tolist() == [3, 3]
    falling = np.array([9, 6, 4, 2, 1, 0, 0.0])
    mean, lo, hi, _ = forecast(falling, 3, 0.9)
    assert (lo >= 0).all() and (mean >= 0).all()


def test_hand_made_history_and_small_segments(tmp_path):
    ctx = context(hand_events(tmp_path / "hand"), {u: seg for u, (seg, _, _) in HAND_USERS.items()})
    r = analyse(ctx, "growth")
    assert r.skipped is None
    assert r.run_level["period"] == "month" and r.run_level["periods"] == 9  # Jan - Sep 2024
    s = r.tables["growth_series"]
    assert list(s.columns) == ["segment", "period_start", "period_end", "active_users", "new_members", "events"]
    assert len(s) == 3 * 9 and s["new_members"].sum() == len(HAND_USERS)
    sep = s[s["period_start"] == pd.Timestamp("2024-09-01")].set_index("segment")
    # September: steady, newbie, fading, back (segment 0), fortnight1/2/4, loner
    assert sep["active_users"].to_dict() == {0: 4, 1: 3, 2: 1}
    assert sep.at[0, "new_members"] == 1
    # segments this small get growth figures but no forecast, and say why
    for f in r.per_segment.values():
        assert "forecast_skipped" in f and "too few" in f["forecast_skipped"]
        assert "active_growth" in f
    assert r.per_segment[2]["active_users_last_period"] == 1  # the segment of one user
    pop = r.run_level["population"]
    assert pop["active_users_last_period"] == 8
    assert "active_users_forecast" in pop and len(pop["active_users_forecast"]["mean"]) == 3
    strict_json(r.per_segment)
    strict_json(r.run_level)
    # one segment for everyone: its figures are the population's
    single = analyse(context(hand_events(tmp_path / "single")), "growth", growth_min_forecast_users=5)
    one = single.per_segment[0]
    assert one["active_growth"] == single.run_level["population"]["active_growth"]
    assert one["active_users_forecast_next"] == single.run_level["population"]["active_users_forecast_next"]


def test_short_history_is_refused_with_the_reason(tmp_path):
    r = analyse(context(hand_events(tmp_path / "short", days=20)), "growth")
    assert r.skipped and "complete weeks" in r.skipped and "at least 6" in r.skipped
    assert not r.per_segment and not r.tables
    # forcing weeks on the 9-month history gives 39 of them
    r = analyse(context(hand_events(tmp_path / "weeks")), "growth", period="week")
    assert r.run_level["period"] == "week" and r.run_level["periods"] == 39


@pytest.mark.slow
def test_growing_persona_grows_fastest_on_the_demo(tmp_path_factory):
    out, files = demo_run(tmp_path_factory.mktemp("demo"))
    segs = segments(out)
    growing = segment_of(out, files, "home_cooks")
    churning = segment_of(out, files, "sports_fans")
    real = {sid: s["growth"] for sid, s in segs.items() if sid >= 0}
    growth = {sid: g["active_growth"] for sid, g in real.items()}
    trend = {sid: g["trend_per_period"] for sid, g in real.items()}
    assert max(growth, key=growth.get) == growing, growth
    assert max(trend, key=trend.get) == growing, trend
    assert min(growth, key=growth.get) == churning and growth[churning] < -0.5
    run = analyses(out)["growth"]["facts"]
    assert run["period"] == "month" and run["fastest_growing_segment"] == growing
    fc = real[growing]["active_users_forecast_next"]
    assert fc["lower"] <= fc["mean"] <= fc["upper"]
    assert fc["mean"] > real[growing]["active_users_last_period"]  # still growing next month


@pytest.mark.slow
def test_online_retail_series_match_the_events(shared_data, tmp_path_factory):
    out = retail_run(tmp_path_factory.mktemp("retail"), shared_data)
    g = analyses(out)["growth"]
    assert g["skipped"] is None
    run = g["facts"]
    # 2010-12-01 .. 2011-12-09: twelve whole months ending 2011-12-10; the partial head is left out
    assert run["period"] == "month" and run["periods"] == 12
    assert run["first_period_start"] == "2010-12-10" and run["last_period_end"] == "2011-12-10"
    series = pd.read_parquet(out / "growth_series.parquet")
    events = pd.read_parquet(out / "events.parquet")
    users = pd.read_parquet(out / "users.parquet")
    assert len(series) == 12 * users["segment"].nunique()
    edges = pd.to_datetime(sorted(series["period_start"].unique().tolist()) + [pd.Timestamp("2011-12-10")])
    idx = np.searchsorted(edges.to_numpy(), events["ts"].to_numpy(), side="right") - 1
    ev = events.assign(idx=idx)[(idx >= 0) & (idx < 12)].merge(users[["user_id", "segment"]], on="user_id")
    expect = ev.groupby(["segment", "idx"])["user_id"].nunique()
    got = series.assign(idx=series.groupby("segment").cumcount()).set_index(["segment", "idx"])["active_users"]
    pd.testing.assert_series_equal(got[got > 0].sort_index(), expect.sort_index(), check_names=False,
                                   check_dtype=False)
    first = events.groupby("user_id")["ts"].min()
    new = ((first >= edges[-2]) & (first < edges[-1])).sum()
    assert run["population"]["new_members_last_period"] == new
    pop = series.groupby("period_start")["active_users"].sum()
    assert run["population"]["active_users_last_period"] == pop.iloc[-1]
    fc = pd.read_parquet(out / "growth_forecast.parquet")
    assert set(fc["series"]) == {"active_users", "new_members"} and (fc["lower"] <= fc["upper"]).all()
    assert (fc["lower"] >= 0).all() and set(fc["step"]) == {1, 2, 3}
    for s in segments(out).values():
        strict_json(s["growth"])
