"""Texts (plain lines, JSONL generations) and precomputed embeddings as datasets."""
import json

import numpy as np
import pandas as pd
import pytest

from explorer.data.datasets import load_dataset
from explorer.embed.pipeline import embed_dataset
from explorer.embed.registry import get_embedder, resolve_embedder


def test_text_lines_and_generations_load(tmp_path):
    (tmp_path / "g.txt").write_text("a cat\n\nsame\nsame\n")
    ds = load_dataset(tmp_path / "g.txt")
    assert ds.items["text"].tolist() == ["a cat", "same", "same"] and ds.items["id"].is_unique
    rows = [{"prompt": "draw", "output": "a red fox"}, {"prompt": "draw", "output": ""}]
    (tmp_path / "gen.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    gen = load_dataset(tmp_path / "gen.jsonl")
    assert gen.items["text"].tolist() == ["a red fox", ""] and gen.items["prompt"].tolist() == ["draw", "draw"]


@pytest.mark.slow
def test_minilm_embeds_texts_semantically_and_reports_empty_ones(tmp_path):
    texts = ["a cat sits on the mat", "a kitten lies on a rug", "stock markets fell sharply today",
             "shares dropped on wall street", ""]
    pd.DataFrame({"prompt": ["p"] * 5, "output": texts}).to_json(tmp_path / "gen.jsonl", orient="records", lines=True)
    result = embed_dataset(load_dataset(tmp_path / "gen.jsonl"), get_embedder("minilm", device="cpu"),
                           cache_dir=tmp_path / "c")
    assert result.embeddings.shape == (4, 384)
    assert result.skipped["reason"].tolist() == ["empty text"]
    x = result.embeddings / np.linalg.norm(result.embeddings, axis=1, keepdims=True)
    sim = x @ x.T
    assert sim[0, 1] > sim[0, 2] + 0.2 and sim[2, 3] > sim[1, 3] + 0.2


def test_texts_fall_back_to_minilm_when_clip_weights_are_missing():
    embedder, notice = resolve_embedder("auto", modality="text")
    assert embedder.name == "minilm" and "minilm" in notice


@pytest.mark.slow
def test_clip_text_tower_shares_the_image_space(tmp_path, tiny_clip):
    import open_clip
    import torch

    arch, ckpt, model = tiny_clip
    image_embedder = get_embedder(f"clip:{arch}@{ckpt}", device="cpu")
    (tmp_path / "t.txt").write_text("a photo of a cat\na photo of a dog\n")
    result = embed_dataset(load_dataset(tmp_path / "t.txt"), image_embedder, cache_dir=tmp_path / "c")
    assert result.embedder_key.endswith("-text-v1")
    with torch.inference_mode():
        direct = model.encode_text(open_clip.get_tokenizer(arch)(["a photo of a cat"])).numpy()[0]
    np.testing.assert_allclose(result.embeddings[0], direct, rtol=1e-4, atol=1e-5)


def test_precomputed_embeddings_with_manifest_and_bad_rows(tmp_path):
    x = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    x[2, 1] = np.nan
    x[4] = 0
    np.save(tmp_path / "embeddings.npy", x)
    pd.DataFrame({"id": list("abcdef"), "set": ["s"] * 3 + ["t"] * 3}).to_parquet(tmp_path / "items.parquet")
    ds = load_dataset(tmp_path / "embeddings.npy")
    assert (ds.items["kind"] == "vector").all() and ds.items["id"].tolist() == list("abcdef")
    result = embed_dataset(ds, get_embedder("pixels"))
    assert result.items["id"].tolist() == ["a", "b", "d", "f"]
    np.testing.assert_array_equal(result.embeddings, x[[0, 1, 3, 5]])
    assert dict(zip(result.skipped["id"], result.skipped["reason"])) == {
        "c": "embedding contains NaN or inf", "e": "all-zero embedding"}
    assert ds.select_sets(["t"]).vectors.shape == (3, 4)


def test_precomputed_parquet_keeps_its_other_columns(tmp_path):
    x = np.eye(3, dtype=np.float32)
    pd.DataFrame({"id": ["x", "y", "z"], "label": ["1", "2", "2"], "embedding": list(x)}).to_parquet(
        tmp_path / "e.parquet")
    ds = load_dataset(tmp_path / "e.parquet")
    assert ds.items["label"].tolist() == ["1", "2", "2"] and "embedding" not in ds.items
    np.testing.assert_array_equal(ds.vectors, x)
    np.save(tmp_path / "wrong.npy", np.ones((2, 3)))
    pd.DataFrame({"id": ["a"]}).to_parquet(tmp_path / "items.parquet")
    with pytest.raises(ValueError, match="1 rows but wrong.npy has 2"):
        load_dataset(tmp_path / "wrong.npy")
