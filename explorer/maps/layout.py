"""The layouts behind explorer.maps.projection: UMAP on precomputed neighbours (umap-learn, or
cuML's GPU UMAP where CUDA and cuML are present), the landmark draft and its placement."""
from __future__ import annotations

import io
import warnings
from collections.abc import Callable

import numpy as np

from explorer.neighbors.hnsw import FAST
from explorer.neighbors.index import cuda_available
from explorer.neighbors.search import cross_knn, knn

Progress = Callable[[int, int, str], None]
# umap-learn runs its epochs on all cores only without a seed; above this size the speed is
# worth more than a layout that repeats bit for bit (the result is cached by content anyway)
PARALLEL_ABOVE = 50_000
REFINE_EPOCHS = 100  # epochs of the full layout when it starts from the draft (UMAP's own: 200)


def full_layout(reduced: np.ndarray, params, *, init: np.ndarray | None, progress: Progress) -> np.ndarray:
    """UMAP of every row; started from ``init`` (the draft) when given."""
    n = len(reduced)
    if n <= params.n_components + 2:
        coords = np.zeros((n, params.n_components), np.float32)
        coords[:, : min(n, reduced.shape[1], params.n_components)] = reduced[:, : params.n_components]
        return coords
    if _cuml() is not None:
        return _cuml_layout(reduced, params, progress)
    return umap_layout(reduced, params, init=init, progress=progress,
                       n_epochs=REFINE_EPOCHS if init is not None else None)


def draft_layout(reduced: np.ndarray, params, *, progress: Progress) -> np.ndarray:
    """UMAP on ``params.landmarks`` random rows, the others placed at the weighted mean of their
    ``params.place_k`` nearest landmarks (weights as UMAP's own memberships: exp(-(d - d₁)/σ)).
    Each item lands inside the region of its neighbours, so clusters stay together."""
    n = len(reduced)
    if n <= params.landmarks:
        return full_layout(reduced, params, init=None, progress=progress)
    rng = np.random.default_rng(params.seed)
    land = np.sort(rng.choice(n, params.landmarks, replace=False))
    progress(0, 0, f"laying out {len(land):,} landmarks")
    land_coords = full_layout(reduced[land], params, init=None, progress=progress)
    rest = np.setdiff1d(np.arange(n), land, assume_unique=True)
    progress(0, len(rest), "placing the other items near their landmarks")
    nb = cross_knn(reduced[rest], reduced[land], k=min(params.place_k, len(land)), method=params.neighbors, hnsw=FAST,
                   progress=lambda done, total: progress(done, total, "placing the other items near their landmarks"))
    coords = np.empty((n, land_coords.shape[1]), dtype=np.float32)
    coords[land] = land_coords
    coords[rest] = place(nb.distances, land_coords[nb.indices])
    return coords


def place(distances: np.ndarray, neighbour_coords: np.ndarray) -> np.ndarray:
    """Weighted mean of neighbour positions, weights exp(-(d - d₁)/σ) with σ each row's mean gap.

    >>> [round(float(v), 3) for v in place(np.array([[0.0, 1.0]]), np.array([[[0.0, 0.0], [1.0, 0.0]]]))[0]]
    [0.119, 0.0]
    """
    d = distances.astype(np.float64)
    gap = d - d[:, :1]
    sigma = np.maximum(gap.mean(axis=1, keepdims=True), 1e-9)
    w = np.exp(-gap / sigma)
    return ((w[..., None] * neighbour_coords).sum(axis=1) / w.sum(axis=1, keepdims=True)).astype(np.float32)


def umap_layout(reduced: np.ndarray, params, *, init: np.ndarray | None, progress: Progress,
                n_epochs: int | None = None) -> np.ndarray:
    """umap-learn on neighbours from the backend; its epochs reported through ``progress``."""
    n = len(reduced)
    progress(0, 0, "loading UMAP (the first use in a process compiles it: ~10-30 s)")
    import umap

    k = min(params.n_neighbors, n - 1)
    stage = f"finding the {k - 1} nearest neighbours of {n:,} items"
    graph = knn(reduced, k=k - 1, include_self=True, method=params.neighbors, hnsw=FAST,
                progress=lambda done, total: progress(done, total, stage))
    seeded = n <= PARALLEL_ABOVE
    start = "spectral" if n > 20 else "random"
    if init is not None:  # UMAP expects its init near its own scale: rescale the draft to ±10
        spread = np.abs(init - init.mean(axis=0)).max()
        start = ((init - init.mean(axis=0)) * (10.0 / max(float(spread), 1e-9))).astype(np.float64)
    model = umap.UMAP(n_neighbors=k, min_dist=params.min_dist, n_components=params.n_components,
                      random_state=params.seed if seeded else None, n_jobs=1 if seeded else -1, init=start,
                      n_epochs=n_epochs, precomputed_knn=(graph.indices, graph.distances, None),
                      tqdm_kwds={"disable": False, "file": _EpochWriter(progress, n), "bar_format": "{n}/{total}\n",
                                 "mininterval": 0.5})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "precomputed_knn: cannot transform new data" etc.
        return model.fit_transform(reduced).astype(np.float32)


class _EpochWriter(io.TextIOBase):
    """Receives umap-learn's tqdm bar (formatted ``done/total``) and reports it as progress; a
    cancelled job raises out of the next epoch."""

    def __init__(self, progress: Progress, n: int) -> None:
        self.progress, self.n = progress, n

    def write(self, text: str) -> int:
        for part in text.replace("\r", "\n").split("\n"):
            done, _, total = part.strip().partition("/")
            if done.isdigit() and total.isdigit():
                self.progress(int(done), int(total), f"UMAP epochs over {self.n:,} items")
        return len(text)

    def flush(self) -> None:
        pass


def _cuml():
    """cuML's UMAP when a CUDA GPU and the package are there, else None."""
    if not cuda_available():
        return None
    try:
        from cuml.manifold import UMAP
    except Exception:  # not installed, or installed without a matching CUDA runtime
        return None
    return UMAP


def _cuml_layout(reduced: np.ndarray, params, progress: Progress) -> np.ndarray:
    progress(0, 0, f"UMAP of {len(reduced):,} items on the GPU (cuML)")
    model = _cuml()(n_neighbors=min(params.n_neighbors, len(reduced) - 1), min_dist=params.min_dist,
                    n_components=params.n_components, random_state=params.seed)
    return np.asarray(model.fit_transform(reduced), dtype=np.float32)
