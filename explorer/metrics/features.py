"""Every kernel as feature rows φ_i whose inner products give it (cosine: the unit rows; RBF: exact,
random Fourier or Nyström features; a precomputed matrix: its eigenfeatures), and the one
streaming pass that turns them into the spectrum of C = Σ p_i φ_i φ_iᵀ."""
from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from explorer.data.arrays import check_finite, normalize_rows
from explorer.data.errors import InputError
from explorer.metrics import kernels as K
from explorer.metrics.covariance import CovarianceAccumulator
from explorer.metrics.kernel_rows import check_sigma
from explorer.metrics.spectrum import Spectrum, default_rtol

KERNELS = ("cosine", "rbf", "precomputed")
METHODS = ("auto", "exact", "dual", "rff", "nystrom")
# a precomputed matrix's most negative eigenvalue, as a share of its largest: beyond WARN it is
# more than round-off (warned, and dropped with the other small eigenvalues); beyond REFUSE the
# matrix is no kernel at all and its "scores" would mean nothing
NEGATIVE_WARN = 1e-6
NEGATIVE_REFUSE = 1e-2


@dataclass
class FeaturePlan:
    """How to turn input rows into feature rows φ, chosen once per input."""

    kernel: str
    method: str
    sigma: float | None = None
    phi: np.ndarray | None = None  # exact features, when the method materialises them
    transform: K.RandomFourierFeatures | K.NystromFeatures | None = None  # fitted
    dropped: int = 0
    rtol: float | None = None  # the eigenvalue cut applied to exact features (reported as applied)
    warnings: tuple[str, ...] = ()

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
    n_features: int = 1024, n_landmarks: int = 1500, seed: int = 0, rtol: float | None = None,
) -> FeaturePlan:
    """Choose the method for ``kernel`` (``auto``: dual for cosine; exact RBF up to
    :data:`explorer.metrics.kernels.EXACT_MAX_N` items, Nyström above) and fit its feature map.
    Exact methods cut the kernel's eigenvalues at ``rtol`` (default: by precision and size) and
    keep that cut in the plan, so the spectrum reports the cut applied.

    >>> plan_features(np.eye(3), kernel="rbf", sigma=0)
    Traceback (most recent call last):
    ...
    explorer.data.errors.InputError: sigma must be a positive number (leave it out for the median distance), got 0
    """
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
        tol = default_rtol(in_dtype, n) if rtol is None else rtol
        values, vectors = np.linalg.eigh(k)
        notes = check_psd(values, rtol=tol)
        phi, dropped = eigen_features(values, vectors, rtol=tol)
        return FeaturePlan("precomputed", "exact", phi=phi, dropped=dropped, rtol=tol, warnings=notes)
    if kernel == "cosine":
        if method in ("rff", "nystrom"):
            raise ValueError(f"--method {method} approximates the RBF kernel; the cosine kernel is exact")
        if method == "exact":
            check_finite(np.asarray(x), "embeddings")
            xn = K.normalize_rows(x)
            tol = default_rtol(np.float64, n) if rtol is None else rtol
            phi, dropped = K.kernel_features(xn @ xn.T, rtol=tol)
            return FeaturePlan("cosine", "exact", phi=phi, dropped=dropped, rtol=tol)
        return FeaturePlan("cosine", "dual")
    check_finite(np.asarray(x), "embeddings")
    sigma = K.median_sigma(x, seed=seed) if sigma is None else check_sigma(sigma)
    if method in ("auto", "dual"):
        method = "exact" if n <= K.EXACT_MAX_N else "nystrom"
    if method == "exact":
        tol = default_rtol(np.float64, n) if rtol is None else rtol
        phi, dropped = K.kernel_features(K.rbf_kernel(x, x, sigma=sigma), rtol=tol)
        return FeaturePlan("rbf", "exact", sigma=sigma, phi=phi, dropped=dropped, rtol=tol)
    if method == "rff":
        return FeaturePlan("rbf", "rff", sigma=sigma,
                           transform=K.RandomFourierFeatures(sigma=sigma, n_features=n_features, seed=seed)
                           .fit(x.shape[1]))
    return FeaturePlan("rbf", "nystrom", sigma=sigma,
                       transform=K.NystromFeatures(sigma=sigma, n_landmarks=n_landmarks, seed=seed).fit(x))


def check_psd(values: np.ndarray, *, rtol: float) -> tuple[str, ...]:
    """A precomputed matrix's eigenvalues checked for a kernel: refused (InputError) when the
    most negative is beyond ``NEGATIVE_REFUSE`` of the largest, warned beyond ``NEGATIVE_WARN``
    (or ``rtol``, when larger). Returns the warning, which is also issued.

    >>> check_psd(np.array([-0.5, 1.0]), rtol=1e-12)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    explorer.data.errors.InputError: ... smallest eigenvalue is -0.5, 50% of the largest (refused beyond 1%)...
    """
    top, low = float(values.max()), float(values.min())
    if top <= 0:
        raise InputError("the similarity matrix has no positive eigenvalue")
    share = -low / top
    if share > NEGATIVE_REFUSE:
        raise InputError(f"the similarity matrix is not positive semi-definite: its smallest eigenvalue is {low:.4g}, "
                         f"{100 * share:.3g}% of the largest (refused beyond {100 * NEGATIVE_REFUSE:g}%); a kernel "
                         "matrix has no negative eigenvalues")
    if share > max(NEGATIVE_WARN, rtol):
        note = (f"the similarity matrix has negative eigenvalues down to {low:.4g} ({100 * share:.2g}% of the "
                "largest): not positive semi-definite; they were dropped, so the scores are those of its "
                "positive part")
        warnings.warn(note, stacklevel=3)
        return (note,)
    return ()


def eigen_features(values: np.ndarray, vectors: np.ndarray, *, rtol: float) -> tuple[np.ndarray, int]:
    """Features Φ (n x r) with ΦΦᵀ = the positive part of a symmetric matrix, from its
    eigendecomposition; eigenvalues below ``rtol·max`` are dropped (their count is returned)."""
    keep = values >= rtol * values.max()
    return vectors[:, keep] * np.sqrt(values[keep]), int((~keep).sum())


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
    # the cut reported is the larger of the two applied: the exact features' and the covariance's
    cut = max(v for v in (rtol, plan.rtol) if v is not None) if (rtol, plan.rtol) != (None, None) else None
    spectrum = acc.spectrum(rtol=cut, vectors=vectors)
    if plan.dropped:
        spectrum = replace(spectrum, n_dropped=spectrum.n_dropped + plan.dropped)
    return replace(spectrum, n=x.shape[0], sigma=plan.sigma, warnings=spectrum.warnings + plan.warnings)


def rank_cap(plan: FeaturePlan) -> int:
    """The most eigenvalues an approximate method's features can carry: 2r for r random Fourier
    frequencies, m for m Nyström landmarks (whose per-item residuals add only private directions)."""
    if isinstance(plan.transform, K.RandomFourierFeatures):
        return 2 * plan.transform.n_features
    if isinstance(plan.transform, K.NystromFeatures) and plan.transform.map_ is not None:
        return int(plan.transform.map_.shape[1])
    raise ValueError(f"{plan.method} is not an approximate method")


def halved(plan: FeaturePlan, x: np.ndarray) -> FeaturePlan:
    """The same approximation with half the features (frequencies or landmarks)."""
    t = plan.transform
    if isinstance(t, K.RandomFourierFeatures):
        half: K.RandomFourierFeatures | K.NystromFeatures = K.RandomFourierFeatures(
            sigma=t.sigma, n_features=max(1, t.n_features // 2), seed=t.seed + 1).fit(x.shape[1])
    elif isinstance(t, K.NystromFeatures):
        half = K.NystromFeatures(sigma=t.sigma, n_landmarks=max(1, t.n_landmarks // 2), seed=t.seed + 1).fit(x)
    else:
        raise ValueError(f"{plan.method} is not an approximate method")
    return FeaturePlan(plan.kernel, plan.method, sigma=plan.sigma, transform=half)


def approximation_error(
    x: np.ndarray, plan: FeaturePlan, *, q: Sequence[float], sample: int = 2000, seed: int = 0,
    max_sample: int = 4096, full: dict[float, float] | None = None,
) -> dict[float, float]:
    """Estimated relative error |VS_approx − VS_exact| / VS_exact per order of an approximate RBF
    method, measured where its rank cap binds. Two estimates, the larger kept per order:

    - against the exact kernel on a random subsample of max(``sample``, 1.5 × the rank cap) items
      (at most ``max_sample``): a subsample smaller than the cap would hide the cap, and orders
      below 1, which weigh the spectrum's tail, would look accurate (measured: 8–16% reported
      against 37–71% true at q ≤ 0.5 on 20k items);
    - on all of ``x``, the change of the score when the feature count is halved (``full``: the
      scores with all features, when already known), which sees the cap at the real n.

    Still an estimate, not a bound: orders below 1 need :func:`approximation_warnings` too.
    """
    n = x.shape[0]
    cap = rank_cap(plan)
    size = min(n, max_sample, max(sample, cap + cap // 2))
    idx = np.sort(np.random.default_rng(seed).choice(n, size, replace=False))
    sub = np.asarray(x[idx])
    exact = compute_spectrum(sub, plan=plan_features(sub, kernel="rbf", method="exact", sigma=plan.sigma))
    e, a = exact.vendi(q), compute_spectrum(sub, plan=plan).vendi(q)
    if full is None:
        full = compute_spectrum(x, plan=plan).vendi(q)
    coarse = compute_spectrum(x, plan=halved(plan, x)).vendi(q)
    return {o: max(abs(a[o] - e[o]) / e[o], abs(full[o] - coarse[o]) / full[o]) for o in e}


def approximation_warnings(n: int, plan: FeaturePlan, error: dict[float, float]) -> tuple[str, ...]:
    """Plain warnings for the orders an approximation cannot be trusted at: orders below 1 once
    the items outnumber the features' rank cap (the tail of the spectrum, which the cap cuts), and
    any order whose estimated error exceeds 5%.

    >>> plan = FeaturePlan("rbf", "rff", sigma=1.0, transform=K.RandomFourierFeatures(sigma=1.0, n_features=8))
    >>> approximation_warnings(100, plan, {0.5: 0.3, 1.0: 0.01})[0][:48]
    'VS_0.5 is unreliable: orders below 1 weigh the t'
    """
    cap, out = rank_cap(plan), []
    for q, err in error.items():
        label = f"{q:g}" if math.isfinite(q) else "inf"
        if q < 1 and (n > cap or err > 0.05):
            out.append(f"VS_{label} is unreliable: orders below 1 weigh the tail of the spectrum, which "
                       f"{plan.method} features cap at rank {cap:,} ({n:,} items); estimated error "
                       f"{100 * err:.0f}%, possibly more. Use --method exact (small n) or more features")
        elif err > 0.05:
            out.append(f"VS_{label}: estimated error {100 * err:.0f}% from the {plan.method} approximation")
    return tuple(out)
