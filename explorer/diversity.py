"""The diversity engine: Vendi scores of any order for the cosine, RBF and precomputed kernels,
the spectrum and its modes, and per-item contributions.

Every kernel is reduced to feature rows φ_i (explorer.kernels) and the covariance
C = Σ p_i φ_i φ_iᵀ, whose nonzero eigenvalues are those of the weighted kernel matrix. One
streaming pass builds C; an optional second pass projects the features on C's eigenvectors for
the per-item entropy split, crowdedness and the items behind each mode.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from explorer import kernels as K
from explorer.vendi import (
    DEFAULT_ORDERS, CovarianceAccumulator, Spectrum, _check_finite, default_rtol, hill_number, order_label,
)

KERNELS = ("cosine", "rbf", "precomputed")
METHODS = ("auto", "exact", "dual", "rff", "nystrom")
EXACT_LOO_BUDGET = 5e9  # n · r³ flops above which exact leave-one-out is skipped


@dataclass
class FeaturePlan:
    """How to turn input rows into feature rows φ, chosen once per input."""

    kernel: str
    method: str
    sigma: float | None = None
    phi: np.ndarray | None = None  # exact features, when the method materialises them
    transform: object = None  # a fitted RandomFourierFeatures / NystromFeatures
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
                _check_finite(batch, "embeddings")
                yield rows, self.transform.transform(batch)
                continue
            out = buf[: rows.stop - rows.start]
            np.copyto(out, x[rows], casting="same_kind")
            _check_finite(out, "embeddings")
            yield rows, K.normalize_rows(out, inplace=True)


def plan_features(
    x: np.ndarray, *, kernel: str = "cosine", method: str = "auto", sigma: float | None = None,
    n_features: int = 1024, n_landmarks: int = 1500, seed: int = 0,
) -> FeaturePlan:
    """Choose the method for ``kernel`` (``auto``: dual for cosine; exact RBF up to
    :data:`explorer.kernels.EXACT_MAX_N` items, Nyström above) and fit its feature map."""
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
        k, in_dtype = _normalized_kernel(x)
        tol = default_rtol(in_dtype, n)
        phi, dropped = K.kernel_features(k, rtol=tol)
        return FeaturePlan("precomputed", "exact", phi=phi, dropped=dropped, rtol=tol)
    if kernel == "cosine":
        if method in ("rff", "nystrom"):
            raise ValueError(f"--method {method} approximates the RBF kernel; the cosine kernel is exact")
        if method == "exact":
            _check_finite(np.asarray(x), "embeddings")
            xn = K.normalize_rows(x)
            phi, dropped = K.kernel_features(xn @ xn.T, rtol=default_rtol(np.float64, n))
            return FeaturePlan("cosine", "exact", phi=phi, dropped=dropped)
        return FeaturePlan("cosine", "dual")
    _check_finite(np.asarray(x), "embeddings")
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


def _normalized_kernel(k: np.ndarray) -> tuple[np.ndarray, np.dtype]:
    k = np.asarray(k)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(f"a precomputed kernel must be a non-empty square matrix, got shape {k.shape}")
    _check_finite(k, "similarity matrix")
    in_dtype = k.dtype if k.dtype in (np.float16, np.float32) else np.dtype(np.float64)
    k = k.astype(np.float64)
    if not np.allclose(k, k.T, atol=1e-6 * max(1.0, float(np.abs(k).max())), rtol=0):
        raise ValueError("similarity matrix is not symmetric")
    diag = np.diag(k).copy()
    if (diag <= 0).any():
        raise ValueError("similarity matrix has a non-positive diagonal entry")
    inv = 1.0 / np.sqrt(diag)
    return (k + k.T) / 2.0 * inv[:, None] * inv[None, :], in_dtype


def _weights(weights: np.ndarray | None, n: int) -> np.ndarray | None:
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
    w = _weights(weights, x.shape[0])
    for rows, phi in plan.batches(x, batch_size):
        acc.update_features(phi, weights=None if w is None else w[rows],
                            residual=K.NystromFeatures.residual(phi) if plan.method == "nystrom" else None)
    spectrum = acc.spectrum(rtol=rtol if rtol is not None else plan.rtol, vectors=vectors)
    if plan.dropped:
        spectrum = _replace(spectrum, n_dropped=spectrum.n_dropped + plan.dropped)
    return _replace(spectrum, n=x.shape[0], sigma=plan.sigma)


def _replace(spectrum: Spectrum, **changes) -> Spectrum:
    from dataclasses import replace

    return replace(spectrum, **changes)


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


@dataclass
class Contributions:
    """Per-item results of the second pass."""

    entropy: np.ndarray  # h_i; their (weighted) mean is log VS_1
    crowdedness: np.ndarray  # Σ_j p_j K_ij²
    loo_delta: np.ndarray  # first-order change of VS_1 when item i is removed
    loo_exact: np.ndarray | None  # exact change of VS_1, small inputs only
    top_positive: np.ndarray = field(repr=False, default=None)  # (modes, k) item indices
    top_negative: np.ndarray = field(repr=False, default=None)
    loadings_positive: np.ndarray = field(repr=False, default=None)
    loadings_negative: np.ndarray = field(repr=False, default=None)


def _merge_top(best_idx, best_val, new_idx, new_val, k):
    """Keep the ``k`` largest values per row of the running best and a new batch."""
    if new_val.shape[1] > k:  # cut the batch to its own top k first: O(batch), not a full sort
        part = np.argpartition(-new_val, k - 1, axis=1)[:, :k]
        new_idx, new_val = np.take_along_axis(new_idx, part, 1), np.take_along_axis(new_val, part, 1)
    idx = np.concatenate([best_idx, new_idx], axis=1)
    val = np.concatenate([best_val, new_val], axis=1)
    keep = np.argsort(-val, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(idx, keep, 1), np.take_along_axis(val, keep, 1)


def item_contributions(
    x: np.ndarray, *, plan: FeaturePlan, spectrum: Spectrum, weights: np.ndarray | None = None,
    n_modes: int = 10, top_items: int = 8, exact_loo: bool | str = "auto", batch_size: int = 16384,
) -> Contributions:
    """Second pass: h_i = −φ_iᵀ log(C) φ_i, crowdedness φ_iᵀ C φ_i, leave-one-out changes of VS_1,
    and the items loading most (both signs) on each of the top ``n_modes`` modes."""
    if spectrum.eigenvectors is None:
        raise ValueError("the spectrum was computed without eigenvectors (vectors=True)")
    n = x.shape[0]
    lam, vecs = spectrum.eigenvalues, spectrum.eigenvectors
    log_lam = np.log(lam)
    weights_hc = np.column_stack([-log_lam, lam])  # one product gives h_i and crowdedness
    m = min(n_modes, lam.size)
    k = min(top_items, n)
    entropy, crowd = np.empty(n), np.empty(n)
    best = [np.empty((m, 0), np.int64), np.empty((m, 0)), np.empty((m, 0), np.int64), np.empty((m, 0))]
    do_exact = n * lam.size ** 3 <= EXACT_LOO_BUDGET if exact_loo == "auto" else bool(exact_loo)
    proj_all = np.empty((n, lam.size)) if do_exact else None
    for rows, phi in plan.batches(x, batch_size):
        p = phi @ vecs
        loads = p[:, :m].T.copy()
        if proj_all is not None:
            proj_all[rows] = p
        np.square(p, out=p)
        hc = p @ weights_hc
        entropy[rows], crowd[rows] = hc[:, 0], hc[:, 1]
        if plan.method == "nystrom":  # the item's private residual direction, eigenvalue p_i d_i
            d = K.NystromFeatures.residual(phi)
            mass = d * (1.0 / n if weights is None else _weights(weights, n)[rows])
            pos = d > 0
            entropy[rows][pos] -= d[pos] * np.log(mass[pos])
            crowd[rows] += d * mass
        ids = np.broadcast_to(np.arange(rows.start, rows.stop), (m, rows.stop - rows.start))
        best[0], best[1] = _merge_top(best[0], best[1], ids, loads, k)
        best[2], best[3] = _merge_top(best[2], best[3], ids, -loads, k)
    w = _weights(weights, n)
    w = np.full(n, 1.0 / n) if w is None else w
    h = float(-(lam * log_lam).sum())
    vs1 = math.exp(h)
    # removing item i: H_{-i} ≈ H + w_i (H − h_i) / (1 − w_i) to first order (uniform: (H − h_i)/(n − 1))
    loo_delta = vs1 * np.expm1(w * (h - entropy) / np.maximum(1.0 - w, 1e-300))
    loo_exact = None
    if proj_all is not None and n > 1:
        loo_exact = np.empty(n)
        base = np.diag(lam)
        for i in range(n):
            c = (base - w[i] * np.outer(proj_all[i], proj_all[i])) / (1.0 - w[i])
            loo_exact[i] = hill_number(np.clip(np.linalg.eigvalsh(c), 0, None), 1.0) - vs1
    return Contributions(entropy, crowd, loo_delta, loo_exact, best[0], best[2], best[1], -best[3])


def kernel_spectrum(k: np.ndarray, *, rtol: float | None = None) -> Spectrum:
    """Spectrum of a precomputed n x n similarity matrix (method ``"exact"``); a diagonal other
    than 1 is normalised away (K_ij / sqrt(K_ii K_jj)).

    >>> k = np.array([[1, .9, 0], [.9, 1, 0], [0, 0, 1]])
    >>> round(kernel_spectrum(k).vendi(1.0)[1.0], 7)
    2.1573005
    """
    plan = plan_features(k, kernel="precomputed")
    if rtol is not None:  # re-cut the kernel's own eigenvalues at the requested tolerance
        plan.phi, plan.dropped = K.kernel_features(_normalized_kernel(k)[0], rtol=rtol)
        plan.rtol = rtol
    return compute_spectrum(k, plan=plan)


@dataclass(frozen=True)
class VendiResult:
    """Scores of several orders with the facts needed to interpret them."""

    scores: dict[float, float]
    spectrum: Spectrum

    def to_dict(self) -> dict:
        s = self.spectrum
        out = {
            "n": s.n, "kernel": s.kernel, "method": s.method,
            "scores": {order_label(q): v for q, v in self.scores.items()},
            "rank": s.rank, "eigenvalue_rtol": s.rtol, "eigenvalues_dropped": s.n_dropped,
        }
        if s.sigma is not None:
            out["sigma"] = s.sigma
        if s.approx_error is not None:
            out["approx_error"] = {order_label(q): v for q, v in s.approx_error.items()}
        return out


def vendi_scores(
    x: np.ndarray, *, q: Sequence[float] = DEFAULT_ORDERS, kernel: str = "cosine", method: str = "auto",
    sigma: float | None = None, weights: np.ndarray | None = None, rtol: float | None = None,
    batch_size: int = 16384, seed: int = 0,
) -> VendiResult:
    """Vendi scores of the rows of ``x`` (cosine or RBF kernel) or of a similarity matrix
    (``kernel="precomputed"``), with optional item weights.

    >>> {q: round(v, 9) for q, v in vendi_scores(np.eye(5), q=[1.0, np.inf]).to_dict()["scores"].items()}
    {'1': 5.0, 'inf': 5.0}
    """
    analysis = VendiAnalysis(q=q, kernel=kernel, method=method, sigma=sigma, rtol=rtol, contributions=False,
                             batch_size=batch_size, seed=seed)
    return analysis.fit(x, weights=weights).result()


class VendiAnalysis:
    """Vendi scores, spectrum, modes and per-item contributions, scikit-learn style.

    >>> a = VendiAnalysis(q=[1.0, 2.0]).fit(np.vstack([np.eye(3), np.eye(3)[:1]]))
    >>> round(a.scores_[1.0], 4), a.contributions_.shape[0]
    (2.8284, 4)
    """

    def __init__(self, *, q: Sequence[float] = DEFAULT_ORDERS, kernel: str = "cosine", method: str = "auto",
                 sigma: float | None = None, rtol: float | None = None, contributions: bool = True,
                 n_modes: int = 10, top_items: int = 8, exact_loo: bool | str = "auto",
                 n_features: int = 1024, n_landmarks: int = 1500, batch_size: int = 16384,
                 seed: int = 0) -> None:
        self.q = q
        self.n_features = n_features
        self.n_landmarks = n_landmarks
        self.kernel = kernel
        self.method = method
        self.sigma = sigma
        self.rtol = rtol
        self.contributions = contributions
        self.n_modes = n_modes
        self.top_items = top_items
        self.exact_loo = exact_loo
        self.batch_size = batch_size
        self.seed = seed

    def fit(self, X: np.ndarray, y=None, *, weights: np.ndarray | None = None) -> "VendiAnalysis":
        plan = plan_features(X, kernel=self.kernel, method=self.method, sigma=self.sigma, seed=self.seed,
                             n_features=self.n_features, n_landmarks=self.n_landmarks)
        spectrum = compute_spectrum(X, plan=plan, weights=weights, rtol=self.rtol,
                                    vectors=self.contributions, batch_size=self.batch_size)
        if plan.method in ("rff", "nystrom"):
            spectrum = _replace(spectrum, approx_error=approximation_error(X, plan, q=self.q, seed=self.seed))
        self.spectrum_ = spectrum
        self.scores_ = spectrum.vendi(self.q)
        self.eigenvalues_ = spectrum.eigenvalues
        self.cumulative_ = spectrum.cumulative
        self.effective_rank_ = spectrum.effective_rank
        self.method_, self.sigma_ = spectrum.method, spectrum.sigma
        self.contributions_ = self.modes_ = None
        if self.contributions:
            c = item_contributions(X, plan=plan, spectrum=spectrum, weights=weights, n_modes=self.n_modes,
                                   top_items=self.top_items, exact_loo=self.exact_loo,
                                   batch_size=self.batch_size)
            table = {"entropy": c.entropy, "loo_delta": c.loo_delta, "crowdedness": c.crowdedness}
            if c.loo_exact is not None:
                table["loo_exact"] = c.loo_exact
            self.contributions_ = pd.DataFrame(table)
            self.modes_ = [
                {"mode": j, "weight": float(spectrum.eigenvalues[j]),
                 "positive": c.top_positive[j].tolist(), "positive_loadings": c.loadings_positive[j].tolist(),
                 "negative": c.top_negative[j].tolist(), "negative_loadings": c.loadings_negative[j].tolist()}
                for j in range(c.top_positive.shape[0])
            ]
        return self

    def result(self) -> VendiResult:
        return VendiResult(self.scores_, self.spectrum_)
