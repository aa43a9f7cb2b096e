"""The "prediction" analysis: out-of-time scores against the recency baseline on UCI Online Retail
and the demo, the churning persona's predicted churn, and the refusals on small or short data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from growth_value_runs import (HAND_USERS, analyse, analyses, context, demo_run, hand_events, random_events,
                               retail_run, segment_of, segments, strict_json)

# one worker builds the shared runs once (effective with pytest-xdist's --dist loadgroup)
pytestmark = pytest.mark.xdist_group("growth_value_runs")


def _check_scores(run: dict) -> None:
    m, b = run["held_out"]["model"], run["held_out"]["baseline_recency"]
    assert m["roc_auc"] > 0.7 and m["roc_auc"] >= b["roc_auc"] - 0.01, run["held_out"]
    assert m["pr_auc"] > run["test_active_rate"]  # better than guessing the base rate
    assert run["train_cutoff"] < run["test_cutoff"] < run["score_cutoff"]


@pytest.mark.slow
def test_demo_predicts_the_churning_persona(tmp_path_factory):
    out, files = demo_run(tmp_path_factory.mktemp("demo"))
    p = analyses(out)["prediction"]
    assert p["skipped"] is None
    run = p["facts"]
    assert run["period"] == "month" and run["score_cutoff"] == "2025-07-01" and run["amount"] == "spend"
    _check_scores(run)
    segs = segments(out)
    churning = segment_of(out, files, "sports_fans")
    growing = segment_of(out, files, "home_cooks")
    churn = {sid: s["prediction"]["predicted_churn_rate"] for sid, s in segs.items() if sid >= 0}
    assert max(churn, key=churn.get) == churning and min(churn, key=churn.get) == growing, churn
    # predicted activity tracks what happened in the held-out month, segment by segment
    pred = np.array([1 - churn[s] for s in churn])
    held = np.array([segs[s]["prediction"]["held_out_active_share"] for s in churn])
    assert np.corrcoef(pred, held)[0, 1] > 0.9
    t = pd.read_parquet(out / "prediction.parquet")
    users = pd.read_parquet(out / "users.parquet")
    assert list(t.columns) == ["user_id", "segment", "p_active_next", "expected_spend_next"]
    assert len(t) == len(users) and t["p_active_next"].between(0, 1).all() and (t["expected_spend_next"] >= 0).all()
    for sid, s in segs.items():
        mine = t.loc[t["segment"] == sid, "p_active_next"]
        assert s["prediction"]["p_active_next_mean"] == pytest.approx(mine.mean(), abs=1e-4)
        strict_json(s["prediction"])


@pytest.mark.slow
def test_online_retail_beats_recency(shared_data, tmp_path_factory):
    out = retail_run(tmp_path_factory.mktemp("retail"), shared_data)
    run = analyses(out)["prediction"]["facts"]
    _check_scores(run)
    assert run["train_cutoff"] == "2011-10-10" and run["test_cutoff"] == "2011-11-10"
    reg = run["regression"]
    assert reg["mae"] < reg["baseline_last_period_mae"] and reg["spearman"] > 0.2
    assert "seg_0" in run["features"] and "spend_last_period" in run["features"]


def test_small_short_and_flat_data_are_refused(tmp_path):
    hand = context(hand_events(tmp_path / "hand"), {u: seg for u, (seg, _, _) in HAND_USERS.items()})
    r = analyse(hand, "prediction")
    assert r.skipped and "at least 30" in r.skipped
    r = analyse(hand, "prediction", prediction_min_users=5)
    assert r.skipped is None and r.run_level["train_users"] >= 5
    assert set(r.per_segment) == {0, 1, 2} and r.per_segment[2]["predicted_churn_rate"] is not None
    strict_json(r.per_segment)
    strict_json(r.run_level)
    short = analyse(context(hand_events(tmp_path / "short", days=20)), "prediction")
    assert short.skipped and "needs at least 3" in short.skipped


def test_zero_values_single_segment_still_predict_activity(tmp_path):
    ctx = context(random_events(tmp_path / "zero", n_users=150, seed=5, value="0"))
    r = analyse(ctx, "prediction")
    assert r.skipped is None, r.skipped
    assert list(r.per_segment) == [0] and "skipped" in r.run_level["regression"]
    assert "expected_spend_next" not in r.tables["prediction"]
    assert 0 <= r.per_segment[0]["predicted_churn_rate"] <= 1
    strict_json(r.run_level)
