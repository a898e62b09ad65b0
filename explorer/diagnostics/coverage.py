"""Diagnostics from the k-NN balls of precision/recall/density/coverage
(:mod:`explorer.metrics.prdc`): items isolated within their own set, samples outside every
reference ball, and reference items that no sample reaches."""
from __future__ import annotations

import numpy as np
import pandas as pd

from explorer.diagnostics.base import ComparisonContext, Diagnostic, DiagnosticResult, register

RARE_PERCENTILE = 0.99  # the 1% most isolated items of a set are flagged


@register
class Rarity(Diagnostic):
    name = "rarity"
    description = "k-NN radius within its own set, as a percentile (1 = most isolated)"
    needs_reference = False

    def run(self, c: ComparisonContext) -> list[DiagnosticResult]:
        r = DiagnosticResult.empty(self, len(c.items_))
        for name, idx in c.index_.items():
            if len(idx) <= c.k:
                continue  # too few items for a k-NN radius
            radius = c.neighbors_of(name).radii(c.k)
            r.score[idx] = pd.Series(radius).rank(pct=True).to_numpy()
            top = idx[r.score[idx] > RARE_PERCENTILE]
            r.flag_items(top, f"among the 1% most isolated items of {name} ({c.k}-NN radius)")
        return [r.finish(k=c.k)]


@register
class OutsideReference(Diagnostic):
    name = "outside_reference"
    description = "a sample outside every reference item's k-NN ball (what precision counts)"

    def run(self, c: ComparisonContext) -> list[DiagnosticResult]:
        r = DiagnosticResult.empty(self, len(c.items_))
        for name in c.sets_:
            idx, ratio = c.index_[name], c.prdc_[name].fake_ball_ratio
            r.score[idx] = np.clip(1.0 - 1.0 / np.maximum(ratio, 1e-12), 0.0, 1.0)
            r.flag_items(idx[ratio > 1.0], f"outside every reference {c.k}-NN ball")
        return [r.finish(k=c.k)]


@register
class Uncovered(Diagnostic):
    name = "uncovered"
    description = "a reference item with no sample inside its k-NN ball (what coverage counts)"

    def run(self, c: ComparisonContext) -> list[DiagnosticResult]:
        ref_idx = c.index_[c.reference]
        out = []
        for name in c.sets_:
            p = c.prdc_[name]
            r = DiagnosticResult.empty(self, len(c.items_), of_set=name)
            expected = c.k * len(c.index_[name]) / len(ref_idx)
            r.score[ref_idx] = np.clip(1.0 - p.real_counts / expected, 0.0, 1.0)
            r.flag_items(ref_idx[~p.real_covered], f"no {name} sample inside its {c.k}-NN ball")
            out.append(r.finish(coverage=p.coverage))
        return out
