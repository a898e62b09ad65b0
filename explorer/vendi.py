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
    """Thresholded eigenvalues of K/n (descending, summing to 1) and how they were obtained."""

    eigenvalues: np.ndarray
    n: int
    kernel: str
    method: str
    rtol: float
    n_dropped: int
    eigenvectors: np.ndarray | None = field(default=None, repr=False)

    @property
    def rank(self) -> int:
        return int(self.eigenvalues.size)

    def vendi(self, q: Sequence[float] | float = DEFAULT_ORDERS) -> dict[float, float]:
        """Vendi score for each order q (a dict keyed by q)."""
        orders = (q,) if np.isscalar(q) else tuple(q)
        return {float(o): hill_number(self.eigenvalues, float(o)) for o in orders}


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
    bad = ~np.isfinite(x).all(axis=tuple(range(1, x.ndim)))
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(f"{what}: {rows.size} row(s) contain NaN or inf, e.g. rows {rows[:5].tolist()}")


class CovarianceAccumulator:
    """Streaming d x d covariance of unit-normalised rows, accumulated in float64.

    ``update`` with batches, ``merge`` accumulators built on other shards, then ``spectrum``.

    >>> acc = CovarianceAccumulator()
    >>> acc.update(np.eye(3)); acc.update(np.eye(3))
    >>> round(acc.spectrum().vendi(1.0)[1.0], 6)
    3.0
    """

    def __init__(self, *, normalize: bool = True) -> None:
        self.normalize = normalize
        self.n_ = 0
        self.gram_: np.ndarray | None = None

    def update(self, batch: np.ndarray) -> None:
        x = np.asarray(batch)
        if x.ndim != 2:
            raise ValueError(f"expected a 2-D batch, got shape {x.shape}")
        _check_finite(x, "embeddings")
        x = x.astype(np.float64)
        if self.normalize:
            norms = np.linalg.norm(x, axis=1)
            if (norms == 0).any():
                rows = np.flatnonzero(norms == 0)
                raise ValueError(
                    f"{rows.size} row(s) have zero norm; the cosine kernel is undefined for them "
                    f"(batch rows {rows[:5].tolist()})"
                )
            x /= norms[:, None]
        if self.gram_ is None:
            self.gram_ = np.zeros((x.shape[1], x.shape[1]), dtype=np.float64)
        elif self.gram_.shape[0] != x.shape[1]:
            raise ValueError(f"dimension changed from {self.gram_.shape[0]} to {x.shape[1]}")
        self.gram_ += x.T @ x
        self.n_ += x.shape[0]

    def merge(self, other: "CovarianceAccumulator") -> "CovarianceAccumulator":
        if other.gram_ is not None:
            if self.gram_ is None:
                self.gram_ = other.gram_.copy()
            else:
                self.gram_ += other.gram_
            self.n_ += other.n_
        return self

    def spectrum(self, *, rtol: float | None = None, vectors: bool = False) -> Spectrum:
        if self.gram_ is None or self.n_ == 0:
            raise ValueError("no items: cannot compute a spectrum of an empty set")
        cov = self.gram_ / self.n_
        if vectors:
            values, vecs = np.linalg.eigh(cov)
        else:
            values, vecs = np.linalg.eigvalsh(cov), None
        tol = default_rtol(np.float64, cov.shape[0]) if rtol is None else float(rtol)
        kept, vecs, dropped = threshold_eigenvalues(values, rtol=tol, vectors=vecs)
        return Spectrum(kept, self.n_, "cosine", "dual", tol, dropped, vecs)


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


def kernel_spectrum(k: np.ndarray, *, rtol: float | None = None) -> Spectrum:
    """Spectrum of a precomputed n x n similarity matrix (method ``"exact"``).

    A diagonal other than 1 is normalised away (K_ij / sqrt(K_ii K_jj)).

    >>> k = np.array([[1, .9, 0], [.9, 1, 0], [0, 0, 1]])
    >>> round(kernel_spectrum(k).vendi(1.0)[1.0], 6)
    2.157301
    """
    k = np.asarray(k)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] == 0:
        raise ValueError(f"a precomputed kernel must be a non-empty square matrix, got shape {k.shape}")
    _check_finite(k, "similarity matrix")
    in_dtype = k.dtype if k.dtype in (np.float16, np.float32) else np.float64
    k = k.astype(np.float64)
    scale = max(1.0, float(np.abs(k).max()))
    if not np.allclose(k, k.T, atol=1e-6 * scale, rtol=0):
        raise ValueError("similarity matrix is not symmetric")
    diag = np.diag(k).copy()
    if (diag <= 0).any():
        raise ValueError("similarity matrix has a non-positive diagonal entry")
    if not np.allclose(diag, 1.0):
        inv = 1.0 / np.sqrt(diag)
        k = k * inv[:, None] * inv[None, :]
    n = k.shape[0]
    values = np.linalg.eigvalsh((k + k.T) / (2.0 * n))
    tol = default_rtol(in_dtype, n) if rtol is None else float(rtol)
    kept, _, dropped = threshold_eigenvalues(values, rtol=tol)
    return Spectrum(kept, n, "precomputed", "exact", tol, dropped)


@dataclass(frozen=True)
class VendiResult:
    """Scores of several orders with the facts needed to interpret them."""

    scores: dict[float, float]
    spectrum: Spectrum

    def to_dict(self) -> dict:
        s = self.spectrum
        return {
            "n": s.n,
            "kernel": s.kernel,
            "method": s.method,
            "scores": {order_label(q): v for q, v in self.scores.items()},
            "rank": s.rank,
            "eigenvalue_rtol": s.rtol,
            "eigenvalues_dropped": s.n_dropped,
        }


def vendi_scores(
    x: np.ndarray,
    *,
    q: Sequence[float] = DEFAULT_ORDERS,
    kernel: str = "cosine",
    rtol: float | None = None,
) -> VendiResult:
    """Vendi scores of the rows of ``x`` (``kernel="cosine"``) or of a similarity matrix
    (``kernel="precomputed"``).

    >>> r = vendi_scores(np.eye(5), q=[1.0, np.inf])
    >>> r.to_dict()["scores"]
    {'1': 5.0, 'inf': 5.0}
    """
    if kernel == "cosine":
        spectrum = cosine_spectrum(x, rtol=rtol)
    elif kernel == "precomputed":
        spectrum = kernel_spectrum(x, rtol=rtol)
    else:
        raise ValueError(f"unknown kernel {kernel!r}; expected 'cosine' or 'precomputed'")
    return VendiResult(spectrum.vendi(q), spectrum)
