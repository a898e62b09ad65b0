"""Kernel choices (cosine, centred cosine, RBF) and honest numbers: the sample data's story under
the app's default kernel, approximation errors measured where the rank cap binds, refused
bandwidths and matrices, the eigenvalue cut reported as applied."""
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from explorer.data.errors import InputError
from explorer.metrics.equal_n import bootstrap_scores
from explorer.metrics.features import approximation_error, compute_spectrum, plan_features
from explorer.metrics.kernel_rows import KernelRowMap, rbf_rows, set_kernel_map, set_kernel_rows
from explorer.metrics.spectrum import default_rtol
from explorer.metrics.vendi import VendiAnalysis, vendi_scores

Q = [0.1, 0.5, 1.0, 2.0, np.inf]


@pytest.fixture(scope="module")
def digits():
    """The sample digits embedded as the app does offline (efficientnet-lite0, shipped vectors)."""
    from explorer.data.datasets import load_dataset, sample_data_dir
    from explorer.embed.pipeline import embed_dataset
    from explorer.embed.registry import get_embedder

    result = embed_dataset(load_dataset(sample_data_dir()), get_embedder("efficientnet-lite0"))
    return result.embeddings, result.items["set"].astype(str).to_numpy()


def equal_n_ratio(rows, sets, n=800):
    t = bootstrap_scores(rows, sets, q=[1.0], n=n, n_boot=5).set_index("group")["VS_1"]
    return t["collapsed"] / t["real"]


def test_default_kernel_shows_the_collapse_of_the_sample_model(digits):
    x, sets = digits
    # the app's default: centred cosine around the pooled mean of the chosen sets
    rows, info = set_kernel_rows(x, kernel="centred")
    assert info.describe() == f"centred cosine (centre: pooled mean of {len(x):,} items)"
    assert equal_n_ratio(rows, sets) <= 0.6
    # compared with the real set as the reference, its mean is the centre
    rows, info = set_kernel_rows(x, kernel="centred", sets=sets, reference="real")
    assert "mean of the reference 'real'" in info.describe()
    assert equal_n_ratio(rows, sets) <= 0.6
    # the plain Vendi score hides it: the shared mean direction holds most of the spectrum
    plain, _ = set_kernel_rows(x, kernel="cosine")
    assert equal_n_ratio(plain, sets) > 0.8


def test_centred_kernel_equals_cosine_of_centred_rows_and_streams_with_its_centre(rng):
    x = rng.normal(size=(200, 6)) + 5.0
    mu = x.mean(0)
    want = vendi_scores(x - mu, q=Q).scores
    got = vendi_scores(x, q=Q, kernel="centered").scores
    assert got == pytest.approx(want, rel=1e-9)
    out = vendi_scores(x, q=Q, kernel="centred").to_dict()
    assert out["kernel"] == "centred" and out["centre"] == "pooled mean of 200 items"
    stream = VendiAnalysis(q=Q, kernel="centred", centre=mu, contributions=False)
    for batch in np.array_split(x, 4):
        stream.partial_fit(batch)
    assert stream.scores_ == pytest.approx(want, rel=1e-9)
    with pytest.raises(ValueError, match="needs its centre"):
        VendiAnalysis(kernel="centred").partial_fit(x)


@pytest.mark.parametrize("kernel", ["centred", "rbf"])
def test_kernel_rows_made_when_asked_have_the_held_rows_cosines(rng, kernel):
    # a comparison scores its subsets from a KernelRowMap instead of holding every kernel row:
    # any subset's Gram must be the one the held rows give, before and after the span basis
    low_rank = rng.normal(size=(600, 4)) @ rng.normal(size=(4, 40)) + 3.0
    sets = np.array(["ref"] * 400 + ["gen"] * 200)
    held, info = set_kernel_rows(low_rank, kernel=kernel, sets=sets, reference="ref")
    made = set_kernel_map(low_rank, kernel=kernel, sets=sets, reference="ref")
    assert made.info == info and made.shape[0] == 600
    subset = rng.choice(600, 150, replace=False)
    for rows in (made, made.reduced()):
        got = rows[subset].astype(np.float64)
        want = held[subset].astype(np.float64)
        assert got @ got.T == pytest.approx(want @ want.T, abs=1e-5)
    if kernel == "centred":  # 4 directions used (the centre adds none): the basis keeps those
        assert made.reduced().shape[1] <= 5 < made.shape[1]
    other = set_kernel_map(low_rank, kernel=kernel, sets=sets[::-1], reference="ref")
    assert other.fingerprint() != made.fingerprint()


def test_comparison_holds_no_copy_of_unit_rows_nor_the_kernel_rows(rng):
    from explorer.compare.comparison import Comparison
    from explorer.data.arrays import normalize_rows

    x = normalize_rows(rng.normal(size=(900, 32)), dtype=np.float32)
    items = pd.DataFrame({"id": [f"i{j}" for j in range(900)], "set": ["ref"] * 600 + ["gen"] * 300})
    c = Comparison(reference="ref", n_boot=3, diagnostics=[]).fit(x, items)
    assert np.shares_memory(c.embeddings_, x)  # float32 unit rows are used where they lie
    assert isinstance(c.kernel_rows_, KernelRowMap)  # made a subset at a time, never held
    assert np.shares_memory(c.graphs_["gen"].index.base_, x)  # each set's index reads its block in place


@pytest.mark.parametrize("kernel", ["centred", "rbf"])
def test_kept_per_set_results_follow_the_lengths_of_rows(rng, tmp_path, kernel):
    # unit rows forget each row's length, which centred and RBF rows depend on: scaling one set
    # must not reuse the kept per-set scores of the unscaled embeddings
    from explorer.compare.comparison import Comparison

    x = rng.normal(size=(600, 12)) + 2.0
    items = pd.DataFrame({"id": [f"i{j}" for j in range(600)], "set": ["ref"] * 400 + ["gen"] * 200})
    scaled = x.copy()
    scaled[400:] *= 2.0

    def gen_vs1(data, cache):
        c = Comparison(reference="ref", n_boot=3, kernel=kernel, diagnostics=[]).fit(data, items, per_set_cache=cache)
        return float(c.scores_.set_index("group").loc["gen", "VS_1"])

    gen_vs1(x, tmp_path)
    assert gen_vs1(scaled, tmp_path) == pytest.approx(gen_vs1(scaled, False), rel=1e-9)
    assert gen_vs1(scaled, False) != pytest.approx(gen_vs1(x, False), rel=1e-3)


def test_rff_error_is_measured_where_the_rank_cap_binds():
    # 1,500 points far apart for σ = 1 (squared distances ≈ 128): the exact RBF kernel is the
    # identity to 1e-27, so VS_q = 1500 at every order. 400 frequencies cap the rank at 800.
    x = np.random.default_rng(0).normal(size=(1500, 64))
    plan = plan_features(x, kernel="rbf", method="rff", sigma=1.0, n_features=400)
    full = compute_spectrum(x, plan=plan).vendi(Q)
    true = {q: abs(v - 1500) / 1500 for q, v in full.items()}
    reported = approximation_error(x, plan, q=Q, sample=600, max_sample=900, full=full)
    for q in Q:
        assert reported[q] >= 0.6 * true[q], (q, reported[q], true[q])
    assert all(reported[q] >= 0.8 * true[q] for q in (0.1, 0.5))
    # what a 600-item subsample (below the cap) says at q = 0.1: a small fraction of the truth
    idx = np.sort(np.random.default_rng(0).choice(1500, 600, replace=False))
    exact = compute_spectrum(x[idx], plan=plan_features(x[idx], kernel="rbf", method="exact", sigma=1.0)).vendi(Q)
    naive = compute_spectrum(x[idx], plan=plan).vendi(Q)
    assert abs(naive[0.1] - exact[0.1]) / exact[0.1] < 0.3 * true[0.1]


def test_orders_below_one_warn_under_a_binding_approximation():
    x = np.random.default_rng(1).normal(size=(700, 32))
    analysis = VendiAnalysis(q=Q, kernel="rbf", method="rff", sigma=1.0, n_features=128, contributions=False).fit(x)
    notes = analysis.spectrum_.warnings
    assert any(n.startswith("VS_0.1 is unreliable") and "rank 256 (700 items)" in n for n in notes)
    assert any(n.startswith("VS_0.5 is unreliable") for n in notes)
    assert set(analysis.result().to_dict()["warnings"]) == set(notes)


def test_sigma_zero_is_refused_not_replaced_by_the_median(rng):
    x = rng.normal(size=(20, 3))
    for sigma in (0, 0.0, -1.0, float("nan")):
        with pytest.raises(InputError, match="sigma must be a positive number"):
            vendi_scores(x, kernel="rbf", sigma=sigma)
    with pytest.raises(InputError):
        rbf_rows(x, sigma=0.0)


def test_precomputed_matrix_with_negative_eigenvalues_warns_or_is_refused():
    k = np.array([[1, .9, 0], [.9, 1, 0], [0, 0, 1]])
    values, vectors = np.linalg.eigh(k)  # smallest eigenvalue 0.1
    slightly = k - 0.1005 * np.outer(vectors[:, 0], vectors[:, 0])  # the smallest becomes −0.0005
    low = np.linalg.eigvalsh(slightly)
    assert -1e-2 < low.min() / low.max() < -1e-4  # negative beyond round-off, within the tolerance
    with pytest.warns(UserWarning, match="negative eigenvalues"):
        out = vendi_scores(slightly, kernel="precomputed", q=[1.0]).to_dict()
    assert any("not positive semi-definite" in w for w in out["warnings"])
    bad = np.array([[1, .9, .9], [.9, 1, -.9], [.9, -.9, 1]])
    assert np.linalg.eigvalsh(bad).min() < -0.5
    with pytest.raises(InputError, match="not positive semi-definite"):
        vendi_scores(bad, kernel="precomputed")
    with warnings.catch_warnings():  # a PSD matrix: no warning
        warnings.simplefilter("error")
        assert vendi_scores(k, kernel="precomputed", q=[1.0]).scores[1.0] == pytest.approx(2.1573005, abs=1e-7)


def test_exact_rbf_reports_the_eigenvalue_cut_it_applied(rng):
    x = rng.normal(size=(600, 2))  # low dimension: the kernel's eigenvalues fall off fast, many are cut
    out = vendi_scores(x, kernel="rbf", method="exact", q=[1.0]).to_dict()
    cut = default_rtol(np.float64, 600)
    assert cut > 1e-12 and out["eigenvalue_rtol"] == cut
    from explorer.metrics.kernels import median_sigma, rbf_kernel

    values = np.linalg.eigvalsh(rbf_kernel(x, x, sigma=median_sigma(x)))
    assert out["eigenvalues_dropped"] == int((values < cut * values.max()).sum()) > 0


def test_compare_states_its_kernel_and_centre(rng, tmp_path):
    from explorer.compare.comparison import Comparison

    # the sample set varies in 2 of the reference's 8 directions, all far from the origin
    flat = rng.normal(size=(80, 8))
    flat[:, 2:] = 0.0
    x = np.vstack([rng.normal(size=(80, 8)) + 4, flat + 4])
    items = pd.DataFrame({"id": [f"i{j}" for j in range(160)], "set": ["ref"] * 80 + ["narrow"] * 80})
    centred = Comparison(reference="ref", n_boot=5).fit(x, items).summary()
    assert centred["kernel"]["name"] == "centred"
    assert centred["kernel"]["centre"] == "mean of the reference 'ref', 80 items"
    assert "precision, recall, density, coverage" in centred["kernel"]["cosine_geometry"]
    plain = Comparison(reference="ref", n_boot=5, kernel="cosine").fit(x, items).summary()
    assert plain["kernel"] == {**plain["kernel"], "name": "cosine", "describe": "cosine"}
    # around the reference's mean the collapse to 2 directions shows; seen from the origin it hardly does
    assert centred["sets"]["narrow"]["vs1_ratio"] < 0.5 < 0.8 < plain["sets"]["narrow"]["vs1_ratio"]
    assert centred["sets"]["narrow"]["precision"] == plain["sets"]["narrow"]["precision"]  # cosine geometry kept
    json.dumps(centred)


def test_cli_kernels_state_their_centre_and_refuse_bad_bandwidths(tmp_path, capsys):
    from explorer.cli import main

    rng = np.random.default_rng(5)
    x = rng.normal(size=(120, 6)) + 3.0
    np.save(tmp_path / "emb.npy", x)
    assert main(["score", str(tmp_path / "emb.npy"), "--kernel", "centered", "--q", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kernel"] == "centred" and out["centre"] == "pooled mean of 120 items"
    assert out["scores"]["1"] == pytest.approx(vendi_scores(x - x.mean(0), q=[1.0]).scores[1.0], rel=1e-9)
    assert main(["score", str(tmp_path / "emb.npy"), "--kernel", "rbf", "--sigma", "0"]) == 2
    assert "sigma must be a positive number" in capsys.readouterr().err
    # compare: centred on the reference's mean by default, plain cosine on request, both said
    pd.DataFrame({"id": [f"v{i}" for i in range(120)], "set": ["a"] * 60 + ["b"] * 60}).to_parquet(
        tmp_path / "items.parquet")
    args = ["compare", "--in", str(tmp_path / "emb.npy"), "--reference", "a", "b", "--model", "pixels",
            "--n-boot", "3", "--quiet", "--cache-dir", str(tmp_path / "cache")]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "kernel: centred cosine (centre: mean of the reference 'a', 60 items), for Vendi scores" in text
    assert main([*args, "--kernel", "cosine", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kernel"]["name"] == "cosine" and "regions" in summary["kernel"]["cosine_geometry"]
