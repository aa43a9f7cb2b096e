"""UCI Online Retail as published: one row per invoice line of a UK gift retailer (2010-2011).

Columns: InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID, Country.

Events: each kept invoice line is a 'purchase' by CustomerID of StockCode at InvoiceDate, with
value = Quantity x UnitPrice (GBP). Lines are dropped, and counted under the first reason that
applies, in this order:
  1. cancelled          - InvoiceNo starts with 'C' (a cancellation, quantity negative)
  2. nonpositive_quantity - Quantity <= 0 without a 'C' invoice (stock adjustments, damages)
  3. missing_customer   - no CustomerID (guest checkouts); segments need a user
  4. nonpositive_price  - UnitPrice <= 0 (free samples, bad-debt adjustments)
Exact duplicate lines (all eight columns equal, a known flaw of this table) count as duplicates;
remaining lines of the same customer, item and invoice time are summed into one event, because a
basket listing an item twice is still one purchase of it.

Items: StockCode, with the most frequent Description as title, the median UnitPrice as price, and
one coarse category: the head noun of the title, taken as its last alphabetic word, lowercased
('WHITE HANGING HEART T-LIGHT HOLDER' -> 'holder', 'SET 7 BABUSHKA NESTING BOXES' -> 'boxes').
User attributes: the customer's (most frequent) Country.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from seglens import hookimpl, ingest
from seglens.model import Dataset, LoadRequest

COLUMNS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country")
REASONS = ("cancelled", "nonpositive_quantity", "missing_customer", "nonpositive_price")
MESSAGES = {
    "cancelled": "cancelled invoice lines (InvoiceNo starting with 'C')",
    "nonpositive_quantity": "lines with zero or negative Quantity",
    "missing_customer": "lines without a CustomerID",
    "nonpositive_price": "lines with UnitPrice <= 0",
}


class OnlineRetailLoader:
    """Reads the UCI Online Retail table; see the module docstring."""

    name = "online_retail"

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def sniff(self, path: Path) -> bool:
        columns = {c.lower() for c in ingest.peek_columns(Path(path))}
        return {"invoiceno", "stockcode", "customerid"} <= columns

    def load(self, request: LoadRequest, con: Any) -> Dataset:
        src = ingest.stage(con, request.events, "_retail_raw", "events")
        ingest.require_columns(src, COLUMNS)
        ingest.check_numbers(con, src, "Quantity", what="Quantity", min_value=None)
        ingest.check_numbers(con, src, "UnitPrice", what="UnitPrice", min_value=None)
        ingest.check_timestamps(con, src, "InvoiceDate")
        t = src.types
        con.execute(f"""
            CREATE TABLE _retail AS SELECT *,
                CASE WHEN starts_with(upper(invoice), 'C') THEN 'cancelled'
                     WHEN quantity <= 0 THEN 'nonpositive_quantity'
                     WHEN user_id IS NULL THEN 'missing_customer'
                     WHEN price <= 0 THEN 'nonpositive_price' END AS reason
            FROM (SELECT rowid AS seq, trim(InvoiceNo) AS invoice,
                         {ingest.id_expr('StockCode', t['StockCode'])} AS item_id,
                         {ingest.text_expr('Description')} AS title,
                         {ingest.number_expr('Quantity', t['Quantity'])} AS quantity,
                         {ingest.timestamp_expr('InvoiceDate', t['InvoiceDate'])} AS ts,
                         {ingest.number_expr('UnitPrice', t['UnitPrice'])} AS price,
                         {ingest.id_expr('CustomerID', t['CustomerID'])} AS user_id,
                         {ingest.text_expr('Country')} AS country
                  FROM _retail_raw)
        """)
        counts = dict(con.execute("SELECT reason, count(*) FROM _retail WHERE reason IS NOT NULL GROUP BY reason").fetchall())
        stats: dict[str, Any] = {"lines": con.execute("SELECT count(*) FROM _retail").fetchall()[0][0]}
        warnings = []
        for reason in REASONS:
            stats[f"{reason}_dropped"] = int(counts.get(reason, 0))
            if counts.get(reason):
                warnings.append(f"{counts[reason]} {MESSAGES[reason]} were dropped")
        con.execute("""
            CREATE TABLE _retail_kept AS SELECT * FROM _retail WHERE reason IS NULL
            QUALIFY row_number() OVER (PARTITION BY invoice, item_id, title, quantity, ts, price, user_id, country
                                       ORDER BY seq) = 1
        """)
        n_valid = con.execute("SELECT count(*) FROM _retail WHERE reason IS NULL").fetchall()[0][0]
        n_kept = con.execute("SELECT count(*) FROM _retail_kept").fetchall()[0][0]
        stats["duplicates_dropped"] = int(n_valid - n_kept)
        con.execute("""
            CREATE TABLE _events_stage AS
            SELECT min(seq) AS seq, user_id, item_id, ts, 'purchase' AS event, sum(quantity * price) AS value,
                   CAST(NULL AS VARCHAR) AS text
            FROM _retail_kept GROUP BY user_id, item_id, ts
        """)
        n_events = con.execute("SELECT count(*) FROM _events_stage").fetchall()[0][0]
        stats["lines_merged"] = int(n_kept - n_events)
        if stats["lines_merged"]:
            warnings.append(f"{stats['lines_merged']} repeated lines of an item in the same invoice were summed")
        build_items(con)
        con.execute("""
            CREATE TABLE user_attrs AS
            SELECT user_id, country FROM (
                SELECT user_id, country, count(*) AS n FROM _retail_kept GROUP BY ALL)
            QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY n DESC, country) = 1
            ORDER BY user_id
        """)
        return ingest.finish(con, loader=self.name, inputs=[ingest.fingerprint(src.path, "events", src.format)],
                             value_kind="amount", warnings=warnings, stats=stats)


def build_items(con: Any) -> None:
    """Catalog from the kept lines: the most frequent description, the median price, the head noun."""
    con.execute("""
        CREATE TABLE items AS
        WITH titles AS (
            SELECT item_id, title, count(*) AS n FROM _retail_kept WHERE title IS NOT NULL GROUP BY ALL),
        best AS (
            SELECT item_id, title FROM titles
            QUALIFY row_number() OVER (PARTITION BY item_id ORDER BY n DESC, title) = 1),
        prices AS (SELECT item_id, median(price) AS price FROM _retail_kept GROUP BY item_id)
        SELECT p.item_id, b.title,
               CASE WHEN b.title IS NULL THEN CAST([] AS VARCHAR[]) ELSE
                    list_filter([regexp_extract(lower(b.title), '([a-z]+)[^a-z]*$', 1)], lambda c: c <> '') END
                   AS categories,
               CAST(NULL AS VARCHAR) AS description, CAST(p.price AS DOUBLE) AS price
        FROM prices p LEFT JOIN best b USING (item_id)
        ORDER BY p.item_id
    """)


@hookimpl
def register_loaders(register: Any) -> None:
    register("online_retail", OnlineRetailLoader, description="UCI Online Retail invoice lines (CSV, .gz too)")
