"""Dataset-level summaries built from the metric core: Vendi scores per group (set, label...)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from explorer.storage import hash_key, json_memo
from explorer.vendi import DEFAULT_ORDERS, cosine_spectrum, order_label


def score_columns(q: Sequence[float] = DEFAULT_ORDERS) -> list[str]:
    """Column names of the scores table: ``VS_0.1``, ``VS_1``, ``VS_inf``..."""
    return [f"VS_{order_label(o)}" for o in q]


def group_scores(
    embeddings: np.ndarray, groups: Sequence, *, q: Sequence[float] = DEFAULT_ORDERS,
) -> pd.DataFrame:
    """Vendi scores (cosine kernel) of each group of rows, one row per group, sorted by name.

    >>> x = np.vstack([np.eye(4), np.tile(np.eye(4)[:1], (4, 1))])
    >>> group_scores(x, ["a"] * 4 + ["b"] * 4)[["group", "n", "VS_1"]].round(6).values.tolist()
    [['a', 4, 4.0], ['b', 4, 1.0]]
    """
    groups = pd.Series(list(groups), dtype="object").fillna("(none)").astype(str)
    if len(groups) != len(embeddings):
        raise ValueError(f"{len(groups)} group labels for {len(embeddings)} rows")
    rows = []
    for name, index in sorted(groups.groupby(groups).indices.items()):
        spectrum = cosine_spectrum(embeddings[index])
        scores = spectrum.vendi(q)
        rows.append({"group": name, "n": len(index), "rank": spectrum.rank,
                     **{col: scores[o] for col, o in zip(score_columns(q), scores)}})
    return pd.DataFrame(rows)


def cached_group_scores(
    embeddings: np.ndarray, groups: Sequence, *, q: Sequence[float] = DEFAULT_ORDERS, cache_dir=None,
) -> pd.DataFrame:
    """:func:`group_scores`, stored on disk by a hash of the embeddings, groups and orders."""
    groups = [str(g) for g in groups]
    x = np.ascontiguousarray(embeddings)
    key = hash_key("group_scores", 1, [order_label(o) for o in q], groups, str(x.dtype), x.shape, x.tobytes())
    records = json_memo("scores", key, lambda: group_scores(x, groups, q=q).to_dict("records"), root=cache_dir)
    return pd.DataFrame(records)
