"""Vendi scores of any order for the cosine, centred cosine, RBF and precomputed kernels: :class:`VendiAnalysis`
(scores, spectrum, modes and per-item contributions; fitted at once or streamed batch by batch
and merged across shards) and its functional twin :func:`vendi_scores`.

Every kernel is reduced to feature rows φ_i (:mod:`explorer.metrics.features`) and the
covariance C = Σ p_i φ_i φ_iᵀ, whose nonzero eigenvalues are those of the weighted kernel matrix.
One streaming pass builds C; an optional second pass (:mod:`explorer.metrics.contributions`)
projects the features on C's eigenvectors. Centred cosine is the cosine machinery on the rows
unit(x − μ) (:mod:`explorer.metrics.kernel_rows`); μ defaults to the items' mean.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from explorer.metrics.contributions import item_contributions
from explorer.metrics.covariance import CovarianceAccumulator
from explorer.metrics.features import (
    approximation_error,
    approximation_warnings,
    compute_spectrum,
    plan_features,
)
from explorer.metrics.kernel_rows import KernelInfo, centred_rows, kernel_rows, mean_row, parse_kernel
from explorer.metrics.spectrum import DEFAULT_ORDERS, Spectrum, order_label
from explorer.store.cache import cached, hash_key


def kernel_spectrum(k: np.ndarray, *, rtol: float | None = None) -> Spectrum:
    """Spectrum of a precomputed n x n similarity matrix (method ``"exact"``); a diagonal other
    than 1 is normalised away (K_ij / sqrt(K_ii K_jj)).

    >>> k = np.array([[1, .9, 0], [.9, 1, 0], [0, 0, 1]])
    >>> round(kernel_spectrum(k).vendi(1.0)[1.0], 7)
    2.1573005
    """
    return compute_spectrum(k, plan=plan_features(k, kernel="precomputed", rtol=rtol))


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
        if s.centre is not None:
            out["centre"] = s.centre
        if s.sigma is not None:
            out["sigma"] = s.sigma
        if s.approx_error is not None:
            out["approx_error"] = {order_label(q): v for q, v in s.approx_error.items()}
        if s.warnings:
            out["warnings"] = list(s.warnings)
        return out


def vendi_scores(
    x: np.ndarray, *, q: Sequence[float] = DEFAULT_ORDERS, kernel: str = "cosine", method: str = "auto",
    sigma: float | None = None, weights: np.ndarray | None = None, rtol: float | None = None,
    centre: np.ndarray | None = None, batch_size: int = 16384, seed: int = 0,
) -> VendiResult:
    """Vendi scores of the rows of ``x`` (``cosine``, ``centred`` cosine around ``centre``,
    default their mean, or ``rbf``) or of a similarity matrix (``kernel="precomputed"``), with
    optional item weights.

    >>> {q: round(v, 9) for q, v in vendi_scores(np.eye(5), q=[1.0, np.inf]).to_dict()["scores"].items()}
    {'1': 5.0, 'inf': 5.0}
    """
    analysis = VendiAnalysis(q=q, kernel=kernel, method=method, sigma=sigma, rtol=rtol, contributions=False,
                             centre=centre, batch_size=batch_size, seed=seed)
    return analysis.fit(x, weights=weights).result()


class VendiAnalysis:
    """Vendi scores, spectrum, modes and per-item contributions, scikit-learn style.

    >>> a = VendiAnalysis(q=[1.0, 2.0]).fit(np.vstack([np.eye(3), np.eye(3)[:1]]))
    >>> round(a.scores_[1.0], 4), a.contributions_.shape[0]
    (2.8284, 4)
    """

    contributions_: pd.DataFrame | None
    modes_: list[dict] | None

    def __init__(self, *, q: Sequence[float] = DEFAULT_ORDERS, kernel: str = "cosine", method: str = "auto",
                 sigma: float | None = None, rtol: float | None = None, contributions: bool = True,
                 n_modes: int = 10, top_items: int = 8, exact_loo: bool | str = "auto",
                 n_features: int = 1024, n_landmarks: int = 1500, batch_size: int = 16384,
                 centre: np.ndarray | None = None, centre_origin: str | None = None, seed: int = 0) -> None:
        self.q = q
        self.centre = centre
        self.centre_origin = centre_origin
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

    def _kernel(self) -> str:
        kernel = parse_kernel(self.kernel, choices=("cosine", "centred", "rbf", "precomputed"))
        if kernel != "centred" and self.centre is not None:
            raise ValueError(f"a centre applies to the centred kernel, not {kernel!r}")
        return kernel

    def fit(self, X: np.ndarray, y=None, *, weights: np.ndarray | None = None) -> VendiAnalysis:
        """All items at once: scores, spectrum and (with ``contributions``) per-item results."""
        kernel = self._kernel()
        self.kernel_info_ = KernelInfo(kernel)
        if kernel == "centred":  # the cosine machinery on the centred unit rows
            if weights is not None and self.centre is None:
                raise ValueError("weighted centred cosine needs its centre: give centre=")
            X, self.kernel_info_ = kernel_rows(X, kernel="centred", centre=self.centre,
                                               centre_origin=self.centre_origin)
        plan = plan_features(X, kernel="cosine" if kernel == "centred" else kernel, method=self.method,
                             sigma=self.sigma, seed=self.seed, n_features=self.n_features,
                             n_landmarks=self.n_landmarks, rtol=self.rtol)
        spectrum = compute_spectrum(X, plan=plan, weights=weights, rtol=self.rtol,
                                    vectors=self.contributions, batch_size=self.batch_size)
        if kernel == "centred":
            spectrum = replace(spectrum, kernel="centred", centre=self.kernel_info_.centre_origin)
        if plan.method in ("rff", "nystrom"):
            error = approximation_error(X, plan, q=self.q, seed=self.seed, full=spectrum.vendi(self.q))
            spectrum = replace(spectrum, approx_error=error,
                               warnings=spectrum.warnings + approximation_warnings(X.shape[0], plan, error))
        self._set_spectrum(spectrum)
        for name in ("plan_", "accumulator_"):  # a fit ends any stream
            self.__dict__.pop(name, None)
        if self.contributions:
            c = item_contributions(X, plan=plan, spectrum=spectrum, weights=weights, n_modes=self.n_modes,
                                   top_items=self.top_items, exact_loo=self.exact_loo,
                                   batch_size=self.batch_size)
            table = {"entropy": c.entropy, "loo_delta": c.loo_delta, "crowdedness": c.crowdedness}
            if c.loo_exact is not None:
                table["loo_exact"] = c.loo_exact
            self.contributions_ = pd.DataFrame(table)
            self.modes_ = []
            for j in range(c.top_positive.shape[0]):
                # a side lists only items that load on it: a mode most items load positively on
                # has few or no items on its negative side
                pos, neg = c.loadings_positive[j] > 0, c.loadings_negative[j] < 0
                self.modes_.append({
                    "mode": j, "weight": float(spectrum.eigenvalues[j]),
                    "positive": c.top_positive[j][pos].tolist(),
                    "positive_loadings": c.loadings_positive[j][pos].tolist(),
                    "negative": c.top_negative[j][neg].tolist(),
                    "negative_loadings": c.loadings_negative[j][neg].tolist()})
        return self

    def partial_fit(self, X: np.ndarray, y=None, *, weights: np.ndarray | None = None) -> VendiAnalysis:
        """Add a batch of items: the covariance grows by the batch and the scores and spectrum are
        refreshed. Streams the cosine kernel exactly and the RBF kernel through random Fourier
        features (fixed by ``sigma``, or by the first batch's median distance, and ``seed``).
        ``weights`` are relative to every other item's (integer weights act as duplicates).
        Centred cosine streams around a ``centre`` given in advance (a stream cannot know the
        mean of items it has not seen). Per-item contributions need all items at once: use
        :meth:`fit` for them.

        >>> a = VendiAnalysis(q=[1.0], contributions=False)
        >>> for batch in np.array_split(np.eye(6), 3): _ = a.partial_fit(batch)
        >>> round(a.scores_[1.0], 6), a.n_items_
        (6.0, 6)
        """
        X = np.asarray(X) if not isinstance(X, np.memmap) else X
        kernel = self._kernel()
        if kernel == "centred":
            if self.centre is None:
                raise ValueError("streaming centred cosine needs its centre in advance: give centre= (e.g. the "
                                 "reference's mean_row)")
            unit = centred_rows(X, self.centre)  # an extra column only when some row sits at the centre
            X = unit if unit.shape[1] > X.shape[1] else np.hstack([unit, np.zeros((len(unit), 1), np.float32)])
        if "plan_" not in self.__dict__:
            if kernel not in ("cosine", "rbf", "centred"):
                raise ValueError("streaming works for the cosine and RBF kernels; a precomputed matrix needs fit")
            if self.kernel == "rbf" and self.method not in ("auto", "rff"):
                raise ValueError(f"streaming the RBF kernel uses random Fourier features, not {self.method!r}")
            method = "rff" if kernel == "rbf" else "dual"
            self.plan_ = plan_features(X, kernel="rbf" if kernel == "rbf" else "cosine", method=method,
                                       sigma=self.sigma, seed=self.seed, n_features=self.n_features)
            self.accumulator_ = CovarianceAccumulator(normalize=False, kernel=kernel, method=method)
            self.kernel_info_ = KernelInfo(kernel, self.centre_origin or "given centre" if kernel == "centred"
                                           else None)
        w = None if weights is None else np.asarray(weights, dtype=np.float64)
        for rows, phi in self.plan_.batches(X, self.batch_size):
            self.accumulator_.update_features(phi, weights=None if w is None else w[rows])
        return self._refresh()

    def merge(self, other: VendiAnalysis) -> VendiAnalysis:
        """Add the items another stream saw (another shard): the result equals one stream over both.

        >>> a = VendiAnalysis(q=[1.0], contributions=False).partial_fit(np.eye(4)[:2])
        >>> b = VendiAnalysis(q=[1.0], contributions=False).partial_fit(np.eye(4)[2:])
        >>> round(a.merge(b).scores_[1.0], 6)
        4.0
        """
        if "accumulator_" not in other.__dict__:
            raise ValueError("only a streamed analysis (partial_fit) can be merged")
        if "accumulator_" not in self.__dict__:
            self.plan_, self.accumulator_ = other.plan_, CovarianceAccumulator(
                normalize=False, kernel=other.accumulator_.kernel, method=other.accumulator_.method)
        elif self.plan_.sigma != other.plan_.sigma or self.plan_.method != other.plan_.method:
            raise ValueError(f"cannot merge {self.plan_.method} features with sigma {self.plan_.sigma} and "
                             f"{other.plan_.method} features with sigma {other.plan_.sigma}: give both the same sigma")
        self.accumulator_.merge(other.accumulator_)
        return self._refresh()

    def _refresh(self) -> VendiAnalysis:
        spectrum = self.accumulator_.spectrum(rtol=self.rtol)
        self._set_spectrum(replace(spectrum, sigma=self.plan_.sigma, centre=self.kernel_info_.centre_origin))
        return self

    def _set_spectrum(self, spectrum: Spectrum) -> None:
        self.spectrum_ = spectrum
        self.scores_ = spectrum.vendi(self.q)
        self.eigenvalues_ = spectrum.eigenvalues
        self.cumulative_ = spectrum.cumulative
        self.effective_rank_ = spectrum.effective_rank
        self.n_items_ = spectrum.n
        self.method_, self.sigma_ = spectrum.method, spectrum.sigma
        self.contributions_ = self.modes_ = None

    def result(self) -> VendiResult:
        return VendiResult(self.scores_, self.spectrum_)


def cached_analysis(embeddings: np.ndarray, *, kernel: str = "cosine", centre: np.ndarray | None = None,
                    centre_origin: str | None = None, n_modes: int = 10, top_items: int = 12, cache_dir=None) -> dict:
    """Spectrum (eigenvalues, cumulative mass), modes with their top items (row indices into
    ``embeddings``) and per-item contributions of ``kernel`` (cosine; centred cosine around
    ``centre``, default the items' mean; RBF with the median bandwidth), stored on disk by
    content and kernel. ``kernel`` says how the numbers were made (:meth:`VendiResult.to_dict`).

    >>> a = cached_analysis(np.eye(3))
    >>> len(a["eigenvalues"]), round(sum(a["entropy"]) / 3, 6) == round(float(np.log(3)), 6), a["kernel"]["kernel"]
    (3, True, 'cosine')
    """
    x = np.ascontiguousarray(embeddings)
    kernel = parse_kernel(kernel, choices=("cosine", "centred", "rbf"))
    if kernel == "centred" and centre is None:
        centre, centre_origin = mean_row(x), f"pooled mean of {x.shape[0]:,} items"

    def compute() -> dict:
        a = VendiAnalysis(kernel=kernel, centre=centre, centre_origin=centre_origin, n_modes=n_modes,
                          top_items=top_items, exact_loo=False).fit(x)
        assert a.contributions_ is not None  # contributions=True
        facts = a.result().to_dict()
        return {"scores": {order_label(q): v for q, v in a.scores_.items()},
                "kernel": {k: v for k, v in facts.items() if k != "scores"},
                "eigenvalues": a.eigenvalues_.tolist(), "cumulative": a.cumulative_.tolist(),
                "modes": a.modes_, **{c: a.contributions_[c].tolist() for c in a.contributions_.columns}}

    key = hash_key("analysis", 2, kernel, centre_origin, n_modes, top_items, x,
                   None if centre is None else np.asarray(centre))
    return cached("analysis", key, compute, root=cache_dir)
