"""Overview: per-set Vendi scores, the spectrum, and a UMAP map of the chosen dataset."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from explorer.metrics.equal_n import cached_bootstrap_scores, cached_group_scores, interval_text, score_columns
from explorer.metrics.spectrum import DEFAULT_ORDERS, order_label
from explorer.store.flags import FlagStore
from pages._common import analysis_of, flag_form, item_grid, memoized, plural, prepare, set_colours
from pages._sidebar import remembered_selectbox

st.title("Overview")
state = prepare()
source, dataset, embedder, items, mask, chosen, coords = (
    state.source, state.dataset, state.embedder, state.items, state.mask, state.chosen, state.coords)
result = state.result

st.subheader("Vendi scores per set")
st.caption("Cosine kernel on the embeddings, through the d×d covariance; eigenvalues below the "
           "stated tolerance are dropped. Scores grow with n: compare sets of equal size.")
table = memoized(("scores", source, embedder.cache_key(), tuple(chosen)),
                 lambda: cached_group_scores(result.embeddings[mask], items.loc[mask, "set"]))
cols = score_columns(DEFAULT_ORDERS)
for row in table.to_dict("records"):
    st.markdown(f"**{row['group']}** · {plural(row['n'], 'item')} · rank {row['rank']}")
    for card, q, col in zip(st.columns(len(cols)), DEFAULT_ORDERS, cols):
        card.metric(f"VS q={order_label(q)}", f"{row[col]:.2f}")

if len(table) > 1:
    counts = items.loc[mask, "set"].astype(str).value_counts()
    n_eq = int(counts.min())
    if n_eq >= 2:
        boot = memoized(("boot", source, embedder.cache_key(), tuple(chosen), n_eq),
                        lambda: cached_bootstrap_scores(result.embeddings[mask], items.loc[mask, "set"],
                                                        n_boot=30).to_dict("records"))
        rows = []
        for row in boot:
            rows.append({"set": row["group"], **{
                f"VS q={order_label(q)}": interval_text(row[c], row[c + "_lo"], row[c + "_hi"], draws=row["draws"])
                for q, c in zip(DEFAULT_ORDERS, cols)}})
        st.markdown(f"**At equal size** (n = {n_eq:,} per set, mean and 95% interval over 30 random subsets)")
        st.dataframe(rows, hide_index=True)

st.subheader("Spectrum")
analysis = analysis_of(state)
lam = np.asarray(analysis["eigenvalues"])
top = min(len(lam), 200)
spectrum = go.Figure()
spectrum.add_trace(go.Scatter(x=np.arange(1, top + 1), y=lam[:top], mode="lines+markers", name="eigenvalue",
                              marker={"size": 4}))
spectrum.add_trace(go.Scatter(x=np.arange(1, top + 1), y=np.asarray(analysis["cumulative"])[:top], yaxis="y2",
                              mode="lines", name="cumulative mass", line={"dash": "dot"}))
spectrum.update_layout(height=320, margin={"l": 0, "r": 0, "t": 10, "b": 0}, xaxis={"title": "mode"},
                       yaxis={"type": "log", "title": "eigenvalue of K/n"},
                       yaxis2={"overlaying": "y", "side": "right", "range": [0, 1.02], "dtick": 0.25,
                               "title": "cumulative"},
                       legend={"orientation": "h", "y": 1.1})
left, right = st.columns([3, 2])
left.plotly_chart(spectrum, width="stretch", key="spectrum")
labels = items.loc[mask, "label"].fillna("—").astype(str).to_numpy()
right.dataframe([{"mode": m["mode"] + 1, "weight": f"{m['weight']:.3f}",
                  "top items": ", ".join(labels[m["positive"][:6]])} for m in analysis["modes"][:5]],
                hide_index=True)
right.caption("Labels of the items that load most on each mode; the Modes page shows them.")

st.subheader("Map")
has_labels = items.loc[mask, "label"].notna().any()
color_by = remembered_selectbox("Colour by", ["label", "set"] if has_labels else ["set"], name="colour",
                                key="overview_colour", default="label" if has_labels else "set")
shown = items[mask]
xy = coords[mask]
fig = go.Figure()
colours = set_colours(chosen, reference="real" if "real" in chosen else None) if color_by == "set" else {}
for name, index in sorted(shown.groupby(shown[color_by].astype(str)).indices.items()):
    fig.add_trace(go.Scattergl(
        x=xy[index, 0], y=xy[index, 1], mode="markers", name=name,
        marker={"size": 5, "opacity": 0.75, **({"color": colours[name]} if name in colours else {})},
        customdata=shown["id"].to_numpy()[index], hovertemplate="%{customdata}<extra>" + name + "</extra>"))
fig.update_layout(height=560, margin={"l": 0, "r": 0, "t": 10, "b": 0}, dragmode="lasso",
                  legend={"title": color_by}, xaxis={"visible": False}, yaxis={"visible": False})
event = st.plotly_chart(fig, on_select="rerun", selection_mode=("points", "box", "lasso"),
                        key="overview_map", width="stretch")

picked = [p["customdata"] for p in (event.selection.points if event else []) if "customdata" in p]
flags = FlagStore.for_dataset(dataset.source)
if picked:
    st.markdown(f"**{len(picked):,} selected** — showing up to 24")
    item_grid(shown.set_index("id").loc[picked[:24]].reset_index())
    flag_form(picked, flags)
else:
    st.caption("Select points on the map (box or lasso) to see those items here and flag them.")
