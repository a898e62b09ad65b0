"""The map of every point (pages/map.js, a Streamlit component): colours by category or by
value, box and lasso selections answered over every item, clicks (also while lassoing) and hover
cards with the item's thumbnail or first words."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from explorer.maps.packed import PackedPoints, pack_points
from pages._common import NEUTRAL, memoized, set_colours

HERE = Path(__file__).resolve().parent
CATEGORY_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
                    "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5")
MAX_HOVER_TEXTS = 200_000  # above this, a point's text comes with its hover card from the server


@st.cache_resource(show_spinner=False)
def _component():
    return st.components.v2.component("vendiscope_map", js=(HERE / "map.js").read_text(),
                                      css=(HERE / "map.css").read_text())


@st.cache_resource(show_spinner=False)
def _points_component():
    return st.components.v2.component("vendiscope_points", js=(HERE / "points.js").read_text())


@dataclass
class MapEvents:
    selection: dict | None  # {"lasso": [[x, y], ...]} or {"box": [[x0, y0], [x1, y1]]}, in map coordinates
    hover: int | None  # position of the point under the pointer
    click: int | None  # position of a clicked point (this run only)


def draw_map(xy: np.ndarray, *, key: str, categories: np.ndarray | None = None, values: np.ndarray | None = None,
             palette: list[str] | None = None, names: list[str] | None = None, title: str = "",
             texts: list[str] | None = None, hover_card: dict | None = None, height: int = 560) -> MapEvents:
    """Draw every row of ``xy``; ``categories`` (codes into ``names``/``palette``) or ``values``
    (a colour scale) colour them; ``texts`` show on hover; ``hover_card`` ({index, img, text}) is
    the card for the point the pointer rests on."""
    colour: dict = {}
    data: dict = {"height": height, "title": title, "hover_card": hover_card,
                  "view_key": f"{len(xy)}:{float(np.nanmin(xy)) if len(xy) else 0:.6g}:{key}"}
    if values is not None:
        v = np.asarray(values, np.float32)
        finite = v[np.isfinite(v)]
        colour["values"] = v
        data.update(mode="scale", vmin=float(finite.min()) if finite.size else 0.0,
                    vmax=float(finite.max()) if finite.size else 1.0)
    else:
        colour["categories"] = None if categories is None else np.asarray(categories, np.uint16)
        data.update(mode="category", names=list(names or []), palette=list(palette or ["#1f77b4"]))
    packed = packed_points(xy, texts=texts if texts is not None and len(texts) <= MAX_HOVER_TEXTS else None,
                           **colour)
    # the points travel in an element of their own, which stays cached in the browser while the
    # selection and the hover card change (explorer/maps/packed.py)
    data["points"] = packed.digest
    # the selection as the browser last sent it (the component's state is there before the call):
    # the run before's would make the map draw the previous shape when anything else changed too
    current = st.session_state.get(key)
    data["selection"] = current.get("selection") if hasattr(current, "get") else st.session_state.get(f"{key}:shape")
    with st.container(gap=None):  # the points' empty element adds no gap above the map
        _points_component()(key=f"{key}:points", data=packed.blob, height=0)
        result = _component()(key=key, data=data, default={"selection": None, "hover": None}, height=height + 80,
                              on_selection_change=lambda: None, on_hover_change=lambda: None,
                              on_click_change=lambda: None)
    selection = result.get("selection") if hasattr(result, "get") else getattr(result, "selection", None)
    st.session_state[f"{key}:shape"] = selection
    hover = getattr(result, "hover", None)
    click = getattr(result, "click", None)
    return MapEvents(selection, None if hover is None else int(hover), None if click is None else int(click))


def packed_points(xy: np.ndarray, *, texts: list[str] | None, **colour) -> PackedPoints:
    """:func:`pack_points`, once per content: a hover or a lasso reruns the map's fragment with the
    same points (packing the hover texts was 4% of the server's CPU under load, benchmarks/load.py).
    The key is a digest of the arrays (10 ms at 1M) and the texts' tuple hash (Python caches each
    string's hash), checked against the texts themselves on a hit."""
    h = hashlib.blake2b(digest_size=16)
    for part in (xy, colour.get("categories"), colour.get("values")):
        if part is not None:
            h.update(np.ascontiguousarray(part).view(np.uint8).ravel())
            h.update(str(np.asarray(part).dtype).encode())
        h.update(b"|")
    key = ("packed-points", h.hexdigest(), None if texts is None else (len(texts), hash(tuple(texts))))
    packed, kept = memoized(key, lambda: (pack_points(xy, texts=texts, **colour), texts))
    if kept is not None and kept != texts:  # a hash collision of the texts: never another table's points
        return pack_points(xy, texts=texts, **colour)
    return packed


def colour_of(values: np.ndarray, *, scale: bool, sets: list[str] | None = None,
              reference: str | None = None) -> dict:
    """``draw_map``'s colour arguments for one value per point: a colour scale for numbers, else
    categories (sets keep their own colours, the reference grey)."""
    if scale:
        return {"values": np.asarray(values, dtype=np.float64)}
    text = pd.Series(values).fillna("—").astype(str)
    codes, names = pd.factorize(text, sort=True)
    if sets is not None:
        by_set = set_colours(sets, reference=reference)
        palette = [by_set.get(n, NEUTRAL) for n in names]
    else:
        palette = [CATEGORY_COLOURS[k % len(CATEGORY_COLOURS)] for k in range(len(names))]
    return {"categories": codes.astype(np.uint16), "names": list(map(str, names)), "palette": palette}
