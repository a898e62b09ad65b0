import json
import subprocess
import sys

import pandas as pd
import pytest

from explorer.cli import main
from explorer.data.datasets import load_dataset, sample_data_dir
from explorer.store.export import export_table, write_export
from explorer.store.flags import FlagStore

KILLER = """
import sys
from explorer.store.flags import FlagStore
store = FlagStore("k", root=sys.argv[1])
store.add(["a", "b"], reason="kept")
print("committed", flush=True)
sys.stdin.read()  # wait to be killed
"""


def test_flags_persist_and_survive_a_killed_process(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", KILLER, str(tmp_path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "committed"
    proc.kill()
    proc.wait()
    store = FlagStore("k", root=tmp_path)
    assert store.reasons() == {"a": ["kept"], "b": ["kept"]}
    assert store.add(["a", "c"], reason="kept") == 1  # a was already flagged for this reason
    assert store.add(["a"], reason="duplicate", source="diagnostic:duplicates") == 1
    assert store.reasons()["a"] == ["kept", "duplicate"]
    assert store.remove(["a"], reason="kept") == 1 and store.remove(["b"]) == 1
    assert store.reasons() == {"a": ["duplicate"], "c": ["kept"]}
    with pytest.raises(ValueError, match="reason"):
        store.add(["x"], reason="  ")


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_export_formats_round_trip(tmp_path, fmt):
    items = pd.DataFrame({"id": ["a", "b"], "path": ["/x/a.png", "/x/b.png"], "set": ["s", "t"],
                          "label": ["1", "2"], "extra": [1, 2]})
    table = export_table(items, reasons={"b": ["blurry", "duplicate"]},
                         scores=pd.DataFrame({"entropy": [0.5, 1.5]}))
    path = write_export(table, tmp_path / f"out.{fmt}")
    back = {"csv": lambda p: pd.read_csv(p, keep_default_na=False), "parquet": pd.read_parquet,
            "json": lambda p: pd.DataFrame(json.loads(p.read_text()))}[fmt](path)
    assert back["id"].tolist() == ["a", "b"]
    assert back["flag_reasons"].tolist() == ["", "blurry; duplicate"]
    assert back["entropy"].tolist() == [0.5, 1.5]
    assert "extra" not in back


def test_cli_flag_then_export_flagged(tmp_path, capsys):
    src = str(sample_data_dir())
    cache = str(tmp_path / "cache")
    ids = ["real/0/real_0000.png", "gmm/3/gmm_0300.png"]
    assert main(["flag", src, "--ids", ",".join(ids), "--reason", "looks odd", "--cache-dir", cache]) == 0
    assert main(["flag", src, "--ids", "nope.png", "--reason", "x", "--cache-dir", cache]) == 2
    assert "not in digits" in capsys.readouterr().err
    out = tmp_path / "flagged.parquet"
    assert main(["export", src, "--flagged", "--out", str(out), "--cache-dir", cache]) == 0
    table = pd.read_parquet(out)
    assert sorted(table["id"]) == sorted(ids)
    assert set(table["flag_reasons"]) == {"looks odd"} and {"path", "set", "label"} <= set(table.columns)
    assert main(["flag", src, "--ids", ids[0], "--remove", "--cache-dir", cache]) == 0
    assert main(["export", src, "--flagged", "--out", str(tmp_path / "f.csv"), "--cache-dir", cache]) == 0
    assert pd.read_csv(tmp_path / "f.csv")["id"].tolist() == [ids[1]]


def test_cli_flag_and_export_with_an_ids_file(tmp_path, capsys):
    src = str(sample_data_dir())
    cache = str(tmp_path / "cache")
    ids = ["real/1/real_0001.png", "lowtemp/5/lowtemp_0500.png", "collapsed/7/collapsed_0667.png"]
    listing = tmp_path / "ids.txt"
    listing.write_text("\n".join([ids[0], "", f"  {ids[1]}  ", ids[2]]) + "\n")  # blank lines and spaces
    assert main(["flag", src, "--ids-file", str(listing), "--reason", "from a file", "--cache-dir", cache]) == 0
    flags = FlagStore.for_dataset(load_dataset(src).source, root=cache).table()
    assert sorted(flags["id"]) == sorted(ids) and set(flags["reason"]) == {"from a file"}
    some = tmp_path / "some.txt"
    some.write_text(ids[2] + "\n")
    out = tmp_path / "some.json"
    assert main(["export", src, "--ids-file", str(some), "--out", str(out), "--cache-dir", cache]) == 0
    assert [r["id"] for r in json.loads(out.read_text())] == [ids[2]]
    listing.write_text("not/an/item.png\n")
    assert main(["flag", src, "--ids-file", str(listing), "--reason", "x", "--cache-dir", cache]) == 2
    assert "not in digits" in capsys.readouterr().err
