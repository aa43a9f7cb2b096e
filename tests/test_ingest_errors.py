"""One test per kind of bad input: the SeglensError's one line names the file and the row, column or
value at fault, and says what to do (real files, real DuckDB)."""
from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from seglens.errors import SeglensError
from seglens.ingest import load_dataset
from seglens.model import ColumnMap, LoadRequest

CFG = {"format": "auto", "value_kind": "auto", "min_events_per_user": 1}
HEADER = "user_id,item_id,timestamp,value"


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def error(events: Path, cfg: dict | None = None, **kw) -> str:
    with pytest.raises(SeglensError) as info:
        load_dataset(LoadRequest(events=events, **kw), {**CFG, **(cfg or {})})
    line = info.value.one_line()
    assert "\n" not in line
    return line


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    line = error(path)
    assert str(path) in line and "not found" in line


def test_missing_file_with_explicit_format(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    assert str(path) in error(path, cfg={"format": "tabular"})


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    line = error(path)
    assert str(path) in line and "empty" in line


@pytest.mark.parametrize("name", ["header_only.csv", "header_only.csv.gz"])
def test_header_without_rows(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    data = (HEADER + "\n").encode()
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    line = error(path)
    assert str(path) in line and "no data rows" in line


def test_directory_instead_of_file(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    write(folder / "something.csv", HEADER, "u,i,2024-01-01,1")
    line = error(folder)
    assert str(folder) in line and "directory" in line
    assert str(folder) in error(folder, cfg={"format": "tabular"})


def test_missing_required_column_lists_columns_and_flag(tmp_path: Path) -> None:
    path = write(tmp_path / "e.csv", "who,item_id,timestamp", "u1,i1,2024-01-01")
    line = error(path)
    assert str(path) in line and "column 'user_id'" in line
    assert "who, item_id, timestamp" in line and "--user-col" in line


def test_explicit_mapping_to_absent_column(tmp_path: Path) -> None:
    path = write(tmp_path / "e.csv", HEADER, "u1,i1,2024-01-01,1")
    line = error(path, columns=ColumnMap(time="when"))
    assert str(path) in line and "'when'" in line and "--time-col" in line


def test_explicit_default_name_is_checked_strictly(tmp_path: Path) -> None:
    path = write(tmp_path / "e.csv", "userId,item_id,timestamp", "u1,i1,2024-01-01")
    line = error(path, options={"explicit_columns": ["user"]})
    assert "'user_id'" in line and "--user-col" in line


def test_ambiguous_aliases(tmp_path: Path) -> None:
    path = write(tmp_path / "e.csv", "userId,customer_id,item_id,timestamp", "u1,c1,i1,2024-01-01")
    line = error(path)
    assert str(path) in line and "ambiguous" in line and "userId" in line and "customer_id" in line
    assert "--user-col" in line


def test_unparseable_timestamp_names_row_and_value(tmp_path: Path) -> None:
    path = write(tmp_path / "e.csv", HEADER, "u1,i1,2024-01-01,1", "u1,i2,2024-01-02,1", "u2,i1,next tuesday,2")
    line = error(path)
    assert str(path) in line and "row 4" in line and "column 'timestamp'" in line and "'next tuesday'" in line
    assert "ISO" in line


def test_missing_timestamp_in_jsonl_counts_lines_from_one(tmp_path: Path) -> None:
    path = write(tmp_path / "e.jsonl", '{"user_id": "u1", "item_id": "i1", "timestamp": "2024-01-01"}',
                 '{"user_id": "u1", "item_id": "i2", "timestamp": null}')
    line = error(path)
    assert str(path) in line and "row 2" in line and "missing" in line


def test_non_utf8_text(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"user_id,item_id,timestamp\nu1,i1,2024-01-01\nu2,caf\xe9,2024-01-02\n")
    line = error(path)
    assert str(path) in line and "row 3" in line and "UTF-8" in line and "re-encode" in line


def test_non_utf8_gzipped_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"user_id": "u1", "item_id": "i1", "timestamp": "2024-01-01"}\n'
                                   b'{"user_id": "u\xff", "item_id": "i1", "timestamp": "2024-01-01"}\n'))
    line = error(path)
    assert str(path) in line and "row 2" in line and "UTF-8" in line


def test_non_numeric_value(tmp_path: Path) -> None:
    path = write(tmp_path / "e.csv", HEADER, "u1,i1,2024-01-01,1.5", "u1,i2,2024-01-02,lots")
    line = error(path)
    assert str(path) in line and "row 3" in line and "column 'value'" in line and "'lots'" in line
    assert "--value-col" in line


def test_negative_value(tmp_path: Path) -> None:
    path = write(tmp_path / "e.tsv", "user_id\titem_id\ttimestamp\tvalue", "u1\ti1\t2024-01-01\t-4")
    line = error(path)
    assert str(path) in line and "row 2" in line and "'-4'" in line and "negative" in line


def test_items_file_matching_no_event(tmp_path: Path) -> None:
    events = write(tmp_path / "e.csv", HEADER, "u1,i1,2024-01-01,1")
    items = write(tmp_path / "items.csv", "item_id,title", "x9,Other")
    line = error(events, items=items)
    assert str(items) in line and "'i1'" in line and "'x9'" in line and "--item-col" in line


def test_items_bad_price(tmp_path: Path) -> None:
    events = write(tmp_path / "e.csv", HEADER, "u1,i1,2024-01-01,1")
    items = write(tmp_path / "items.csv", "item_id,title,price", "i1,One,2.5", "i2,Two,-1")
    line = error(events, items=items)
    assert str(items) in line and "row 3" in line and "column 'price'" in line and "'-1'" in line


def test_items_without_id_column(tmp_path: Path) -> None:
    events = write(tmp_path / "e.csv", HEADER, "u1,i1,2024-01-01,1")
    items = write(tmp_path / "items.csv", "code,title", "i1,One")
    line = error(events, items=items)
    assert str(items) in line and "code, title" in line and "--item-col" in line


def test_ragged_csv_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "e.csv", HEADER, "u1,i1,2024-01-01,1", "u1,i2,2024-01-02,1,extra", "u2,i1,2024-01-03,1")
    line = error(path)
    assert str(path) in line and "row 3" in line and "expected 4 fields" in line and "found 5" in line


def test_unknown_extension(tmp_path: Path) -> None:
    path = write(tmp_path / "events.xlsx", "whatever")
    line = error(path)
    assert str(path) in line and "--format" in line


def test_min_events_leaves_no_user(tmp_path: Path) -> None:
    path = write(tmp_path / "e.csv", HEADER, "u1,i1,2024-01-01,1")
    assert "min_events_per_user" in error(path, cfg={"min_events_per_user": 5})


def test_online_retail_missing_column(tmp_path: Path) -> None:
    path = write(tmp_path / "retail.csv", "InvoiceNo,StockCode,Quantity,CustomerID", "536365,85123A,6,17850")
    line = error(path)
    assert str(path) in line and "Description" in line and "column 'Description'" in line


def test_online_retail_bad_quantity(tmp_path: Path) -> None:
    path = write(tmp_path / "retail.csv", "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country",
                 "536365,85123A,HOLDER,six,2010-12-01 08:26:00,2.55,17850,United Kingdom")
    line = error(path)
    assert "row 2" in line and "column 'Quantity'" in line and "'six'" in line


def test_cdnow_txt_wrong_field_count(tmp_path: Path) -> None:
    path = tmp_path / "CDNOW_master.txt"
    path.write_bytes(b" customer_id  date number_of_cds  dollar_value\r\n 00001 19970101  1   11.77\r\n 00002 19970112  1\r\n")
    line = error(path)
    assert str(path) in line and "row 3" in line and "found 3" in line


def test_cdnow_bad_date(tmp_path: Path) -> None:
    path = write(tmp_path / "cdnow_master.csv", "customer_id,date,number_of_cds,dollar_value", "1,1997-13-45,1,11.77")
    line = error(path)
    assert "row 2" in line and "column 'date'" in line and "'1997-13-45'" in line
