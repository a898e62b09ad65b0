"""Data whose truth is known: unit rows drawn around cluster centres of uneven size, for tests,
benchmarks and trying the tool without a dataset."""
from __future__ import annotations

import numpy as np

from explorer.data.arrays import normalize_rows

BLOCK = 100_000


def mixture(n: int, *, dim: int = 512, clusters: int = 30, spread: float = 0.06, unevenness: float = 0.7,
            seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit rows (float32) around ``clusters`` random unit centres, and each row's cluster.

    Cluster sizes are Dirichlet(``unevenness``) shares (smaller is more uneven), each at least
    min(100, n // clusters); rows are centre + ``spread`` × Gaussian noise per dimension, so the
    clusters are well separated while ``spread`` × √dim stays below ~1. Made a block at a time:
    a million 512-d rows cost their 2 GB and little more.

    >>> x, labels = mixture(1_000, dim=16, clusters=4)
    >>> x.shape, x.dtype.name, sorted(set(labels.tolist())), bool(np.allclose((x * x).sum(axis=1), 1, atol=1e-5))
    ((1000, 16), 'float32', [0, 1, 2, 3], True)
    """
    rng = np.random.default_rng(seed)
    floor = min(100, n // clusters)
    shares = rng.dirichlet(np.full(clusters, unevenness))
    sizes = floor + np.floor(shares * (n - floor * clusters)).astype(np.int64)
    sizes[np.argmax(sizes)] += n - sizes.sum()
    labels = rng.permutation(np.repeat(np.arange(clusters), sizes))
    centres = normalize_rows(rng.normal(size=(clusters, dim)))
    x = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, BLOCK):
        rows = slice(start, min(n, start + BLOCK))
        block = centres[labels[rows]] + spread * rng.normal(size=(rows.stop - rows.start, dim))
        x[rows] = normalize_rows(block, inplace=True)
    return x, labels
