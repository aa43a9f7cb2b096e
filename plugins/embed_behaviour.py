"""The `behaviour` embedder: users as standardized behaviour features (RFM, timing, category shares).

For logs without an item catalog (CDNOW has no items at all) this is the only meaningful vector;
the pipeline falls back to it with a warning when a text strategy has no item text to embed.
"""
from __future__ import annotations

import numpy as np

from seglens import hookimpl
from seglens.features import feature_matrix
from seglens.model import Dataset, Embeddings, UserFeatures


class BehaviourEmbedder:
    def __init__(self, options: dict) -> None:
        self.options = options

    def embed(self, dataset: Dataset, features: UserFeatures) -> Embeddings:
        x = feature_matrix(features)
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.maximum(norms, 1e-12)
        return Embeddings(user_ids=features.user_ids, vectors=x.astype(np.float32), strategy="behaviour",
                          model="behaviour-features")


@hookimpl
def register_embedders(register):
    register("behaviour", BehaviourEmbedder, description="standardized behaviour features (no text model)")
