"""The comparison of the chosen sets with a reference, shared by the Compare and Explore pages."""
from __future__ import annotations

import pandas as pd

from explorer.compare.comparison import cached_comparison
from explorer.diagnostics import registered
from pages._common import PageState, plural, with_progress
from pages._sidebar import remembered_selectbox


def reference_choice(state: PageState) -> str | None:
    """The reference set (sidebar), or None when fewer than two sets are chosen."""
    if len(state.chosen) < 2:
        return None
    return remembered_selectbox("Reference set", state.chosen, name="ref", key="compare_reference",
                                default="real" if "real" in state.chosen else state.chosen[0],
                                help="Real data to compare the other chosen sets (model samples) with")


def comparison_of(state: PageState, reference: str) -> tuple[dict, pd.DataFrame]:
    """Summary and per-item diagnostics of the chosen sets against ``reference`` (disk-cached)
    under the sidebar's kernel (centred: on the reference's mean); the table's rows follow
    ``state.items[state.mask]``."""
    def compute(job):  # the chosen rows are copied only when the comparison is computed
        x, items = state.result.embeddings[state.mask], state.items[state.mask]
        return cached_comparison(x, items, reference=reference, progress=job.report, kernel=state.kernel)

    # the registered diagnostics are part of the key, as they are of cached_comparison's: a plugin
    # loaded later in this server process is not hidden by a result computed without it
    key = ("compare", *state.key, reference, tuple(sorted(registered())))
    return with_progress(key, compute, label=f"Comparing {plural(len(state.chosen) - 1, 'set')} with {reference}")
