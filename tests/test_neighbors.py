"""The neighbour backend: every method against exact search, range search against all pairs,
and the consumers (PRDC, near duplicates) on the approximate path against the exact one."""
import numpy as np
import pytest

from explorer.data.synthetic import mixture
from explorer.diagnostics.duplicates import near_duplicates
from explorer.metrics.prdc import prdc
from explorer.neighbors.balls import inside_any_ball
from explorer.neighbors.exact import cross_knn as exact_cross_knn
from explorer.neighbors.exact import distance_blocks
from explorer.neighbors.hnsw import FAST
from explorer.neighbors.index import EXACT_WORK, NeighborIndex, choose_method, cuda_available
from explorer.neighbors.search import cross_knn, knn, pairs_within


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(np.intersect1d(a, b)) / truth.shape[1] for a, b in zip(found, truth)]))


def test_auto_is_exact_for_small_inputs_and_approximate_above_the_threshold(monkeypatch):
    monkeypatch.delenv("VENDISCOPE_NEIGHBORS", raising=False)
    assert choose_method(5_000, 5_000) == "exact"
    assert choose_method(1, 10**8) == "exact"  # one query is a single pass over the base
    big = int(np.sqrt(EXACT_WORK)) + 1
    assert choose_method(big, big) == ("cuda" if cuda_available() else "hnsw")
    monkeypatch.setenv("VENDISCOPE_NEIGHBORS", "exact")
    assert choose_method(big, big) == "exact"
    monkeypatch.setenv("VENDISCOPE_NEIGHBORS", "nonsense")
    with pytest.raises(ValueError, match="VENDISCOPE_NEIGHBORS"):
        choose_method(big, big)


def test_the_fast_graph_for_maps_keeps_neighbourhoods_and_repairs_only_when_cheap(rng, monkeypatch):
    from explorer.neighbors import index as index_module

    # wide rows: the projected graph with its re-ranking, as the maps search 256-d embeddings
    x, labels = mixture(6_000, dim=160, clusters=12, seed=3)
    truth, _ = exact_cross_knn(x, x, k=14, exclude_self=True)
    found = knn(x, k=14, method="hnsw", hnsw=FAST)  # lost rows searched exactly: cheap at 6k
    monkeypatch.setattr(index_module, "EXACT_WORK", 0)  # as at a million rows: too dear to repair
    cheap = knn(x, k=14, method="hnsw", hnsw=FAST)
    for result in (found, cheap):
        assert recall(result.indices, truth) >= 0.85
        assert (labels[result.indices] == labels[:, None]).mean() >= 0.99  # the map's use: same cluster
        assert not (result.indices == np.arange(len(x))[:, None]).any()
        assert result.report.params["M"] == FAST.m and result.report.params["reranked"] == "2k"
    assert cheap.report.params["searched exactly"] == 0
    lost = cheap.report.params.get("lost, kept approximate", 0)
    assert found.report.params["searched exactly"] >= (lost > 0)



@pytest.mark.parametrize("data", ["gaussian", "clusters"])
def test_hnsw_recall_against_exact_search_and_its_own_report(data, rng):
    if data == "gaussian":
        x = rng.normal(size=(6_000, 32)).astype(np.float32)
    else:
        x, _ = mixture(6_000, dim=64, clusters=12, seed=1)
    index = NeighborIndex(method="hnsw", recall_sample=500).fit(x)
    idx, dist = index.search(k=10, exclude_self=True)
    truth, truth_dist = exact_cross_knn(x, x, k=10, exclude_self=True)
    measured = recall(idx, truth)
    assert measured >= 0.9, measured
    assert not (idx == np.arange(len(x))[:, None]).any()  # never its own neighbour
    assert (np.diff(dist, axis=1) >= -1e-6).all()  # nearest first
    # the recall the index reports on its sample agrees with the recall over every query
    report = index.report_
    assert report.method == "hnsw" and report.recall_sample == 500
    assert abs(report.recall - measured) < 0.05
    assert "recall@10" in report.describe() and "efSearch" in report.describe()


def test_cross_search_by_every_method_agrees_with_exact(rng):
    base = rng.normal(size=(3_000, 16)).astype(np.float32)
    queries = rng.normal(size=(500, 16)).astype(np.float32)
    truth, _ = exact_cross_knn(queries, base, k=5)
    exact = cross_knn(queries, base, k=5, method="exact")
    np.testing.assert_array_equal(exact.indices, truth)
    assert exact.report.recall is None and exact.report.describe() == "exact"
    approx = cross_knn(queries, base, k=5, method="hnsw")
    assert recall(approx.indices, truth) >= 0.95
    idx, dist = approx  # unpacks like the exact functions
    assert idx.shape == dist.shape == (500, 5)


@pytest.mark.gpu
@pytest.mark.skipif(not cuda_available(), reason="needs a CUDA GPU")
def test_cuda_search_is_exact(rng):
    x = rng.normal(size=(4_000, 32)).astype(np.float32)
    truth, truth_dist = exact_cross_knn(x, x, k=8, exclude_self=True)
    got = knn(x, k=8, method="cuda")
    assert recall(got.indices, truth) > 0.999
    np.testing.assert_allclose(got.distances, truth_dist, atol=1e-3)


def test_range_search_finds_every_planted_pair_without_all_pairs(rng):
    x, _ = mixture(4_000, dim=32, clusters=8, seed=2)
    copies = rng.choice(len(x), 60, replace=False)
    noisy = x[copies] + 1e-4 * rng.normal(size=(60, 32)).astype(np.float32)
    data = np.vstack([x, noisy / np.linalg.norm(noisy, axis=1, keepdims=True)])
    all_pairs = np.argwhere(np.triu(((data[:, None, :] - data[None, :, :]) ** 2).sum(-1) <= 0.01**2, k=1))
    for method in ("exact", "hnsw"):
        i, j, report = pairs_within(data, radius=0.01, method=method)
        assert report.method == method
        assert {tuple(p) for p in np.column_stack([i, j]).tolist()} == {tuple(p) for p in all_pairs.tolist()}
    assert len(all_pairs) >= 60


def test_near_duplicates_on_the_approximate_path_match_the_exact_groups(rng):
    x, _ = mixture(5_000, dim=48, clusters=10, seed=3)
    src = rng.choice(len(x), 40, replace=False)
    copies = x[src] + 2e-3 * rng.normal(size=(40, 48)).astype(np.float32)
    data = np.vstack([x, copies])
    exact = near_duplicates(data, method="exact")
    approx = near_duplicates(data, method="hnsw")
    assert exact.threshold == pytest.approx(approx.threshold, abs=1e-4)
    np.testing.assert_array_equal(exact.group, approx.group)
    assert set(np.flatnonzero(exact.flagged)) >= set(range(5_000, 5_040))
    assert approx.method.startswith("hnsw") and exact.method.startswith("exact")


def test_prdc_on_the_approximate_path_is_within_001_of_exact(rng):
    # clusters varying along a few directions each, as real embeddings do (isotropic noise in every
    # dimension is the worst case of any approximate search; benchmarks/scale.py reports both)
    real, _ = mixture(8_000, dim=64, clusters=15, seed=4, intrinsic=12)
    fake, _ = mixture(5_000, dim=64, clusters=15, seed=5, centre_seed=4, keep=list(range(10)), intrinsic=12)
    exact = prdc(real, fake, k=5, method="exact")
    approx = prdc(real, fake, k=5, method="hnsw")
    for metric in ("precision", "recall", "density", "coverage"):
        assert abs(getattr(exact, metric) - getattr(approx, metric)) <= 0.01, metric
    assert exact.coverage < 0.8  # the lost clusters show
    assert approx.method["balls"].startswith("range search") and exact.method["balls"].startswith("exact")
    assert "recall@5" in approx.method["real_graph"]


@pytest.mark.parametrize("path", ["exact", "lifted"])
def test_inside_any_ball_agrees_with_every_pair_also_for_far_wide_balls(rng, monkeypatch, path):
    from explorer.neighbors import balls as balls_module

    # a sparse set's k-NN balls (as PRDC's sample balls) missing 4 of 12 clusters, and 10 balls
    # wide enough to reach 40 items of those clusters each: an item inside only a far, wide ball
    # is the case that the known nearest centres cannot settle
    centres, _ = mixture(3_000, dim=160, clusters=12, seed=6, intrinsic=10, keep=list(range(8)))
    queries, labels = mixture(6_000, dim=160, clusters=12, seed=7, centre_seed=6, intrinsic=10)
    _, kth = exact_cross_knn(centres, centres, k=5, exclude_self=True)
    radii = kth[:, -1].astype(np.float64)
    d2 = np.concatenate([d for _, d in distance_blocks(queries, centres)])
    wide = rng.choice(len(centres), 10, replace=False)
    radii[wide] = np.sqrt(np.sort(d2[labels >= 8][:, wide], axis=0)[40]) + 1e-4  # no item on a rim
    truth = (d2 <= radii[None, :] ** 2).any(axis=1)
    assert 0.6 < truth.mean() < 0.9 and truth[labels >= 8].sum() >= 40
    if path == "lifted":
        monkeypatch.setattr(balls_module, "BALL_WORK", 0)
    # exact known lists: the pruning to wide balls is then exact too, and so is the exact path
    near = exact_cross_knn(queries, centres, k=16)
    got, how = inside_any_ball(queries, centres, radii, known=near, method="hnsw")
    # lists lengthened for the queries left open settle some more, and the answer stays
    longer, how_longer = inside_any_ball(queries, centres, radii, known=near, method="hnsw",
                                         index=NeighborIndex(method="exact").fit(centres))
    assert how_longer["settled by longer lists"] > 0 and how_longer["left"] < how["left"]
    if path == "exact":
        np.testing.assert_array_equal(longer, truth)
    assert how["settled by the known neighbours"] > 0.5 * truth.sum()  # the known lists did most of it
    assert how["tested exactly" if path == "exact" else "searched"] == how["left"] > 0
    assert how["balls searched"] < 0.6 * len(centres)  # only the balls wide enough were searched
    if path == "lifted":
        assert how["search"].startswith("hnsw") and how["checked"] == min(1000, how["searched"])
        assert 0.99 <= how["verdicts as exact"] <= 1
    assert not (got & ~truth).any()  # a ball found is checked on the original rows: never invented
    assert (got == truth).mean() >= 0.995  # HNSW may miss a ball now and then
    if path == "exact":
        np.testing.assert_array_equal(got, truth)
    # without known neighbours every query is open and every ball searched: still never invented,
    # but the graph misses more of the far, wide balls (measured 0.974 here) than when the known
    # neighbours leave it only the queries they cannot settle
    alone, _ = inside_any_ball(queries, centres, radii, method="hnsw")
    assert (alone == truth).mean() >= 0.95 and not (alone & ~truth).any()


def test_long_candidate_lists_are_searched_and_reranked_a_few_queries_at_a_time(monkeypatch):
    from explorer.neighbors import hnsw as hnsw_module

    # a range search grows lists to thousands of candidates: the blocks shrink so that the
    # gathered candidates stay bounded, and the answer is the same as with one large block
    x, _ = mixture(3_000, dim=160, clusters=6, seed=8)
    graph = hnsw_module.HnswGraph().fit(x)
    whole = graph.search(x[:300], k=200, ef=64)
    monkeypatch.setattr(hnsw_module, "RESULT_ENTRIES", 2_000)  # 2 queries x 800 candidates at a time
    monkeypatch.setattr(hnsw_module, "RERANK_FLOATS", 160 * 800 * 3)  # 3 queries re-ranked at a time
    blocked = graph.search(x[:300], k=200, ef=64)
    np.testing.assert_array_equal(whole[0], blocked[0])
    np.testing.assert_array_equal(whole[1], blocked[1])


def test_exact_neighbours_are_the_same_bits_whatever_the_blas_thread_count(rng):
    # a Ray task runs BLAS on one thread, this process on several: their graphs must agree exactly
    from threadpoolctl import threadpool_limits

    x = rng.normal(size=(600, 48)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x[100:110] = x[5]  # exact copies: ten neighbours tied at the k-th place, settled by index
    with threadpool_limits(1):
        one = exact_cross_knn(x, x, k=7, exclude_self=True)
    with threadpool_limits(2):
        two = exact_cross_knn(x, x, k=7, exclude_self=True)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])
    brute = np.sqrt(((x[:, None, :].astype(np.float64) - x[one[0]]) ** 2).sum(-1))
    np.testing.assert_allclose(one[1], brute, atol=1e-3)  # and they are the distances
    assert one[0][5].tolist() == list(range(100, 107)) and np.all(one[1][5] < 1e-3)
