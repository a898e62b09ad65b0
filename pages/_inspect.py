"""An item up close: what hovering a point shows, and the panel a click opens (the item large,
its metadata, contributions, diagnostics and nearest neighbours)."""
from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from explorer.maps.selection import nearest_items
from explorer.store.thumbnails import thumbnail_file
from pages._common import PageState, item_grid, memoized, readable
from pages._map import MapEvents, draw_map

CARD_PIXELS = 128
# Per-item numbers of the analysis (pages._common.analysis_of), as columns of the scored table.
CONTRIBUTIONS = ("entropy", "crowdedness", "loo_delta")


def rerun_part() -> None:
    """Rerun the fragment that is running. Streamlit refuses that during a full run of the page
    (a page load, a change outside the fragment; AppTest always runs the whole page): then the
    page is rerun."""
    try:
        st.rerun(scope="fragment")
    except StreamlitAPIException:
        st.rerun()


def scored_table(state: PageState, analysis: dict) -> pd.DataFrame:
    """The chosen sets' items (rows follow ``state.items[state.mask]``) with their contributions;
    made once and shared by the pages: never modify it."""
    def make() -> pd.DataFrame:
        table = state.items[state.mask].reset_index(drop=True)
        for column in CONTRIBUTIONS:
            table[column] = np.asarray(analysis[column], dtype=np.float64)
        return table

    return memoized(("scored-table", *state.key), make)  # the contributions depend on the kernel


def inspect_map(xy: np.ndarray, table: pd.DataFrame, rows: np.ndarray, *, key: str, name: str,
                **draw_args) -> MapEvents:
    """``draw_map`` of the items at ``rows`` of ``table`` (one point each, in that order) with
    hover cards and clicks: the card of the point the pointer rests on is sent on a fragment
    rerun, and a click keeps the item's id for :func:`opened_item` under ``name``. Call it inside
    a fragment."""
    hovered = st.session_state.get(f"{name}_hover")
    card = hover_card(table, rows, hovered) if hovered is not None else None
    events = draw_map(xy, key=key, hover_card=card, **draw_args)
    if events.hover != hovered:
        st.session_state[f"{name}_hover"] = events.hover
        if events.hover is not None:
            rerun_part()  # send the card for the point the pointer rests on
    if events.click is not None:
        st.session_state[f"{name}_item"] = str(table["id"].iloc[int(rows[events.click])])
    return events


def opened_item(state: PageState, table: pd.DataFrame, rows: np.ndarray, *, name: str, derived: dict | None = None,
                diagnostics: pd.DataFrame | None = None) -> None:
    """The panel of the item last clicked on the map ``name``, when it is among ``rows``."""
    opened = st.session_state.get(f"{name}_item")
    if opened is None:
        return
    at = np.flatnonzero(table["id"].to_numpy()[rows] == opened)
    if len(at):
        item_panel(state, table, int(rows[at[0]]), rows=rows, derived=derived or {}, diagnostics=diagnostics,
                   name=name)


def hover_texts(table: pd.DataFrame) -> list[str]:
    """One short line per item for the map's tooltip: a text's first words, else set · label · id."""
    if "text" in table.columns:
        return [" ".join(str(t).split()[:14]) + ("…" if len(str(t).split()) > 14 else "") for t in table["text"]]
    labels = table["label"].fillna("").astype(str)
    return [f"{s} · {lab} · {i}" if lab else f"{s} · {i}" for s, lab, i in zip(table["set"], labels, table["id"])]


def hover_card(table: pd.DataFrame, rows: np.ndarray, hovered: int) -> dict | None:
    """The card for map point ``hovered`` (a position in ``rows``): the item's thumbnail as a
    data URL for images, the start of the text for texts."""
    if hovered < 0 or hovered >= len(rows):
        return None
    item = table.iloc[int(rows[hovered])]
    card: dict = {"index": int(hovered), "img": None, "text": str(item["id"])}
    if isinstance(item.get("path"), str) and item["path"]:
        data = thumbnail_file(item["path"], size=CARD_PIXELS, digest=item.get("digest")).read_bytes()
        card["img"] = "data:image/jpeg;base64," + base64.b64encode(data).decode()
    elif isinstance(item.get("text"), str):
        card["text"] = item["text"][:300]
    return card


def item_panel(state: PageState, table: pd.DataFrame, i: int, *, rows: np.ndarray, derived: dict,
               diagnostics: pd.DataFrame | None, name: str = "explore") -> None:
    """The opened item (position ``i`` in ``table``): large, with everything known about it (its
    contributions when ``table`` has them)."""
    item = table.iloc[i]
    st.subheader(f"Item {item['id']}")
    left, right = st.columns([1, 2])
    with left:
        if isinstance(item.get("path"), str) and item["path"]:
            st.image(str(thumbnail_file(item["path"], size=320, digest=item.get("digest"))), width=320,
                     output_format="JPEG")
        elif isinstance(item.get("text"), str):
            st.markdown(f"> {item['text']}")
        if st.button("Close", key=f"{name}_close", icon=":material/close:"):
            st.session_state.pop(f"{name}_item", None)
            rerun_part()
    with right:
        fields = {k: v for k, v in item.to_dict().items() if k not in CONTRIBUTIONS}
        fields |= {c: v[i] for c, v in derived.items() if not isinstance(v[i], float) or v[i] == v[i]}
        st.dataframe(readable(pd.DataFrame({"field": list(fields), "value": list(fields.values())}).astype(str)),
                     hide_index=True)
        if "entropy" in table.columns:
            st.markdown(f"**Contribution** h_i {item['entropy']:.3f} (mean log VS₁ {np.mean(table['entropy']):.3f})"
                        f" · crowdedness {item['crowdedness']:.4f} · leave-one-out ΔVS₁ {item['loo_delta']:+.4f}",
                        help=f"Under the sidebar's kernel ({state.kernel}); nearest neighbours below use the "
                             "plain cosine")
        if diagnostics is not None:
            row = diagnostics.iloc[i]
            scored = {c: row[c] for c in diagnostics.columns if c not in ("id", "region", "flags", "reasons")
                      and row[c] == row[c]}
            if scored:
                st.markdown("**Diagnostics** " + " · ".join(f"{c} {v:.2f}" for c, v in scored.items()))
            for reason in row["reasons"]:
                st.caption(f"{reason['diagnostic']}: {reason['reason']}")
    to_row = np.flatnonzero(state.mask)  # table position -> embedding row
    near_rows, sims = nearest_items(state.result.embeddings, int(to_row[i]), among=to_row[rows], k=8)
    st.markdown("**Nearest neighbours** (cosine similarity)")
    item_grid(table.iloc[np.searchsorted(to_row, near_rows)].assign(similarity=sims), extra=["similarity"])
