"""UMAP (umap-learn) reduction, seeded, so the same seed gives the same segments.

The nearest-neighbour graph is the expensive part; the same reducer asked for a 5-D clustering
space and then a 2-D map of the same vectors reuses it instead of searching twice.
"""
from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np

from seglens import hookimpl
from seglens.reduction import pca

log = logging.getLogger(__name__)

MEDIUM = 2_000  # above this many users, fewer layout epochs than UMAP's small-data default
LARGE = 10_000  # above this many users, PCA initialisation and fewer epochs still


class UmapReducer:
    def __init__(self, options: dict[str, Any]) -> None:
        self.n_neighbors = int(options.get("n_neighbors", 15))
        self.min_dist = float(options.get("min_dist", 0.0))
        self.metric = str(options.get("metric", "cosine"))
        self.epochs = options.get("n_epochs", "auto")
        self.init = str(options.get("init", "auto"))
        self._knn: tuple[int, tuple[np.ndarray, np.ndarray]] | None = None

    def reduce(self, vectors: np.ndarray, n_components: int, seed: int) -> np.ndarray:
        n = len(vectors)
        if n <= n_components + 2:
            return pca(vectors, n_components, seed)  # too few points for a manifold
        import umap

        nn = max(2, min(self.n_neighbors, n - 1))
        kwargs: dict[str, Any] = {}
        if self._knn is not None and self._knn[0] == id(vectors):
            kwargs["precomputed_knn"] = (*self._knn[1], None)
        reuse = "precomputed_knn" in kwargs
        reducer = umap.UMAP(
            n_components=n_components,
            n_neighbors=nn,
            min_dist=self.min_dist,
            metric=self.metric,
            random_state=seed,
            low_memory=True,
            init=self._init(n, n_components),
            n_epochs=self._epochs(n, reuse),
            **kwargs,
        )
        with warnings.catch_warnings():
            # umap warns that a fixed random_state disables parallelism: that is the price of determinism.
            warnings.simplefilter("ignore", UserWarning)
            out = reducer.fit_transform(vectors)
        knn_i = getattr(reducer, "_knn_indices", None)
        knn_d = getattr(reducer, "_knn_dists", None)
        if knn_i is not None and knn_d is not None:
            self._knn = (id(vectors), (knn_i, knn_d))
        return np.asarray(out, dtype=np.float32)


    def _init(self, n: int, n_components: int) -> str:
        """Spectral initialisation is best but costs ~25 CPU-s per fit at 100k users; PCA init
        kept the demo's ARI (0.945 vs 0.944) at 100k, so large runs use it."""
        if self.init != "auto":
            return self.init
        if n <= n_components + 1:
            return "random"
        return "spectral" if n <= LARGE else "pca"

    def _epochs(self, n: int, reuse: bool) -> int | None:
        """Layout epochs dominate UMAP at scale (~60% of its time at 100k users). UMAP's own default
        is 500 up to 10k points and 200 above, a cliff that made 10k users slower to lay out than
        100k; 200 from 2k users and 100 above 10k kept the planted segments, and the 2-D map, drawn
        on the graph already built, needs half as many."""
        if self.epochs not in ("auto", None):
            return int(self.epochs)
        if n <= MEDIUM:
            return None
        epochs = 200 if n <= LARGE else 100
        return epochs // 2 if reuse else epochs


@hookimpl
def register_reducers(register):
    register("umap", UmapReducer, description="UMAP (umap-learn), cosine, seeded")
