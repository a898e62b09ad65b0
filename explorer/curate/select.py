"""Diverse subsets: k items chosen greedily to maximise the Vendi score, under per-class quotas,
without flagged items and never two near duplicates, scored against random subsets and a
farthest-point (k-center) subset of the same k.

The greedy maximises VS₂ exactly at each step through its order-2 gain xᵀ M x with
M = Σⱼ xⱼxⱼᵀ, updated in O(n d) a pick (explorer.curate.greedy). No order-1 refinement is
offered: an order-1 gain −xᵀ log(C_S) x changes for every item whenever C_S changes (the log is
not additive), so each pick would cost O(n d²) instead of O(n d), 512× more at d = 512; and the
order-2 greedy already meets the VS₁ targets (≥ the best of 20 random subsets, ≥ 0.98× k-center;
tests/test_select.py, benchmarks/select.py).

Near duplicates are defined as in explorer.diagnostics.duplicates: cosine at or above
1 − α × the median cosine distance of an item to its nearest neighbour (α = 0.13, cleanlab's), or
a fixed cosine; here on the kernel's rows, the rows the subset is chosen on. The median is taken
over up to NEAR_SAMPLE items searched exactly against all (all of them in smaller sets, which is
then the audit's own number): the audit's k-NN graph of every item would cost more than the
selection at a million items. A pick rules out every item that close to it, so no two chosen
items are near duplicates (pairwise, by the cosine itself).

Quotas (``classes`` given) are proportional to the class sizes (largest remainders), with at
least one item of every class when k allows, so that no class is dropped; ``quotas="equal"``
shares k evenly instead. A class with fewer usable items than its share gets them all and the
rest goes to the others. The quotas are met exactly or the selection fails with an error.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from explorer.curate.greedy import ROW_BLOCK, Quotas, blocked_greedy
from explorer.diagnostics.duplicates import DEFAULT_ALPHA
from explorer.metrics.kernel_rows import kernel_rows
from explorer.metrics.spectrum import DEFAULT_ORDERS, order_label
from explorer.metrics.vendi import vendi_scores
from explorer.neighbors.search import cross_knn
from explorer.store.cache import cached, hash_key

QUOTAS = ("proportional", "equal")
NEAR_SAMPLE = 1000  # items whose nearest neighbour sets the scale of "near"
SUBSET_FLAGS = "curate"  # the source of the flags that save a chosen subset


def flagged_ids(flags) -> list[str]:
    """The ids a selection leaves out: those with a flag, except flags that only save a subset
    chosen before (source ``SUBSET_FLAGS``), so flagging a subset does not push it out of the next.

    >>> import tempfile
    >>> from explorer.store.flags import FlagStore
    >>> store = FlagStore("demo", root=tempfile.mkdtemp())
    >>> _ = store.add(["a", "b"], reason="blurry"); _ = store.add(["c"], reason="diverse subset k=1", source="curate")
    >>> flagged_ids(store)
    ['a', 'b']
    """
    table = flags.table()
    return sorted(set(table.loc[table["source"] != SUBSET_FLAGS, "id"].astype(str)))
Progress = Callable[[int, int, str], None]


def class_quotas(sizes: Sequence[int] | np.ndarray, *, k: int, mode: str = "proportional",
                 capacity: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """How many of ``k`` picks each class gets: proportional to ``sizes`` (or equal), by largest
    remainders, at least one per class when k ≥ the number of classes, never above ``capacity``
    (default: the sizes).

    >>> class_quotas([900, 90, 10], k=10).tolist(), class_quotas([900, 90, 10], k=9, mode="equal").tolist()
    ([8, 1, 1], [3, 3, 3])
    >>> class_quotas([5, 1], k=4, mode="equal").tolist()   # the small class gives its share away
    [3, 1]
    """
    if mode not in QUOTAS:
        raise ValueError(f"unknown quota mode {mode!r}; choose from {', '.join(QUOTAS)}")
    sizes_ = np.asarray(sizes, dtype=np.float64)
    cap = np.asarray(sizes if capacity is None else capacity, dtype=np.int64)
    if k > cap.sum():
        raise ValueError(f"asked for {k} items but only {int(cap.sum())} can be chosen under the constraints")
    target = k * (sizes_ / sizes_.sum() if mode == "proportional" else np.full(len(cap), 1 / len(cap)))
    quota = np.minimum(cap, np.floor(target).astype(np.int64))
    if k >= int((cap > 0).sum()):  # a diverse subset drops no class it can keep
        quota = np.maximum(quota, (cap > 0).astype(np.int64))
    while quota.sum() > k:  # the floors of one overshot: take back where a class is most above its share
        over = np.where(quota > 1, quota - target, -np.inf)
        quota[int(np.argmax(over))] -= 1
    while quota.sum() < k:  # largest remainder first, among the classes with room left
        short = np.where(quota < cap, target - quota, -np.inf)
        quota[int(np.argmax(short))] += 1
    return quota


class DiverseSubset:
    """Choose ``k`` diverse items: greedy order-2 Vendi maximisation on the ``kernel``'s rows.

    Learned: ``indices_`` (picks in order), ``overlaps_`` (each pick's xᵀMx with the picks before
    it), ``gains_`` (each pick's gain in VS₂), ``scores_`` (the subset's VS at orders ``q``),
    ``random_scores_`` ({"mean", "best"}: of ``n_random`` random subsets of the same k and quotas),
    ``kcenter_indices_`` and ``kcenter_scores_`` (farthest-point subset, same k, start, quotas and
    exclusions), ``quotas_``, ``near_threshold_``, ``kernel_info_``.

    >>> x = np.vstack([np.eye(4)[[0]].repeat(50, 0), np.eye(4)[1:]]) + 0.01
    >>> s = DiverseSubset(k=4, kernel="cosine", n_random=2).fit(x)
    >>> int((s.indices_ < 50).sum()), round(s.scores_[1.0], 2)   # one of the 50 copies, and the 3 others
    (1, 4.0)
    """

    def __init__(self, *, k: int, q: Sequence[float] = DEFAULT_ORDERS, quotas: str = "proportional",
                 kernel: str = "centred", near_alpha: float = DEFAULT_ALPHA, near_threshold: float | None = None,
                 dedupe: bool = True, n_random: int = 20, compare: bool = True, seed: int = 0,
                 block: int = 256) -> None:
        self.k = k
        self.q = q
        self.quotas = quotas
        self.kernel = kernel
        self.near_alpha = near_alpha
        self.near_threshold = near_threshold
        self.dedupe = dedupe
        self.n_random = n_random
        self.compare = compare
        self.seed = seed
        self.block = block

    def fit(self, x: np.ndarray, *, classes: Sequence | None = None, exclude: np.ndarray | None = None,
            centre: np.ndarray | None = None, centre_origin: str | None = None,
            progress: Progress | None = None) -> DiverseSubset:
        """Choose from the rows of ``x``; ``classes`` (one label per row) sets quotas, ``exclude``
        (a boolean mask) rules rows out (flagged items), ``centre`` is the centred kernel's centre."""
        report = progress or (lambda done, total, stage: None)
        start = time.perf_counter()
        x = np.asarray(x)
        n = len(x)
        if x.ndim != 2 or n == 0:
            raise ValueError(f"expected a non-empty (n, d) array of embeddings, got shape {x.shape}")
        if not isinstance(self.k, (int, np.integer)) or self.k < 1:
            raise ValueError(f"k must be a whole number of at least 1, got {self.k!r}")
        eligible = np.ones(n, dtype=bool)
        if exclude is not None:
            exclude = np.asarray(exclude, dtype=bool)
            if exclude.shape != (n,):
                raise ValueError(f"exclude has {exclude.size} values for {n} items")
            eligible &= ~exclude
        report(0, self.k, "kernel rows")
        rows, self.kernel_info_ = kernel_rows(x, kernel=self.kernel, centre=centre, centre_origin=centre_origin)
        self.near_threshold_ = None
        if self.dedupe and n > 1:
            report(0, self.k, "near duplicates")
            self.near_threshold_ = near_threshold(rows, alpha=self.near_alpha, threshold=self.near_threshold,
                                                  seed=self.seed)
        codes, names = (None, np.zeros(0, dtype=object)) if classes is None else _codes(classes, n)
        self.class_names_: np.ndarray = names
        self.quotas_: np.ndarray | None = None
        if codes is not None:
            self.quotas_ = class_quotas(np.bincount(codes[eligible], minlength=len(names)), k=self.k,
                                        mode=self.quotas)
        elif self.k > eligible.sum():
            raise ValueError(f"asked for {self.k:,} items but only {int(eligible.sum()):,} are eligible")
        rng = np.random.default_rng(self.seed)
        first = self._first(codes, eligible, rng)

        def rules() -> dict:  # the same for the greedy and for k-center: fresh quota counts each
            quotas = None if codes is None or self.quotas_ is None else Quotas(codes, self.quotas_)
            return {"eligible": eligible, "first": first, "quotas": quotas, "near": self.near_threshold_,
                    "block": self.block}

        self.indices_, self.overlaps_ = blocked_greedy(rows, k=self.k, kind="vendi", progress=report, **rules())
        sums = np.cumsum(1.0 + 2.0 * self.overlaps_)  # Σᵢⱼ Kᵢⱼ² of the first m picks
        vs2 = np.arange(1, self.k + 1) ** 2 / sums
        self.gains_ = np.diff(vs2, prepend=0.0)
        self.orders_ = tuple(float(o) for o in self.q)
        self.scores_ = self._score(rows, self.indices_)
        self.random_scores_ = self.kcenter_scores_ = None
        self.kcenter_indices_ = None
        if self.compare:
            report(self.k, self.k, f"{self.n_random} random subsets")
            draws = [self._score(rows, self._random(codes, eligible, rng)) for _ in range(self.n_random)]
            self.random_scores_ = {"mean": {o: float(np.mean([d[o] for d in draws])) for o in self.orders_},
                                   "best": {o: float(np.max([d[o] for d in draws])) for o in self.orders_}}
            report(self.k, self.k, "farthest-point subset")
            self.kcenter_indices_, _ = blocked_greedy(rows, k=self.k, kind="kcenter", **rules())
            self.kcenter_scores_ = self._score(rows, self.kcenter_indices_)
        self.seconds_ = time.perf_counter() - start
        return self

    def _first(self, codes: np.ndarray | None, eligible: np.ndarray, rng: np.random.Generator) -> int:
        """The seed's random eligible item (of a class with a quota), where both greedy runs start."""
        ok = eligible if codes is None or self.quotas_ is None else eligible & (self.quotas_[codes] > 0)
        return int(rng.choice(np.flatnonzero(ok)))

    def _random(self, codes: np.ndarray | None, eligible: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A random subset of the eligible items with the same quotas (near duplicates allowed)."""
        if codes is None or self.quotas_ is None:
            return rng.choice(np.flatnonzero(eligible), size=self.k, replace=False)
        return np.concatenate([rng.choice(np.flatnonzero(eligible & (codes == c)), size=int(m), replace=False)
                               for c, m in enumerate(self.quotas_) if m > 0])

    def _score(self, rows: np.ndarray, indices: np.ndarray) -> dict[float, float]:
        return vendi_scores(rows[np.sort(indices)], q=self.orders_).scores

    def summary(self) -> dict:
        """Plain JSON: the subset's scores against the baselines, the kernel, quotas, thresholds."""
        def labelled(scores: dict | None) -> dict | None:
            return None if scores is None else {order_label(o): v for o, v in scores.items()}

        out = {"k": int(self.k), "kernel": self.kernel_info_.describe(), "objective": "greedy order-2 (VS_2) gain",
               "scores": labelled(self.scores_), "near_threshold": self.near_threshold_,
               "quotas": None if self.quotas_ is None else dict(zip(map(str, self.class_names_),
                                                                    map(int, self.quotas_))),
               "seconds": round(self.seconds_, 3)}
        if self.random_scores_ is not None:
            out["random"] = {"draws": self.n_random, "mean": labelled(self.random_scores_["mean"]),
                             "best": labelled(self.random_scores_["best"])}
            out["kcenter"] = labelled(self.kcenter_scores_)
        return out


def _codes(classes: Sequence, n: int) -> tuple[np.ndarray, np.ndarray]:
    labels = pd.Series(list(classes), dtype=object)
    if len(labels) != n:
        raise ValueError(f"{len(labels)} class labels for {n} items")
    codes, names = pd.factorize(labels.fillna("(none)").astype(str), sort=True)
    return codes.astype(np.int64), np.asarray(names, dtype=object)


def near_threshold(rows: np.ndarray, *, alpha: float = DEFAULT_ALPHA, threshold: float | None = None,
                   sample: int = NEAR_SAMPLE, seed: int = 0) -> float:
    """The cosine at or above which two of the unit ``rows`` are near duplicates: ``threshold``
    when given, else 1 − ``alpha`` × the median distance of an item to its nearest other item
    (identical copies left out, as explorer.diagnostics.duplicates does), over up to ``sample``
    random items searched exactly against all.

    >>> rows = np.array([[1.0, 0, 0], [0.6, 0.8, 0], [0, 0.6, 0.8], [0, 0, 1]], dtype=np.float32)
    >>> round(near_threshold(rows), 3)   # nearest-neighbour cosine distances 0.4, 0.4, 0.2, 0.2: median 0.3
    0.961
    """
    if threshold is not None:
        if not -1.0 <= threshold <= 1.0:
            raise ValueError(f"a cosine threshold lies in [-1, 1], got {threshold}")
        return float(threshold)
    n = len(rows)
    at = np.random.default_rng(seed).choice(n, size=sample, replace=False) if n > sample else np.arange(n)
    # searched a block of base rows at a time, every sampled item against each block: one pass over
    # the rows (a search by blocks of queries would read all of them again for every 33 queries)
    found = [cross_knn(rows[at], rows[start : start + ROW_BLOCK], k=min(2, n - start), method="exact")
             for start in range(0, n, ROW_BLOCK)]
    idx = np.hstack([f.indices + start for f, start in zip(found, range(0, n, ROW_BLOCK))])
    dist = np.hstack([f.distances for f in found])
    dist[idx == at[:, None]] = np.inf  # the item itself (its copies stay: they are left out below)
    other = dist.min(axis=1)
    gaps = other.astype(np.float64) ** 2 / 2  # cosine distance of unit rows
    apart = gaps[gaps > 1e-6]  # identical copies say nothing about how far apart items usually are
    return 1.0 - alpha * float(np.median(apart)) if len(apart) else 1.0


def diverse_subset(x: np.ndarray, *, k: int, classes: Sequence | None = None, exclude: np.ndarray | None = None,
                   **params) -> np.ndarray:
    """The functional twin of :class:`DiverseSubset`: the chosen rows of ``x`` in pick order
    (no baselines are computed).

    >>> np.sort(diverse_subset(np.vstack([np.eye(3)] * 5), k=3, kernel="cosine") % 3).tolist()  # one of each direction
    [0, 1, 2]
    """
    params.setdefault("compare", False)
    return DiverseSubset(k=k, **params).fit(x, classes=classes, exclude=exclude).indices_


def cached_selection(x: np.ndarray, items: pd.DataFrame, *, k: int, per: str | None = None,
                     exclude_ids: Sequence[str] = (), cache_dir=None, progress: Progress | None = None,
                     **params) -> tuple[dict, pd.DataFrame]:
    """:meth:`DiverseSubset.summary` and the picks (rank, id, class, overlap, gain), stored on
    disk by a hash of the embeddings, the ids, the classes, the excluded ids and the parameters.
    ``per`` names the column of ``items`` that sets the quotas."""
    x = np.ascontiguousarray(x)
    items = items.reset_index(drop=True)
    if per is not None and per not in items.columns:
        raise ValueError(f"no column {per!r} to set quotas by (the items have {', '.join(map(str, items.columns))})")
    ids = items["id"].astype(str)
    classes = items[per].astype(object).where(items[per].notna(), None).tolist() if per else None
    exclude = ids.isin(set(map(str, exclude_ids))).to_numpy()
    key = hash_key("select", 1, x, ids.to_csv(index=False), classes, np.flatnonzero(exclude), k, per,
                   sorted((p, str(v)) for p, v in params.items()))

    def compute() -> dict:
        s = DiverseSubset(k=k, **params).fit(x, classes=classes, exclude=exclude, progress=progress)
        return {"summary": {**s.summary(), "n": int(len(x)), "excluded": int(exclude.sum()), "per": per},
                "picks": {"index": s.indices_.tolist(), "overlap": s.overlaps_.tolist(), "gain": s.gains_.tolist()}}

    value = cached("select", key, compute, root=cache_dir)
    picks = value["picks"]
    at = np.asarray(picks["index"], dtype=np.int64)
    table = pd.DataFrame({"rank": np.arange(1, len(at) + 1), "id": ids.to_numpy()[at],
                          **({per: items[per].to_numpy()[at]} if per else {}),
                          "overlap": picks["overlap"], "gain": picks["gain"], "row": at})
    return value["summary"], table

