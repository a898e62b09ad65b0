"""The streaming covariance C = Σ w_i φ_i φ_iᵀ / Σ w_i behind every Vendi score: updated batch by
batch in float64, merged across shards, and turned into a :class:`~explorer.metrics.spectrum.Spectrum`."""
from __future__ import annotations

import numpy as np

from explorer.data.arrays import check_finite, normalize_rows
from explorer.metrics.spectrum import Spectrum, default_rtol, threshold_eigenvalues


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
        check_finite(x, "embeddings")
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

    def merge(self, other: CovarianceAccumulator) -> CovarianceAccumulator:
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
