"""The approximate index: a faiss HNSW graph, built on a PCA projection of wide rows and re-ranked
with exact distances.

Why the projection, measured at 200k x 512 (clusters of intrinsic dimension 24, 2 cores, k = 6):
the graph on raw rows builds in 29 s, searches in 43 s, recall 0.970; on 128 principal
components, re-ranking 4k candidates with exact distances, 12 s and 18 s, recall 0.994. The
re-ranking is written here rather than with faiss's IndexRefineFlat because that keeps a second
full copy of the rows; this reads the caller's rows in place. Distances returned are always exact
distances between the original rows.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

PROJECT_ABOVE = 128  # rows wider than this are indexed by their leading principal components
RERANK = 4  # candidates per neighbour asked of the projected graph, re-ranked exactly
EF_CONSTRUCTION = 100  # not faiss's 40: explorer.neighbors.index says why
PCA_SAMPLE = 50_000  # rows the projection is fitted on
CHUNK = 65_536  # rows added or searched at a time (progress, cancellation)
RERANK_BLOCK = 1_024  # queries re-ranked at a time, at most: block x candidates x d floats
# and at most this many gathered floats (64 MB): a range search grows lists to thousands of
# candidates, and 1,024 queries x 4,096 candidates x 256 dimensions had gathered 4 GB at once
RERANK_FLOATS = 1 << 24
RESULT_ENTRIES = 1 << 24  # candidates faiss returns at a time (192 MB of indices and distances)


@dataclass(frozen=True)
class HnswParams:
    """How the graph is built and searched: ``m`` links per node, ``ef_construction`` and
    ``ef_search`` candidate lists, ``rerank`` candidates per wanted neighbour re-ranked exactly
    (rows wider than PROJECT_ABOVE, searched in projection); ``repair``: a row whose search did
    not lead back to itself is searched exactly (explorer.neighbors.index says why; it costs that
    row a pass over every row, so without it only while that stays cheap).

    >>> HnswParams().m, FAST.rerank
    (32, 2)
    """

    m: int = 32
    ef_construction: int = EF_CONSTRUCTION
    ef_search: int = 64
    rerank: int = RERANK
    repair: bool = True


ACCURATE = HnswParams()  # PRDC, coverage, duplicates: radii must be right (explorer.neighbors.index)
# Maps need each item's neighbourhood, not its exact 5th neighbour. Measured at 200k x 256 (30
# clusters, k = 15, 2 cores): ACCURATE builds in 44 s and searches in 38 s, recall 0.993; FAST in
# 19 s and 18 s, recall 0.946 (UMAP's own NN-descent is content with ~0.9). Its search does not
# lead 3.5% of rows back to themselves; repairing those exactly would cost 35k passes over every
# row at 1M, so FAST keeps their approximate lists unless repairing is cheap (a draft's 20k landmarks).
FAST = HnswParams(m=24, ef_construction=60, ef_search=32, rerank=2, repair=False)


class HnswGraph:
    """faiss ``IndexHNSWFlat`` over ``base`` (or its PCA projection when wider than
    ``project_above``), searched with exact re-ranking.

    >>> x = np.random.default_rng(0).normal(size=(300, 200)).astype(np.float32)
    >>> g = HnswGraph().fit(x)
    >>> idx, dist = g.search(x[:3], k=2, ef=64)
    >>> idx[:, 0].tolist(), g.params()["projected"]
    ([0, 1, 2], 128)
    """

    def __init__(self, *, m: int = 32, ef_construction: int = EF_CONSTRUCTION, project_above: int = PROJECT_ABOVE,
                 rerank: int = RERANK, seed: int = 0) -> None:
        self.m = m
        self.ef_construction = ef_construction
        self.project_above = project_above
        self.rerank = rerank
        self.seed = seed

    def fit(self, base: np.ndarray, *, progress: Callable[[int, int], None] | None = None) -> HnswGraph:
        import faiss

        self.base_ = base
        self.sq_norms_ = np.einsum("ij,ij->i", base, base)
        n, d = base.shape
        self.mean_: np.ndarray | None = None
        self.components_: np.ndarray | None = None
        if d > self.project_above:
            rng = np.random.default_rng(self.seed)
            sample = base[np.sort(rng.choice(n, PCA_SAMPLE, replace=False))] if n > PCA_SAMPLE else base
            mean = sample.mean(axis=0, dtype=np.float64)
            centred = sample - mean
            _, vectors = np.linalg.eigh(centred.T.astype(np.float64) @ centred)
            self.mean_ = mean.astype(np.float32)
            self.components_ = np.ascontiguousarray(vectors[:, ::-1][:, : self.project_above], dtype=np.float32)
        index: Any = faiss.IndexHNSWFlat(self.components_.shape[1] if self.components_ is not None else d, self.m)
        index.hnsw.efConstruction = self.ef_construction
        for start in range(0, n, CHUNK):
            index.add(self._project(base[start : start + CHUNK]))
            if progress:
                progress(min(n, start + CHUNK), n)
        self.index_ = index
        return self

    def params(self) -> dict:
        out: dict = {"M": self.m, "efConstruction": self.ef_construction}
        if self.components_ is not None:
            out["projected"] = self.components_.shape[1]
            out["reranked"] = f"{self.rerank}k"
        return out

    def search(self, q: np.ndarray, *, k: int, ef: int,
               progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Indices (-1 where fewer were reachable) and exact Euclidean distances of each query's
        ``k`` nearest base rows, nearest first."""
        projected = self.components_ is not None
        wanted = min(len(self.base_), k * self.rerank) if projected else k
        self.index_.hnsw.efSearch = max(ef, wanted)
        idx = np.empty((len(q), k), dtype=np.int64)
        dist = np.empty((len(q), k), dtype=np.float32)
        chunk = max(1, min(CHUNK, RESULT_ENTRIES // wanted))  # a long list each: fewer queries at a time
        for start in range(0, len(q), chunk):
            rows = slice(start, min(len(q), start + chunk))
            d2, found = self.index_.search(self._project(q[rows]), wanted)
            if projected:
                found, d2 = self._rerank(q[rows], found, k)
            idx[rows], dist[rows] = found[:, :k], np.sqrt(np.maximum(d2[:, :k], 0))
            if progress:
                progress(rows.stop, len(q))
        return idx, dist

    def _project(self, rows: np.ndarray) -> np.ndarray:
        if self.components_ is None:
            return np.ascontiguousarray(rows, dtype=np.float32)
        return np.ascontiguousarray((rows - self.mean_) @ self.components_, dtype=np.float32)

    def _rerank(self, q: np.ndarray, found: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        out_i = np.empty((len(q), k), dtype=np.int64)
        out_d = np.empty((len(q), k), dtype=np.float32)
        sq_q = np.einsum("ij,ij->i", q, q)
        block = max(1, min(RERANK_BLOCK, RERANK_FLOATS // max(1, found.shape[1] * q.shape[1])))
        for start in range(0, len(q), block):
            rows = slice(start, min(len(q), start + block))
            cand = found[rows]
            valid = cand >= 0
            safe = np.where(valid, cand, 0)
            dots = np.einsum("ijd,id->ij", self.base_[safe], q[rows])
            d2 = np.where(valid, sq_q[rows, None] + self.sq_norms_[safe] - 2.0 * dots, np.inf)
            order = np.argsort(d2, axis=1, kind="stable")[:, :k]
            out_i[rows] = np.where(np.isfinite(np.take_along_axis(d2, order, axis=1)),
                                   np.take_along_axis(cand, order, axis=1), -1)
            out_d[rows] = np.take_along_axis(d2, order, axis=1)
        return out_i, out_d
