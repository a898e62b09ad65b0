import pandas as pd
import pytest
from PIL import Image

from explorer.data.datasets import load_dataset, load_image_folder, load_manifest, sample_data_dir


def make_folder(root):
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(root / label / f"{i}.png")
    Image.new("RGB", (8, 8)).save(root / "loose.jpg")
    (root / "notes.txt").write_text("not an image")
    return root


def test_image_folder_labels_from_subfolders(tmp_path):
    ds = load_image_folder(make_folder(tmp_path / "pets"))
    assert len(ds) == 7
    assert ds.items["id"].is_unique
    assert ds.items.set_index("id").loc["cat/2.png", "label"] == "cat"
    assert pd.isna(ds.items.set_index("id").loc["loose.jpg", "label"])
    assert set(ds.items["set"]) == {"pets"}


def test_ids_survive_reordering(tmp_path):
    root = make_folder(tmp_path / "pets")
    first = load_image_folder(root).items.set_index("id")["path"]
    (root / "aaa").mkdir()
    Image.new("RGB", (4, 4)).save(root / "aaa" / "new.png")
    second = load_image_folder(root).items.set_index("id")["path"]
    assert (second.loc[first.index] == first).all()


def test_manifest_csv_and_parquet_keep_metadata(tmp_path):
    root = make_folder(tmp_path / "pets")
    table = pd.DataFrame({"path": ["cat/0.png", "dog/1.png", "cat/0.png"], "set": ["a", "b", "b"],
                          "label": ["cat", "dog", "cat"], "score": ["0.5", "0.7", "0.1"]})
    table.to_csv(root / "m.csv", index=False)
    table.to_parquet(root / "m.parquet")
    for name in ("m.csv", "m.parquet"):
        ds = load_manifest(root / name)
        assert list(ds.items["set"]) == ["a", "b", "b"]
        assert "score" in ds.items.columns
        assert ds.items["id"].tolist() == ["cat/0.png", "dog/1.png", "cat/0.png#2"]
        assert ds.items["path"].iloc[0] == str((root / "cat/0.png").resolve())


def test_text_manifest(tmp_path):
    path = tmp_path / "gen.csv"
    pd.DataFrame({"text": ["a cat", "a dog", "a cat"]}).to_csv(path, index=False)
    ds = load_manifest(path)
    assert (ds.items["kind"] == "text").all()
    assert ds.items["id"].is_unique


@pytest.mark.parametrize("column", ["caption", "generation", "completion", "response", "output", "Caption"])
def test_every_text_column_name_is_read(tmp_path, column):
    path = tmp_path / "gen.jsonl"
    pd.DataFrame({"prompt": ["p1", "p2"], column: ["a red bird", "a blue car"]}).to_json(path, orient="records",
                                                                                        lines=True)
    ds = load_manifest(path)
    assert ds.items["text"].tolist() == ["a red bird", "a blue car"]
    assert (ds.items["kind"] == "text").all() and ds.items["prompt"].tolist() == ["p1", "p2"]


def test_manifest_without_usable_column_is_explained(tmp_path):
    path = tmp_path / "bad.csv"
    pd.DataFrame({"foo": [1]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="path column"):
        load_manifest(path)
    with pytest.raises(FileNotFoundError):
        load_dataset(tmp_path / "missing")


def test_sample_data_manifest_matches_the_files():
    ds = load_dataset(sample_data_dir())
    assert ds.name == "digits"
    assert set(ds.sets) >= {"real", "gmm", "collapsed"}
    counts = ds.items["set"].value_counts()
    assert counts["real"] == 1797
    on_disk = {p.relative_to(sample_data_dir()).as_posix() for p in sample_data_dir().rglob("*.png")}
    assert on_disk == set(ds.items["id"])
    real = ds.items[ds.items["set"] == "real"]
    assert sorted(real["label"].unique()) == [str(i) for i in range(10)]
