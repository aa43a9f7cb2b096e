"""The "value" analysis: the published BG/NBD and Gamma-Gamma fits on CDNOW, revenue and CLV on UCI
Online Retail and the demo, and the refusals (too few customers, no time spread, zero spend)."""
from __future__ import annotations

import pandas as pd
import pytest

from growth_value_runs import (HAND_USERS, analyse, analyses, context, demo_run, hand_events, random_events,
                               retail_run, segment_of, segments, strict_json)

from seglens.default_plugins.analysis_value import fit_bgnbd, rfm_summary
from seglens.model import LoadRequest
from seglens import ingest, plugins

# one worker builds the shared runs once (effective with pytest-xdist's --dist loadgroup)
pytestmark = pytest.mark.xdist_group("growth_value_runs")

# Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way", CDNOW sample, 39 weeks.
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
# Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value", the same 946 repeat customers.
PUBLISHED_GG = {"p": 6.25, "q": 3.74, "v": 15.44}


@pytest.mark.slow
def test_cdnow_reproduces_the_published_fit(shared_data, tmp_path_factory):
    from growth_value_runs import cdnow_run

    out = cdnow_run(tmp_path_factory.mktemp("cdnow"), shared_data)
    v = analyses(out)["value"]
    assert v["skipped"] is None
    f = v["facts"]
    assert f["calibration_end"] == "1997-09-30" and f["time_unit"] == "week"
    bg = f["bgnbd"]
    assert bg["customers"] == 2357 and bg["repeat_customers"] == 946 and bg["penalizer"] == 0.0
    for k, want in PUBLISHED_BGNBD.items():
        assert bg[k] == pytest.approx(want, rel=0.02), (k, bg[k])
    gg = f["gamma_gamma"]
    assert gg["customers"] == 946
    for k, want in PUBLISHED_GG.items():
        assert gg[k] == pytest.approx(want, rel=0.02), (k, gg[k])
    # the 39-week holdout: the model's total is in the right range of what happened
    h = f["holdout"]
    assert h["days"] == 273 and 0.8 < h["predicted_transactions"] / h["actual_transactions"] < 1.1
    assert f["clv"]["months"] == 12 and f["clv"]["monthly_discount"] == 0.01
    t = pd.read_parquet(out / "value.parquet")
    assert len(t) == 2357 and t["p_alive"].between(0, 1).all() and (t["clv"] >= 0).all()
    assert t["clv"].mean() == pytest.approx(f["clv"]["mean"], abs=0.01)


def test_cdnow_summary_matches_lifetimes_published_summary(shared_data):
    """The calibration summary built from the loader's events equals the one shipped with lifetimes
    (frequency exactly; recency and T there are rounded to 2 decimals)."""
    lifetimes = pytest.importorskip("lifetimes")
    from pathlib import Path

    plugins.load_plugins()
    sample = shared_data / "cdnow" / "CDNOW_sample.txt"
    ds = ingest.load_dataset(LoadRequest(events=sample), {})
    got = rfm_summary(ds.con, "TRUE", pd.Timestamp("1997-09-30"))
    ids = pd.read_csv(sample, sep=r"\s+", header=None, dtype=str).iloc[:, :2].drop_duplicates()
    ids = dict(zip(ids[0].str.lstrip("0"), ids[1].astype(int)))
    got["ID"] = got["user_id"].map(ids)
    ref = pd.read_csv(Path(lifetimes.__file__).parent / "datasets" / "cdnow_customers_summary.csv")
    m = ref.merge(got, on="ID", suffixes=("_ref", ""))
    assert len(m) == 2357
    assert (m["frequency"] == m["frequency_ref"]).all()
    assert (m["recency"] - m["recency_ref"]).abs().max() < 0.006
    assert (m["T"] - m["T_ref"]).abs().max() < 0.006
    bg, pen = fit_bgnbd(got["frequency"].to_numpy(), got["recency"].to_numpy(), got["T"].to_numpy())
    assert pen == 0.0 and bg.params_["r"] == pytest.approx(0.2426, abs=1e-3)


@pytest.mark.slow
def test_online_retail_revenue_and_clv(shared_data, tmp_path_factory):
    out = retail_run(tmp_path_factory.mktemp("retail"), shared_data)
    v = analyses(out)["value"]
    f = v["facts"]
    assert v["skipped"] is None and "clv_skipped" not in f, f.get("clv_skipped")
    events = pd.read_parquet(out / "events.parquet")
    assert f["revenue_total"] == pytest.approx(events["value"].sum(), abs=0.01)
    segs = segments(out)
    assert sum(s["value"]["revenue_total"] for s in segs.values()) == pytest.approx(f["revenue_total"], abs=1)
    assert sum(s["value"]["revenue_share"] for s in segs.values()) == pytest.approx(1.0, abs=1e-3)
    assert sum(s["value"]["clv_share"] for s in segs.values()) == pytest.approx(1.0, abs=1e-3)
    users = pd.read_parquet(out / "users.parquet")
    per_user = events.groupby("user_id")["value"].sum()
    for sid, s in segs.items():
        val = s["value"]
        mine = per_user.reindex(users.loc[users["segment"] == sid, "user_id"])
        assert val["revenue_per_user_median"] == pytest.approx(mine.median(), abs=0.01)
        assert val["value_index"] == pytest.approx(val["revenue_share"] / s["share"], rel=0.01)
        assert val["clv_months"] == 12 and val["clv_median"] <= val["clv_mean"] * 3
        assert 0 <= val["p_alive_mean"] <= 1
        strict_json(val)
    # the profile's monetary total and this revenue are the same figure
    assert all(s["value"]["revenue_total"] == pytest.approx(s["profile"]["rfm"]["monetary_total"], abs=0.01)
               for s in segs.values())
    t = pd.read_parquet(out / "value.parquet")
    assert len(t) == len(users) and t["clv"].notna().sum() == f["bgnbd"]["customers"]


@pytest.mark.slow
def test_demo_clv_sees_the_churn_that_revenue_hides(tmp_path_factory):
    """Sports fans spent well (high revenue index) but have left: CLV and P(alive) must show it."""
    out, files = demo_run(tmp_path_factory.mktemp("demo"))
    segs = segments(out)
    churning = segment_of(out, files, "sports_fans")
    growing = segment_of(out, files, "home_cooks")
    real = {sid: s["value"] for sid, s in segs.items() if sid >= 0}
    alive = {sid: v["p_alive_mean"] for sid, v in real.items()}
    assert min(alive, key=alive.get) == churning, alive
    assert real[churning]["value_index"] > 1  # they did spend ...
    clv_rank = sorted(real, key=lambda s: -real[s]["clv_per_user"])
    assert clv_rank.index(churning) >= len(real) // 2  # ... but are worth little from now on
    assert clv_rank[0] == growing
    run = analyses(out)["value"]["facts"]
    assert run["bgnbd"]["penalizer"] in (0.0, 0.001, 0.01, 0.1) and "clv" in run
    # demo logs mix views and ratings with purchases: only purchases are money
    events = pd.read_parquet(out / "events.parquet")
    assert run["revenue_total"] == pytest.approx(events.loc[events["event"] == "purchase", "value"].sum(), abs=0.01)


def test_small_flat_and_zero_value_data_skip_clv_with_reasons(tmp_path):
    hand = context(hand_events(tmp_path / "hand"), {u: seg for u, (seg, _, _) in HAND_USERS.items()})
    r = analyse(hand, "value")
    assert r.skipped is None and "customers" in r.run_level["clv_skipped"]
    assert r.run_level["revenue_total"] == pytest.approx(12.5 * sum(len(set(d)) for _, d, _ in HAND_USERS.values()))
    assert r.per_segment[2]["revenue_share"] is not None and "clv_mean" not in r.per_segment[2]
    strict_json(r.per_segment)
    # all events at one moment: revenue still counted, CLV refused
    flat = analyse(context(hand_events(tmp_path / "flat", flat=True)), "value", clv_min_customers=5,
                   clv_min_repeat_customers=1)
    assert flat.run_level["revenue_total"] > 0 and flat.run_level["clv_skipped"]
    # every value zero: no shares to divide, no spend model, but purchase timing still fits
    zero = analyse(context(random_events(tmp_path / "zero", value="0")), "value")
    f = zero.run_level
    assert f["revenue_total"] == 0 and "bgnbd" in f and "positive spend" in f["clv_skipped"]
    assert zero.per_segment[0]["revenue_share"] is None and zero.per_segment[0]["value_index"] is None
    assert 0 < zero.per_segment[0]["p_alive_mean"] <= 1
    strict_json(zero.per_segment)
    strict_json(f)
    # a normal small shop with one-user and single segments
    shop = random_events(tmp_path / "shop", n_users=80, seed=3)
    labels = {f"u{u:03d}": (0 if u < 50 else 1 if u < 79 else 2) for u in range(80)}
    r = analyse(context(shop, labels), "value")
    assert "clv" in r.run_level, r.run_level.get("clv_skipped")
    assert r.per_segment[2]["clv_customers"] == 1 and r.per_segment[2]["clv_mean"] == r.per_segment[2]["clv_median"]
    assert sum(s["revenue_share"] for s in r.per_segment.values()) == pytest.approx(1, abs=1e-3)
    strict_json(r.per_segment)


def test_bad_options_are_refused():
    from seglens.errors import SeglensError

    with pytest.raises(SeglensError, match="clv_calibration_end"):
        plugins.create("analysis", "value", {"clv_calibration_end": "last tuesday"})
    with pytest.raises(SeglensError, match="clv_time_unit"):
        plugins.create("analysis", "value", {"clv_time_unit": "fortnight"})
