"""Exact and near duplicates within a set, and memorised copies of reference items.

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

from explorer.neighbors import cross_knn, distance_blocks
from explorer.prdc import unit_rows

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


@dataclass
class NearDuplicates:
    """Result of :func:`near_duplicates`. ``group`` is -1 for items without a near duplicate."""

    threshold: float  # cosine similarity used
    nearest: np.ndarray  # index of the most similar other item
    similarity: np.ndarray  # its cosine similarity
    group: np.ndarray
    typical: float  # median cosine distance to the nearest neighbour (the scale of "near")

    @property
    def flagged(self) -> np.ndarray:
        return self.group >= 0

    @property
    def n_groups(self) -> int:
        return int(self.group.max() + 1) if len(self.group) else 0


def near_duplicates(x: np.ndarray, *, alpha: float = DEFAULT_ALPHA, threshold: float | None = None) -> NearDuplicates:
    """Near-duplicate groups: items joined when their cosine similarity reaches the threshold,
    grouped by connected components (so a chain of near copies is one group).

    >>> x = np.array([[1.0, 0, 0], [1, 0.001, 0], [0, 1, 0], [0, 0, 1], [0, 0.6, 0.8]])
    >>> r = near_duplicates(x, threshold=0.999)
    >>> r.group.tolist()
    [0, 0, -1, -1, -1]
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    unit = unit_rows(x)
    n = len(unit)
    if n < 2:
        return NearDuplicates(1.0, np.full(n, -1), np.full(n, np.nan), np.full(n, -1), float("nan"))
    idx, dist = cross_knn(unit, unit, k=1, exclude_self=True)
    sim = 1.0 - dist[:, 0].astype(np.float64) ** 2 / 2
    typical = float(np.median(1.0 - sim))
    thr = float(threshold) if threshold is not None else 1.0 - alpha * typical
    if threshold is not None and not -1.0 <= thr <= 1.0:
        raise ValueError(f"a cosine threshold lies in [-1, 1], got {thr}")
    radius2 = 2.0 * (1.0 - thr) + 1e-7  # squared distance of unit vectors at that similarity
    rows, cols = [], []
    for block, d2 in distance_blocks(unit, unit):
        r, c = np.nonzero(d2 <= radius2)
        r += block.start
        keep = r < c
        rows.append(r[keep])
        cols.append(c[keep])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    group = np.full(n, -1, dtype=np.int64)
    if len(rows):
        graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
        _, comp = connected_components(graph, directed=False)
        members = np.zeros(n, dtype=bool)
        members[rows] = members[cols] = True
        # number groups by first member so that names are stable
        _, first = np.unique(comp[members], return_index=True)
        order = {c: g for g, c in enumerate(comp[members][np.sort(first)])}
        group[members] = [order[c] for c in comp[members]]
    return NearDuplicates(thr, idx[:, 0], sim, group, typical)


@dataclass
class Memorization:
    """Each sample's most similar reference item and whether it is (near) a copy of it."""

    threshold: float  # cosine similarity at or above which a sample is a copy
    nearest: np.ndarray  # index into the reference
    similarity: np.ndarray
    typical: float  # median distance of a reference item to its nearest reference neighbour

    @property
    def flagged(self) -> np.ndarray:
        return self.similarity >= self.threshold

    @property
    def score(self) -> np.ndarray:
        """1 for an exact copy, falling to 0 at the typical reference spacing."""
        return np.clip(1.0 - (1.0 - self.similarity) / max(self.typical, 1e-12), 0.0, 1.0)

    @classmethod
    def from_neighbours(cls, nearest: np.ndarray, similarity: np.ndarray, reference_nearest_sim: np.ndarray, *,
                        alpha: float = DEFAULT_ALPHA, threshold: float | None = None) -> "Memorization":
        """From nearest-reference results computed elsewhere (e.g. by :func:`explorer.prdc.prdc`)."""
        typical = float(np.median(1.0 - reference_nearest_sim)) if len(reference_nearest_sim) else 1.0
        thr = float(threshold) if threshold is not None else 1.0 - alpha * typical
        return cls(thr, np.asarray(nearest), np.asarray(similarity, dtype=np.float64), typical)


def memorization(samples: np.ndarray, reference: np.ndarray, *, alpha: float = DEFAULT_ALPHA,
                 threshold: float | None = None) -> Memorization:
    """Nearest reference item of every sample; copies are samples closer to it than α × the
    reference's own median nearest-neighbour distance (or at or above a fixed cosine ``threshold``).

    >>> ref = np.eye(3)
    >>> m = memorization(np.array([[1.0, 0.0001, 0], [0.6, 0.8, 0]]), ref)
    >>> m.nearest.tolist(), m.flagged.tolist()
    ([0, 1], [True, False])
    """
    ref = unit_rows(reference)
    idx, dist = cross_knn(unit_rows(samples), ref, k=1)
    own = cross_knn(ref, ref, k=1, exclude_self=True)[1][:, 0] if len(ref) > 1 else np.zeros(0)
    return Memorization.from_neighbours(idx[:, 0], 1.0 - dist[:, 0].astype(np.float64) ** 2 / 2,
                                        1.0 - own.astype(np.float64) ** 2 / 2, alpha=alpha, threshold=threshold)
