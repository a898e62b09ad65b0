"""Spectra and Hill numbers: the Vendi score of order q from the eigenvalues of a normalised
similarity matrix.

With n items and a similarity matrix K (K_ii = 1), the Vendi score of order q is the Hill number
of the eigenvalues of K/n. For the cosine kernel the nonzero eigenvalues of K/n equal those of the
d x d covariance C = X^T X / n of the unit-normalised rows, so scores cost O(n d^2) and stream
over batches (:mod:`explorer.metrics.covariance`). Round-off eigenvalues are dropped below a
relative tolerance before any score is computed: orders q < 1 would otherwise count them as real
directions (see shared/notes/metrics.md).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

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
    the feature space named by ``kernel``/``method``; ``approx_error`` is the estimated relative
    error of an approximate method, per order (explorer.metrics.features.approximation_error).
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
    centre: str | None = None  # centred cosine: where the centre came from
    warnings: tuple[str, ...] = ()  # what a reader must know before trusting the scores

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
        orders = (float(q),) if isinstance(q, (int, float)) else tuple(float(o) for o in q)
        values = self.all_eigenvalues
        return {o: hill_number(values, o) for o in orders}


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
