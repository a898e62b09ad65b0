"""A set's k-NN graph and its index, made once and shared by everything that asks about the set's
neighbours (PRDC radii, rarity, outliers, near duplicates, searches from other sets)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from explorer.data.arrays import take_rows
from explorer.neighbors.index import NeighborIndex, SearchReport

# HNSW candidate list for graphs that metrics are computed from: measured on 50k x 128 (2 cores),
# PRDC's largest error against exact search is 0.031 at efSearch 64, 0.0035 at 128, 0.001 at
# 256, for 20 s, 27 s and 43 s (exact: 73 s). Maps keep the index default (64).
METRIC_EF = 128


@dataclass
class SetNeighbors:
    """The fitted index of a set's unit rows and each row's ``k`` nearest other rows."""

    index: NeighborIndex
    indices: np.ndarray  # (n, k), nearest first, the row itself left out
    distances: np.ndarray  # Euclidean on unit rows: cosine = 1 - d² / 2
    report: SearchReport

    @property
    def k(self) -> int:
        return int(self.indices.shape[1])

    def radii(self, k: int) -> np.ndarray:
        """Distance of each row to its ``k``-th nearest other row (k ≤ the graph's k)."""
        if not 0 < k <= self.k:
            raise ValueError(f"the graph holds {self.k} neighbours per row, asked for the {k}-th")
        return self.distances[:, k - 1]


def set_neighbors(unit: np.ndarray, *, k: int, method: str = "auto", ef_search: int = METRIC_EF,
                  progress: Callable[[int, int], None] | None = None) -> SetNeighbors:
    """Index ``unit`` (rows already unit length) and find each row's ``k`` nearest other rows;
    ``k`` is capped at n - 1.

    >>> g = set_neighbors(np.eye(4, dtype=np.float32), k=2)
    >>> g.indices.shape, g.report.method
    ((4, 2), 'exact')
    """
    index = NeighborIndex(method=method, ef_search=ef_search).fit(unit)
    k = min(k, len(unit) - 1)
    if k < 1:
        empty = np.zeros((len(unit), 0), dtype=np.int64)
        return SetNeighbors(index, empty, empty.astype(np.float32), SearchReport(index.method_, 0, len(unit),
                                                                                  len(unit), 0.0))
    idx, dist = index.search(k=k, exclude_self=True, progress=progress)
    return SetNeighbors(index, idx, dist, index.report_)


class SetGraphs:
    """The k-NN graph of each named set of rows of ``x`` (unit rows), made on first use and kept,
    so that PRDC, rarity, outliers and near duplicates of a comparison search each set once.

    >>> graphs = SetGraphs(np.eye(4, dtype=np.float32), {"a": np.arange(4)}, k=1)
    >>> graphs["a"] is graphs["a"], graphs["a"].k
    (True, 1)
    """

    def __init__(self, x: np.ndarray, index: dict[str, np.ndarray], *, k: int, method: str = "auto",
                 progress: Callable[[str], None] | None = None):
        self.x = x
        self.index = index
        self.k = k
        self.method = method
        self.progress = progress
        self.graphs_: dict[str, SetNeighbors] = {}

    def __getitem__(self, name: str) -> SetNeighbors:
        if name not in self.graphs_:
            rows = self.index[name]
            if self.progress:
                self.progress(f"nearest neighbours of {name} ({len(rows):,} items)")
            unit = np.ascontiguousarray(take_rows(self.x, rows), dtype=np.float32)
            self.graphs_[name] = set_neighbors(unit, k=self.k, method=self.method)
        return self.graphs_[name]

    def reports(self) -> dict[str, str]:
        """How each graph made so far was searched (method, recall)."""
        return {name: g.report.describe() for name, g in self.graphs_.items()}
