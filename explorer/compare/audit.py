"""One dataset on its own, with no reference: exact duplicates (same content), near-duplicate
groups, outliers and rarity, through the registered diagnostics that need no reference. The
first question FiftyOne and cleanlab users ask of a dataset."""
from __future__ import annotations

from collections.abc import Callable
from typing import cast

import numpy as np
import pandas as pd

from explorer.compare.results import SUMMARY_AND_TABLE
from explorer.diagnostics.base import ComparisonContext
from explorer.diagnostics.catalog import registered, run_diagnostics
from explorer.diagnostics.duplicates import DEFAULT_ALPHA, content_keys, exact_duplicates, near_duplicates
from explorer.diagnostics.table import diagnostic_table
from explorer.metrics.kernels import span_reduce
from explorer.neighbors.graph import SetGraphs, SetNeighbors
from explorer.store.cache import cached, hash_key

STAGES = ("reducing dimensions", "exact duplicates", "near duplicates", "diagnostics")


class Audit:
    """Audit one dataset: ``fit(x, items)`` with embeddings and an items table (``id``, and a
    content ``digest`` where known; without digests, identical vectors count as exact copies).
    The dataset is one pool: duplicates are found across its sets too.

    >>> x = np.vstack([np.eye(6), np.eye(6)[:1], np.eye(6)[:1] + 1e-4])
    >>> items = pd.DataFrame({"id": [f"i{j}" for j in range(8)]})
    >>> a = Audit(k=2).fit(x, items)
    >>> a.summary()["exact_duplicates"]["items"], a.summary()["near_duplicates"]["groups"]
    (1, 1)
    """

    def __init__(self, *, k: int = 5, alpha: float = DEFAULT_ALPHA, near_threshold: float | None = None,
                 name: str = "all items", neighbors: str = "auto") -> None:
        self.k = k
        self.neighbors = neighbors
        self.alpha = alpha
        self.near_threshold = near_threshold
        self.name = name

    def fit(self, x: np.ndarray, items: pd.DataFrame, *,
            progress: Callable[[int, int, str], None] | None = None) -> Audit:
        report = progress or (lambda done, total, stage: None)
        items = items.reset_index(drop=True)
        if len(items) != len(x):
            raise ValueError(f"{len(items)} items for {len(x)} embeddings")
        if len(items) < 2:
            raise ValueError("an audit needs at least 2 items")
        report(0, len(STAGES), STAGES[0])
        self.items_ = items
        self.embeddings_ = span_reduce(x)  # same cosines, fewer dimensions
        self.index_ = {self.name: np.arange(len(items))}
        self.k = min(self.k, len(items) - 1)
        self.graphs_ = SetGraphs(self.embeddings_, self.index_, k=self.k, method=self.neighbors)
        report(1, len(STAGES), STAGES[1])
        self.exact_ = exact_duplicates(content_keys(items, self.embeddings_))
        report(2, len(STAGES), STAGES[2])
        self.near_ = {self.name: near_duplicates(self.embeddings_, alpha=self.alpha, threshold=self.near_threshold,
                                                 neighbors=self.graphs_[self.name])}
        report(3, len(STAGES), STAGES[3])
        # only the diagnostics that need no reference run: they read what an audit has
        self.diagnostics_ = run_diagnostics(cast(ComparisonContext, self), reference=False)
        report(len(STAGES), len(STAGES), "done")
        return self

    def neighbors_of(self, name: str) -> SetNeighbors:
        """The k-NN graph of the dataset (k = ``k``), made once for every diagnostic."""
        return self.graphs_[name]

    def groups(self, kind: str, *, limit: int = 50) -> list[list[str]]:
        """Item ids of the largest ``exact`` or ``near`` duplicate groups (largest first)."""
        ids = self.items_["id"].astype(str).to_numpy()
        if kind == "exact":  # a group is named by its first copy
            rows = np.arange(len(ids))
            in_group = (self.exact_ >= 0) | np.isin(rows, self.exact_)
            label = np.where(in_group, np.where(self.exact_ >= 0, self.exact_, rows), -1)
        else:
            label = self.near_[self.name].group
        members = pd.Series(np.arange(len(ids)))[label >= 0].groupby(label[label >= 0]).agg(list)
        ordered = sorted(members.tolist(), key=lambda rows: (-len(rows), rows[0]))
        return [ids[rows].tolist() for rows in ordered[:limit]]

    def summary(self) -> dict:
        """Plain JSON: counts, thresholds, the largest groups and each diagnostic's summary."""
        near = self.near_[self.name]
        exact_groups = self.groups("exact", limit=10**9)
        flagged = {name: d.summary for name, d in self.diagnostics_.items()}
        return {
            "n": int(len(self.items_)), "k": self.k,
            "exact_duplicates": {"items": int((self.exact_ >= 0).sum()), "groups": len(exact_groups),
                                 "largest": exact_groups[:20]},
            "near_duplicates": {"items": int(near.flagged.sum()), "groups": near.n_groups,
                                "threshold": near.threshold, "typical_distance": near.typical,
                                # the multiple of typical_distance that set the threshold; None when fixed
                                "alpha": None if self.near_threshold is not None else self.alpha,
                                "method": near.method, "largest": self.groups("near", limit=20)},
            "neighbors": self.graphs_.reports(),
            "outliers": flagged.get("outlier", {}).get("flagged", 0),
            "rare": flagged.get("rarity", {}).get("flagged", 0),
            "diagnostics": flagged,
        }


def cached_audit(x: np.ndarray, items: pd.DataFrame, *, cache_dir=None,
                 progress: Callable[[int, int, str], None] | None = None, **params) -> tuple[dict, pd.DataFrame]:
    """:meth:`Audit.summary` and the per-item table (id, a score per diagnostic, ``flags``,
    ``reasons``), stored on disk by a hash of the embeddings, the items and the parameters."""
    x = np.ascontiguousarray(x)
    cols = [c for c in ("id", "digest") if c in items]
    key = hash_key("audit", 3, sorted(params.items()), sorted(registered()), x,
                   items[cols].astype(str).to_csv(index=False))

    def compute() -> tuple[dict, pd.DataFrame]:
        a = Audit(**params).fit(x, items, progress=progress)
        return a.summary(), diagnostic_table(a.diagnostics_, a.items_["id"])

    return cached("audit", key, compute, codec=SUMMARY_AND_TABLE, root=cache_dir)
