"""Which queries lie inside at least one of many balls of different radii (PRDC's recall: is a
reference item inside any sample's k-NN ball), without listing the pairs.

Listing the pairs by growing each ball's k-NN list until it passes the radius costs what the
balls hold, and a sparse sample set's balls hold many reference items: at 1M reference items
against 200k samples that search had not finished after 42 min, most of its lists past a
thousand neighbours. The question per query is only a maximum, so it is asked as one:

1. each query's ``known`` nearest centres (a search made anyway) settle most queries, and lists
   four times as long settle many of the few left that some ball could still hold;
2. a query not inside any of those can only be inside a ball wider than its distance to the
   farthest of them, so only those balls are searched (exact when the known lists are; from an
   HNSW search, a true neighbour it missed is left out with its ball: measured, a handful of
   queries in 5,000 even when every list misses one, none with real HNSW lists at recall 0.99);
3. |q − c_j|² ≤ r_j² is a nearest-neighbour question in lifted rows: with t_j = 1 − r_j²/2,
   q' = [q, −1, 0] and c'_j = [c_j, t_j, √(1 − t_j²)] have |q' − c'_j|² = |q − c_j|² − r_j² + 4,
   so the ball a query is deepest inside is its nearest c'_j: a 1-NN search on the neighbour
   backend. Up to BALL_WORK query x ball pairs the test is exact instead (blocked matrix
   products); the ball found is checked with the original rows, so an approximate search can
   miss a ball but never invent one.

Measured on 3,000 balls and 6,000 queries (160-d) with every query left to step 3: HNSW at
efSearch 64 agrees with every pair on 99.0% of queries (recall@1 0.82: all lifted rows lie at
similar distances from a query, the hard case of graph search), at 256 on 99.6%, at 1,024 on
99.98% for 9x the time. Step 3 uses 256 and is left only the queries steps 1 and 2 cannot settle.
"""
from __future__ import annotations

import numpy as np

from explorer.neighbors.exact import distance_blocks
from explorer.neighbors.index import NeighborIndex

CHUNK = 16_384  # queries lifted at a time: the lifted copy of all of them would double their memory
CHECKED = 1000  # lifted-search verdicts checked against an exact test
LIFTED_EF = 256  # efSearch of the lifted search (the module docstring says why)
LONGER = 4  # the open queries' known lists are lengthened this many times, once
# query x ball distances tested exactly in one call, at most: ~10 s at 256-d on 2 cores (106M a
# second measured). The lifted search is the fallback beyond: at 300k reference items against
# 100k samples its verdict matched an exact test on only 73% of the 3,403 queries left open
BALL_WORK = 1_000_000_000


def inside_any_ball(queries: np.ndarray, centres: np.ndarray, radii: np.ndarray, *,
                    known: tuple[np.ndarray, np.ndarray] | None = None, index: NeighborIndex | None = None,
                    method: str = "auto") -> tuple[np.ndarray, dict]:
    """Whether each unit-row query lies within ``radii[j]`` of some unit-row ``centres[j]``,
    and how that was found. ``known``: (indices, distances) of each query's nearest centres;
    ``index``: the centres' index, to lengthen the lists of the queries they leave open.

    >>> c = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    >>> q = np.array([[0.8, 0.6], [0.6, 0.8], [-1.0, 0.0]], dtype=np.float32)
    >>> inside, how = inside_any_ball(q, c, np.array([0.7, 0.65]))
    >>> inside.tolist(), how["settled by the known neighbours"]
    ([True, True, False], 0)
    """
    radii2 = np.asarray(radii, dtype=np.float64) ** 2
    inside = np.zeros(len(queries), dtype=bool)
    farthest = np.zeros(len(queries))

    def settle(rows: np.ndarray, idx: np.ndarray, dist: np.ndarray) -> None:
        valid = idx >= 0
        d2 = dist.astype(np.float64) ** 2
        inside[rows] = (valid & (d2 <= radii2[np.where(valid, idx, 0)])).any(axis=1)
        farthest[rows] = np.where(valid.all(axis=1), d2.max(axis=1), 0.0)  # a short list bounds nothing

    how: dict = {"queries": len(queries), "balls": len(centres), "settled by the known neighbours": 0}
    if known is not None:
        settle(np.arange(len(queries)), *known)
        how["settled by the known neighbours"] = int(inside.sum())
        k = known[0].shape[1]
        # those left that some ball could still hold (not an item far from every sample): lists
        # 4x as long settle many of them, and raise the bound of the rest, so that fewer balls
        # are wide enough to matter
        open_rows = np.flatnonzero(~inside & (farthest <= radii2.max()))
        if index is not None and len(open_rows) and k < len(centres):
            settle(open_rows, *index.search(queries[open_rows], k=min(len(centres), LONGER * k)))
            how["settled by longer lists"] = int(inside[open_rows].sum())
    # open queries farthest from their known centres first: they need only the few widest balls
    # (an item of a class the samples lack: its exact test against those is cheap), and each next
    # chunk needs a superset of the balls of the one before
    open_rows = np.flatnonzero(~inside)
    open_rows = open_rows[np.argsort(-farthest[open_rows], kind="stable")]
    order = np.argsort(-radii2, kind="stable")
    how.update({"left": len(open_rows), "no ball wide enough": 0, "tested exactly": 0, "searched": 0})
    lifted, kept, report, widest, spent = None, np.empty(0, dtype=np.int64), None, 0, 0

    def wider_than(threshold: float) -> np.ndarray:  # the balls of squared radius >= threshold
        return order[: int(np.searchsorted(-radii2[order], -threshold, side="right"))]

    for start in range(0, len(open_rows), CHUNK):
        rows = open_rows[start : start + CHUNK]
        # beyond its known centres a query can only be inside a ball wider than the farthest of them
        wide = wider_than(farthest[rows].min())
        if not len(wide):
            how["no ball wide enough"] += len(rows)
            continue
        widest = max(widest, len(wide))
        if spent + len(rows) * len(wide) <= BALL_WORK or method == "exact":
            spent += len(rows) * len(wide)
            r2 = radii2[wide][None, :]
            for block, d2 in distance_blocks(queries[rows], centres[wide]):
                inside[rows[block]] = (d2 <= r2).any(axis=1)
            how["tested exactly"] += len(rows)
            continue
        if lifted is None or len(wide) > len(kept):
            # the later chunks need more balls: the index over at least twice as many, so that it
            # is made a few times at most, and never over more balls than the chunk needs by far
            # (the fewer the balls, the better the graph search finds the deepest)
            kept = order[: min(len(order), max(len(wide), 2 * len(kept)))]
            lifted = _lifted_index(centres, radii2, kept, method=method, n_queries=len(open_rows) - start)
        best, _ = lifted.search(_lift(queries[rows], -1.0, 0.0), k=1)
        lifted.recall_sample = 0  # measured on the first chunk searched in this index only
        ball = kept[best[:, 0]]
        for at in range(0, len(rows), 4096):  # checked on the original rows, in float64
            part = slice(at, at + 4096)
            diff = queries[rows[part]].astype(np.float64) - centres[ball[part]]
            inside[rows[part]] = np.einsum("ij,ij->i", diff, diff) <= radii2[ball[part]]
        how["searched"] += len(rows)
        if report is None:  # what counts is the verdict, not the deepest ball: check it on a sample
            report = lifted.report_
            sample = rows[np.random.default_rng(0).choice(len(rows), min(len(rows), CHECKED), replace=False)]
            truth = np.zeros(len(sample), dtype=bool)
            for block, d2 in distance_blocks(queries[sample], centres[kept]):
                truth[block] = (d2 <= radii2[kept][None, :]).any(axis=1)
            how["checked"] = len(sample)
            how["verdicts as exact"] = float((truth == inside[sample]).mean())
    how["balls searched"] = widest
    if report is not None:
        how["search"] = (report.describe() + " (the ball each query is deepest inside, in the lifted rows); inside or "
                         f"not as an exact test says for {how['verdicts as exact']:.1%} of {how['checked']:,} "
                         "queries sampled")
    return inside, how


def _lift(rows: np.ndarray, a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    out = np.empty((len(rows), rows.shape[1] + 2), dtype=np.float32)
    out[:, :-2], out[:, -2], out[:, -1] = rows, a, b
    return out


def _lifted_index(centres: np.ndarray, radii2: np.ndarray, wide: np.ndarray, *, method: str,
                  n_queries: int) -> NeighborIndex:
    t = np.clip(1.0 - radii2[wide] / 2.0, -1.0, 1.0)  # a radius of 2 or more holds the whole sphere
    return NeighborIndex(method=method, n_queries_hint=n_queries, ef_search=LIFTED_EF).fit(
        _lift(centres[wide], t, np.sqrt(1.0 - t * t)))
