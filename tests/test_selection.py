"""Map selections against an independent point-in-polygon (matplotlib's Path), and the library's
filters and neighbour search behind the Explore page."""
import numpy as np
import pytest
from matplotlib.path import Path as MplPath

from explorer.maps.selection import (
    contains_mask,
    filter_kinds,
    in_box,
    in_polygon,
    nearest_items,
    percentile_mask,
    range_mask,
    search_mask,
    selection_mask,
)


def star_polygon(rng, n_vertices):
    """A simple (non-self-intersecting) polygon: vertices at sorted angles, random radii."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, n_vertices))
    radii = rng.uniform(0.3, 2.0, n_vertices)
    centre = rng.normal(size=2)
    return centre + np.column_stack([radii * np.cos(angles), radii * np.sin(angles)])


@pytest.mark.parametrize("seed", range(20))
def test_lasso_agrees_with_matplotlib_on_random_polygons(seed):
    rng = np.random.default_rng(seed)
    polygon = star_polygon(rng, int(rng.integers(3, 40)))
    points = rng.uniform(-3, 3, size=(5000, 2))
    assert (in_polygon(points, polygon) == MplPath(polygon).contains_points(points)).all()


def test_lasso_on_a_concave_polygon_and_box_selections():
    u_shape = np.array([[0, 0], [3, 0], [3, 3], [2, 3], [2, 1], [1, 1], [1, 3], [0, 3]], dtype=float)
    pts = np.array([[0.5, 2.0], [1.5, 2.0], [2.5, 2.0], [1.5, 0.5], [4.0, 0.5]])
    assert in_polygon(pts, u_shape).tolist() == [True, False, True, True, False]
    assert MplPath(u_shape).contains_points(pts).tolist() == [True, False, True, True, False]
    assert in_box(pts, x=(3.0, 1.0), y=(0.0, 2.5)).tolist() == [False, True, True, True, False]
    both = selection_mask(pts, {"box": [{"x": [3.5, 4.5], "y": [0, 1]}],
                                "lasso": [{"x": [0, 1, 1, 0], "y": [1, 1, 3, 3]}]})
    assert both.tolist() == [True, False, False, False, True]
    assert selection_mask(pts, {}) is None


def test_percentile_filter():
    values = np.array([5.0, 1.0, np.nan, 3.0, 2.0, 4.0])
    assert percentile_mask(values, low=0, high=100).all()  # the full range keeps even NaN
    assert percentile_mask(values, low=0, high=50).tolist() == [False, True, False, True, True, False]
    assert percentile_mask(values, low=75, high=100).tolist() == [True, False, False, False, False, True]


def test_nearest_items_match_brute_force_cosine(rng):
    x = rng.normal(size=(300, 16))
    among = np.sort(rng.choice(300, 120, replace=False))
    item = int(among[7])
    idx, sims = nearest_items(x, item, among=among, k=10)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    brute = unit[among] @ unit[item]
    order = [j for j in np.argsort(-brute, kind="stable") if among[j] != item][:10]
    assert idx.tolist() == among[order].tolist()
    np.testing.assert_allclose(sims, brute[order], atol=1e-6)


@pytest.mark.parametrize("exact_dim", [768, 100])  # 100: the float32 eigenproblem of wide selections
def test_subset_scores_match_the_exact_scores_directly_and_through_the_complement(monkeypatch, exact_dim):
    from explorer.metrics import subsets
    from explorer.metrics.subsets import SubsetScorer
    from explorer.metrics.vendi import vendi_scores

    rng = np.random.default_rng(7)
    # wide rows with a decaying spectrum and a common direction, like image features: many small
    # eigenvalues whose entropy adds up
    x = ((rng.normal(size=(6_000, 400)) * np.geomspace(1, 1e-3, 400) + 0.5 * rng.normal(size=400))
         .astype(np.float32))
    set_rows = np.flatnonzero(rng.random(6_000) < 0.8)  # the chosen sets: a subset of all rows
    scorer = SubsetScorer(q=[0.5, 1.0, 2.0, np.inf]).fit(x, rows=set_rows)
    scorer.block = 512  # small blocks, so that 4,800 rows take the float32 path of a large set
    monkeypatch.setattr(subsets, "EXACT_ROWS", 1_000)
    monkeypatch.setattr(subsets, "EXACT_DIM", exact_dim)
    for share in (0.03, 0.05, 0.15, 0.3, 0.7, 0.98, 1.0):  # the larger ones go through whole minus complement
        picked = np.sort(rng.choice(set_rows, int(share * len(set_rows)), replace=False))
        exact = vendi_scores(x[picked].astype(np.float64), q=[0.5, 1.0, 2.0, np.inf]).scores
        got = scorer.scores(picked)
        for q, value in exact.items():
            assert got[q] == pytest.approx(value, rel=scorer.error(len(picked)) or 1e-9), (share, q)
            if q >= 1:
                assert got[q] == pytest.approx(value, rel=1e-4), (share, q)
    assert scorer.scores(set_rows[:1]) == {}
    assert scorer.memo_bytes() < x.nbytes / 4  # it reads the embeddings, it does not own them


def test_wide_selections_solved_in_float32_stay_within_their_bound_on_rank_deficient_rows(monkeypatch):
    """Rows spanning 60 of 300 dimensions: a float32 solver's rounding must not count as the
    missing 240 eigenvalues (q = 0.5 weighs small eigenvalues most)."""
    from explorer.metrics import subsets
    from explorer.metrics.subsets import SubsetScorer
    from explorer.metrics.vendi import vendi_scores

    rng = np.random.default_rng(11)
    x = (rng.normal(size=(1_500, 60)) @ rng.normal(size=(60, 300))).astype(np.float32)
    monkeypatch.setattr(subsets, "EXACT_DIM", 40)
    scorer = SubsetScorer(q=[0.5, 1.0, np.inf]).fit(x)
    for m in (200, 900):  # the m x m Gram (m < d) and the d x d one
        picked = np.sort(rng.choice(len(x), m, replace=False))
        exact = vendi_scores(x[picked].astype(np.float64), q=[0.5, 1.0, np.inf]).scores
        got = scorer.scores(picked)
        assert scorer.error(m) > 0
        for q, value in exact.items():
            assert got[q] == pytest.approx(value, rel=scorer.error(m)), (m, q)


def test_search_never_matches_a_missing_value_by_its_spelling():
    import pandas as pd

    t = pd.DataFrame({"id": ["a", "b", "c", "d"], "text": [None, "none of these", np.nan, "Not a NaN"],
                      "label": pd.Series(["x", None, "y", None], dtype="string"),
                      "kind": pd.Categorical(["p", None, "q", "p"])})
    assert search_mask(t, "none").tolist() == [False, True, False, False]
    assert search_mask(t, "nan").tolist() == [False, False, False, True]
    assert search_mask(t, "<na>").tolist() == [False] * 4
    assert search_mask(t, "x").tolist() == [True, False, False, False]


def test_range_and_contains_filters_and_which_columns_get_which():
    import pandas as pd

    rng = np.random.default_rng(0)
    t = pd.DataFrame({"id": [f"i{k}" for k in range(100)], "label": rng.choice(["cat", "dog"], 100),
                      "width": rng.integers(10, 1000, 100).astype(float),
                      "caption": [f"a {w} photo" for w in rng.choice(["red", "blue", "Green"], 100)],
                      "flagged": rng.random(100) < 0.5, "tags": [["x"]] * 100, "empty": [None] * 100})
    t.loc[3, "width"] = np.nan
    t.loc[4, "caption"] = None
    t["caption"] = t["caption"] + [f" {k}" for k in range(100)]  # every caption distinct
    assert filter_kinds(t, skip=("id",)) == {"label": "values", "width": "range", "caption": "contains",
                                             "flagged": "values"}
    inside = range_mask(t["width"], low=200, high=600)
    expected = (t["width"] >= 200) & (t["width"] <= 600)  # NaN compares False
    assert inside.tolist() == expected.tolist() and not inside[3]
    # the full range still leaves out the missing value: the page applies the filter only when narrowed
    assert range_mask(t["width"], low=t["width"].min(), high=t["width"].max()).sum() == 99
    green = contains_mask(t["caption"], "GREEN")
    assert green.tolist() == t["caption"].str.contains("Green", na=False).tolist() and green.sum() > 0
    assert not contains_mask(t["caption"], "none")[4]
    assert contains_mask(t["caption"], "").all()


def test_subset_spectra_run_on_one_blas_thread_and_give_the_count_back(monkeypatch):
    """The eigendecomposition runs on one BLAS thread (erratic with several on busy cores), and
    concurrent lassos leave the process's BLAS thread count as they found it."""
    import threading

    from threadpoolctl import threadpool_info

    from explorer.metrics.subsets import SubsetScorer
    from explorer.metrics.vendi import vendi_scores

    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()
    seen, eigvalsh = [], np.linalg.eigvalsh

    def spying(a):
        seen.append(blas_threads())
        return eigvalsh(a)

    monkeypatch.setattr(np.linalg, "eigvalsh", spying)
    x = np.random.default_rng(2).normal(size=(400, 24))
    scorer = SubsetScorer(q=[1.0]).fit(x)
    results = []
    workers = [threading.Thread(target=lambda k=k: results.append(scorer.scores(np.arange(k, 300 + k))))
               for k in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(seen) == 4 and all(all(n == 1 for n in threads) for threads in seen)
    assert blas_threads() == before
    monkeypatch.undo()
    assert scorer.scores(np.arange(300))[1.0] == pytest.approx(vendi_scores(x[:300], q=[1.0]).scores[1.0], rel=1e-9)
