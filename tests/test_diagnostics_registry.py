"""Diagnostics are a registry: a user adds one in one file, and the comparison, the per-item table,
the CLI and the app list it with the built-in ones."""
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from explorer.cli.parser import main
from explorer.compare.comparison import Comparison, cached_comparison
from explorer.data.errors import InputError
from explorer.diagnostics import (
    DiagnosticResult,
    diagnostic_table,
    flag_masks,
    forget_plugins,
    reasons_of,
    registered,
)
from explorer.diagnostics import base as registry

PLUGIN = '''
"""A user's own diagnostic: items pointing away from their set's mean direction."""
import numpy as np

from explorer.data import normalize_rows
from explorer.diagnostics import Diagnostic, DiagnosticResult, register


@register
class OffCentre(Diagnostic):
    name = "off_centre"
    description = "an item whose cosine to its set's mean direction is below 0.5"

    def run(self, c):
        r = DiagnosticResult.empty(self, len(c.items_))
        for name, idx in c.index_.items():
            unit = normalize_rows(c.embeddings_[idx])
            cos = unit @ normalize_rows(unit.mean(axis=0, keepdims=True))[0]
            r.score[idx] = np.clip(1.0 - cos, 0.0, 1.0)
            far = idx[cos < 0.5]
            r.flag_items(far, [f"cosine {v:.2f} to the mean of {name}" for v in cos[cos < 0.5]])
        return [r.finish(threshold=0.5)]
'''
BUILT_IN = {"exact_duplicate", "near_duplicate", "rarity", "memorized", "outside_reference", "overrepresented",
            "collapsed", "novel", "uncovered", "underrepresented", "missing"}


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    path = tmp_path / "off_centre.py"
    path.write_text(PLUGIN)
    monkeypatch.setenv("VENDISCOPE_PLUGINS", str(path))
    yield path
    registry.unregister("off_centre")
    forget_plugins()


def two_sets(rng, n=80):
    """Two sets along e1 with a few items along e2 (known to be off-centre) in each."""
    base = np.zeros((n, 6))
    base[:, 0] = 1.0
    x = base + 0.05 * rng.normal(size=(n, 6))
    odd = [3, 17, 40]
    x[odd] = [0, 1, 0, 0, 0, 0]
    x = np.vstack([x, x[::-1] + 0.01 * rng.normal(size=(n, 6))])
    items = pd.DataFrame({"id": [f"i{j}" for j in range(2 * n)], "set": ["ref"] * n + ["gen"] * n})
    truth = {f"i{j}" for j in odd} | {f"i{2 * n - 1 - j}" for j in odd}
    return x, items, truth


def test_built_in_diagnostics_are_registered():
    assert BUILT_IN <= set(registered())
    for name, cls in registered().items():
        assert cls.name == name and cls.description


def test_a_diagnostic_in_one_file_runs_in_the_comparison_and_its_table(plugin, rng, tmp_path):
    x, items, truth = two_sets(rng)
    assert "off_centre" in registered()  # loaded from VENDISCOPE_PLUGINS
    c = Comparison(reference="ref", n_boot=2).fit(x, items)
    mine = c.diagnostics_["off_centre"]
    assert set(items["id"][mine.flag]) == truth
    assert c.summary()["diagnostics"]["off_centre"]["flagged"] == len(truth)
    table = diagnostic_table(c.diagnostics_, c.items_["id"])
    assert set(table.loc[flag_masks(table)["off_centre"], "id"]) == truth
    assert all(r[0].startswith("cosine ") for r in reasons_of(table, "off_centre").values())
    _, cached = cached_comparison(x, items, reference="ref", cache_dir=tmp_path, n_boot=2)
    assert "off_centre" in cached.columns
    only = Comparison(reference="ref", n_boot=2, diagnostics=["off_centre"]).fit(x, items)
    assert list(only.diagnostics_) == ["off_centre"]
    with pytest.raises(ValueError, match="unknown diagnostic"):
        Comparison(reference="ref", n_boot=2, diagnostics=["nope"]).fit(x, items)


def test_the_cli_lists_and_runs_a_plugin_diagnostic(plugin, rng, tmp_path):
    x, items, truth = two_sets(rng)
    np.save(tmp_path / "emb.npy", x)
    items.to_parquet(tmp_path / "items.parquet")
    env = {"VENDISCOPE_PLUGINS": str(plugin), "VENDISCOPE_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    run = [sys.executable, "-m", "explorer.cli"]
    listed = subprocess.run([*run, "diagnostics", "--json"], capture_output=True, text=True, check=True,
                            env={**os.environ, **env})
    known = json.loads(listed.stdout)
    assert BUILT_IN | {"off_centre"} <= set(known) and known["off_centre"].startswith("an item whose cosine")
    out = subprocess.run([*run, "compare", "--in", str(tmp_path / "emb.npy"), "--reference", "ref", "gen", "--json",
                          "--n-boot", "2", "--out", str(tmp_path / "out")], capture_output=True, text=True,
                         env={**os.environ, **env})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["diagnostics"]["off_centre"]["flagged"] == len(truth)
    per_item = pd.read_parquet(tmp_path / "out" / "diagnostics.parquet")
    assert set(per_item.loc[[("off_centre" in f) for f in per_item["flags"]], "id"]) == truth


def test_a_broken_plugin_is_an_input_error_naming_it(tmp_path, monkeypatch, capsys):
    """The plugin is the user's code: exit 2 with its name and the reason, not 3 ("internal error")."""
    bad = tmp_path / "bad.py"
    bad.write_text("raise RuntimeError('boom')\n")
    monkeypatch.setenv("VENDISCOPE_PLUGINS", str(bad))
    with pytest.raises(InputError, match=r"bad\.py.*RuntimeError: boom"):
        registered()
    assert main(["diagnostics", "--json"]) == 2
    err = capsys.readouterr().err
    assert "bad.py" in err and "boom" in err and "internal error" not in err


def test_an_installed_packages_entry_point_is_loaded_once_per_process(tmp_path, monkeypatch):
    """`vendiscope.diagnostics` entry points register like a plugin file; the installed packages'
    metadata is read once (every rerun of the app asks for the registry), again after forget_plugins."""
    import importlib.metadata

    (tmp_path / "pkg_off_centre.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    entry = importlib.metadata.EntryPoint(name="off_centre", value="pkg_off_centre", group="vendiscope.diagnostics")
    scans = []

    def entry_points(*, group):
        scans.append(group)
        return [entry] if group == "vendiscope.diagnostics" else []

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    forget_plugins()
    try:
        assert "off_centre" in registered() and "off_centre" in registered()
        assert scans == ["vendiscope.diagnostics"]
        forget_plugins()
        registered()
        assert len(scans) == 2
        broken = importlib.metadata.EntryPoint(name="broken", value="no_such_module_here",
                                               group="vendiscope.diagnostics")
        monkeypatch.setattr(importlib.metadata, "entry_points", lambda *, group: [broken])
        forget_plugins()
        with pytest.raises(InputError, match=r"'broken'.*no_such_module_here"):
            registered()
    finally:
        registry.unregister("off_centre")
        sys.modules.pop("pkg_off_centre", None)
        monkeypatch.undo()
        forget_plugins()


def test_results_hold_structured_reasons():
    class Demo(registry.Diagnostic):
        name, description = "demo", "a demo"

    r = DiagnosticResult.empty(Demo(), 3)
    r.flag_items([0, 2], ["a; b (c; d)", "e"])
    r.flag_items([0], "second")
    r.score[:] = [1.0, 0.0, 0.5]
    assert r.reasons == [["a; b (c; d)", "second"], [], ["e"]]
    assert r.finish().summary["flagged"] == 2
    with pytest.raises(ValueError, match="brackets"):
        registry.register(type("Bad", (registry.Diagnostic,), {"name": "x[y]", "description": "d"}))


def test_reasons_are_stored_only_for_items_that_have_some():
    class Demo(registry.Diagnostic):
        name, description = "demo", "a demo"

    # a million items without reasons cost no list each (a dozen diagnostics of a 500k-item
    # comparison held 0.6 GB of empty lists)
    r = DiagnosticResult.empty(Demo(), 1_000_000)
    r.flag_items([10, 999_999], "far")
    r.reasons[5].append("written as a plugin would")
    r.reasons[5] += ["twice"]
    assert r.reasons.stored() == 3
    assert r.reasons[5] == ["written as a plugin would", "twice"] and r.reasons[-1] == ["far"]
    assert r.reasons[6] == [] and len(r.reasons) == 1_000_000 and r.reasons.stored() == 3
    r.score[:] = 0.0
    r.check(1_000_000)
    with pytest.raises(IndexError):
        r.reasons[1_000_000]
    # the writes a plugin may make to an item without reasons, and a round trip through pickle
    r.reasons[7].insert(0, "inserted")
    r.reasons[8][:] = ["replaced"]
    early, late = r.reasons[9], r.reasons[9]
    early.append("first")
    late += ["second"]
    for i, texts in enumerate(r.reasons[:12]):
        if i == 11:
            texts.append("while iterating")
    assert [r.reasons[i] for i in (7, 8, 9, 11)] == [["inserted"], ["replaced"], ["first", "second"],
                                                      ["while iterating"]]
    back = pickle.loads(pickle.dumps(r))
    assert back.reasons[9] == ["first", "second"] and back.reasons.stored() == r.reasons.stored() == 7


@pytest.mark.parametrize("breach, message", [
    ("score", r"diagnostic 'broken': scores must lie in \[0, 1\] or be NaN; 1 do not \(e.g. 1.5 at row 2\)"),
    ("joined", r"diagnostic 'broken': reasons of row 0 must be a list of strings, got 'a; b'"),
    ("short", r"diagnostic 'broken': reasons must be a list of one list per item \(160\), got list of length 159"),
])
def test_a_result_that_breaks_the_contract_is_refused_by_name(rng, breach, message):
    class Broken(registry.Diagnostic):
        name, description = "broken", "breaks the contract"

        def run(self, c):
            r = DiagnosticResult.empty(self, len(c.items_))
            r.score[:] = 0.25
            if breach == "score":
                r.score[2] = 1.5
            elif breach == "joined":
                r.flag[0], r.reasons[0] = True, "a; b"
            else:  # a plugin's own list of reasons, one short
                r.reasons = list(r.reasons)[:-1]
            return [r.finish()]

    registry.register(Broken)
    try:
        x, items, _ = two_sets(rng)
        with pytest.raises(ValueError, match=message):
            Comparison(reference="ref", n_boot=2, diagnostics=["broken"]).fit(x, items)
    finally:
        registry.unregister("broken")


def test_nan_scores_and_empty_reasons_keep_the_contract():
    class Demo(registry.Diagnostic):
        name, description = "demo", "a demo"

    r = DiagnosticResult.empty(Demo(), 3)  # nothing applies yet: all NaN, no reasons
    r.check(3)
    r.score[:] = [0.0, np.nan, 1.0]
    r.check(3)
    with pytest.raises(ValueError, match="diagnostic 'demo': score must be 4 floats"):
        r.check(4)
