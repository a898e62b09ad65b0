"""AppTest of the Compare page on the sample data: the library's numbers, flagging a diagnostic."""

import pytest

from conftest import APP, page_file
from explorer.compare.comparison import cached_comparison
from explorer.data.datasets import load_dataset, sample_data_dir
from explorer.diagnostics import flag_masks, reasons_of
from explorer.store.flags import FlagStore


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
def test_two_sessions_opening_compare_at_once_compute_it_once(tmp_path, monkeypatch):
    import threading

    import numpy as np
    import pandas as pd
    from streamlit.testing.v1 import AppTest

    import explorer.compare.comparison as comparison
    from explorer.cli.app import AppSettings

    rng = np.random.default_rng(11)
    x = rng.normal(size=(400, 24)).astype(np.float32)
    np.save(tmp_path / "vectors.npy", x)
    pd.DataFrame({"id": [f"v{i}" for i in range(400)], "set": ["real"] * 200 + ["gen"] * 200}).to_parquet(
        tmp_path / "items.parquet")
    real_fit, fits = comparison.Comparison.fit, []

    def counted_fit(self, *args, **kwargs):
        fits.append(threading.current_thread().name)
        import time

        time.sleep(1.0)  # long enough for the second session to ask while the first computes
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(comparison.Comparison, "fit", counted_fit)
    pages, errors = [], []

    def session():
        try:
            at = AppTest.from_file(APP, default_timeout=600)
            at.session_state["app_settings"] = AppSettings(sources=[str(tmp_path / "vectors.npy")])
            at.session_state["source_choice"] = str(tmp_path / "vectors.npy")
            at.run()
            at.switch_page(page_file("compare")).run()
            assert not at.exception, at.exception
            pages.append(at.dataframe[0].value)
        except BaseException as err:  # noqa: BLE001 - reported by the main thread
            errors.append(err)

    threads = [threading.Thread(target=session) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(fits) == 1, fits
    assert len(pages) == 2 and pages[0].equals(pages[1])
