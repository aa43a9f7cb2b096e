"""CDNOW purchase histories (Fader & Hardie) as published, in any of its three shapes:

- CDNOW_master.txt: whitespace-separated, header `customer_id date number_of_cds dollar_value`,
  zero-padded ids, dates YYYYMMDD;
- cdnow_master.csv: the same rows as CSV, ids without zeros, dates YYYY-MM-DD;
- CDNOW_sample.txt: no header, five columns (master id, sample id, date, cds, dollars); the master
  id is used so that sample users are the same users as in the master file.

Each row is a 'purchase' event with value = dollar_value. There are no products, so every event has
item_id 'cd' and the catalog stays empty (has_catalog False). Ids lose their leading zeros, so the
txt and csv forms give identical user ids. number_of_cds is *not* kept per event (the events table
has no column for it and `text` is for words); only its total is recorded in stats['cds_total'].
Rows are not de-duplicated: without item ids or times of day, two equal rows on one day are two
real transactions (the published totals count them both).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from seglens import hookimpl, ingest
from seglens.errors import SeglensError
from seglens.model import Dataset, LoadRequest

HEADER = ["customer_id", "date", "number_of_cds", "dollar_value"]
_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?")


def whitespace_form(path: Path) -> str | None:
    """'master' or 'sample' for the whitespace-separated .txt forms, else None."""
    tokens = ingest.first_line(path).split()
    if [t.lower() for t in tokens] == HEADER:
        return "master"
    if len(tokens) == 5 and all(_NUMBER.fullmatch(t) for t in tokens) and len(tokens[2]) == 8:
        return "sample"
    return None


class CdnowLoader:
    """Reads the CDNOW master/sample files; see the module docstring."""

    name = "cdnow"

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def sniff(self, path: Path) -> bool:
        path = Path(path)
        if not path.is_file():
            return False
        return whitespace_form(path) is not None or [c.lower() for c in ingest.peek_columns(path)] == HEADER

    def load(self, request: LoadRequest, con: Any) -> Dataset:
        path = ingest.require_file(request.events, "events")
        form = whitespace_form(path)
        if form is None:
            raw = ingest.stage(con, path, "_cdnow_file", "events")
            ingest.require_columns(raw, HEADER)
            select = "SELECT customer_id, date, number_of_cds, dollar_value FROM _cdnow_file"
            fmt, first_row = raw.format, raw.first_row
        else:
            fmt, first_row = "txt", 2 if form == "master" else 1
            reader = (f"read_csv({ingest.literal(path)}, header={'true' if form == 'master' else 'false'}, "
                      "delim='\t', quote='', escape='', columns={'line': 'VARCHAR'})")
            ingest.stage(con, path, "_cdnow_file", "events", fmt=fmt, reader=reader)
            skip = 1 if form == "sample" else 0  # the sample's second field is its own sample id
            select = (f"SELECT p[1] AS customer_id, p[{2 + skip}] AS date, p[{3 + skip}] AS number_of_cds, "
                      f"p[{4 + skip}] AS dollar_value, len(p) AS n_fields "
                      "FROM (SELECT string_split_regex(trim(line), '\\s+') AS p FROM _cdnow_file)")
        con.execute(f"CREATE TABLE _cdnow_raw AS SELECT *, 'cd' AS item_id FROM ({select})")
        src = ingest.Source(path=path, table="_cdnow_raw", format=fmt, first_row=first_row,
                            types={r[0]: r[1] for r in con.execute("DESCRIBE _cdnow_raw").fetchall()})
        if form is not None:
            self._check_fields(con, src, 4 + (form == "sample"))
        con.execute("UPDATE _cdnow_raw SET customer_id = coalesce(nullif(ltrim(trim(CAST(customer_id AS VARCHAR)), '0'), ''), "
                    "CASE WHEN customer_id IS NOT NULL THEN '0' END)")
        ingest.check_numbers(con, src, "number_of_cds", what="number_of_cds")
        cols = ingest.EventColumns(user="customer_id", item="item_id", time="date", value="dollar_value")
        ingest.stage_events(con, src, cols, default_event="purchase")
        total = con.execute(f"SELECT sum({ingest.number_expr('number_of_cds', src.types['number_of_cds'])}) "
                            "FROM _cdnow_raw").fetchall()[0][0]
        stats = {"cds_total": int(total or 0), "form": form or "csv"}
        return ingest.finish(con, loader=self.name, inputs=[ingest.fingerprint(path, "events", fmt)],
                             value_kind="amount", stats=stats, dedup=False)

    @staticmethod
    def _check_fields(con: Any, src: ingest.Source, expected: int) -> None:
        hit = con.execute(f"SELECT rowid, n_fields FROM _cdnow_raw WHERE n_fields <> {expected} "
                          "ORDER BY rowid LIMIT 1").fetchall()
        hit = hit[0] if hit else None
        if hit is not None:
            raise SeglensError(f"expected {expected} whitespace-separated fields, found {hit[1]}",
                               file=src.path, row=src.row(hit[0]), hint="is this the CDNOW file as published?")


@hookimpl
def register_loaders(register: Any) -> None:
    register("cdnow", CdnowLoader, description="CDNOW master/sample purchase files (.txt or .csv)")
