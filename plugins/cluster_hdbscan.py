"""HDBSCAN (the `hdbscan` package) on the reduced space: finds segments of very different sizes
without being told how many, and calls users who fit nowhere noise (-1).

Defaults scale with the data: the smallest segment worth naming is 0.5% of users (at least 10),
and `min_samples` stays small so that small, real segments are not swallowed as noise.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from seglens import hookimpl
from seglens.model import ClusterResult
from seglens.errors import SeglensError


def auto_min_cluster_size(n: int) -> int:
    return int(max(10, round(0.005 * n)))


def nearest_segment(points: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each noise point moved to the segment with the nearest centroid (used by assign_noise)."""
    ids = np.unique(labels[labels >= 0])
    if len(ids) == 0:
        return labels
    centroids = np.stack([points[labels == s].mean(axis=0) for s in ids])
    out = labels.copy()
    noise = labels < 0
    d = ((points[noise, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
    out[noise] = ids[d.argmin(axis=1)]
    return out


class HdbscanClusterer:
    def __init__(self, options: dict[str, Any]) -> None:
        self.min_cluster_size = options.get("min_cluster_size", "auto")
        self.min_samples = options.get("min_samples", "auto")
        self.selection = str(options.get("selection", "eom"))
        self.assign_noise = bool(options.get("assign_noise", False))
        if self.selection not in ("eom", "leaf"):
            raise SeglensError(f"unknown HDBSCAN selection '{self.selection}'", hint="use eom or leaf")

    def cluster(self, points: np.ndarray, seed: int) -> ClusterResult:
        import hdbscan

        n = len(points)
        mcs = auto_min_cluster_size(n) if self.min_cluster_size == "auto" else int(self.min_cluster_size)
        mcs = max(2, min(mcs, n))
        ms = min(mcs, 5) if self.min_samples == "auto" else int(self.min_samples)
        params = {"min_cluster_size": mcs, "min_samples": ms, "selection": self.selection}
        if n < 3:
            labels = np.zeros(n, dtype=np.int64)
            return ClusterResult(labels, np.ones(n), {"note": "fewer than 3 users: one segment"}, params)
        model = hdbscan.HDBSCAN(min_cluster_size=mcs, min_samples=ms, cluster_selection_method=self.selection,
                                gen_min_span_tree=True, core_dist_n_jobs=1)
        labels = model.fit_predict(np.asarray(points, dtype=np.float64)).astype(np.int64)
        probs = np.asarray(model.probabilities_, dtype=np.float64)
        quality: dict[str, Any] = {"noise_share": float((labels < 0).mean())}
        n_clusters = len(np.unique(labels[labels >= 0]))
        if n_clusters >= 2:
            try:
                quality["relative_validity"] = float(model.relative_validity_)
            except Exception:  # undefined for degenerate trees
                pass
        if n_clusters == 0:
            # Everyone is noise: one segment is the honest answer, said plainly in the manifest.
            labels = np.zeros(n, dtype=np.int64)
            probs = np.ones(n)
            quality["note"] = "HDBSCAN found no dense groups; all users form one segment"
        elif self.assign_noise and (labels < 0).any():
            was_noise = labels < 0
            labels = nearest_segment(np.asarray(points), labels)
            probs = np.where(was_noise, 0.0, probs)
            quality["reassigned_noise"] = int(was_noise.sum())
        return ClusterResult(labels, probs, quality, params)


@hookimpl
def register_clusterers(register):
    register("hdbscan", HdbscanClusterer, description="HDBSCAN: density clusters of any size, noise = -1")
