"""The blocked greedy engine behind subset selection: picks items one at a time by the smallest
key, where every pick can only raise the other items' keys, with O(n d) work a pick done as
matrix products.

Two keys share it:
- ``"vendi"``: the order-2 overlap of x with the picks so far, xᵀ M x with M = Σⱼ xⱼxⱼᵀ
  (= Σⱼ (x·xⱼ)²). Adding x raises Σᵢⱼ Kᵢⱼ² by 1 + 2 xᵀMx, so the smallest key is exactly the
  pick that maximises VS₂ = m² / Σᵢⱼ Kᵢⱼ² of the grown set. A pick x* raises each key by (x·x*)².
- ``"kcenter"``: the largest cosine to a pick so far (farthest-point sampling, Gonzalez's
  2-approximation of k-center); a pick x* raises each key to max(key, x·x*).

Updating all n keys after each pick reads the whole n×d matrix once a pick: 10k picks from
1M×512 float32 would stream 20 TB, ~2,000 s memory-bound on 2 cores. Instead keys are brought up
to date once a block of picks (one n×d by d×B product, compute-bound), and between updates the
picks are made from a pool of the items with the smallest keys, kept exact. Since keys only grow,
a stale key outside the pool is a lower bound of its true key: the pool's smallest exact key is
the true minimum as long as it is at most the smallest key outside (``tau``); when it is not, the
block ends early and every key is brought up to date. So the picks are exactly those of the
one-at-a-time greedy (up to float32 rounding in ties), at BLAS-3 speed.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

KEYS = ("vendi", "kcenter")
ROW_BLOCK = 65_536  # rows per product when keys are updated: a 64k × 256 float32 block is 64 MB


def _raise(key: np.ndarray, sims: np.ndarray, kind: str) -> np.ndarray:
    """The keys after picks whose cosines with the items are ``sims`` (items × picks)."""
    if kind == "vendi":
        return key + np.einsum("ij,ij->i", sims, sims, dtype=np.float64)
    return np.maximum(key, sims.max(axis=1))


class Quotas:
    """Per-class quotas: once a pick fills its class's quota, ``on_pick(i)`` returns the rest of
    the class, to be ruled out."""

    def __init__(self, classes: np.ndarray, quotas: np.ndarray) -> None:
        self.classes, self.quotas = classes, quotas
        self.taken = np.zeros(len(quotas), dtype=np.int64)
        self.by_class = _members(classes)

    def on_pick(self, i: int) -> np.ndarray:
        c = int(self.classes[i])
        self.taken[c] += 1
        return self.by_class[c] if self.taken[c] >= self.quotas[c] else _NONE

    def full_classes(self) -> np.ndarray:
        """Items of classes whose quota is 0 (ruled out from the start)."""
        empty = [int(c) for c in np.flatnonzero(self.quotas == 0)]
        return np.concatenate([_NONE, *(self.by_class[c] for c in empty if c in self.by_class)])


_NONE = np.zeros(0, dtype=np.int64)


def _members(labels: np.ndarray) -> dict[int, np.ndarray]:
    """Positions of each non-negative label."""
    labels = np.asarray(labels)
    at = np.flatnonzero(labels >= 0)
    order = at[np.argsort(labels[at], kind="stable")]
    values, starts = np.unique(labels[order], return_index=True)
    return {int(v): part for v, part in zip(values, np.split(order, starts[1:]))}


def blocked_greedy(rows: np.ndarray, *, k: int, kind: str = "vendi", eligible: np.ndarray | None = None,
                   first: int | None = None, quotas: Quotas | None = None, near: float | None = None,
                   block: int = 256, pool_size: int = 2048, progress: Callable[[int, int, str], None] | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``k`` rows of ``rows`` (unit rows, float32) picked greedily by the smallest ``kind`` key,
    starting from ``first`` (default: the first eligible row); returns the picks in order and each
    pick's key when picked. A pick rules out every row at cosine ≥ ``near`` from it (so no two
    picks are that close) and, through ``quotas``, the rest of a class whose quota it fills.
    Fewer eligible rows than ``k`` under these rules is a ValueError.

    >>> rows = np.array([[1, 0], [0.99, 0.141], [0, 1], [0.6, 0.8]], dtype=np.float32)
    >>> picks, keys = blocked_greedy(rows, k=2, first=0)
    >>> picks.tolist(), keys.round(3).tolist()
    ([0, 2], [0.0, 0.0])
    """
    if kind not in KEYS:
        raise ValueError(f"unknown key {kind!r}; choose from {', '.join(KEYS)}")
    n = len(rows)
    report = progress or (lambda done, total, stage: None)
    key = np.zeros(n) if kind == "vendi" else np.full(n, -1.0)  # no pick yet: no overlap, cosine ≥ -1
    if eligible is not None:
        key[~np.asarray(eligible, dtype=bool)] = np.inf
    if quotas is not None:
        key[quotas.full_classes()] = np.inf
    if first is not None:
        if not np.isfinite(key[first]):
            raise ValueError(f"the first pick (row {first}) is not eligible")
        key[first] = -np.inf  # picked first whatever the key says
    picks: list[int] = []
    values: list[float] = []
    while len(picks) < k:
        size = min(pool_size, n)
        if size < n:
            order = np.argpartition(key, size)[: size + 1]
            pool, tau = order[:size], key[order[size]]  # tau: a lower bound of every key outside the pool
        else:
            pool, tau = np.arange(n), np.inf
        if key[pool].min() == np.inf:
            raise ValueError(f"only {len(picks)} item(s) could be chosen under the constraints "
                             f"(eligible items, quotas, no two near duplicates); asked for {k}")
        pool_key, pool_rows = key[pool].copy(), rows[pool]
        done: list[int] = []
        while len(done) < block and len(picks) < k:
            j = int(np.argmin(pool_key))
            if pool_key[j] == np.inf or pool_key[j] > tau:
                break  # an item outside the pool may now be the smallest: bring every key up to date
            i = int(pool[j])
            picks.append(i)
            values.append(0.0 if pool_key[j] == -np.inf else float(pool_key[j]))
            done.append(i)
            sims = pool_rows @ rows[i]
            pool_key = _raise(pool_key, sims[:, None], kind)
            if near is not None:  # the pool's near duplicates of the pick now; those outside at the update
                pool_key[sims >= near] = np.inf
                key[pool[sims >= near]] = np.inf
            key[i] = pool_key[j] = np.inf
            if quotas is not None and len(full := quotas.on_pick(i)):
                key[full] = np.inf
                pool_key[np.isin(pool, full)] = np.inf
        picked = rows[np.asarray(done)]
        for start in range(0, n, ROW_BLOCK):  # the update, one block of rows at a time (ruled out stay inf)
            part = slice(start, min(n, start + ROW_BLOCK))
            sims = rows[part] @ picked.T
            fresh = _raise(key[part], sims, kind)
            if near is not None:
                fresh[(sims >= near).any(axis=1)] = np.inf
            key[part] = fresh
        report(len(picks), k, "picking")
    return np.asarray(picks, dtype=np.int64), np.asarray(values)
