"""The functions every k-NN consumer calls: they pick exact search, HNSW or the GPU by size
(explorer.neighbors.index) and say how the answer was made."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import numpy as np

from explorer.neighbors.hnsw import ACCURATE, HnswParams
from explorer.neighbors.index import NeighborIndex, SearchReport


@dataclass
class Neighbors:
    """Indices and distances of each query's nearest rows, nearest first, and the report of the
    search. Unpacks as ``indices, distances``."""

    indices: np.ndarray
    distances: np.ndarray
    report: SearchReport

    def __iter__(self) -> Iterator[np.ndarray]:
        yield self.indices
        yield self.distances


def knn(x: np.ndarray, *, k: int, include_self: bool = False, method: str = "auto", hnsw: HnswParams = ACCURATE,
        progress: Callable[[int, int], None] | None = None) -> Neighbors:
    """Each row's ``k`` nearest other rows of ``x`` (Euclidean), nearest first. With
    ``include_self`` the row itself comes first at distance 0, as UMAP expects. ``hnsw`` sets the
    approximate graph's effort (explorer.neighbors.hnsw.FAST for maps).

    >>> idx, dist = knn(np.array([[0.0], [1.0], [3.0]]), k=1)
    >>> idx.ravel().tolist(), dist.ravel().tolist()
    ([1, 0, 1], [1.0, 1.0, 2.0])
    """
    n = len(x)
    if not 0 < k < n:
        raise ValueError(f"k must be between 1 and n - 1 = {n - 1}, got {k}")
    index = NeighborIndex(method=method, **asdict(hnsw)).fit(x)
    idx, dist = index.search(k=k, exclude_self=True, progress=progress)
    if include_self:
        idx = np.hstack([np.arange(n, dtype=np.int64)[:, None], idx])
        dist = np.hstack([np.zeros((n, 1), np.float32), dist])
    return Neighbors(idx, dist, index.report_)


def cross_knn(queries: np.ndarray, base: np.ndarray, *, k: int = 1, method: str = "auto",
              hnsw: HnswParams = ACCURATE, progress: Callable[[int, int], None] | None = None) -> Neighbors:
    """Each query's ``k`` nearest rows of ``base``, nearest first (``hnsw`` as in :func:`knn`).

    >>> idx, dist = cross_knn(np.array([[0.0], [2.5]]), np.array([[1.0], [3.0]]))
    >>> idx.ravel().tolist(), dist.ravel().tolist()
    ([0, 1], [1.0, 0.5])
    """
    index = NeighborIndex(method=method, n_queries_hint=len(queries), **asdict(hnsw)).fit(base)
    idx, dist = index.search(queries, k=k, progress=progress)
    return Neighbors(idx, dist, index.report_)


def pairs_within(x: np.ndarray, *, radius: float, method: str = "auto") -> tuple[np.ndarray, np.ndarray, SearchReport]:
    """Every pair ``i < j`` of rows of ``x`` closer than ``radius`` (Euclidean), by range search:
    blocks of exact distances for small inputs (on the GPU where there is one), the HNSW graph
    above; never all pairs at once.

    >>> i, j, _ = pairs_within(np.array([[0.0], [0.1], [5.0], [5.05]]), radius=0.2)
    >>> i.tolist(), j.tolist()
    ([0, 2], [1, 3])
    """
    return index_pairs(NeighborIndex(method=method).fit(x), radius=radius)


def index_pairs(index: NeighborIndex, *, radius: float,
                known: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, SearchReport]:
    """:func:`pairs_within` on a fitted index of the rows; ``known`` k-NN lists of every row
    (e.g. a set's graph) save the first search."""
    rows, cols, _ = index.range_search(radius=radius, exclude_self=True, known=known)
    # an approximate graph can find j from i and not i from j: keep each pair once either way
    lo, hi = np.minimum(rows, cols), np.maximum(rows, cols)
    pairs = np.unique(np.column_stack([lo, hi]), axis=0) if len(lo) else np.zeros((0, 2), np.int64)
    return pairs[:, 0], pairs[:, 1], index.report_
