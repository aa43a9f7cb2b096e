"""t-SNE (openTSNE) for the 2-D map of users: `reduce.map_method = "tsne"`.

t-SNE keeps local neighbourhoods and separates groups clearly, which makes it a good second view of
the segments; it is a map only. Its fast gradients (FFT interpolation) exist for one and two
dimensions, and its distances between clusters mean little, so it cannot be the clustering space:
asking for more than 2 components is a one-line error (see `max_components`, which the pipeline
checks before loading anything).

How a map is made, and why:

1. The vectors are L2-normalised when `reduce.metric` is `cosine` (the default: seglens' user
   vectors are compared by cosine everywhere), then reduced by seeded PCA to `reduce.tsne_pca_dims`
   (50) components. This is the usual t-SNE preprocessing: the neighbour search in 50 dimensions
   costs an eighth of one in 384 and the neighbourhoods t-SNE needs survive.
2. Neighbours (3 x perplexity of them) come from FAISS: exact up to `EXACT_LIMIT` users, an IVF index
   beyond (seeded k-means, sqrt(n) lists, 16 probed; about 0.98 recall on the 100k demo, 25 s instead
   of minutes). Both are deterministic, unlike a multi-threaded approximate graph build.
3. openTSNE turns them into perplexity-based affinities, starts from its PCA initialisation (seeded,
   rescaled to a tiny spread) and optimises on `n_jobs` threads (`reduce.n_jobs`, default and at most
   the CPUs this process may use). Gradients: FFT interpolation from `FFT_FROM` users, Barnes-Hut
   below, openTSNE's own rule (on 3,000 users Barnes-Hut took 13 s and FFT 23 s). The result does
   not depend on the number of threads (checked: bit-identical with 1 and 2).
4. From `LARGE` users the final phase runs 250 iterations instead of 500 and the FFT grid uses two
   points per interval instead of one: the layout grows with n, and with it the grid, so late
   iterations were the cost; on the 10k demo these settings kept 99% agreement between a user's
   2-D neighbours and their segment.

`settings` records what the last call did (for the manifest and the report's appendix).
"""
from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from seglens import hookimpl
from seglens.errors import SeglensError
from seglens.reduction import pca

log = logging.getLogger(__name__)

LARGE = 10_000  # from this many users the cheaper optimisation settings apply
FFT_FROM = 10_000  # openTSNE's own rule: Barnes-Hut below (faster there), FFT interpolation from here
EXACT_LIMIT = 20_000  # exact neighbour search up to here (20k x 20k x 50 is about a second)


def available_cpus() -> int:
    """CPUs this process may run on (the affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class TsneReducer:
    """openTSNE with FFT gradients, seeded: the same vectors and seed give the same map."""

    max_components = 2

    def __init__(self, options: dict[str, Any]) -> None:
        self.metric = str(options.get("metric", "cosine"))
        self.perplexity = float(options.get("perplexity", 30.0))
        self.pca_dims = int(options.get("tsne_pca_dims", 50))
        self.n_iter = options.get("tsne_n_iter", "auto")
        jobs = options.get("n_jobs", "auto")
        self.n_jobs = available_cpus() if jobs in ("auto", None) else max(1, min(int(jobs), available_cpus()))
        if self.perplexity <= 0:
            raise SeglensError(f"reduce.perplexity must be positive, got {self.perplexity}",
                               hint="the usual range is 5-50; 30 is the default")
        self.settings: dict[str, Any] = {}

    def reduce(self, vectors: np.ndarray, n_components: int, seed: int) -> np.ndarray:
        if n_components > self.max_components:
            raise SeglensError(f"t-SNE gives at most {self.max_components} dimensions, asked for {n_components}",
                               hint="use t-SNE for the map (reduce.map_method=tsne) and umap or pca for "
                                    "reduce.method")
        x = np.asarray(vectors, dtype=np.float32)
        n = len(x)
        if n <= n_components + 2:
            self.settings = {"fallback": "pca (too few users for t-SNE)"}
            return pca(x, n_components, seed)
        if self.metric == "cosine":
            norms = np.linalg.norm(x, axis=1, keepdims=True)
            x = x / np.where(norms > 0, norms, 1.0)
        dims = min(self.pca_dims, x.shape[1], n)
        if dims < x.shape[1]:
            x = pca(x, dims, seed)
        x = np.ascontiguousarray(x, dtype=np.float32)
        perplexity = min(self.perplexity, (n - 1) / 3)
        k = min(n - 1, max(1, int(3 * perplexity)))
        indices, distances, knn = _neighbours(x, k, seed)
        return self._optimise(x, indices, distances, perplexity, n_components, seed,
                              {"knn": knn, "pca_dims": dims, "neighbours": k})

    def _optimise(self, x: np.ndarray, indices: np.ndarray, distances: np.ndarray, perplexity: float,
                  n_components: int, seed: int, extra: dict[str, Any]) -> np.ndarray:
        from openTSNE import TSNE, affinity, initialization
        from openTSNE.nearest_neighbors import PrecomputedNeighbors

        n = len(x)
        large = n >= LARGE
        n_iter = int(self.n_iter) if self.n_iter not in ("auto", None) else (250 if large else 500)
        gradient = "fft" if n >= FFT_FROM else "bh"
        ints = 2 if large else 1
        aff = affinity.PerplexityBasedNN(knn_index=PrecomputedNeighbors(indices, distances), perplexity=perplexity,
                                         n_jobs=self.n_jobs, random_state=seed)
        init = initialization.pca(x, n_components=n_components, random_state=seed)
        tsne = TSNE(n_components=n_components, n_iter=n_iter, negative_gradient_method=gradient,
                    ints_in_interval=ints, n_jobs=self.n_jobs, random_state=seed)
        out = np.asarray(tsne.fit(affinities=aff, initialization=init), dtype=np.float32)
        self.settings = {"perplexity": round(perplexity, 3), "n_iter": n_iter, "early_exaggeration_iter": 250,
                         "gradient": gradient, "init": "pca", "n_jobs": self.n_jobs, "metric": self.metric,
                         **({"ints_in_interval": ints} if gradient == "fft" else {}), **extra}
        if not np.isfinite(out).all():  # never seen; a map with holes would be drawn without a word
            raise RuntimeError("openTSNE returned non-finite coordinates")
        return out


def _neighbours(x: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Each row's k nearest other rows (Euclidean) and their distances, with FAISS."""
    import faiss

    n, d = x.shape
    if n <= EXACT_LIMIT:
        index = faiss.IndexFlatL2(d)
        kind = "faiss-exact"
    else:
        nlist = int(round(np.sqrt(n)))
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist)
        index.cp.seed = int(seed)
        index.train(x)
        index.nprobe = 16
        kind = f"faiss-ivf (nlist {nlist}, nprobe 16)"
    index.add(x)
    dist2, idx = index.search(x, k + 1)
    # Drop each row itself; duplicates of a row may come first, so remove the row's own id wherever it
    # is and otherwise the farthest hit.
    own = idx == np.arange(n)[:, None]
    drop = np.where(own.any(axis=1), own.argmax(axis=1), k)
    keep = np.ones_like(own)
    keep[np.arange(n), drop] = False
    idx = idx[keep].reshape(n, k)
    dist = np.sqrt(np.maximum(dist2[keep].reshape(n, k), 0.0))
    if (idx < 0).any():  # IVF probes too few lists for a tiny cluster: fill from an exact search
        rows = np.flatnonzero((idx < 0).any(axis=1))
        exact = faiss.IndexFlatL2(d)
        exact.add(x)
        d2, i2 = exact.search(x[rows], k + 1)
        for j, r in enumerate(rows):
            mask = i2[j] != r
            idx[r] = i2[j][mask][:k]
            dist[r] = np.sqrt(np.maximum(d2[j][mask][:k], 0.0))
    return idx.astype(np.int64), dist.astype(np.float64), kind


@hookimpl
def register_reducers(register):
    register("tsne", TsneReducer, description="t-SNE (openTSNE, FFT gradients), seeded; for the 2-D map only")
