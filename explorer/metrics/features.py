"""Every kernel as feature rows φ_i whose inner products give it (cosine: the unit rows; RBF: exact,
random Fourier or Nyström features; a precomputed matrix: its eigenfeatures), and the one
streaming pass that turns them into the spectrum of C = Σ p_i φ_i φ_iᵀ."""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from explorer.data.arrays import check_finite, normalize_rows
from explorer.metrics import kernels as K
from explorer.metrics.covariance import CovarianceAccumulator
from explorer.metrics.spectrum import Spectrum, default_rtol

KERNELS = ("cosine", "rbf", "precomputed")
METHODS = ("auto", "exact", "dual", "rff", "nystrom")


@dataclass
class FeaturePlan:
    """How to turn input rows into feature rows φ, chosen once per input."""

    kernel: str
    method: str
    sigma: float | None = None
    phi: np.ndarray | None = None  # exact features, when the method materialises them
    transform: K.RandomFourierFeatures | K.NystromFeatures | None = None  # fitted
    dropped: int = 0
    rtol: float | None = None

    def batches(self, x: np.ndarray, batch_size: int) -> Iterator[tuple[slice, np.ndarray]]:
        """Feature rows batch by batch. Cosine batches share one reused float64 buffer (fresh
        allocations cost page faults comparable to the arithmetic), so a consumer must not keep
        a batch past its iteration."""
        n = x.shape[0]
        buf = np.empty((min(n, batch_size), x.shape[1])) if self.phi is None and self.transform is None else None
        for start in range(0, n, batch_size):
            rows = slice(start, min(n, start + batch_size))
            if self.phi is not None:
                yield rows, self.phi[rows]
                continue
            if self.transform is not None:
                batch = np.asarray(x[rows])
                check_finite(batch, "embeddings")
                yield rows, self.transform.transform(batch)
                continue
            assert buf is not None  # cosine features: the buffer exists
            out = buf[: rows.stop - rows.start]
            np.copyto(out, x[rows], casting="same_kind")
            check_finite(out, "embeddings")
            yield rows, normalize_rows(out, inplace=True)


def plan_features(
    x: np.ndarray, *, kernel: str = "cosine", method: str = "auto", sigma: float | None = None,
    n_features: int = 1024, n_landmarks: int = 1500, seed: int = 0,
) -> FeaturePlan:
    """Choose the method for ``kernel`` (``auto``: dual for cosine; exact RBF up to
    :data:`explorer.metrics.kernels.EXACT_MAX_N` items, Nyström above) and fit its feature map."""
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose from {', '.join(KERNELS)}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    x = np.asarray(x) if not isinstance(x, np.memmap) else x
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"expected a non-empty 2-D array, got shape {x.shape}")
    n = x.shape[0]
    if kernel == "precomputed":
        if method not in ("auto", "exact"):
            raise ValueError("a precomputed kernel only supports --method exact")
        k, in_dtype = normalized_kernel(x)
        tol = default_rtol(in_dtype, n)
        phi, dropped = K.kernel_features(k, rtol=tol)
        return FeaturePlan("precomputed", "exact", phi=phi, dropped=dropped, rtol=tol)
    if kernel == "cosine":
        if method in ("rff", "nystrom"):
            raise ValueError(f"--method {method} approximates the RBF kernel; the cosine kernel is exact")
        if method == "exact":
            check_finite(np.asarray(x), "embeddings")
            xn = K.normalize_rows(x)
            phi, dropped = K.kernel_features(xn @ xn.T, rtol=default_rtol(np.float64, n))
            return FeaturePlan("cosine", "exact", phi=phi, dropped=dropped)
        return FeaturePlan("cosine", "dual")
    check_finite(np.asarray(x), "embeddings")
    sigma = float(sigma) if sigma else K.median_sigma(x, seed=seed)
    if sigma <= 0 or not math.isfinite(sigma):
        raise ValueError(f"sigma must be a positive number, got {sigma}")
    if method in ("auto", "dual"):
        method = "exact" if n <= K.EXACT_MAX_N else "nystrom"
    if method == "exact":
        phi, dropped = K.kernel_features(K.rbf_kernel(x, x, sigma=sigma), rtol=default_rtol(np.float64, n))
        return FeaturePlan("rbf", "exact", sigma=sigma, phi=phi, dropped=dropped)
    if method == "rff":
        return FeaturePlan("rbf", "rff", sigma=sigma,
                           transform=K.RandomFourierFeatures(sigma=sigma, n_features=n_features, seed=seed)
                           .fit(x.shape[1]))
    return FeaturePlan("rbf", "nystrom", sigma=sigma,
                       transform=K.NystromFeatures(sigma=sigma, n_landmarks=n_landmarks, seed=seed).fit(x))


def normalized_kernel(k: np.ndarray) -> tuple[np.ndarray, np.dtype]:
    """A precomputed similarity matrix, checked (square, finite, symmetric, positive diagonal),
    symmetrised and scaled to a unit diagonal; with the dtype its tolerance is judged by."""
    k = np.asarray(k)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(f"a precomputed kernel must be a non-empty square matrix, got shape {k.shape}")
    check_finite(k, "similarity matrix")
    in_dtype = k.dtype if k.dtype in (np.float16, np.float32) else np.dtype(np.float64)
    k = k.astype(np.float64)
    if not np.allclose(k, k.T, atol=1e-6 * max(1.0, float(np.abs(k).max())), rtol=0):
        raise ValueError("similarity matrix is not symmetric")
    diag = np.diag(k).copy()
    if (diag <= 0).any():
        raise ValueError("similarity matrix has a non-positive diagonal entry")
    inv = 1.0 / np.sqrt(diag)
    return (k + k.T) / 2.0 * inv[:, None] * inv[None, :], in_dtype


def normalized_weights(weights: np.ndarray | None, n: int) -> np.ndarray | None:
    """Item weights checked and scaled to sum 1 (None stays None: uniform)."""
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights must be {n} finite, non-negative numbers with a positive sum")
    return w / w.sum()


def compute_spectrum(
    x: np.ndarray, *, plan: FeaturePlan, weights: np.ndarray | None = None, rtol: float | None = None,
    vectors: bool = False, batch_size: int = 16384,
) -> Spectrum:
    """One streaming pass: the thresholded spectrum of C for ``plan``'s features."""
    acc = CovarianceAccumulator(normalize=False, kernel=plan.kernel, method=plan.method)
    w = normalized_weights(weights, x.shape[0])
    for rows, phi in plan.batches(x, batch_size):
        acc.update_features(phi, weights=None if w is None else w[rows],
                            residual=K.NystromFeatures.residual(phi) if plan.method == "nystrom" else None)
    spectrum = acc.spectrum(rtol=rtol if rtol is not None else plan.rtol, vectors=vectors)
    if plan.dropped:
        spectrum = replace(spectrum, n_dropped=spectrum.n_dropped + plan.dropped)
    return replace(spectrum, n=x.shape[0], sigma=plan.sigma)


def approximation_error(
    x: np.ndarray, plan: FeaturePlan, *, q: Sequence[float], sample: int = 2000, seed: int = 0,
) -> dict[float, float]:
    """Relative error of an approximate RBF method against the exact kernel, both on the same
    random subsample of ``sample`` items: |VS_approx − VS_exact| / VS_exact per order."""
    n = x.shape[0]
    idx = np.sort(np.random.default_rng(seed).choice(n, min(n, sample), replace=False))
    sub = np.asarray(x[idx])
    exact = compute_spectrum(sub, plan=plan_features(sub, kernel="rbf", method="exact", sigma=plan.sigma))
    approx = compute_spectrum(sub, plan=plan)
    e, a = exact.vendi(q), approx.vendi(q)
    return {o: abs(a[o] - e[o]) / e[o] for o in e}
