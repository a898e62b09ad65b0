"""Exact k-nearest neighbours by blocked matrix products.

Exact search on PCA-reduced vectors is fast enough for the sizes the app lays out, has no
compile step (unlike NN-descent, whose JIT costs tens of seconds in every new process), and
gives the same answer every time.
"""
from __future__ import annotations

import numpy as np

BLOCK_ENTRIES = 1 << 25  # distances held at once: 128 MB of float32


def knn(x: np.ndarray, *, k: int, include_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Indices and Euclidean distances of each row's ``k`` nearest rows, nearest first.

    With ``include_self`` the row itself comes first (distance 0), as UMAP expects.

    >>> idx, dist = knn(np.array([[0.0], [1.0], [3.0]]), k=1)
    >>> idx.ravel().tolist(), dist.ravel().tolist()
    ([1, 0, 1], [1.0, 1.0, 2.0])
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    n = x.shape[0]
    if not 0 < k < n:
        raise ValueError(f"k must be between 1 and n - 1 = {n - 1}, got {k}")
    sq = np.einsum("ij,ij->i", x, x)
    indices = np.empty((n, k), dtype=np.int64)
    distances = np.empty((n, k), dtype=np.float32)
    block = max(1, BLOCK_ENTRIES // n)
    for start in range(0, n, block):
        rows = slice(start, min(n, start + block))
        d2 = sq[rows, None] + sq[None, :] - 2.0 * (x[rows] @ x.T)
        local = np.arange(rows.stop - rows.start)
        d2[local, local + start] = np.inf  # never your own neighbour
        part = np.argpartition(d2, k - 1, axis=1)[:, :k]
        part_d = np.take_along_axis(d2, part, axis=1)
        order = np.lexsort((part, part_d), axis=1)  # by distance, ties by index: deterministic
        indices[rows] = np.take_along_axis(part, order, axis=1)
        distances[rows] = np.sqrt(np.maximum(np.take_along_axis(part_d, order, axis=1), 0.0))
    if include_self:
        self_idx = np.arange(n, dtype=np.int64)[:, None]
        return np.hstack([self_idx, indices]), np.hstack([np.zeros((n, 1), np.float32), distances])
    return indices, distances
