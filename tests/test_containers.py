"""Images inside containers: webdataset tar shards and tables with image bytes (HF style)."""
import io
import json
import tarfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet  # noqa: F401 - pa.parquet
import pytest
from PIL import Image

from explorer.data.datasets import load_dataset
from explorer.embed.pipeline import embed_dataset
from explorer.embed.registry import get_embedder


def png_bytes(value: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (6, 6), (value, 0, 0)).save(buf, format="PNG")
    return buf.getvalue()


def add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def shards(tmp_path):
    root = tmp_path / "wds"
    root.mkdir()
    for s in range(2):
        with tarfile.open(root / f"shard-{s}.tar", "w") as tar:
            for k in range(3):
                key = f"s{s}k{k}"
                add(tar, f"{key}.png", png_bytes(40 * (s * 3 + k)))
                add(tar, f"{key}.cls", str(k).encode())
            add(tar, "broken.jpg", b"not a jpeg")
            add(tar, "meta.json", json.dumps({"label": "x"}).encode())
    return root


def test_webdataset_shards(shards, tmp_path):
    ds = load_dataset(shards)
    assert len(ds) == 8 and ds.items["id"].is_unique  # 3 samples + 1 broken image per shard
    assert ds.items.set_index("id").loc["shard-1.tar/s1k2", "label"] == "2"
    result = embed_dataset(ds, get_embedder("pixels"), cache_dir=tmp_path / "c")
    assert len(result.items) == 6 and result.skipped["id"].tolist() == ["shard-0.tar/broken", "shard-1.tar/broken"]
    red = result.embeddings[:, 0]  # first pixel's red channel encodes the sample
    assert np.allclose(sorted(red * 255), [0, 40, 80, 120, 160, 200], atol=1)
    again = embed_dataset(load_dataset(shards / "shard-0.tar"), get_embedder("pixels"), cache_dir=tmp_path / "c")
    assert again.n_computed == 0 and again.n_cached == 3


def test_webdataset_keys_end_at_the_first_dot_of_the_basename(tmp_path):
    """As WebDataset pairs members: ``x.seg.png`` and ``x.cls`` are one sample with key ``x``; a
    folder with dots in its name does not split the key."""
    root = tmp_path / "wds"
    root.mkdir()
    with tarfile.open(root / "shard.tar", "w") as tar:
        add(tar, "a.seg.png", png_bytes(10))
        add(tar, "a.cls", b"7")
        add(tar, "b.caption.txt", b"not the label")  # extension "caption.txt": a field of its own
        add(tar, "b.json", json.dumps({"label": "meta"}).encode())
        add(tar, "b.png", png_bytes(20))
        add(tar, "c.seg.png", png_bytes(30))
        add(tar, "c.png", png_bytes(40))  # the plain image wins over the segmentation mask
        add(tar, "v1.2/d.left.png", png_bytes(50))
        add(tar, "v1.2/d.txt", b"dee")
    items = load_dataset(root / "shard.tar").items.set_index("id")
    assert sorted(items.index) == ["shard.tar/a", "shard.tar/b", "shard.tar/c", "shard.tar/v1.2/d"]
    assert items.loc["shard.tar/a", "label"] == "7" and items.loc["shard.tar/a", "path"].endswith("::a.seg.png")
    assert items.loc["shard.tar/b", "label"] == "meta"
    assert items.loc["shard.tar/c", "path"].endswith("::c.png")
    assert items.loc["shard.tar/v1.2/d", "label"] == "dee"


@pytest.mark.parametrize("kind", ["struct", "binary"])
def test_tables_with_image_bytes(tmp_path, kind):
    images = [png_bytes(v) for v in (10, 20, 30)] + [b""]
    column = [{"bytes": b, "path": None} for b in images] if kind == "struct" else images
    table = pa.table({"image": column, "label": [0, 1, 1, 2], "caption": ["a", "b", "c", "d"]})
    pa.parquet.write_table(table, tmp_path / "train.parquet")
    ds = load_dataset(tmp_path / "train.parquet")
    assert ds.items["label"].tolist() == ["0", "1", "1", "2"] and ds.items["caption"].tolist()[0] == "a"
    result = embed_dataset(ds, get_embedder("pixels"), cache_dir=tmp_path / "c")
    assert len(result.items) == 3 and result.skipped["id"].tolist() == ["train/3"]


def test_hugging_face_save_to_disk_layout(tmp_path):
    table = pa.table({"image": [{"bytes": png_bytes(v), "path": None} for v in (1, 2)], "label": [3, 4]})
    folder = tmp_path / "hf"
    folder.mkdir()
    with pa.OSFile(str(folder / "data-00000-of-00001.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    (folder / "state.json").write_text("{}")
    ds = load_dataset(folder)
    assert len(ds) == 2 and ds.items["label"].tolist() == ["3", "4"] and ds.items["set"].tolist() == ["hf", "hf"]
    assert len(embed_dataset(ds, get_embedder("pixels"), cache_dir=tmp_path / "c").items) == 2
