"""Loaders on tiny files in every format, and on the real shared datasets (real DuckDB, no mocks)."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from seglens.ingest import choose_loader, load_dataset
from seglens.model import EVENTS_SCHEMA, ITEMS_SCHEMA, ColumnMap, LoadRequest

CFG = {"format": "auto", "value_kind": "auto", "min_events_per_user": 1}
FORMATS = ["csv", "tsv", "parquet", "jsonl", "csv.gz", "jsonl.gz"]


def write_table(df: pd.DataFrame, path: Path) -> Path:
    """Write `df` in the format its name says (the files a user would hand us)."""
    name = path.name
    if name.endswith(".parquet"):
        df.to_parquet(path, index=False)
    elif ".jsonl" in name:
        text = "".join(json.dumps(rec) + "\n" for rec in df.to_dict(orient="records"))
        path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    else:
        sep = "\t" if ".tsv" in name else ","
        df.to_csv(path, index=False, sep=sep, compression="gzip" if name.endswith(".gz") else None)
    return path


def load(events: Path, **kw) -> object:
    cfg = {**CFG, **kw.pop("cfg", {})}
    return load_dataset(LoadRequest(events=events, **kw), cfg)


def rows(ds, sql: str) -> list[tuple]:
    return ds.con.execute(sql).fetchall()


def tables(ds) -> set[str]:
    return {r[0] for r in rows(ds, "SELECT table_name FROM duckdb_tables()")}


EVENTS = pd.DataFrame({
    "user_id": ["u1", "u1", "u2", "u2", "u3"],
    "item_id": ["i1", "i2", "i1", "i3", "i2"],
    "timestamp": ["2024-01-01 10:00:00", "2024-01-02", "2024-02-01T08:30:00", "2024-02-03", "2024-03-01"],
    "event": ["buy", "buy", "view", "buy", "buy"],
    "value": [10.5, 3.0, 0.0, 120.0, 7.25],
})


# --- tabular: formats, schema, mapping ----------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_tabular_reads_every_format(tmp_path: Path, fmt: str) -> None:
    ds = load(write_table(EVENTS, tmp_path / f"events.{fmt}"))
    assert ds.loader == "tabular"
    assert tables(ds) == {"events", "items", "user_attrs"}
    assert {r[0]: r[1] for r in rows(ds, "DESCRIBE events")} == EVENTS_SCHEMA
    assert {r[0]: r[1] for r in rows(ds, "DESCRIBE items")} == ITEMS_SCHEMA
    assert ds.stats["n_events"] == 5 and ds.stats["n_users"] == 3 and ds.stats["n_items"] == 3
    assert rows(ds, "SELECT sum(value) FROM events")[0][0] == pytest.approx(140.75)
    assert rows(ds, "SELECT ts FROM events WHERE user_id = 'u2' AND item_id = 'i1'")[0][0] \
        == pd.Timestamp("2024-02-01 08:30").to_pydatetime()
    assert ds.value_kind == "amount" and not ds.has_catalog and not ds.has_user_attrs
    assert ds.inputs[0].role == "events" and ds.inputs[0].format == fmt and len(ds.inputs[0].sha256) == 64


def test_epoch_seconds_milliseconds_and_yyyymmdd(tmp_path: Path) -> None:
    df = pd.DataFrame({"user_id": ["a", "b", "c"], "item_id": ["x", "x", "x"],
                       "timestamp": ["964982703", "1600000000000", "19970101"]})
    ds = load(write_table(df, tmp_path / "e.csv"))
    got = dict(rows(ds, "SELECT user_id, CAST(ts AS VARCHAR) FROM events"))
    assert got == {"a": "2000-07-30 18:45:03", "b": "2020-09-13 12:26:40", "c": "1997-01-01 00:00:00"}
    assert ds.value_kind == "none" and ds.stats["catalog_coverage"] is None


def test_parquet_native_types_and_integral_float_ids(tmp_path: Path) -> None:
    df = pd.DataFrame({"user_id": [17850.0, 17851.0], "item_id": [1, 2],
                       "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02"]), "value": [1, 2]})
    ds = load(write_table(df, tmp_path / "e.parquet"))
    assert sorted(r[0] for r in rows(ds, "SELECT user_id FROM events")) == ["17850", "17851"]
    assert sorted(r[0] for r in rows(ds, "SELECT item_id FROM events")) == ["1", "2"]


def test_aliases_are_found(tmp_path: Path) -> None:
    df = pd.DataFrame({"userId": [1, 2], "movieId": [10, 11], "rating": [4.5, 3.0], "time": ["2024-01-01", "2024-01-02"]})
    ds = load(write_table(df, tmp_path / "r.csv"))
    assert rows(ds, "SELECT user_id, item_id, value FROM events ORDER BY user_id") == [("1", "10", 4.5), ("2", "11", 3.0)]
    assert ds.value_kind == "rating"


def test_explicit_mapping_wins_over_defaults(tmp_path: Path) -> None:
    df = pd.DataFrame({"user_id": ["wrong", "wrong"], "cust": ["c1", "c2"], "sku": ["s1", "s2"],
                       "when": ["2024-01-01", "2024-01-02"], "kind": ["buy", "return"], "spend": ["1.5", "2"]})
    cols = ColumnMap(user="cust", item="sku", time="when", event="kind", value="spend")
    ds = load(write_table(df, tmp_path / "e.tsv"), columns=cols)
    assert rows(ds, "SELECT user_id, item_id, event, value FROM events ORDER BY user_id") == [
        ("c1", "s1", "buy", 1.5), ("c2", "s2", "return", 2.0)]


def test_missing_event_column_defaults_to_interaction(tmp_path: Path) -> None:
    ds = load(write_table(EVENTS.drop(columns=["event"]), tmp_path / "e.csv"))
    assert rows(ds, "SELECT DISTINCT event FROM events") == [("interaction",)]


# --- tabular: duplicates, catalog, users, value kinds ------------------------------------------

def test_duplicates_dropped_with_count(tmp_path: Path) -> None:
    df = pd.concat([EVENTS, EVENTS.iloc[[0, 0, 3]]])
    ds = load(write_table(df, tmp_path / "e.csv"))
    assert ds.stats["duplicates_dropped"] == 3 and ds.stats["n_events"] == 5
    assert any("3 duplicate events" in w for w in ds.warnings)


@pytest.mark.parametrize("sep", ["|", ";", ","])
def test_items_categories_split_on_the_separator_used(tmp_path: Path, sep: str) -> None:
    items = pd.DataFrame({"item_id": ["i1", "i2", "i3"], "title": ["One", "Two", "Three"],
                          "categories": [f" Drama {sep}Comedy{sep}", "Action", None], "price": [1.0, None, 0.0]})
    ds = load(write_table(EVENTS, tmp_path / "e.csv"), items=write_table(items, tmp_path / "items.csv"))
    cats = dict(rows(ds, "SELECT item_id, categories FROM items"))
    assert cats == {"i1": ["Drama", "Comedy"], "i2": ["Action"], "i3": []}
    assert ds.has_catalog and ds.stats["catalog_coverage"] == 1.0 and not ds.warnings


def test_items_id_column_named_id_and_coverage_warning(tmp_path: Path) -> None:
    items = pd.DataFrame({"id": ["i1", "i2"], "name": ["One", "Two"], "genres": ["a|b", "c"]})
    ds = load(write_table(EVENTS, tmp_path / "e.csv"), items=write_table(items, tmp_path / "items.jsonl"))
    assert ds.stats["catalog_coverage"] == pytest.approx(4 / 5)
    assert ds.stats["n_events"] == 5  # the event with an unknown item is kept
    assert any("1 of 5 events" in w and "missing from the catalog" in w for w in ds.warnings)
    assert rows(ds, "SELECT title FROM items WHERE item_id = 'i2'") == [("Two",)]


def test_users_file_gives_attributes(tmp_path: Path) -> None:
    users = pd.DataFrame({"user_id": ["u1", "u2", "u3"], "age": [31, 45, 22], "country": ["FR", "DE", "UK"]})
    ds = load(write_table(EVENTS, tmp_path / "e.csv"), users=write_table(users, tmp_path / "users.csv"))
    assert ds.has_user_attrs
    assert rows(ds, "SELECT user_id, age, country FROM user_attrs ORDER BY user_id")[0] == ("u1", 31, "FR")
    assert [i.role for i in ds.inputs] == ["events", "users"]


def test_users_file_keeps_leading_zeros(tmp_path: Path) -> None:
    ev = pd.DataFrame({"user_id": ["007", "042"], "item_id": ["a", "b"], "timestamp": ["2024-01-01"] * 2})
    users = pd.DataFrame({"id": ["007", "042"], "segment": ["x", "y"]})
    ds = load(write_table(ev, tmp_path / "e.csv"), users=write_table(users, tmp_path / "u.csv"))
    assert rows(ds, "SELECT user_id FROM user_attrs ORDER BY 1") == [("007",), ("042",)]
    assert ds.stats["user_attrs_coverage"] == 1.0


@pytest.mark.parametrize(("value_col", "values", "events", "kind"), [
    ("rating", [1, 2, 3, 4, 5], "interaction", "rating"),
    ("value", [1, 2, 3, 4, 5], "rating", "rating"),
    ("value", [1, 2, 3, 4, 5], "purchase", "amount"),
    ("amount", [9.99, 120.0, 3.5, 7.0, 1.0], "purchase", "amount"),
    ("rating", [10, 200, 30, 40, 50], "interaction", "amount"),
])
def test_value_kind_guess(tmp_path: Path, value_col: str, values: list, events: str, kind: str) -> None:
    df = EVENTS.drop(columns=["value"]).assign(event=events, **{value_col: values})
    assert load(write_table(df, tmp_path / "e.csv")).value_kind == kind


def test_value_kind_from_request_and_config(tmp_path: Path) -> None:
    path = write_table(EVENTS, tmp_path / "e.csv")
    assert load(path, cfg={"value_kind": "quantity"}).value_kind == "quantity"
    assert load(path, value_kind="rating", cfg={"value_kind": "quantity"}).value_kind == "rating"


def test_min_events_per_user_drops_light_users(tmp_path: Path) -> None:
    ds = load(write_table(EVENTS, tmp_path / "e.csv"), cfg={"min_events_per_user": 2})
    assert ds.stats["users_dropped_min_events"] == 1 and ds.stats["events_dropped_min_events"] == 1
    assert ds.stats["n_users"] == 2 and ds.stats["n_events"] == 4


# --- specialised loaders on tiny published-shape files ------------------------------------------

def tiny_movielens(folder: Path) -> Path:
    folder.mkdir()
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,3.5,964981247\n"
                                        "2,1,5.0,964982224\n", encoding="utf-8")
    (folder / "movies.csv").write_text('movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n'
                                       '2,"Misérables, Les (1995)",Drama\n3,Unknown Film,(no genres listed)\n', encoding="utf-8")
    (folder / "tags.csv").write_text("userId,movieId,tag,timestamp\n2,1,funny,1445714994\n2,1,pixar,1445714994\n",
                                     encoding="utf-8")
    return folder


def test_movielens_tiny(tmp_path: Path) -> None:
    folder = tiny_movielens(tmp_path / "ml")
    ds = load(folder)
    assert ds.loader == "movielens" and ds.value_kind == "rating" and ds.has_catalog
    assert dict(rows(ds, "SELECT event, count(*) FROM events GROUP BY 1")) == {"rating": 3, "tag": 2}
    assert rows(ds, "SELECT text, value FROM events WHERE event = 'tag' ORDER BY text") == [("funny", None), ("pixar", None)]
    items = {r[0]: r[1:] for r in rows(ds, "SELECT item_id, title, categories, description FROM items")}
    assert items["1"] == ("Toy Story (1995)", ["Adventure", "Animation"], "Released 1995.")
    assert items["2"][0] == "Misérables, Les (1995)"
    assert items["3"][1] == [] and items["3"][2] is None
    assert load(folder / "ratings.csv").loader == "movielens"


def test_online_retail_tiny(tmp_path: Path) -> None:
    header = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
    lines = [
        "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",
        "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",
        "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,2,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",
        "536366,22633,HAND WARMER UNION JACK,6,2010-12-01 08:28:00,1.85,17850,United Kingdom",
        "C536379,D,Discount,-1,2010-12-01 09:41:00,27.5,14527,United Kingdom",
        "536380,22961,JAM MAKING SET PRINTED,-3,2010-12-01 09:45:00,1.45,14527,United Kingdom",
        "536414,22139,,56,2010-12-01 11:52:00,0,,United Kingdom",
        "536415,22139,RETROSPOT TEA SET CERAMIC 11 PC ,5,2010-12-01 11:57:00,4.95,,United Kingdom",
        "536416,22139,RETROSPOT TEA SET CERAMIC 11 PC ,5,2010-12-01 12:00:00,0,12431,Australia",
        "536417,22139,RETROSPOT TEA SET CERAMIC 11 PC ,1,2010-12-02 12:00:00,4.95,12431,Australia",
    ]
    path = tmp_path / "retail.csv.gz"
    path.write_bytes(gzip.compress(("\n".join([header, *lines]) + "\n").encode()))
    ds = load(path)
    assert ds.loader == "online_retail" and ds.value_kind == "amount" and ds.has_user_attrs
    s = ds.stats
    assert (s["cancelled_dropped"], s["nonpositive_quantity_dropped"], s["missing_customer_dropped"],
            s["nonpositive_price_dropped"], s["duplicates_dropped"], s["lines_merged"]) == (1, 1, 2, 1, 1, 1)
    got = rows(ds, "SELECT user_id, item_id, round(value, 2) FROM events ORDER BY user_id, ts")
    assert got == [("12431", "22139", 4.95), ("17850", "85123A", 20.4), ("17850", "22633", 11.1)]
    items = {r[0]: r[1:] for r in rows(ds, "SELECT item_id, title, categories, price FROM items")}
    assert items["85123A"] == ("WHITE HANGING HEART T-LIGHT HOLDER", ["holder"], 2.55)
    assert items["22139"][1] == ["pc"]
    assert dict(rows(ds, "SELECT user_id, country FROM user_attrs")) == {"17850": "United Kingdom", "12431": "Australia"}
    assert any("cancelled" in w for w in ds.warnings) and any("CustomerID" in w for w in ds.warnings)


@pytest.mark.parametrize("form", ["txt", "csv"])
def test_cdnow_tiny(tmp_path: Path, form: str) -> None:
    if form == "txt":
        path = tmp_path / "CDNOW_master.txt"
        path.write_bytes(b" customer_id  date number_of_cds  dollar_value\r\n 00001 19970101  1   11.77\r\n"
                         b" 00002 19970112  1   12.00\r\n 00002 19970112  1   12.00\r\n")
    else:
        path = tmp_path / "cdnow_master.csv"
        path.write_text("customer_id,date,number_of_cds,dollar_value\n1,1997-01-01,1,11.77\n2,1997-01-12,1,12.00\n"
                        "2,1997-01-12,1,12.00\n", encoding="utf-8")
    ds = load(path)
    assert ds.loader == "cdnow" and ds.value_kind == "amount" and not ds.has_catalog
    assert rows(ds, "SELECT count(*), sum(value), count(DISTINCT user_id) FROM events")[0] == (3, pytest.approx(35.77), 2)
    assert rows(ds, "SELECT DISTINCT item_id, event FROM events") == [("cd", "purchase")]
    assert rows(ds, "SELECT count(*) FROM items")[0][0] == 0
    assert ds.stats["duplicates_dropped"] == 0 and ds.stats["cds_total"] == 3


# --- the real shared datasets -----------------------------------------------------------------

@pytest.mark.slow
def test_real_movielens(shared_data: Path) -> None:
    ds = load(shared_data / "movielens-ml-latest-small")
    assert ds.loader == "movielens" and ds.value_kind == "rating" and ds.has_catalog
    counts = dict(rows(ds, "SELECT event, count(*) FROM events GROUP BY 1"))
    assert counts["rating"] == 100_836 and counts["tag"] == 3_683
    assert rows(ds, "SELECT count(DISTINCT user_id) FROM events WHERE event = 'rating'")[0][0] == 610
    assert ds.stats["n_catalog_items"] == 9_742 and ds.stats["catalog_coverage"] == 1.0
    assert ds.stats["duplicates_dropped"] == 0
    assert rows(ds, "SELECT round(avg(value), 4) FROM events WHERE event = 'rating'")[0][0] == 3.5016
    assert rows(ds, "SELECT CAST(min(ts) AS VARCHAR) FROM events")[0][0] == "1996-03-29 18:36:55"
    assert rows(ds, "SELECT count(*) FROM items WHERE list_contains(categories, '(no genres listed)')")[0][0] == 0


@pytest.mark.slow
def test_real_online_retail(shared_data: Path) -> None:
    ds = load(shared_data / "uci-online-retail" / "online_retail.csv.gz")
    s = ds.stats
    assert ds.loader == "online_retail" and ds.value_kind == "amount" and ds.has_catalog and ds.has_user_attrs
    assert s["lines"] == 541_909
    assert s["cancelled_dropped"] == 9_288 and s["missing_customer_dropped"] > 100_000
    assert s["nonpositive_price_dropped"] > 0 and s["nonpositive_quantity_dropped"] > 0
    assert any("cancelled" in w for w in ds.warnings) and any("without a CustomerID" in w for w in ds.warnings)
    assert 4_300 <= s["n_users"] <= 4_372
    assert rows(ds, "SELECT min(value) > 0, bool_and(event = 'purchase') FROM events")[0] == (True, True)
    assert rows(ds, "SELECT count(*) FROM events WHERE contains(user_id, '.')")[0][0] == 0
    assert rows(ds, "SELECT count(*) FROM user_attrs WHERE user_id = '17850'")[0][0] == 1
    assert rows(ds, "SELECT categories FROM items WHERE item_id = '85123A'")[0][0] == ["holder"]


@pytest.mark.slow
def test_real_cdnow_txt_and_csv_agree(shared_data: Path) -> None:
    totals = []
    for name in ("CDNOW_master.txt", "cdnow_master.csv"):
        ds = load(shared_data / "cdnow" / name)
        assert ds.loader == "cdnow" and ds.value_kind == "amount" and not ds.has_catalog
        n, users, dollars, first, last = rows(
            ds, "SELECT count(*), count(DISTINCT user_id), round(sum(value), 2), CAST(min(ts) AS VARCHAR), "
                "CAST(max(ts) AS VARCHAR) FROM events")[0]
        assert (n, users, dollars) == (69_659, 23_570, 2_500_315.63)
        assert (first, last) == ("1997-01-01 00:00:00", "1998-06-30 00:00:00")
        assert ds.stats["cds_total"] == 167_881
        totals.append(rows(ds, "SELECT user_id, CAST(ts AS DATE), value FROM events ORDER BY ALL"))
    assert totals[0] == totals[1]


@pytest.mark.slow
@pytest.mark.parametrize(("rel", "loader"), [
    ("movielens-ml-latest-small", "movielens"),
    ("movielens-ml-latest-small/ratings.csv", "movielens"),
    ("uci-online-retail/online_retail.csv.gz", "online_retail"),
    ("cdnow/CDNOW_master.txt", "cdnow"),
    ("cdnow/cdnow_master.csv", "cdnow"),
    ("cdnow/CDNOW_sample.txt", "cdnow"),
    ("movielens-ml-latest-small/links.csv", "tabular"),
])
def test_sniffing_picks_the_right_loader(shared_data: Path, rel: str, loader: str) -> None:
    assert choose_loader(LoadRequest(events=shared_data / rel), CFG)[0] == loader


def test_timestamps_with_offsets_become_utc(tmp_path: Path) -> None:
    df = pd.DataFrame({"user_id": ["a", "b", "c", "d"], "item_id": ["x"] * 4,
                       "timestamp": ["2020-01-01T10:00:00+02:00", "2020-01-01T10:00:00Z",
                                     "2020-01-01 10:00:00-05:00", "2020-01-01 10:00"]})
    ds = load(write_table(df, tmp_path / "e.csv"))
    got = dict(rows(ds, "SELECT user_id, CAST(ts AS VARCHAR) FROM events"))
    assert got == {"a": "2020-01-01 08:00:00", "b": "2020-01-01 10:00:00", "c": "2020-01-01 15:00:00",
                   "d": "2020-01-01 10:00:00"}


def test_repeated_catalog_and_user_ids_keep_the_first_row_with_a_warning(tmp_path: Path) -> None:
    items = pd.DataFrame({"item_id": ["i1", "i1", "i2", None], "title": ["First", "Second", "Two", "Nobody"]})
    users = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "age": [31, 99, 45]})
    ds = load(write_table(EVENTS, tmp_path / "e.csv"), items=write_table(items, tmp_path / "items.csv"),
              users=write_table(users, tmp_path / "users.csv"))
    assert rows(ds, "SELECT title FROM items WHERE item_id = 'i1'") == [("First",)]
    assert rows(ds, "SELECT age FROM user_attrs WHERE user_id = 'u1'") == [(31,)]
    assert any("items.csv: 2 item rows with a repeated or empty id" in w for w in ds.warnings), ds.warnings
    assert any("users.csv: 1 user rows with a repeated or empty id" in w for w in ds.warnings), ds.warnings
    assert not rows(ds, "SELECT table_name FROM information_schema.tables WHERE table_name LIKE '%raw'")
