"""Vendi scores per group (set, label, cluster), and at equal n: scores grow with the number of
items, so groups of different sizes are compared on random subsets of one common size."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from explorer.data.arrays import normalize_rows
from explorer.metrics.covariance import cosine_spectrum
from explorer.metrics.spectrum import DEFAULT_ORDERS, default_rtol, hill_number, order_label
from explorer.store.cache import cached, hash_key


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
    labels = pd.Series(list(groups), dtype="object").fillna("(none)").astype(str)
    if len(labels) != len(embeddings):
        raise ValueError(f"{len(labels)} group labels for {len(embeddings)} rows")
    rows = []
    for name, index in sorted(labels.groupby(labels).indices.items()):
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
    key = hash_key("group_scores", 1, [order_label(o) for o in q], groups, x)
    records = cached("scores", key, lambda: group_scores(x, groups, q=q).to_dict("records"), root=cache_dir)
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
    draws = bootstrap_draws(groups, n=n, n_boot=n_boot, seed=seed, n_rows=len(embeddings))
    scores = {name: subset_scores(embeddings, subsets, q=q) for name, subsets in draws.items()}
    return draws_table(draws, scores, sizes=pd.Series([str(g) for g in groups]).value_counts().to_dict(), q=q,
                       level=level)


def bootstrap_draws(groups: Sequence, *, n: int | None = None, n_boot: int = 50, seed: int = 0,
                    n_rows: int | None = None) -> dict[str, list[np.ndarray]]:
    """The random subsets :func:`bootstrap_scores` scores: for each group (sorted by name), the
    sorted row indices of each of its draws (one draw, the whole group, when it has exactly ``n``
    items). Drawn in one sequence, so they are the same wherever the subsets are then scored.

    >>> d = bootstrap_draws(["a"] * 3 + ["b"] * 2, n_boot=4)
    >>> {g: [s.tolist() for s in subsets] for g, subsets in d.items()}["b"]
    [[3, 4]]
    """
    labels = pd.Series([str(g) for g in groups])
    if n_rows is not None and len(labels) != n_rows:
        raise ValueError(f"{len(labels)} group labels for {n_rows} rows")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    index = labels.groupby(labels).indices
    size = n or min(len(i) for i in index.values())
    if size < 2:
        raise ValueError("equal-n comparison needs at least 2 items per group")
    rng = np.random.default_rng(seed)
    draws = {}
    for name, idx in sorted(index.items()):
        if len(idx) < size:
            raise ValueError(f"group {name!r} has {len(idx)} items, fewer than n = {size}")
        draws[name] = [idx[np.sort(rng.choice(len(idx), size, replace=False))]
                       for _ in range(n_boot if len(idx) > size else 1)]
    return draws


def subset_scores(embeddings: np.ndarray, subsets: list[np.ndarray], *, q: Sequence[float]) -> np.ndarray:
    """Vendi scores (cosine) of each subset of rows: one row per subset, one column per order.

    >>> subset_scores(np.eye(3), [np.array([0, 1]), np.array([0, 0])], q=[1.0]).ravel().round(6).tolist()
    [2.0, 1.0]
    """
    dims = embeddings.shape[1]
    scores = []
    for rows in subsets:
        size = len(rows)
        # only the subset is normalised (float64), never a copy of all the embeddings; its own
        # n x n Gram or d x d covariance, whichever is smaller: O(min(n, d)²) memory a subset,
        # never the whole group's Gram (a 100k-item group would need 80 GB)
        sub = normalize_rows(embeddings[rows])
        values = np.linalg.eigvalsh(sub @ sub.T / size if size < dims else sub.T @ sub / size)
        kept = values[values >= default_rtol(np.float64, values.size) * values.max()]
        scores.append([hill_number(kept, o) for o in q])
    return np.array(scores)


def draws_table(draws: dict[str, list[np.ndarray]], scores: dict[str, np.ndarray], *, sizes: dict[str, int],
                q: Sequence[float], level: float = 0.95) -> pd.DataFrame:
    """The :func:`bootstrap_scores` table from the draws, their scores and the groups' ``sizes``:
    per group, the mean score and a percentile interval."""
    cols = score_columns(q)
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    rows = []
    for name, subsets in draws.items():
        values = scores[name]
        row = {"group": name, "n": len(subsets[0]), "n_total": int(sizes[name]), "draws": len(values)}
        for j, col in enumerate(cols):
            row[col] = float(values[:, j].mean())
            row[f"{col}_lo"], row[f"{col}_hi"] = (float(v) for v in np.percentile(values[:, j], [lo, hi]))
        rows.append(row)
    return pd.DataFrame(rows)


def cached_bootstrap_scores(
    embeddings: np.ndarray, groups: Sequence, *, q: Sequence[float] = DEFAULT_ORDERS, n: int | None = None,
    n_boot: int = 30, seed: int = 0, cache_dir=None,
) -> pd.DataFrame:
    """:func:`bootstrap_scores`, stored on disk by a hash of the embeddings, groups and parameters."""
    groups = [str(g) for g in groups]
    x = np.ascontiguousarray(embeddings)
    key = hash_key("bootstrap", 1, [order_label(o) for o in q], n, n_boot, seed, groups, x)
    records = cached("bootstrap", key, lambda: bootstrap_scores(x, groups, q=q, n=n, n_boot=n_boot, seed=seed)
                     .to_dict("records"), root=cache_dir)
    return pd.DataFrame(records)


def interval_text(mean: float, low: float, high: float, *, draws: int) -> str:
    """An equal-n score as people read it: ``2.31 [2.25, 2.38]``, or, when the common size is the
    whole group (a single draw), ``2.31 (whole set, no interval)``.

    >>> interval_text(2.3111, 2.25, 2.38, draws=30), interval_text(471.76, 471.76, 471.76, draws=1)
    ('2.31 [2.25, 2.38]', '471.76 (whole set, no interval)')
    """
    if draws <= 1:
        return f"{mean:.2f} (whole set, no interval)"
    return f"{mean:.2f} [{low:.2f}, {high:.2f}]"
