"""One neighbour index behind every k-NN consumer: exact search for small inputs, an HNSW graph
(faiss) above a size threshold, exact search on a CUDA GPU where there is one.

Why these, measured on 2 cores, 200k unit rows reduced to 50-d, 30 uneven clusters, k = 15
(benchmarks/scale.py prints the same comparison at every run):

==============================  =======  ========  ==========
method                          build s  search s  recall@15
==============================  =======  ========  ==========
exact, blocked BLAS             -        ~170      1
faiss HNSW M=32, efSearch=64    7.4      6.4       0.93
faiss HNSW M=16, efSearch=64    4.7      4.0       0.79
faiss IVF-Flat 1788, nprobe=16  1.3      2.4       0.58
pynndescent (UMAP's own)        27.9 (with its numba JIT)  0.71
==============================  =======  ========  ==========

HNSW wins on recall per second and has no JIT. It is built with efConstruction 100, not faiss's
40: measured on 50k x 256 (noisy clusters, k = 5), a better-connected graph builds in 6.6 s against
4.4 s but searches in 6.5 s against 9.4 s, and misses a true 5th neighbour for 0.17% of items
against 0.43%. Those misses were PRDC's whole error: a radius 0.8% too large holds ~30 more
samples where distances concentrate, and density drifted by 0.027; with 100 it is within 0.001.

On a GPU, exact search is a few matrix products
(1M x 1M x 50 is ~5e13 flops, seconds on an H100), so it stays exact there: torch does it
without another package.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explorer.neighbors.exact import cross_knn, distance_blocks
from explorer.neighbors.hnsw import EF_CONSTRUCTION, RERANK, HnswGraph

# Up to this many query x base distance evaluations the search stays exact (and deterministic):
# about a 14k-item set against itself, under a second. Measured self-search, k = 15, 50-d, 2 cores:
# 20k items 4.4 s exact against 1.2 s HNSW; 50k 17.7 s against 4.0 s; 100k 73 s against 8.6 s.
EXACT_WORK = 200_000_000
METHODS = ("auto", "exact", "hnsw", "cuda")
RECALL_SAMPLE = 1000  # queries checked against exact search after every approximate search
GROW_START = 16  # first k-NN list length of a range search on the HNSW graph


@dataclass
class SearchReport:
    """How a neighbour search was made: method, sizes, time, and for approximate searches the
    recall@k measured against exact search on a random sample of the queries."""

    method: str
    k: int
    n_queries: int
    n_base: int
    seconds: float
    recall: float | None = None  # None: exact search (recall 1 by construction)
    recall_sample: int = 0
    params: dict = field(default_factory=dict)

    def describe(self) -> str:
        """``hnsw (M=32, efSearch=64), recall@10 0.93 on 1,000 queries`` or ``exact``."""
        text = self.method + (f" ({', '.join(f'{k}={v}' for k, v in self.params.items())})" if self.params else "")
        if self.recall is not None:
            text += f", recall@{self.k} {self.recall:.3f} against exact search on {self.recall_sample:,} queries"
        return text


def default_method() -> str:
    """The method ``auto`` stands for unless told: VENDISCOPE_NEIGHBORS (auto, exact, hnsw, cuda)."""
    method = os.environ.get("VENDISCOPE_NEIGHBORS", "auto").strip().lower() or "auto"
    if method not in METHODS:
        raise ValueError(f"VENDISCOPE_NEIGHBORS must be one of {', '.join(METHODS)}, got {method!r}")
    return method


def cuda_available() -> bool:
    """Whether torch sees a CUDA GPU. On a machine without NVIDIA's driver torch is not even
    imported: the import alone holds ~350 MB of resident memory, measured as most of what a
    CPU comparison of 250k items kept after its first stage."""
    import sys

    driver = ("/proc/driver/nvidia/gpus", "/dev/nvidiactl", "/dev/dxg", "/dev/kfd")  # Linux, containers, WSL, ROCm
    if "torch" not in sys.modules and not any(os.path.exists(p) for p in driver):
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def choose_method(n_queries: int, n_base: int, *, method: str = "auto") -> str:
    """The method a search of ``n_queries`` against ``n_base`` rows uses.

    >>> choose_method(1_000, 5_000), choose_method(1_000_000, 1_000_000, method="exact")
    ('exact', 'exact')
    """
    method = default_method() if method == "auto" else method
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method != "auto":
        return method
    if n_queries * n_base <= EXACT_WORK:
        return "exact"
    return "cuda" if cuda_available() else "hnsw"


class NeighborIndex:
    """Nearest rows of ``base`` by Euclidean distance (cosine order on unit rows).

    Parameters mirror faiss's HNSW: ``m`` links per node, ``ef_construction`` and ``ef_search``
    candidate lists; ``ef_search`` is raised to at least 2k for each search; ``rerank``
    candidates per neighbour are re-ranked exactly when wide rows are projected (HnswGraph);
    ``repair`` searches exactly the rows the graph did not lead back to themselves (without it,
    only while that costs at most EXACT_WORK distances). After ``search``,
    ``report_`` says how it was made, with the recall measured on a sample when approximate.

    >>> x = np.random.default_rng(0).normal(size=(200, 8)).astype(np.float32)
    >>> index = NeighborIndex(method="hnsw").fit(x)
    >>> idx, dist = index.search(k=5, exclude_self=True)
    >>> idx.shape, index.report_.method, index.report_.recall > 0.9
    ((200, 5), 'hnsw', True)
    """

    def __init__(self, *, method: str = "auto", m: int = 32, ef_construction: int = EF_CONSTRUCTION,
                 ef_search: int = 64, rerank: int = RERANK, repair: bool = True,
                 n_queries_hint: int | None = None, recall_sample: int = RECALL_SAMPLE, seed: int = 0):
        self.method = method
        self.m = m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.rerank = rerank
        self.repair = repair
        self.n_queries_hint = n_queries_hint
        self.recall_sample = recall_sample
        self.seed = seed

    def fit(self, base: np.ndarray, *, progress: Callable[[int, int], None] | None = None) -> NeighborIndex:
        """Index the rows of ``base`` (float32 copy when needed); ``progress(done, total)``."""
        self.base_ = np.ascontiguousarray(base, dtype=np.float32)
        n = len(self.base_)
        self.method_ = choose_method(self.n_queries_hint if self.n_queries_hint is not None else n, n,
                                     method=self.method)
        self.index_: Any = None
        self.params_: dict = {}
        if self.method_ == "hnsw":
            self.index_ = HnswGraph(m=self.m, ef_construction=self.ef_construction, rerank=self.rerank,
                                    seed=self.seed).fit(
                self.base_, progress=progress)
            self.params_ = self.index_.params()
        elif self.method_ == "cuda":
            self.params_ = {"device": "cuda"}
        return self

    def search(self, queries: np.ndarray | None = None, *, k: int, exclude_self: bool = False,
               progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Indices into the base and distances of each query's ``k`` nearest rows, nearest first.
        ``queries=None`` searches the base itself; ``exclude_self`` (only then) leaves each row out
        of its own list."""
        same = queries is None
        q = self.base_ if same else np.ascontiguousarray(queries, dtype=np.float32)
        if exclude_self and not same:
            raise ValueError("exclude_self needs queries=None (the base searched against itself)")
        limit = len(self.base_) - int(exclude_self)
        if not 0 < k <= limit:
            raise ValueError(f"k must be between 1 and {limit}, got {k}")
        start = time.perf_counter()
        params = dict(self.params_)
        if self.method_ == "exact":
            idx, dist = cross_knn(q, self.base_, k=k, exclude_self=exclude_self)
        elif self.method_ == "cuda":
            idx, dist = _cuda_knn(q, self.base_, k=k, exclude_self=exclude_self)
        else:
            ef = max(self.ef_search, 2 * (k + int(exclude_self)))
            params["efSearch"] = ef
            idx, dist = self._approximate(q, k=k, exclude_self=exclude_self, ef=ef, progress=progress)
            if exclude_self:
                params["searched exactly"] = self.repaired_
                if self.kept_lost_:
                    params["lost, kept approximate"] = self.kept_lost_
        report = SearchReport(self.method_, k, len(q), len(self.base_), time.perf_counter() - start, params=params)
        if self.method_ == "hnsw":
            report.recall, report.recall_sample = self._recall(q, idx, k=k, exclude_self=exclude_self)
        self.report_ = report
        return idx, dist

    def range_search(self, queries: np.ndarray | None = None, *, radius: float | np.ndarray,
                     exclude_self: bool = False,
                     known: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pairs within Euclidean ``radius`` (one for all, or one per query): (query row, base
        row, distance), sorted by query.
        Never all pairs: the exact path walks blocks (on the GPU for ``cuda``); the HNSW path
        grows each query's k-NN list (from ``known`` lists when given) until its farthest
        neighbour lies beyond the radius. (faiss's own HNSW range search aborts the process in
        faiss 1.15 once efSearch is raised above its default, so it is not used.)"""
        same = queries is None
        q = self.base_ if same else np.ascontiguousarray(queries, dtype=np.float32)
        radius = np.broadcast_to(np.asarray(radius, dtype=np.float64), (len(q),))
        start = time.perf_counter()
        if self.method_ == "hnsw":
            r, c, dist = self._grow(q, radius=radius, exclude_self=exclude_self and same, known=known)
        else:
            parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
            if self.method_ == "cuda":
                parts = list(_cuda_range(q, self.base_, radius=radius))
            else:
                for block, d in distance_blocks(q, self.base_):
                    rr, cc = np.nonzero(d <= radius[block, None] ** 2)
                    parts.append((rr + block.start, cc, d[rr, cc]))
            r = np.concatenate([p[0] for p in parts]).astype(np.int64)
            c = np.concatenate([p[1] for p in parts]).astype(np.int64)
            dist = np.sqrt(np.maximum(np.concatenate([p[2] for p in parts]), 0))
            if exclude_self and same:
                r, c, dist = r[r != c], c[r != c], dist[r != c]
        order = np.lexsort((c, r))
        shown = round(float(radius[0]), 6) if len(radius) and np.all(radius == radius[0]) else "per query"
        self.report_ = SearchReport(self.method_, 0, len(q), len(self.base_), time.perf_counter() - start,
                                    params=dict(self.params_, radius=shown))
        return r[order].astype(np.int64), c[order].astype(np.int64), dist[order].astype(np.float32)

    def _grow(self, q: np.ndarray, *, radius: np.ndarray, exclude_self: bool,
              known: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        limit = len(self.base_) - int(exclude_self)
        if known is None:
            k = min(GROW_START, limit)
            idx, dist = (self.search(k=k, exclude_self=True) if exclude_self else self.search(q, k=k))
        else:
            idx, dist = known
        rows, cols, dists = [], [], []
        pending = np.arange(len(q))
        while True:
            inside = dist <= radius[pending, None]
            full = inside[:, -1] & (idx.shape[1] < limit)  # the whole list is inside: there may be more
            done = ~full
            rr, cc = np.nonzero(inside & done[:, None])
            rows.append(pending[rr])
            cols.append(idx[rr, cc])
            dists.append(dist[rr, cc])
            if not full.any():
                break
            pending, k = pending[full], min(2 * idx.shape[1], limit)
            idx, dist = self._search_rows(q, pending, k=k, exclude_self=exclude_self)
        return np.concatenate(rows), np.concatenate(cols), np.concatenate(dists)

    def _search_rows(self, q: np.ndarray, rows: np.ndarray, *, k: int,
                     exclude_self: bool) -> tuple[np.ndarray, np.ndarray]:
        """k-NN lists of some query rows, without the row itself when the queries are the base."""
        idx, dist = self.index_.search(q[rows], k=k + int(exclude_self), ef=max(self.ef_search, 2 * (k + 1)))
        if exclude_self:
            idx, dist = _drop(idx, dist, rows, k)
        return idx, dist

    def _approximate(self, q: np.ndarray, *, k: int, exclude_self: bool, ef: int,
                     progress: Callable[[int, int], None] | None) -> tuple[np.ndarray, np.ndarray]:
        idx, dist = self.index_.search(q, k=k + int(exclude_self), ef=ef, progress=progress)
        exact_rows = (idx < 0).any(axis=1)  # fewer than k reachable (tiny graphs)
        kept_lost = 0
        if exclude_self:
            own = idx == np.arange(len(q))[:, None]
            # a row the graph search did not lead back to itself got lost in the graph: measured,
            # such rows carry most of the large errors (radii off by 2x), so they are searched exactly
            lost = ~own.any(axis=1)
            # without ``repair``, lost rows are still searched exactly while that stays cheap
            # (the 20k landmarks of a draft map); at a million rows it would be quadratic
            if self.repair or lost.sum() * len(self.base_) <= EXACT_WORK:
                exact_rows |= lost
            else:
                kept_lost = int(lost.sum())
            own[lost, -1] = True
            idx, dist = idx[~own].reshape(len(q), k), dist[~own].reshape(len(q), k)
        bad = np.flatnonzero(exact_rows)
        if len(bad):
            fi, fd = cross_knn(q[bad], self.base_, k=k + int(exclude_self))
            if exclude_self:
                fi, fd = _drop(fi, fd, bad, k)
            idx[bad], dist[bad] = fi, fd
        self.repaired_, self.kept_lost_ = len(bad), kept_lost
        return idx, dist

    def _recall(self, q: np.ndarray, idx: np.ndarray, *, k: int, exclude_self: bool) -> tuple[float, int]:
        rng = np.random.default_rng(self.seed)
        sample = np.sort(rng.choice(len(q), min(len(q), self.recall_sample), replace=False))
        if not len(sample):
            return float("nan"), 0
        if exclude_self:  # the sample's own rows are left out by distance, not by position
            truth, _ = cross_knn(q[sample], self.base_, k=k + 1)
            truth = np.array([[j for j in row if j != s][:k] for row, s in zip(truth, sample)])
        else:
            truth, _ = cross_knn(q[sample], self.base_, k=k)
        hits = [len(np.intersect1d(a, b)) for a, b in zip(idx[sample], truth)]
        return float(np.sum(hits) / (k * len(sample))), len(sample)


def _drop(idx: np.ndarray, dist: np.ndarray, own: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    keep = idx != own[:, None]
    keep[keep.sum(axis=1) > k, -1] = False
    return idx[keep].reshape(len(idx), k), dist[keep].reshape(len(idx), k)


def _cuda_knn(q: np.ndarray, base: np.ndarray, *, k: int, exclude_self: bool) -> tuple[np.ndarray, np.ndarray]:
    """Exact blocked search on the GPU with torch (a matrix product and a top-k per block)."""
    import torch

    device = torch.device("cuda")
    b = torch.from_numpy(base).to(device)
    sq_b = (b * b).sum(dim=1)
    block = max(1, (1 << 28) // max(1, len(base)))  # 1 GiB of float32 distances at a time
    idx = np.empty((len(q), k), dtype=np.int64)
    dist = np.empty((len(q), k), dtype=np.float32)
    for start in range(0, len(q), block):
        rows = slice(start, min(len(q), start + block))
        qq = torch.from_numpy(q[rows]).to(device)
        d2 = (qq * qq).sum(dim=1, keepdim=True) + sq_b[None, :] - 2.0 * (qq @ b.T)
        if exclude_self:
            local = torch.arange(rows.stop - rows.start, device=device)
            d2[local, local + rows.start] = float("inf")
        top_d, top_i = torch.topk(d2, k, dim=1, largest=False, sorted=True)
        idx[rows] = top_i.cpu().numpy()
        dist[rows] = top_d.clamp_min(0).sqrt().cpu().numpy()
    return idx, dist


def _cuda_range(q: np.ndarray, base: np.ndarray, *, radius: np.ndarray):
    """(rows, cols, squared distances) of pairs within ``radius``, a block at a time on the GPU;
    only the pairs found cross back to the host."""
    import torch

    device = torch.device("cuda")
    b = torch.from_numpy(base).to(device)
    sq_b = (b * b).sum(dim=1)
    block = max(1, (1 << 28) // max(1, len(base)))
    for start in range(0, len(q), block):
        rows = slice(start, min(len(q), start + block))
        qq = torch.from_numpy(q[rows]).to(device)
        d2 = ((qq * qq).sum(dim=1, keepdim=True) + sq_b[None, :] - 2.0 * (qq @ b.T)).clamp_min(0)
        limit = torch.from_numpy(np.ascontiguousarray(radius[rows], dtype=np.float32)).to(device) ** 2
        rr, cc = torch.nonzero(d2 <= limit[:, None], as_tuple=True)
        yield (rr + start).cpu().numpy(), cc.cpu().numpy(), d2[rr, cc].cpu().numpy()
