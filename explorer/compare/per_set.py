"""The parts of a comparison that do not depend on which set is the reference: each set's Vendi
scores at equal n, its spectrum, its exact and near duplicates. Kept on disk under a key that
leaves the reference out, so choosing another reference recomputes only what depends on it."""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from explorer.compare.backend import LOCAL, Backend, rows_spectrum
from explorer.data.arrays import take_rows
from explorer.diagnostics.duplicates import NearDuplicates, exact_duplicates, near_duplicates
from explorer.metrics.equal_n import bootstrap_draws, draws_table, subset_scores
from explorer.metrics.kernel_rows import KernelRowMap
from explorer.neighbors.graph import SetGraphs
from explorer.store.cache import Codec, cached, hash_key


@dataclass
class PerSet:
    """Reference-independent results of a comparison's sets."""

    equal_n: int
    scores: pd.DataFrame  # bootstrap_scores of every set at equal_n
    spectra: dict[str, np.ndarray]  # eigenvalues of a random equal_n subset of each set
    exact: np.ndarray  # row of an earlier identical item of the same set, or -1
    near: dict[str, NearDuplicates]


def per_set_results(x: np.ndarray, sets: np.ndarray, *, q, n_boot: int, seed: int, alpha: float,
                    near_threshold: float | None, keys: list, graphs: SetGraphs | None = None,
                    backend: Backend = LOCAL, kernel_x: np.ndarray | KernelRowMap | None = None) -> PerSet:
    """Compute :class:`PerSet` for embeddings ``x`` (unit rows) whose rows belong to ``sets``;
    scores and spectra are those of the cosine kernel of ``kernel_x`` (the kernel's rows,
    explorer.metrics.kernel_rows; default ``x``), duplicates are found in ``x``;
    ``keys`` are the items' content keys for exact duplicates; ``graphs`` the sets' k-NN graphs
    when already at hand; ``backend`` scores the random subsets. Sets are visited in sorted
    order, so every number is the same whichever set is the reference (and whichever backend)."""
    names = sorted(set(sets.tolist()))
    index = {s: np.flatnonzero(sets == s) for s in names}
    # 80% of the smallest set, so that every set, the smallest too, varies across subsets
    equal_n = max(2, int(0.8 * min(len(i) for i in index.values())))
    # the subsets are drawn here, in one sequence, and scored wherever the backend runs them
    draws = bootstrap_draws(sets.tolist(), n=equal_n, n_boot=n_boot, seed=seed, n_rows=len(x))
    kx = x if kernel_x is None else kernel_x
    drawn = backend.map(subset_scores, [{"subsets": d} for d in draws.values()], shared={"embeddings": kx, "q": q})
    scores = draws_table(draws, dict(zip(draws, drawn)), sizes={s: len(i) for s, i in index.items()}, q=q)
    rng = np.random.default_rng(seed)
    subsets = {s: np.sort(rng.choice(i, equal_n, replace=False)) for s, i in index.items()}
    spectra = dict(zip(subsets, backend.map(rows_spectrum, [{"rows": r} for r in subsets.values()],
                                            shared={"x": kx})))
    exact = np.full(len(x), -1, dtype=np.int64)
    near = {}
    for s, idx in index.items():
        first = exact_duplicates([keys[i] for i in idx])
        exact[idx[first >= 0]] = idx[first[first >= 0]]
        near[s] = near_duplicates(take_rows(x, idx), alpha=alpha, threshold=near_threshold,
                                  neighbors=graphs[s] if graphs is not None else None)
    return PerSet(equal_n, scores, spectra, exact, near)


def _encode(value: PerSet) -> bytes:
    arrays: dict[str, np.ndarray] = {"exact": value.exact}
    meta = {"equal_n": value.equal_n, "scores": value.scores.to_dict("records"), "sets": list(value.spectra),
            "near": {s: {"threshold": d.threshold, "typical": d.typical, "method": d.method}
                     for s, d in value.near.items()}}
    for k, (s, values) in enumerate(value.spectra.items()):
        arrays[f"spectrum{k}"] = values
        d = value.near[s]
        arrays[f"near{k}_nearest"], arrays[f"near{k}_similarity"], arrays[f"near{k}_group"] = (
            d.nearest, d.similarity, d.group)
    buf = io.BytesIO()
    np.savez(buf, meta=np.array(json.dumps(meta)), **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def _decode(data: bytes) -> PerSet:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
        spectra, near = {}, {}
        for k, s in enumerate(meta["sets"]):
            spectra[s] = npz[f"spectrum{k}"]
            near[s] = NearDuplicates(meta["near"][s]["threshold"], npz[f"near{k}_nearest"],
                                     npz[f"near{k}_similarity"], npz[f"near{k}_group"], meta["near"][s]["typical"],
                                     meta["near"][s].get("method", "exact"))
        return PerSet(meta["equal_n"], pd.DataFrame(meta["scores"]), spectra, npz["exact"], near)


PER_SET = Codec("npz", _encode, _decode)


def cached_per_set(x: np.ndarray, sets: np.ndarray, *, root: str | os.PathLike | None,
                   graphs: SetGraphs | None = None, **params) -> PerSet:
    """:func:`per_set_results`, kept on disk by the content, the sets and the parameters."""
    keys = params["keys"]
    x = np.ascontiguousarray(x)
    # where it runs changes no result; the kernel's rows are keyed by what makes them (a centre
    # taken from the reference makes them depend on it)
    plain = {k: v for k, v in params.items() if k not in ("keys", "backend", "kernel_x")}
    kx = params.get("kernel_x")
    kernel = (None if kx is None else kx.fingerprint() if isinstance(kx, KernelRowMap)
              else np.ascontiguousarray(kx))
    # centred and RBF rows depend on each row's length, which the unit rows ``x`` have lost
    # (unless they are ``x`` itself, already in the key: a million rows are not hashed twice)
    source = np.ascontiguousarray(kx.x) if isinstance(kx, KernelRowMap) and kx.x is not x else None
    key = hash_key("per-set", 4, x, sets.tolist(), keys, plain, kernel, source)
    return cached("compare-sets", key, lambda: per_set_results(x, sets, graphs=graphs, **params), codec=PER_SET,
                  root=root)
