"""Explore: the map coloured by any column, filters, and live scores of a box or lasso selection.

Every click reruns this script over all items (100k and more), so a rerun does no work that
depends on the item count beyond a few vectorised passes: the per-item table, the scores of the
filtered items or a selection and the map are memoised under keys built from small things (the
filter mask's bytes, the selection's JSON), never from the embeddings.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from explorer.diagnostics.table import flag_masks
from explorer.diagnostics.table import score_columns as diagnostic_scores
from explorer.maps.selection import nearest_items, percentile_mask, summarize_selection
from explorer.metrics.spectrum import DEFAULT_ORDERS, order_label
from explorer.metrics.vendi import vendi_scores
from explorer.store.cache import hash_key
from explorer.store.flags import FlagStore
from pages._common import analysis_of, clusters_of, flag_form, item_grid, memoized, prepare, readable, set_colours
from pages._diagnostics import comparison_of, reference_choice
from pages._sidebar import remembered_selectbox

MAX_POINTS = 20_000  # beyond this the map shows a sample; selections still act on every item
# Per-item numbers shown on a colour scale: column -> its name in the sidebar and the colour bar.
SCORE_COLUMNS = {"entropy": "contribution h_i", "crowdedness": "crowdedness", "loo_delta": "leave-one-out ΔVS₁"}
# Per-item categories the page derives (metadata columns are offered as they are).
DERIVED_COLUMNS = {"cluster": "cluster (k-means)", "flag": "flag"}
NOT_COLOURS = ("id", "kind", "path", "text", "digest")

st.title("Explore")
state = prepare()
analysis = analysis_of(state)
flags = FlagStore.for_dataset(state.dataset.source)
reasons = flags.reasons()
base = (state.source, state.embedder.cache_key(), tuple(state.chosen))  # every memo below depends on these


def item_table() -> pd.DataFrame:
    table = state.items[state.mask].reset_index(drop=True)
    for column in SCORE_COLUMNS:
        table[column] = np.asarray(analysis[column], dtype=np.float64)
    return table


table = memoized(("explore-table", *base), item_table)  # shared between reruns: never modified below
ids = table["id"].to_numpy()
flagged = table["id"].isin(reasons).to_numpy() if reasons else np.zeros(len(table), dtype=bool)

# filters apply to the map, the scores and the grid alike
keep = np.ones(len(table), dtype=bool)
labels = memoized(("labels", *base), lambda: sorted(table["label"].dropna().astype(str).unique()))
if 1 < len(labels) <= 200:
    picked_labels = st.sidebar.multiselect("Labels", labels, default=labels, key=f"labels:{state.source}")
    if len(picked_labels) < len(labels):  # all picked: no pass over the items, and unlabelled ones stay
        keep &= table["label"].astype(str).isin(picked_labels).to_numpy()
low, high = st.sidebar.slider("Contribution h_i (percentile range)", 0, 100, (0, 100), key="h_range",
                              help="Low: redundant items; high: rare items")
if (low, high) != (0, 100):
    keep &= percentile_mask(table["entropy"].to_numpy(), low=low, high=high)
if st.sidebar.checkbox("Only flagged items", key="only_flagged"):
    keep &= flagged

# diagnostics against a reference set (explorer.compare): scores to colour by, flags to filter by
diagnostics = pd.DataFrame()
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

meta = memoized(("meta", *base), lambda: [c for c in table.columns if c not in (*NOT_COLOURS, *SCORE_COLUMNS)
                                          and 0 < table[c].nunique() <= 50])
scales = {**SCORE_COLUMNS, **{c: f"diagnostic: {c}" for c in diagnostics.columns}}
names = {**scales, **DERIVED_COLUMNS}
labelled = table["label"].notna().any()
color_by = remembered_selectbox("Colour by", [*meta, *scales, *DERIVED_COLUMNS], name="colour", key="explore_color",
                                default="label" if labelled else "set", format_func=lambda c: names.get(c, c))
derived: dict[str, np.ndarray] = {"flag": np.where(flagged, "flagged", "not flagged"),
                                  **{c: diagnostics[c].to_numpy() for c in diagnostics.columns}}
if color_by == "cluster":
    k = int(st.sidebar.number_input("Clusters (k)", min_value=2, max_value=50, value=10, step=1, key="explore_k",
                                    help="k-means on the unit-normalised embeddings of the chosen sets"))
    with st.spinner(f"Clustering into {k} groups (once per k)…"):
        derived["cluster"] = clusters_of(state, k=k)


def values_of(column: str) -> np.ndarray:
    """A colour column for every item of ``table``."""
    return derived[column] if column in derived else table[column].to_numpy()


shown = rows
if len(rows) > MAX_POINTS:
    shown = rows[np.sort(np.random.default_rng(0).choice(len(rows), MAX_POINTS, replace=False))]
    st.caption(f"The map shows {MAX_POINTS:,} of {len(rows):,} items; selections include every item inside.")
xy_all = state.coords[state.mask]
fig = go.Figure()
if color_by in scales:
    fig.add_trace(go.Scattergl(
        x=xy_all[shown, 0], y=xy_all[shown, 1], mode="markers", customdata=ids[shown],
        marker={"size": 5, "color": values_of(color_by)[shown], "colorscale": "Viridis", "showscale": True,
                "colorbar": {"title": scales[color_by]}},
        hovertemplate="%{customdata}<br>%{marker.color:.3f}<extra></extra>"))
else:
    values = pd.Series(values_of(color_by)[shown]).fillna("—").astype(str).to_numpy()
    colours = set_colours(state.chosen, reference=reference) if color_by == "set" else {}
    for name in sorted(set(values)):
        idx = shown[values == name]
        marker = {"size": 5, "opacity": 0.75, **({"color": colours[name]} if name in colours else {})}
        fig.add_trace(go.Scattergl(x=xy_all[idx, 0], y=xy_all[idx, 1], mode="markers", name=name,
                                   customdata=ids[idx], marker=marker,
                                   hovertemplate="%{customdata}<extra>" + name + "</extra>"))
fig.update_layout(height=560, margin={"l": 0, "r": 0, "t": 10, "b": 0}, dragmode="lasso",
                  legend={"title": names.get(color_by, color_by)}, xaxis={"visible": False},
                  yaxis={"visible": False})
event = st.plotly_chart(fig, on_select="rerun", selection_mode=("points", "box", "lasso"), key="explore_map",
                        width="stretch")

selection = event.selection if event else {}
drawn = bool(selection and (selection.get("box") or selection.get("lasso")))
clicked = [p["customdata"] for p in (selection.get("points", []) if selection else []) if "customdata" in p]
rank = table["entropy"].to_numpy()


def embeddings_of(positions: np.ndarray) -> np.ndarray:
    """Embeddings of items of ``table`` (a copy only of those rows)."""
    return state.result.embeddings[np.flatnonzero(state.mask)[positions]]


if drawn or not clicked:
    area = {k: selection[k] for k in ("box", "lasso") if selection.get(k)} if drawn else {}
    summary = memoized(
        ("selection", *base, hash_key(keep.tobytes()), json.dumps(area, sort_keys=True, default=str)),
        lambda: summarize_selection(embeddings_of(rows), xy_all[rows], area, rank_by=rank[rows]))
    chosen, top, scores = rows[summary["indices"]], rows[summary["top"]], summary["scores"]
else:
    chosen = np.flatnonzero(table["id"].isin(clicked).to_numpy() & keep)  # a hash lookup, not a sort
    top = chosen[np.argsort(-rank[chosen], kind="stable")][:24]
    scores = vendi_scores(embeddings_of(chosen), q=DEFAULT_ORDERS).scores if len(chosen) >= 2 else {}
label = "selection" if (drawn or clicked) else "all filtered items"

st.subheader(f"{label.capitalize()}: {len(chosen):,} items")
if scores:
    for card, q in zip(st.columns(len(DEFAULT_ORDERS)), DEFAULT_ORDERS):
        card.metric(f"VS q={order_label(q)}", f"{scores[q]:.2f}")
st.caption("Items sorted by their contribution to diversity (rarest first).")
item_grid(table.iloc[top], extra=["entropy"])
if drawn or clicked:
    flag_form(ids[chosen].tolist(), flags, key="explore_flag")

if len(clicked) == 1 and not drawn and len(chosen) == 1:
    i = int(chosen[0])
    item = table.iloc[i].to_dict() | {c: v[i] for c, v in derived.items()}
    st.subheader("Item")
    st.dataframe(readable(pd.DataFrame({"field": list(item), "value": list(item.values())}).astype(str)),
                 hide_index=True)
    to_row = np.flatnonzero(state.mask)  # table position -> embedding row
    near_rows, sims = nearest_items(state.result.embeddings, int(to_row[i]), among=to_row[rows], k=8)
    st.markdown("**Nearest neighbours** (cosine similarity)")
    item_grid(table.iloc[np.searchsorted(to_row, near_rows)].assign(similarity=sims), extra=["similarity"])
