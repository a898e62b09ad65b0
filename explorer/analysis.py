"""Dataset-level summaries built from the metric core: Vendi scores per group (set, label...)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from explorer.storage import hash_key, json_memo
from explorer.vendi import DEFAULT_ORDERS, cosine_spectrum, default_rtol, hill_number, order_label


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


def bootstrap_scores(
    embeddings: np.ndarray, groups: Sequence, *, q: Sequence[float] = DEFAULT_ORDERS, n: int | None = None,
    n_boot: int = 50, level: float = 0.95, seed: int = 0,
) -> pd.DataFrame:
    """Scores of each group at an equal size ``n`` (default: the smallest group), from ``n_boot``
    random subsets drawn without replacement: the mean and a percentile confidence interval.

    Scores grow with the number of items, so sets of different sizes are only comparable this way.
    Subsets are drawn without replacement because repeated items would lower the score.

    >>> x = np.vstack([np.eye(8), np.eye(8)[:2].repeat(4, axis=0)])
    >>> t = bootstrap_scores(x, ["a"] * 8 + ["b"] * 8, q=[1.0], n_boot=10)
    >>> t.set_index("group")["VS_1"].round(6).to_dict()
    {'a': 8.0, 'b': 2.0}
    """
    groups = pd.Series([str(g) for g in groups])
    if len(groups) != len(embeddings):
        raise ValueError(f"{len(groups)} group labels for {len(embeddings)} rows")
    index = groups.groupby(groups).indices
    size = n or min(len(i) for i in index.values())
    if size < 2:
        raise ValueError("equal-n comparison needs at least 2 items per group")
    rng = np.random.default_rng(seed)
    xn = np.asarray(embeddings, dtype=np.float64)
    xn = xn / np.linalg.norm(xn, axis=1, keepdims=True)
    cols = score_columns(q)
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    rows = []
    for name, idx in sorted(index.items()):
        if len(idx) < size:
            raise ValueError(f"group {name!r} has {len(idx)} items, fewer than n = {size}")
        # the n x n Gram of a subset is cheaper than the d x d covariance when n < d
        gram = xn[idx] @ xn[idx].T if size < xn.shape[1] else None
        draws = []
        for _ in range(n_boot if len(idx) > size else 1):
            pick = np.sort(rng.choice(len(idx), size, replace=False))
            if gram is not None:
                values = np.linalg.eigvalsh(gram[np.ix_(pick, pick)] / size)
            else:
                values = np.linalg.eigvalsh(xn[idx[pick]].T @ xn[idx[pick]] / size)
            kept = values[values >= default_rtol(np.float64, values.size) * values.max()]
            draws.append([hill_number(kept, o) for o in q])
        draws = np.array(draws)
        row = {"group": name, "n": size, "n_total": len(idx), "draws": len(draws)}
        for j, col in enumerate(cols):
            row[col] = float(draws[:, j].mean())
            row[f"{col}_lo"], row[f"{col}_hi"] = (float(v) for v in np.percentile(draws[:, j], [lo, hi]))
        rows.append(row)
    return pd.DataFrame(rows)


def kmeans_labels(embeddings: np.ndarray, *, k: int, seed: int = 0) -> np.ndarray:
    """Cluster ids (``"c0"``, ``"c1"``...) from k-means on unit-normalised embeddings, so that
    scores can be compared per cluster.

    >>> kmeans_labels(np.array([[1.0, 0], [2, 0], [0, 1], [0, 3]]), k=2).tolist()
    ['c0', 'c0', 'c1', 'c1']
    """
    from sklearn.cluster import KMeans

    x = np.asarray(embeddings, dtype=np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    ids = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(x)
    # number clusters by first appearance so names do not depend on k-means' internal order
    _, first = np.unique(ids, return_index=True)
    rank = {c: r for r, c in enumerate(ids[np.sort(first)])}
    return np.array([f"c{rank[c]}" for c in ids])


def cached_analysis(embeddings: np.ndarray, *, n_modes: int = 10, top_items: int = 12, cache_dir=None) -> dict:
    """Spectrum (eigenvalues, cumulative mass), modes with their top items (row indices into
    ``embeddings``) and per-item contributions of the cosine kernel, stored on disk by content.

    >>> a = cached_analysis(np.eye(3))
    >>> len(a["eigenvalues"]), round(sum(a["entropy"]) / 3, 6) == round(float(np.log(3)), 6)
    (3, True)
    """
    from explorer.diversity import VendiAnalysis

    x = np.ascontiguousarray(embeddings)

    def compute() -> dict:
        a = VendiAnalysis(n_modes=n_modes, top_items=top_items, exact_loo=False).fit(x)
        return {"scores": {order_label(q): v for q, v in a.scores_.items()},
                "eigenvalues": a.eigenvalues_.tolist(), "cumulative": a.cumulative_.tolist(),
                "modes": a.modes_, **{c: a.contributions_[c].tolist() for c in a.contributions_.columns}}

    key = hash_key("analysis", 1, n_modes, top_items, str(x.dtype), x.shape, x.tobytes())
    return json_memo("analysis", key, compute, root=cache_dir)
