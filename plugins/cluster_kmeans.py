"""k-means as the second clusterer: every user gets a segment; k is chosen by silhouette if 'auto'."""
from __future__ import annotations

from typing import Any

import numpy as np

from seglens import hookimpl
from seglens.model import ClusterResult


class KMeansClusterer:
    def __init__(self, options: dict[str, Any]) -> None:
        self.k = options.get("k", "auto")
        self.max_k = int(options.get("max_k", 12))

    def cluster(self, points: np.ndarray, seed: int) -> ClusterResult:
        from sklearn.cluster import KMeans
        from sklearn.metrics import silhouette_score

        x = np.asarray(points, dtype=np.float64)
        n = len(x)
        if n < 3:
            return ClusterResult(np.zeros(n, dtype=np.int64), np.ones(n), {}, {"k": 1})
        if self.k != "auto":
            candidates = [max(1, min(int(self.k), n))]
        else:
            candidates = list(range(2, max(3, min(self.max_k, n - 1)) + 1))
        best = None
        rng = np.random.default_rng(seed)
        sample = rng.choice(n, size=min(n, 5000), replace=False)
        scores = {}
        for k in candidates:
            model = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(x)
            if len(candidates) == 1:
                best = (k, model)
                break
            s = silhouette_score(x[sample], model.labels_[sample]) if len(set(model.labels_[sample])) > 1 else -1
            scores[k] = float(s)
            if best is None or s > scores[best[0]]:
                best = (k, model)
        k, model = best
        d = model.transform(x)
        # Membership strength: how much closer the own centroid is than the runner-up.
        part = np.sort(d, axis=1)
        probs = 1.0 - part[:, 0] / np.maximum(part[:, 1], 1e-12) if k > 1 else np.ones(n)
        quality = {"noise_share": 0.0, "silhouette_by_k": scores} if scores else {"noise_share": 0.0}
        return ClusterResult(model.labels_.astype(np.int64), probs, quality, {"k": int(k)})


@hookimpl
def register_clusterers(register):
    register("kmeans", KMeansClusterer, description="k-means (scikit-learn); k by silhouette when auto")
