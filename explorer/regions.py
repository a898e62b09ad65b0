"""Where sample sets differ from the reference: regions (clusters of the reference) that a set
under- or over-represents, and classes whose share or diversity collapsed.

Regions are k-means clusters of the unit-normalised reference embeddings; a sample belongs to
the region of its nearest centroid. A region is under-represented by a set when the set's share
of it is below ``under`` × the reference's share, over-represented above ``over`` ×.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from explorer.prdc import unit_rows

UNDER, OVER = 0.5, 2.0


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
        """Region of each row: its most similar centroid."""
        return np.argmax(unit_rows(x) @ self.centroids.T, axis=1)

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

    ref = unit_rows(reference).astype(np.float64)
    k = min(n_clusters or default_clusters(len(ref)), len(ref))
    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(ref)
    # number regions by first appearance so names do not depend on k-means' internal order
    _, first = np.unique(km.labels_, return_index=True)
    order = km.labels_[np.sort(first)]
    centroids = unit_rows(km.cluster_centers_[order])
    regions = Regions(centroids=centroids, reference=np.empty(0, np.int64), under=under, over=over)
    regions.reference = regions.assign(ref)
    regions.members = {name: regions.assign(x) for name, x in sets.items()}
    return regions


def class_table(reference: np.ndarray, reference_classes, sets: dict[str, tuple[np.ndarray, object]], *,
                share_floor: float = UNDER, vs_floor: float = UNDER, n_boot: int = 8, seed: int = 0) -> pd.DataFrame:
    """Per set and class: its share and equal-n Vendi score (q = 1) against the reference's, and
    whether it collapsed (share or score below ``share_floor`` / ``vs_floor`` × the reference's).

    Classes are labels, or regions when a set has no labels. The score of a class is compared at
    n = the smaller of its two counts, averaged over ``n_boot`` random subsets.
    """
    from explorer.analysis import bootstrap_scores

    ref_classes = pd.Series(list(reference_classes), dtype="object").astype(str).to_numpy()
    rows = []
    for name, (x, classes) in sets.items():
        classes = pd.Series(list(classes), dtype="object").astype(str).to_numpy()
        for c in sorted(set(ref_classes)):
            in_ref, in_set = np.flatnonzero(ref_classes == c), np.flatnonzero(classes == c)
            share_ref, share = len(in_ref) / len(ref_classes), len(in_set) / max(1, len(classes))
            row = {"set": name, "class": c, "n_reference": len(in_ref), "n": len(in_set),
                   "reference_share": share_ref, "share": share, "share_ratio": share / share_ref,
                   "vs_reference": np.nan, "vs": np.nan, "vs_ratio": np.nan}
            m = min(len(in_ref), len(in_set))
            if m >= 3:
                both = np.vstack([reference[in_ref], x[in_set]])
                t = bootstrap_scores(both, ["r"] * len(in_ref) + ["s"] * len(in_set), q=[1.0], n=m,
                                     n_boot=n_boot, seed=seed).set_index("group")["VS_1"]
                row.update(vs_reference=float(t["r"]), vs=float(t["s"]), vs_ratio=float(t["s"] / t["r"]))
            reasons = []
            if row["share_ratio"] < share_floor:
                reasons.append(f"share {share:.1%} vs {share_ref:.1%} in the reference")
            if row["vs_ratio"] < vs_floor:
                reasons.append(f"VS₁ {row['vs']:.2f} vs {row['vs_reference']:.2f} at n = {m}")
            row["collapsed"] = bool(reasons)
            row["reason"] = "; ".join(reasons)
            rows.append(row)
    return pd.DataFrame(rows)
