"""Exact and near duplicates within a set, and their diagnostics.

"Near" is relative to how close items of the data usually are, as in cleanlab's near-duplicate
check: two items are near duplicates when their cosine distance is below ``alpha`` times the
median nearest-neighbour distance of the set (default α = 0.13, cleanlab's value). A fixed cosine
``threshold`` can be given instead. Either way the cosine threshold used is reported, because
what counts as close differs wildly between embedders (digits through an ImageNet network sit at
cosine 0.97 from their nearest neighbour; web photos through CLIP far lower).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.data.arrays import normalize_rows, row_digests
from explorer.diagnostics.base import ComparisonContext, Diagnostic, DiagnosticResult, register
from explorer.neighbors.graph import SetNeighbors, set_neighbors
from explorer.neighbors.search import index_pairs

DEFAULT_ALPHA = 0.13


def exact_duplicates(keys) -> np.ndarray:
    """For each item, the position of the first earlier item with the same content key
    (file digest, text hash...), or -1 when it is the first of its kind.

    >>> exact_duplicates(["a", "b", "a", "a"]).tolist()
    [-1, -1, 0, 0]
    """
    out = np.full(len(keys), -1, dtype=np.int64)
    seen: dict = {}
    for i, key in enumerate(keys):
        if key is None or (isinstance(key, float) and np.isnan(key)):
            continue
        first = seen.setdefault(key, i)
        if first != i:
            out[i] = first
    return out


def content_keys(items, x: np.ndarray) -> list:
    """The content key of every item for :func:`exact_duplicates`: its file digest, or for
    precomputed vectors (no digests) a digest of its embedding row.

    >>> import pandas as pd
    >>> keys = content_keys(pd.DataFrame({"id": ["a", "b"]}), np.array([[1.0, 0], [1.0, 0]]))
    >>> keys[0] == keys[1]
    True
    """
    digests = items["digest"].tolist() if "digest" in items else [None] * len(items)
    keys = [d if isinstance(d, str) and d else None for d in digests]
    return row_digests(x) if all(k is None for k in keys) else keys


@dataclass
class NearDuplicates:
    """Result of :func:`near_duplicates`. ``group`` is -1 for items without a near duplicate."""

    threshold: float  # cosine similarity used
    nearest: np.ndarray  # index of the most similar other item
    similarity: np.ndarray  # its cosine similarity
    group: np.ndarray
    typical: float  # median cosine distance to the nearest neighbour (the scale of "near")
    method: str = "exact"  # how the pairs were found

    @property
    def flagged(self) -> np.ndarray:
        return self.group >= 0

    @property
    def n_groups(self) -> int:
        return int(self.group.max() + 1) if len(self.group) else 0


def near_duplicates(x: np.ndarray, *, alpha: float = DEFAULT_ALPHA, threshold: float | None = None,
                    neighbors: SetNeighbors | None = None, method: str = "auto") -> NearDuplicates:
    """Near-duplicate groups: items joined when their cosine similarity reaches the threshold,
    grouped by connected components (so a chain of near copies is one group). Pairs are found by
    range search in the set's index (``neighbors``, made here when not given), never all pairs.

    >>> x = np.array([[1.0, 0, 0], [1, 0.001, 0], [0, 1, 0], [0, 0, 1], [0, 0.6, 0.8]])
    >>> r = near_duplicates(x, threshold=0.999)
    >>> r.group.tolist()
    [0, 0, -1, -1, -1]
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(x)
    if n < 2:
        return NearDuplicates(1.0, np.full(n, -1), np.full(n, np.nan), np.full(n, -1), float("nan"))
    graph = neighbors if neighbors is not None and neighbors.k >= 1 else set_neighbors(
        normalize_rows(x, dtype=np.float32), k=1, method=method)
    sim = 1.0 - graph.distances[:, 0].astype(np.float64) ** 2 / 2
    gaps = 1.0 - sim
    apart = gaps[gaps > 1e-6]  # identical copies say nothing about how far apart items usually are
    typical = float(np.median(apart)) if len(apart) else 0.0
    thr = float(threshold) if threshold is not None else 1.0 - alpha * typical
    if threshold is not None and not -1.0 <= thr <= 1.0:
        raise ValueError(f"a cosine threshold lies in [-1, 1], got {thr}")
    radius = float(np.sqrt(max(2.0 * (1.0 - thr), 0.0) + 1e-7))  # distance of unit vectors at that similarity
    rows, cols, report = index_pairs(graph.index, radius=radius, known=(graph.indices, graph.distances))
    group = np.full(n, -1, dtype=np.int64)
    if len(rows):
        adjacency = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
        _, comp = connected_components(adjacency, directed=False)
        members = np.zeros(n, dtype=bool)
        members[rows] = members[cols] = True
        # number groups by first member so that names are stable
        _, first = np.unique(comp[members], return_index=True)
        order = {c: g for g, c in enumerate(comp[members][np.sort(first)])}
        group[members] = [order[c] for c in comp[members]]
    return NearDuplicates(thr, graph.indices[:, 0], sim, group, typical, method=report.describe())


@register
class ExactDuplicate(Diagnostic):
    name = "exact_duplicate"
    description = "identical content to an earlier item of the same set"
    needs_reference = False

    def run(self, c: ComparisonContext) -> list[DiagnosticResult]:
        ids = c.items_["id"].astype(str).to_numpy()
        r = DiagnosticResult.empty(self, len(ids))
        for idx in c.index_.values():
            r.score[idx] = (c.exact_[idx] >= 0).astype(float)
        dup = np.flatnonzero(c.exact_ >= 0)
        r.flag_items(dup, [f"exact copy of {ids[j]}" for j in c.exact_[dup]])
        return [r.finish()]


@register
class NearDuplicate(Diagnostic):
    name = "near_duplicate"
    description = "nearly identical to another item of the same set (cosine at or above the threshold)"
    needs_reference = False

    def run(self, c: ComparisonContext) -> list[DiagnosticResult]:
        ids = c.items_["id"].astype(str).to_numpy()
        r = DiagnosticResult.empty(self, len(ids))
        for name, idx in c.index_.items():
            nd = c.near_[name]
            r.score[idx] = np.clip(1.0 - (1.0 - nd.similarity) / max(nd.typical, 1e-12), 0.0, 1.0)
            sizes = np.bincount(nd.group[nd.group >= 0], minlength=nd.n_groups)
            hit = np.flatnonzero(nd.flagged)
            r.flag_items(idx[hit], [f"near duplicate of {ids[idx[nd.nearest[j]]]} (cosine {nd.similarity[j]:.4f}; "
                                    f"group {name}/g{nd.group[j]} of {sizes[nd.group[j]]})" for j in hit])
        return [r.finish(thresholds={s: d.threshold for s, d in c.near_.items()})]
