"""The "satisfaction" analysis: the planted low-rating horror persona shows up as a segment with a
lower mean and more low ratings than the population; MovieLens tags get VADER sentiment; the
analysis is skipped with a reason (never faked) when there are neither ratings nor text."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from pref_rec_sat_runs import demo_run, movielens_eval, run_analyses_on, tiny_context

pytestmark = pytest.mark.xdist_group("pref_rec_sat_runs")  # one worker builds the shared runs once


@pytest.fixture(scope="module")
def demo():
    out, files = demo_run()
    return json.loads((out / "segments.json").read_text()), json.loads((out / "analyses.json").read_text()), out


def test_demo_ratings_per_segment(demo):
    segs, analyses, out = demo
    a = analyses["satisfaction"]
    assert a["skipped"] is None
    facts = a["facts"]
    assert facts["skipped"]["text"] == "the events carry no text (tags or reviews)"
    pop = facts["ratings"]["population"]
    assert facts["ratings"]["scale_max"] == 5.0 and facts["ratings"]["low_at_most"] == 2.0
    events = pd.read_parquet(out / "events.parquet")
    ratings = events[events["event"] == "rating"]["value"]
    assert pop["ratings"] == len(ratings) and pop["mean"] == pytest.approx(ratings.mean(), abs=0.006)
    assert pop["low_share"] == pytest.approx((ratings <= 2).mean(), abs=6e-4)
    assert sum(pop["distribution"].values()) == pytest.approx(1.0, abs=0.01)
    # the horror persona was planted with mean 3.2 against ~3.9: the horror segment rates lowest
    horror = max((s for s in segs if s["id"] >= 0), key=lambda s: max(
        [c["lift"] for c in s["preferences"]["categories"] if c["category"] == "Horror"] or [0]))
    hr = horror["satisfaction"]["ratings"]
    assert hr["mean"] < pop["mean"] - 0.3 and hr["mean_ci"][1] < pop["mean"]
    assert hr["low_share_index"] > 1.5 and hr["low_share_differs"]
    assert hr["mean"] == min(s["satisfaction"]["ratings"]["mean"] for s in segs
                             if s["id"] >= 0 and "ratings" in s.get("satisfaction", {}))


@pytest.mark.slow
def test_movielens_ratings_and_tag_sentiment(shared_data):
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    _, out = movielens_eval()
    segs = json.loads((out / "segments.json").read_text())
    facts = json.loads((out / "analyses.json").read_text())["satisfaction"]["facts"]
    assert facts["ratings"]["levels"][0] == "0.5" and facts["ratings"]["scale_max"] == 5.0
    events = pd.read_parquet(out / "events.parquet")
    texts = events[events["text"].notna()]
    assert facts["text"]["population"]["texts"] == len(texts)
    assert facts["text"]["population"]["writers"] == texts["user_id"].nunique()
    vader = SentimentIntensityAnalyzer()
    with_text = [s for s in segs if "text" in s.get("satisfaction", {})]
    assert with_text
    for s in with_text:
        t = s["satisfaction"]["text"]
        assert -1 <= t["mean_compound"] <= 1 and 0 <= t["negative_share"] <= 1
        for tag in t["frequent_negative"]:
            assert vader.polarity_scores(tag)["compound"] <= -0.05
        for tag in t["frequent_positive"]:
            assert vader.polarity_scores(tag)["compound"] >= 0.05
        assert len(json.dumps(s["satisfaction"])) < 2500
    assert sum(s["satisfaction"]["text"]["texts"] for s in with_text) == len(texts)


def test_skipped_with_reason_when_neither_ratings_nor_text(tmp_path):
    # all values zero in a 'rating' column: no scale, and no text either
    events = [f"u{u},i{k},2024-03-0{1 + k},rating,0," for u in range(6) for k in range(3)]
    ctx = tiny_context(tmp_path / "z", events, [0, 0, 0, 1, 1, 1])
    segs, analyses = run_analyses_on(ctx, tmp_path / "z-out", ["satisfaction"])
    reason = analyses["satisfaction"]["skipped"]
    assert "zero" in reason and "no text" in reason
    assert all("satisfaction" not in s for s in segs)

    # views without values: nothing to judge either
    events = [f"u{u},i{k},2024-03-0{1 + k},view,," for u in range(4) for k in range(2)]
    ctx = tiny_context(tmp_path / "v", events, [0, 0, 1, 1])
    _, analyses = run_analyses_on(ctx, tmp_path / "v-out", ["satisfaction"])
    assert analyses["satisfaction"]["skipped"].startswith("the events carry no ratings")


def test_text_only_with_a_lone_writer_segment(tmp_path):
    events = [f"u{u},i{k},2024-03-0{1 + k},tag,,{'boring' if u == 0 else 'funny'}" for u in range(5) for k in range(2)]
    ctx = tiny_context(tmp_path / "t", events, [1, 0, 0, 0, 0])
    segs, analyses = run_analyses_on(ctx, tmp_path / "t-out", ["satisfaction"])
    facts = analyses["satisfaction"]["facts"]
    assert facts["skipped"]["ratings"] == "the events carry no ratings"
    by_id = {s["id"]: s["satisfaction"]["text"] for s in segs}
    assert by_id[1]["negative_share"] == 1.0 and by_id[1]["low_support"]
    assert by_id[1]["mean_compound_ci"] == [None, None]  # one writer: no interval
    assert by_id[1]["frequent_negative"] == ["boring"]
    assert by_id[0]["negative_share"] == 0.0 and by_id[0]["frequent_positive"] == ["funny"]
