"""An item up close: what hovering a point shows, and the panel a click opens (the item large,
its metadata, contributions, diagnostics and nearest neighbours)."""
from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import streamlit as st

from explorer.maps.selection import nearest_items
from explorer.store.thumbnails import thumbnail_file
from pages._common import PageState, item_grid, readable

CARD_PIXELS = 128


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
               diagnostics: pd.DataFrame | None) -> None:
    """The opened item (position ``i`` in ``table``): large, with everything known about it."""
    item = table.iloc[i]
    st.subheader(f"Item {item['id']}")
    left, right = st.columns([1, 2])
    with left:
        if isinstance(item.get("path"), str) and item["path"]:
            st.image(str(thumbnail_file(item["path"], size=320, digest=item.get("digest"))), width=320)
        elif isinstance(item.get("text"), str):
            st.markdown(f"> {item['text']}")
        if st.button("Close", key="explore_close", icon=":material/close:"):
            st.session_state.pop("explore_item", None)
            st.rerun(scope="fragment")
    with right:
        fields = {k: v for k, v in item.to_dict().items() if k not in ("entropy", "crowdedness", "loo_delta")}
        fields |= {c: v[i] for c, v in derived.items() if not isinstance(v[i], float) or v[i] == v[i]}
        st.dataframe(readable(pd.DataFrame({"field": list(fields), "value": list(fields.values())}).astype(str)),
                     hide_index=True)
        st.markdown(f"**Contribution** h_i {item['entropy']:.3f} (mean log VS₁ {np.mean(table['entropy']):.3f}) · "
                    f"crowdedness {item['crowdedness']:.4f} · leave-one-out ΔVS₁ {item['loo_delta']:+.4f}")
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
