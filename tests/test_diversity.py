"""The diversity engine: kernels, weights, contributions and modes against closed forms and a
naive n x n implementation."""
import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.cli import main
from explorer.metrics.covariance import CovarianceAccumulator
from explorer.metrics.equal_n import bootstrap_scores
from explorer.metrics.kernels import median_sigma
from explorer.metrics.spectrum import hill_number
from explorer.metrics.vendi import VendiAnalysis, kernel_spectrum, vendi_scores

ORDERS = (0.1, 0.5, 1.0, 2.0, math.inf)


def naive(k, q, p=None):
    n = k.shape[0]
    p = np.full(n, 1 / n) if p is None else p / p.sum()
    s = np.sqrt(p)
    lam = np.linalg.eigvalsh(s[:, None] * k * s[None, :])
    lam = lam[lam > 1e-12 * lam.max()]
    return hill_number(lam, q)


def clusters(counts, dim, rng):
    basis = np.linalg.qr(rng.normal(size=(dim, dim)))[0]
    labels = np.repeat(np.arange(len(counts)), counts)
    return basis[labels] * rng.uniform(0.5, 2, size=(len(labels), 1)), labels


def test_weights_act_like_duplication(rng):
    x = rng.normal(size=(12, 6))
    counts = rng.integers(1, 4, size=12)
    duplicated = np.repeat(x, counts, axis=0)
    weighted = vendi_scores(x, q=ORDERS, weights=counts.astype(float)).scores
    plain = vendi_scores(duplicated, q=ORDERS).scores
    for q in ORDERS:
        assert weighted[q] == pytest.approx(plain[q], rel=1e-9)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert weighted[1.0] == pytest.approx(naive(xn @ xn.T, 1.0, counts.astype(float)), rel=1e-9)


def test_weighted_orthogonal_items_give_hill_numbers_of_the_weights(rng):
    w = np.array([0.5, 0.2, 0.2, 0.1])
    got = vendi_scores(np.eye(4), q=ORDERS, weights=w).scores
    for q in ORDERS:
        assert got[q] == pytest.approx(hill_number(w, q), rel=1e-9)
    with pytest.raises(ValueError, match="weights"):
        vendi_scores(np.eye(4), weights=np.array([1.0, -1, 1, 1]))


def test_weighted_accumulator_merges(rng):
    x, w = rng.normal(size=(200, 5)), rng.uniform(0, 2, 200)
    a, b = CovarianceAccumulator(), CovarianceAccumulator()
    a.update(x[:70], weights=w[:70])
    b.update(x[70:], weights=w[70:])
    merged = a.merge(b).spectrum().vendi(ORDERS)
    whole = vendi_scores(x, q=ORDERS, weights=w).scores
    for q in ORDERS:
        assert merged[q] == pytest.approx(whole[q], rel=1e-12)


def test_rbf_exact_matches_naive_and_uses_the_stated_bandwidth(rng):
    x = rng.normal(size=(150, 4))
    sigma = 1.7
    k = np.exp(-((x[:, None] - x[None]) ** 2).sum(-1) / (2 * sigma**2))
    result = vendi_scores(x, q=ORDERS, kernel="rbf", sigma=sigma)
    assert result.spectrum.method == "exact" and result.to_dict()["sigma"] == sigma
    for q in ORDERS:
        assert result.scores[q] == pytest.approx(naive(k, q), rel=1e-8)
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))[np.triu_indices(150, 1)]
    assert median_sigma(x) == pytest.approx(np.median(d))
    assert vendi_scores(x, kernel="rbf").to_dict()["sigma"] == pytest.approx(np.median(d))


def test_rbf_limits():
    x = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]])
    assert vendi_scores(x, q=[1.0], kernel="rbf", sigma=0.01).scores[1.0] == pytest.approx(3.0)
    assert vendi_scores(x, q=[1.0], kernel="rbf", sigma=1e6).scores[1.0] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("method,tol", [("nystrom", 0.02), ("rff", 0.05)])
def test_rbf_approximations_are_within_their_stated_error(method, tol, rng):
    centers = rng.normal(size=(12, 16)) * 3
    x = centers[rng.integers(0, 12, 2500)] + rng.normal(size=(2500, 16))
    sigma = median_sigma(x)
    exact = vendi_scores(x, q=ORDERS, kernel="rbf", sigma=sigma, method="exact").scores
    approx = vendi_scores(x, q=ORDERS, kernel="rbf", sigma=sigma, method=method)
    stated = approx.spectrum.approx_error
    assert approx.spectrum.method == method and set(stated) == set(ORDERS)
    for q in (1.0, 2.0, math.inf):
        err = abs(approx.scores[q] - exact[q]) / exact[q]
        assert err < tol, (q, err)
        assert stated[q] < tol  # the error it reports is small where the real one is


def test_auto_method_switches_to_nystrom_for_large_inputs(rng, monkeypatch):
    import explorer.metrics.kernels as kernels

    monkeypatch.setattr(kernels, "EXACT_MAX_N", 100)
    result = vendi_scores(rng.normal(size=(300, 3)), kernel="rbf")
    assert result.spectrum.method == "nystrom" and result.spectrum.approx_error is not None


def test_contributions_split_the_entropy_exactly(rng):
    counts = [40, 20, 20, 10, 10]
    x, labels = clusters(counts, 8, rng)
    a = VendiAnalysis(q=ORDERS).fit(x)
    h = a.contributions_["entropy"].to_numpy()
    assert h.mean() == pytest.approx(math.log(a.scores_[1.0]), abs=1e-10)
    n = sum(counts)
    for j, m in enumerate(counts):  # h_i = log(n/m) in a cluster of m identical items
        np.testing.assert_allclose(h[labels == j], math.log(n / m), atol=1e-9)
    assert a.effective_rank_ == pytest.approx(a.scores_[1.0])
    assert a.cumulative_[-1] == pytest.approx(1.0)


def test_contributions_match_naive_definitions(rng):
    x = rng.normal(size=(60, 5))
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    k = xn @ xn.T
    a = VendiAnalysis(q=[1.0]).fit(x)
    c = a.contributions_
    np.testing.assert_allclose(c["crowdedness"], (k**2).mean(axis=1), rtol=1e-9)
    vs1 = a.scores_[1.0]
    exact = np.array([naive(np.delete(np.delete(k, i, 0), i, 1), 1.0) for i in range(60)]) - vs1
    np.testing.assert_allclose(c["loo_exact"], exact, atol=1e-9)
    assert np.corrcoef(c["loo_delta"], exact)[0, 1] > 0.95


def test_first_order_leave_one_out_converges_to_exact(rng):
    """The first-order change is off by O(1/n^2): small next to the changes themselves at n = 600."""
    c = VendiAnalysis(q=[1.0]).fit(rng.normal(size=(600, 5))).contributions_
    exact, first = c["loo_exact"].to_numpy(), c["loo_delta"].to_numpy()
    assert np.abs(first - exact).max() < 0.05 * np.abs(exact).max()


def test_rare_items_contribute_more_than_redundant_ones(rng):
    x, labels = clusters([95, 5], 4, rng)
    a = VendiAnalysis(q=[1.0]).fit(x + rng.normal(scale=0.01, size=x.shape))
    c = a.contributions_
    assert c["entropy"][labels == 1].min() > c["entropy"][labels == 0].max()
    assert c["crowdedness"][labels == 1].max() < c["crowdedness"][labels == 0].min()
    assert c["loo_delta"][labels == 1].max() < 0 < c["loo_delta"][labels == 0].min()


def test_modes_name_the_clusters(rng):
    counts = [50, 30, 20]
    x, labels = clusters(counts, 6, rng)
    a = VendiAnalysis(q=[1.0], n_modes=3, top_items=5).fit(x)
    for j, mode in enumerate(a.modes_):
        assert mode["weight"] == pytest.approx(counts[j] / 100)
        positive = mode["positive_loadings"] and mode["positive_loadings"][0] > 0.5
        side = mode["positive"] if positive else mode["negative"]
        assert set(labels[side]) == {j}
        # each side lists only items loading on it with that sign
        assert all(v > 0 for v in mode["positive_loadings"]) and all(v < 0 for v in mode["negative_loadings"])


def test_precomputed_kernel_contributions_equal_cosine_ones(rng):
    x = rng.normal(size=(40, 6))
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    a = VendiAnalysis(q=ORDERS).fit(x)
    b = VendiAnalysis(q=ORDERS, kernel="precomputed").fit(xn @ xn.T)
    for q in ORDERS:
        assert b.scores_[q] == pytest.approx(a.scores_[q], rel=1e-9)
    np.testing.assert_allclose(b.contributions_["entropy"], a.contributions_["entropy"], atol=1e-9)
    assert kernel_spectrum(xn @ xn.T).rank == 6


def test_bootstrap_compares_sets_at_equal_n(rng):
    big, _ = clusters([100] * 8, 16, rng)  # 8 equal clusters, 800 items
    small, _ = clusters([25] * 4, 16, rng)  # 4 equal clusters, 100 items
    x = np.vstack([big, small])
    groups = ["big"] * 800 + ["small"] * 100
    table = bootstrap_scores(x, groups, q=[1.0], n_boot=30).set_index("group")
    assert (table["n"] == 100).all()
    assert table.loc["small", "VS_1"] == pytest.approx(4.0)
    assert table.loc["small", "draws"] == 1  # the whole group: no resampling needed
    assert 7.0 < table.loc["big", "VS_1_lo"] <= table.loc["big", "VS_1"] <= table.loc["big", "VS_1_hi"] <= 8.0


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 25), st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_entropy_split_property(n, d, seed):
    x = np.random.default_rng(seed).normal(size=(n, d))
    a = VendiAnalysis(q=[1.0]).fit(x)
    assert a.contributions_["entropy"].mean() == pytest.approx(math.log(a.scores_[1.0]), abs=1e-9)
    assert (a.contributions_["crowdedness"] <= 1 + 1e-9).all()


def test_cli_contributions_groups_and_rbf(tmp_path, rng, capsys):
    x, labels = clusters([30, 20, 10], 8, rng)
    np.save(tmp_path / "emb.npy", x.astype(np.float32))
    pd.DataFrame({"id": [f"item{i}" for i in range(60)], "set": np.where(labels == 0, "a", "b")}).to_parquet(
        tmp_path / "items.parquet")
    out = tmp_path / "contrib.parquet"
    assert main(["score", str(tmp_path / "emb.npy"), "--contributions", str(out), "--groups", "set",
                 "--n-boot", "10", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["contributions"] == str(out)
    table = pd.read_parquet(out)
    assert list(table.columns[:4]) == ["id", "entropy", "loo_delta", "crowdedness"]
    assert table["id"].tolist()[:2] == ["item0", "item1"]
    assert table["entropy"].mean() == pytest.approx(math.log(report["scores"]["1"]), abs=1e-9)
    assert set(report["groups"]) == {"a", "b"}
    assert report["groups"]["a"]["n"] == 30 and report["groups"]["a"]["scores"]["1"] == pytest.approx(1.0)
    assert report["groups"]["b"]["scores"]["1"] == pytest.approx(hill_number(np.array([2, 1]) / 3, 1.0))
    assert main(["score", str(tmp_path / "emb.npy"), "--groups", "kmeans:3", "--n-boot", "5", "--json",
                 "--min-group-size", "5"]) == 0  # the third cluster holds 10 items
    by_cluster = json.loads(capsys.readouterr().out)["groups"]
    assert sorted(by_cluster) == ["c0", "c1", "c2"]
    assert all(g["scores"]["1"] == pytest.approx(1.0, abs=1e-6) for g in by_cluster.values())  # pure clusters
    assert main(["score", str(tmp_path / "emb.npy"), "--kernel", "rbf", "--sigma", "0.5", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kernel"] == "rbf" and report["method"] == "exact" and report["sigma"] == 0.5
    assert main(["score", str(tmp_path / "emb.npy"), "--method", "rff"]) == 2
    assert "approximates the RBF kernel" in capsys.readouterr().err


def test_nystrom_residual_keeps_the_entropy_split_exact(rng):
    centers = rng.normal(size=(6, 32)) * 2
    x = centers[rng.integers(0, 6, 900)] + rng.normal(size=(900, 32))
    a = VendiAnalysis(q=[1.0, 2.0], kernel="rbf", method="nystrom", n_landmarks=200).fit(x)
    assert a.spectrum_.residual is not None and a.spectrum_.residual.sum() > 1e-3
    assert a.contributions_["entropy"].mean() == pytest.approx(math.log(a.scores_[1.0]), abs=1e-9)
    assert a.cumulative_[-1] == pytest.approx(1.0, abs=1e-9)  # features + residuals hold all the mass
    exact = vendi_scores(x, q=[1.0, 2.0], kernel="rbf", method="exact", sigma=a.sigma_).scores
    assert abs(a.scores_[1.0] - exact[1.0]) / exact[1.0] < 0.05


def test_streamed_analysis_equals_one_fit_and_merges_across_shards(rng):
    x = rng.normal(size=(3000, 12)) + 0.5
    w = rng.uniform(0.5, 2.0, size=3000)
    full = VendiAnalysis(contributions=False).fit(x, weights=w)
    stream = VendiAnalysis(contributions=False)
    for chunk in np.array_split(np.arange(3000), 7):
        stream.partial_fit(x[chunk], weights=w[chunk])
    shards = [VendiAnalysis(contributions=False).partial_fit(x[c], weights=w[c])
              for c in np.array_split(np.arange(3000), 3)]
    merged = shards[0].merge(shards[1]).merge(shards[2])
    for a in (stream, merged):
        assert a.n_items_ == 3000 and a.contributions_ is None
        for q, v in full.scores_.items():
            assert a.scores_[q] == pytest.approx(v, rel=1e-10)
    # the RBF kernel streams through random Fourier features: equal to fitting them at once
    rbf = VendiAnalysis(kernel="rbf", method="rff", sigma=2.0, contributions=False).fit(x)
    streamed = VendiAnalysis(kernel="rbf", sigma=2.0, contributions=False)
    for chunk in np.array_split(x, 4):
        streamed.partial_fit(chunk)
    assert streamed.method_ == "rff" and streamed.sigma_ == 2.0
    assert streamed.scores_[1.0] == pytest.approx(rbf.scores_[1.0], rel=1e-10)
    with pytest.raises(ValueError, match="same sigma"):
        VendiAnalysis(kernel="rbf", sigma=1.0).partial_fit(x[:10]).merge(
            VendiAnalysis(kernel="rbf", sigma=3.0).partial_fit(x[10:20]))
    with pytest.raises(ValueError, match="precomputed matrix needs fit"):
        VendiAnalysis(kernel="precomputed").partial_fit(np.eye(3))


def test_score_groups_leaves_out_small_groups_and_says_so(tmp_path, rng, capsys):
    x = rng.normal(size=(104, 6))
    np.save(tmp_path / "emb.npy", x)
    pd.DataFrame({"id": [f"i{j}" for j in range(104)], "folder": ["big"] * 50 + ["other"] * 50 + ["tiny"] * 4}
                 ).to_parquet(tmp_path / "items.parquet")
    assert main(["score", str(tmp_path / "emb.npy"), "--groups", "folder", "--json", "--n-boot", "3"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert set(report["groups"]) == {"big", "other"} and report["groups"]["big"]["n"] == 50  # not 4
    assert report["skipped_groups"] == {"tiny": 4}
    assert "tiny (4)" in captured.err and "--min-group-size 20" in captured.err
    assert main(["score", str(tmp_path / "emb.npy"), "--groups", "folder", "--json", "--n-boot", "3",
                 "--min-group-size", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["groups"]["tiny"]["n"] == 4
