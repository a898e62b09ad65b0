"""Explore: the map coloured by any column, filters, and live scores of a box or lasso selection."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from explorer.diversity import vendi_scores
from explorer.flags import FlagStore
from explorer.selection import summarize_selection
from explorer.vendi import DEFAULT_ORDERS, order_label
from pages._common import analysis_of, flag_form, item_grid, prepare

MAX_POINTS = 20_000  # beyond this the map shows a sample; selections still act on every item
SCORE_COLUMNS = {"entropy": "contribution h_i", "crowdedness": "crowdedness", "loo_delta": "leave-one-out ΔVS₁"}

st.title("Explore")
state = prepare()
analysis = analysis_of(state)
flags = FlagStore.for_dataset(state.dataset.source)
reasons = flags.reasons()
table = state.items[state.mask].reset_index(drop=True)
x_all, xy_all = state.result.embeddings[state.mask], state.coords[state.mask]
for column in SCORE_COLUMNS:
    table[column] = analysis[column]
table["flag"] = np.where(table["id"].isin(reasons), "flagged", "not flagged")

# filters apply to the map, the scores and the grid alike
keep = np.ones(len(table), dtype=bool)
labels = sorted(table["label"].dropna().astype(str).unique())
if 1 < len(labels) <= 200:
    picked_labels = st.sidebar.multiselect("Labels", labels, default=labels, key=f"labels:{state.source}")
    keep &= table["label"].astype(str).isin(picked_labels).to_numpy()
low, high = st.sidebar.slider("Contribution h_i (percentile range)", 0, 100, (0, 100), key="h_range",
                              help="Low: redundant items; high: rare items")
if (low, high) != (0, 100):
    lo_v, hi_v = np.percentile(table["entropy"], [low, high])
    keep &= table["entropy"].between(lo_v, hi_v).to_numpy()
if st.sidebar.checkbox("Only flagged items", key="only_flagged"):
    keep &= (table["flag"] == "flagged").to_numpy()
view, x, xy = table[keep].reset_index(drop=True), x_all[keep], xy_all[keep]
if view.empty:
    st.info("No item passes the filters.")
    st.stop()

meta = [c for c in view.columns if c not in ("id", "kind", "path", "text", "digest", *SCORE_COLUMNS, "flag")
        and view[c].nunique() <= 50]
color_by = st.sidebar.selectbox("Colour by", [*meta, *SCORE_COLUMNS, "flag"], key="explore_color")

shown = np.arange(len(view))
if len(view) > MAX_POINTS:
    shown = np.sort(np.random.default_rng(0).choice(len(view), MAX_POINTS, replace=False))
    st.caption(f"The map shows {MAX_POINTS:,} of {len(view):,} items; selections include every item inside.")
fig = go.Figure()
ids = view["id"].to_numpy()
if color_by in SCORE_COLUMNS:
    fig.add_trace(go.Scattergl(
        x=xy[shown, 0], y=xy[shown, 1], mode="markers", customdata=ids[shown],
        marker={"size": 5, "color": view[color_by].to_numpy()[shown], "colorscale": "Viridis", "showscale": True,
                "colorbar": {"title": SCORE_COLUMNS[color_by]}},
        hovertemplate="%{customdata}<br>%{marker.color:.3f}<extra></extra>"))
else:
    values = view[color_by].fillna("—").astype(str).to_numpy()
    for name in sorted(set(values[shown])):
        idx = shown[values[shown] == name]
        fig.add_trace(go.Scattergl(x=xy[idx, 0], y=xy[idx, 1], mode="markers", name=name, customdata=ids[idx],
                                   marker={"size": 5, "opacity": 0.75},
                                   hovertemplate="%{customdata}<extra>" + name + "</extra>"))
fig.update_layout(height=560, margin={"l": 0, "r": 0, "t": 10, "b": 0}, dragmode="lasso",
                  legend={"title": color_by}, xaxis={"visible": False}, yaxis={"visible": False})
event = st.plotly_chart(fig, on_select="rerun", selection_mode=("points", "box", "lasso"), key="explore_map",
                        width="stretch")

selection = event.selection if event else {}
drawn = bool(selection and (selection.get("box") or selection.get("lasso")))
clicked = [p["customdata"] for p in (selection.get("points", []) if selection else []) if "customdata" in p]
if drawn or not clicked:
    summary = summarize_selection(x, xy, selection if drawn else {}, rank_by=view["entropy"].to_numpy())
    chosen, top = summary["indices"], summary["top"]
else:
    chosen = np.flatnonzero(view["id"].isin(clicked).to_numpy())
    top = chosen[np.argsort(-view["entropy"].to_numpy()[chosen], kind="stable")][:24]
    summary = {"scores": vendi_scores(x[chosen], q=DEFAULT_ORDERS).scores if len(chosen) >= 2 else {}}
area = chosen if drawn else None
label = "selection" if (drawn or clicked) else "all filtered items"

st.subheader(f"{label.capitalize()}: {len(chosen):,} items")
if summary["scores"]:
    for card, q in zip(st.columns(len(DEFAULT_ORDERS)), DEFAULT_ORDERS):
        card.metric(f"VS q={order_label(q)}", f"{summary['scores'][q]:.2f}")
st.caption("Items sorted by their contribution to diversity (rarest first).")
item_grid(view.iloc[top], extra=["entropy"])
if area is not None or clicked:
    flag_form(view["id"].to_numpy()[chosen].tolist(), flags, key="explore_flag")

if len(clicked) == 1 and area is None:
    i = int(np.flatnonzero(ids == clicked[0])[0])
    st.subheader("Item")
    st.dataframe(pd.DataFrame({"field": view.columns, "value": view.iloc[i].astype(str).to_numpy()}),
                 hide_index=True)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = unit @ unit[i]
    nearest = [j for j in np.argsort(-sims, kind="stable") if j != i][:8]
    st.markdown("**Nearest neighbours** (cosine similarity)")
    item_grid(view.iloc[nearest].assign(similarity=sims[nearest]), extra=["similarity"])
