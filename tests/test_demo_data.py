"""The demo data generator: real files on disk, checked for what `seglens demo` relies on."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seglens import SeglensError
from seglens.default_plugins.demo_data import DemoFiles, generate_demo

FILES = ("events.csv", "items.csv", "users.csv", "labels.csv", "personas.json")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> DemoFiles:
    return generate_demo(tmp_path_factory.mktemp("demo"), n_users=3000, seed=42)


@pytest.fixture(scope="module")
def events(demo) -> pd.DataFrame:
    ev = pd.read_csv(demo.events, dtype={"user_id": str, "item_id": str, "event": str})
    ev["ts"] = pd.to_datetime(ev["timestamp"], format="ISO8601")
    return ev


@pytest.fixture(scope="module")
def labels(demo) -> pd.DataFrame:
    return pd.read_csv(demo.labels, dtype=str)


@pytest.fixture(scope="module")
def user_activity(events, labels) -> pd.DataFrame:
    g = events.groupby("user_id")["ts"]
    act = labels.set_index("user_id").join(g.min().rename("first")).join(g.max().rename("last"))
    assert act["first"].notna().all(), "every labelled user has events"
    return act


def test_returns_paths_and_persona_description(demo):
    for p in (demo.events, demo.items, demo.users, demo.labels, demo.personas_json):
        assert Path(p).is_file() and Path(p).stat().st_size > 0
    assert demo.events.name == "events.csv" and demo.labels.name == "labels.csv"
    on_disk = json.loads(demo.personas_json.read_text())
    assert [p["name"] for p in on_disk["personas"]] == list(demo.personas)
    for name, p in demo.personas.items():
        assert p["name"] == name
        assert 0 < p["share"] < 1
        assert p["core_categories"] and all(isinstance(c, str) for c in p["core_categories"])
        assert isinstance(p["growing"], bool) and isinstance(p["churning"], bool)
    assert sum(p["growing"] for p in demo.personas.values()) == 1
    assert sum(p["churning"] for p in demo.personas.values()) == 1
    assert demo.stats["n_users"] == 3000


def test_catalog(demo):
    items = pd.read_csv(demo.items, dtype={"item_id": str})
    assert list(items.columns) == ["item_id", "title", "categories", "description", "price"]
    assert len(items) >= 500
    assert items["item_id"].is_unique
    assert items["title"].str.len().gt(3).all() and items["title"].is_unique
    assert items["description"].str.endswith(".").all()
    n_cats = items["categories"].str.split("|").str.len()
    assert n_cats.between(1, 3).all() and (n_cats > 1).any()
    assert items["categories"].str.split("|").explode().nunique() >= 20
    assert (items["price"] > 0).all() and items["price"].nunique() > 10
    # genre vocabulary reaches the text an embedder reads
    horror = items[items["categories"].str.contains("Horror")]
    kids = items[items["categories"].str.startswith("Kids")]
    assert len(horror) >= 20 and len(kids) >= 20
    assert horror["description"].str.contains("horror|haunt|ghost|demon|curse", case=False).mean() > 0.8
    assert kids["description"].str.contains("kids|children|toddler|preschool|cartoon|animated",
                                            case=False).mean() > 0.8


def test_planted_personas_have_unequal_sizes(demo, labels):
    shares = labels["persona"].value_counts(normalize=True)
    planted = shares.drop("noise")
    assert len(planted) >= 8
    assert set(planted.index) == set(demo.personas)
    assert planted.min() < 0.05
    assert planted.max() > 0.20
    # the written labels follow the declared shares
    for name, p in demo.personas.items():
        assert abs(planted[name] - p["share"]) < 0.01


def test_personas_have_distinct_cores_but_overlap(demo, events, labels):
    items = pd.read_csv(demo.items, dtype={"item_id": str})
    all_cats = set(items["categories"].str.split("|").explode())
    cores = {n: set(p["core_categories"]) for n, p in demo.personas.items()}
    for name, core in cores.items():
        assert core <= all_cats
        others = set().union(*(c for n, c in cores.items() if n != name))
        assert core - others, f"{name} has no core category of its own"
    # most of a persona's views hit its core, but not all of them (tastes overlap)
    ev = events[events["event"] == "view"].merge(labels, on="user_id").merge(items, on="item_id")
    cats = ev["categories"].str.split("|")
    ev["core"] = [bool(cores[p] & set(c)) if p in cores else np.nan for p, c in zip(ev["persona"], cats)]
    purity = ev[ev["persona"] != "noise"].groupby("persona")["core"].mean()
    assert purity.between(0.7, 0.95).all(), purity.to_dict()
    secondary = [c for p in demo.personas.values() for c in p["secondary_categories"]]
    assert len(secondary) > len(set(secondary))  # some secondary tastes are shared


def test_noise_users_present(labels):
    share = (labels["persona"] == "noise").mean()
    assert 0.03 <= share <= 0.08


def test_users_file_and_ids(demo, labels, events):
    users = pd.read_csv(demo.users, dtype=str)
    assert list(users.columns) == ["user_id", "country", "signup_channel"]
    assert users["user_id"].is_unique and len(users) == 3000
    assert set(users["user_id"]) == set(labels["user_id"])
    assert set(events["user_id"]) == set(users["user_id"])
    assert users["country"].nunique() >= 8 and users["signup_channel"].nunique() >= 4


def test_event_item_ids_exist_in_catalog(demo, events):
    items = pd.read_csv(demo.items, dtype={"item_id": str})
    assert set(events["item_id"]) <= set(items["item_id"])


def test_events_columns_values_and_volume(events):
    assert list(events.columns[:5]) == ["user_id", "item_id", "timestamp", "event", "value"]
    assert set(events["event"]) == {"view", "rating", "purchase"}
    ratings = events.loc[events["event"] == "rating", "value"]
    assert ratings.notna().all() and ratings.between(1, 5).all() and (ratings % 1 == 0).all()
    assert ratings.nunique() == 5
    purchases = events.loc[events["event"] == "purchase", "value"]
    assert purchases.notna().all() and (purchases > 0).all()
    views = events.loc[events["event"] == "view", "value"]
    assert views.isna().any() and (views.dropna() > 0).all()  # product page views carry no minutes
    per_user = events.groupby("user_id").size()
    assert per_user.min() >= 5
    assert 20 <= per_user.mean() <= 35
    assert per_user.max() >= 3 * per_user.median()  # heavy tail


def test_timestamps_parse_and_span_18_months(events):
    assert events["timestamp"].str.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$").all()
    ts = events["ts"]
    assert ts.notna().all()
    assert ts.min() >= pd.Timestamp("2024-01-01") and ts.max() <= pd.Timestamp("2025-07-01")
    assert (ts.max() - ts.min()).days >= 540
    assert ts.is_monotonic_increasing  # a log, in time order


def _new_user_share(activity: pd.DataFrame, persona: str, lo: pd.Timestamp, hi: pd.Timestamp) -> float:
    new = activity[(activity["first"] >= lo) & (activity["first"] < hi)]
    return float((new["persona"] == persona).mean())


def test_growing_persona_takes_a_rising_share_of_new_users(demo, user_activity, events):
    growing = next(n for n, p in demo.personas.items() if p["growing"])
    start, end = events["ts"].min().normalize(), events["ts"].max()
    first3 = _new_user_share(user_activity, growing, start, start + pd.DateOffset(months=3))
    last3 = _new_user_share(user_activity, growing, end - pd.DateOffset(months=3), end + pd.Timedelta(1, "s"))
    assert last3 > first3
    assert last3 > 2 * demo.personas[growing]["share"]  # clearly, not by a hair
    # and its monthly active users rise
    mau = events[events["user_id"].isin(user_activity.index[user_activity["persona"] == growing])]
    mau = mau.groupby(mau["ts"].dt.to_period("M"))["user_id"].nunique()
    assert mau.iloc[-3:].mean() > 3 * mau.iloc[:3].mean()


def test_churning_persona_has_most_users_gone_quiet(demo, user_activity, events):
    churning = next(n for n, p in demo.personas.items() if p["churning"])
    cutoff = events["ts"].max() - pd.Timedelta(days=90)
    inactive = (user_activity["last"] < cutoff).groupby(user_activity["persona"]).mean()
    assert inactive.idxmax() == churning
    assert inactive[churning] > 0.6
    assert inactive[churning] > inactive.drop(churning).max() + 0.2


def test_personas_keep_their_own_hours_and_weekdays(events, labels):
    ev = events.merge(labels, on="user_id")
    hour = ev["ts"].dt.hour
    night = (hour >= 23) | (hour < 4)
    by = night.groupby(ev["persona"]).mean()
    assert by["horror_night_owls"] > 2 * by["family_kids"]
    weekend = (ev["ts"].dt.day_of_week >= 5).groupby(ev["persona"]).mean()
    assert weekend["family_kids"] > weekend["true_crime_buffs"] + 0.1


def test_same_seed_gives_identical_bytes(tmp_path):
    a = generate_demo(tmp_path / "a", n_users=800, seed=7)
    b = generate_demo(tmp_path / "b", n_users=800, seed=7)
    c = generate_demo(tmp_path / "c", n_users=800, seed=8)
    for f in FILES:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    assert a.personas == b.personas
    assert (tmp_path / "a" / "events.csv").read_bytes() != (tmp_path / "c" / "events.csv").read_bytes()
    assert (tmp_path / "a" / "labels.csv").read_bytes() != (tmp_path / "c" / "labels.csv").read_bytes()
    assert c.stats["seed"] == 8


@pytest.mark.parametrize("n_users", [50, 200])
def test_small_runs_keep_every_persona(tmp_path, n_users):
    small = generate_demo(tmp_path / "s", n_users=n_users, seed=1)
    labels = pd.read_csv(small.labels)
    assert len(labels) == n_users
    assert set(small.personas) <= set(labels["persona"])  # even the smallest persona has members
    assert set(pd.read_csv(small.events)["user_id"]) == set(labels["user_id"])


def test_too_few_users_is_a_user_error(tmp_path):
    with pytest.raises(SeglensError):
        generate_demo(tmp_path, n_users=10)
