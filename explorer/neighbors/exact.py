"""Exact k-nearest neighbours by blocked matrix products.

Exact search on PCA-reduced vectors is fast enough for the sizes the app lays out, has no
compile step (unlike NN-descent, whose JIT costs tens of seconds in every new process), and
gives the same answer every time.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

# distances held at once: 16 MB of float32. Measured, 30k x 30k x 256 on 2 cores: 9.5 s against
# 15.7 s with 128 MB blocks (cache-friendlier), and a tenth of the peak memory
BLOCK_ENTRIES = 1 << 22
SPARE = 8  # candidates beyond k measured again (see cross_knn)


def knn(x: np.ndarray, *, k: int, include_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Indices and Euclidean distances of each row's ``k`` nearest rows, nearest first.

    With ``include_self`` the row itself comes first (distance 0), as UMAP expects.

    >>> idx, dist = knn(np.array([[0.0], [1.0], [3.0]]), k=1)
    >>> idx.ravel().tolist(), dist.ravel().tolist()
    ([1, 0, 1], [1.0, 1.0, 2.0])
    """
    n = len(x)
    if not 0 < k < n:
        raise ValueError(f"k must be between 1 and n - 1 = {n - 1}, got {k}")
    indices, distances = cross_knn(x, x, k=k, exclude_self=True)
    if include_self:
        self_idx = np.arange(n, dtype=np.int64)[:, None]
        return np.hstack([self_idx, indices]), np.hstack([np.zeros((n, 1), np.float32), distances])
    return indices, distances


def distance_blocks(queries: np.ndarray, base: np.ndarray) -> Iterator[tuple[slice, np.ndarray]]:
    """Squared Euclidean distances from blocks of ``queries`` to every row of ``base``, a block of
    rows at a time so that memory stays bounded (float32, clipped at 0).

    >>> [(rows.start, d.tolist()) for rows, d in distance_blocks(np.array([[0.0], [2.0]]), np.array([[1.0]]))]
    [(0, [[1.0], [1.0]])]
    """
    q = np.ascontiguousarray(queries, dtype=np.float32)
    b = np.ascontiguousarray(base, dtype=np.float32)
    sq_q, sq_b = np.einsum("ij,ij->i", q, q), np.einsum("ij,ij->i", b, b)
    block = max(1, BLOCK_ENTRIES // max(1, len(b)))
    for start in range(0, len(q), block):
        rows = slice(start, min(len(q), start + block))
        d2 = sq_q[rows, None] + sq_b[None, :] - 2.0 * (q[rows] @ b.T)
        yield rows, np.maximum(d2, 0.0, out=d2)


def cross_knn(queries: np.ndarray, base: np.ndarray, *, k: int = 1,
              exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Indices into ``base`` and Euclidean distances of each query's ``k`` nearest base rows,
    nearest first (ties by index, so the answer is deterministic). ``exclude_self`` is for
    ``queries is base``: a row is never its own neighbour.

    >>> idx, dist = cross_knn(np.array([[0.0], [2.5]]), np.array([[1.0], [3.0]]))
    >>> idx.ravel().tolist(), dist.ravel().tolist()
    ([0, 1], [1.0, 0.5])
    """
    if not 0 < k <= len(base) - int(exclude_self):
        raise ValueError(f"k must be between 1 and {len(base) - int(exclude_self)}, got {k}")
    indices = np.empty((len(queries), k), dtype=np.int64)
    distances = np.empty((len(queries), k), dtype=np.float32)
    q = np.ascontiguousarray(queries, dtype=np.float32)
    b = np.ascontiguousarray(base, dtype=np.float32)
    # a block's matrix product rounds differently with the BLAS thread count (OpenBLAS 0.3.31:
    # 1.2e-7 between 1 and 2 threads), so a Ray task's graph would differ from this process's:
    # SPARE more candidates than asked are measured again without BLAS and the k nearest kept, so
    # near ties at the k-th neighbour are settled by the same bits wherever the search runs
    wide = min(k + SPARE, len(b))
    for rows, d2 in distance_blocks(q, b):
        if exclude_self:
            local = np.arange(rows.stop - rows.start)
            d2[local, local + rows.start] = np.inf
        part = (np.argpartition(d2, wide - 1, axis=1)[:, :wide] if wide < d2.shape[1]
                else np.tile(np.arange(wide), (len(d2), 1)))
        part_d = pair_sq_distances(q[rows], b, part)
        if exclude_self:
            part_d[part == np.arange(rows.start, rows.stop)[:, None]] = np.inf
        order = np.lexsort((part, part_d), axis=1)[:, :k]
        indices[rows] = np.take_along_axis(part, order, axis=1)
        distances[rows] = np.sqrt(np.take_along_axis(part_d, order, axis=1))
    return indices, distances


def pair_sq_distances(queries: np.ndarray, base: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances from each query to its ``found`` base rows (float32, clipped at
    0), by einsum loops that give the same bits whatever the thread count.

    >>> pair_sq_distances(np.array([[0.0, 0.0]]), np.array([[3.0, 4.0], [1.0, 0.0]]), np.array([[0, 1]])).tolist()
    [[25.0, 1.0]]
    """
    q = np.asarray(queries, dtype=np.float32)
    b = np.asarray(base, dtype=np.float32)
    out = np.empty(found.shape, dtype=np.float32)
    sq_q = np.einsum("ij,ij->i", q, q)
    chunk = max(1, BLOCK_ENTRIES // max(1, found.shape[1] * b.shape[1]))  # rows x k x d floats: 16 MB
    for start in range(0, len(q), chunk):
        rows = slice(start, min(len(q), start + chunk))
        near = b[found[rows]]
        sq_b = np.einsum("ijd,ijd->ij", near, near)
        out[rows] = sq_q[rows, None] + sq_b - 2.0 * np.einsum("ijd,id->ij", near, q[rows])
    return np.maximum(out, 0.0, out=out)
