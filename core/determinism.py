"""Bitwise repeatable results from DuckDB.

Parallel aggregation sums floating-point numbers in whatever order threads finish, so two runs can
differ in the last bit; UMAP then amplifies a 1e-8 difference into a different layout. Queries whose
float aggregates feed vectors run on one thread.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator


@contextmanager
def single_threaded(con: Any) -> Iterator[Any]:
    threads = con.execute("SELECT current_setting('threads')").fetchall()[0][0]
    con.execute("SET threads TO 1")
    try:
        yield con
    finally:
        con.execute(f"SET threads TO {int(threads)}")
