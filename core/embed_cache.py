"""An on-disk cache of text embeddings keyed by model and text hash, so re-runs skip finished work.

SQLite (standard library) with raw float32 blobs: no pickle, safe to share between runs.
Location: $SEGLENS_CACHE_DIR, else ~/.cache/seglens.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import numpy as np


def cache_dir() -> Path:
    root = os.environ.get("SEGLENS_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "seglens")
    return Path(root)


class EmbeddingCache:
    def __init__(self, model_key: str, dim: int, path: Path | None = None) -> None:
        self.model_key = model_key
        self.dim = dim
        path = path or cache_dir() / "embeddings.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), timeout=30)
        self._db.execute("CREATE TABLE IF NOT EXISTS emb (key BLOB PRIMARY KEY, vec BLOB NOT NULL)")

    def _key(self, text: str) -> bytes:
        return hashlib.sha256(f"{self.model_key}\x00{text}".encode("utf-8")).digest()

    def get_many(self, texts: list[str]) -> dict[int, np.ndarray]:
        """Cached vectors by position in `texts`."""
        keys = [self._key(t) for t in texts]
        found: dict[bytes, np.ndarray] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            rows = self._db.execute(
                f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(chunk))})", chunk
            ).fetchall()
            for k, v in rows:
                vec = np.frombuffer(v, dtype=np.float32)
                if vec.shape[0] == self.dim:
                    found[k] = vec
        return {i: found[k] for i, k in enumerate(keys) if k in found}

    def put_many(self, texts: list[str], vectors: np.ndarray) -> None:
        rows = [(self._key(t), np.asarray(v, dtype=np.float32).tobytes()) for t, v in zip(texts, vectors)]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO emb (key, vec) VALUES (?, ?)", rows)

    def close(self) -> None:
        self._db.close()
