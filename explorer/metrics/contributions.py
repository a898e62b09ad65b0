"""Per-item contributions to diversity, from one more pass over the feature rows: the entropy
split h_i = −φ_iᵀ log(C) φ_i (whose mean is log VS₁), crowdedness φ_iᵀ C φ_i, leave-one-out
changes of VS₁ (first order, and exact for small inputs), and the items behind each mode."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from explorer.metrics import kernels as K
from explorer.metrics.features import FeaturePlan, normalized_weights
from explorer.metrics.spectrum import Spectrum, hill_number

EXACT_LOO_BUDGET = 5e9  # n · r³ flops above which exact leave-one-out is skipped


@dataclass
class Contributions:
    """Per-item results of the second pass."""

    entropy: np.ndarray  # h_i; their (weighted) mean is log VS_1
    crowdedness: np.ndarray  # Σ_j p_j K_ij²
    loo_delta: np.ndarray  # first-order change of VS_1 when item i is removed
    loo_exact: np.ndarray | None  # exact change of VS_1, small inputs only
    top_positive: np.ndarray = field(repr=False)  # (modes, k) item indices
    top_negative: np.ndarray = field(repr=False)
    loadings_positive: np.ndarray = field(repr=False)
    loadings_negative: np.ndarray = field(repr=False)


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
            w_rows = normalized_weights(weights, n)
            mass = d * (1.0 / n if w_rows is None else w_rows[rows])
            pos = d > 0
            entropy[rows][pos] -= d[pos] * np.log(mass[pos])
            crowd[rows] += d * mass
        ids = np.broadcast_to(np.arange(rows.start, rows.stop), (m, rows.stop - rows.start))
        best[0], best[1] = _merge_top(best[0], best[1], ids, loads, k)
        best[2], best[3] = _merge_top(best[2], best[3], ids, -loads, k)
    w = normalized_weights(weights, n)
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
