"""Odd and hostile input: one bad item never sinks a dataset, files outside a dataset are never
read, damaged caches are rebuilt, and output folders are never left torn."""
import json
import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from explorer.cli import main
from explorer.data.access import PathPolicy, PathRefused, inside
from explorer.data.datasets import load_dataset, load_image_folder, load_manifest
from explorer.embed.pipeline import embed_dataset
from explorer.embed.registry import get_embedder
from explorer.store.cache import MISSING, NPZ, cache_root, file_digest, read_entry


def digest_memo(cache):
    """The file-digest memo the embed pipeline keeps, read as it does (checksum verified)."""
    return read_entry(cache_root(root=cache) / "digests" / "files.npz", NPZ)


def png(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (value, 0, 0)).save(path)


@pytest.fixture
def hostile(tmp_path):
    """A manifest mixing good images with every odd path: too long, NUL, outside, absolute."""
    root = tmp_path / "data"
    for i in range(4):
        png(root / "ok" / f"{i}.png", 40 * i)
    outside = tmp_path / "secret.png"
    png(outside, 250)
    rows = ["path,label", "ok/0.png,a", "ok/1.png,b",
            f"{'x' * 300}.png,long-part",
            f"{'/'.join(['d' * 200] * 30)}/y.png,long-path",
            "../secret.png,escape", "../../../../../../etc/passwd,passwd", "/etc/shadow,shadow",
            "ok/2.png,c", "ok/3.png,d"]
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root, outside


def test_a_manifest_with_every_odd_path_embeds_the_good_items_and_lists_the_bad(hostile, tmp_path):
    root, outside = hostile
    ds = load_dataset(root)
    assert len(ds.items) == 6 and len(ds.rejected) == 3  # the too-long paths fail when read, below
    reasons = dict(zip(ds.rejected["id"], ds.rejected["reason"]))
    for bad, row in [("../secret.png", 5), ("../../../../../../etc/passwd", 6), ("/etc/shadow", 7)]:
        assert reasons[bad].startswith(f"row {row} of manifest.csv: outside the dataset folder")
    result = embed_dataset(ds, get_embedder("pixels"), cache_dir=tmp_path / "cache")
    assert len(result.items) == 4 and len(result.skipped) == 5
    why = dict(zip(result.skipped["id"], result.skipped["reason"]))
    assert "unusable path" in why[f"{'x' * 300}.png"] and "unusable path" in why[next(i for i in why if "/y.png" in i)]
    # nothing outside the dataset was read: no digest of the secret, /etc/passwd or /etc/shadow
    memo = digest_memo(tmp_path / "cache")
    assert all(inside(p, root) for p in memo["paths"].tolist())
    # allowed outright, the outside file is read (and the system files are at least tried)
    allowed = embed_dataset(load_dataset(root, allow_outside=True), get_embedder("pixels"),
                            cache_dir=tmp_path / "cache2")
    assert "../secret.png" in set(allowed.items["id"])


def test_the_cli_names_every_bad_row_and_allow_outside_reads_them(hostile, tmp_path, capsys):
    root, _ = hostile
    assert main(["embed", str(root), "--model", "pixels", "--out", str(tmp_path / "out"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "skipped 5 item(s)" in err and "row 5 of manifest.csv: outside the dataset folder" in err
    skipped = pd.read_csv(tmp_path / "out" / "skipped.csv")
    assert len(skipped) == 5
    assert main(["embed", str(root), "--model", "pixels", "--out", str(tmp_path / "out2"), "--quiet",
                 "--allow-outside"]) == 0
    assert "../secret.png" in set(pd.read_parquet(tmp_path / "out2" / "items.parquet")["id"])


def test_an_image_table_row_naming_a_file_outside_its_folder_is_not_read(tmp_path, capsys):
    """A Parquet image column's {bytes: null, path: X} row used to read any file X. Now X obeys the
    manifests' policy: inside the table's folder, or anywhere only with --allow-outside."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from explorer.data.sources import read_item

    root = tmp_path / "table"
    png(root / "inside.png", 90)
    secret = tmp_path / "secret.png"
    png(secret, 250)
    stored = io.BytesIO()
    Image.new("RGB", (8, 8), (30, 0, 0)).save(stored, format="PNG")
    column = [{"bytes": stored.getvalue(), "path": "stored.png"}, {"bytes": None, "path": "inside.png"},
              {"bytes": None, "path": "../secret.png"}, {"bytes": None, "path": str(secret)}]
    pq.write_table(pa.table({"image": column, "label": ["a", "b", "c", "d"]}), root / "train.parquet")

    ds = load_dataset(root / "train.parquet")
    assert ds.items["id"].tolist() == ["train/0", "train/1"]
    assert ds.items["path"].iloc[1] == str(root / "inside.png")
    assert ds.rejected["id"].tolist() == ["train/2", "train/3"]
    assert all(r.startswith(f"row {n} of train.parquet: outside the dataset folder")
               for n, r in zip((2, 3), ds.rejected["reason"]))
    with pytest.raises(OSError, match="no image bytes"):  # the row's path is never followed from here
        read_item(f"{root / 'train.parquet'}::2/image")

    out = tmp_path / "out"
    assert main(["embed", str(root / "train.parquet"), "--model", "pixels", "--out", str(out), "--quiet",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    assert "row 2 of train.parquet: outside the dataset folder" in capsys.readouterr().err
    red = sorted(np.load(out / "embeddings.npy")[:, 0] * 255)
    assert np.allclose(red, [30, 90], atol=1)  # the stored image and the file inside, not the secret (250)
    assert all(inside(p, root) for p in digest_memo(tmp_path / "cache")["paths"].tolist())

    assert main(["embed", str(root / "train.parquet"), "--model", "pixels", "--out", str(out), "--quiet",
                 "--cache-dir", str(tmp_path / "cache"), "--allow-outside"]) == 0
    red = sorted(np.load(out / "embeddings.npy")[:, 0] * 255)
    assert np.allclose(red, [30, 90, 250, 250], atol=1)  # allowed outright, the secret is read


def test_a_truncated_or_garbage_tar_shard_is_reported_and_the_rest_embedded(tmp_path, capsys):
    """A cut shard used to raise tarfile.ReadError (exit 3, no file named): now the samples before
    the cut are kept, the shard is reported by name, and a shard that is no tar at all is skipped."""
    import io
    import tarfile

    def shard(path, values):
        with tarfile.open(path, "w") as tar:
            for k, v in enumerate(values):
                buf = io.BytesIO()
                Image.new("RGB", (8, 8), (v, 0, 0)).save(buf, format="PNG")
                for name, data in ((f"s{k}.png", buf.getvalue()), (f"s{k}.cls", str(k).encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))

    root = tmp_path / "wds"
    root.mkdir()
    shard(root / "a.tar", [10, 20])
    shard(root / "b.tar", [30, 40, 50, 60])
    whole = (root / "b.tar").read_bytes()
    with tarfile.open(root / "b.tar") as tar:
        third = tar.getmember("s2.png")
    (root / "b.tar").write_bytes(whole[:third.offset_data + third.size // 2])  # cut inside s2.png
    (root / "c.tar").write_bytes(b"this is not a tar file" * 50)
    shard(root / "d.tar", [70, 80])
    with tarfile.open(root / "d.tar") as tar:
        second = tar.getmember("s1.png")
    (root / "d.tar").write_bytes((root / "d.tar").read_bytes()[:second.offset + 100])  # cut inside a header

    ds = load_dataset(root)
    assert sorted(ds.items["id"]) == ["a.tar/s0", "a.tar/s1", "b.tar/s0", "b.tar/s1", "b.tar/s2", "d.tar/s0"]
    reasons = dict(zip(ds.rejected["id"], ds.rejected["reason"]))
    assert set(reasons) == {"b.tar", "c.tar", "d.tar"}
    assert reasons["b.tar"].startswith("b.tar is damaged after") and "cannot be read" in reasons["c.tar"]
    assert reasons["d.tar"].startswith("d.tar is damaged after")
    result = embed_dataset(ds, get_embedder("pixels"), cache_dir=tmp_path / "cache")
    assert np.allclose(sorted(result.embeddings[:, 0] * 255), [10, 20, 30, 40, 70], atol=1)
    why = dict(zip(result.skipped["id"], result.skipped["reason"]))
    assert "b.tar/s2" in why and "b.tar" in why and "c.tar" in why  # the cut sample and both shards

    assert main(["embed", str(root / "c.tar"), "--model", "pixels", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "c.tar" in err and len(err.strip().splitlines()) == 1


def test_non_utf8_names_nul_bytes_latin1_rows_and_broken_json_lines(tmp_path):
    root = tmp_path / "folder"
    png(root / "good.png", 10)
    bad_name = os.fsdecode(b"caf\xe9.png")  # a Latin-1 byte in the file name
    png(root / bad_name, 20)
    ds = load_image_folder(root)
    assert ds.items["id"].tolist() == ["good.png"]
    assert ds.rejected.to_dict("records") == [{"id": "caf\\xe9.png", "reason": "the path is not valid UTF-8"}]

    csv = tmp_path / "m" / "manifest.csv"
    png(csv.parent / "a.png", 1)
    png(csv.parent / "b.png", 2)
    csv.write_bytes(b"path,label\na.png,caf\xe9\nb.png,fine\n" + b"a\x00.png,nul\n")
    ds = load_manifest(csv)
    assert ds.items["id"].tolist() == ["b.png"]
    assert set(ds.rejected["reason"]) == {"row 1 of manifest.csv is not valid UTF-8 (save the manifest as UTF-8)",
                                          "row 3 of manifest.csv: the path contains a NUL byte"}

    jsonl = tmp_path / "gen.jsonl"
    jsonl.write_bytes(b'{"text": "a red bird"}\n{"text": "broken\n[1, 2]\n\n{"text": "a blue car"}\n'
                      b'{"text": "caf\xe9"}\n')
    ds = load_manifest(jsonl)
    assert ds.items["text"].tolist() == ["a red bird", "a blue car"]
    assert ds.rejected["reason"].tolist() == ["line 2 of gen.jsonl is not JSON: Invalid control character at",
                                              "line 3 of gen.jsonl is not a JSON object",
                                              "line 6 of gen.jsonl is not valid UTF-8"]
    with pytest.raises(ValueError, match="cannot read manifest nope.csv"):
        load_manifest(tmp_path / "nope.csv")


def test_a_csv_row_with_an_extra_field_or_an_open_quote_is_skipped_with_its_line(tmp_path, capsys):
    """One malformed CSV row used to refuse the whole manifest (or, read leniently, silently
    swallow every row after an open quote). Now each bad line is reported and the rest read."""
    root = tmp_path / "data"
    for i in range(6):
        png(root / f"{i}.png", 30 * i + 10)
    lines = ['path,label', '0.png,zero', '1.png,one,EXTRA', '2.png,"two', '3.png,three',
             '4.png,"four, with a comma and a', 'line break"', '5.png,"five']  # the last quote never closes
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    ds = load_dataset(root)
    assert ds.items["id"].tolist() == ["0.png", "3.png", "4.png"]
    assert ds.items["label"].tolist()[2] == "four, with a comma and a\nline break"  # a quoted line break is fine
    assert ds.rejected["reason"].tolist() == [
        "line 3 of manifest.csv is not a valid CSV row (3 fields where the header has 2); skipped",
        "line 4 of manifest.csv is not a valid CSV row (',' expected after '\"'); skipped",
        "line 8 of manifest.csv is not a valid CSV row (a quote is never closed); skipped"]
    out = tmp_path / "out"
    assert main(["embed", str(root), "--model", "pixels", "--out", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "skipped 3 item(s)" in err and "line 3 of manifest.csv" in err
    assert len(np.load(out / "embeddings.npy")) == 3

    (root / "manifest.csv").write_text('path,"label\n0.png,zero\n')  # no header, no columns: refused by name
    with pytest.raises(ValueError, match="the header of manifest.csv cannot be read"):
        load_dataset(root)


def test_a_corrupt_digest_memo_and_a_damaged_map_are_rebuilt(tmp_path):
    from explorer.maps.projection import UmapParams, projection_key, umap_project
    from explorer.store.cache import NPY, entry_path

    root = tmp_path / "imgs"
    for i in range(6):
        png(root / f"{i}.png", 30 * i)
    cache = tmp_path / "cache"
    first = embed_dataset(load_image_folder(root), get_embedder("pixels"), cache_dir=cache)
    memo = cache_root(root=cache) / "digests" / "files.npz"
    memo.write_bytes(b"PK\x03\x04 not a zip at all")
    again = embed_dataset(load_image_folder(root), get_embedder("pixels"), cache_dir=cache)
    np.testing.assert_array_equal(again.embeddings, first.embeddings)
    assert digest_memo(cache)["paths"].size == 6  # rewritten whole

    x = np.random.default_rng(0).normal(size=(5, 4))
    coords = umap_project(x, cache_dir=cache)
    path = entry_path("projections", projection_key(x, UmapParams()), NPY, root=cache)
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0x40  # one point moved by a flipped bit
    path.write_bytes(bytes(raw))
    np.testing.assert_array_equal(umap_project(x, cache_dir=cache), coords)


def test_a_digest_memo_with_a_changed_digest_is_not_trusted(tmp_path):
    """The memo is checksummed: one altered digest (same size and mtime, so it would be a hit)
    makes the whole memo unread and rebuilt from the files, not a wrong key for the cache."""
    root = tmp_path / "imgs"
    for i in range(3):
        png(root / f"{i}.png", 60 * i)
    cache = tmp_path / "cache"
    embed_dataset(load_image_folder(root), get_embedder("pixels"), cache_dir=cache)
    memo = cache_root(root=cache) / "digests" / "files.npz"
    first = str(digest_memo(cache)["digests"][0])
    forged = ("0" if first[0] != "0" else "1") + first[1:]
    raw = memo.read_bytes()
    assert raw.count(first.encode("utf-32-le")) == 1  # U40: the digest is stored as UTF-32
    memo.write_bytes(raw.replace(first.encode("utf-32-le"), forged.encode("utf-32-le")))
    assert digest_memo(cache) is MISSING
    embed_dataset(load_image_folder(root), get_embedder("pixels"), cache_dir=cache)
    rebuilt = digest_memo(cache)
    assert {p: str(d) for p, d in zip(rebuilt["paths"].tolist(), rebuilt["digests"].tolist(), strict=True)} == \
        {str(p): file_digest(p) for p in sorted(root.glob("*.png"))}


def test_a_torn_embed_output_is_refused_and_never_read_as_one_dataset(tmp_path, monkeypatch, capsys):
    """A run stopped between its files leaves new embeddings beside old items: readers refuse
    the folder instead of pairing them (score --groups used to report the old dataset's groups)."""
    import explorer.embed.pipeline as pipeline

    root = tmp_path / "imgs"
    for i in range(5):
        png(root / "a" / f"{i}.png", 40 * i + 10)
    out = tmp_path / "out"
    assert main(["embed", str(root), "--model", "pixels", "--out", str(out), "--quiet"]) == 0
    score = ["score", str(out / "embeddings.npy"), "--groups", "label", "--json", "--min-group-size", "2"]
    assert main([*score, "--n-boot", "2"]) == 0
    for i in range(5):  # the same number of items, other content: sizes alone cannot tell
        png(root / "a" / f"{i}.png", 40 * i + 13)
    real_write, calls = pipeline.atomic_write_bytes, []

    def stops_after_the_first_file(path, data):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_write(path, data)

    monkeypatch.setattr(pipeline, "atomic_write_bytes", stops_after_the_first_file)
    assert main(["embed", str(root), "--model", "pixels", "--out", str(out), "--quiet"]) == 130
    monkeypatch.undo()
    capsys.readouterr()
    assert main(score) == 2
    assert "mixes two runs" in capsys.readouterr().err
    with pytest.raises(ValueError, match="mixes two runs"):
        load_dataset(out / "embeddings.npy")
    assert main(["embed", str(root), "--model", "pixels", "--out", str(out), "--quiet"]) == 0  # written again
    assert len(load_dataset(out / "embeddings.npy")) == 5
    assert json.loads((out / "summary.json").read_text())["files"]["items.parquet"]["bytes"] > 0


def test_a_large_output_changed_in_the_middle_is_refused(tmp_path):
    """Over 8 MiB the fingerprint once hashed only the ends: embeddings rewritten in the middle
    with the same size passed as the recorded file."""
    from explorer.data.outputs import EDGE, SUMMARY, check_set, fingerprint, fingerprint_bytes

    x = np.random.default_rng(0).normal(size=(3 * EDGE // 4 // 64, 64)).astype(np.float32)  # 12 MiB
    items = pd.DataFrame({"id": [f"i{n}" for n in range(len(x))], "set": "s"})
    out = tmp_path / "out"
    out.mkdir()
    np.save(out / "embeddings.npy", x, allow_pickle=False)
    items.to_parquet(out / "items.parquet", index=False)
    files = {n: fingerprint_bytes((out / n).read_bytes()) for n in ("embeddings.npy", "items.parquet")}
    (out / SUMMARY).write_text(json.dumps({"files": files}))
    assert fingerprint(out / "embeddings.npy") == files["embeddings.npy"]  # streamed == in memory
    assert len(load_dataset(out / "embeddings.npy")) == len(x)
    data = bytearray((out / "embeddings.npy").read_bytes())
    middle = len(data) // 2
    assert EDGE < middle < len(data) - EDGE  # outside the first and last 4 MiB
    data[middle] ^= 0xFF
    (out / "embeddings.npy").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="mixes two runs"):
        check_set(out, ["embeddings.npy", "items.parquet"])
    with pytest.raises(ValueError, match="mixes two runs"):
        load_dataset(out / "embeddings.npy")


def test_the_app_path_policy_refuses_alike_whether_a_path_exists_or_not(tmp_path):
    data = tmp_path / "data"
    png(data / "a.png", 1)
    policy = PathPolicy(datasets=[str(data)], allow_dirs=[], path_box=False)
    assert policy.check(str(data)) == data.resolve()
    messages = set()
    for path in [tmp_path / "data" / "a.png", "/etc/passwd", "/no/such/file", tmp_path / "data" / ".." / "x"]:
        with pytest.raises(PathRefused) as err:
            policy.check(path)
        messages.add(str(err.value))
    assert len(messages) == 1 and "/etc" not in messages.pop()
    box = PathPolicy(datasets=[], allow_dirs=[str(data)], path_box=True)
    assert box.check(data / "a.png") == (data / "a.png").resolve()
    for path in [data / ".." / "elsewhere", "/etc/passwd"]:
        with pytest.raises(PathRefused):
            box.check(path)
