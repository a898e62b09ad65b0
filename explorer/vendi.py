"""Vendi scores of order q, from the eigenvalues of a normalised similarity matrix.

With n items and a similarity matrix K (K_ii = 1), the Vendi score of order q is the Hill number
of the eigenvalues of K/n. For the cosine kernel the nonzero eigenvalues of K/n equal those of the
d x d covariance C = X^T X / n of the unit-normalised rows, so scores cost O(n d^2) and stream
over batches. Round-off eigenvalues are dropped below a relative tolerance before any score is
computed: orders q < 1 would otherwise count them as real directions
(see shared/notes/metrics.md).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from explorer.kernels import normalize_rows

DEFAULT_ORDERS: tuple[float, ...] = (0.1, 0.5, 1.0, 2.0, math.inf)


def parse_orders(text: str | Iterable[float | str]) -> tuple[float, ...]:
    """Parse orders such as ``"0.1,0.5,1,2,inf"``.

    >>> parse_orders("0.5, 1,inf")
    (0.5, 1.0, inf)
    """
    parts = text.split(",") if isinstance(text, str) else list(text)
    orders = []
    for part in parts:
        value = float(str(part).strip().lower().replace("infinity", "inf"))
        if math.isnan(value) or value < 0:
            raise ValueError(f"order q must be >= 0 or inf, got {part!r}")
        orders.append(value)
    if not orders:
        raise ValueError("no order q given")
    return tuple(orders)


def order_label(q: float) -> str:
    """The JSON key of an order: ``1.0 -> "1"``, ``0.5 -> "0.5"``, ``inf -> "inf"``.

    >>> [order_label(q) for q in DEFAULT_ORDERS]
    ['0.1', '0.5', '1', '2', 'inf']
    """
    if math.isinf(q):
        return "inf"
    return f"{q:g}"


def default_rtol(dtype: np.dtype | type, size: int) -> float:
    """Relative eigenvalue tolerance for an eigensolver fed values of ``dtype`` of size ``size``.

    Values exact in float64: max(1e-12, 10·size·eps64). A float32 (or float16) similarity matrix
    carries its own rounding noise, so its floor is 1e-6 (1e-3).
    """
    dtype = np.dtype(dtype)
    if dtype == np.float16:
        return 1e-3
    if dtype == np.float32:
        return 1e-6
    return max(1e-12, 10.0 * size * float(np.finfo(np.float64).eps))


def hill_number(p: np.ndarray, q: float) -> float:
    """Hill number (exponential of the Rényi entropy) of order q of a probability vector.

    >>> round(hill_number(np.array([0.5, 0.25, 0.25]), 2), 6)
    2.666667
    """
    p = np.asarray(p, dtype=np.float64)
    p = p[p > 0]
    if p.size == 0:
        raise ValueError("no positive mass")
    p = p / p.sum()
    if q == 0:
        return float(p.size)
    if math.isinf(q):
        return float(1.0 / p.max())
    if q == 1:
        return float(np.exp(-np.sum(p * np.log(p))))
    # log-sum-exp keeps large q and tiny eigenvalues finite
    logs = q * np.log(p)
    top = logs.max()
    log_sum = top + math.log(float(np.exp(logs - top).sum()))
    return float(math.exp(log_sum / (1.0 - q)))


@dataclass(frozen=True)
class Spectrum:
    """Thresholded eigenvalues of K/n (descending, summing to 1) and how they were obtained.

    ``eigenvectors`` (when kept) are the matching eigenvectors of the feature covariance C, in
    the feature space named by ``kernel``/``method``; ``approx_error`` is the relative error of
    an approximate method against the exact one on a subsample, per order.
    """

    eigenvalues: np.ndarray
    n: int
    kernel: str
    method: str
    rtol: float
    n_dropped: int
    eigenvectors: np.ndarray | None = field(default=None, repr=False)
    sigma: float | None = None
    approx_error: dict[float, float] | None = None
    residual: np.ndarray | None = field(default=None, repr=False)

    @property
    def all_eigenvalues(self) -> np.ndarray:
        """The eigenvalues, plus (Nyström) each item's residual mass as a private eigenvalue."""
        if self.residual is None:
            return self.eigenvalues
        extra = self.residual[self.residual >= self.rtol * self.eigenvalues[0]]
        return np.sort(np.concatenate([self.eigenvalues, extra]))[::-1]

    @property
    def rank(self) -> int:
        return int(self.all_eigenvalues.size)

    @property
    def cumulative(self) -> np.ndarray:
        """Cumulative eigenvalue mass, from the largest eigenvalue down."""
        return np.cumsum(self.all_eigenvalues)

    @property
    def effective_rank(self) -> float:
        """exp(entropy of the eigenvalues) (Roy & Vetterli), which equals VS_1."""
        return hill_number(self.all_eigenvalues, 1.0)

    def vendi(self, q: Sequence[float] | float = DEFAULT_ORDERS) -> dict[float, float]:
        """Vendi score for each order q (a dict keyed by q)."""
        orders = (q,) if np.isscalar(q) else tuple(q)
        values = self.all_eigenvalues
        return {float(o): hill_number(values, float(o)) for o in orders}


def threshold_eigenvalues(
    values: np.ndarray, *, rtol: float, vectors: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Sort descending, drop values below ``rtol * max``, renormalise to sum 1."""
    order = np.argsort(values)[::-1]
    values = np.asarray(values, dtype=np.float64)[order]
    if values.size == 0 or values[0] <= 0:
        raise ValueError("similarity matrix has no positive eigenvalue")
    keep = values >= rtol * values[0]
    kept = values[keep]
    if vectors is not None:
        vectors = vectors[:, order][:, keep]
    return kept / kept.sum(), vectors, int((~keep).sum())


def _check_finite(x: np.ndarray, what: str) -> None:
    if np.isfinite(x.sum(dtype=np.float64)):  # fast path: one reduction, no n x d mask
        return
    bad = ~np.isfinite(x).all(axis=tuple(range(1, x.ndim)))
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(f"{what}: {rows.size} row(s) contain NaN or inf, e.g. rows {rows[:5].tolist()}")


class CovarianceAccumulator:
    """Streaming covariance C = Σ w_i φ_i φ_iᵀ / Σ w_i of feature rows, accumulated in float64.

    By default φ is the unit-normalised row (the cosine kernel); pass ``feature_map`` for another
    kernel's features (already unit norm). ``update`` with batches (and optional item weights),
    ``merge`` accumulators built on other shards, then ``spectrum``.

    >>> acc = CovarianceAccumulator()
    >>> acc.update(np.eye(3)); acc.update(np.eye(3))
    >>> round(acc.spectrum().vendi(1.0)[1.0], 6)
    3.0
    """

    def __init__(self, *, normalize: bool = True, feature_map=None, kernel: str = "cosine",
                 method: str = "dual") -> None:
        self.normalize = normalize
        self.feature_map = feature_map
        self.kernel = kernel
        self.method = method
        self.n_ = 0
        self.total_weight_ = 0.0
        self.gram_: np.ndarray | None = None
        self.residual_: list[np.ndarray] = []

    def features(self, batch: np.ndarray) -> np.ndarray:
        """The feature rows φ_i of a batch (float64)."""
        x = np.asarray(batch)
        if x.ndim != 2:
            raise ValueError(f"expected a 2-D batch, got shape {x.shape}")
        _check_finite(x, "embeddings")
        if self.feature_map is not None:
            return self.feature_map(x)
        return normalize_rows(x) if self.normalize else x.astype(np.float64)

    def update(self, batch: np.ndarray, *, weights: np.ndarray | None = None) -> None:
        self.update_features(self.features(batch), weights=weights)

    def update_features(self, phi: np.ndarray, *, weights: np.ndarray | None = None,
                        residual: np.ndarray | None = None) -> None:
        """Add feature rows that are already checked and mapped (float64). ``residual`` is each
        row's kernel mass the features miss (1 − ‖φ_i‖², Nyström), kept as a private direction."""
        if residual is not None:
            self.residual_.append(residual * (1.0 if weights is None else np.asarray(weights)))
        if self.gram_ is None:
            self.gram_ = np.zeros((phi.shape[1], phi.shape[1]), dtype=np.float64)
        elif self.gram_.shape[0] != phi.shape[1]:
            raise ValueError(f"dimension changed from {self.gram_.shape[0]} to {phi.shape[1]}")
        if weights is None:
            self.gram_ += phi.T @ phi
            self.total_weight_ += phi.shape[0]
        else:
            w = np.asarray(weights, dtype=np.float64)
            if w.shape != (phi.shape[0],) or (w < 0).any() or not np.isfinite(w).all():
                raise ValueError("weights must be one finite, non-negative number per item")
            self.gram_ += (phi * w[:, None]).T @ phi
            self.total_weight_ += float(w.sum())
        self.n_ += phi.shape[0]

    def merge(self, other: "CovarianceAccumulator") -> "CovarianceAccumulator":
        if other.gram_ is not None:
            if self.gram_ is None:
                self.gram_ = other.gram_.copy()
            else:
                self.gram_ += other.gram_
            self.n_ += other.n_
            self.total_weight_ += other.total_weight_
            self.residual_ += other.residual_
        return self

    def spectrum(self, *, rtol: float | None = None, vectors: bool = False) -> Spectrum:
        if self.gram_ is None or self.n_ == 0 or self.total_weight_ <= 0:
            raise ValueError("no items: cannot compute a spectrum of an empty set")
        cov = self.gram_ / self.total_weight_
        if vectors:
            values, vecs = np.linalg.eigh(cov)
        else:
            values, vecs = np.linalg.eigvalsh(cov), None
        tol = default_rtol(np.float64, cov.shape[0]) if rtol is None else float(rtol)
        if not self.residual_:
            kept, vecs, dropped = threshold_eigenvalues(values, rtol=tol, vectors=vecs)
            return Spectrum(kept, self.n_, self.kernel, self.method, tol, dropped, vecs)
        # trace(C) + residual mass = 1, so no renormalisation: the masses stay comparable
        residual = np.concatenate(self.residual_) / self.total_weight_
        order = np.argsort(values)[::-1]
        values = np.clip(values[order], 0.0, None)
        keep = values >= tol * values[0]
        vecs = None if vecs is None else vecs[:, order][:, keep]
        return Spectrum(values[keep], self.n_, self.kernel, self.method, tol, int((~keep).sum()), vecs,
                        residual=residual)


def cosine_spectrum(
    x: np.ndarray, *, batch_size: int = 32768, rtol: float | None = None, vectors: bool = False
) -> Spectrum:
    """Spectrum of the cosine kernel through the d x d covariance (method ``"dual"``).

    >>> round(cosine_spectrum(np.eye(4)).vendi(2.0)[2.0], 6)
    4.0
    """
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"expected a non-empty (n, d) array, got shape {x.shape}")
    acc = CovarianceAccumulator()
    for start in range(0, x.shape[0], batch_size):
        acc.update(x[start : start + batch_size])
    return acc.spectrum(rtol=rtol, vectors=vectors)
