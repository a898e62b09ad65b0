"""2-D maps of embeddings, progressive and cached on disk by content and parameters.

Rows are unit-normalised (on unit vectors Euclidean distance is monotone in cosine similarity)
and their neighbours found in the full space by the neighbour backend (explorer.neighbors: exact,
HNSW or GPU), then handed to UMAP, which skips NN-descent.

Why no PCA before the search (maps up to version 2 reduced to 50 components first): principal
components are weighted by item counts, so the directions that set small clusters apart are the
first to go. Measured on 300k x 256 rows from 30 clusters of uneven size (benchmarks/scale.py's
mixture): after PCA-50 only 72% of each item's 10 nearest landmarks share its cluster and the
draft keeps 0.78 of 2-D neighbours in their cluster; in the full space 99.7% and 0.997. The HNSW
index keeps the speed by searching a 128-d projection and re-ranking with exact distances.

Two qualities (explorer.maps.layout does the work):

- ``draft``: UMAP on a landmark sample, every other item placed from its nearest landmarks; a
  million items in about a minute on two cores.
- ``full``: UMAP on every item, started from the draft, so the full map refines the draft
  rather than replacing it with another picture.

Up to ``landmarks`` items the two are the same map (the full layout, computed once).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from explorer.data.arrays import normalize_rows, unit_float32
from explorer.store.cache import NPY, cached, hash_key

PROJECTION_VERSION = 4  # 4: neighbours from the FAST graph (explorer.neighbors.hnsw)
QUALITIES = ("draft", "full")
PCA_BLOCK = 65_536

Progress = Callable[[int, int, str], None]  # (done, total, stage), as explorer.store.work.Job.report


@dataclass(frozen=True)
class UmapParams:
    n_neighbors: int = 15
    min_dist: float = 0.1
    n_components: int = 2
    pca_dims: int | None = None  # None: neighbours in the full space (see above); else PCA to this many
    seed: int = 42
    landmarks: int = 20_000  # items laid out by UMAP for the draft; the rest are placed
    place_k: int = 10  # landmarks each other item is placed from
    neighbors: str = "auto"  # neighbour search (explorer.neighbors.index.METHODS)


def pca_reduce(x: np.ndarray, *, dims: int) -> np.ndarray:
    """Unit-normalise rows, centre, and keep the top ``dims`` principal components (float32),
    a block of rows at a time: a million rows never exist in float64 at once.

    >>> pca_reduce(np.random.default_rng(0).normal(size=(20, 8)), dims=3).shape
    (20, 3)
    """
    n, d = x.shape
    total, gram = np.zeros(d), np.zeros((d, d))
    for start in range(0, n, PCA_BLOCK):
        block = normalize_rows(x[start : start + PCA_BLOCK], zero_rows="keep")  # a map shows a zero row
        total += block.sum(axis=0)
        gram += block.T @ block
    mean = total / max(n, 1)
    if d <= dims:
        basis = np.eye(d)
    else:
        _, vecs = np.linalg.eigh(gram - n * np.outer(mean, mean))
        basis = vecs[:, ::-1][:, :dims]
    out = np.empty((n, basis.shape[1]), dtype=np.float32)
    for start in range(0, n, PCA_BLOCK):
        block = normalize_rows(x[start : start + PCA_BLOCK], zero_rows="keep")
        out[start : start + len(block)] = (block - mean) @ basis
    return out


def unit_rows(x: np.ndarray) -> np.ndarray:
    """``x`` itself when its rows are already unit float32 (embeddings usually are: no copy of a
    million rows), else a unit-normalised float32 copy; zero rows stay zero.

    >>> unit_rows(np.array([[3.0, 4.0]])).tolist()
    [[0.6000000238418579, 0.800000011920929]]
    """
    if unit_float32(x, tol=1e-4):
        return x
    return normalize_rows(x, dtype=np.float32, zero_rows="keep")


def map_quality(n: int, params: UmapParams, quality: str) -> str:
    """The quality actually made: small inputs always get the full map (it is as fast as a draft).

    >>> map_quality(5_000, UmapParams(), "draft"), map_quality(10**6, UmapParams(), "draft")
    ('full', 'draft')
    """
    if quality not in QUALITIES:
        raise ValueError(f"quality must be one of {', '.join(QUALITIES)}, got {quality!r}")
    return "full" if n <= params.landmarks else quality


def projection_key(x: np.ndarray, params: UmapParams, quality: str = "full") -> str:
    return hash_key("umap", PROJECTION_VERSION, params.__dict__, map_quality(len(x), params, quality),
                    np.ascontiguousarray(x))


def umap_project(
    x: np.ndarray,
    *,
    params: UmapParams | None = None,
    quality: str = "full",
    cache_dir: str | os.PathLike | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """A 2-D map of the rows of ``x`` (``quality`` draft or full), from the disk cache when
    possible. The full map starts from the draft (made and cached first when missing).

    >>> umap_project(np.eye(3)).shape   # tiny inputs are laid out without UMAP
    (3, 2)
    """
    from explorer.maps.layout import draft_layout, full_layout

    params = params or UmapParams()
    x = np.asarray(x)
    quality = map_quality(len(x), params, quality)
    report = progress or (lambda done, total, stage: None)
    reduced: list[np.ndarray] = []

    def pca() -> np.ndarray:  # once, and only when something has to be computed
        if not reduced:
            if params.pca_dims is None:
                report(0, 0, f"normalising {len(x):,} items")
                reduced.append(unit_rows(x))
            else:
                report(0, 0, f"reducing {len(x):,} items to {params.pca_dims} principal components")
                reduced.append(pca_reduce(x, dims=params.pca_dims))
        return reduced[0]

    if quality == "full" and len(x) <= params.landmarks:
        return _checked(cached("projections", projection_key(x, params, "full"),
                               lambda: full_layout(pca(), params, init=None, progress=report),
                               codec=NPY, root=cache_dir), x, params)
    draft = _checked(cached("projections", projection_key(x, params, "draft"),
                            lambda: draft_layout(pca(), params, progress=report), codec=NPY, root=cache_dir), x, params)
    if quality == "draft":
        return draft
    return _checked(cached("projections", projection_key(x, params, "full"),
                           lambda: full_layout(pca(), params, init=draft, progress=report), codec=NPY, root=cache_dir),
                    x, params)


def _checked(coords: np.ndarray, x: np.ndarray, params: UmapParams) -> np.ndarray:
    if coords.shape != (x.shape[0], params.n_components):
        raise RuntimeError(f"cached map has shape {coords.shape}, expected {(x.shape[0], params.n_components)}")
    return coords
