"""k-means clusters of the embeddings, named in a stable order, to colour the map and to score
each cluster."""
from __future__ import annotations

import numpy as np

from explorer.data.arrays import normalize_rows


def kmeans_labels(embeddings: np.ndarray, *, k: int, seed: int = 0) -> np.ndarray:
    """Cluster ids (``"c0"``, ``"c1"``...) from k-means on unit-normalised embeddings, so that
    scores can be compared per cluster.

    >>> kmeans_labels(np.array([[1.0, 0], [2, 0], [0, 1], [0, 3]]), k=2).tolist()
    ['c0', 'c0', 'c1', 'c1']
    """
    from sklearn.cluster import KMeans

    x = normalize_rows(embeddings)
    ids = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(x)
    # number clusters by first appearance so names do not depend on k-means' internal order
    _, first = np.unique(ids, return_index=True)
    rank = {c: r for r, c in enumerate(ids[np.sort(first)])}
    return np.array([f"c{rank[c]}" for c in ids])
