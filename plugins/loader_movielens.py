"""MovieLens as GroupLens publishes it: a folder with ratings.csv, movies.csv and maybe tags.csv.

ratings.csv (userId, movieId, rating, timestamp in Unix seconds) become 'rating' events whose value
is the rating; tags.csv (userId, movieId, tag, timestamp) become 'tag' events whose text is the tag
and value NULL; movies.csv (movieId, title, genres) becomes the catalog: the title as published
(it carries the year), genres split on '|' without the placeholder "(no genres listed)", and the
release year, when the title ends with one, repeated in the description for text embedders.
links.csv (external ids) is not used.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from seglens import hookimpl, ingest
from seglens.errors import SeglensError
from seglens.model import ColumnMap, Dataset, LoadRequest

NO_GENRES = "(no genres listed)"


def movielens_folder(path: Path) -> Path | None:
    """The MovieLens folder for a folder or a ratings.csv inside one, else None."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent if path.name == "ratings.csv" else None
    if folder is not None and (folder / "ratings.csv").is_file() and (folder / "movies.csv").is_file():
        return folder
    return None


class MovieLensLoader:
    """Reads a MovieLens folder; see the module docstring."""

    name = "movielens"

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def sniff(self, path: Path) -> bool:
        return movielens_folder(path) is not None

    def load(self, request: LoadRequest, con: Any) -> Dataset:
        folder = movielens_folder(request.events)
        if folder is None:
            raise SeglensError(
                "not a MovieLens folder (it needs ratings.csv and movies.csv)",
                file=request.events, hint="give the unzipped ml-* folder, or another --format",
            )
        ratings = ingest.stage(con, folder / "ratings.csv", "_ratings_raw", "events")
        cols = ingest.resolve_event_columns(
            ratings, ColumnMap(user="userId", item="movieId", time="timestamp", value="rating"))
        ingest.stage_events(con, ratings, cols, default_event="rating")
        inputs = [ingest.fingerprint(ratings.path, "events")]
        stats: dict[str, Any] = {"ratings": con.execute("SELECT count(*) FROM _ratings_raw").fetchall()[0][0], "tags": 0}
        tags_path = folder / "tags.csv"
        if tags_path.is_file() and tags_path.stat().st_size > 0:
            tags = ingest.stage(con, tags_path, "_tags_raw", "events")
            tag_cols = ingest.resolve_event_columns(tags, ColumnMap(user="userId", item="movieId", time="timestamp"))
            tag_cols.text = "tag"
            ingest.stage_events(con, tags, tag_cols, default_event="tag", append=True)
            inputs.append(ingest.fingerprint(tags.path, "events"))
            stats["tags"] = con.execute("SELECT count(*) FROM _tags_raw").fetchall()[0][0]
        warnings: list[str] = []
        items_path = Path(request.items) if request.items is not None else folder / "movies.csv"
        fp, warn = ingest.load_items(con, items_path, "movieId")
        inputs.append(fp)
        warnings += warn
        if request.items is None:
            tidy_movies(con)
        if request.users is not None:
            fp, warn = ingest.load_users(con, request.users, request.columns.user)
            inputs.append(fp)
            warnings += warn
        return ingest.finish(con, loader=self.name, inputs=inputs, value_kind="rating", warnings=warnings,
                             stats=stats, items_file=items_path, users_file=request.users)


def tidy_movies(con: Any) -> None:
    """Drop the no-genre placeholder and note the release year (from 'Title (1995)') in the description."""
    con.execute(f"""
        UPDATE items SET
            categories = list_filter(categories, lambda g: g <> '{NO_GENRES}'),
            description = coalesce(description,
                'Released ' || nullif(regexp_extract(title, '\\(([0-9]{{4}})\\)\\s*$', 1), '') || '.')
    """)


@hookimpl
def register_loaders(register: Any) -> None:
    register("movielens", MovieLensLoader, description="MovieLens folder (ratings.csv, movies.csv, tags.csv)")
