"""Compare: model samples against a reference — diversity at equal n, coverage, regions, classes,
novel modes, duplicates, memorisation, and every diagnostic ready to flag or download."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from explorer.diagnostics import describe, flag_with_reasons
from explorer.store.export import export_table
from explorer.store.flags import FlagStore
from pages._common import NEUTRAL, item_grid, memoized, plural, prepare, readable
from pages._diagnostics import comparison_key, comparison_of, masks_of, reasons_by_item, reference_choice, rows_of
from pages._downloads import download_buttons
from pages._inspect import hover_texts, inspect_map, opened_item
from pages._notices import flagged_message
from pages._prompts import prompt_section

st.title("Compare")
state = prepare()
reference = reference_choice(state)
if reference is None:
    st.info("Choose at least two sets in the sidebar: a reference (real data) and model samples.")
    st.stop()
made_under = comparison_key(state, reference)  # what is derived from the comparison is kept under it too
summary, table = comparison_of(state, reference, key=made_under)
items = state.items[state.mask].reset_index(drop=True)
sets = list(summary["sets"])
orders = summary["orders"]

st.subheader("Diversity and fidelity per set")
st.caption(f"Against **{reference}** ({summary['n_reference']:,} items). Vendi scores at equal n = "
           f"{summary['equal_n']:,} (mean and 95% interval over random subsets); ratios are to the reference's. "
           f"Precision/recall/density/coverage with k = {summary['k']} nearest-neighbour balls.")
kernel = summary["kernel"]
st.caption(f"Kernel: **{kernel['describe']}** (sidebar), for {', '.join(kernel['applies_to'])}. "
           f"{', '.join(kernel['cosine_geometry']).capitalize()} use the plain cosine geometry of the embeddings.")
ref_scores = summary["reference_scores"]


def vs_cell(scores: dict, q: str) -> str:
    return f"{scores['vs'][q]:.2f} [{scores['vs_ci'][q][0]:.2f}, {scores['vs_ci'][q][1]:.2f}]"


diversity = [{"set": reference, **{f"VS q={q}": vs_cell(ref_scores, q) for q in orders}}]
fidelity = []
for name, s in summary["sets"].items():
    diversity.append({"set": name, **{f"VS q={q}": f"{vs_cell(s, q)} · {s[f'vs{q}_ratio']:.2f}×" for q in orders}})
    fidelity.append({"set": name, "precision": round(s["precision"], 3), "recall": round(s["recall"], 3),
                     "density": round(s["density"], 3), "coverage": round(s["coverage"], 3),
                     "memorised": f"{s['memorized_share']:.1%}", "near dups": f"{s['near_duplicate_share']:.1%}",
                     "collapsed classes": ", ".join(c["class"] for c in s["collapsed"]) or "—"})
st.dataframe(pd.DataFrame(diversity), hide_index=True, width="stretch")
st.dataframe(pd.DataFrame(fidelity), hide_index=True, width="stretch")


def spectra_figure() -> go.Figure:
    figure = go.Figure()
    for name, values in [(reference, summary["reference_scores"]["spectrum"]),
                         *[(n, s["spectrum"]) for n, s in summary["sets"].items()]]:
        figure.add_trace(go.Scatter(x=np.arange(1, len(values) + 1), y=values, mode="lines+markers", name=name,
                                    marker={"size": 4}))
    figure.update_layout(height=300, margin={"l": 0, "r": 0, "t": 10, "b": 0}, xaxis={"title": "mode"},
                         yaxis={"type": "log", "title": "eigenvalue (equal n)"},
                         legend={"orientation": "h", "y": 1.1})
    return figure


# built once per comparison: plotly's validation made building it a tenth of a rerun's CPU (py-spy)
spectra = memoized(("spectra-figure", *made_under), spectra_figure)
st.plotly_chart(spectra, width="stretch", key="spectra")
prompt_section(state, reference)  # generations with a prompt column: diversity within and across prompts

picked = st.selectbox("Look closer at", sets, key="compare_set")
s = summary["sets"][picked]
ids = items["id"].to_numpy()

st.subheader(f"Classes of {picked}")
classes = pd.DataFrame([c for c in summary["classes"] if c["set"] == picked])
floor = summary["diagnostics"]["collapsed"]["floor"]  # the comparison's collapse_floor, as it ran
st.caption(f"Classes by {summary['class_basis']}. A class is flagged collapsed when its share or its Vendi "
           f"score falls below {floor:g} × the reference's.")
class_columns = ["class", "n_reference", "n", "reference_share", "share", "share_ratio", "vs_reference", "vs",
                 "vs_ratio", "collapsed", "reason"]
st.dataframe(readable(classes[class_columns].round(3)), hide_index=True)

st.subheader("Regions")
regions = pd.DataFrame(summary["regions"])
status = regions[f"status:{picked}"].to_numpy()
st.markdown(f"Under-represented by {picked}: **{', '.join(s['underrepresented']) or 'none'}** "
            f"({s['underrepresented_share']:.1%} of the reference) · over-represented: "
            f"**{', '.join(s['overrepresented']) or 'none'}**")
masks = masks_of(made_under, table)
none = np.zeros(len(table), dtype=bool)
under, over = masks.get(f"underrepresented[{picked}]", none), masks.get("overrepresented", none)
in_view = items["set"].isin([reference, picked]).to_numpy()
xy = state.coords[state.mask]
is_ref, is_set = (items["set"] == reference).to_numpy(), (items["set"] == picked).to_numpy()
kinds = [("reference", is_ref & ~under, NEUTRAL),
         (f"reference, under-represented by {picked}", is_ref & under, "#d62728"),
         (picked, is_set & ~over, "#1f77b4"), (f"{picked}, over-represented", is_set & over, "#ff7f0e")]
code = np.zeros(len(items), dtype=np.uint16)
for k, (_, where, _) in enumerate(kinds):  # split by the diagnostics' own flags
    code[where] = k
shown = np.flatnonzero(in_view)
texts = memoized(("hover-texts", state.source, state.embedder.cache_key(), tuple(state.chosen)),
                 lambda: hover_texts(items))


@st.fragment
def regions_map() -> None:  # a hover card or a click reruns this part only
    inspect_map(xy[shown], items, shown, key="regions_map", name="compare", categories=code[shown],
                names=[k[0] for k in kinds], palette=[k[2] for k in kinds], texts=[texts[i] for i in shown],
                title="regions", height=480)
    st.caption(f"Map: {state.map_note}.")
    opened_item(state, items, shown, name="compare", diagnostics=table)  # its diagnostics against the reference


regions_map()
st.dataframe(regions[["region", "n_reference", "reference_share", f"share:{picked}", f"ratio:{picked}",
                      f"status:{picked}"]].round(3), hide_index=True)
flagged_regions = [r for r, st_ in zip(regions["region"], status) if st_]
if flagged_regions:
    region = st.selectbox("Items of region", flagged_regions, key="compare_region")
    members = np.flatnonzero((table["region"] == region).to_numpy() & in_view)
    st.caption(f"{plural(len(members), 'item')} of {reference} and {picked} in {region}; showing up to 24")
    item_grid(items.iloc[members[:24]])

st.subheader("Novel and missing modes")
left, right = st.columns(2)
for column, key, title in [(left, "novel_modes", f"What {picked} has more of than {reference}"),
                           (right, "missing_modes", f"What {reference} has more of than {picked}")]:
    column.markdown(f"**{title}**")
    with column:
        if not s[key]:
            st.caption("No mode above the weight floor.")
        for mode in s[key][:3]:
            st.caption(f"mode {mode['mode'] + 1} · weight {mode['weight']:.3f}")
            item_grid(rows_of(state, mode["top"]), width=56)

st.subheader("Memorised samples")
mem = table["memorized"].to_numpy()
copies = np.flatnonzero((items["set"] == picked).to_numpy() & masks.get("memorized", none))
st.caption(f"{s['memorized_share']:.1%} of {picked} is at cosine ≥ {s['copy_threshold']:.4f} from a reference item.")
if len(copies):
    item_grid(items.iloc[copies[np.argsort(-mem[copies])][:24]])

st.subheader("Diagnostics")
st.caption("Each diagnostic scores every item it applies to in [0, 1] and flags some with a reason. Colour and "
           "filter by them on the Explore page; flag them here to keep them with the dataset.")
flags = FlagStore.for_dataset(state.dataset.source)
diag_rows = [{"diagnostic": name, "what": describe(name), "items": d["items"],
              "flagged": d["flagged"]} for name, d in summary["diagnostics"].items()]
st.dataframe(pd.DataFrame(diag_rows), hide_index=True)
name = st.selectbox("Diagnostic", [r["diagnostic"] for r in diag_rows if r["flagged"]] or ["—"], key="diag_pick")
if name != "—":
    reasons = reasons_by_item(made_under, table, name)
    example = next(iter(reasons.values()))[0]
    st.caption(f"{plural(len(reasons), 'item')} flagged by {name}, e.g. “{example}”")
    these = "Flag this item" if len(reasons) == 1 else f"Flag these {len(reasons):,} items"
    if st.button(these, icon=":material/flag:", key="flag_diag"):
        st.toast(flagged_message(flag_with_reasons(flags, table, name), len(reasons)), icon=":material/flag:")

download_buttons(lambda: export_table(items, reasons=flags.reasons(), scores=table.drop(columns=["id"])),
                 label="Diagnostics", stem="diagnostics", key="diag_download")
