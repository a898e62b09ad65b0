"""The comparison of the chosen sets with a reference, shared by the Compare and Explore pages."""
from __future__ import annotations

import numpy as np
import pandas as pd

from explorer.compare.comparison import cached_comparison
from explorer.diagnostics import flag_masks, reasons_of, registered
from pages._common import PageState, memoized, plural, with_progress
from pages._sidebar import remembered_selectbox


def reference_choice(state: PageState) -> str | None:
    """The reference set (sidebar), or None when fewer than two sets are chosen."""
    if len(state.chosen) < 2:
        return None
    return remembered_selectbox("Reference set", state.chosen, name="ref", key="compare_reference",
                                default="real" if "real" in state.chosen else state.chosen[0],
                                help="Real data to compare the other chosen sets (model samples) with")


def comparison_of(state: PageState, reference: str, *, key: tuple | None = None) -> tuple[dict, pd.DataFrame]:
    """Summary and per-item diagnostics of the chosen sets against ``reference`` (disk-cached)
    under the sidebar's kernel (centred: on the reference's mean); the table's rows follow
    ``state.items[state.mask]``. ``key``: :func:`comparison_key`, when the caller keeps it to
    memoise what it derives from the result under the very key the result was made under."""
    def compute(job):  # the chosen rows are copied only when the comparison is computed
        x, items = state.result.embeddings[state.mask], state.items[state.mask]
        return cached_comparison(x, items, reference=reference, progress=job.report, kernel=state.kernel)

    return with_progress(key or comparison_key(state, reference), compute,
                         label=f"Comparing {plural(len(state.chosen) - 1, 'set')} with {reference}")


def comparison_key(state: PageState, reference: str) -> tuple:
    # the registered diagnostics are part of the key, as they are of cached_comparison's: a plugin
    # loaded later in this server process is not hidden by a result computed without it
    return ("compare", *state.key, reference, tuple(sorted(registered())))


# Per-rerun passes over every row of the comparison's table, kept with it instead (they were a
# tenth of the Compare page's CPU under load, benchmarks/load.py)
def masks_of(key: tuple, table: pd.DataFrame) -> dict:
    """:func:`flag_masks` of the comparison's table (``key``: its :func:`comparison_key`), once."""
    return memoized(("masks", *key), lambda: flag_masks(table))


def reasons_by_item(key: tuple, table: pd.DataFrame, name: str) -> dict[str, list[str]]:
    """:func:`reasons_of` one diagnostic in the comparison's table, once per comparison."""
    return memoized(("reasons", *key, name), lambda: reasons_of(table, name))


def rows_of(state: PageState, ids) -> pd.DataFrame:
    """The chosen sets' items (rows of ``state.items[state.mask]``, renumbered) with these ids, in
    their order; ids not among them are left out."""
    index, rows = memoized(("id-index", *state.key),  # the ids' hash table, once; no copy of the items
                           lambda: (pd.Index(state.items["id"][state.mask]), np.flatnonzero(state.mask)))
    positions = index.get_indexer(list(ids))
    return state.items.iloc[rows[positions[positions >= 0]]].reset_index(drop=True)
