"""Where sample sets differ from the reference: regions (clusters of the reference) that a set
under- or over-represents, and their diagnostics.

Regions are k-means clusters of the unit-normalised reference embeddings; a sample belongs to
the region of its nearest centroid. A region is under-represented by a set when the set's share
of it is below ``under`` × the reference's share, over-represented above ``over`` ×.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from explorer.data.arrays import normalize_rows
from explorer.diagnostics.base import ComparisonContext, Diagnostic, DiagnosticResult, register

UNDER, OVER = 0.5, 2.0
FIT_SAMPLE = 50_000  # reference items k-means is fitted on


def default_clusters(n_reference: int) -> int:
    """20 regions, fewer for small references (at least ~10 items per region).

    >>> default_clusters(1797), default_clusters(60)
    (20, 6)
    """
    return int(max(2, min(20, n_reference // 10)))


@dataclass
class Regions:
    """Reference regions and each set's share of them."""

    centroids: np.ndarray
    reference: np.ndarray  # region of each reference item
    members: dict[str, np.ndarray] = field(default_factory=dict)  # region of each item of each set
    under: float = UNDER
    over: float = OVER

    @property
    def n_regions(self) -> int:
        return len(self.centroids)

    def assign(self, x: np.ndarray) -> np.ndarray:
        """Region of each row: its most similar centroid (a block of rows at a time)."""
        out = np.empty(len(x), dtype=np.int64)
        for start in range(0, len(x), 65_536):
            block = normalize_rows(x[start : start + 65_536], dtype=np.float32)
            out[start : start + len(block)] = np.argmax(block @ self.centroids.T, axis=1)
        return out

    def shares(self, regions: np.ndarray) -> np.ndarray:
        return np.bincount(regions, minlength=self.n_regions) / max(1, len(regions))

    def ratios(self, name: str) -> np.ndarray:
        """Share of each region in set ``name`` over its share in the reference."""
        ref = self.shares(self.reference)
        return self.shares(self.members[name]) / np.maximum(ref, 1e-12)

    def table(self) -> pd.DataFrame:
        """One row per region: reference size and share, each set's share, ratio and status."""
        out = pd.DataFrame({"region": [f"r{i}" for i in range(self.n_regions)],
                            "n_reference": np.bincount(self.reference, minlength=self.n_regions),
                            "reference_share": self.shares(self.reference)})
        for name in self.members:
            ratio = self.ratios(name)
            out[f"share:{name}"] = self.shares(self.members[name])
            out[f"ratio:{name}"] = ratio
            out[f"status:{name}"] = np.where(ratio < self.under, "under", np.where(ratio > self.over, "over", ""))
        return out

    def status(self, name: str) -> dict[str, list[str]]:
        ratio = self.ratios(name)
        return {"underrepresented": [f"r{i}" for i in np.flatnonzero(ratio < self.under)],
                "overrepresented": [f"r{i}" for i in np.flatnonzero(ratio > self.over)]}


def fit_regions(reference: np.ndarray, sets: dict[str, np.ndarray], *, n_clusters: int | None = None,
                seed: int = 0, under: float = UNDER, over: float = OVER) -> Regions:
    """Cluster the reference and place every set's items in its regions.

    >>> ref = np.array([[1.0, 0]] * 5 + [[0, 1.0]] * 5)
    >>> r = fit_regions(ref, {"s": np.array([[1.0, 0.1]] * 4)}, n_clusters=2)
    >>> r.status("s")["underrepresented"] == [f"r{r.assign(np.array([[0, 1.0]]))[0]}"]
    True
    """
    from sklearn.cluster import KMeans

    k = min(n_clusters or default_clusters(len(reference)), len(reference))
    # k-means on at most FIT_SAMPLE reference items (20 centroids need no more), then every item
    # assigned to its nearest centroid: linear in n, no float64 copy of a million rows
    rng = np.random.default_rng(seed)
    fit_rows = np.sort(rng.choice(len(reference), FIT_SAMPLE, replace=False)) if len(reference) > FIT_SAMPLE else None
    ref = normalize_rows(reference if fit_rows is None else reference[fit_rows])
    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(ref)
    # number regions by first appearance so names do not depend on k-means' internal order
    _, first = np.unique(km.labels_, return_index=True)
    order = km.labels_[np.sort(first)]
    centroids = normalize_rows(km.cluster_centers_[order], dtype=np.float32)
    regions = Regions(centroids=centroids, reference=np.empty(0, np.int64), under=under, over=over)
    regions.reference = regions.assign(reference)
    regions.members = {name: regions.assign(x) for name, x in sets.items()}
    return regions


def _region_reason(regions: Regions, name: str, region: np.ndarray) -> list[str]:
    share, ref_share = regions.shares(regions.members[name]), regions.shares(regions.reference)
    return [f"region r{r}: {share[r]:.1%} of {name} vs {ref_share[r]:.1%} of the reference" for r in region]


@register
class Overrepresented(Diagnostic):
    name = "overrepresented"
    description = "a sample in a region the set holds far more of than the reference"

    def run(self, c: ComparisonContext) -> list[DiagnosticResult]:
        r = DiagnosticResult.empty(self, len(c.items_))
        for name in c.sets_:
            idx, region = c.index_[name], c.regions_.members[name]
            ratio = c.regions_.ratios(name)[region]
            r.score[idx] = np.clip(1.0 - 1.0 / np.maximum(ratio, 1e-12), 0.0, 1.0)
            hit = ratio > c.over
            r.flag_items(idx[hit], _region_reason(c.regions_, name, region[hit]))
        return [r.finish(ratio=c.over)]


@register
class Underrepresented(Diagnostic):
    name = "underrepresented"
    description = "a reference item in a region the set holds far less of than the reference"

    def run(self, c: ComparisonContext) -> list[DiagnosticResult]:
        ref_idx, region = c.index_[c.reference], c.regions_.reference
        out = []
        for name in c.sets_:
            r = DiagnosticResult.empty(self, len(c.items_), of_set=name)
            ratio = c.regions_.ratios(name)[region]
            r.score[ref_idx] = np.clip(1.0 - ratio, 0.0, 1.0)
            hit = ratio < c.under
            r.flag_items(ref_idx[hit], _region_reason(c.regions_, name, region[hit]))
            out.append(r.finish(ratio=c.under, **c.regions_.status(name)))
        return out
