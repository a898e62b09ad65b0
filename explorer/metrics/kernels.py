"""Feature maps whose inner products give a kernel, so every kernel's Vendi score comes from a
small covariance C = Φᵀ diag(p) Φ.

- cosine: φ(x) = x / ‖x‖ (exact);
- RBF exp(−‖x−y‖² / (2σ²)), exact: Φ = U √(nΛ) from the n x n kernel matrix (small n only);
- RBF, random Fourier features (FKEA): φ(x) = [cos ωᵀx, sin ωᵀx] / √r, ω ~ N(0, σ⁻² I);
- RBF, Nyström with m fixed landmarks: φ(x) = K_mm^(-1/2) k_m(x). Each item's missing mass
  1 − ‖φ(x)‖² (what the landmarks cannot express, mostly item-specific detail) is kept as a
  private eigenvalue, a diagonal correction without which Nyström underestimates VS.
"""
from __future__ import annotations

import numpy as np

from explorer.data.arrays import normalize_rows, unit_float32

EXACT_MAX_N = 3000  # above this, exact RBF (an n x n eigendecomposition) becomes slow


def sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between the rows of ``a`` and ``b`` (float64, clipped at 0)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d2, 0.0)


def median_sigma(x: np.ndarray, *, sample: int = 1000, seed: int = 0) -> float:
    """Median heuristic: σ = the median distance between distinct pairs of (up to ``sample``)
    items, so a typical pair has RBF similarity exp(−1/2) ≈ 0.61.

    >>> round(median_sigma(np.array([[0.0], [1.0], [3.0]])), 6)
    2.0
    """
    x = np.asarray(x)
    if x.shape[0] > sample:
        x = x[np.random.default_rng(seed).choice(x.shape[0], sample, replace=False)]
    d2 = sq_distances(x, x)[np.triu_indices(x.shape[0], k=1)]
    d2 = d2[d2 > 0]
    if d2.size == 0:
        return 1.0  # all items identical: any bandwidth gives the same (rank-one) kernel
    return float(np.sqrt(np.median(d2)))


def rbf_kernel(a: np.ndarray, b: np.ndarray, *, sigma: float) -> np.ndarray:
    """exp(−‖a_i − b_j‖² / (2σ²))."""
    return np.exp(-sq_distances(a, b) / (2.0 * sigma * sigma))


class RandomFourierFeatures:
    """φ(x) = [cos ωᵀx, sin ωᵀx] / √r with ω ~ N(0, σ⁻² I); φ(x)ᵀφ(y) → RBF(x, y) as r grows,
    with entrywise error of order 1/√r, and ‖φ(x)‖ = 1 exactly."""

    def __init__(self, *, sigma: float, n_features: int = 1024, seed: int = 0) -> None:
        self.sigma = sigma
        self.n_features = n_features
        self.seed = seed
        self.omega_: np.ndarray | None = None

    def fit(self, dim: int) -> RandomFourierFeatures:
        rng = np.random.default_rng(self.seed)
        self.omega_ = rng.normal(scale=1.0 / self.sigma, size=(dim, self.n_features))
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        if self.omega_ is None:
            raise RuntimeError("call fit before transform")
        proj = np.asarray(x, dtype=np.float64) @ self.omega_
        return np.hstack([np.cos(proj), np.sin(proj)]) / np.sqrt(self.n_features)


class NystromFeatures:
    """φ(x) = K_mm^(-1/2) k_m(x) for m landmarks drawn from the data; ‖φ(x)‖ ≤ 1."""

    def __init__(self, *, sigma: float, n_landmarks: int = 1500, seed: int = 0) -> None:
        self.sigma = sigma
        self.n_landmarks = n_landmarks
        self.seed = seed
        self.landmarks_: np.ndarray | None = None
        self.map_: np.ndarray | None = None

    def fit(self, x: np.ndarray) -> NystromFeatures:
        n = x.shape[0]
        idx = np.sort(np.random.default_rng(self.seed).choice(n, min(n, self.n_landmarks), replace=False))
        self.landmarks_ = np.asarray(x[idx], dtype=np.float64)
        values, vectors = np.linalg.eigh(rbf_kernel(self.landmarks_, self.landmarks_, sigma=self.sigma))
        keep = values > 1e-10 * values.max()
        self.map_ = vectors[:, keep] / np.sqrt(values[keep])
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        if self.landmarks_ is None or self.map_ is None:
            raise RuntimeError("call fit before transform")
        return rbf_kernel(x, self.landmarks_, sigma=self.sigma) @ self.map_

    @staticmethod
    def residual(phi: np.ndarray) -> np.ndarray:
        """Each row's kernel mass the features miss: K_ii − ‖φ_i‖² = 1 − ‖φ_i‖² (≥ 0)."""
        return np.clip(1.0 - np.einsum("ij,ij->i", phi, phi), 0.0, 1.0)


def kernel_features(k: np.ndarray, *, rtol: float) -> tuple[np.ndarray, int]:
    """Exact features Φ (n x r) with ΦΦᵀ = K, from an eigendecomposition of a symmetric PSD
    matrix; eigenvalues below ``rtol·max`` are dropped (their count is returned)."""
    values, vectors = np.linalg.eigh(k)
    keep = values >= rtol * values.max()
    return vectors[:, keep] * np.sqrt(values[keep]), int((~keep).sum())


SPAN_BLOCK = 16_384  # rows normalised in float64 at a time (a few float64 copies of a block live at once)


def span_basis(x, *, max_loss: float = 1e-6) -> np.ndarray | None:
    """The directions the unit rows of ``x`` use (d × r, the leading eigenvectors of XᵀX, the
    weakest dropped only while no row can lose more than ``max_loss`` of its squared norm), or
    None when too few could be dropped to be worth a change of basis. ``x`` is read a block at a
    time (anything with ``shape`` and row slicing, such as
    :class:`explorer.metrics.kernel_rows.KernelRowMap`).

    >>> x = np.random.default_rng(0).normal(size=(500, 3)) @ np.random.default_rng(1).normal(size=(3, 40))
    >>> span_basis(x).shape, span_basis(np.eye(40)) is None
    ((40, 3), True)
    """
    n, d = x.shape
    # d×d in float64 from float32 blocks: no float64 copy of a million rows is ever held
    gram = np.zeros((d, d))
    for start in range(0, n, SPAN_BLOCK):
        block = normalize_rows(x[start : start + SPAN_BLOCK])
        gram += block.T @ block
    # (LAPACK's full eigh beats its subset drivers here, even when most vectors are dropped)
    values, vectors = np.linalg.eigh(gram)
    keep = np.cumsum(np.maximum(values, 0.0)) > max_loss  # a row loses at most the dropped mass
    return vectors[:, keep] if keep.sum() <= 0.8 * d else None


def span_reduce(x: np.ndarray, *, max_loss: float = 1e-6) -> np.ndarray:
    """Unit rows of ``x`` expressed in a basis of the directions they actually use
    (:func:`span_basis`). Inner products (so every cosine quantity) are kept to ``max_loss``
    while later d×d work shrinks to the data's numerical rank; pixels of small images typically
    drop two thirds of their dimensions. Float32 unit rows that cannot be reduced are returned
    as they are, not copied (a million rows of 512-d are 2 GB).

    >>> x = np.random.default_rng(0).normal(size=(50, 3)) @ np.random.default_rng(1).normal(size=(3, 40))
    >>> r = span_reduce(x)
    >>> r.shape, bool(np.allclose(r @ r.T, normalize_rows(x) @ normalize_rows(x).T, atol=1e-6))
    ((50, 3), True)
    >>> u = normalize_rows(np.eye(4), dtype=np.float32)
    >>> span_reduce(u) is u
    True
    """
    n, d = x.shape
    if n < d:  # the n×n Gram is then the smaller problem; its eigenvectors span the rows
        unit = normalize_rows(x)
        values, vectors = np.linalg.eigh(unit @ unit.T)
        keep = np.cumsum(np.maximum(values, 0.0)) > max_loss
        return (vectors[:, keep] * np.sqrt(values[keep])).astype(np.float32)
    basis = span_basis(x, max_loss=max_loss)
    if basis is None and unit_float32(x):
        return x
    out = np.empty((n, d if basis is None else basis.shape[1]), dtype=np.float32)
    for start in range(0, n, SPAN_BLOCK):
        block = normalize_rows(x[start : start + SPAN_BLOCK])
        out[start : start + len(block)] = block if basis is None else block @ basis
    return out

