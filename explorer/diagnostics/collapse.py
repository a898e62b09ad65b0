"""Class collapse: per sample set and class (labels, or reference regions when a set has no
labels), its share and equal-n diversity against the reference's, and the diagnostic that flags
the samples of collapsed classes."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from explorer.diagnostics.base import ComparisonContext, Diagnostic, DiagnosticResult, register
from explorer.diagnostics.regions import UNDER
from explorer.metrics.equal_n import bootstrap_scores


def class_table(reference: np.ndarray, reference_classes, sets: dict[str, tuple[np.ndarray, Sequence | np.ndarray]], *,
                share_floor: float = UNDER, vs_floor: float = UNDER, n_boot: int = 8, seed: int = 0) -> pd.DataFrame:
    """Per set and class: its share and equal-n Vendi score (q = 1) against the reference's, and
    whether it collapsed (share or score below ``share_floor`` / ``vs_floor`` × the reference's).

    Classes are labels, or regions when a set has no labels. The score of a class is compared at
    n = the smaller of its two counts, averaged over ``n_boot`` random subsets.
    """
    ref_classes = pd.Series(list(reference_classes), dtype="object").astype(str).to_numpy()
    rows = []
    for name, (x, set_classes) in sets.items():
        classes = pd.Series(list(set_classes), dtype="object").astype(str).to_numpy()
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
            row["reasons"] = reasons
            row["reason"] = "; ".join(reasons)  # for tables shown to people; code reads "reasons"
            rows.append(row)
    return pd.DataFrame(rows)


@register
class Collapsed(Diagnostic):
    name = "collapsed"
    description = "a sample of a class whose share or diversity fell far below the reference's"

    def run(self, c: ComparisonContext) -> list[DiagnosticResult]:
        r = DiagnosticResult.empty(self, len(c.items_))
        for name in c.sets_:
            idx = c.index_[name]
            table = c.classes_[c.classes_["set"] == name].set_index("class")
            classes = c.classes_of(name)
            low = table[["share_ratio", "vs_ratio"]].min(axis=1, skipna=True)
            r.score[idx] = np.clip(1.0 - low.reindex(classes).fillna(1.0).to_numpy(), 0.0, 1.0)
            bad = table["collapsed"].reindex(classes).fillna(False).to_numpy(dtype=bool)
            for i, k in zip(idx[bad], classes[bad]):
                for why in table.loc[k, "reasons"]:
                    r.flag_items([i], f"class {k} collapsed in {name}: {why}")
        return [r.finish(floor=c.collapse_floor, basis=c.class_basis_)]
