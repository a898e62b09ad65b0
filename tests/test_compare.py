"""Comparing sample sets with a reference, checked against known truth built from the digits.

The digits are embedded with the pixel embedder: in pixel space the 8x8 digits are separable
(1-NN label agreement 99%), while ImageNet features of 32-px digits are not (85%), so pixel
space is where "which class is missing" has a known answer. 16x16 pixels keep everything the
8x8 originals hold, in a quarter of the dimensions of the default 32x32.
"""
import io
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from explorer.cli import main
from explorer.compare.comparison import Comparison, cached_comparison
from explorer.compare.gate import failing, parse_conditions
from explorer.data.datasets import load_dataset, load_manifest, sample_data_dir
from explorer.diagnostics import diagnostic_table, flag_with_reasons
from explorer.diagnostics.duplicates import exact_duplicates, near_duplicates
from explorer.diagnostics.memorization import memorization
from explorer.embed.models.pixels import PixelEmbedder
from explorer.embed.pipeline import embed_dataset
from explorer.metrics.ken import novel_modes
from explorer.metrics.prdc import prdc
from explorer.store.flags import FlagStore


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """Pixel embeddings and items of the bundled digits (all four sets)."""
    result = embed_dataset(load_dataset(sample_data_dir()), PixelEmbedder(size=16),
                           cache_dir=tmp_path_factory.mktemp("px"))
    return result.embeddings, result.items


def subset(x, items, mask, name):
    return x[mask], items[mask].assign(set=name)


def test_two_random_halves_have_density_one_and_coverage_one_minus_two_to_the_minus_k(digits):
    x, items = digits
    real = x[(items["set"] == "real").to_numpy()]
    for seed in range(3):
        order = np.random.default_rng(seed).permutation(len(real))
        half = len(real) // 2
        r = prdc(real[order[:half]], real[order[half:]], k=5)
        assert abs(r.density - 1) <= 0.05, (seed, r.summary())
        assert abs(r.coverage - (1 - 2 ** -5)) <= 0.03, (seed, r.summary())
        assert r.precision > 0.9 and r.recall > 0.9


def test_prdc_extremes():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(200, 6))
    far = rng.normal(size=(100, 6)) * 0.01 + np.array([0, 0, 0, 0, 0, 50.0])  # one far corner of the sphere
    r = prdc(real, far, k=5)
    assert r.recall < 0.2 and r.coverage < 0.2
    same = prdc(real, real, k=5)
    assert same.precision == 1.0 and same.coverage == 1.0 and same.recall == 1.0
    # each item sits in its own ball and in the balls of the items that count it among their 5 nearest
    assert same.density == pytest.approx(1 + 1 / 5)
    assert np.isnan(r.fake_rarity[r.fake_counts == 0]).all()


def test_removed_classes_fall_in_underrepresented_regions(digits):
    x, items = digits
    labels = items["label"].astype(str).to_numpy()
    sets = items["set"].to_numpy()
    parts = [subset(x, items, sets == "real", "real")]
    kept = {}
    for seed in range(3):
        keep = np.random.default_rng(seed).choice(10, 3, replace=False).astype(str)
        kept[f"gmm3_{seed}"] = set(keep)
        parts.append(subset(x, items, (sets == "gmm") & np.isin(labels, keep), f"gmm3_{seed}"))
    kept["collapsed"] = {"0", "1", "7"}
    parts.append(subset(x, items, sets == "collapsed", "collapsed"))
    xs, table = np.vstack([p[0] for p in parts]), pd.concat([p[1] for p in parts], ignore_index=True)
    c = Comparison(reference="real", n_boot=3).fit(xs, table)

    ref = np.flatnonzero(table["set"] == "real")
    ref_labels = table["label"].astype(str).to_numpy()[ref]
    summary = c.summary()
    for name, keep in kept.items():
        flagged = c.diagnostics_[f"underrepresented[{name}]"].flag[ref]
        removed = ~np.isin(ref_labels, list(keep))
        assert flagged[removed].mean() >= 0.90, name
        assert flagged[~removed].mean() <= 0.10, name
        s = summary["sets"][name]
        assert {row["class"] for row in s["collapsed"]} == set("0123456789") - keep
        assert s["collapsed_classes"] == 7
        assert s["coverage"] < 0.5 and s["recall"] < 0.5
        # what the reference has more of: its top items come from the removed classes
        top = [i for m in s["missing_modes"] for i in m["top"]]
        top_labels = table.set_index("id").loc[top, "label"].astype(str)
        assert top_labels.isin(set("0123456789") - keep).mean() >= 0.8, name
        assert s["vs1_ratio"] < 0.9


def write_png(path, array):
    Image.fromarray(np.clip(array, 0, 255).astype(np.uint8)).save(path)


def test_injected_near_duplicates_exact_copies_and_memorised_samples_are_found(digits, tmp_path):
    """Near copies (noise, dimming, JPEG) and exact copies inside the reference; copies of
    reference items hidden among model samples."""
    x, items = digits
    root = sample_data_dir()
    real = items[items["set"] == "real"].reset_index(drop=True)
    gmm = items[items["set"] == "gmm"].reset_index(drop=True)
    rng = np.random.default_rng(7)
    picks = rng.choice(len(real), 160, replace=False)
    near_src, exact_src, mem_src = picks[:100], picks[100:120], picks[120:]
    rows = [{"path": str(root / p), "set": "real", "label": lab} for p, lab in zip(real["path"], real["label"])]
    rows += [{"path": str(root / p), "set": "gmm", "label": lab} for p, lab in zip(gmm["path"], gmm["label"])]
    (tmp_path / "extra").mkdir()
    for j, i in enumerate(near_src):
        pixels = np.asarray(Image.open(real["path"][i]).convert("L"), np.float32) * 0.95
        buf = io.BytesIO()
        Image.fromarray(np.clip(pixels + rng.normal(0, 3, pixels.shape), 0, 255).astype(np.uint8)).save(
            buf, "JPEG", quality=90)
        (tmp_path / "extra" / f"near{j}.jpg").write_bytes(buf.getvalue())
        rows.append({"path": f"extra/near{j}.jpg", "set": "real", "label": real["label"][i]})
    for j, i in enumerate(exact_src):
        (tmp_path / "extra" / f"exact{j}.png").write_bytes(open(real["path"][i], "rb").read())
        rows.append({"path": f"extra/exact{j}.png", "set": "real", "label": real["label"][i]})
    for j, i in enumerate(mem_src):  # half byte-exact copies, half re-encoded with noise
        pixels = np.asarray(Image.open(real["path"][i]).convert("L"), np.float32)
        if j % 2:
            pixels = pixels + rng.normal(0, 2, pixels.shape)
        write_png(tmp_path / "extra" / f"copy{j}.png", pixels)
        rows.append({"path": f"extra/copy{j}.png", "set": "gmm", "label": real["label"][i]})
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    # the manifest names the sample data's files by absolute path: outside its folder, so allowed
    dataset = load_manifest(tmp_path / "manifest.csv", allow_outside=True)
    result = embed_dataset(dataset, PixelEmbedder(size=16), cache_dir=tmp_path / "c")
    c = Comparison(reference="real", n_boot=3).fit(result.embeddings, result.items)
    ids = result.items["id"].to_numpy()
    by_path = dict(zip(result.items["path"], ids))

    near_truth = {by_path[str(root / real["path"][i])] for i in near_src} | {
        i for i in ids if i.startswith("extra/near")}
    flagged = set(ids[c.diagnostics_["near_duplicate"].flag & (result.items["set"] == "real").to_numpy()])
    flagged -= set(ids[c.diagnostics_["exact_duplicate"].flag])  # byte-exact pairs are reported as exact
    flagged -= {by_path[str(root / real["path"][i])] for i in exact_src}
    hits = len(flagged & near_truth)
    assert hits / len(flagged) >= 0.95 and hits / len(near_truth) >= 0.95, (len(flagged), hits)

    exact = c.diagnostics_["exact_duplicate"]
    assert set(ids[exact.flag]) == {f"extra/exact{j}.png" for j in range(20)}
    originals = {f"extra/exact{j}.png": by_path[str(root / real["path"][i])] for j, i in enumerate(exact_src)}
    assert all(exact.reasons[k] == [f"exact copy of {originals[ids[k]]}"] for k in np.flatnonzero(exact.flag))

    mem = c.diagnostics_["memorized"]
    copies = np.array([i.startswith("extra/copy") for i in ids])
    assert mem.flag[copies].all()  # every memorised copy is flagged
    assert mem.flag[~copies & (result.items["set"] == "gmm").to_numpy()].mean() <= 0.01
    for i in np.flatnonzero(copies):
        j = int(ids[i].removeprefix("extra/copy").removesuffix(".png"))
        assert by_path[str(root / real["path"][mem_src[j]])] in mem.reasons[i][0]

    # near-duplicate reasons hold "; " themselves: flagged from the per-item table (as the Compare
    # page does) each keeps its whole reason; splitting a joined string once cut them short
    near = c.diagnostics_["near_duplicate"]
    store = FlagStore("near", root=tmp_path / "flags")
    flag_with_reasons(store, diagnostic_table(c.diagnostics_, ids), "near_duplicate")
    saved = store.table()
    assert set(zip(saved["id"], saved["reason"])) == {
        (ids[i], f"near_duplicate: {r}") for i in np.flatnonzero(near.flag) for r in near.reasons[i]}
    assert len(saved) >= 100 and all("; group real/g" in r and r.endswith(")") for r in saved["reason"])


def test_duplicate_helpers_on_closed_forms():
    assert exact_duplicates(["a", None, "a", "b", None]).tolist() == [-1, -1, 0, -1, -1]
    x = np.eye(6)
    x[3] = x[2] + 1e-4  # near copy of row 2, and a chain 4-5
    x[5] = x[4] + 1e-4
    r = near_duplicates(x, threshold=0.9999)
    assert r.group.tolist() == [-1, -1, 0, 0, 1, 1] and r.n_groups == 2
    m = memorization(np.array([[0.0, 1, 1e-5, 0, 0, 0]]), np.eye(6), threshold=0.999)
    assert m.nearest.tolist() == [1] and m.flagged.tolist() == [True]


def test_novel_modes_of_identical_sets_are_empty_and_of_disjoint_sets_are_everything():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 20))
    same = novel_modes(x, x)
    assert same.novel_mass() == pytest.approx(0, abs=1e-9)
    y = np.hstack([np.zeros((40, 20)), rng.normal(size=(40, 5))])
    disjoint = novel_modes(np.hstack([x, np.zeros((50, 5))]), y)
    # orthogonal supports: C_X − C_Y has C_X's eigenvalues on one side and C_Y's on the other
    assert disjoint.novel_mass(of_x=True) == pytest.approx(1.0)
    assert disjoint.novel_mass(of_x=False) == pytest.approx(1.0)


def test_every_diagnostic_keeps_the_contract_and_the_table_is_cached(digits, tmp_path, monkeypatch):
    x, items = digits
    mask = items["set"].isin(["real", "lowtemp"]).to_numpy()
    c = Comparison(reference="real", n_boot=3).fit(x[mask], items[mask])
    for name, d in c.diagnostics_.items():
        scored = ~np.isnan(d.score)
        assert ((d.score[scored] >= 0) & (d.score[scored] <= 1)).all(), name
        assert not d.flag[~scored].any(), name
        assert all(d.reasons[i] for i in np.flatnonzero(d.flag)), name  # every flag says why
        assert not any(d.reasons[i] for i in np.flatnonzero(~d.flag)), name
        assert d.summary["flagged"] == d.flag.sum() and d.description
    table = diagnostic_table(c.diagnostics_, c.items_["id"])
    assert list(table.columns[1:-2]) == list(c.diagnostics_)
    summary = c.summary()
    json.dumps(summary)  # plain JSON types only
    assert summary["sets"]["lowtemp"]["vs1_ratio"] < 0.85  # low temperature: less diverse
    low, high = summary["sets"]["lowtemp"]["vs_ci"]["1"]
    assert low < summary["sets"]["lowtemp"]["vs"]["1"] < high

    first = cached_comparison(x[mask], items[mask], reference="real", cache_dir=tmp_path, n_boot=3)

    def recompute(*args, **kwargs):
        raise AssertionError("a cache hit must not compare again")

    monkeypatch.setattr(Comparison, "fit", recompute)
    again = cached_comparison(x[mask], items[mask], reference="real", cache_dir=tmp_path, n_boot=3)
    assert first[0] == again[0]
    pd.testing.assert_frame_equal(first[1], again[1])
    assert len(list((tmp_path / "compare").rglob("*.parquet"))) == 1  # one file holds table and summary
    with pytest.raises(AssertionError, match="must not compare again"):  # other parameters: computed anew
        cached_comparison(x[mask], items[mask], reference="real", cache_dir=tmp_path, n_boot=4)


def test_fail_if_conditions():
    metrics = {"a": {"coverage": 0.7, "vs1_ratio": 0.95}, "b": {"coverage": 0.9, "vs1_ratio": 0.85}}
    assert failing(metrics, parse_conditions(["coverage<0.8"])) == ["a: coverage = 0.7 < 0.8"]
    assert failing(metrics, parse_conditions(["b.vs1_ratio<0.9,a.coverage>=0.7"])) == [
        "b: vs1_ratio = 0.85 < 0.9", "a: coverage = 0.7 >= 0.7"]
    assert failing(metrics, parse_conditions(["coverage<0.5"])) == []
    for bad in ["coverage", "coverage<<1", "__import__('os')<1"]:
        with pytest.raises(ValueError):
            failing(metrics, parse_conditions([bad]))
    with pytest.raises(ValueError, match="unknown metric"):
        failing(metrics, parse_conditions(["nope<1"]))


def test_cli_compare_reports_json_writes_files_and_gates(tmp_path, capsys):
    args = ["compare", "--in", str(sample_data_dir()), "--reference", "real", "collapsed", "--model", "pixels",
            "--n-boot", "3", "--quiet", "--json", "--out", str(tmp_path / "out")]
    assert main([*args, "--fail-if", "coverage<0.5"]) == 1
    out = json.loads(capsys.readouterr().out)
    s = out["sets"]["collapsed"]
    for key in ("precision", "recall", "density", "coverage", "vs1_ratio", "vs_ci", "memorized_share",
                "near_duplicate_share", "underrepresented", "collapsed", "novel_modes", "missing_modes"):
        assert key in s, key
    assert out["fail_if"]["failed"] == [f"collapsed: coverage = {s['coverage']:.4g} < 0.5"]
    assert out["embedder"] == "pixels-v1-32" and out["reference"] == "real"
    table = pd.read_parquet(tmp_path / "out" / "diagnostics.parquet")
    assert len(table) == 2797 and {"underrepresented[collapsed]", "memorized", "flags", "reasons"} <= set(table)
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["sets"]["collapsed"]["coverage"] == s["coverage"]

    assert main([*args, "--fail-if", "coverage<0.1"]) == 0  # same numbers, from the cache
    assert main([*args, "--fail-if", "covrage<0.1"]) == 2
    assert "unknown metric 'covrage'" in capsys.readouterr().err
    text_args = [a for a in args if a != "--json"]
    assert main(text_args) == 0
    report = capsys.readouterr().out
    assert "collapsed classes: 2, 3, 4, 5, 6, 8, 9" in report and "coverage" in report


def test_cli_compare_with_dataset_paths_names_each_set_and_prefixes_its_ids(tmp_path, capsys, rng):
    """Without --in each path is one set, named after it, with ids prefixed NAME/."""
    real = rng.normal(size=(60, 8))
    model = real[:40] + 1e-4 * rng.normal(size=(40, 8))  # near copies of the first 40 reference items
    np.save(tmp_path / "real.npy", real)
    np.save(tmp_path / "model.npy", model)
    out = tmp_path / "out"
    code = main(["compare", "--reference", str(tmp_path / "real.npy"), str(tmp_path / "model.npy"), "--json",
                 "--n-boot", "2", "--out", str(out), "--cache-dir", str(tmp_path / "cache")])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["reference"] == "real" and list(summary["sets"]) == ["model"]
    assert summary["n_reference"] == 60 and summary["sets"]["model"]["n"] == 40
    per_item = pd.read_parquet(out / "diagnostics.parquet")
    assert per_item.loc[per_item["set"] == "real", "id"].tolist() == [f"real/row{i}" for i in range(60)]
    assert per_item.loc[per_item["set"] == "model", "id"].tolist() == [f"model/row{i}" for i in range(40)]
    memorised = {r["reason"] for reasons in per_item["reasons"] for r in reasons if r["diagnostic"] == "memorized"}
    assert {f"real/row{i}" for i in range(40)} == {r.split("reference item ")[1].split(" ")[0] for r in memorised}
    assert summary["sets"]["model"]["memorized_share"] == 1.0


def test_choosing_another_reference_reuses_what_does_not_depend_on_it(digits, tmp_path, monkeypatch):
    import explorer.compare.per_set as per_set

    x, items = digits
    # under plain cosine the per-set scores do not depend on the reference
    first = cached_comparison(x, items, reference="real", cache_dir=tmp_path, n_boot=3, kernel="cosine")
    monkeypatch.setattr(per_set, "per_set_results", lambda *a, **k: (_ for _ in ()).throw(AssertionError("again")))
    other = cached_comparison(x, items, reference="gmm", cache_dir=tmp_path, n_boot=3, kernel="cosine")  # reused
    assert other[0]["reference"] == "gmm"
    # the reused numbers are the ones a fresh comparison computes
    monkeypatch.undo()
    fresh = Comparison(reference="gmm", n_boot=3, kernel="cosine").fit(x, items).summary()
    assert fresh["sets"]["real"]["vs"] == other[0]["sets"]["real"]["vs"]
    assert first[0]["sets"]["gmm"]["vs"] == other[0]["reference_scores"]["vs"]
    # centred cosine is centred on the reference's mean: another reference moves the centre, so
    # the scores are computed again, and differ
    centred = {ref: cached_comparison(x, items, reference=ref, cache_dir=tmp_path, n_boot=3)[0]
               for ref in ("real", "gmm")}
    assert centred["real"]["sets"]["gmm"]["vs"] != centred["gmm"]["reference_scores"]["vs"]
    assert centred["gmm"]["kernel"]["centre"].startswith("mean of the reference 'gmm'")
    assert fresh["reference_duplicates"] == other[0]["reference_duplicates"]
