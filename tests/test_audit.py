"""The one-dataset audit: planted byte-identical copies, near copies and outliers are all found,
from the library, the CLI and the app."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from explorer.cli import main
from explorer.compare.audit import Audit, cached_audit
from explorer.data.datasets import load_dataset
from explorer.diagnostics import flag_masks
from explorer.embed.models.pixels import PixelEmbedder
from explorer.embed.pipeline import embed_dataset


@pytest.fixture
def planted(tmp_path):
    """200 distinct noise images in two folders; 12 byte-identical copies, 10 near copies (a little
    more noise) and 3 outliers (smooth gradients among noise)."""
    root = tmp_path / "icons"
    rng = np.random.default_rng(3)
    originals = []
    for i in range(200):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"img{i:02d}.png"
        Image.fromarray(rng.integers(40, 216, (16, 16, 3), dtype=np.uint8)).save(path)
        originals.append(path)
    exact, near = {}, {}
    for j in range(12):
        source = originals[j]
        copy = root / source.parent.name / f"copy{j:02d}.png"
        shutil.copyfile(source, copy)
        exact[copy.relative_to(root).as_posix()] = source.relative_to(root).as_posix()
    for j in range(10):
        source = originals[20 + j]
        pixels = np.asarray(Image.open(source), np.float32) + rng.normal(0, 2, (16, 16, 3))
        copy = root / "b" / f"near{j:02d}.png"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(copy)
        near[copy.relative_to(root).as_posix()] = source.relative_to(root).as_posix()
    outliers = []
    for j, (a, b) in enumerate([(0, 1), (1, 0), (1, 1)]):
        yy, xx = np.mgrid[0:16, 0:16]
        ramp = ((a * xx + b * yy) * 255 / 30).astype(np.uint8)
        path = root / "a" / f"odd{j}.png"
        Image.fromarray(np.stack([ramp, 255 - ramp, ramp // 2], axis=-1)).save(path)
        outliers.append(path.relative_to(root).as_posix())
    return root, exact, near, outliers


def test_the_audit_finds_every_planted_copy_near_copy_and_outlier(planted, tmp_path):
    root, exact, near, outliers = planted
    result = embed_dataset(load_dataset(root), PixelEmbedder(size=16), cache_dir=tmp_path / "cache")
    audit = Audit().fit(result.embeddings, result.items)
    ids = result.items["id"].to_numpy()
    found_exact = {frozenset((ids[i], ids[j])) for i, j in enumerate(audit.exact_) if j >= 0}
    assert found_exact == {frozenset(pair) for pair in exact.items()}  # each copy with its twin, nothing else
    near_groups = audit.near_["all items"].group
    for copy, source in near.items():
        i, j = int(np.flatnonzero(ids == copy)[0]), int(np.flatnonzero(ids == source)[0])
        assert near_groups[i] >= 0 and near_groups[i] == near_groups[j], copy
    flagged_near = set(ids[audit.diagnostics_["near_duplicate"].flag])
    assert flagged_near - set(exact) - set(exact.values()) == set(near) | set(near.values())
    twins = set(exact) | set(exact.values())
    assert set(ids[audit.diagnostics_["exact_duplicate"].flag]) <= twins
    assert set(ids[audit.diagnostics_["outlier"].flag]) == set(outliers)
    summary = audit.summary()
    assert summary["exact_duplicates"] == {"items": 12, "groups": 12, "largest": summary["exact_duplicates"]["largest"]}
    assert sorted(map(sorted, summary["exact_duplicates"]["largest"])) == sorted(sorted(p) for p in exact.items())
    assert summary["outliers"] == 3 and json.dumps(summary)
    assert set(audit.diagnostics_) == {"exact_duplicate", "near_duplicate", "rarity", "outlier"}


def test_the_audit_is_cached(planted, tmp_path, monkeypatch):
    root, *_ = planted
    result = embed_dataset(load_dataset(root), PixelEmbedder(size=16), cache_dir=tmp_path / "cache")
    summary, table = cached_audit(result.embeddings, result.items, cache_dir=tmp_path / "cache")
    monkeypatch.setattr(Audit, "fit", lambda *a, **k: (_ for _ in ()).throw(AssertionError("recomputed")))
    again = cached_audit(result.embeddings, result.items, cache_dir=tmp_path / "cache")
    assert again[0] == summary
    pd.testing.assert_frame_equal(again[1], table)
    assert flag_masks(table)["exact_duplicate"].sum() == 12


def test_the_cli_audit_reports_and_writes_the_per_item_table(planted, tmp_path, capsys):
    root, exact, near, outliers = planted
    args = ["audit", str(root), "--model", "pixels", "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    assert main([*args, "--json", "--out", str(tmp_path / "out")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["exact_duplicates"]["items"] == 12 and summary["outliers"] == 3
    assert summary["near_duplicates"]["items"] >= 20
    table = pd.read_parquet(tmp_path / "out" / "diagnostics.parquet")
    flagged = set(table.loc[[("exact_duplicate" in f) for f in table["flags"]], "id"])
    assert len(flagged) == 12 and flagged <= set(exact) | set(exact.values())
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "exact duplicates: 12 copies in 12 group(s)" in text and "outliers: 3" in text


@pytest.mark.slow
def test_the_audit_page_shows_and_flags_what_the_library_finds(planted, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from conftest import APP, page_file
    from explorer.cli.app import AppSettings
    from explorer.store.flags import FlagStore

    root, exact, near, outliers = planted
    monkeypatch.setenv("VENDISCOPE_CACHE", str(tmp_path / "cache"))
    at = AppTest.from_file(APP, default_timeout=600)
    at.session_state["app_settings"] = AppSettings(sources=[str(root)])
    at.session_state["embedder"] = "pixels"
    at.run()
    at.switch_page(page_file("audit")).run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Exact copies"] == "12" and metrics["Outliers"] == "3"
    assert int(metrics["Near duplicates"]) >= 20
    at.button(key="audit_flag_exact_duplicate").click().run()
    assert not at.exception, at.exception
    flags = FlagStore.for_dataset(load_dataset(root).source).table()
    assert len(flags) == 12 and flags["reason"].str.startswith("exact_duplicate: exact copy of ").all()


@pytest.mark.slow
def test_the_audit_page_states_the_parameters_the_audit_ran_with(planted, tmp_path, monkeypatch):
    """The caption reads alpha and the threshold from the audit's summary: run with another alpha,
    it says so, instead of repeating the library's default in words."""
    import functools

    from streamlit.testing.v1 import AppTest

    import explorer.compare.audit as audit
    from conftest import APP, page_file
    from explorer.cli.app import AppSettings

    root = planted[0]
    monkeypatch.setenv("VENDISCOPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(audit, "cached_audit", functools.partial(audit.cached_audit, alpha=0.2))
    at = AppTest.from_file(APP, default_timeout=600)
    at.session_state["app_settings"] = AppSettings(sources=[str(root)])
    at.session_state["embedder"] = "pixels"
    at.run()
    at.switch_page(page_file("audit")).run()
    assert not at.exception, at.exception
    result = embed_dataset(load_dataset(root), PixelEmbedder())
    summary, _ = audit.cached_audit(result.embeddings, result.items)
    near = summary["near_duplicates"]
    assert near["alpha"] == 0.2
    captions = [c.value for c in at.caption]
    assert any(f"cosine ≥ {near['threshold']:.4f} (0.2 × the median distance" in c for c in captions), captions
    fixed = Audit(near_threshold=0.99).fit(result.embeddings, result.items).summary()["near_duplicates"]
    assert fixed["alpha"] is None and fixed["threshold"] == 0.99
