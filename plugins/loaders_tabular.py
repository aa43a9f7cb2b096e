"""The generic loader: one events table in CSV, TSV, Parquet or JSONL (optionally gzipped).

Columns are found through the user's mapping (--user-col ...) or common aliases; an optional items
file and users file add a catalog and user attributes. It is asked last when sniffing, because it
accepts any table and the specialised loaders know their datasets better.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from seglens import hookimpl, ingest
from seglens.model import Dataset, InputFile, LoadRequest

RATING_WORDS = ("rating", "rate", "score", "star", "review", "grade")
QUANTITY_WORDS = ("quantity", "qty", "count", "units")


class TabularLoader:
    """Reads a generic events table; see the module docstring."""

    name = "tabular"
    generic = True

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def sniff(self, path: Path) -> bool:
        return ingest.is_tabular_file(Path(path))

    def load(self, request: LoadRequest, con: Any) -> Dataset:
        src = ingest.stage(con, request.events, "_events_raw", "events")
        cols = ingest.resolve_event_columns(src, request.columns, request.options.get("explicit_columns", ()))
        ingest.stage_events(con, src, cols)
        inputs: list[InputFile] = [ingest.fingerprint(src.path, "events", src.format)]
        warnings: list[str] = []
        if request.items is not None:
            fp, warn = ingest.load_items(con, request.items, request.columns.item)
            inputs.append(fp)
            warnings += warn
        if request.users is not None:
            fp, warn = ingest.load_users(con, request.users, request.columns.user)
            inputs.append(fp)
            warnings += warn
        kind = guess_value_kind(con, cols) if cols.value else "none"
        return ingest.finish(con, loader=self.name, inputs=inputs, value_kind=kind, warnings=warnings,
                             items_file=request.items, users_file=request.users)


def guess_value_kind(con: Any, cols: ingest.EventColumns) -> str:
    """rating | quantity | amount, from the staged events (before the file is dropped).

    A rating needs both signs: few distinct values inside [0, 10] *and* a name that says so (the
    value column, or an event type like 'rating'); 1-5 purchase counts are otherwise amounts.
    Whole numbers in a column named like a quantity are a quantity.
    """
    n_distinct, lo, hi, whole = con.execute(
        "SELECT count(DISTINCT value), min(value), max(value), bool_and(value = floor(value)) "
        "FROM _events_stage WHERE value IS NOT NULL"
    ).fetchall()[0]
    if not n_distinct:
        return "none"
    events = [r[0].lower() for r in con.execute(
        "SELECT DISTINCT event FROM _events_stage WHERE event IS NOT NULL LIMIT 50").fetchall()]
    names = [str(cols.value).lower(), *events]
    if whole and any(w in name for name in names for w in QUANTITY_WORDS):
        return "quantity"
    if n_distinct <= 20 and lo >= 0 and hi <= 10 and any(w in name for name in names for w in RATING_WORDS):
        return "rating"
    return "amount"


@hookimpl
def register_loaders(register: Any) -> None:
    register("tabular", TabularLoader, description="generic events table: CSV, TSV, Parquet or JSONL (.gz too)")
