"""PCA reduction: instant and linear, for quick looks or very large runs."""
from __future__ import annotations

from typing import Any

import numpy as np

from seglens import hookimpl
from seglens.reduction import pca


class PcaReducer:
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def reduce(self, vectors: np.ndarray, n_components: int, seed: int) -> np.ndarray:
        return pca(vectors, n_components, seed)


@hookimpl
def register_reducers(register):
    register("pca", PcaReducer, description="PCA (scikit-learn)")
