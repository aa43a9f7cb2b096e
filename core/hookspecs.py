"""The contract between seglens and its plugins, built-in and third-party alike.

Each stage of the pipeline has one `register_*` hook. A plugin implements the hook and calls
`register(name, factory)` for each implementation it offers; the pipeline then picks one by the
name given in config. `factory(options)` receives the stage's config section as a dict and returns an
object with the stage's method (see the Protocols in `seglens.stages`).
"""
from __future__ import annotations

from typing import Any, Callable

import pluggy

hookspec = pluggy.HookspecMarker("seglens")
hookimpl = pluggy.HookimplMarker("seglens")

Register = Callable[..., None]


@hookspec
def register_loaders(register: Register) -> None:
    """Offer readers of input formats.

    `register(name, factory, description="")`; the object has `sniff(path) -> bool` (can it read
    this path as published, for --format inference) and `load(request, con) -> Dataset`.
    """


@hookspec(firstresult=True)
def render_history(user_id: str, events: Any, catalog: Any, options: dict) -> str | None:
    """Render one user's history as text for a text embedder or an LLM.

    `events` is a pandas DataFrame of that user's events (newest last) joined with item title and
    categories; `catalog` says what the dataset holds (value kind). Return the text, or None to let
    the next plugin try. The first non-None answer wins, so a plugin can override the default.
    """


@hookspec
def register_embedders(register: Register) -> None:
    """Offer user-embedding strategies: `embed(dataset, features, progress) -> Embeddings`."""


@hookspec
def register_indexes(register: Register) -> None:
    """Offer vector indexes: `build(vectors)`, `search(queries, k)`, `save(path)`, `load(path)`."""


@hookspec
def register_reducers(register: Register) -> None:
    """Offer dimension reducers: `reduce(vectors, n_components, seed) -> ndarray`."""


@hookspec
def register_clusterers(register: Register) -> None:
    """Offer clusterers: `cluster(points, seed) -> ClusterResult` (labels, -1 for noise)."""


@hookspec
def register_analyses(register: Register) -> None:
    """Offer analyses: `analyse(context) -> AnalysisResult`, a profile section per segment and run.

    The object may set `requires` (a tuple like ("values", "ratings", "timestamps")) so that the
    pipeline skips it with a recorded reason when the data lacks them.
    """


@hookspec
def register_describers(register: Register) -> None:
    """Offer describers: `describe(facts, population) -> list[SegmentDescription]`."""


@hookspec
def register_reporters(register: Register) -> None:
    """Offer reports: `write(run, path) -> Path`; `run` is an open `RunFolder`."""


@hookspec
def register_commands(cli: Any) -> None:
    """Add Click commands or groups to the `seglens` command line (`cli` is the Click group)."""
