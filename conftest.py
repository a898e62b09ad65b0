import os

# No test may wait on the network: pretrained-weight lookups must fail fast and offline.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test gets its own empty cache folder unless it asks for the shared one."""
    monkeypatch.setenv("VENDISCOPE_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    """A cache folder shared by the tests that reuse expensive results (embeddings, UMAP)."""
    return tmp_path_factory.mktemp("shared-cache")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
