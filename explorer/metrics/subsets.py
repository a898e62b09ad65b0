"""Vendi scores of many subsets of one large set (a lasso, a box, a filter on a map of a million
items), each in time linear in the smaller of the subset and its complement.

The cosine-kernel spectrum needs only the d×d Gram matrix Σ uᵢuᵢᵀ of the subset's unit rows.
The whole set's Gram is made once; a subset larger than half the set is scored as the whole
minus its complement. Blocks are normalised and multiplied in float32 and summed in float64:
measured on 300k × 512 rows (2 cores), 0.33 s in float32 against 1.0 s for the float64 path of
explorer.metrics.vendi. Float32 rounding lifts the smallest eigenvalues, which orders below 1
weigh most: measured relative error ≤ 3e-4 at q = 0.5 and ≤ 3e-5 at q ≥ 1, stated with the scores
as 1e-3. Subsets up to EXACT_ROWS rows take the float64 path and are exact when their
eigenproblem (min(rows, d) wide) is at most EXACT_DIM; wider ones are solved in float32 (LAPACK's
syevd through scipy), with the same stated bound: measured on a 1,700-item lasso of the sample's
1280-d features (one thread), 93 ms against 190 ms, relative error 1.5e-4 at q = 0.5 and 1.3e-6
at q = 1. That eigendecomposition was most of a lasso's server time. Eigenvalues below
NOISE × the largest are float32 rounding, not data, and are dropped (the 1e-6 cut used for float32
similarity matrices would drop the many small eigenvalues of wide embeddings: 0.2% of VS₁ on
1280-d image features).
"""
from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from explorer.data.arrays import normalize_rows
from explorer.metrics.spectrum import DEFAULT_ORDERS, default_rtol, hill_number

BLOCK = 65_536
NOISE = 1e-8  # eigenvalues below this share of the largest are float32 rounding
EXACT_ROWS = 20_000  # subsets up to this size are scored in float64 (under 0.1 s at 512-d)
EXACT_DIM = 768  # ... when their eigenproblem is at most this wide (float64: 45 ms on one thread)
FLOAT32_ERROR = 1e-3  # measured: ≤ 3e-4 relative at q = 0.5, ≤ 3e-5 at q ≥ 1 (tests/test_selection.py)
_ONE_BLAS_THREAD = threading.Lock()  # one limiter at a time, so none restores a count another one set


def _eigenvalues(a: np.ndarray) -> np.ndarray:
    """The eigenvalues of ``a`` on one BLAS thread, in float64 or (float32 input) float32. The
    d×d eigendecomposition is most of a lasso's server time, and OpenBLAS's waiting threads make
    it erratic when the cores are busy (the app's own background work, other sessions): 1280×1280
    on 2 busy cores measured 0.6–13 s with OpenBLAS's 2 threads against 0.29–0.39 s with one
    (benchmarks/ui.py, the lasso row). numpy's eigvalsh of float32 input took as long as float64,
    scipy's syevd half as long, so float32 goes through scipy."""
    from scipy.linalg import eigh  # before the limit: scipy loads its own OpenBLAS, limited only once loaded
    from threadpoolctl import threadpool_limits  # scikit-learn's dependency

    with _ONE_BLAS_THREAD, threadpool_limits(1, user_api="blas"):
        if a.dtype == np.float32:
            return eigh(a, eigvals_only=True, driver="evd", check_finite=False).astype(np.float64)
        return np.linalg.eigvalsh(a)


class SubsetScorer:
    """Cosine Vendi scores of subsets of the rows ``rows`` of ``x`` (default: all rows).

    >>> x = np.vstack([np.eye(4), np.eye(4)])
    >>> scorer = SubsetScorer(q=[1.0]).fit(x)
    >>> round(scorer.scores(np.arange(4))[1.0], 4), round(scorer.scores(np.arange(7))[1.0], 4)
    (4.0, 3.8643)
    """

    def __init__(self, *, q: Sequence[float] = DEFAULT_ORDERS, block: int = BLOCK) -> None:
        self.q = tuple(q)
        self.block = block

    def fit(self, x: np.ndarray, *, rows: np.ndarray | None = None) -> SubsetScorer:
        """Keep ``x`` (not a copy) and make the Gram matrix of the set ``rows``."""
        self.x_ = x
        self.rows_ = np.arange(len(x)) if rows is None else np.asarray(rows, dtype=np.int64)
        self.in_set_ = np.zeros(len(x), dtype=bool)
        self.in_set_[self.rows_] = True
        self.gram_ = self._gram(self.rows_, np.float32)
        return self

    def scores(self, indices: np.ndarray) -> dict[float, float]:
        """Scores of the rows ``indices`` of ``x`` (all within the fitted set); {} below 2 rows.
        Exact (float64, as explorer.metrics.vendi) up to ``EXACT_ROWS`` rows and an eigenproblem
        up to ``EXACT_DIM`` wide; else within :meth:`error`."""
        indices = np.asarray(indices, dtype=np.int64)
        m = len(indices)
        if m < 2:
            return {}
        exact = self.error(m) == 0.0
        wide = min(m, self.x_.shape[1]) > EXACT_DIM  # solved in float32: made in float32 too
        if m < self.x_.shape[1]:
            # fewer rows than dimensions: the m×m Gram UUᵀ has the same nonzero eigenvalues as the
            # d×d UᵀU and a smaller eigendecomposition (a 1,000-item lasso of 1280-d features:
            # 0.11 s against 0.25 s on one thread)
            made = np.float32 if wide else np.float64
            unit = normalize_rows(np.asarray(self.x_[indices], dtype=made), dtype=made, inplace=True)
            gram = unit @ unit.T / m
        elif m <= EXACT_ROWS:
            gram = self._gram(indices, np.float32 if wide else np.float64) / m
        else:
            if 2 * m <= len(self.rows_):
                gram = self._gram(indices, np.float32)
            else:
                outside = self.in_set_.copy()
                outside[indices] = False
                gram = self.gram_ - self._gram(np.flatnonzero(outside), np.float32)
            gram /= m
        values = _eigenvalues(gram.astype(np.float32) if wide else gram)
        floor = (default_rtol(np.float64, values.size) if exact else NOISE) * values.max()
        if wide:
            # a float32 solver's rounding (~1e-7 of the largest) would pass NOISE as eigenvalues
            # where the rows span fewer directions than d; the Gram is positive semi-definite, so
            # its most negative eigenvalue shows how large that rounding is. Measured on rank-300
            # rows in 1280-d: 706 values passed NOISE alone, q = 0.5 off by 1.5e-3; with this
            # floor exactly 300, off by 4e-8.
            floor = max(floor, 2.0 * -min(float(values.min()), 0.0))
        kept = values[values > floor]
        return {q: hill_number(kept / kept.sum(), q) for q in self.q}

    def error(self, n: int) -> float:
        """Relative error bound of the scores of an ``n``-row subset (0: the exact float64 path)."""
        return 0.0 if n <= EXACT_ROWS and min(n, self.x_.shape[1]) <= EXACT_DIM else FLOAT32_ERROR

    def memo_bytes(self) -> int:
        """What the scorer owns: its Gram matrix and indices, not the embeddings it reads."""
        return int(self.gram_.nbytes + self.rows_.nbytes + self.in_set_.nbytes)

    def _gram(self, rows: np.ndarray, dtype: type) -> np.ndarray:
        d = self.x_.shape[1]
        out = np.zeros((d, d))
        for start in range(0, len(rows), self.block):
            block = normalize_rows(np.asarray(self.x_[rows[start : start + self.block]], dtype=dtype),
                                   dtype=dtype, inplace=True)
            out += block.T @ block
        return out
