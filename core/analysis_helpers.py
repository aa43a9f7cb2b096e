"""Time periods and small helpers shared by the growth, lifecycle, value and prediction analyses.

Periods are counted backwards from the end of the data (midnight after the last event's day) in
whole calendar months or 7-day weeks, and only complete periods are kept. A partial first period
would look like a surge or a collapse that is only an artefact of where the log starts, and a
partial last one like a sudden drop, so both would mislead a growth rate or a forecast. Events
before the first complete period still count for "first seen" (a user met there is not new later).

The unit is monthly when the history spans at least ~6 months (182 days), else weekly, so a short
log still yields enough points for a trend; `analysis.period` = month | week forces one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from seglens.errors import SeglensError
from seglens.model import AnalysisContext

MONTH_MIN_SPAN_DAYS = 182
UNITS = ("month", "week")


def rnd(x: Any, nd: int | None = 3) -> Any:
    """A JSON-safe rounded float (None for missing, NaN or infinite), so facts stay small and valid.

    `nd=None` picks the decimals by magnitude: 3 below 10, 2 below 1000, 1 above.
    """
    if x is None:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return x
    if not math.isfinite(f):
        return None
    if nd is None:
        nd = 3 if abs(f) < 10 else 2 if abs(f) < 1000 else 1
    return round(f, nd)


def share(part: float, whole: float, nd: int = 4) -> float | None:
    return rnd(part / whole, nd) if whole else None


@dataclass
class Periods:
    """Complete periods, oldest first: period i is [edges[i], edges[i+1])."""

    unit: str
    edges: list[pd.Timestamp]
    first_ts: pd.Timestamp
    last_ts: pd.Timestamp

    @property
    def n(self) -> int:
        return max(0, len(self.edges) - 1)

    @property
    def end(self) -> pd.Timestamp:
        """Midnight after the last event's day: every period ends on a boundary like this."""
        return self.edges[-1]

    @property
    def span_days(self) -> float:
        return (self.last_ts - self.first_ts).total_seconds() / 86400.0

    @property
    def mean_days(self) -> float:
        return 30.44 if self.unit == "month" else 7.0

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({"idx": np.arange(self.n, dtype=np.int64),
                             "start": pd.to_datetime(self.edges[:-1]).astype("datetime64[us]"),
                             "stop": pd.to_datetime(self.edges[1:]).astype("datetime64[us]")})

    def start_of_last(self) -> pd.Timestamp:
        """Start of the last whole period (also defined when the history is shorter than one)."""
        return step_back(self.end, self.unit, 1)


def step_back(end: pd.Timestamp, unit: str, k: int) -> pd.Timestamp:
    # Always from the end (not iterated) so month lengths never drift: Mar 31 - 1 month = Feb 28.
    return end - pd.DateOffset(months=k) if unit == "month" else end - pd.Timedelta(weeks=k)


def history_bounds(con: Any) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    lo, hi = con.execute("SELECT min(ts), max(ts) FROM events").fetchall()[0]  # fetchall: leaves no open result
    if lo is None or hi is None:
        return None, None
    return pd.Timestamp(lo), pd.Timestamp(hi)


def choose_unit(first: pd.Timestamp, last: pd.Timestamp, option: Any = "auto") -> str:
    opt = str(option or "auto").strip().lower()
    opt = {"monthly": "month", "weekly": "week"}.get(opt, opt)
    if opt in UNITS:
        return opt
    if opt != "auto":
        raise SeglensError(f"unknown analysis.period '{option}'", hint="use auto, month or week")
    return "month" if (last - first).total_seconds() / 86400.0 >= MONTH_MIN_SPAN_DAYS else "week"


def make_periods(con: Any, option: Any = "auto") -> Periods | None:
    """The complete periods of this dataset's history, or None when it has no events."""
    first, last = history_bounds(con)
    if first is None:
        return None
    unit = choose_unit(first, last, option)
    end = last.normalize() + pd.Timedelta(days=1)
    start_day = first.normalize()
    edges = [end]
    k = 1
    while True:
        e = step_back(end, unit, k)
        if e < start_day:
            break
        edges.append(e)
        k += 1
    return Periods(unit=unit, edges=edges[::-1], first_ts=first, last_ts=last)


def members(ctx: AnalysisContext) -> pd.DataFrame:
    """user_id (text) and segment label, one row per user, in the run's user order."""
    return pd.DataFrame({"user_id": ctx.user_ids.astype(str),
                         "segment": np.asarray(ctx.segmentation.labels, dtype=np.int64)})


def segment_list(labels: np.ndarray) -> list[int]:
    """Every label present, real segments first then noise (-1), matching segments.json."""
    ids = sorted({int(s) for s in np.asarray(labels).tolist()})
    return [s for s in ids if s >= 0] + [s for s in ids if s < 0]


def ts_literal(ts: pd.Timestamp) -> str:
    return f"TIMESTAMP '{pd.Timestamp(ts).strftime('%Y-%m-%d %H:%M:%S')}'"


def md_table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
        return str(v).replace("|", "\\|")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)
