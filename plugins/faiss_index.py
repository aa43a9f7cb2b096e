"""FAISS indexes over L2-normalized user vectors with inner product (= cosine similarity).

`auto` is exact (flat) up to 200k users, where a query still takes milliseconds, and HNSW beyond.
Saved with FAISS's own format, never pickle.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from seglens import hookimpl
from seglens.errors import SeglensError

FLAT_LIMIT = 200_000


class FaissIndex:
    def __init__(self, options: dict[str, Any]) -> None:
        self.kind = str(options.get("kind", "auto"))
        if self.kind not in ("auto", "flat", "hnsw", "ivf"):
            raise SeglensError(f"unknown index kind '{self.kind}'", hint="use auto, flat, hnsw or ivf")
        self.seed = int(options.get("seed", 42))
        self.index: Any = None

    def build(self, vectors: np.ndarray) -> None:
        import faiss

        x = np.ascontiguousarray(vectors, dtype=np.float32)
        n, d = x.shape
        kind = self.kind if self.kind != "auto" else ("flat" if n <= FLAT_LIMIT else "hnsw")
        if kind == "flat":
            index = faiss.IndexFlatIP(d)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 80
            index.hnsw.efSearch = 64
        else:
            nlist = max(1, min(int(4 * np.sqrt(n)), n // 39 or 1))
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = self.seed
            index.train(x)
            index.nprobe = min(16, nlist)
        index.add(x)
        self.index = index

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, row positions), both shaped (n_queries, k); -1 where fewer than k exist."""
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = max(1, min(int(k), self.index.ntotal))
        return self.index.search(q, k)

    def reconstruct(self, row: int) -> np.ndarray:
        return self.index.reconstruct(int(row))

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self.index, str(path))

    def load(self, path: Path) -> None:
        import faiss

        self.index = faiss.read_index(str(path))


@hookimpl
def register_indexes(register):
    register("faiss", FaissIndex, description="FAISS inner-product index: flat, hnsw or ivf (auto by size)")
