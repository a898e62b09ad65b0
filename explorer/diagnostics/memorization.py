"""Memorised samples: each sample's most similar reference item, and whether it is (nearly) a
copy of it, judged relative to the reference's own spacing (cosine distance below α times the
reference's median nearest-neighbour distance) or by a fixed cosine."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.data.arrays import normalize_rows
from explorer.diagnostics.base import ComparisonContext, Diagnostic, DiagnosticResult, register
from explorer.diagnostics.duplicates import DEFAULT_ALPHA
from explorer.neighbors.search import cross_knn, knn


@dataclass
class Memorization:
    """Each sample's most similar reference item and whether it is (near) a copy of it."""

    threshold: float  # cosine similarity at or above which a sample is a copy
    nearest: np.ndarray  # index into the reference
    similarity: np.ndarray
    typical: float  # median distance of a reference item to its nearest reference neighbour

    @property
    def flagged(self) -> np.ndarray:
        return self.similarity >= self.threshold

    @property
    def score(self) -> np.ndarray:
        """1 for an exact copy, falling to 0 at the typical reference spacing."""
        return np.clip(1.0 - (1.0 - self.similarity) / max(self.typical, 1e-12), 0.0, 1.0)

    @classmethod
    def from_neighbours(cls, nearest: np.ndarray, similarity: np.ndarray, reference_nearest_sim: np.ndarray, *,
                        alpha: float = DEFAULT_ALPHA, threshold: float | None = None) -> Memorization:
        """From nearest-reference results computed elsewhere (e.g. by :func:`explorer.metrics.prdc.prdc`)."""
        typical = float(np.median(1.0 - reference_nearest_sim)) if len(reference_nearest_sim) else 1.0
        thr = float(threshold) if threshold is not None else 1.0 - alpha * typical
        return cls(thr, np.asarray(nearest), np.asarray(similarity, dtype=np.float64), typical)


def memorization(samples: np.ndarray, reference: np.ndarray, *, alpha: float = DEFAULT_ALPHA,
                 threshold: float | None = None) -> Memorization:
    """Nearest reference item of every sample; copies are samples closer to it than α × the
    reference's own median nearest-neighbour distance (or at or above a fixed cosine ``threshold``).

    >>> ref = np.eye(3)
    >>> m = memorization(np.array([[1.0, 0.0001, 0], [0.6, 0.8, 0]]), ref)
    >>> m.nearest.tolist(), m.flagged.tolist()
    ([0, 1], [True, False])
    """
    ref = normalize_rows(reference, dtype=np.float32)
    idx, dist = cross_knn(normalize_rows(samples, dtype=np.float32), ref, k=1)
    own = knn(ref, k=1).distances[:, 0] if len(ref) > 1 else np.zeros(0)
    return Memorization.from_neighbours(idx[:, 0], 1.0 - dist[:, 0].astype(np.float64) ** 2 / 2,
                                        1.0 - own.astype(np.float64) ** 2 / 2, alpha=alpha, threshold=threshold)


@register
class Memorized(Diagnostic):
    name = "memorized"
    description = "a sample that is (nearly) a copy of a reference item"

    def run(self, c: ComparisonContext) -> list[DiagnosticResult]:
        ids = c.items_["id"].astype(str).to_numpy()
        ref_idx = c.index_[c.reference]
        r = DiagnosticResult.empty(self, len(ids))
        for name in c.sets_:
            idx, m = c.index_[name], c.memorization_[name]
            r.score[idx] = m.score
            hit = np.flatnonzero(m.flagged)
            r.flag_items(idx[hit], [f"copy of reference item {ids[ref_idx[m.nearest[j]]]} "
                                    f"(cosine {m.similarity[j]:.4f})" for j in hit])
        return [r.finish(thresholds={s: m.threshold for s, m in c.memorization_.items()})]
