"""Overview: per-set Vendi scores, the spectrum, and a UMAP map of the chosen dataset."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from explorer.maps.selection import shape_mask
from explorer.metrics.equal_n import cached_bootstrap_scores, cached_group_scores, interval_text, score_columns
from explorer.metrics.spectrum import DEFAULT_ORDERS, order_label
from explorer.store.flags import FlagStore
from pages._common import (
    analysis_of,
    flag_form,
    in_stage,
    item_grid,
    kernel_note,
    kernel_of,
    memoized,
    page_slice,
    plural,
    prepare,
    with_progress,
)
from pages._inspect import hover_texts, inspect_map, opened_item, scored_table
from pages._map import colour_of
from pages._sidebar import kept_choice, remembered_selectbox

st.title("Overview")
state = prepare()
source, dataset, embedder, items, mask, chosen, coords = (
    state.source, state.dataset, state.embedder, state.items, state.mask, state.chosen, state.coords)
result = state.result

st.subheader("Vendi scores per set")
rows_k, info = kernel_of(state)  # the chosen sets' rows under the sidebar's kernel
how = kernel_note(info)
st.caption(f"Kernel: {how} — change it in the sidebar. Through the d×d covariance; eigenvalues below the "
           "stated tolerance are dropped. Scores grow with n: compare sets of equal size.")
table = with_progress(("scores", *state.key),
                      in_stage(f"Vendi scores of {plural(len(chosen), 'set')}",
                               lambda: cached_group_scores(rows_k, items.loc[mask, "set"])),
                      label=f"Scoring {plural(int(mask.sum()), 'item')}")
cols = score_columns(DEFAULT_ORDERS)
for row in table.to_dict("records"):
    st.markdown(f"**{row['group']}** · {plural(row['n'], 'item')} · rank {row['rank']}")
    for card, q, col in zip(st.columns(len(cols)), DEFAULT_ORDERS, cols):
        card.metric(f"VS q={order_label(q)}", f"{row[col]:.2f}",
                    help=f"Vendi score of order {order_label(q)} of all {row['n']:,} items of {row['group']}; "
                         f"kernel: {how}")

if len(table) > 1:
    counts = items.loc[mask, "set"].astype(str).value_counts()
    n_eq = int(counts.min())
    if n_eq >= 2:
        boot = with_progress(("boot", *state.key, n_eq),
                             in_stage(f"30 random subsets of {n_eq:,} items per set",
                                      lambda: cached_bootstrap_scores(rows_k, items.loc[mask, "set"],
                                                                      n_boot=30).to_dict("records")),
                             label="Scoring the sets at equal size")
        rows = []
        for row in boot:
            rows.append({"set": row["group"], **{
                f"VS q={order_label(q)}": interval_text(row[c], row[c + "_lo"], row[c + "_hi"], draws=row["draws"])
                for q, c in zip(DEFAULT_ORDERS, cols)}})
        st.markdown(f"**At equal size** (n = {n_eq:,} per set, mean and 95% interval over 30 random subsets; "
                    f"kernel: {how})")
        st.dataframe(rows, hide_index=True)

st.subheader("Spectrum")
analysis = analysis_of(state)
lam = np.asarray(analysis["eigenvalues"])
top = min(len(lam), 200)


def spectrum_figure() -> go.Figure:
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=np.arange(1, top + 1), y=lam[:top], mode="lines+markers", name="eigenvalue",
                                marker={"size": 4}))
    figure.add_trace(go.Scatter(x=np.arange(1, top + 1), y=np.asarray(analysis["cumulative"])[:top], yaxis="y2",
                                mode="lines", name="cumulative mass", line={"dash": "dot"}))
    figure.update_layout(height=320, margin={"l": 0, "r": 0, "t": 10, "b": 0}, xaxis={"title": "mode"},
                         yaxis={"type": "log", "title": "eigenvalue of K/n"},
                         yaxis2={"overlaying": "y", "side": "right", "range": [0, 1.02], "dtick": 0.25,
                                 "title": "cumulative"},
                         legend={"orientation": "h", "y": 1.1})
    return figure


# built once per analysis: plotly's validation made building it a tenth of a rerun's CPU (py-spy)
spectrum = memoized(("spectrum-figure", *state.key), spectrum_figure)
left, right = st.columns([3, 2])
left.plotly_chart(spectrum, width="stretch", key="spectrum")
labels = items.loc[mask, "label"].fillna("—").astype(str).to_numpy()
right.dataframe([{"mode": m["mode"] + 1, "weight": f"{m['weight']:.3f}",
                  "top items": ", ".join(labels[m["positive"][:6]])} for m in analysis["modes"][:5]],
                hide_index=True)
right.caption("Labels of the items that load most on each mode; the Modes page shows them.")
st.caption(f"Spectrum of the chosen sets together; kernel: {analysis['kernel_note']}.")

st.subheader("Map")
shown = scored_table(state, analysis)  # the chosen items with their contributions, for the item panel
xy = coords[mask]
rows = np.arange(len(shown))
flags = FlagStore.for_dataset(dataset.source)
# the reference chosen on Explore or Compare is drawn grey here too (as reference_choice defaults it)
reference = (kept_choice("ref", chosen, default="real" if "real" in chosen else chosen[0])
             if len(chosen) > 1 else None)


@st.fragment
def overview_map() -> None:  # a lasso or a colour change reruns this part only
    has_labels = shown["label"].notna().any()
    color_by = remembered_selectbox("Colour by", ["label", "set"] if has_labels else ["set"], name="colour",
                                    key="overview_colour", default="label" if has_labels else "set", where=st)
    colours = colour_of(shown[color_by].to_numpy(), scale=False, sets=chosen if color_by == "set" else None,
                        reference=reference)
    texts = memoized(("hover-texts", source, embedder.cache_key(), tuple(chosen)), lambda: hover_texts(shown))
    events = inspect_map(xy, shown, rows, key="overview_map", name="overview", texts=texts, title=color_by,
                         **colours)
    st.caption(f"Map: {state.map_note}.")
    inside = shape_mask(xy, events.selection)
    if inside is not None and inside.any():
        picked = shown["id"].to_numpy()[inside].tolist()
        st.markdown(f"**{plural(len(picked), 'item')} selected**")
        item_grid(shown[inside].iloc[page_slice(len(picked), key="overview_page")])
        flag_form(picked, flags)
    else:
        st.caption("Draw a lasso or a box on the map to see those items here and flag them; click a point to "
                   "open it.")
    opened_item(state, shown, rows, name="overview")


overview_map()
