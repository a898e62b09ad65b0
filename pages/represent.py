"""Representation: each value of one or two attributes (labels, metadata columns, k-means
regions) and each intersection, its share against a target and its diversity at equal n; the
items of flagged groups ready to flag, and the table to download. The numbers are
explorer.curate.represent's."""
from __future__ import annotations

import io

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from explorer.curate.represent import cached_represent, read_target
from explorer.store.flags import FlagStore
from pages._common import in_stage, plural, prepare, readable, with_progress
from pages._downloads import download_buttons
from pages._flags import STORE_ERRORS, problem_line
from pages._notices import flagged_message

HIDDEN = ("id", "kind", "path", "text", "digest")  # columns that are not attributes
MAX_VALUES = 50  # a column with more distinct values is an identifier, not an attribute

st.title("Representation")
state = prepare()
items = state.items[state.mask].reset_index(drop=True)
columns = [c for c in items.columns if c not in HIDDEN and 1 <= items[c].astype(str).nunique() <= MAX_VALUES
           and items[c].notna().any()]
regions = [f"kmeans:{k}" for k in (4, 8, 12, 20) if k < len(items)]
by = st.multiselect("Group by (one or two)", columns + regions, default=columns[:1] or regions[:1],
                    max_selections=2, key="represent_by",
                    format_func=lambda c: f"k-means regions, k = {c.split(':')[1]}" if c.startswith("kmeans:") else c)
upload = st.file_uploader("Target shares (CSV of value, share[, attribute]); uniform without one", type=["csv"],
                          key="represent_target")
if not by:
    st.info("Choose an attribute to group by.")
    st.stop()
target, target_key = None, "uniform"
if upload is not None:
    data = upload.getvalue()
    try:
        target = read_target(io.BytesIO(data))
    except ValueError as err:
        st.error(f"The target file cannot be used: {err}", icon=":material/error:")
        st.stop()
    target_key = upload.name + ":" + str(hash(data))
kernel = state.kernel
try:
    report = with_progress(
        ("represent", state.source, state.embedder.cache_key(), tuple(state.chosen), tuple(by), target_key, kernel),
        in_stage("shares and diversity at equal n per group", lambda: cached_represent(
            state.result.embeddings[state.mask], items, by=by, target=target, kernel=kernel)),
        label=f"Scoring {plural(len(items), 'item')} per group")
except ValueError as err:  # a target without a share for a value, too few items
    st.error(str(err), icon=":material/error:")
    st.stop()
summary, groups = report.summary, report.groups
st.caption(f"{plural(summary['n'], 'item')} of {', '.join(state.chosen)}; VS₁ with the {summary['kernel']} kernel, "
           f"at equal n within each attribute (mean and {summary['level']:.0%} interval over random subsets); "
           f"target {'uniform' if target is None else upload.name if upload else 'given'}. Under-represented: "
           f"{summary['rules']['under_represented']}. Low diversity: {summary['rules']['low_diversity']}. "
           f"Scored: {summary['rules']['scored']}.")
cards = st.columns(2)
cards[0].metric("Under-represented groups", len(summary["under_represented"]))
cards[1].metric("Low-diversity groups", len(summary["low_diversity"]))

for attribute in dict.fromkeys(groups["attribute"]):
    part = groups[groups["attribute"] == attribute]
    st.subheader(f"{attribute} (equal n = {summary['equal_n'][attribute]:,})")
    colour = np.where(part["reason"] != "", "#d62728", "#1f77b4")
    left, right = st.columns(2)
    shares = go.Figure([go.Bar(x=part["group"], y=part["share"], name="share", marker={"color": colour}),
                        go.Scatter(x=part["group"], y=part["target_share"], name="target", mode="markers",
                                   marker={"symbol": "line-ew-open", "size": 18, "color": "#333"})])
    shares.update_layout(height=280, margin={"l": 0, "r": 0, "t": 30, "b": 0}, title="share vs target",
                         yaxis={"tickformat": ".0%"}, legend={"orientation": "h", "y": 1.15},
                         xaxis={"type": "category"})
    left.plotly_chart(shares, width="stretch", key=f"represent_shares:{attribute}")
    vs = go.Figure(go.Bar(x=part["group"], y=part["vs1"], marker={"color": colour}, error_y={
        "type": "data", "symmetric": False, "array": part["vs1_hi"] - part["vs1"],
        "arrayminus": part["vs1"] - part["vs1_lo"]}))
    vs.update_layout(height=280, margin={"l": 0, "r": 0, "t": 30, "b": 0}, xaxis={"type": "category"},
                     title=f"VS₁ at n = {summary['equal_n'][attribute]:,}")
    right.plotly_chart(vs, width="stretch", key=f"represent_vs:{attribute}")

st.subheader("Groups")
shown = groups.drop(columns=["parts"])
st.dataframe(readable(shown.round(3)), hide_index=True, width="stretch", key="represent_table")

st.subheader("Flag and export")
flagged = report.flagged()
flags = FlagStore.for_dataset(state.dataset.source)
if flagged:
    st.caption(f"{plural(len(flagged), 'item')} belong to a flagged group; each is flagged with its group and reason.")
    if st.button(f"Flag these {len(flagged):,} items" if len(flagged) > 1 else "Flag this item",
                 icon=":material/flag:", key="represent_flag"):
        try:
            added = sum(flags.add([i for i, rs in flagged.items() if r in rs], reason=r, source="representation")
                        for r in sorted({r for rs in flagged.values() for r in rs}))
        except STORE_ERRORS as err:
            st.error(f"The flags were not saved: {problem_line(err)}", icon=":material/error:")
        else:
            st.toast(flagged_message(added, sum(len(rs) for rs in flagged.values())), icon=":material/flag:")
else:
    st.caption("No group is flagged.")
download_buttons(lambda: shown, label="Groups", stem="representation", key="represent_download")
