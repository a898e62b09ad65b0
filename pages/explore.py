"""Explore: every item on the map, coloured by any column; filters, search, and live scores of a
box or lasso selection; hover an item to see it, click it to open it.

The map and what hangs off it (colour, selection, grid, the opened item) are one fragment: a
lasso, a click or a colour change reruns that part only. A rerun does no work that depends on the
item count beyond a few vectorised passes: results are shared under keys built from small things
(the filter mask's hash, the shape's JSON), never from the embeddings.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import streamlit as st

from explorer.diagnostics.table import flag_masks
from explorer.diagnostics.table import score_columns as diagnostic_scores
from explorer.maps.selection import (
    composition,
    contains_mask,
    filter_kinds,
    percentile_mask,
    range_mask,
    search_mask,
    select_points,
)
from explorer.metrics.spectrum import DEFAULT_ORDERS, order_label
from explorer.metrics.subsets import SubsetScorer
from explorer.store.cache import hash_key
from explorer.store.flags import FlagStore
from pages._common import (
    PAGE_SIZE,
    analysis_of,
    bar_chart,
    clusters_of,
    flag_form,
    in_stage,
    item_grid,
    kernel_of,
    memoized,
    memoized_aside,
    page_slice,
    plural,
    prepare,
    with_progress,
)
from pages._diagnostics import comparison_of, reference_choice
from pages._inspect import hover_texts, inspect_map, opened_item, scored_table
from pages._map import MAX_HOVER_TEXTS, colour_of
from pages._sidebar import remembered_selectbox

# Per-item numbers shown on a colour scale: column -> its name in the colour menu and the legend.
SCORE_COLUMNS = {"entropy": "contribution h_i", "crowdedness": "crowdedness", "loo_delta": "leave-one-out ΔVS₁"}
DERIVED_COLUMNS = {"cluster": "cluster (k-means)", "flag": "flag"}
NOT_COLOURS = ("id", "kind", "path", "text", "digest")

st.title("Explore")
state = prepare()
analysis = analysis_of(state)
flags = FlagStore.for_dataset(state.dataset.source)
reasons = flags.reasons()
base = (state.source, state.embedder.cache_key(), tuple(state.chosen))  # every shared result depends on these


table = scored_table(state, analysis)  # shared between reruns: never modified below
# the chosen sets' rows under the sidebar's kernel (plain cosine: the scorer reads the embeddings)
kernel_rows_k = None if state.kernel == "cosine" else kernel_of(state)[0]
flagged = table["id"].isin(reasons).to_numpy() if reasons else np.zeros(len(table), dtype=bool)

# filters apply to the map, the scores and the grid alike
keep = np.ones(len(table), dtype=bool)
query = st.sidebar.text_input("Search", key="explore_search", placeholder="words in texts, ids, metadata")
if query.strip():
    keep &= memoized(("search", *base, query.strip().lower()), lambda: search_mask(table, query))
kinds = memoized(("filter-kinds", *base), lambda: filter_kinds(table, skip=(*NOT_COLOURS, *SCORE_COLUMNS)))
meta = [c for c, kind in kinds.items() if kind == "values"]  # also what the map can be coloured by
with st.sidebar.expander("Filter by metadata", icon=":material/filter_alt:"):
    for column, kind in kinds.items():
        if kind == "values":
            values = memoized(("values", *base, column),
                              lambda column=column: sorted(table[column].dropna().astype(str).unique()))
            picked = st.multiselect(column, values, default=values, key=f"filter:{state.source}:{column}")
            if len(picked) < len(values):  # all picked: no pass over the items, and missing values stay
                keep &= table[column].astype(str).isin(picked).to_numpy()
        elif kind == "range":
            lo, hi = memoized(("bounds", *base, column), lambda column=column: (
                np.nanmin(table[column].to_numpy(np.float64)), np.nanmax(table[column].to_numpy(np.float64))))
            whole = (int(lo), int(hi)) if pd.api.types.is_integer_dtype(table[column]) else (float(lo), float(hi))
            chosen = st.slider(column, *whole, whole, key=f"range:{state.source}:{column}")
            if tuple(chosen) != whole:  # the whole range: no pass over the items, and missing values stay
                keep &= memoized(("range", *base, column, *chosen),
                                 lambda column=column, chosen=chosen: range_mask(table[column], low=chosen[0],
                                                                                 high=chosen[1]))
        else:
            text = st.text_input(column, key=f"contains:{state.source}:{column}", placeholder="contains…")
            if text:
                keep &= memoized(("contains", *base, column, text),
                                 lambda column=column, text=text: contains_mask(table[column], text))
low, high = st.sidebar.slider("Contribution h_i (percentile range)", 0, 100, (0, 100), key="h_range",
                              help="Low: redundant items; high: rare items")
if (low, high) != (0, 100):
    keep &= percentile_mask(table["entropy"].to_numpy(), low=low, high=high)
if st.sidebar.checkbox("Only flagged items", key="only_flagged"):
    keep &= flagged

# diagnostics against a reference set (explorer.compare): scores to colour by, flags to filter by
diagnostics, full = pd.DataFrame(), None
reference = reference_choice(state)
if reference is not None and st.sidebar.toggle("Diagnostics vs the reference", value=len(table) <= 50_000,
                                               key="explore_diagnostics",
                                               help="Computed once per choice of sets and cached on disk"):
    _, full = comparison_of(state, reference)
    diagnostics = full[diagnostic_scores(full)]
    flagged_by = memoized(("diag-flags", *base, reference), lambda: flag_masks(full))
    chosen_diags = st.sidebar.multiselect("Flagged by diagnostic", list(flagged_by), key="explore_diag_filter",
                                          help="Keep the items that any of these diagnostics flags")
    if chosen_diags:
        keep &= np.logical_or.reduce([flagged_by[n] for n in chosen_diags])
rows = np.flatnonzero(keep)  # the filtered items, as positions in ``table``
if not len(rows):
    st.info("No item passes the filters.")
    st.stop()
keep_key = hash_key(keep)
xy_all = state.coords[state.mask]
rank = table["entropy"].to_numpy()


@st.fragment
def map_and_selection() -> None:
    scales = {**SCORE_COLUMNS, **{c: f"diagnostic: {c}" for c in diagnostics.columns}}
    names = {**scales, **DERIVED_COLUMNS}
    options = [*meta, *scales, *DERIVED_COLUMNS]
    left, right = st.columns([3, 1])
    color_by = remembered_selectbox("Colour by", options, name="colour", key="explore_color", where=left,
                                    default="label" if "label" in meta else "set",
                                    format_func=lambda c: names.get(c, c))
    k = None
    derived: dict[str, np.ndarray] = {"flag": np.where(flagged, "flagged", "not flagged"),
                                      **{c: diagnostics[c].to_numpy() for c in diagnostics.columns}}
    if color_by == "cluster":
        k = int(right.number_input("Clusters (k)", min_value=2, max_value=50, value=10, step=1, key="explore_k",
                                   help="k-means on the unit-normalised embeddings of the chosen sets"))
        derived["cluster"] = clusters_of(state, k=k)
    column = derived[color_by] if color_by in derived else table[color_by].to_numpy()
    # a pass over every item's value (factorised strings): made once per colour and filter; flags
    # and k change the derived columns, so they are in the key
    variant = k if color_by == "cluster" else hash_key(flagged) if color_by == "flag" else None
    # the kernel too (contributions are colours), and whether the name is a diagnostic's score
    # (with the diagnostics on) or a column of the dataset's own that bears the same name
    colour_key = (*state.key, keep_key, color_by, reference, variant, color_by in derived, tuple(diagnostics.columns))
    colours = memoized(("colours", *colour_key), lambda: colour_of(
        column[rows], scale=color_by in scales, sets=state.chosen if color_by == "set" else None, reference=reference))
    shown_texts = memoized(("shown-texts", *base, keep_key), lambda: hover_texts(table.iloc[rows])) if len(
        rows) <= MAX_HOVER_TEXTS else None  # above, a point's text comes with its hover card
    events = inspect_map(xy_all[rows], table, rows, key=f"explore_map:{keep_key}", name="explore",
                         texts=shown_texts, title=names.get(color_by, color_by), **colours)
    st.caption(f"Map: {state.map_note}.")

    shape = events.selection
    set_rows = np.flatnonzero(state.mask)
    # the selection's scores under the sidebar's kernel: the scorer reads the chosen sets' kernel
    # rows (plain cosine: the embeddings themselves, no copy)
    if state.kernel == "cosine":
        fit_on, fit_rows, pos = state.result.embeddings, set_rows, set_rows
    else:
        fit_on, fit_rows, pos = kernel_rows_k, None, np.arange(len(set_rows))
    scorer = with_progress(("subset-scorer", *state.key),
                           in_stage("the Gram matrix that scores selections",
                                    lambda: SubsetScorer(q=DEFAULT_ORDERS).fit(fit_on, rows=fit_rows)),
                           label=f"Preparing the selection scores of {plural(len(set_rows), 'item')}")
    # the map too: a shape drawn on the draft selects other items on the full map
    shape_key = (*state.key, state.map_note, keep_key, json.dumps(shape, sort_keys=True))
    picked = memoized(("selection", *shape_key), lambda: select_points(xy_all[rows], shape, rank_by=rank[rows]))
    chosen, ranked = rows[picked["indices"]], rows[picked["ranked"]]
    # the scores (a d x d eigendecomposition) are computed while the rest of the fragment renders
    scores_of = memoized_aside(("selection-scores", *shape_key), lambda: scorer.scores(pos[rows][picked["indices"]]))
    label = "Selection" if shape else "All filtered items"
    st.subheader(f"{label}: {plural(len(chosen), 'item')}")
    cards = st.container()
    made_of = st.columns(2)
    for where, by in zip(made_of, ("set", "label")):
        parts = memoized(("composition", *shape_key, by), lambda by=by: composition(table, chosen, by=by))
        if len(parts) > 1 or by == "set":
            bar_chart(pd.Series(parts, name="items").rename_axis(by), where=where)
    part = page_slice(len(ranked), key=f"explore_page:{keep_key}")
    st.caption(f"Items sorted by their contribution to diversity (rarest first); {PAGE_SIZE} a page. "
               "Click an item on the map to open it.")
    item_grid(table.iloc[ranked[part]], extra=["entropy"])
    if shape:
        flag_form(table["id"].iloc[chosen].tolist(), flags, key="explore_flag")
    opened_item(state, table, rows, name="explore", derived=derived, diagnostics=full)
    scores = scores_of()
    if scores:
        with cards:
            for card_column, q in zip(st.columns(len(DEFAULT_ORDERS)), DEFAULT_ORDERS):
                card_column.metric(f"VS q={order_label(q)}", f"{scores[q]:.2f}")
            error = scorer.error(len(chosen))
            how = "exact (float64)" if not error else f"float32, relative error ≤ {error:g}"
            st.caption(f"Kernel: {analysis['kernel_note']}; n = {len(chosen):,}, {how}; scores grow with n, so "
                       "compare selections of similar size.")


map_and_selection()
