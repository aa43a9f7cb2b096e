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


class UmapReducer:
    def __init__(self, options: dict[str, Any]) -> None:
        self.n_neighbors = int(options.get("n_neighbors", 15))
        self.min_dist = float(options.get("min_dist", 0.0))
        self.metric = str(options.get("metric", "cosine"))
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
        reducer = umap.UMAP(
            n_components=n_components,
            n_neighbors=nn,
            min_dist=self.min_dist,
            metric=self.metric,
            random_state=seed,
            low_memory=True,
            init="spectral" if n > n_components + 1 else "random",
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


@hookimpl
def register_reducers(register):
    register("umap", UmapReducer, description="UMAP (umap-learn), cosine, seeded")
