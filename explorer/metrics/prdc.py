"""Precision, recall, density and coverage of model samples against a reference (k-NN balls).

Kynkäänniemi et al. 2019 (precision/recall) and Naeem et al. 2020 (density/coverage): the ball of
a reference item reaches its k-th nearest reference neighbour (itself excluded). Rows are
unit-normalised first, so distances order pairs exactly as cosine similarity does, as everywhere
else in the tool. The per-item by-products (which reference items are covered, how many balls
hold each sample, the rarity of Han et al. 2023) feed the diagnostics.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.data.arrays import normalize_rows
from explorer.neighbors.exact import cross_knn, distance_blocks, knn

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

    @property
    def real_covered(self) -> np.ndarray:
        return self.real_counts > 0

    def summary(self) -> dict:
        return {"k": self.k, "precision": self.precision, "recall": self.recall, "density": self.density,
                "coverage": self.coverage}


def prdc(real: np.ndarray, fake: np.ndarray, *, k: int = 5) -> PRDC:
    """Precision, recall, density and coverage of ``fake`` against ``real`` with ``k``-NN balls.

    Identical distributions give density ≈ 1 and coverage ≈ 1 − 2⁻ᵏ; samples all sitting on
    reference items give precision 1 and a density above 1.

    >>> real = np.array([[1.0, 0], [0.98, 0.2], [0, 1], [0.2, 0.98]])
    >>> r = prdc(real, real[[0, 1]], k=1)
    >>> r.precision, r.recall, r.coverage, r.real_covered.tolist()
    (1.0, 0.5, 0.5, [True, True, False, False])
    """
    real, fake = _unit(real), _unit(fake)
    if len(real) <= k or len(fake) <= k:
        raise ValueError(f"precision/recall need more than k = {k} items in each set "
                         f"(got {len(real)} reference and {len(fake)} samples)")
    real_dist = knn(real, k=k)[1]
    real_radii = real_dist[:, -1]
    fake_radii = knn(fake, k=k)[1][:, -1]
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
    rarity[np.isinf(rarity)] = np.nan
    f2 = (fake_radii.astype(np.float64) ** 2 + SLACK)[None, :]
    recalled = np.zeros(len(real), dtype=bool)
    for rows, d2 in distance_blocks(real, fake):
        recalled[rows] = (d2 <= f2).any(axis=1)
    return PRDC(k=k, precision=float((fake_counts > 0).mean()), recall=float(recalled.mean()),
                density=float(fake_counts.sum() / (k * len(fake))), coverage=float((real_counts > 0).mean()),
                real_radii=real_radii, real_counts=real_counts, fake_counts=fake_counts, fake_ball_ratio=ratio,
                fake_rarity=rarity, real_recalled=recalled, fake_nearest=nearest_idx,
                fake_nearest_sim=1.0 - nearest_d2 / 2,
                real_nearest_sim=1.0 - real_dist[:, 0].astype(np.float64) ** 2 / 2)


def nearest(queries: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each query's most similar ``base`` row and their cosine similarity.

    >>> nearest(np.array([[1.0, 0.1]]), np.array([[0.0, 1], [2, 0]]))[0].tolist()
    [1]
    """
    idx, dist = cross_knn(_unit(queries), _unit(base), k=1)
    return idx[:, 0], 1.0 - dist[:, 0].astype(np.float64) ** 2 / 2


def _unit(x: np.ndarray) -> np.ndarray:
    return normalize_rows(x, dtype=np.float32)  # float32: distances over many rows, half the memory
