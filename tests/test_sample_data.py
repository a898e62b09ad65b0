"""The bundled sample data is what the committed scripts produce."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explorer.data.datasets import Dataset, load_dataset, sample_data_dir
from explorer.embed.pipeline import embed_dataset
from explorer.embed.registry import get_embedder
from explorer.store.cache import load_arrays

ROOT = Path(__file__).resolve().parent.parent


def test_make_digits_regenerates_the_committed_images(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "sample_data" / "make_digits.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "manifest.csv").read_text() == (sample_data_dir() / "manifest.csv").read_text()
    fresh = load_dataset(tmp_path).items
    assert len(fresh) == 4797
    worst = 0
    for rel in fresh["id"]:
        a = np.asarray(Image.open(tmp_path / rel), dtype=np.int16)
        b = np.asarray(Image.open(sample_data_dir() / rel), dtype=np.int16)
        worst = max(worst, int(np.abs(a - b).max()))
    assert worst <= 1  # bit-exact here; a different BLAS may round a pixel the other way


def test_collapsed_set_only_has_three_classes():
    items = load_dataset(sample_data_dir()).items
    assert sorted(items.loc[items["set"] == "collapsed", "label"].unique()) == ["0", "1", "7"]
    assert items.loc[items["set"] == "gmm", "label"].nunique() == 10


@pytest.mark.slow
def test_shipped_efficientnet_embeddings_are_reproduced_by_the_library(tmp_path):
    pack = load_arrays(sample_data_dir() / "embeddings" / "efficientnet-lite0.npz")
    embedder = get_embedder("efficientnet-lite0", device="cpu")
    assert str(pack["embedder_key"]) == embedder.cache_key()
    ds = load_dataset(sample_data_dir())
    assert len(pack["digests"]) == len(ds)
    subset = ds.items.sample(n=16, random_state=7).reset_index(drop=True)
    fresh = embed_dataset(Dataset(subset, "s", "s"), embedder, cache_dir=tmp_path)  # no packs: computed
    assert fresh.n_computed == 16
    shipped = dict(zip(pack["digests"].tolist(), pack["vectors"].astype(np.float32)))
    for digest, vec in zip(fresh.items["digest"], fresh.embeddings):
        np.testing.assert_allclose(shipped[digest], vec, rtol=2e-3, atol=2e-3)
