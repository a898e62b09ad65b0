"""Per-item diagnostics, one contract for all (as cleanlab's Datalab issue types): a score in
[0, 1] per item (NaN where the diagnostic does not apply), a flag with a reason, and a summary.

The app lists them generically (colour, filter, flag), the flag store records their reasons, and
exports carry their scores. Diagnostics about how well a sample set covers the reference score
the reference items, one column per set: ``uncovered[gmm]``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

DESCRIPTIONS = {
    "exact_duplicate": "identical content to an earlier item of the same set",
    "near_duplicate": "nearly identical to another item of the same set (cosine at or above the threshold)",
    "rarity": "k-NN radius within its own set, as a percentile (1 = most isolated)",
    "memorized": "a sample that is (nearly) a copy of a reference item",
    "outside_reference": "a sample outside every reference item's k-NN ball (what precision counts)",
    "overrepresented": "a sample in a region the set holds far more of than the reference",
    "collapsed": "a sample of a class whose share or diversity fell far below the reference's",
    "novel": "a sample loading on a mode the set has more of than the reference (KEN)",
    "uncovered": "a reference item with no sample inside its k-NN ball (what coverage counts)",
    "underrepresented": "a reference item in a region the set holds far less of than the reference",
    "missing": "a reference item loading on a mode the reference has more of than the set (KEN)",
}


@dataclass
class Diagnostic:
    """One diagnostic over all items of a comparison."""

    name: str
    score: np.ndarray  # [0, 1], NaN where it does not apply
    flag: np.ndarray  # bool
    reason: np.ndarray  # object array, "" where not flagged
    summary: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.name.split("[")[0]

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self.kind]


def _new(name: str, n: int) -> Diagnostic:
    return Diagnostic(name, np.full(n, np.nan), np.zeros(n, dtype=bool), np.full(n, "", dtype=object))


def _finish(d: Diagnostic, **summary) -> Diagnostic:
    applies = ~np.isnan(d.score)
    d.summary = {"description": d.description, "items": int(applies.sum()), "flagged": int(d.flag.sum()),
                 "flagged_share": float(d.flag[applies].mean()) if applies.any() else 0.0, **summary}
    return d


def build_diagnostics(c) -> dict[str, Diagnostic]:
    """All diagnostics of a fitted :class:`explorer.compare.Comparison`, by name."""
    n = len(c.items_)
    ids = c.items_["id"].astype(str).to_numpy()
    out: dict[str, Diagnostic] = {}

    exact, near, rare = _new("exact_duplicate", n), _new("near_duplicate", n), _new("rarity", n)
    for name, idx in c.index_.items():
        exact.score[idx] = (c.exact_[idx] >= 0).astype(float)
        nd = c.near_[name]
        near.score[idx] = np.clip(1.0 - (1.0 - nd.similarity) / max(nd.typical, 1e-12), 0.0, 1.0)
        sizes = np.bincount(nd.group[nd.group >= 0], minlength=nd.n_groups)
        for j in np.flatnonzero(nd.flagged):
            near.flag[idx[j]] = True
            near.reason[idx[j]] = (f"near duplicate of {ids[idx[nd.nearest[j]]]} (cosine {nd.similarity[j]:.4f}; "
                                   f"group {name}/g{nd.group[j]} of {sizes[nd.group[j]]})")
        if len(idx) > c.k:
            from explorer.neighbors import knn
            from explorer.prdc import unit_rows

            radius = knn(unit_rows(c.embeddings_[idx]), k=c.k)[1][:, -1]
            rare.score[idx] = pd.Series(radius).rank(pct=True).to_numpy()
            top = rare.score[idx] > 0.99
            rare.flag[idx[top]] = True
            rare.reason[idx[top]] = f"among the 1% most isolated items of {name} ({c.k}-NN radius)"
    dup = c.exact_ >= 0
    exact.flag[:] = dup
    exact.reason[dup] = [f"exact copy of {ids[j]}" for j in c.exact_[dup]]
    out["exact_duplicate"] = _finish(exact)
    out["near_duplicate"] = _finish(near, thresholds={s: d.threshold for s, d in c.near_.items()})
    out["rarity"] = _finish(rare, k=c.k)

    ref_idx = c.index_[c.reference]
    mem, outside, over = _new("memorized", n), _new("outside_reference", n), _new("overrepresented", n)
    collapsed, novel = _new("collapsed", n), _new("novel", n)
    for name in c.sets_:
        idx, p, m = c.index_[name], c.prdc_[name], c.memorization_[name]
        mem.score[idx] = m.score
        mem.flag[idx] = m.flagged
        mem.reason[idx[m.flagged]] = [f"copy of reference item {ids[ref_idx[j]]} (cosine {s:.4f})"
                                      for j, s in zip(m.nearest[m.flagged], m.similarity[m.flagged])]
        ratio = p.fake_ball_ratio
        outside.score[idx] = np.clip(1.0 - 1.0 / np.maximum(ratio, 1e-12), 0.0, 1.0)
        outside.flag[idx] = ratio > 1.0
        outside.reason[idx[ratio > 1.0]] = f"outside every reference {c.k}-NN ball"

        region = c.regions_.members[name]
        region_ratio = c.regions_.ratios(name)[region]
        ref_share, share = c.regions_.shares(c.regions_.reference), c.regions_.shares(region)
        over.score[idx] = np.clip(1.0 - 1.0 / np.maximum(region_ratio, 1e-12), 0.0, 1.0)
        hit = region_ratio > c.over
        over.flag[idx] = hit
        over.reason[idx[hit]] = [f"region r{r}: {share[r]:.1%} of {name} vs {ref_share[r]:.1%} of the reference"
                                 for r in region[hit]]

        table = c.classes_[c.classes_["set"] == name].set_index("class")
        classes = c._classes(name)
        low = table[["share_ratio", "vs_ratio"]].min(axis=1, skipna=True)
        collapsed.score[idx] = np.clip(1.0 - low.reindex(classes).fillna(1.0).to_numpy(), 0.0, 1.0)
        bad = table["collapsed"].reindex(classes).fillna(False).to_numpy(dtype=bool)
        collapsed.flag[idx] = bad
        collapsed.reason[idx[bad]] = [f"class {k} collapsed in {name}: {table.loc[k, 'reason']}" for k in classes[bad]]

        x_set = c.embeddings_[idx]
        novel.score[idx] = c.novel_[name].item_scores(x_set, of_x=True, n_modes=c.n_modes)
        for mode in c.novel_[name].modes(x_set, of_x=True, n_modes=c.n_modes, top_items=c.top_items,
                                         min_weight=c.mode_floor):
            for j in mode["top"]:
                if not novel.flag[idx[j]]:
                    novel.flag[idx[j]] = True
                    novel.reason[idx[j]] = (f"mode {mode['mode'] + 1} that {name} has more of than the reference "
                                            f"(weight {mode['weight']:.3f})")
    out["memorized"] = _finish(mem, thresholds={s: m.threshold for s, m in c.memorization_.items()})
    out["outside_reference"] = _finish(outside, k=c.k)
    out["overrepresented"] = _finish(over, ratio=c.over)
    out["collapsed"] = _finish(collapsed, floor=c.collapse_floor, basis=c.class_basis_)
    out["novel"] = _finish(novel, floor=c.mode_floor)

    x_ref = c.embeddings_[ref_idx]
    for name in c.sets_:
        p = c.prdc_[name]
        unc = _new(f"uncovered[{name}]", n)
        expected = c.k * len(c.index_[name]) / len(ref_idx)
        unc.score[ref_idx] = np.clip(1.0 - p.real_counts / expected, 0.0, 1.0)
        unc.flag[ref_idx] = ~p.real_covered
        unc.reason[ref_idx[~p.real_covered]] = f"no {name} sample inside its {c.k}-NN ball"
        out[unc.name] = _finish(unc, coverage=p.coverage)

        under = _new(f"underrepresented[{name}]", n)
        ratio = c.regions_.ratios(name)
        region = c.regions_.reference
        share = c.regions_.shares(c.regions_.members[name])
        ref_share = c.regions_.shares(region)
        under.score[ref_idx] = np.clip(1.0 - ratio[region], 0.0, 1.0)
        hit = ratio[region] < c.under
        under.flag[ref_idx] = hit
        under.reason[ref_idx[hit]] = [f"region r{r}: {share[r]:.1%} of {name} vs {ref_share[r]:.1%} of the reference"
                                      for r in region[hit]]
        out[under.name] = _finish(under, ratio=c.under, **c.regions_.status(name))

        miss = _new(f"missing[{name}]", n)
        modes = c.novel_[name]
        miss.score[ref_idx] = modes.item_scores(x_ref, of_x=False, n_modes=c.n_modes)
        for mode in modes.modes(x_ref, of_x=False, n_modes=c.n_modes, top_items=c.top_items, min_weight=c.mode_floor):
            for j in mode["top"]:
                if not miss.flag[ref_idx[j]]:
                    miss.flag[ref_idx[j]] = True
                    miss.reason[ref_idx[j]] = (f"mode {mode['mode'] + 1} that the reference has more of than {name} "
                                               f"(weight {mode['weight']:.3f})")
        out[miss.name] = _finish(miss, floor=c.mode_floor)
    return out


def diagnostic_table(diagnostics: dict[str, Diagnostic], ids) -> pd.DataFrame:
    """One row per item: ``id``, then a score column per diagnostic, then ``flags`` (names of the
    diagnostics that flag the item) and ``reasons`` ("; "-joined)."""
    out = pd.DataFrame({"id": list(ids)})
    for name, d in diagnostics.items():
        out[name] = d.score
    flags = [[] for _ in range(len(out))]
    reasons = [[] for _ in range(len(out))]
    for name, d in diagnostics.items():
        for i in np.flatnonzero(d.flag):
            flags[i].append(name)
            reasons[i].append(f"{name}: {d.reason[i]}")
    out["flags"] = [", ".join(f) for f in flags]
    out["reasons"] = ["; ".join(r) for r in reasons]
    return out
