"""The small dataclasses that pass between pipeline stages.

Stages never share mutable state: each takes these values in and returns new ones, and the pipeline
persists them through the run folder. Large tables stay in DuckDB or NumPy, never lists of dicts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# The normalized tables every loader produces inside the dataset's DuckDB connection.
EVENTS_SCHEMA = {
    "user_id": "VARCHAR",
    "item_id": "VARCHAR",
    "ts": "TIMESTAMP",
    "event": "VARCHAR",
    "value": "DOUBLE",
    "text": "VARCHAR",
}
ITEMS_SCHEMA = {
    "item_id": "VARCHAR",
    "title": "VARCHAR",
    "categories": "VARCHAR[]",
    "description": "VARCHAR",
    "price": "DOUBLE",
}

VALUE_KINDS = ("rating", "amount", "quantity", "none")


@dataclass
class ColumnMap:
    """Names of the event columns in the user's file (mapped with --user-col and friends)."""

    user: str = "user_id"
    item: str = "item_id"
    time: str = "timestamp"
    event: str = "event"
    value: str = "value"


@dataclass
class LoadRequest:
    """What the user asked to load; a loader turns it into a Dataset."""

    events: Path
    items: Path | None = None
    users: Path | None = None
    columns: ColumnMap = field(default_factory=ColumnMap)
    format: str | None = None
    value_kind: str | None = None  # None: the loader decides (ratings, amounts...)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class InputFile:
    """One input file and a fingerprint, so a manifest records exactly what a run read."""

    role: str  # events | items | users
    path: str
    format: str
    bytes: int
    sha256: str


@dataclass
class Dataset:
    """Loaded, validated input held in DuckDB tables `events`, `items` and `user_attrs`.

    `items` always exists (possibly empty) so later stages need no special case; `has_catalog` says
    whether it carries real text.
    """

    con: Any  # duckdb.DuckDBPyConnection
    inputs: list[InputFile]
    value_kind: str = "none"
    has_catalog: bool = False
    has_user_attrs: bool = False
    loader: str = ""
    warnings: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def count(self, table: str) -> int:
        return int(self.con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])


@dataclass
class UserFeatures:
    """Behaviour features, one row per user, in the order every later array uses."""

    table: Any  # pandas.DataFrame with a user_id column first
    category_columns: list[str] = field(default_factory=list)

    @property
    def user_ids(self) -> np.ndarray:
        return self.table["user_id"].to_numpy(dtype=object)


@dataclass
class Histories:
    """Each user's history rendered as text (only built when a stage needs it)."""

    user_ids: np.ndarray
    texts: list[str]


@dataclass
class Embeddings:
    """L2-normalized float32 user vectors, row i belonging to user_ids[i]."""

    user_ids: np.ndarray
    vectors: np.ndarray
    strategy: str
    model: str
    item_ids: np.ndarray | None = None
    item_vectors: np.ndarray | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


@dataclass
class ClusterResult:
    """What a clusterer returns: labels (-1 = noise) and membership strength in [0, 1]."""

    labels: np.ndarray
    probabilities: np.ndarray
    quality: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Segmentation:
    """The clustering outcome plus the spaces it was computed in."""

    labels: np.ndarray
    probabilities: np.ndarray
    reduced: np.ndarray  # the space clustering ran in
    coords: np.ndarray  # 2-D map coordinates
    quality: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def segment_ids(self) -> list[int]:
        return sorted(int(s) for s in np.unique(self.labels) if s >= 0)


@dataclass
class AnalysisResult:
    """An analysis's output: facts per segment, facts for the run, extra files, a report section."""

    name: str
    per_segment: dict[int, dict[str, Any]] = field(default_factory=dict)
    run_level: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # saved as <name>.npy
    tables: dict[str, Any] = field(default_factory=dict)  # DataFrames saved as <name>.parquet
    markdown: str = ""
    skipped: str | None = None  # the reason, when the data cannot support this analysis


@dataclass
class SegmentDescription:
    """A describer's words for one segment, with where they came from."""

    segment_id: int
    name: str
    description: str
    traits: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    describer: str = ""
    grounding: float | None = None  # supported sentences / all sentences, after the check
    ungrounded: list[dict[str, str]] = field(default_factory=list)  # dropped sentences with reasons
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class AnalysisContext:
    """Everything an analysis may read. Built by the pipeline, or from a run folder for re-analysis."""

    dataset: Dataset
    features: UserFeatures
    embeddings: Embeddings
    segmentation: Segmentation
    index: Any
    config: dict[str, Any]
    profiles: dict[int, dict[str, Any]] = field(default_factory=dict)  # sections added so far

    @property
    def user_ids(self) -> np.ndarray:
        return self.features.user_ids
