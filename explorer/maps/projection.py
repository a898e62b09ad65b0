"""2-D UMAP maps of embeddings, cached on disk by content and parameters.

Rows are unit-normalised and reduced to at most 50 principal components before UMAP: on unit
vectors Euclidean distance is monotone in cosine similarity, and the reduction makes the
neighbour search several times faster without changing the map's structure. Neighbours are
found exactly (explorer.neighbors) and handed to UMAP, which skips NN-descent and its JIT.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from explorer.data.arrays import normalize_rows
from explorer.neighbors.exact import knn
from explorer.store.cache import NPY, cached, hash_key

PROJECTION_VERSION = 1


@dataclass(frozen=True)
class UmapParams:
    n_neighbors: int = 15
    min_dist: float = 0.1
    n_components: int = 2
    pca_dims: int = 50
    seed: int = 42


def pca_reduce(x: np.ndarray, *, dims: int) -> np.ndarray:
    """Unit-normalise rows, centre, and keep the top ``dims`` principal components (float32).

    >>> pca_reduce(np.random.default_rng(0).normal(size=(20, 8)), dims=3).shape
    (20, 3)
    """
    x = normalize_rows(x, zero_rows="keep")  # a map shows a zero row (at the centre) rather than refusing it
    x -= x.mean(axis=0)
    if x.shape[1] <= dims:
        return x.astype(np.float32)
    _, vecs = np.linalg.eigh(x.T @ x)
    return (x @ vecs[:, ::-1][:, :dims]).astype(np.float32)


def projection_key(x: np.ndarray, params: UmapParams) -> str:
    x = np.ascontiguousarray(x)
    return hash_key("umap", PROJECTION_VERSION, params.__dict__, str(x.dtype), x.shape, x.tobytes())


def umap_project(
    x: np.ndarray,
    *,
    params: UmapParams | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: Callable[[str], None] | None = None,
) -> np.ndarray:
    """A deterministic 2-D UMAP layout of the rows of ``x``, from the disk cache when possible.

    >>> umap_project(np.eye(3)).shape   # tiny inputs are laid out without UMAP
    (3, 2)
    """
    params = params or UmapParams()
    x = np.asarray(x)
    coords = cached("projections", projection_key(x, params), lambda: _layout(x, params, progress),
                    codec=NPY, root=cache_dir)
    if coords.shape != (x.shape[0], params.n_components):
        raise RuntimeError(f"cached map has shape {coords.shape}, expected {(x.shape[0], params.n_components)}")
    return coords


def _layout(x: np.ndarray, params: UmapParams, progress: Callable[[str], None] | None) -> np.ndarray:
    reduced = pca_reduce(x, dims=params.pca_dims)
    n = x.shape[0]
    if n <= params.n_components + 2:
        coords = np.zeros((n, params.n_components), np.float32)
        coords[:, : min(n, reduced.shape[1], params.n_components)] = reduced[:, : params.n_components]
        return coords
    if progress:
        progress("loading UMAP (the first use in a process compiles it: ~10-20 s)")
    import umap

    k = min(params.n_neighbors, n - 1)
    if progress:
        progress(f"finding {k - 1} nearest neighbours of {n:,} items")
    graph = knn(reduced, k=k - 1, include_self=True)
    if progress:
        progress(f"running UMAP on {n:,} items")
    model = umap.UMAP(n_neighbors=k, min_dist=params.min_dist, n_components=params.n_components,
                      random_state=params.seed, init="spectral" if n > 20 else "random", n_jobs=1,
                      precomputed_knn=(graph[0], graph[1], None))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "precomputed_knn: cannot transform new data" etc.
        return model.fit_transform(reduced).astype(np.float32)
