"""Reading and validating input files: the part every loader shares, and `load_dataset`.

Everything happens inside DuckDB so that a multi-million-row file never becomes Python objects:
a file is copied once into a staging table (text formats as VARCHAR, so that *we* decide how a
value parses and can point at the exact row that does not), converted with SQL expressions into
the normalized `events` / `items` / `user_attrs` tables, and the staging tables are dropped.

Row numbers in errors are 1-based positions in the file: for CSV/TSV the header is line 1 (so the
first data row is row 2, as a text editor shows it); for JSONL the first line is row 1; for
Parquet the first record is row 1. A staging table's `rowid` follows file order (DuckDB keeps
insertion order), which is what makes that mapping cheap. (A CSV record with a quoted line break
spans two lines; rows after it are then numbered by record, one less than the editor's line.)
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import duckdb

from . import plugins
from .errors import SeglensError
from .model import EVENTS_SCHEMA, ITEMS_SCHEMA, VALUE_KINDS, ColumnMap, Dataset, InputFile, LoadRequest

FINAL_TABLES = ("events", "items", "user_attrs")
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
FLAGS = {"user": "--user-col", "item": "--item-col", "time": "--time-col", "event": "--event-col", "value": "--value-col"}
DEFAULT_COLUMNS = ColumnMap()

# Names accepted automatically when the default one is absent, compared after `_norm` (lowercase,
# letters and digits only), so userId, user_id and USER-ID are the same name.
ALIASES: dict[str, tuple[str, ...]] = {
    "user": ("userid", "user", "customerid", "customer", "clientid", "visitorid", "memberid", "accountid", "uid"),
    "item": ("itemid", "item", "movieid", "productid", "product", "sku", "asin", "articleid", "contentid", "iid"),
    "time": ("timestamp", "time", "date", "ts", "datetime", "eventtime", "createdat"),
    "event": ("event", "eventtype", "action", "interaction", "behavior", "behaviour"),
    "value": ("value", "rating", "amount", "price", "score", "revenue"),
    "text": ("text", "review", "reviewtext", "tag", "comment"),
}
TIME_HINT = "use ISO dates like 2024-05-31 or 2024-05-31 14:30:00, or integer epoch seconds (milliseconds also work)"


# --------------------------------------------------------------------------------------------
# Files: format, fingerprint, existence, a cheap look at the header
# --------------------------------------------------------------------------------------------

def file_format(path: Path) -> str:
    """csv | tsv | jsonl | parquet, with '.gz' appended for gzipped text (e.g. 'csv.gz')."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    ext = suffixes[-2] if gz and len(suffixes) > 1 else (suffixes[-1] if suffixes and not gz else "")
    fmt = _EXTENSIONS.get(ext)
    if fmt is None or (gz and fmt == "parquet"):
        raise SeglensError(
            f"cannot tell the file type from its name (extension '{''.join(suffixes) or 'none'}')",
            file=path,
            hint="name it .csv, .tsv, .parquet or .jsonl (optionally .gz), or pick a loader with --format",
        )
    return fmt + (".gz" if gz else "")


def is_tabular_file(path: Path) -> bool:
    """True for a file whose name says it is CSV, TSV, Parquet or JSONL (optionally .gz)."""
    try:
        file_format(path)
    except SeglensError:
        return False
    return Path(path).is_file()


def require_file(path: Path | None, role: str) -> Path:
    """The path as a readable, non-empty regular file, or an error that says what is wrong."""
    if path is None:
        raise SeglensError(f"no {role} file given")
    path = Path(path)
    if not path.exists():
        raise SeglensError(f"{role} file not found", file=path, hint="check the path")
    if path.is_dir():
        raise SeglensError(
            f"is a directory, but the {role} should be a file",
            file=path,
            hint="give the file inside it, or a --format whose loader reads folders (e.g. movielens)",
        )
    if path.stat().st_size == 0:
        raise SeglensError("file is empty (no data rows)", file=path, hint=f"give a {role} file with a header and rows")
    return path


def fingerprint(path: Path, role: str, fmt: str | None = None) -> InputFile:
    """Size and sha256 of a file, so the run manifest records exactly which bytes were read."""
    path = Path(path)
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return InputFile(role=role, path=str(path), format=fmt or file_format(path), bytes=path.stat().st_size,
                     sha256=digest.hexdigest())


def _open_binary(path: Path):
    return gzip.open(path, "rb") if str(path).lower().endswith(".gz") else open(path, "rb")


def first_line(path: Path) -> str:
    """The first line of a (possibly gzipped) text file, or '' if it cannot be read. For sniffing."""
    try:
        with _open_binary(Path(path)) as fh:
            raw = fh.readline(1 << 16)
    except (OSError, EOFError):
        return ""
    return raw.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")


def _delimiter(header: str, fmt: str) -> str:
    if fmt.startswith("tsv"):
        return "\t"
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def peek_columns(path: Path) -> list[str]:
    """Column names of a file without reading its body; [] when unknown. Used by `sniff`."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        fmt = file_format(path)
    except SeglensError:
        fmt = "csv"  # unknown extension: look at it as delimited text
    if fmt == "parquet":
        try:
            con = duckdb.connect()
            return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({literal(path)})").fetchall()]
        except duckdb.Error:
            return []
    line = first_line(path)
    if fmt.startswith("jsonl"):
        try:
            return list(json.loads(line).keys())
        except (ValueError, AttributeError):
            return []
    return [c.strip().strip('"').strip() for c in line.split(_delimiter(line, fmt))]


# --------------------------------------------------------------------------------------------
# Staging a file as a DuckDB table
# --------------------------------------------------------------------------------------------

@dataclass
class Source:
    """A file copied into a DuckDB table, plus what error messages need to point back into it."""

    path: Path
    table: str
    format: str
    types: dict[str, str]  # column -> DuckDB type, in file order
    first_row: int  # the file row number of the table's rowid 0

    @property
    def columns(self) -> list[str]:
        return list(self.types)

    def row(self, rowid: int) -> int:
        return int(rowid) + self.first_row


def ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def literal(value: Any) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def reader_sql(path: Path, fmt: str) -> str:
    """The DuckDB table function that reads `path`; CSV/TSV as VARCHAR, all strictly as UTF-8."""
    base = fmt.removesuffix(".gz")
    if base == "parquet":
        return f"read_parquet({literal(path)})"
    if base == "jsonl":
        return f"read_json({literal(path)}, format='auto')"
    delim = _delimiter(first_line(path), base)
    return f"read_csv({literal(path)}, header=true, delim={literal(delim)}, quote='\"', escape='\"', all_varchar=true)"


def stage(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    table: str,
    role: str,
    *,
    fmt: str | None = None,
    reader: str | None = None,
) -> Source:
    """Copy a file into table `table` (CSV/TSV as VARCHAR) and check it has rows.

    `reader` replaces the generated table function for unusual layouts (e.g. whitespace columns).
    """
    path = require_file(path, role)
    fmt = fmt or file_format(path)
    sql = reader or reader_sql(path, fmt)
    _utc(con)
    try:
        con.execute(f"CREATE OR REPLACE TABLE {ident(table)} AS SELECT * FROM {sql}")
    except duckdb.Error as exc:
        raise read_error(exc, path, fmt) from exc
    if con.execute(f"SELECT count(*) FROM {ident(table)}").fetchall()[0][0] == 0:
        raise SeglensError("file has no data rows", file=path, hint=f"give a {role} file with a header and at least one row")
    types = {r[0]: r[1] for r in con.execute(f"DESCRIBE {ident(table)}").fetchall()}
    first = 2 if fmt.removesuffix(".gz") in ("csv", "tsv") else 1
    return Source(path=path, table=table, format=fmt, types=types, first_row=first)


def read_error(exc: Exception, path: Path, fmt: str) -> SeglensError:
    """Turn a DuckDB reader failure into a one-line error naming the file and, if known, the row."""
    msg = str(exc)
    if re.search(r"invalid unicode|invalid utf-?8|not utf-?8 encoded", msg, re.IGNORECASE):
        return SeglensError(
            "is not valid UTF-8 text",
            file=path,
            row=first_non_utf8_line(path),
            hint="re-encode it as UTF-8, e.g. iconv -f latin1 -t utf-8 IN > OUT",
        )
    hint = "check the delimiter, quoting and that every row has the same number of fields"
    base = fmt.removesuffix(".gz")
    ragged = _first_ragged_line(path, base) if base in ("csv", "tsv") else None
    if ragged is not None:
        number, found, expected = ragged
        return SeglensError(f"expected {expected} fields like the header, found {found}", file=path, row=number, hint=hint)
    line = re.search(r"\bLine:? (\d+)", msg)
    first = next((ln for ln in msg.splitlines() if ln.strip() and not re.search(r"CSV Error on Line|^Original Line", ln)),
                 msg.splitlines()[0] if msg else "")
    first = re.sub(r"^[A-Za-z ]*Error: ", "", first)
    return SeglensError(f"cannot read it as {fmt}: {first}", file=path, row=int(line.group(1)) if line else None,
                        hint=hint)


def _first_ragged_line(path: Path, fmt: str) -> tuple[int, int, int] | None:
    """(line, fields, header fields) of the first row whose width differs from the header's.

    Only run after DuckDB refused the file, whose sniffer cannot always say where the problem is.
    """
    delim = _delimiter(first_line(path), fmt)
    try:
        with _open_binary(path) as fh:
            text = io.TextIOWrapper(fh, encoding="utf-8", errors="replace", newline="")
            reader = csv.reader(text, delimiter=delim)
            expected = len(next(reader, []))
            for row in reader:
                if row and len(row) != expected:
                    return reader.line_num, len(row), expected
    except (OSError, EOFError, csv.Error):
        return None
    return None


def first_non_utf8_line(path: Path) -> int | None:
    """The 1-based number of the first line that is not valid UTF-8 (only run after a failure)."""
    try:
        with _open_binary(Path(path)) as fh:
            for number, raw in enumerate(fh, start=1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    return number
    except (OSError, EOFError):
        return None
    return None


def _utc(con: duckdb.DuckDBPyConnection) -> None:
    """Timestamps are naive UTC; zone-aware inputs are converted in this session time zone."""
    try:
        con.execute("SET TimeZone = 'UTC'")
    except duckdb.Error:  # no ICU: zone-aware values then cannot occur either
        pass


# --------------------------------------------------------------------------------------------
# Column mapping
# --------------------------------------------------------------------------------------------

def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def resolve_column(source: Source, role: str, requested: str | None, *, required: bool = True,
                   explicit: bool = False) -> str | None:
    """The file's column for `role` (user, item, time, event, value, text).

    An explicit mapping (flagged by the caller, or a name differing from the ColumnMap default)
    must exist. Otherwise the default name is used if present, else a unique alias; two aliases at
    once is ambiguous, because guessing between them would silently analyse the wrong thing.
    """
    columns = source.columns
    default = getattr(DEFAULT_COLUMNS, role, None)
    flag = FLAGS.get(role)
    found = ", ".join(columns)
    if requested and (explicit or requested != default):
        if requested in columns:
            return requested
        matches = [c for c in columns if c.lower() == requested.lower()]
        if len(matches) == 1:
            return matches[0]
        raise SeglensError(
            f"no column '{requested}' (given with {flag}); columns found: {found}",
            file=source.path, column=requested, hint=f"use {flag} with one of those names",
        )
    if default and default in columns:
        return default
    aliases = ALIASES.get(role, ())
    matches = [c for c in columns if _norm(c) in aliases]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise SeglensError(
            f"ambiguous {role} column: {', '.join(matches)} could all be it",
            file=source.path, hint=f"say which with {flag} NAME" if flag else "rename the extra columns",
        )
    if not required:
        return None
    raise SeglensError(
        f"missing required {role} column (expected '{default}' or an alias); columns found: {found}",
        file=source.path, column=default, hint=f"use {flag} NAME to say which column holds the {role}",
    )


def pick_column(source: Source, names: Iterable[str]) -> str | None:
    """The first of `names` present in the file (compared loosely), for items/users files."""
    by_norm: dict[str, str] = {}
    for col in source.columns:
        by_norm.setdefault(_norm(col), col)
    for name in names:
        if name and _norm(name) in by_norm:
            return by_norm[_norm(name)]
    return None


# --------------------------------------------------------------------------------------------
# SQL expressions that normalize one column, by its DuckDB type
# --------------------------------------------------------------------------------------------

def _is_numeric(dtype: str) -> bool:
    return bool(re.match(r"(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|"
                         r"FLOAT|DOUBLE|DECIMAL|REAL)", dtype))


def _as_text(col: str, dtype: str) -> str:
    if dtype == "VARCHAR":
        return col
    if dtype == "JSON":
        return f"json_extract_string({col}, '$')"
    return f"CAST({col} AS VARCHAR)"


def id_expr(column: str, dtype: str) -> str:
    """An id as trimmed text; integral floats lose their '.0' so 17850.0 and 17850 are one id."""
    col = ident(column)
    if re.match(r"(FLOAT|DOUBLE|DECIMAL|REAL)", dtype):
        return (f"CASE WHEN isfinite(CAST({col} AS DOUBLE)) AND {col} = floor({col}) "
                f"THEN CAST(CAST({col} AS HUGEINT) AS VARCHAR) ELSE CAST({col} AS VARCHAR) END")
    text = f"nullif(trim({_as_text(col, dtype)}), '')"
    return (f"CASE WHEN {text} LIKE '%.0' AND regexp_full_match({text}, '[0-9]+\\.0+') "
            f"THEN regexp_replace({text}, '\\.0+$', '') ELSE {text} END")


def epoch_expr(number: str) -> str:
    """Epoch number to TIMESTAMP: seconds, or ms / µs / ns when too large to be seconds."""
    return (f"make_timestamp(try_cast(round(CASE WHEN abs({number}) >= 1e17 THEN {number} / 1e3 "
            f"WHEN abs({number}) >= 1e14 THEN {number} WHEN abs({number}) >= 1e11 THEN {number} * 1e3 "
            f"ELSE {number} * 1e6 END) AS BIGINT))")


def timestamp_expr(column: str, dtype: str) -> str:
    """A TIMESTAMP (naive UTC) from ISO text, YYYYMMDD, epoch numbers or native date types; NULL if unreadable."""
    col = ident(column)
    if dtype.startswith("TIMESTAMP") or dtype == "DATE":
        return f"CAST({col} AS TIMESTAMP)"
    if _is_numeric(dtype):
        return epoch_expr(f"CAST({col} AS DOUBLE)")
    t = f"nullif(trim({_as_text(col, dtype)}), '')"
    number = f"try_cast({t} AS DOUBLE)"
    # A cast to TIMESTAMP would silently ignore an offset like +02:00, so text that may carry one
    # goes through TIMESTAMPTZ (slower, hence only then) and is converted to UTC.
    zoned = f"(contains({t}, '+') OR ends_with({t}, 'Z') OR contains(substr({t}, 11), '-'))"
    return (
        f"coalesce(CASE WHEN {zoned} THEN CAST(try_cast({t} AS TIMESTAMPTZ) AS TIMESTAMP) "
        f"ELSE try_cast({t} AS TIMESTAMP) END, "
        f"CASE WHEN length({t}) = 8 AND regexp_full_match({t}, '[12][0-9]{{7}}') THEN try_strptime({t}, '%Y%m%d') END, "
        f"CASE WHEN regexp_full_match({t}, '-?[0-9]+(\\.[0-9]*)?') THEN {epoch_expr(number)} END, "
        f"CAST(try_cast({t} AS TIMESTAMPTZ) AS TIMESTAMP))"
    )


def number_expr(column: str, dtype: str) -> str:
    """A DOUBLE, NULL for empty text and also for text that is not a number (checked separately)."""
    col = ident(column)
    if _is_numeric(dtype):
        return f"CAST({col} AS DOUBLE)"
    return f"try_cast(nullif(trim({_as_text(col, dtype)}), '') AS DOUBLE)"


def text_expr(column: str | None, dtype: str = "VARCHAR") -> str:
    if column is None:
        return "CAST(NULL AS VARCHAR)"
    return f"nullif(trim({_as_text(ident(column), dtype)}), '')"


def check_numbers(con: duckdb.DuckDBPyConnection, source: Source, column: str, *, what: str,
                  flag: str | None = None, min_value: float | None = 0.0) -> None:
    """Every non-empty value of `column` must be a finite number (>= min_value): else name the row."""
    col, dtype = ident(column), source.types[column]
    text = f"nullif(trim({_as_text(col, dtype)}), '')"
    num = number_expr(column, dtype)
    bad_cond = f"({text} IS NOT NULL AND ({num} IS NULL OR NOT isfinite({num})))"
    if min_value is not None:
        bad_cond += f" OR {num} < {min_value}"
    hit = con.execute(
        f"SELECT rowid, {text}, {num} FROM {ident(source.table)} WHERE {bad_cond} ORDER BY rowid LIMIT 1"
    ).fetchall()
    hit = hit[0] if hit else None
    if hit is None:
        return
    rowid, raw, num_value = hit
    problem = "negative" if num_value is not None and num_value == num_value and num_value < (min_value or 0) else "not a number"
    hint = f"{what} must be a number >= {min_value:g}" if min_value is not None else f"{what} must be a number"
    if flag:
        hint += f"; if this is the wrong column, choose another with {flag} NAME"
    raise SeglensError(f"{what} '{raw}' is {problem}", file=source.path, row=source.row(rowid), column=column, hint=hint)


def check_timestamps(con: duckdb.DuckDBPyConnection, source: Source, column: str) -> None:
    """Every row of `column` must parse as a timestamp: else name the first row that does not.

    For loaders that build events with their own SQL; `stage_events` checks its own rows.
    """
    raw = text_expr(column, source.types[column])
    hit = con.execute(
        f"SELECT rowid, {raw} FROM {ident(source.table)} "
        f"WHERE {timestamp_expr(column, source.types[column])} IS NULL ORDER BY rowid LIMIT 1"
    ).fetchall()
    hit = hit[0] if hit else None
    if hit is not None:
        raise _bad_timestamp(source, column, hit[0], hit[1])


def _bad_timestamp(source: Source, column: str, rowid: int, raw: str | None) -> SeglensError:
    what = f"cannot read timestamp '{raw}'" if raw is not None else "timestamp is missing"
    return SeglensError(what, file=source.path, row=source.row(rowid), column=column,
                        hint=f"{TIME_HINT}; or choose another column with {FLAGS['time']} NAME")


def require_columns(source: Source, names: Iterable[str]) -> None:
    """For fixed published layouts: every name must be a column, else list what the file has."""
    missing = [n for n in names if n not in source.types]
    if missing:
        raise SeglensError(
            f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; columns found: "
            f"{', '.join(source.columns)}",
            file=source.path, column=missing[0],
            hint="is this the file as published? otherwise load it with --format tabular and --user-col etc.",
        )


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------

@dataclass
class EventColumns:
    """Which columns of the events file hold each field (None: absent)."""

    user: str
    item: str
    time: str
    event: str | None = None
    value: str | None = None
    text: str | None = None


def resolve_event_columns(source: Source, columns: ColumnMap, explicit: Iterable[str] = ()) -> EventColumns:
    """Apply the user's mapping and the aliases to the events file's header.

    `explicit` names the roles the user mapped on purpose (LoadRequest.options["explicit_columns"]),
    so that even `--user-col user_id` is checked strictly.
    """
    given = set(explicit)

    def col(role: str, required: bool = True) -> str | None:
        return resolve_column(source, role, getattr(columns, role), required=required, explicit=role in given)

    return EventColumns(user=col("user"), item=col("item"), time=col("time"), event=col("event", False),
                        value=col("value", False), text=resolve_column(source, "text", None, required=False))


def stage_events(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    cols: EventColumns,
    *,
    table: str = "_events_stage",
    default_event: str = "interaction",
    append: bool = False,
) -> None:
    """Convert a staged file into event rows; `seq` keeps file order across appended files.

    Fails with the file row on the first unreadable timestamp or bad value. Unparseable values
    become NaN in the single conversion pass, so the check costs no second parse of the file.
    """
    types = source.types
    event = (f"coalesce({text_expr(cols.event, types[cols.event])}, {literal(default_event)})"
             if cols.event else literal(default_event))
    value = "CAST(NULL AS DOUBLE)"
    if cols.value is not None:
        raw_value = text_expr(cols.value, types[cols.value])
        value = (number_expr(cols.value, types[cols.value]) if _is_numeric(types[cols.value]) else
                 f"CASE WHEN {raw_value} IS NOT NULL THEN coalesce(try_cast({raw_value} AS DOUBLE), 'NaN'::DOUBLE) END")
    base = con.execute(f"SELECT coalesce(max(seq) + 1, 0) FROM {ident(table)}").fetchall()[0][0] if append else 0
    select = (
        f"SELECT rowid + {base} AS seq, {id_expr(cols.user, types[cols.user])} AS user_id, "
        f"{id_expr(cols.item, types[cols.item])} AS item_id, {timestamp_expr(cols.time, types[cols.time])} AS ts, "
        f"{event} AS event, CAST({value} AS DOUBLE) AS value, "
        f"{text_expr(cols.text, types.get(cols.text or '', 'VARCHAR'))} AS text "
        f"FROM {ident(source.table)}"
    )
    if append:
        con.execute(f"INSERT INTO {ident(table)} {select}")
    else:
        con.execute(f"CREATE OR REPLACE TABLE {ident(table)} AS {select}")
    bad = con.execute(
        f"SELECT seq - {base}, ts IS NULL FROM {ident(table)} WHERE seq >= {base} "
        f"AND (ts IS NULL OR NOT isfinite(value) OR value < 0) ORDER BY seq LIMIT 1"
    ).fetchall()
    bad = bad[0] if bad else None
    if bad is None:
        return
    if not bad[1]:  # the first bad row has a bad value: let check_numbers word it
        check_numbers(con, source, cols.value, what="value", flag=FLAGS["value"])
    raw = con.execute(
        f"SELECT {text_expr(cols.time, types[cols.time])} FROM {ident(source.table)} WHERE rowid = {int(bad[0])}"
    ).fetchall()[0][0]
    raise _bad_timestamp(source, cols.time, bad[0], raw)


# --------------------------------------------------------------------------------------------
# Items and users files
# --------------------------------------------------------------------------------------------

def create_empty_items(con: duckdb.DuckDBPyConnection) -> None:
    cols = ", ".join(f"{name} {dtype}" for name, dtype in ITEMS_SCHEMA.items())
    con.execute(f"CREATE OR REPLACE TABLE items ({cols})")


def categories_expr(con: duckdb.DuckDBPyConnection, source: Source, column: str | None) -> str:
    """A VARCHAR[] of trimmed, non-empty categories (never NULL); text is split on the separator it uses.

    The separator is the first of '|', ';', ',' that occurs anywhere in the column, so 'a|b, c' splits
    on '|' only (commas inside a category name survive when pipes are the separator).
    """
    if column is None:
        return "CAST([] AS VARCHAR[])"
    col, dtype = ident(column), source.types[column]
    if dtype.endswith("[]"):
        return (f"coalesce(list_filter(list_transform(CAST({col} AS VARCHAR[]), lambda x: trim(x)), "
                f"lambda x: x IS NOT NULL AND x <> ''), [])")
    text = _as_text(col, dtype)
    found = con.execute(
        f"SELECT bool_or(contains({text}, '|')), bool_or(contains({text}, ';')), bool_or(contains({text}, ',')) "
        f"FROM {ident(source.table)}"
    ).fetchall()[0]
    sep = next((s for s, hit in zip("|;,", found) if hit), None)
    parts = f"string_split({text}, {literal(sep)})" if sep else f"[{text}]"
    return f"coalesce(list_filter(list_transform({parts}, lambda x: trim(x)), lambda x: x IS NOT NULL AND x <> ''), [])"


def load_items(con: duckdb.DuckDBPyConnection, path: Path, item_col: str | None = None) -> tuple[InputFile, list[str]]:
    """Read an items file into `items` (ITEMS_SCHEMA); returns its fingerprint and warnings.

    The id column is `item_id`, `id`, the --item-col name or an item alias; title, categories,
    description and price are found by their usual names and are all optional.
    """
    src = stage(con, path, "_items_raw", "items")
    names = [item_col, "item_id", "id", *ALIASES["item"]]
    id_col = pick_column(src, names)
    if id_col is None:
        raise SeglensError(
            f"no item id column (item_id or id); columns found: {', '.join(src.columns)}",
            file=src.path, column="item_id", hint="rename it, or give its name with --item-col NAME",
        )
    title = pick_column(src, ("title", "name", "item_name", "product_name", "movie_title"))
    cats = pick_column(src, ("categories", "category", "genres", "genre", "tags"))
    desc = pick_column(src, ("description", "desc", "summary", "overview"))
    price = pick_column(src, ("price", "unit_price", "unitprice", "cost"))
    if price is not None:
        check_numbers(con, src, price, what="price")
    t = src.types
    con.execute(f"""
        CREATE OR REPLACE TABLE items AS
        SELECT item_id, title, categories, description, price FROM (
            SELECT rowid AS rid, {id_expr(id_col, t[id_col])} AS item_id,
                   {text_expr(title, t.get(title or '', 'VARCHAR'))} AS title,
                   {categories_expr(con, src, cats)} AS categories,
                   {text_expr(desc, t.get(desc or '', 'VARCHAR'))} AS description,
                   {number_expr(price, t[price]) if price else 'CAST(NULL AS DOUBLE)'} AS price
            FROM _items_raw)
        WHERE item_id IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY item_id ORDER BY rid) = 1
        ORDER BY rid
    """)
    return fingerprint(src.path, "items", src.format), _dropped_rows(con, "_items_raw", "items", src, "item")


def load_users(con: duckdb.DuckDBPyConnection, path: Path, user_col: str | None = None) -> tuple[InputFile, list[str]]:
    """Read a users file into `user_attrs`: user_id (text) plus every other column.

    The id is `user_id`, `id`, the --user-col name or a user alias. Text columns of a CSV/TSV that
    hold only numbers become BIGINT or DOUBLE (ages, spend), except ids like '007' whose zeros matter.
    """
    src = stage(con, path, "_users_raw", "users")
    id_col = pick_column(src, [user_col, "user_id", "id", *ALIASES["user"]])
    if id_col is None:
        raise SeglensError(
            f"no user id column (user_id or id); columns found: {', '.join(src.columns)}",
            file=src.path, column="user_id", hint="rename it, or give its name with --user-col NAME",
        )
    others = [c for c in src.columns if c != id_col and _norm(c) != "userid"]
    extra = "".join(f", {_typed_attr(con, src, c)} AS {ident(c)}" for c in others)
    con.execute(f"""
        CREATE OR REPLACE TABLE user_attrs AS
        SELECT * EXCLUDE (rid) FROM (
            SELECT rowid AS rid, {id_expr(id_col, src.types[id_col])} AS user_id{extra} FROM _users_raw)
        WHERE user_id IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY rid) = 1
        ORDER BY rid
    """)
    return fingerprint(src.path, "users", src.format), _dropped_rows(con, "_users_raw", "user_attrs", src, "user")


def _dropped_rows(con: duckdb.DuckDBPyConnection, raw: str, table: str, src: Source, what: str) -> list[str]:
    """Drop the staged raw table; a warning if de-duplicating ids lost rows, so the count is never silent."""
    n_raw = con.execute(f"SELECT count(*) FROM {raw}").fetchall()[0][0]
    n = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    con.execute(f"DROP TABLE {raw}")
    if n < n_raw:
        return [f"{src.path}: {n_raw - n} {what} rows with a repeated or empty id were dropped (the first is kept)"]
    return []


def _typed_attr(con: duckdb.DuckDBPyConnection, src: Source, column: str) -> str:
    """The SQL for one attribute column: numbers as numbers when every value is one."""
    if src.types[column] != "VARCHAR":
        return ident(column)
    text = f"nullif(trim({ident(column)}), '')"
    not_int, not_num, zero_led = con.execute(
        f"SELECT count(*) FILTER (WHERE {text} IS NOT NULL AND try_cast({text} AS BIGINT) IS NULL), "
        f"count(*) FILTER (WHERE {text} IS NOT NULL AND try_cast({text} AS DOUBLE) IS NULL), "
        f"count(*) FILTER (WHERE regexp_full_match({text}, '-?0[0-9]+')) FROM {ident(src.table)}"
    ).fetchall()[0]
    if zero_led or not_num:
        return text
    return f"CAST({text} AS {'BIGINT' if not not_int else 'DOUBLE'})"


# --------------------------------------------------------------------------------------------
# Finishing: the three final tables, duplicates, coverage, stats
# --------------------------------------------------------------------------------------------

def finish(
    con: duckdb.DuckDBPyConnection,
    *,
    loader: str,
    inputs: list[InputFile],
    value_kind: str,
    warnings: list[str] | None = None,
    stats: dict[str, Any] | None = None,
    stage_table: str = "_events_stage",
    dedup: bool = True,
    items_file: Path | None = None,
    users_file: Path | None = None,
) -> Dataset:
    """Build `events` from the stage table and return the Dataset; drops every other table.

    Duplicates are rows equal on (user, item, ts, event, text); text is part of the key so two
    different tags given in the same second both survive. Loaders whose rows are separate
    transactions by construction (no item ids, day-resolution dates) pass dedup=False.
    """
    warnings = list(warnings or [])
    stats = dict(stats or {})
    n_stage, n_missing = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE user_id IS NULL OR item_id IS NULL) FROM {ident(stage_table)}"
    ).fetchall()[0]
    if n_missing:
        warnings.append(f"{n_missing} events without a user or item id were dropped")
    stats["missing_ids_dropped"] = int(n_missing)
    cols = "user_id, item_id, ts, event"
    if dedup:
        body = (f"SELECT {cols}, arg_min_null(value, seq) AS value, text, min(seq) AS _o "
                f"FROM {ident(stage_table)} WHERE user_id IS NOT NULL AND item_id IS NOT NULL "
                f"GROUP BY {cols}, text")
    else:
        body = (f"SELECT {cols}, value, text, seq AS _o FROM {ident(stage_table)} "
                f"WHERE user_id IS NOT NULL AND item_id IS NOT NULL")
    casts = ", ".join(f"CAST({name} AS {dtype}) AS {name}" for name, dtype in EVENTS_SCHEMA.items())
    con.execute(f"CREATE OR REPLACE TABLE events AS SELECT {casts} FROM ({body}) ORDER BY user_id, ts, _o")
    n_events = con.execute("SELECT count(*) FROM events").fetchall()[0][0]
    dups = int(n_stage - n_missing - n_events) + int(stats.get("duplicates_dropped", 0))
    stats["duplicates_dropped"] = dups
    if dups:
        warnings.append(f"{dups} duplicate events (same user, item, time and event) were dropped")
    if n_events == 0:
        raise SeglensError("no events left to analyse", file=inputs[0].path if inputs else None,
                           hint="check the warnings above: every row was dropped")
    if not _table_exists(con, "items"):
        create_empty_items(con)
    if not _table_exists(con, "user_attrs"):
        con.execute("CREATE TABLE user_attrs (user_id VARCHAR)")
    _check_items_match(con, items_file, warnings)
    _check_users_match(con, users_file, warnings, stats)
    for name in _tables(con):
        if name not in FINAL_TABLES:
            con.execute(f"DROP TABLE {ident(name)}")
    has_attrs = len(con.execute("DESCRIBE user_attrs").fetchall()) > 1 and \
        con.execute("SELECT count(*) FROM user_attrs").fetchall()[0][0] > 0
    ds = Dataset(con=con, inputs=inputs, value_kind=value_kind, has_user_attrs=has_attrs, loader=loader,
                 warnings=warnings, stats=stats)
    refresh_stats(ds)
    return ds


def _tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()").fetchall()]


def _table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return name in _tables(con)


def _check_items_match(con: duckdb.DuckDBPyConnection, items_file: Path | None, warnings: list[str]) -> None:
    """A catalog sharing no id with the events is a mistake; partial coverage is only a warning."""
    n_items = con.execute("SELECT count(*) FROM items").fetchall()[0][0]
    if n_items == 0:
        return
    n_events, covered = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE item_id IN (SELECT item_id FROM items)) FROM events"
    ).fetchall()[0]
    where = f" {items_file}" if items_file else ""
    if covered == 0:
        ev, it = con.execute("SELECT (SELECT min(item_id) FROM events), (SELECT min(item_id) FROM items)").fetchall()[0]
        raise SeglensError(
            f"no item id matches the events' item ids (events have e.g. '{ev}', items have e.g. '{it}')",
            file=items_file, column="item_id",
            hint="give the catalog of these events, or name its id column with --item-col NAME",
        )
    if covered < n_events:
        warnings.append(
            f"{n_events - covered} of {n_events} events ({100 * (1 - covered / n_events):.1f}%) refer to items "
            f"missing from the catalog{where}; they are kept (catalog coverage {covered / n_events:.1%})"
        )


def _check_users_match(con: duckdb.DuckDBPyConnection, users_file: Path | None, warnings: list[str],
                       stats: dict[str, Any]) -> None:
    if users_file is None:
        return
    n_users, covered = con.execute(
        "SELECT count(DISTINCT user_id), count(DISTINCT user_id) FILTER "
        "(WHERE user_id IN (SELECT user_id FROM user_attrs)) FROM events"
    ).fetchall()[0]
    stats["user_attrs_coverage"] = covered / n_users if n_users else None
    if covered < n_users:
        warnings.append(f"{n_users - covered} of {n_users} users have no row in {users_file}")


def refresh_stats(ds: Dataset) -> None:
    """Recompute the counts (after a loader or a filter changed `events`) and `has_catalog`."""
    con = ds.con
    n_events, n_users, n_items, first, last = con.execute(
        "SELECT count(*), count(DISTINCT user_id), count(DISTINCT item_id), min(ts), max(ts) FROM events"
    ).fetchall()[0]
    n_catalog = con.execute("SELECT count(*) FROM items").fetchall()[0][0]
    coverage = None
    titled = 0
    if n_catalog:
        covered, titled = con.execute(
            "SELECT count(*) FILTER (WHERE i.item_id IS NOT NULL), count(*) FILTER (WHERE i.title IS NOT NULL) "
            "FROM events e LEFT JOIN items i USING (item_id)"
        ).fetchall()[0]
        coverage = covered / n_events if n_events else None
    ds.has_catalog = titled > 0
    ds.stats.update(
        n_events=int(n_events), n_users=int(n_users), n_items=int(n_items), n_catalog_items=int(n_catalog),
        catalog_coverage=coverage, first_ts=str(first) if first else None, last_ts=str(last) if last else None,
    )


# --------------------------------------------------------------------------------------------
# The entry point
# --------------------------------------------------------------------------------------------

def new_connection() -> duckdb.DuckDBPyConnection:
    """A fresh in-memory database whose session time zone is UTC."""
    con = duckdb.connect(":memory:")
    _utc(con)
    return con


def choose_loader(request: LoadRequest, load_cfg: dict[str, Any]) -> tuple[str, Any]:
    """The loader named by the request or config, else the first whose sniff() accepts the path.

    Specialised loaders are asked before generic ones (those with `generic = True`), so a MovieLens
    folder or the UCI retail file is never read as a plain table.
    """
    name = next((n for n in (request.format, load_cfg.get("format")) if n not in (None, "", "auto")), None)
    if name:
        return name, plugins.create("loader", name, load_cfg)
    path = Path(request.events)
    if not path.exists():
        raise SeglensError("events file not found", file=path, hint="check the path")
    regs = plugins.registrations("loader")
    candidates = [(n, plugins.create("loader", n, load_cfg)) for n in sorted(regs)]
    candidates.sort(key=lambda pair: bool(getattr(pair[1], "generic", False)))
    for n, loader in candidates:
        if loader.sniff(path):
            return n, loader
    if path.is_dir():
        require_file(path, "events")  # raises: a folder no loader understands
    raise SeglensError(
        "cannot tell which loader reads this file",
        file=path, hint=f"pick one with --format NAME (available: {', '.join(sorted(regs)) or 'none'})",
    )


def load_dataset(request: LoadRequest, load_cfg: dict[str, Any]) -> Dataset:
    """Load and validate the request's files into a fresh in-memory DuckDB and return the Dataset."""
    load_cfg = dict(load_cfg or {})
    name, loader = choose_loader(request, load_cfg)
    con = new_connection()
    ds = loader.load(request, con)
    ds.loader = ds.loader or name
    ds.value_kind = _value_kind(request, load_cfg, ds.value_kind)
    _drop_light_users(ds, int(load_cfg.get("min_events_per_user", 1) or 1))
    refresh_stats(ds)
    return ds


def _value_kind(request: LoadRequest, load_cfg: dict[str, Any], chosen: str) -> str:
    kind = next((k for k in (request.value_kind, load_cfg.get("value_kind")) if k not in (None, "", "auto")), None)
    kind = kind or chosen or "none"
    if kind not in VALUE_KINDS:
        raise SeglensError(f"unknown value kind '{kind}'", hint=f"use one of: auto, {', '.join(VALUE_KINDS)}")
    return kind


def _drop_light_users(ds: Dataset, min_events: int) -> None:
    """Users with too few events say little about a segment; drop them and record how many."""
    ds.stats["users_dropped_min_events"] = 0
    ds.stats["events_dropped_min_events"] = 0
    if min_events <= 1:
        return
    con = ds.con
    users, events = con.execute(
        f"SELECT count(*), coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM events GROUP BY user_id) "
        f"WHERE n < {min_events}"
    ).fetchall()[0]
    if not users:
        return
    con.execute(f"DELETE FROM events WHERE user_id IN "
                f"(SELECT user_id FROM events GROUP BY user_id HAVING count(*) < {min_events})")
    ds.stats["users_dropped_min_events"] = int(users)
    ds.stats["events_dropped_min_events"] = int(events)
    ds.warnings.append(f"{users} users with fewer than {min_events} events were dropped ({events} events)")
    if con.execute("SELECT count(*) FROM events").fetchall()[0][0] == 0:
        raise SeglensError(f"no user has at least {min_events} events",
                           hint="lower load.min_events_per_user (e.g. --set load.min_events_per_user=1)")
