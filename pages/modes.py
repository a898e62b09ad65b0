"""Modes: the directions behind the spectrum, and the items that load most on each (both signs)."""
from __future__ import annotations

import numpy as np
import streamlit as st

from pages._common import analysis_of, prepare, readable, thumbnails
from pages._grid import image_grid

st.title("Modes")
state = prepare()
analysis = analysis_of(state)
modes = analysis["modes"]
shown = state.items[state.mask].reset_index(drop=True)
st.caption("Mode k is the k-th eigenvector of the kernel's covariance; its weight is its share of the "
           "spectrum. The items with the largest projections, positive and negative, show what it is. "
           f"Kernel: {analysis['kernel_note']} (sidebar).")
k = st.select_slider("Mode", options=list(range(1, len(modes) + 1)), key="mode") - 1
mode = modes[k]
total = float(np.sum(analysis["eigenvalues"]))
st.metric(f"Weight of mode {k + 1}", f"{mode['weight']:.4f}",
          help=f"of a total of {total:.3f}; kernel: {analysis['kernel_note']}")


def grid(side: str) -> None:
    rows = shown.iloc[mode[side]]
    loads = mode[f"{side}_loadings"]
    st.markdown(f"**{'Positive' if side == 'positive' else 'Negative'} side**")
    if not len(rows):
        st.caption("No item loads on this side of the mode.")
        return
    labels = readable(rows[["label"]])["label"]  # a missing label shows as nothing, not "None"
    captions = [" · ".join(p for p in (str(s), lab, f"{v:+.2f}") if p) for s, lab, v in zip(rows["set"], labels, loads)]
    if "path" in rows.columns:
        image_grid(thumbnails(rows, width=80), captions, width=80)
    else:
        st.dataframe(readable(rows[[c for c in ("id", "set", "label", "text") if c in rows]]).assign(loading=loads),
                     hide_index=True)


left, right = st.columns(2)
with left:
    grid("positive")
with right:
    grid("negative")
