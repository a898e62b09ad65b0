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


@pytest.mark.slow
def test_draft_and_full_maps_keep_known_clusters_together_and_are_cached(tmp_path, monkeypatch):
    from explorer.data.synthetic import mixture
    from explorer.maps.quality import neighbour_agreement

    x, labels = mixture(3_000, dim=64, clusters=8, seed=5)
    params = UmapParams(landmarks=600, neighbors="hnsw")
    stages: list[str] = []
    draft = umap_project(x, params=params, quality="draft", cache_dir=tmp_path,
                         progress=lambda done, total, stage: stages.append(stage))
    assert any("landmarks" in s for s in stages) and any("placing" in s for s in stages)
    full = umap_project(x, params=params, quality="full", cache_dir=tmp_path,
                        progress=lambda done, total, stage: stages.append(stage))
    assert any("UMAP epochs over 3,000 items" in s for s in stages)  # epochs are reported
    for coords in (draft, full):
        assert coords.shape == (3_000, 2) and np.isfinite(coords).all()
        assert neighbour_agreement(coords, labels, k=10) >= 0.9
    assert not np.array_equal(draft, full)
    assert len(list((tmp_path / "projections").rglob("*.npy"))) == 2
    monkeypatch.setitem(sys.modules, "umap", None)  # a second call must come from the disk cache
    np.testing.assert_array_equal(umap_project(x, params=params, quality="full", cache_dir=tmp_path), full)
    np.testing.assert_array_equal(umap_project(x, params=params, quality="draft", cache_dir=tmp_path), draft)


def test_small_inputs_get_the_full_map_whatever_the_quality_asked(tmp_path):
    from explorer.maps.projection import map_quality, projection_key

    x = np.eye(5)
    assert map_quality(5, UmapParams(), "draft") == "full"
    assert projection_key(x, UmapParams(), "draft") == projection_key(x, UmapParams(), "full")
    with pytest.raises(ValueError, match="quality"):
        map_quality(5, UmapParams(), "fast")


@pytest.mark.slow
def test_vendiscope_map_writes_id_x_y_for_every_item(tmp_path):
    import pandas as pd

    from explorer.cli.parser import main
    from explorer.data.synthetic import mixture

    x, _ = mixture(400, dim=16, clusters=4, seed=6)
    np.save(tmp_path / "vectors.npy", x)
    out = tmp_path / "coords.parquet"
    assert main(["map", str(tmp_path / "vectors.npy"), "--out", str(out), "--quality", "draft", "--quiet",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    table = pd.read_parquet(out)
    assert list(table.columns) == ["id", "x", "y"] and len(table) == 400 and table["id"].is_unique
    assert np.isfinite(table[["x", "y"]].to_numpy()).all()
    assert main(["map", str(tmp_path / "vectors.npy"), "--out", str(tmp_path / "coords.csv")]) == 2
