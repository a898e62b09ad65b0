import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from explorer.data.datasets import Dataset, load_image_folder, load_manifest, sample_data_dir
from explorer.embed.models.clip import ClipEmbedder
from explorer.embed.pipeline import embed_dataset
from explorer.embed.registry import get_embedder, resolve_embedder
from explorer.embed.vector_store import EmbeddingStore


def digits(per_class: int, classes=range(10)) -> Dataset:
    ds = load_image_folder(sample_data_dir() / "real")
    items = ds.items.groupby("label").head(per_class)
    items = items[items["label"].isin([str(c) for c in classes])].reset_index(drop=True)
    return Dataset(items, "digits", ds.source, ds.root)


def test_pixels_are_exact_and_cached(tmp_path):
    ds = digits(2)
    first = embed_dataset(ds, get_embedder("pixels"), cache_dir=tmp_path)
    assert first.n_computed == 20 and first.n_cached == 0
    expected = np.asarray(Image.open(ds.items["path"][0]).convert("RGB"), np.float32).reshape(-1) / 255
    np.testing.assert_array_equal(first.embeddings[0], expected)
    second = embed_dataset(ds, get_embedder("pixels"), cache_dir=tmp_path)
    assert second.n_computed == 0 and second.n_cached == 20
    np.testing.assert_array_equal(first.embeddings, second.embeddings)
    assert list(second.items["id"]) == list(ds.items["id"])


def test_only_new_items_are_embedded(tmp_path):
    full = digits(3)
    embed_dataset(Dataset(full.items.iloc[:20], "d", "d"), get_embedder("pixels"), cache_dir=tmp_path)
    again = embed_dataset(full, get_embedder("pixels"), cache_dir=tmp_path)
    assert (again.n_cached, again.n_computed) == (20, 10)


def test_broken_items_are_skipped_with_reasons(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    Image.new("RGB", (10, 10), "red").save(root / "good.png")
    Image.new("RGB", (10, 10), "blue").save(root / "good copy.jpg")
    (root / "empty.png").write_bytes(b"")
    (root / "text.png").write_text("I am not a PNG")
    (root / "dangling.png").symlink_to(root / "nowhere.png")
    result = embed_dataset(load_image_folder(root), get_embedder("pixels"), cache_dir=tmp_path / "c")
    assert sorted(result.items["id"]) == ["good copy.jpg", "good.png"]
    reasons = dict(zip(result.skipped["id"], result.skipped["reason"]))
    assert set(reasons) == {"empty.png", "text.png", "dangling.png"}
    assert "empty" in reasons["empty.png"] and "dangling" in reasons["dangling.png"]


def test_corrupt_cache_chunk_is_never_read(tmp_path):
    ds = digits(1)
    embed_dataset(ds, get_embedder("pixels"), cache_dir=tmp_path)
    chunk = next((tmp_path / "embeddings").rglob("*.npz"))
    data = bytearray(chunk.read_bytes())
    data[-200:-100] = b"\x00" * 100
    chunk.write_bytes(bytes(data))
    again = embed_dataset(ds, get_embedder("pixels"), cache_dir=tmp_path)
    assert again.n_computed == 10 and again.n_cached == 0
    assert list(tmp_path.rglob("*.corrupt"))


def test_store_rejects_mismatched_rows(tmp_path):
    store = EmbeddingStore("k", root=tmp_path)
    with pytest.raises(ValueError):
        store.add(["a" * 40, "b" * 40], np.zeros((1, 3)))


@pytest.mark.slow
def test_efficientnet_features_are_semantic(tmp_path):
    ds = digits(6, classes=(0, 1, 7))
    result = embed_dataset(ds, get_embedder("efficientnet-lite0", device="cpu"), cache_dir=tmp_path)
    x = result.embeddings
    assert x.shape == (18, 1280) and np.isfinite(x).all()
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = x @ x.T
    same = result.items["label"].to_numpy()[:, None] == result.items["label"].to_numpy()[None, :]
    off = ~np.eye(len(x), dtype=bool)
    assert sim[same & off].mean() > sim[~same].mean() + 0.05


@pytest.mark.slow
def test_open_clip_from_a_local_checkpoint(tmp_path, tiny_clip):
    import torch

    arch, ckpt, model = tiny_clip
    embedder = get_embedder(f"clip:{arch}@{ckpt}", device="cpu")
    assert isinstance(embedder, ClipEmbedder) and embedder.pretrained == str(ckpt)
    ds = digits(2)
    result = embed_dataset(ds, embedder, cache_dir=tmp_path / "cache")
    assert result.embeddings.shape == (20, 32)
    with torch.inference_mode():
        image = embedder.preprocess(Image.open(ds.items["path"][0]))[None]
        direct = model.eval().encode_image(image).numpy()[0]
    np.testing.assert_allclose(result.embeddings[0], direct, rtol=1e-4, atol=1e-5)
    # different weights -> different cache key, so cached vectors are never mixed up
    torch.save({k: v + 1 for k, v in model.state_dict().items()}, tmp_path / "other.pt")
    assert get_embedder(f"clip:{arch}@{tmp_path / 'other.pt'}").cache_key() != embedder.cache_key()


def test_missing_pretrained_weights_fall_back_fast_and_say_why(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    embedder, notice = resolve_embedder("auto")
    assert time.perf_counter() - start < 2.0
    assert embedder.name == "efficientnet-lite0"
    assert "ViT-B-32" in notice and "HF_HUB_OFFLINE" in notice and "efficientnet-lite0" in notice
    embedder, notice = resolve_embedder("clip:ViT-B-32/laion2b_s34b_b79k")
    assert embedder.name == "efficientnet-lite0" and notice


@pytest.mark.parametrize("endpoint", ["silent", "https://no-such-host.invalid"])
def test_auto_falls_back_within_a_second_when_the_hub_cannot_be_reached(monkeypatch, endpoint):
    """HF_HUB_OFFLINE unset, the network unreachable: a host that cannot be resolved, or one that
    accepts the connection and never answers (as a firewall or a dead proxy does)."""
    import socket

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(Path(tempfile.mkdtemp())))  # nothing cached
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"https://127.0.0.1:{silent.getsockname()[1]}" if endpoint == "silent" else endpoint
        monkeypatch.setenv("HF_ENDPOINT", url)
        start = time.perf_counter()
        embedder, notice = resolve_embedder("auto")
        elapsed = time.perf_counter() - start
    assert elapsed < 2.0, elapsed  # the probe's own timeout is 1 s
    assert embedder.name == "efficientnet-lite0"
    assert "cannot be reached" in notice and "efficientnet-lite0" in notice


def test_unknown_embedder_names_are_refused_and_open_clip_forms_are_not():
    with pytest.raises(ValueError, match=r"unknown embedder 'efficientnet'; the registered ones are auto, pixels, "
                                         r"efficientnet-lite0, minilm, clip:ViT-B-32/laion2b_s34b_b79k"):
        get_embedder("efficientnet")
    with pytest.raises(ValueError, match="unknown embedder"):
        resolve_embedder("nonsense")
    for name in ("ViT-B-32", "ViT-B-32/openai", "clip:ViT-B-16", "clip:no-such-arch"):  # open_clip's own errors
        assert isinstance(get_embedder(name), ClipEmbedder), name
    assert get_embedder("efficientnet_lite0").name == get_embedder("efficientnet-lite0").name  # aliases still work


def test_known_repo_table_matches_open_clip():
    import open_clip

    from explorer.embed.models.clip import KNOWN_REPOS

    for (arch, tag), repo in KNOWN_REPOS.items():
        assert open_clip.get_pretrained_cfg(arch, tag)["hf_hub"].strip("/") == repo


def test_text_items_need_a_text_embedder(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"text": ["hello", ""]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="pixels embeds images, but these items are texts"):
        embed_dataset(load_manifest(path), get_embedder("pixels"), cache_dir=tmp_path)


def test_precision_is_validated_and_cpu_runs_in_fp32():
    with pytest.raises(ValueError, match="precision"):
        get_embedder("efficientnet-lite0", precision="int8")
    embedder = get_embedder("efficientnet-lite0", device="cpu", precision="fp16")
    assert embedder._autocast_dtype() is None and embedder.batch_size_hint == 64


def test_cached_embeddings_load_without_importing_torch(tmp_path):
    """A warm reopen must stay fast: nothing may import torch when every vector is cached."""
    import subprocess
    import sys

    code = ("import sys; from explorer.data.datasets import load_dataset, sample_data_dir; "
            "from explorer.embed.registry import get_embedder; from explorer.embed.pipeline import embed_dataset; "
            "r = embed_dataset(load_dataset(sample_data_dir()), get_embedder('efficientnet-lite0')); "
            "print(r.n_computed, 'torch' in sys.modules)")
    env = {**__import__("os").environ, "VENDISCOPE_CACHE": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["0", "False"]  # served from the shipped pack, torch never loaded
