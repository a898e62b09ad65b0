"""Outliers: items far from their nearest neighbours compared with how far items of their set
usually are, by Tukey's far-out rule on the mean cosine distance to the k nearest neighbours."""
from __future__ import annotations

import numpy as np

from explorer.data.arrays import normalize_rows
from explorer.diagnostics.base import ComparisonContext, Diagnostic, DiagnosticResult, register
from explorer.neighbors.graph import SetNeighbors, set_neighbors

FAR_OUT = 3.0  # interquartile ranges above the upper quartile: Tukey's "far out"


def knn_distance(x: np.ndarray, *, k: int, neighbors: SetNeighbors | None = None) -> np.ndarray:
    """Mean cosine distance of each row to its ``k`` nearest other rows (from the set's graph
    when given).

    >>> knn_distance(np.array([[1.0, 0], [1, 0.01], [0, 1]]), k=1).round(4).tolist()
    [0.0, 0.0, 0.99]
    """
    if neighbors is None or neighbors.k < k:
        neighbors = set_neighbors(normalize_rows(x, dtype=np.float32), k=k)
    dist = neighbors.distances[:, :k].astype(np.float64)
    return (dist**2 / 2).mean(axis=1)  # unit rows: squared Euclidean / 2 = cosine distance


def far_out(values: np.ndarray, *, fences: float = FAR_OUT) -> tuple[np.ndarray, float]:
    """Which values lie above Q3 + ``fences`` × IQR, and that threshold.

    >>> far_out(np.array([1.0, 1.1, 0.9, 1.0, 9.0]))[0].tolist()
    [False, False, False, False, True]
    """
    q1, q3 = np.percentile(values, [25, 75])
    threshold = float(q3 + fences * max(q3 - q1, 1e-12))
    return values > threshold, threshold


@register
class Outlier(Diagnostic):
    name = "outlier"
    description = "far from its nearest neighbours compared with the rest of its set (Tukey's far-out rule)"
    needs_reference = False

    def run(self, c: ComparisonContext) -> list[DiagnosticResult]:
        r = DiagnosticResult.empty(self, len(c.items_))
        thresholds = {}
        for name, idx in c.index_.items():
            if len(idx) <= c.k + 3:
                continue  # too few items to say what is usual
            d = knn_distance(c.embeddings_[idx], k=c.k, neighbors=c.neighbors_of(name))
            hit, thresholds[name] = far_out(d)
            r.score[idx] = np.clip(d / (2 * thresholds[name]), 0.0, 1.0)  # 0.5 at the fence
            r.flag_items(idx[hit], [f"mean cosine distance {v:.4f} to its {c.k} nearest neighbours in {name}, "
                                    f"beyond the far-out fence {thresholds[name]:.4f}" for v in d[hit]])
        return [r.finish(k=c.k, fences=FAR_OUT, thresholds=thresholds)]
