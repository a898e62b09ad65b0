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


DANGEROUS = ["=HYPERLINK(\"http://evil\",\"x\")", "+1+1", "-2+3", "@SUM(1,1)", "\tcmd", "\rcmd", "safe", "'quoted"]


@pytest.mark.parametrize("via", ["library", "cli"])
def test_csv_exports_neutralise_formulas_and_parquet_json_stay_exact(tmp_path, via, capsys):
    """OWASP CSV injection: a text cell starting with = + - @ tab or CR gets a leading quote."""
    import csv

    items = pd.DataFrame({"id": DANGEROUS, "path": [f"/x/{i}.png" for i in range(8)], "set": ["s"] * 8,
                          "label": ["=1+1", "@x", "ok", "-", "+", "plain", "\t", "'"], "score": [-1.5] * 8})
    reasons = {i: [f"=CMD|' /C calc'!A0 for {i}"] for i in DANGEROUS}
    table = export_table(items, reasons=reasons, scores=items[["score"]])
    if via == "library":
        for fmt in ("csv", "parquet", "json"):
            write_export(table, tmp_path / f"out.{fmt}")
    else:  # the CLI writes through the same code, with the flag store's reasons
        manifest = tmp_path / "data" / "manifest.parquet"  # keeps every id exactly, tab and CR too
        manifest.parent.mkdir()
        items.drop(columns=["score"]).to_parquet(manifest, index=False)
        cache = str(tmp_path / "cache")
        FlagStore.for_dataset(str(manifest), root=cache).add(DANGEROUS, reason="=EVIL()")
        for fmt in ("csv", "parquet", "json"):
            assert main(["export", str(manifest), "--out", str(tmp_path / f"out.{fmt}"), "--cache-dir", cache]) == 0
    with open(tmp_path / "out.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    for row in rows[1:]:
        for cell in row:
            if cell.replace(".", "", 1).lstrip("-").isdigit():
                continue  # a number is a number in a spreadsheet too (score -1.5)
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row
    ids = [r[0] for r in rows[1:]]
    assert ids == [("'" + i if i[0] in "=+-@\t\r" else i) for i in DANGEROUS]
    exact_parquet = pd.read_parquet(tmp_path / "out.parquet")
    exact_json = pd.DataFrame(json.loads((tmp_path / "out.json").read_text()))
    for back in (exact_parquet, exact_json):
        assert back["id"].tolist() == DANGEROUS and back["label"].tolist() == items["label"].tolist()


def test_embed_skip_report_neutralises_formulas_in_ids_and_reasons(tmp_path):
    """skipped.csv lists ids taken from file names and manifests: a name starting with = or @
    must not run as a formula when the report is opened in a spreadsheet."""
    import csv

    from PIL import Image

    src = tmp_path / "imgs"
    src.mkdir()
    Image.new("RGB", (6, 6), "red").save(src / "good.png")
    for name in ("=HYPERLINK(1).png", "@SUM(1).png", "+1.png"):
        (src / name).write_bytes(f"not an image: {name}".encode())
    out = tmp_path / "out"
    assert main(["embed", str(src), "--model", "pixels", "--out", str(out), "--quiet",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    with open(out / "skipped.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["id", "path", "reason"] and len(rows) == 4
    assert sorted(r[0] for r in rows[1:]) == ["'+1.png", "'=HYPERLINK(1).png", "'@SUM(1).png"]
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for cell in row)
