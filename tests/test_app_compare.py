"""AppTest of the Compare page on the sample data: the library's numbers, flagging a diagnostic."""

import numpy as np
import pandas as pd
import pytest

from conftest import app_on, image_grids
from explorer.compare.comparison import cached_comparison
from explorer.data.datasets import load_dataset, sample_data_dir
from explorer.diagnostics import flag_masks, reasons_of
from explorer.store.flags import FlagStore
from explorer.store.thumbnails import thumbnail_file


@pytest.mark.slow
def test_compare_page_shows_the_library_comparison_and_flags_a_diagnostic(sample_page):
    at, result = sample_page("compare")
    summary, table = cached_comparison(result.embeddings, result.items, reference="real")

    diversity, per_set = at.dataframe[0].value.set_index("set"), at.dataframe[1].value.set_index("set")
    assert list(diversity.index) == ["real", "collapsed", "gmm", "lowtemp"]  # the reference first
    assert list(per_set.index) == ["collapsed", "gmm", "lowtemp"]
    for name in ("collapsed", "gmm", "lowtemp"):
        assert per_set.loc[name, "coverage"] == round(summary["sets"][name]["coverage"], 3)
    assert per_set.loc["collapsed", "collapsed classes"] == "2, 3, 4, 5, 6, 8, 9"

    at.selectbox(key="compare_set").set_value("collapsed").run()
    classes = at.dataframe[2].value
    assert set(classes.loc[classes["collapsed"], "class"]) == set("2345689")
    # the novel and missing modes' grids show each mode's top items, in their order
    by_id, grids = result.items.set_index("id"), image_grids(at)
    modes = [m for key in ("novel_modes", "missing_modes") for m in summary["sets"]["collapsed"][key][:3]]
    assert modes
    for mode in modes:
        rows = by_id.loc[mode["top"]]
        expected = [(thumbnail_file(p, size=56, digest=d).read_bytes(), f"{s} · {lab}")
                    for p, d, s, lab in zip(rows["path"], rows["digest"], rows["set"], rows["label"].fillna("—"))]
        assert expected in grids

    at.selectbox(key="diag_pick").set_value("underrepresented[collapsed]").run()
    at.button(key="flag_diag").click().run()
    assert not at.exception, at.exception
    flags = FlagStore.for_dataset(load_dataset(sample_data_dir()).source).table()
    mine = flags[flags["source"] == "diagnostic:underrepresented[collapsed]"]
    expected = set(table.loc[flag_masks(table)["underrepresented[collapsed]"], "id"])
    assert set(mine["id"]) == expected and len(expected) > 500
    assert mine["reason"].str.startswith("underrepresented[collapsed]: region r").all()
    # each flag keeps the diagnostic's whole reason, as the library gives it
    whole = reasons_of(table, "underrepresented[collapsed]")
    assert all(r == f"underrepresented[collapsed]: {whole[i][0]}" for i, r in zip(mine["id"], mine["reason"]))
    FlagStore.for_dataset(load_dataset(sample_data_dir()).source).remove(mine["id"])  # the shared cache is shared

    # another reference is another comparison: what the page derives from it (the diagnostic's
    # reasons, kept per comparison) follows it, never the first comparison's
    at.selectbox(key="compare_reference").set_value("gmm").run()
    at.selectbox(key="diag_pick").set_value("underrepresented[collapsed]").run()
    assert not at.exception, at.exception
    _, other = cached_comparison(result.embeddings, result.items, reference="gmm")
    n = len(reasons_of(other, "underrepresented[collapsed]"))
    assert n != len(whole)  # so that reasons kept from the first comparison would show
    assert [c.value for c in at.caption if c.value.startswith(f"{n:,} items flagged by underrepresented[collapsed]")]


@pytest.mark.slow
def test_explore_colours_and_filters_by_a_diagnostic(sample_page):
    at, result = sample_page("explore")
    _, table = cached_comparison(result.embeddings, result.items, reference="real")

    at.selectbox(key="explore_color").set_value("memorized").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="explore_color").format_func("memorized") == "diagnostic: memorized"
    at.multiselect(key="explore_diag_filter").set_value(["underrepresented[collapsed]"]).run()
    assert not at.exception, at.exception
    expected = int(flag_masks(table)["underrepresented[collapsed]"].sum())
    assert at.subheader[0].value.endswith(f"{expected:,} items")


@pytest.mark.slow
def test_a_second_session_opening_compare_reuses_the_first_sessions_comparison(tmp_path, monkeypatch):
    # Sessions asking *at once* join the computation in flight: SharedWork's own test
    # (tests/test_work.py) shows that with threads. Two AppTests cannot run at once in one
    # process (each swaps Streamlit's global Runtime in and out), so here the sessions take turns.
    import numpy as np
    import pandas as pd

    import explorer.compare.comparison as comparison

    rng = np.random.default_rng(11)
    x = rng.normal(size=(400, 24)).astype(np.float32)
    np.save(tmp_path / "vectors.npy", x)
    pd.DataFrame({"id": [f"v{i}" for i in range(400)], "set": ["real"] * 200 + ["gen"] * 200}).to_parquet(
        tmp_path / "items.parquet")
    real_fit, fits = comparison.Comparison.fit, []

    def counted_fit(self, *args, **kwargs):
        fits.append(1)
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(comparison.Comparison, "fit", counted_fit)
    tables = []
    for _ in range(2):
        at = app_on(str(tmp_path / "vectors.npy"), "compare")
        tables.append(at.dataframe[0].value)
    assert len(fits) == 1, fits
    assert tables[0].equals(tables[1])


def open_compare(folder, *, sets: dict[str, np.ndarray]):
    """The Compare page on embeddings given as a .npy file with its items table beside it (one
    set per key, the first the reference); returns the page and the dataset's flag store."""


    x = np.vstack(list(sets.values())).astype(np.float32)
    np.save(folder / "vectors.npy", x)
    names = [name for name, rows in sets.items() for _ in range(len(rows))]
    pd.DataFrame({"id": [f"v{i}" for i in range(len(x))], "set": names}).to_parquet(folder / "items.parquet")
    at = app_on(str(folder / "vectors.npy"), "compare")
    return at, FlagStore.for_dataset(load_dataset(folder / "vectors.npy").source)


def planted_sets(seed: int = 5, n: int = 200, d: int = 24) -> dict[str, np.ndarray]:
    """A reference and a sample set around one direction; the sample holds 5 near copies of its
    own items (rows 5-9 of rows 0-4) and 3 items pointing away from the rest (rows 10-12)."""
    rng = np.random.default_rng(seed)
    around = np.zeros(d)
    around[0] = 1.0
    real = around + 0.1 * rng.normal(size=(n, d))
    gen = around + 0.1 * rng.normal(size=(n, d))
    gen[5:10] = gen[0:5] + 1e-5 * rng.normal(size=(5, d))
    gen[10:13] = np.eye(d)[1:4]
    return {"real": real, "gen": gen}


# the README's one-file diagnostic
PLUGIN = '''
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
            r.score[idx] = np.clip(1 - cos, 0, 1)
            r.flag_items(idx[cos < 0.5], [f"cosine {v:.2f} to the mean of {name}" for v in cos[cos < 0.5]])
        return [r.finish(threshold=0.5)]
'''


@pytest.mark.slow
def test_the_compare_page_lists_a_plugin_diagnostic(tmp_path, monkeypatch):
    from explorer.diagnostics import base, forget_plugins

    path = tmp_path / "off_centre.py"
    path.write_text(PLUGIN)
    monkeypatch.setenv("VENDISCOPE_PLUGINS", str(path))
    forget_plugins()
    try:
        at, _ = open_compare(tmp_path, sets=planted_sets())
        listed = at.dataframe[-1].value.set_index("diagnostic")
        assert listed.loc["off_centre", "what"] == "an item whose cosine to its set's mean direction is below 0.5"
        assert listed.loc["off_centre", "flagged"] == 3  # the three planted rows
        picker = at.selectbox(key="diag_pick")
        assert "off_centre" in picker.options and "near_duplicate" in picker.options  # beside the built-in ones
        picker.set_value("off_centre").run()
        assert not at.exception, at.exception
        assert any(c.value.startswith("3 items flagged by off_centre, e.g. “cosine ") for c in at.caption)
    finally:
        base.unregister("off_centre")
        forget_plugins()


@pytest.mark.slow
def test_a_near_duplicate_flagged_from_the_compare_page_keeps_its_whole_reason(tmp_path):
    """Near-duplicate reasons hold "; " themselves (cosine ...; group ...): a flag saved from the
    page keeps all of it, as the library gives it (the page once split reasons on "; ")."""
    at, store = open_compare(tmp_path, sets=planted_sets())
    at.selectbox(key="diag_pick").set_value("near_duplicate").run()
    at.button(key="flag_diag").click().run()
    assert not at.exception, at.exception
    saved = store.table()
    saved = dict(zip(saved["id"], saved["reason"]))
    assert set(saved) == {f"v{200 + i}" for i in range(10)}  # each planted pair, both ways
    x = np.load(tmp_path / "vectors.npy")
    items = pd.read_parquet(tmp_path / "items.parquet")
    _, table = cached_comparison(x, items, reference="real")
    whole = reasons_of(table, "near_duplicate")
    for item, reason in saved.items():
        assert reason == f"near_duplicate: {whole[item][0]}" and "; group gen/g" in reason, reason


@pytest.mark.slow
def test_the_compare_page_states_the_collapse_floor_it_ran_with(tmp_path, monkeypatch):
    """The caption reads the floor from the comparison's summary, not the library's default in words."""
    import functools

    import pages._diagnostics as diagnostics

    monkeypatch.setattr(diagnostics, "cached_comparison", functools.partial(cached_comparison, collapse_floor=0.4))
    at, _ = open_compare(tmp_path, sets=planted_sets(seed=6))
    assert any("falls below 0.4 × the reference's" in c.value for c in at.caption), [c.value for c in at.caption]
