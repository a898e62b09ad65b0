"""Model samples against a reference, in one embedding space: equal-n Vendi scores, spectra,
precision/recall/density/coverage, regions and classes, novel modes both ways, duplicates and
memorisation, and the registered per-item diagnostics run on them (explorer.diagnostics).

The kernel (centred cosine by default, its centre the reference's mean; plain cosine; RBF with
the reference's median bandwidth) applies to the numbers listed in :data:`KERNEL_APPLIES_TO`;
the neighbour-based ones keep the plain cosine geometry of the embeddings.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from explorer.compare.backend import LOCAL, Backend, rows_graph, rows_prdc
from explorer.compare.per_set import cached_per_set, per_set_results
from explorer.compare.results import SUMMARY_AND_TABLE
from explorer.data.arrays import take_rows
from explorer.diagnostics.catalog import registered, run_diagnostics
from explorer.diagnostics.collapse import class_table
from explorer.diagnostics.duplicates import DEFAULT_ALPHA, content_keys
from explorer.diagnostics.memorization import Memorization
from explorer.diagnostics.regions import OVER, UNDER, fit_regions
from explorer.diagnostics.table import diagnostic_table
from explorer.metrics.equal_n import score_columns
from explorer.metrics.ken import novel_modes
from explorer.metrics.kernel_rows import KERNELS, KernelInfo, KernelRowMap, parse_kernel, set_kernel_map
from explorer.metrics.kernels import span_reduce
from explorer.metrics.spectrum import DEFAULT_ORDERS, order_label
from explorer.neighbors.graph import SetGraphs, SetNeighbors
from explorer.store.cache import cached, hash_key

KERNEL_APPLIES_TO = ("Vendi scores at equal n and their ratios", "spectra")
# per-class scores and novel modes stay here too: the collapse and novelty diagnostics built on
# them are calibrated on (and load) the embeddings' own geometry
COSINE_GEOMETRY = ("precision, recall, density, coverage", "regions", "per-class VS (collapse)",
                   "novel and missing modes (KEN)", "duplicates", "memorisation", "per-item diagnostics")
STAGES = ("reducing dimensions", "scores at equal n", "precision, recall, density, coverage", "regions and classes",
          "novel modes", "duplicates", "diagnostics")


def metric_name(q: float) -> str:
    """``vs1_ratio``-style name of an order's score ratio, as used by ``--fail-if``.

    >>> metric_name(1.0), metric_name(0.5), metric_name(float("inf"))
    ('vs1_ratio', 'vs0.5_ratio', 'vsinf_ratio')
    """
    return f"vs{order_label(q)}_ratio"


class Comparison:
    """Compare sample sets with a reference set, all rows of one embedding matrix.

    ``fit(x, items)`` takes embeddings and an items table (``id``, ``set``, and optionally
    ``label`` and a content ``digest``), one row per embedding. Learned values end in ``_``.

    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(120, 8))
    >>> items = pd.DataFrame({"id": [f"i{j}" for j in range(120)], "set": ["ref"] * 60 + ["gen"] * 60})
    >>> c = Comparison(reference="ref", n_boot=5).fit(x, items)
    >>> s = c.summary()["sets"]["gen"]
    >>> 0.8 < s["vs1_ratio"] < 1.2, 0.8 < s["coverage"] <= 1.0   # two samples of one distribution
    (True, True)
    """

    def __init__(self, *, reference: str, q: Sequence[float] = DEFAULT_ORDERS, k: int = 5,
                 n_clusters: int | None = None, under: float = UNDER, over: float = OVER,
                 collapse_floor: float = UNDER, alpha: float = DEFAULT_ALPHA, near_threshold: float | None = None,
                 copy_threshold: float | None = None, eta: float = 1.0, n_modes: int = 5, top_items: int = 12,
                 mode_floor: float = 0.02, n_boot: int = 20, diagnostics: Sequence[str] | None = None,
                 neighbors: str = "auto", kernel: str = "centred", seed: int = 0) -> None:
        self.reference = reference
        self.kernel = kernel
        self.q = tuple(q)
        self.k = k
        self.n_clusters = n_clusters
        self.under = under
        self.over = over
        self.collapse_floor = collapse_floor
        self.alpha = alpha
        self.near_threshold = near_threshold
        self.copy_threshold = copy_threshold
        self.eta = eta
        self.n_modes = n_modes
        self.top_items = top_items
        self.mode_floor = mode_floor
        self.n_boot = n_boot
        self.diagnostics = diagnostics
        self.neighbors = neighbors
        self.seed = seed

    def fit(self, x: np.ndarray, items: pd.DataFrame, *, progress: Callable[[int, int, str], None] | None = None,
            per_set_cache: str | os.PathLike | bool | None = None, backend: Backend = LOCAL) -> Comparison:
        """Compare; ``progress(stage, stages, name)`` is called as each stage starts (and may
        raise to stop the work). With ``per_set_cache`` (a cache folder, or True for the
        default one) the results that do not depend on the reference are kept on disk.
        ``backend`` runs the independent pieces (each set's k-NN graph, equal-n subsets and
        spectrum, each sample set's PRDC against the reference's index): here by default."""
        report = progress or (lambda done, total, stage: None)
        report(0, len(STAGES), STAGES[0])
        kernel = parse_kernel(self.kernel, choices=KERNELS)
        items = items.reset_index(drop=True)
        if len(items) != len(x):
            raise ValueError(f"{len(items)} items for {len(x)} embeddings")
        sets = items["set"].astype(str).to_numpy()
        if self.reference not in set(sets):
            raise ValueError(f"no set {self.reference!r}; the sets are {sorted(set(sets))}")
        # the kernel's rows, centred on (or with the bandwidth of) the reference, so every set is
        # measured in the reference's terms; span_reduce keeps their cosines in fewer dimensions
        kx: np.ndarray | KernelRowMap
        if kernel == "cosine":
            self.kernel_info_ = KernelInfo("cosine")
            x = kx = span_reduce(x)  # same cosines, fewer dimensions for the d×d work below
        else:
            # made a subset at a time when scored, never held whole (it would cost the
            # embeddings' size)
            kernel_map = set_kernel_map(x, kernel=kernel, sets=sets, reference=self.reference, seed=self.seed)
            self.kernel_info_ = kernel_map.info
            x, kx = span_reduce(x), kernel_map.reduced()
        self.kernel_rows_ = kx
        self.items_ = items
        self.embeddings_ = x
        self.sets_ = [s for s in dict.fromkeys(sets) if s != self.reference]
        if not self.sets_:
            raise ValueError("nothing to compare: give at least one set besides the reference")
        self.index_ = {s: np.flatnonzero(sets == s) for s in [self.reference, *self.sets_]}
        self.graphs_ = SetGraphs(x, self.index_, k=self.k, method=self.neighbors)
        if backend is not LOCAL:  # every set's graph at once; locally each is made on first use
            names = list(self.index_)
            made = backend.map(rows_graph, [{"rows": self.index_[s]} for s in names],
                               shared={"x": x, "k": self.k, "method": self.neighbors})
            self.graphs_.graphs_.update(zip(names, made))
        ref = take_rows(x, self.index_[self.reference])

        report(1, len(STAGES), STAGES[1])
        keys = content_keys(items, x)
        params: dict[str, Any] = {"q": list(self.q), "n_boot": self.n_boot, "seed": self.seed, "alpha": self.alpha,
                                  "near_threshold": self.near_threshold, "keys": keys, "backend": backend,
                                  "kernel_x": None if kx is x else kx}
        # the per-set part does not depend on the reference: kept apart, choosing another
        # reference reuses it
        if per_set_cache is None or per_set_cache is False:
            per_set = per_set_results(x, sets, graphs=self.graphs_, **params)
        else:
            root = None if per_set_cache is True else per_set_cache
            per_set = cached_per_set(x, sets, root=root, graphs=self.graphs_, **params)
        self.equal_n_, self.scores_ = per_set.equal_n, per_set.scores
        self.exact_, self.near_ = per_set.exact, per_set.near
        self.spectra_ = {s: per_set.spectra[s] for s in self.index_}

        report(2, len(STAGES), STAGES[2])
        # the reference's index is made once and shipped once; each sample set is searched in it apart
        found = backend.map(rows_prdc, [{"rows": self.index_[s], "fake_neighbors": self.graphs_[s]}
                                        for s in self.sets_],
                            shared={"x": x, "reference": self.index_[self.reference], "k": self.k,
                                    "method": self.neighbors, "real_neighbors": self.graphs_[self.reference]})
        self.prdc_ = dict(zip(self.sets_, found))
        self.memorization_ = {
            s: Memorization.from_neighbours(p.fake_nearest, p.fake_nearest_sim, p.real_nearest_sim,
                                            alpha=self.alpha, threshold=self.copy_threshold)
            for s, p in self.prdc_.items()}

        report(3, len(STAGES), STAGES[3])
        self.regions_ = fit_regions(ref, {s: take_rows(x, self.index_[s]) for s in self.sets_},
                                    n_clusters=self.n_clusters, seed=self.seed, under=self.under, over=self.over)
        self.class_basis_ = "label" if self._has_labels() else "region"
        ref_classes = self.classes_of(self.reference)
        self.classes_ = class_table(ref, ref_classes,
                                    {s: (take_rows(x, self.index_[s]), self.classes_of(s)) for s in self.sets_},
                                    share_floor=self.collapse_floor, vs_floor=self.collapse_floor, seed=self.seed)

        report(4, len(STAGES), STAGES[4])
        self.novel_ = {s: novel_modes(take_rows(x, self.index_[s]), ref, eta=self.eta) for s in self.sets_}
        report(5, len(STAGES), STAGES[5])

        report(6, len(STAGES), STAGES[6])
        self.diagnostics_ = run_diagnostics(self, None if self.diagnostics is None else list(self.diagnostics))
        report(len(STAGES), len(STAGES), "done")
        return self

    def neighbors_of(self, name: str) -> SetNeighbors:
        """The k-NN graph of set ``name`` (k = ``k``), made once and shared by every consumer."""
        return self.graphs_[name]

    def _has_labels(self) -> bool:
        if "label" not in self.items_:
            return False
        labels = self.items_["label"]
        return all(labels.iloc[i].notna().mean() >= 0.9 for i in self.index_.values())

    def classes_of(self, name: str) -> np.ndarray:
        """Class of every item of set ``name``: its label, or ``rK`` for its reference region."""
        if self.class_basis_ == "label":
            return self.items_["label"].iloc[self.index_[name]].astype(str).to_numpy()
        regions = self.regions_.reference if name == self.reference else self.regions_.members[name]
        return np.array([f"r{r}" for r in regions])

    def item_regions(self) -> np.ndarray:
        """Region name of every item: a reference item's cluster, a sample's nearest one."""
        out = np.empty(len(self.items_), dtype=object)
        out[self.index_[self.reference]] = [f"r{r}" for r in self.regions_.reference]
        for name in self.sets_:
            out[self.index_[name]] = [f"r{r}" for r in self.regions_.members[name]]
        return out

    def ids(self, name: str, positions) -> list[str]:
        """Item ids of positions within set ``name``."""
        return self.items_["id"].iloc[self.index_[name][np.asarray(positions, dtype=np.int64)]].astype(str).tolist()

    def set_metrics(self, name: str) -> dict:
        """The numbers of one sample set (the keys ``--fail-if`` can test)."""
        scores = self.scores_.set_index("group")
        cols = score_columns(self.q)
        p, mem, near = self.prdc_[name], self.memorization_[name], self.near_[name]
        status = self.regions_.status(name)
        under = np.isin(self.regions_.reference, [int(r[1:]) for r in status["underrepresented"]])
        classes = self.classes_[self.classes_["set"] == name]
        n = len(self.index_[name])
        out = {"n": n, **p.summary(),
               **{metric_name(q): float(scores.loc[name, c] / scores.loc[self.reference, c])
                  for q, c in zip(self.q, cols)},
               "memorized_share": float(mem.flagged.mean()), "copy_threshold": mem.threshold,
               "exact_duplicate_share": float((self.exact_[self.index_[name]] >= 0).mean()),
               "near_duplicate_share": float(near.flagged.mean()), "near_duplicate_groups": near.n_groups,
               "near_threshold": near.threshold,
               "underrepresented_share": float(under.mean()), "collapsed_classes": int(classes["collapsed"].sum()),
               # with η = 1 the positive and negative eigenvalues have equal sums (traces are 1),
               # so one mass is reported; the entropies of the two sides differ
               "novel_mass": self.novel_[name].novel_mass(of_x=True),
               "ken": self.novel_[name].ken(of_x=True), "ken_missing": self.novel_[name].ken(of_x=False)}
        return out

    def summary(self) -> dict:
        """Everything as plain JSON types; the keys are documented in the README."""
        scores = self.scores_.set_index("group")
        cols = score_columns(self.q)

        def vs(name: str) -> dict:
            return {"vs": {order_label(q): float(scores.loc[name, c]) for q, c in zip(self.q, cols)},
                    "vs_ci": {order_label(q): [float(scores.loc[name, c + "_lo"]), float(scores.loc[name, c + "_hi"])]
                              for q, c in zip(self.q, cols)},
                    "spectrum": [float(v) for v in self.spectra_[name][:50]]}

        ref_index = self.index_[self.reference]
        sets = {}
        for name in self.sets_:
            classes = self.classes_[self.classes_["set"] == name]
            modes = self.novel_[name]
            def top_modes(x: np.ndarray, of_x: bool, modes=modes) -> list[dict]:
                return modes.modes(x, of_x=of_x, n_modes=self.n_modes, top_items=self.top_items,
                                   min_weight=self.mode_floor)

            sets[name] = {
                **self.set_metrics(name), **vs(name), **self.regions_.status(name),
                "collapsed": classes.loc[classes["collapsed"], ["class", "reason"]].to_dict("records"),
                "novel_modes": [{**m, "top": self.ids(name, m["top"])}
                                for m in top_modes(self._x_of(name), True)],
                "missing_modes": [{**m, "top": self.ids(self.reference, m["top"])}
                                  for m in top_modes(self._x_of(self.reference), False)],
                "prdc_method": self.prdc_[name].method,
                "near_duplicate_method": self.near_[name].method,
            }
        regions = self.regions_.table()
        near_ref = self.near_[self.reference]
        return {
            "reference": self.reference, "n_reference": int(len(ref_index)), "k": self.k,
            "kernel": {**self.kernel_info_.to_dict(), "applies_to": list(KERNEL_APPLIES_TO),
                       "cosine_geometry": list(COSINE_GEOMETRY)},
            "orders": [order_label(q) for q in self.q], "equal_n": self.equal_n_, "class_basis": self.class_basis_,
            "reference_scores": vs(self.reference),
            "reference_duplicates": {"exact_duplicate_share": float((self.exact_[ref_index] >= 0).mean()),
                                     "near_duplicate_share": float(near_ref.flagged.mean()),
                                     "near_duplicate_groups": near_ref.n_groups, "near_threshold": near_ref.threshold},
            "sets": sets,
            "regions": regions.to_dict("records"),
            "classes": self.classes_.replace({np.nan: None}).to_dict("records"),
            "diagnostics": {name: d.summary for name, d in self.diagnostics_.items()},
            "neighbors": self.graphs_.reports(),
        }

    def _x_of(self, name: str) -> np.ndarray:
        return take_rows(self.embeddings_, self.index_[name])


def cached_comparison(x: np.ndarray, items: pd.DataFrame, *, reference: str, cache_dir=None,
                      progress: Callable[[int, int, str], None] | None = None, backend: Backend = LOCAL,
                      **params) -> tuple[dict, pd.DataFrame]:
    """:meth:`Comparison.summary` and the per-item table: id, region, a score per diagnostic,
    ``flags`` and ``reasons`` (:func:`explorer.diagnostics.diagnostic_table`), stored on disk by a
    hash of the embeddings, the items' ids, sets and labels, the parameters and the registered
    diagnostics, so that reopening a comparison is instant (whatever ``backend`` computed it)."""
    x = np.ascontiguousarray(x)
    cols = [c for c in ("id", "set", "label", "digest") if c in items]
    key = hash_key("compare", 4, reference, sorted(params.items()), sorted(registered()), x,
                   items[cols].astype(str).to_csv(index=False))

    def compute() -> tuple[dict, pd.DataFrame]:
        c = Comparison(reference=reference, **params).fit(x, items, progress=progress,
                                                          per_set_cache=cache_dir or True, backend=backend)
        table = diagnostic_table(c.diagnostics_, c.items_["id"])
        table.insert(1, "region", c.item_regions())
        return c.summary(), table

    return cached("compare", key, compute, codec=SUMMARY_AND_TABLE, root=cache_dir)
