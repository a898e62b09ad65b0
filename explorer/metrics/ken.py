"""Novel modes between two sets (KEN, Zhang et al. 2024): the eigendecomposition of
C_X − η C_Y, where C is the cosine-kernel covariance of a set's unit rows (the d×d matrix whose
nonzero eigenvalues are those of K/n). Positive eigenvalues are directions X has more of than Y,
negative ones directions Y has more of; the items loading most on each show what they are.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.data.arrays import normalize_rows


@dataclass
class NovelModes:
    """Modes of C_X − η C_Y. ``eigenvalues`` are sorted from most positive to most negative."""

    eigenvalues: np.ndarray
    vectors: np.ndarray  # (d, r), column j goes with eigenvalues[j]
    eta: float

    def _side(self, positive: bool) -> tuple[np.ndarray, np.ndarray]:
        keep = self.eigenvalues > 0 if positive else self.eigenvalues < 0
        values, vectors = np.abs(self.eigenvalues[keep]), self.vectors[:, keep]
        order = np.argsort(-values, kind="stable")
        return values[order], vectors[:, order]

    def novel_mass(self, *, of_x: bool = True) -> float:
        """Total weight of the directions one set has more of: Σ of the positive (or negative)
        eigenvalues; 0 when it has nothing the other lacks."""
        return float(self._side(of_x)[0].sum())

    def ken(self, *, of_x: bool = True) -> float:
        """The KEN score: entropy −Σ λ log λ over the positive (or negative) eigenvalues."""
        values = self._side(of_x)[0]
        values = values[values > 0]
        return float(-(values * np.log(values)).sum())

    def modes(self, x: np.ndarray, *, of_x: bool = True, n_modes: int = 5, top_items: int = 12,
              min_weight: float = 0.0) -> list[dict]:
        """The strongest modes of one side with the rows of ``x`` (that side's items) loading most
        on each: ``{"mode", "weight", "top"}`` with ``top`` indices into ``x``."""
        values, vectors = self._side(of_x)
        shown = int(np.sum(values[:n_modes] > min_weight))
        loads = _loads(x, vectors[:, :shown])
        out = []
        for j in range(shown):
            load = loads[:, j]
            out.append({"mode": j, "weight": float(values[j]),
                        "top": np.argsort(-load, kind="stable")[:top_items].tolist()})
        return out

    def item_scores(self, x: np.ndarray, *, of_x: bool = True, n_modes: int = 5) -> np.ndarray:
        """Per item of one side, in [0, 1]: its squared loadings on that side's ``n_modes``
        strongest modes averaged with the modes' weights (1 = lies entirely in what is novel)."""
        values, vectors = self._side(of_x)
        values, vectors = values[:n_modes], vectors[:, :n_modes]
        if not len(values):
            return np.zeros(len(x))
        load = _loads(x, vectors)
        return np.clip(load @ values / values.sum(), 0.0, 1.0)


def novel_modes(x: np.ndarray, y: np.ndarray, *, eta: float = 1.0) -> NovelModes:
    """Eigendecomposition of C_X − η C_Y for the cosine kernel.

    When d exceeds the number of items the matrix is formed in the span of the items, which has
    the same nonzero eigenpairs at a fraction of the cost.

    >>> x = np.array([[1.0, 0, 0]] * 3 + [[0, 1.0, 0]] * 3)
    >>> y = np.array([[1.0, 0, 0]] * 6)
    >>> m = novel_modes(x, y)
    >>> round(m.novel_mass(of_x=True), 6), round(m.novel_mass(of_x=False), 6)
    (0.5, 0.5)
    >>> m.modes(x, n_modes=1, top_items=3)[0]["top"]
    [3, 4, 5]
    """
    if x.shape[1] > len(x) + len(y):
        ux, uy = normalize_rows(x), normalize_rows(y)
        weights = np.concatenate([np.full(len(ux), 1.0 / len(ux)), np.full(len(uy), -eta / len(uy))])
        stacked = np.vstack([ux, uy])
        basis, _ = np.linalg.qr(stacked.T)  # (d, m + n): orthonormal span of all items
        coords = stacked @ basis
        values, small = np.linalg.eigh(coords.T @ (coords * weights[:, None]))
        vectors = basis @ small
    else:  # d×d, accumulated a block of rows at a time: no stacked copy of both sets
        values, vectors = np.linalg.eigh(_covariance(x) - eta * _covariance(y))
    order = np.argsort(-values, kind="stable")
    return NovelModes(values[order], vectors[:, order], eta)


BLOCK = 65_536  # rows normalised in float64 at a time


def _covariance(x: np.ndarray) -> np.ndarray:
    """Σ uᵢuᵢᵀ / n over the unit rows of ``x``, a block at a time."""
    out = np.zeros((x.shape[1], x.shape[1]))
    for start in range(0, len(x), BLOCK):
        unit = normalize_rows(x[start : start + BLOCK])
        out += unit.T @ unit
    return out / len(x)


def _loads(x: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Squared loadings (uᵢ · v)² of every unit row on every column of ``vectors``, by blocks."""
    out = np.empty((len(x), vectors.shape[1]))
    for start in range(0, len(x), BLOCK):
        out[start : start + BLOCK] = (normalize_rows(x[start : start + BLOCK]) @ vectors) ** 2
    return out
