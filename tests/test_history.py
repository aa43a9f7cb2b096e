"""The default history renderer through the real hook, on events loaded by the real loader."""
from __future__ import annotations

import pandas as pd

from helpers import write_csv

from seglens import plugins
from seglens.config import build_config
from seglens.features import compute_features
from seglens.history import fetch_recent, render_all
from seglens.ingest import load_dataset
from seglens.model import LoadRequest


def _dataset(tmp_path, value_header="rating"):
    # u1 watches i0..i29 on consecutive days (i29 newest), rewatches i3 last of all, and rated i0 highest.
    rows = [f"u1,i{k},2024-01-{1 + k:02d},{5.0 if k == 0 else 2.5}" for k in range(30)]
    rows += ["u1,i3,2024-02-15,3.0", "u2,i1,2024-01-05,4.0"]
    events = write_csv(tmp_path / "e.csv", f"user_id,item_id,timestamp,{value_header}", rows)
    items = write_csv(tmp_path / "i.csv", "item_id,title,categories",
                      [f"i{k},Film {k},{'Horror|Thriller' if k % 3 == 0 else 'Kids'}" for k in range(30)])
    cfg = build_config()
    return load_dataset(LoadRequest(events=events, items=items), cfg["load"])


def test_newest_and_highest_valued_items_within_the_budget(tmp_path):
    ds = _dataset(tmp_path)
    h = render_all(ds, compute_features(ds), {"max_items": 6, "max_chars": 1000})
    text = dict(zip(h.user_ids.astype(str), h.texts))["u1"]
    lines = text.splitlines()
    assert lines[0] == "12 recent events."  # the newest 2 x max_items events are fetched
    assert lines[1].startswith("Top categories: Kids (")
    items = [line for line in lines if line.startswith("- ")]
    # three newest distinct items (the rewatched i3 first), then the highest-rated of the rest
    assert items[:3] == ["- Film 3 [Horror, Thriller] (rated 3)", "- Film 29 [Kids] (rated 2.5)",
                         "- Film 28 [Kids] (rated 2.5)"]
    assert len(items) == 6 and len({i.split(" [")[0] for i in items}) == 6  # each item once
    small = render_all(ds, compute_features(ds), {"max_items": 40, "max_chars": 120})
    assert all(len(t) <= 120 for t in small.texts)


def test_the_whole_history_and_what_an_empty_one_says(tmp_path):
    ds = _dataset(tmp_path)
    h = render_all(ds, compute_features(ds), {"max_items": 40, "max_chars": 5000})
    text = dict(zip(h.user_ids.astype(str), h.texts))["u1"]
    assert text.startswith("31 recent events.") and "- Film 0 [Horror, Thriller] (rated 5)" in text
    assert text.count("- Film 3 ") == 1
    hook = plugins.load_plugins().hook.render_history
    empty = fetch_recent(ds, 10).drop(columns="r").iloc[:0]
    assert hook(user_id="x", events=empty, catalog={"value_kind": "rating"}, options={}) == "No recorded activity."


def test_amounts_are_shown_as_money(tmp_path):
    frame = pd.DataFrame({"item_id": ["a", "b"], "title": ["Mug", None], "categories": [["Kitchen"], None],
                          "value": [12.5, float("nan")], "ts": pd.to_datetime(["2024-01-01", "2024-01-02"]),
                          "event": ["purchase"] * 2, "text": [None, None], "user_id": ["u"] * 2})
    hook = plugins.load_plugins().hook.render_history
    text = hook(user_id="u", events=frame, catalog={"value_kind": "amount"}, options={"max_items": 4})
    assert text.splitlines()[2:] == ["- item b", "- Mug [Kitchen] (12.50)"]
