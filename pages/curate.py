"""Curate: choose k diverse items of the chosen sets (greedy Vendi, explorer.curate.select), with
optional per-class quotas and without flagged items; see them on the map, their scores against
random and farthest-point subsets of the same k, and flag or export them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from explorer.curate.select import QUOTAS, SUBSET_FLAGS, cached_selection, flagged_ids
from explorer.diagnostics.duplicates import DEFAULT_ALPHA
from explorer.metrics.spectrum import DEFAULT_ORDERS, order_label
from explorer.store.cache import hash_key
from explorer.store.export import export_table
from explorer.store.flags import FlagStore
from pages._common import NEUTRAL, item_grid, memoized, page_slice, prepare, readable, with_progress
from pages._downloads import download_buttons
from pages._flags import STORE_ERRORS, problem_line
from pages._inspect import hover_texts, inspect_map
from pages._notices import flagged_message, plural

HIDDEN = ("id", "kind", "path", "text", "digest")  # columns that are not classes
MAX_CLASSES = 50  # a column with more distinct values is an identifier, not a class
CHOSEN = "#d62728"

st.title("Curate")
state = prepare()
items = state.items[state.mask].reset_index(drop=True)
kernel = state.kernel
flags = FlagStore.for_dataset(state.dataset.source)
classes = [c for c in items.columns if c not in HIDDEN and items[c].notna().any()
           and 2 <= items[c].astype(str).nunique() <= MAX_CLASSES]

left, middle, right = st.columns(3)
k = int(left.number_input("Items to choose (k)", min_value=1, max_value=len(items), value=min(50, len(items)),
                          step=1, key="curate_k"))
per = middle.selectbox("Quotas per class of", ["(none)", *classes], key="curate_per",
                       help="Each class gets its share of the k items")
quotas = middle.radio("Quotas", QUOTAS, horizontal=True, key="curate_quotas", disabled=per == "(none)",
                      format_func=lambda q: {"proportional": "proportional, ≥ 1 each", "equal": "equal"}[q])
exclude = right.checkbox("Leave out flagged items", value=True, key="curate_exclude",
                         help="Items flagged for any reason but saving a subset chosen here")
flagged = sorted(set(flagged_ids(flags)) & set(items["id"].astype(str))) if exclude else []
st.caption(f"Greedy selection: each pick is the item whose squared {kernel} similarity to the items already "
           "chosen is smallest, the pick that raises VS₂ most; no two chosen items are near duplicates (closer "
           f"than {DEFAULT_ALPHA:g} × the usual distance to a nearest neighbour, as the Audit page defines them). "
           "Compared with the mean and the best of 20 random subsets and a "
           "farthest-point (k-center) subset of the same k and quotas.")

column = None if per == "(none)" else per
try:
    summary, picks = with_progress(
        ("select", state.source, state.embedder.cache_key(), tuple(state.chosen), k, column, quotas, kernel,
         hash_key(flagged)),
        lambda job: cached_selection(state.result.embeddings[state.mask], items, k=k, per=column,
                                     exclude_ids=flagged, progress=job.report, quotas=quotas, kernel=kernel),
        label=f"Choosing {plural(k, 'item')} of {plural(len(items), 'item')}")
except ValueError as err:  # more items asked for than the constraints allow
    st.error(f"No subset: {err}", icon=":material/error:")
    st.stop()

scores = summary["scores"]
st.subheader(f"Diverse subset: {plural(len(picks), 'item')}")
st.caption(f"Kernel: {summary['kernel']}; no two chosen items at cosine ≥ {summary['near_threshold']:.4f}"
           + (f"; {plural(summary['excluded'], 'flagged item')} left out" if summary["excluded"] else ""))
cards = st.columns(3)
cards[0].metric("VS q=1 subset", f"{scores['1']:.2f}")
cards[1].metric("VS q=1 best random", f"{summary['random']['best']['1']:.2f}",
                delta=f"{scores['1'] / summary['random']['best']['1']:.2f}× for the subset", delta_color="off")
cards[2].metric("VS q=1 k-center", f"{summary['kcenter']['1']:.2f}",
                delta=f"{scores['1'] / summary['kcenter']['1']:.2f}× for the subset", delta_color="off")
orders = [order_label(q) for q in DEFAULT_ORDERS]
st.dataframe(pd.DataFrame({"subset": ["diverse (greedy)", "random, mean of 20", "random, best of 20", "k-center"],
                           **{f"VS q={q}": [scores[q], summary["random"]["mean"][q], summary["random"]["best"][q],
                                            summary["kcenter"][q]] for q in orders}}).round(2), hide_index=True)

rows = picks["row"].to_numpy()
in_subset = np.zeros(len(items), dtype=np.uint16)
in_subset[rows] = 1
texts = memoized(("hover-texts", state.source, state.embedder.cache_key(), tuple(state.chosen)),
                 lambda: hover_texts(items))
every = np.arange(len(items))


@st.fragment
def subset_map() -> None:  # a hover card or a click reruns this part only
    inspect_map(state.coords[state.mask], items, every, key="curate_map", name="curate", categories=in_subset,
                names=["other items", "chosen"], palette=[NEUTRAL, CHOSEN], texts=texts, title="diverse subset",
                height=480)
    st.caption(f"Map: {state.map_note}. The chosen items in red.")


subset_map()

shown = picks.drop(columns=["row"]).assign(set=items["set"].to_numpy()[rows])
st.dataframe(readable(shown.round({"overlap": 4, "gain": 4})), hide_index=True, height=240)
part = page_slice(len(rows), key="curate_page")
item_grid(items.iloc[rows[part]].assign(gain=picks["gain"].to_numpy()[part]), extra=["gain"])

st.subheader("Flag and export")
reason = f"diverse subset k={k}" + (f" per {column}" if column else "")
if st.button(f"Flag {plural(len(rows), 'item')}: {reason}", key="curate_flag", icon=":material/flag:"):
    try:
        added = flags.add(picks["id"].astype(str), reason=reason, source=SUBSET_FLAGS)
    except STORE_ERRORS as err:  # disk full, a locked or damaged database: said, nothing claimed saved
        st.error(f"The flags were not saved: {problem_line(err)}", icon=":material/error:")
    else:
        st.toast(flagged_message(added, len(rows)), icon=":material/flag:")
download_buttons(lambda: export_table(items.iloc[rows], reasons=flags.reasons(), scores=picks[["rank", "gain"]]),
                 label="Subset", stem="diverse-subset", key="curate_download")
