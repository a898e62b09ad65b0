"""What a user picks on the map: a box or lasso turned into item indices (for every item, not only
the points drawn), a percentile filter, and the nearest neighbours of a clicked item."""
from __future__ import annotations

import numpy as np

from explorer.data.arrays import normalize_rows
from explorer.metrics.subsets import SubsetScorer

SCAN_BLOCK = 65_536  # rows compared with a query at a time (128 MB of 512-d float32)


def in_box(xy: np.ndarray, *, x: tuple[float, float], y: tuple[float, float]) -> np.ndarray:
    """Mask of points inside the axis-aligned box.

    >>> in_box(np.array([[0, 0], [2, 2]]), x=(-1, 1), y=(-1, 1)).tolist()
    [True, False]
    """
    (x0, x1), (y0, y1) = sorted(x), sorted(y)
    return (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)


def in_polygon(xy: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Mask of points inside a polygon (even-odd rule, vectorised over points); only the points
    inside the polygon's bounding box are tested edge by edge, so a small lasso over a million
    points costs little more than one comparison per point.

    >>> square = np.array([[0, 0], [2, 0], [2, 2], [0, 2]])
    >>> in_polygon(np.array([[1, 1], [3, 1]]), square).tolist()
    [True, False]
    """
    poly = np.asarray(polygon, dtype=np.float64)
    out = np.zeros(len(xy), dtype=bool)
    if len(poly) < 3:
        return out
    (x0, y0), (x1, y1) = poly.min(axis=0), poly.max(axis=0)
    near = np.flatnonzero((xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1))
    out[near] = _even_odd(xy[near], poly)
    return out


def _even_odd(xy: np.ndarray, poly: np.ndarray) -> np.ndarray:
    # An edge can only be crossed by the rays of points within its y-span, so with the points
    # sorted by y each edge touches one contiguous run of them: the work is the points times the
    # edges that span them (two for a round lasso), not the points times all edges. Measured on
    # 1M map points, a 64-vertex lasso holding 24% (362k in its bounding box), on a busy machine:
    # 136 ms edge by edge over every point of the box, 68 ms this way (most of it the sort).
    order = np.argsort(xy[:, 1], kind="stable")
    px, py = xy[order, 0], xy[order, 1]
    inside = np.zeros(len(xy), dtype=bool)
    for (x0, y0), (x1, y1) in zip(poly, np.roll(poly, -1, axis=0)):
        if y0 == y1:
            continue  # a horizontal edge is crossed by no ray: (y0 > y) == (y1 > y) for every y
        # crossed where (y0 > y) != (y1 > y), that is min <= y < max
        lo, hi = np.searchsorted(py, [min(y0, y1), max(y0, y1)], side="left")
        if lo == hi:
            continue
        x_at = x0 + (py[lo:hi] - y0) * (x1 - x0) / (y1 - y0)
        inside[lo:hi] ^= px[lo:hi] < x_at
    out = np.empty(len(xy), dtype=bool)
    out[order] = inside
    return out


def shape_mask(xy: np.ndarray, shape: dict | None) -> np.ndarray | None:
    """Items inside a shape drawn on the app's map: ``{"lasso": [[x, y], ...]}`` or
    ``{"box": [[x0, y0], [x1, y1]]}`` (None when there is no shape).

    >>> xy = np.array([[0.0, 0], [1, 1], [5, 5]])
    >>> shape_mask(xy, {"box": [[2, 2], [-1, -1]]}).tolist(), shape_mask(xy, None)
    ([True, True, False], None)
    """
    if not shape:
        return None
    if shape.get("box"):
        (ax, ay), (bx, by) = shape["box"]
        return in_box(xy, x=(ax, bx), y=(ay, by))
    if shape.get("lasso"):
        return in_polygon(xy, np.asarray(shape["lasso"], dtype=np.float64))
    return None


def selection_mask(xy: np.ndarray, selection: dict) -> np.ndarray | None:
    """Items inside the boxes and lassos of a plotly selection (None if there are none)."""
    mask = None
    for box in selection.get("box", []) or []:
        m = in_box(xy, x=tuple(box["x"]), y=tuple(box["y"]))
        mask = m if mask is None else mask | m
    for lasso in selection.get("lasso", []) or []:
        m = in_polygon(xy, np.column_stack([lasso["x"], lasso["y"]]))
        mask = m if mask is None else mask | m
    return mask


def select_points(xy: np.ndarray, selection: dict | None, *, rank_by: np.ndarray, top: int = 24) -> dict:
    """The positions of the points inside the drawn area (a shape from the app's map, or a plotly
    selection; every point without one), the ``top`` of them by ``rank_by`` (descending) and
    every selected position in that order (``ranked``, for paging).

    >>> s = select_points(np.array([[0.0, 0], [1, 1], [5, 5]]), {"box": [[-1, -1], [2, 2]]}, rank_by=np.arange(3.0))
    >>> s["indices"].tolist(), s["top"].tolist()
    ([0, 1], [1, 0])
    """
    plotly = selection is not None and any(isinstance(v, list) and v and isinstance(v[0], dict)
                                           for v in selection.values())
    mask = selection_mask(xy, selection) if plotly and selection is not None else shape_mask(xy, selection)
    indices = np.flatnonzero(mask) if mask is not None else np.arange(len(xy))
    ranked = indices[np.argsort(-rank_by[indices], kind="stable")]
    return {"indices": indices, "top": ranked[:top], "ranked": ranked}


def summarize_selection(xy: np.ndarray, selection: dict | None, *, rank_by: np.ndarray, scorer: SubsetScorer,
                        rows: np.ndarray | None = None, top: int = 24) -> dict:
    """:func:`select_points` and the selection's Vendi scores (``scorer``, fitted on the
    embeddings; ``rows`` are the embedding rows of the points, default 0..n-1). No copy of the
    selected embeddings: a lasso over a million points costs one pass over the smaller of the
    selection and the rest.

    >>> xy = np.array([[0.0, 0], [1, 1], [5, 5]])
    >>> scorer = SubsetScorer().fit(np.eye(3))
    >>> s = summarize_selection(xy, {"box": [[-1, -1], [2, 2]]}, rank_by=np.arange(3.0), scorer=scorer)
    >>> s["indices"].tolist(), round(s["scores"][1.0], 6), s["top"].tolist()
    ([0, 1], 2.0, [1, 0])
    """
    picked = select_points(xy, selection, rank_by=rank_by, top=top)
    rows = np.arange(len(xy)) if rows is None else np.asarray(rows)
    return {**picked, "scores": scorer.scores(rows[picked["indices"]])}


def percentile_mask(values: np.ndarray, *, low: float, high: float) -> np.ndarray:
    """Items whose value lies between its ``low``-th and ``high``-th percentile (inclusive); NaN
    values are outside every range but the full one (0, 100).

    >>> percentile_mask(np.arange(10.0), low=0, high=50).tolist()
    [True, True, True, True, True, False, False, False, False, False]
    """
    values = np.asarray(values, dtype=np.float64)
    if (low, high) == (0, 100):
        return np.ones(len(values), dtype=bool)
    finite = ~np.isnan(values)
    if not finite.any():
        return np.zeros(len(values), dtype=bool)
    lo, hi = np.percentile(values[finite], [low, high])
    return finite & (values >= lo) & (values <= hi)


def nearest_items(x: np.ndarray, item: int, *, among: np.ndarray | None = None,
                  k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``x`` most similar (cosine) to row ``item``, itself excluded, searched among
    the rows ``among`` (default: all); returns their row indices and similarities, nearest first.

    >>> idx, sim = nearest_items(np.array([[1.0, 0], [0.9, 0.1], [0, 1], [1, 0.01]]), 0, k=2)
    >>> idx.tolist(), np.round(sim, 3).tolist()
    ([3, 1], [1.0, 0.994])
    """
    among = np.arange(len(x)) if among is None else np.asarray(among)
    among = among[among != item]
    k = min(k, len(among))
    if k == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    # one query is one exact pass over the rows (the neighbour backend's own choice for a single
    # query); scanned a block at a time, so a million-row map never copies or normalises its rows
    query = normalize_rows(x[item : item + 1], dtype=np.float32)[0]
    sims = np.empty(len(among), dtype=np.float32)
    for start in range(0, len(among), SCAN_BLOCK):
        rows = np.asarray(x[among[start : start + SCAN_BLOCK]], dtype=np.float32)
        norms = np.sqrt(np.einsum("ij,ij->i", rows, rows))
        sims[start : start + len(rows)] = (rows @ query) / np.maximum(norms, 1e-12)
    top = np.argpartition(-sims, k - 1)[:k] if k < len(sims) else np.arange(len(sims))
    top = top[np.lexsort((among[top], -sims[top]))]  # most similar first, ties by row
    return among[top], sims[top].astype(np.float64)


def search_mask(table, query: str, *, columns: list[str] | None = None) -> np.ndarray:
    """Items whose text, id or any metadata column contains ``query`` (case-insensitive; every
    word must appear somewhere in the item).

    >>> import pandas as pd
    >>> t = pd.DataFrame({"id": ["a.png", "b.png"], "text": ["A red bird", None], "label": ["bird", "car"]})
    >>> search_mask(t, "red BIRD").tolist(), search_mask(t, "car b.png").tolist()
    ([True, False], [False, True])
    """
    words = [w.lower() for w in str(query).split() if w]
    if not words:
        return np.ones(len(table), dtype=bool)
    columns = columns or [c for c in table.columns if c not in ("path", "digest", "kind")
                          and (table[c].dtype == object or str(table[c].dtype) in ("string", "str", "category"))]
    # missing values become "" before the text conversion, so "none" or "nan" never match them
    frame = table[columns].astype(object)
    haystack = frame.where(frame.notna(), "").astype(str).agg(" ".join, axis=1).str.lower()
    mask = np.ones(len(table), dtype=bool)
    for word in words:
        mask &= haystack.str.contains(word, regex=False).to_numpy()
    return mask


def range_mask(values, *, low: float, high: float) -> np.ndarray:
    """Items whose number lies in [``low``, ``high``]; missing or non-numeric values are outside.

    >>> range_mask([1, 5, None, "7", "x"], low=2, high=7).tolist()
    [False, True, False, True, False]
    """
    import pandas as pd

    numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return (numbers >= low) & (numbers <= high)


def contains_mask(values, text: str) -> np.ndarray:
    """Items whose value contains ``text`` (case-insensitive, as typed; empty: every item); a
    missing value contains nothing.

    >>> contains_mask(["Red car", None, "bird", float("nan")], "R").tolist()
    [True, False, True, False]
    """
    import pandas as pd

    series = pd.Series(values, dtype=object)
    if not text:
        return np.ones(len(series), dtype=bool)
    found = series.where(series.notna(), "").astype(str).str.lower().str.contains(text.lower(), regex=False)
    return found.to_numpy(dtype=bool) & series.notna().to_numpy()


def filter_kinds(table, *, skip=(), max_values: int = 50) -> dict[str, str]:
    """How each metadata column can be filtered: ``"values"`` (pick among at most ``max_values``
    distinct values), ``"range"`` (numbers with more distinct values) or ``"contains"`` (text
    with more distinct values). Columns in ``skip``, empty ones and unhashable ones are left out.

    >>> import pandas as pd
    >>> t = pd.DataFrame({"label": ["a", "b"] * 40, "size": range(80), "caption": [f"c{i}" for i in range(80)]})
    >>> filter_kinds(t, max_values=50)
    {'label': 'values', 'size': 'range', 'caption': 'contains'}
    """
    import pandas as pd

    kinds: dict[str, str] = {}
    for column in table.columns:
        if column in skip:
            continue
        values = table[column]
        try:
            distinct = values.nunique()
        except TypeError:  # lists or dicts in the cells
            continue
        if distinct == 0:
            continue
        if distinct <= max_values:
            kinds[column] = "values"
        elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            kinds[column] = "range"
        elif values.dtype == object or pd.api.types.is_string_dtype(values):
            kinds[column] = "contains"
    return kinds


def composition(table, rows: np.ndarray, *, by: str) -> dict[str, int]:
    """How many of the items at ``rows`` have each value of column ``by`` (most common first).

    >>> import pandas as pd
    >>> composition(pd.DataFrame({"set": ["a", "b", "a"]}), np.array([0, 2, 1]), by="set")
    {'a': 2, 'b': 1}
    """
    counts = table[by].iloc[rows].fillna("—").astype(str).value_counts()
    return {str(k): int(v) for k, v in counts.items()}
