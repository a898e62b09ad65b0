"""Vendi scores against closed forms (shared/notes/metrics.md) and their defining properties."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.metrics.covariance import CovarianceAccumulator, cosine_spectrum
from explorer.metrics.spectrum import hill_number, parse_orders
from explorer.metrics.vendi import kernel_spectrum, vendi_scores

ORDERS = (0.0, 0.1, 0.5, 1.0, 2.0, 3.0, math.inf)


def naive_vendi(k: np.ndarray, q: float) -> float:
    """Textbook definition on the full n x n matrix, for agreement checks."""
    lam = np.linalg.eigvalsh(k / k.shape[0])
    lam = lam[lam > 1e-12 * lam.max()]
    lam = lam / lam.sum()
    if q == 1:
        return float(np.exp(-(lam * np.log(lam)).sum()))
    if math.isinf(q):
        return float(1 / lam.max())
    return float((lam ** q).sum() ** (1 / (1 - q)))


def clustered(weights_counts, dim, rng):
    """Clusters of identical unit vectors, mutually orthogonal, with the given sizes."""
    basis = np.linalg.qr(rng.normal(size=(dim, dim)))[0]
    return np.vstack([np.tile(basis[j], (m, 1)) for j, m in enumerate(weights_counts)])


def test_metrics_md_check_values():
    k = np.array([[1, .9, 0], [.9, 1, 0], [0, 0, 1]])
    spectrum = kernel_spectrum(k)
    np.testing.assert_allclose(spectrum.eigenvalues, [0.6333333333, 0.3333333333, 0.0333333333], atol=1e-9)
    expected = {1.0: 2.1573005, 2.0: 1.948052, math.inf: 1.578947, 0.5: 2.420348, 0.1: 2.845537}
    got = spectrum.vendi(list(expected))
    for q, value in expected.items():
        assert got[q] == pytest.approx(value, abs=1e-6), q


def test_same_check_values_through_the_covariance_path():
    k = np.array([[1, .9, 0], [.9, 1, 0], [0, 0, 1]])
    x = np.linalg.cholesky(k)  # rows with x_i . x_j = K_ij, unit norm
    got = vendi_scores(x, q=[0.1, 0.5, 1, 2, math.inf]).scores
    assert got[1.0] == pytest.approx(2.1573005, abs=1e-6)
    assert got[math.inf] == pytest.approx(1.578947, abs=1e-6)
    assert got[0.1] == pytest.approx(2.845537, abs=1e-6)


@pytest.mark.parametrize("q", ORDERS)
def test_identical_items_score_one(q):
    x = np.tile([[0.3, -1.2, 2.0]], (50, 1))
    assert vendi_scores(x, q=[q]).scores[q] == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("q", ORDERS)
def test_orthogonal_items_score_n(q, rng):
    x = np.linalg.qr(rng.normal(size=(40, 40)))[0] * rng.uniform(0.5, 3, size=(40, 1))
    assert vendi_scores(x, q=[q]).scores[q] == pytest.approx(40.0, rel=1e-9)


@pytest.mark.parametrize("q", ORDERS)
def test_orthogonal_clusters_give_hill_numbers(q, rng):
    counts = [50, 25, 15, 7, 3]
    w = np.array(counts) / sum(counts)
    expected = hill_number(w, q)
    if q == 1:
        assert expected == pytest.approx(math.exp(-(w * np.log(w)).sum()))
    elif math.isinf(q):
        assert expected == pytest.approx(1 / w.max())
    else:
        assert expected == pytest.approx((w ** q).sum() ** (1 / (1 - q)))
    x = clustered(counts, 16, rng)
    assert vendi_scores(x, q=[q]).scores[q] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("n,s", [(10, 0.3), (200, 0.05), (7, 0.9)])
def test_equicorrelated_closed_forms(n, s):
    k = np.full((n, n), s) + (1 - s) * np.eye(n)
    spectrum = kernel_spectrum(k)
    assert spectrum.eigenvalues[0] == pytest.approx((1 + (n - 1) * s) / n)
    np.testing.assert_allclose(spectrum.eigenvalues[1:], (1 - s) / n)
    scores = spectrum.vendi([2.0, math.inf])
    assert scores[2.0] == pytest.approx(n / (1 + (n - 1) * s ** 2))
    assert scores[math.inf] == pytest.approx(n / (1 + (n - 1) * s))
    # VS_2 needs no eigendecomposition: n^2 / sum K_ij^2
    assert scores[2.0] == pytest.approx(n * n / (k ** 2).sum())


def test_rank_deficient_orders_below_one_count_only_real_directions(rng):
    basis = np.linalg.qr(rng.normal(size=(64, 5)))[0].T  # 5 orthonormal directions in 64-d
    x = (rng.normal(size=(300, 5)) @ basis).astype(np.float32)
    result = vendi_scores(x, q=[0.0, 0.1, 0.5])
    assert result.spectrum.rank == 5
    assert result.scores[0.0] == 5.0
    assert result.scores[0.1] <= 5.0
    k = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float64)
    k = k @ k.T
    exact = kernel_spectrum(k)
    assert exact.rank == 5 and exact.n_dropped == 295
    assert exact.vendi(0.1)[0.1] == pytest.approx(result.scores[0.1], rel=1e-6)


def test_round_off_eigenvalues_are_not_counted(rng):
    """metrics.md: 2000 random unit vectors in 64-d have rank 64; naive code gives VS_0 ~ 1000."""
    x = rng.normal(size=(2000, 64)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    assert vendi_scores(x, q=[0.0]).scores[0.0] == 64
    k32 = (x @ x.T).astype(np.float32)
    precomputed = kernel_spectrum(k32)
    assert precomputed.rank == 64
    assert precomputed.rtol == 1e-6
    naive_count = int((np.linalg.eigvalsh(k32.astype(np.float64) / 2000) > 0).sum())
    assert naive_count > 500  # the bug we guard against is real


def test_agrees_with_naive_n_by_n(rng):
    x = rng.normal(size=(300, 20))
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    k = xn @ xn.T
    got = vendi_scores(x, q=ORDERS[1:]).scores
    for q in ORDERS[1:]:
        assert got[q] == pytest.approx(naive_vendi(k, q), rel=1e-9), q


def test_streaming_and_merging_equal_one_pass(rng):
    x = rng.normal(size=(1000, 12))
    whole = cosine_spectrum(x).vendi([0.5, 1.0, 2.0])
    a, b = CovarianceAccumulator(), CovarianceAccumulator()
    for chunk in np.array_split(x[:600], 7):
        a.update(chunk)
    b.update(x[600:])
    merged = a.merge(b).spectrum().vendi([0.5, 1.0, 2.0])
    for q in whole:
        assert merged[q] == pytest.approx(whole[q], rel=1e-12)
    assert cosine_spectrum(x, batch_size=33).vendi(1.0)[1.0] == pytest.approx(whole[1.0], rel=1e-12)


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match="NaN or inf"):
        vendi_scores(np.array([[1.0, np.nan], [0, 1]]))
    with pytest.raises(ValueError, match="zero norm"):
        vendi_scores(np.array([[0.0, 0.0], [0, 1]]))
    with pytest.raises(ValueError, match="not symmetric"):
        vendi_scores(np.array([[1.0, 0.5], [0.1, 1]]), kernel="precomputed")
    with pytest.raises(ValueError, match="square"):
        vendi_scores(np.ones((2, 3)), kernel="precomputed")
    with pytest.raises(ValueError, match="order q"):
        parse_orders("1,-2")
    assert parse_orders("0.1,0.5,1,2,inf") == (0.1, 0.5, 1.0, 2.0, math.inf)


def test_unnormalised_precomputed_diagonal_is_normalised(rng):
    x = rng.normal(size=(30, 5))
    gram = x @ x.T
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert kernel_spectrum(gram).vendi(1.0)[1.0] == pytest.approx(kernel_spectrum(xn @ xn.T).vendi(1.0)[1.0])


unit_rows = st.integers(min_value=2, max_value=30).flatmap(
    lambda n: st.integers(min_value=1, max_value=12).flatmap(
        lambda d: st.integers(min_value=0, max_value=2**32 - 1).map(
            lambda seed: np.random.default_rng(seed).normal(size=(n, d)))))


@settings(max_examples=60, deadline=None)
@given(unit_rows)
def test_bounds_and_monotone_in_q(x):
    result = vendi_scores(x, q=ORDERS)
    values = [result.scores[q] for q in ORDERS]
    rank = result.spectrum.rank
    assert rank <= min(x.shape)
    assert values[0] == rank
    for v in values:
        assert 1 - 1e-9 <= v <= rank + 1e-9
    for a, b in zip(values, values[1:]):
        assert b <= a * (1 + 1e-9)


@settings(max_examples=40, deadline=None)
@given(unit_rows)
def test_duplicating_every_item_leaves_scores_unchanged(x):
    once = vendi_scores(x, q=ORDERS[1:]).scores
    twice = vendi_scores(np.vstack([x, x]), q=ORDERS[1:]).scores
    for q in once:
        assert twice[q] == pytest.approx(once[q], rel=1e-8)


@settings(max_examples=40, deadline=None)
@given(unit_rows)
def test_block_diagonal_copy_doubles_scores(x):
    zeros = np.zeros_like(x)
    doubled = np.vstack([np.hstack([x, zeros]), np.hstack([zeros, x])])  # orthogonal copy
    once = vendi_scores(x, q=ORDERS[1:]).scores
    twice = vendi_scores(doubled, q=ORDERS[1:]).scores
    for q in once:
        assert twice[q] == pytest.approx(2 * once[q], rel=1e-8)
    k = x / np.linalg.norm(x, axis=1, keepdims=True)
    k = k @ k.T
    block = np.block([[k, np.zeros_like(k)], [np.zeros_like(k), k]])
    assert kernel_spectrum(block).vendi(1.0)[1.0] == pytest.approx(2 * kernel_spectrum(k).vendi(1.0)[1.0], rel=1e-8)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 30), min_size=1, max_size=8), st.floats(0, 6), st.integers(0, 2**32 - 1))
def test_orthogonal_clusters_are_hill_numbers_for_any_q_and_proportions(counts, q, seed):
    w = np.array(counts) / sum(counts)
    x = clustered(counts, 8, np.random.default_rng(seed))
    got = vendi_scores(x, q=[q, math.inf]).scores
    assert got[q] == pytest.approx(hill_number(w, q), rel=1e-9)
    assert got[math.inf] == pytest.approx(1 / w.max(), rel=1e-9)
    if q not in (0.0, 1.0):
        assert hill_number(w, q) == pytest.approx((w ** q).sum() ** (1 / (1 - q)), rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 40), st.floats(0, 0.99), st.integers(0, 2**32 - 1))
def test_equicorrelated_items_any_size(n, s, seed):
    k = np.full((n, n), s) + (1 - s) * np.eye(n)
    scores = kernel_spectrum(k).vendi([2.0, math.inf])
    assert scores[2.0] == pytest.approx(n / (1 + (n - 1) * s * s), rel=1e-9)
    assert scores[math.inf] == pytest.approx(n / (1 + (n - 1) * s), rel=1e-9)
