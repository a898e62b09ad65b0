"""Data whose truth is known: unit rows drawn around cluster centres of uneven size, for tests,
benchmarks and trying the tool without a dataset."""
from __future__ import annotations

import numpy as np

from explorer.data.arrays import normalize_rows

BLOCK = 100_000
INTRINSIC_NORM = 0.5  # typical distance of an item from its cluster's centre, with ``intrinsic``


def mixture(n: int, *, dim: int = 512, clusters: int = 30, spread: float = 0.06, unevenness: float = 0.7,
            seed: int = 0, centre_seed: int | None = None, keep: list[int] | None = None,
            intrinsic: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit rows (float32) around ``clusters`` random unit centres, and each row's cluster.

    Cluster sizes are Dirichlet(``unevenness``) shares (smaller is more uneven), each at least
    min(100, n // clusters); rows are centre + ``spread`` × Gaussian noise per dimension, so the
    clusters are well separated while ``spread`` × √dim stays below ~1. Made a block at a time:
    a million 512-d rows cost their 2 GB and little more.

    With ``intrinsic`` = r, each cluster varies along its own r random directions (noise of norm
    about 0.5, plus 5% isotropic noise; ``spread`` is then unused), as real embeddings do, whose
    spectra decay; without it the noise fills every
    dimension, the worst case for any approximate neighbour search (distances concentrate).

    ``centre_seed`` (default ``seed``) fixes the centres and their shares, so that draws with
    other seeds come from the same distribution (a model's samples); ``keep`` draws only from
    those clusters (a model that collapsed onto them), their shares renormalised.

    >>> x, labels = mixture(1_000, dim=16, clusters=4)
    >>> x.shape, x.dtype.name, sorted(set(labels.tolist())), bool(np.allclose((x * x).sum(axis=1), 1, atol=1e-5))
    ((1000, 16), 'float32', [0, 1, 2, 3], True)
    """
    law = np.random.default_rng(seed if centre_seed is None else centre_seed)
    shares = law.dirichlet(np.full(clusters, unevenness))
    centres = normalize_rows(law.normal(size=(clusters, dim)))
    bases = None if intrinsic is None else law.normal(size=(clusters, intrinsic, dim)) / np.sqrt(intrinsic)
    used = np.arange(clusters) if keep is None else np.asarray(sorted(set(keep)))
    shares = shares[used] / shares[used].sum()
    floor = min(100, n // len(used))
    sizes = floor + np.floor(shares * (n - floor * len(used))).astype(np.int64)
    sizes[np.argmax(sizes)] += n - sizes.sum()
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(used, sizes))
    x = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, BLOCK):
        rows = slice(start, min(n, start + BLOCK))
        m, lab = rows.stop - rows.start, labels[rows]
        if bases is None:
            block = centres[lab] + spread * rng.normal(size=(m, dim))
        else:  # noise of norm ~INTRINSIC_NORM along the cluster's own directions, 5% isotropic
            block = centres[lab] + 0.05 * INTRINSIC_NORM / np.sqrt(dim) * rng.normal(size=(m, dim))
            for c in np.unique(lab):
                at = np.flatnonzero(lab == c)
                block[at] += INTRINSIC_NORM * (rng.normal(size=(len(at), bases.shape[1])) @ bases[c])
        x[rows] = normalize_rows(block, inplace=True)
    return x, labels
