"""The one disk cache: a hit never recomputes, a damaged entry is recomputed, and every cached
result in the library goes through it."""
import numpy as np
import pandas as pd
import pytest

from explorer.metrics import equal_n, vendi
from explorer.store.cache import JSON, NPY, cached, entry_path, hash_key


def never(*args, **kwargs):
    raise AssertionError("a cache hit must not compute again")


def test_a_hit_does_not_compute_and_returns_what_the_first_call_returned(tmp_path):
    first = cached("demo", hash_key("a"), lambda: {"orders": (1, 2), "x": 0.5}, root=tmp_path)
    assert first == {"orders": [1, 2], "x": 0.5}  # as read back, so later calls return the same
    assert cached("demo", hash_key("a"), never, root=tmp_path) == first
    arr = cached("arrays", hash_key("b"), lambda: np.arange(6.0).reshape(3, 2), codec=NPY, root=tmp_path)
    np.testing.assert_array_equal(cached("arrays", hash_key("b"), never, codec=NPY, root=tmp_path), arr)


@pytest.mark.parametrize("damage", [lambda b: b"", lambda b: b[:-3], lambda b: b[:-2] + b"}}",
                                    lambda b: b"VSC1" + b"\0" * 32 + b[36:]])
def test_a_damaged_entry_is_recomputed(tmp_path, damage):
    key = hash_key("c")
    cached("demo", key, lambda: [1, 2, 3], root=tmp_path)
    path = entry_path("demo", key, JSON, root=tmp_path)
    path.write_bytes(damage(path.read_bytes()))
    calls = []
    assert cached("demo", key, lambda: calls.append(1) or [1, 2, 3], root=tmp_path) == [1, 2, 3]
    assert calls == [1]
    assert not list(path.parent.glob(".*.tmp"))


def test_analysis_group_scores_and_bootstrap_are_cached(tmp_path, rng, monkeypatch):
    x = rng.normal(size=(60, 8)).astype(np.float32)
    groups = ["a"] * 30 + ["b"] * 30
    analysis = vendi.cached_analysis(x, cache_dir=tmp_path)
    scores = equal_n.cached_group_scores(x, groups, cache_dir=tmp_path)
    boot = equal_n.cached_bootstrap_scores(x, groups, n_boot=5, cache_dir=tmp_path)
    # the results are the computations' own
    assert analysis["scores"]["1"] == pytest.approx(vendi.vendi_scores(x, q=[1.0]).scores[1.0])
    pd.testing.assert_frame_equal(boot, equal_n.bootstrap_scores(x, groups, n_boot=5))
    monkeypatch.setattr(vendi.VendiAnalysis, "fit", never)
    monkeypatch.setattr(equal_n, "group_scores", never)
    monkeypatch.setattr(equal_n, "bootstrap_scores", never)
    assert vendi.cached_analysis(x, cache_dir=tmp_path) == analysis
    pd.testing.assert_frame_equal(equal_n.cached_group_scores(x, groups, cache_dir=tmp_path), scores)
    pd.testing.assert_frame_equal(equal_n.cached_bootstrap_scores(x, groups, n_boot=5, cache_dir=tmp_path), boot)
    with pytest.raises(AssertionError, match="must not compute"):  # other content: computed anew
        equal_n.cached_group_scores(x[::-1], groups, cache_dir=tmp_path)
