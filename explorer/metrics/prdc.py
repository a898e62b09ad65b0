"""Precision, recall, density and coverage of model samples against a reference (k-NN balls).

Kynkäänniemi et al. 2019 (precision/recall) and Naeem et al. 2020 (density/coverage): the ball of
a reference item reaches its k-th nearest reference neighbour (itself excluded). Rows are
unit-normalised first, so distances order pairs exactly as cosine similarity does, as everywhere
else in the tool. The per-item by-products (which reference items are covered, how many balls
hold each sample, the rarity of Han et al. 2023) feed the diagnostics.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from explorer.data.arrays import normalize_rows, unit_float32
from explorer.neighbors.balls import inside_any_ball
from explorer.neighbors.exact import distance_blocks
from explorer.neighbors.graph import SetNeighbors, set_neighbors
from explorer.neighbors.index import GROW_START, choose_method
from explorer.neighbors.search import cross_knn

CANDIDATES = 10  # nearest reference items giving an outside sample its distance-to-ball ratio
SLACK = 1e-6  # squared-distance tolerance of the ball test (unit vectors: float32 round-off ~1e-7)


@dataclass
class PRDC:
    """The four numbers and the per-item arrays behind them."""

    k: int
    precision: float
    recall: float
    density: float
    coverage: float
    real_radii: np.ndarray  # distance of each reference item to its k-th reference neighbour
    real_counts: np.ndarray  # samples inside each reference ball
    fake_counts: np.ndarray  # reference balls holding each sample
    fake_ball_ratio: np.ndarray  # min over reference items of distance / radius: <= 1 inside a ball
    fake_rarity: np.ndarray  # smallest radius of a ball holding the sample (NaN outside every ball)
    real_recalled: np.ndarray  # reference item inside at least one sample ball
    fake_nearest: np.ndarray  # each sample's most similar reference item
    fake_nearest_sim: np.ndarray  # and their cosine similarity
    real_nearest_sim: np.ndarray  # cosine similarity of each reference item to its nearest neighbour
    method: dict = field(default_factory=dict)  # how the neighbours and balls were found

    @property
    def real_covered(self) -> np.ndarray:
        return self.real_counts > 0

    def summary(self) -> dict:
        return {"k": self.k, "precision": self.precision, "recall": self.recall, "density": self.density,
                "coverage": self.coverage}


def prdc(real: np.ndarray, fake: np.ndarray, *, k: int = 5, method: str = "auto", candidates: int = CANDIDATES,
         real_neighbors: SetNeighbors | None = None, fake_neighbors: SetNeighbors | None = None) -> PRDC:
    """Precision, recall, density and coverage of ``fake`` against ``real`` with ``k``-NN balls.

    Identical distributions give density ≈ 1 and coverage ≈ 1 − 2⁻ᵏ; samples all sitting on
    reference items give precision 1 and a density above 1.

    Small inputs are compared pair by pair (exact). Large ones go through the neighbour backend:
    a range search with each reference ball's own radius finds every pair inside one, and recall
    asks of each reference item only whether some sample ball holds it
    (:func:`explorer.neighbors.balls.inside_any_ball`); both are exact when the index is,
    approximate with HNSW, and ``method`` says how. The graphs of either set, when already made
    (:func:`explorer.neighbors.graph.set_neighbors`), are reused.

    >>> real = np.array([[1.0, 0], [0.98, 0.2], [0, 1], [0.2, 0.98]])
    >>> r = prdc(real, real[[0, 1]], k=1)
    >>> r.precision, r.recall, r.coverage, r.real_covered.tolist()
    (1.0, 0.5, 0.5, [True, True, False, False])
    """
    if len(real) <= k or len(fake) <= k:
        raise ValueError(f"precision/recall need more than k = {k} items in each set "
                         f"(got {len(real)} reference and {len(fake)} samples)")
    real, fake = _unit(real), _unit(fake)
    real_g = real_neighbors if real_neighbors is not None and real_neighbors.k >= k else set_neighbors(
        real, k=k, method=method)
    fake_g = fake_neighbors if fake_neighbors is not None and fake_neighbors.k >= k else set_neighbors(
        fake, k=k, method=method)
    real_radii, fake_radii = real_g.radii(k), fake_g.radii(k)
    exact = (choose_method(len(fake), len(real), method=method) == "exact"
             and choose_method(len(real), len(fake), method=method) == "exact")
    parts = _exact_balls(real, fake, real_radii, fake_radii) if exact else _range_balls(
        real_g.index, fake_g.index, real_radii, fake_radii, candidates=candidates)
    real_counts, fake_counts, ratio, rarity, nearest_idx, nearest_d2, recalled, how = parts
    rarity[np.isinf(rarity)] = np.nan
    how = {"real_graph": real_g.report.describe(), "fake_graph": fake_g.report.describe(), **how}
    return PRDC(k=k, precision=float((fake_counts > 0).mean()), recall=float(recalled.mean()),
                density=float(fake_counts.sum() / (k * len(fake))), coverage=float((real_counts > 0).mean()),
                real_radii=real_radii, real_counts=real_counts, fake_counts=fake_counts, fake_ball_ratio=ratio,
                fake_rarity=rarity, real_recalled=recalled, fake_nearest=nearest_idx,
                fake_nearest_sim=1.0 - nearest_d2 / 2,
                real_nearest_sim=1.0 - real_g.distances[:, 0].astype(np.float64) ** 2 / 2, method=how)


def _exact_balls(real, fake, real_radii, fake_radii):
    # distances are float32: without a little slack the k-th neighbour, which defines the radius,
    # can fall just outside its own ball when the distance is recomputed in another block
    r2 = (real_radii.astype(np.float64) ** 2 + SLACK)[None, :]
    real_counts = np.zeros(len(real), dtype=np.int64)
    fake_counts = np.empty(len(fake), dtype=np.int64)
    ratio = np.empty(len(fake))
    rarity = np.empty(len(fake))
    nearest_idx = np.empty(len(fake), dtype=np.int64)
    nearest_d2 = np.empty(len(fake))
    for rows, d2 in distance_blocks(fake, real):
        inside = d2 <= r2
        fake_counts[rows] = inside.sum(axis=1)
        real_counts += inside.sum(axis=0)
        ratio[rows] = np.sqrt((d2 / r2).min(axis=1))
        rarity[rows] = np.where(inside, real_radii[None, :], np.inf).min(axis=1)
        nearest_idx[rows] = np.argmin(d2, axis=1)
        nearest_d2[rows] = d2[np.arange(len(d2)), nearest_idx[rows]]
    f2 = (fake_radii.astype(np.float64) ** 2 + SLACK)[None, :]
    recalled = np.zeros(len(real), dtype=bool)
    for rows, d2 in distance_blocks(real, fake):
        recalled[rows] = (d2 <= f2).any(axis=1)
    return real_counts, fake_counts, ratio, rarity, nearest_idx, nearest_d2, recalled, {"balls": "exact, every pair"}


def _range_balls(real_index, fake_index, real_radii, fake_radii, *, candidates: int):
    """The ball tests through the neighbour backend, never all pairs. A range search with each
    reference ball's own radius lists the (reference, sample) pairs inside those balls (about k x
    density per sample): precision, density, coverage, the counts and rarity. Recall asks only
    whether a reference item lies in some sample ball, which
    :func:`explorer.neighbors.balls.inside_any_ball` answers without listing the pairs (a sparse
    sample set's balls hold many reference items each). A sample outside every ball gets its ratio
    from its ``candidates`` nearest reference items."""
    r_lim = np.sqrt(real_radii.astype(np.float64) ** 2 + SLACK)
    n_real, n_fake = len(real_radii), len(fake_radii)
    # each reference item's nearest samples: the range search grows from them, and they settle
    # the recall of most reference items
    near = fake_index.search(real_index.base_, k=min(GROW_START, n_fake))
    ri, fj, d = fake_index.range_search(real_index.base_, radius=r_lim, known=near)
    inward = fake_index.report_
    real_counts = np.bincount(ri, minlength=n_real).astype(np.int64)
    fake_counts = np.bincount(fj, minlength=n_fake).astype(np.int64)
    ratio = np.full(n_fake, np.inf)
    np.minimum.at(ratio, fj, d.astype(np.float64) / np.maximum(real_radii[ri].astype(np.float64), 1e-12))
    rarity = np.full(n_fake, np.inf)
    np.minimum.at(rarity, fj, real_radii[ri].astype(np.float64))
    kr = min(candidates, n_real)
    cand, dist = real_index.search(fake_index.base_, k=kr)
    forward = real_index.report_
    outside = fake_counts == 0
    ratio[outside] = (dist[outside] / np.maximum(real_radii[cand[outside]], 1e-12)).min(axis=1)
    nearest_idx, nearest_d2 = cand[:, 0], dist[:, 0].astype(np.float64) ** 2
    f_lim = np.sqrt(fake_radii.astype(np.float64) ** 2 + SLACK)
    recalled, recall_how = inside_any_ball(real_index.base_, fake_index.base_, f_lim, known=near, index=fake_index,
                                           method=fake_index.method_)
    return real_counts, fake_counts, ratio, rarity, nearest_idx, nearest_d2, recalled, {
        "balls": "range search with each reference ball's radius (every pair inside one); recall by the "
                 "sample ball of each reference item's largest margin",
        "reference_balls": inward.describe(), "sample_balls": recall_how,
        "samples_to_reference": forward.describe()}


def nearest(queries: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each query's most similar ``base`` row and their cosine similarity.

    >>> nearest(np.array([[1.0, 0.1]]), np.array([[0.0, 1], [2, 0]]))[0].tolist()
    [1]
    """
    idx, dist = cross_knn(_unit(queries), _unit(base), k=1)
    return idx[:, 0], 1.0 - dist[:, 0].astype(np.float64) ** 2 / 2


def _unit(x: np.ndarray) -> np.ndarray:
    if unit_float32(x):  # a comparison's rows already are: no copy of the reference
        return x
    return normalize_rows(x, dtype=np.float32)  # float32: distances over many rows, half the memory
