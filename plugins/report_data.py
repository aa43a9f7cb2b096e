"""Reading a run folder for a report, shared by the HTML and JSON reporters.

Reports are written after every run, re-describe and edit, so reading must never be what fails:
a missing or unreadable file is an empty value (and a warning in the log), a value of an unexpected
type becomes an empty dict or list, and numpy values, NaN and infinities become plain JSON.
"""
from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

_STAGING = re.compile(r"^\.(?P<name>.+)\.edit-partial$")


def clean(obj: Any) -> Any:
    """`obj` with only JSON types: numpy scalars and arrays unwrapped, NaN and inf as None, dates as
    ISO text, anything else as its text."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [clean(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(float(obj)) else None
    if obj is None or isinstance(obj, str):
        return obj
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return str(obj)


def as_dict(x: Any) -> dict[str, Any]:
    """`x` if it is a dict, else an empty one (facts written by another plugin may have any shape)."""
    return x if isinstance(x, dict) else {}


def as_list(x: Any) -> list[Any]:
    return x if isinstance(x, list) else []


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except (OSError, ValueError):
        log.warning("could not read %s", path)
        return {}


def read_parquet(path: Path):
    if not path.exists():
        return None
    try:
        import pandas as pd

        return pd.read_parquet(path)
    except Exception as exc:  # a table another plugin writes differently must not sink the report
        log.warning("could not read %s: %s", path, exc)
        return None


def run_name(path: Path) -> str:
    """The run's name as the user chose it, also while a report is written inside a staging folder
    (`RUN.partial` during a run, `.RUN.edit-partial` during an edit)."""
    name = Path(path).name
    m = _STAGING.match(name)
    return m.group("name") if m else name.removesuffix(".partial")
