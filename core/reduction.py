"""PCA shared by the reducer plugins: the PCA reducer itself and UMAP's fallback for tiny runs."""
from __future__ import annotations

import numpy as np


def pca(vectors: np.ndarray, n_components: int, seed: int) -> np.ndarray:
    """Exactly `n_components` columns, zero-padded when there are fewer points or dimensions."""
    from sklearn.decomposition import PCA

    n, d = vectors.shape
    k = max(1, min(n_components, n, d))
    out = PCA(n_components=k, random_state=seed).fit_transform(vectors) if n > 1 else np.zeros((n, k))
    return np.pad(out, ((0, 0), (0, n_components - out.shape[1]))).astype(np.float32)
