import sys

import numpy as np
import pytest

from explorer.maps.projection import UmapParams, pca_reduce, umap_project


@pytest.mark.slow
def test_umap_separates_clusters_and_is_cached(tmp_path, rng, monkeypatch):
    centers = rng.normal(size=(3, 40)) * 4
    x = np.vstack([c + rng.normal(size=(80, 40)) for c in centers]).astype(np.float32)
    labels = np.repeat(np.arange(3), 80)
    coords = umap_project(x, cache_dir=tmp_path)
    assert coords.shape == (240, 2) and np.isfinite(coords).all()
    means = np.array([coords[labels == k].mean(axis=0) for k in range(3)])
    spread = max(np.linalg.norm(coords[labels == k] - means[k], axis=1).mean() for k in range(3))
    gaps = min(np.linalg.norm(means[a] - means[b]) for a in range(3) for b in range(a + 1, 3))
    assert gaps > 2 * spread
    assert len(list((tmp_path / "projections").rglob("*.npy"))) == 1
    monkeypatch.setitem(sys.modules, "umap", None)  # any UMAP run would now fail to import
    np.testing.assert_array_equal(umap_project(x, cache_dir=tmp_path), coords)
    with pytest.raises(ImportError):
        umap_project(x, params=UmapParams(n_neighbors=10), cache_dir=tmp_path)


def test_pca_reduce_keeps_the_leading_directions(rng):
    x = rng.normal(size=(200, 3)) @ np.diag([10.0, 3.0, 0.1]) @ np.linalg.qr(rng.normal(size=(3, 30)).T)[0].T
    reduced = pca_reduce(x + 5, dims=2)
    assert reduced.shape == (200, 2)
    assert reduced[:, 0].var() > reduced[:, 1].var() > 0
