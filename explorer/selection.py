"""Turning a box or lasso drawn on the 2-D map into item indices, for every item rather than only
the points drawn (the map may show a sample of a large dataset)."""
from __future__ import annotations

import numpy as np


def in_box(xy: np.ndarray, *, x: tuple[float, float], y: tuple[float, float]) -> np.ndarray:
    """Mask of points inside the axis-aligned box.

    >>> in_box(np.array([[0, 0], [2, 2]]), x=(-1, 1), y=(-1, 1)).tolist()
    [True, False]
    """
    (x0, x1), (y0, y1) = sorted(x), sorted(y)
    return (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)


def in_polygon(xy: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Mask of points inside a polygon (even-odd rule, vectorised over points).

    >>> square = np.array([[0, 0], [2, 0], [2, 2], [0, 2]])
    >>> in_polygon(np.array([[1, 1], [3, 1]]), square).tolist()
    [True, False]
    """
    px, py = xy[:, 0], xy[:, 1]
    inside = np.zeros(len(xy), dtype=bool)
    poly = np.asarray(polygon, dtype=np.float64)
    for (x0, y0), (x1, y1) in zip(poly, np.roll(poly, -1, axis=0)):
        crosses = (y0 > py) != (y1 > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x0 + (py - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (px < x_at)
    return inside


def selection_mask(xy: np.ndarray, selection: dict) -> np.ndarray | None:
    """Items inside the boxes and lassos of a Streamlit plotly selection (None if there are none)."""
    mask = None
    for box in selection.get("box", []) or []:
        m = in_box(xy, x=tuple(box["x"]), y=tuple(box["y"]))
        mask = m if mask is None else mask | m
    for lasso in selection.get("lasso", []) or []:
        m = in_polygon(xy, np.column_stack([lasso["x"], lasso["y"]]))
        mask = m if mask is None else mask | m
    return mask


def summarize_selection(x: np.ndarray, xy: np.ndarray, selection: dict, *, rank_by: np.ndarray,
                        q=(0.1, 0.5, 1.0, 2.0, float("inf")), top: int = 24) -> dict:
    """What a map selection shows: the indices inside the drawn areas, their Vendi scores and the
    ``top`` items by ``rank_by`` (descending). The work is one pass over the selected rows.

    >>> xy = np.array([[0.0, 0], [1, 1], [5, 5]])
    >>> s = summarize_selection(np.eye(3), xy, {"box": [{"x": [-1, 2], "y": [-1, 2]}]}, rank_by=np.arange(3.0))
    >>> s["indices"].tolist(), round(s["scores"][1.0], 6), s["top"].tolist()
    ([0, 1], 2.0, [1, 0])
    """
    from explorer.diversity import vendi_scores

    mask = selection_mask(xy, selection)
    indices = np.flatnonzero(mask) if mask is not None else np.arange(len(xy))
    scores = vendi_scores(x[indices], q=q).scores if len(indices) >= 2 else {}
    keys = rank_by[indices]
    k = min(top, len(indices))
    part = np.argpartition(-keys, k - 1)[:k] if 0 < k < len(indices) else np.arange(len(indices))
    order = part[np.argsort(-keys[part], kind="stable")]
    return {"indices": indices, "scores": scores, "top": indices[order]}
