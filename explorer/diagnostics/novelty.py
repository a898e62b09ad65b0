"""Diagnostics from KEN's novel modes (:mod:`explorer.metrics.ken`): samples in modes a set has
more of than the reference, and reference items in modes it has less of."""
from __future__ import annotations

import numpy as np

from explorer.diagnostics.base import ComparisonContext, Diagnostic, DiagnosticResult, register


def _mark_modes(r: DiagnosticResult, rows: np.ndarray, x: np.ndarray, c: ComparisonContext, name: str, *,
                of_x: bool, what: str) -> None:
    """Score every row by its loading on the side's strongest modes; flag each mode's top items."""
    modes = c.novel_[name]
    r.score[rows] = modes.item_scores(x, of_x=of_x, n_modes=c.n_modes)
    for mode in modes.modes(x, of_x=of_x, n_modes=c.n_modes, top_items=c.top_items, min_weight=c.mode_floor):
        r.flag_items(rows[mode["top"]], f"mode {mode['mode'] + 1} {what} (weight {mode['weight']:.3f})")


@register
class Novel(Diagnostic):
    name = "novel"
    description = "a sample loading on a mode the set has more of than the reference (KEN)"

    def run(self, c: ComparisonContext) -> list[DiagnosticResult]:
        r = DiagnosticResult.empty(self, len(c.items_))
        for name in c.sets_:
            idx = c.index_[name]
            _mark_modes(r, idx, c.embeddings_[idx], c, name, of_x=True,
                        what=f"that {name} has more of than the reference")
        return [r.finish(floor=c.mode_floor)]


@register
class Missing(Diagnostic):
    name = "missing"
    description = "a reference item loading on a mode the reference has more of than the set (KEN)"

    def run(self, c: ComparisonContext) -> list[DiagnosticResult]:
        ref_idx = c.index_[c.reference]
        x_ref = c.embeddings_[ref_idx]
        out = []
        for name in c.sets_:
            r = DiagnosticResult.empty(self, len(c.items_), of_set=name)
            _mark_modes(r, ref_idx, x_ref, c, name, of_x=False, what=f"that the reference has more of than {name}")
            out.append(r.finish(floor=c.mode_floor))
        return out
