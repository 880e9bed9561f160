"""Significance formulas on small hand-made score tables (answers worked by hand)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import sparse

from sigcore.errors import ConfigError
from sigcore.significance import (
    alpha_schedule,
    direction_reweight,
    empirical_cdf,
    fisher_bound,
    image_weights,
    select,
    symmetry_factor,
    tail_probability,
)


def test_empirical_cdf_distinct_values_are_rank_over_count():
    # sorted: 0.1 (rank 1), 0.2 (2), 0.3 (3), 0.4 (4); L = 4
    assert empirical_cdf([0.3, 0.1, 0.4, 0.2]).tolist() == [0.75, 0.25, 1.0, 0.5]


def test_empirical_cdf_ties_share_the_max_rank():
    # two 0.3 share ranks 3 and 4 -> both get 4/4; 0.1 -> 1/4; 0.2 -> 2/4
    assert empirical_cdf([0.3, 0.1, 0.3, 0.2]).tolist() == [1.0, 0.25, 1.0, 0.5]


def test_empirical_cdf_along_rows():
    table = np.array([[3.0, 1.0, 2.0], [0.0, 0.0, 5.0]])
    # row 0: ranks 3,1,2 of 3; row 1: the two zeros share rank 2 -> 2/3
    expected = [[1.0, 1 / 3, 2 / 3], [2 / 3, 2 / 3, 1.0]]
    np.testing.assert_allclose(empirical_cdf(table, axis=1), expected)


def test_empirical_cdf_rejects_nan():
    with pytest.raises(ValueError, match="finite"):
        empirical_cdf([0.1, np.nan])


def test_alpha_schedule_reaches_alpha_final():
    # T = 3: 80, 80 + 19.5/2 = 89.75, 99.5
    np.testing.assert_allclose(alpha_schedule(80, 99.5, 3), [80.0, 89.75, 99.5])


def test_alpha_schedule_compat_divides_by_t():
    # Xmipp: step (99.5 - 80) / 3 = 6.5 -> 80, 86.5, 93 (never reaches 99.5)
    np.testing.assert_allclose(
        alpha_schedule(80, 99.5, 3, compat=True), [80.0, 86.5, 93.0]
    )


def test_alpha_schedule_single_iteration_uses_alpha0():
    assert alpha_schedule(80, 99.5, 1).tolist() == [80.0]


def test_symmetry_factor_ours_and_xmipp():
    assert [symmetry_factor(k) for k in (1, 2, 3, 4)] == [1, 2, 3, 4]
    # Xmipp: |S| - 1 except c1 -> c2 is not scaled, c3 x2, d2 (order 4) x3
    assert [symmetry_factor(k, compat=True) for k in (1, 2, 3, 4)] == [1, 1, 2, 3]


def test_tail_probability_with_symmetry():
    # (1 - 80/100) * 2 = 0.4 for c2; compat c2: * 1 = 0.2
    np.testing.assert_allclose(tail_probability([80.0], symmetry_order=2), [0.4])
    np.testing.assert_allclose(
        tail_probability([80.0], symmetry_order=2, compat=True), [0.2]
    )
    # order 5: 0.2 * 5 = 1.0 is still allowed
    np.testing.assert_allclose(tail_probability([80.0], symmetry_order=5), [1.0])


def test_tail_probability_too_low_for_group_order():
    # d3 has order 6: 0.2 * 6 = 1.2 > 1 -> needs alpha0 > 100 (1 - 1/6) = 83.33
    with pytest.raises(ConfigError, match=r"alpha0 = 80% .* order 6.*83\.3"):
        tail_probability([80.0, 90.0], symmetry_order=6)


def test_fisher_bound_by_hand():
    # r = 0.5 * (1 - 0.2) = 0.4; atanh(0.4) = 0.4236489; - 2.96 * sqrt(1/100)
    # = 0.1276489; tanh(x) ~ x - x^3/3 + 2x^5/15 = 0.126960
    np.testing.assert_allclose(fisher_bound([0.5], 0.2, 100), [0.126960], atol=1e-6)


def test_fisher_bound_finite_for_perfect_correlation():
    assert np.isfinite(fisher_bound([1.0], 1e-9, 100)).all()


ROW = np.array([[0.9, 0.5, 0.7, 0.1, 0.3]])
# CDF of ROW: 0.9 -> 5/5, 0.5 -> 3/5, 0.7 -> 4/5, 0.1 -> 1/5, 0.3 -> 2/5


def test_image_weights_correlation_only():
    # alpha 0.4 -> need F >= 0.6: keeps 0.9, 0.7, 0.5 (L - ceil(0.6 L) + 1 = 3)
    # w = F * c / c*: 1 * 0.9/0.9 = 1; 0.8 * 0.7/0.9 = 0.622222; 0.6 * 0.5/0.9
    # = 0.333333
    w = image_weights(ROW, alpha=0.4)
    np.testing.assert_allclose(w, [[1.0, 0.333333, 0.622222, 0.0, 0.0]], atol=1e-6)


def test_image_weights_with_imed_factor():
    d = np.array([[1.0, 4.0, 2.0, 3.0, 5.0]])
    # H: 1 -> 0.2, 4 -> 0.8, 2 -> 0.4; d* = 1
    # j0: 1 * (1 - 0.2) * 1/1 = 0.8
    # j1: 0.333333 * (1 - 0.8) * 1/4 = 0.0166667
    # j2: 0.622222 * (1 - 0.4) * 1/2 = 0.186667
    w = image_weights(ROW, alpha=0.4, distance=d)
    np.testing.assert_allclose(w, [[0.8, 0.0166667, 0.186667, 0.0, 0.0]], atol=1e-6)


def test_image_weights_fisher_removes_weak_pair():
    # r = 0.9 * 0.6 = 0.54; atanh = 0.604156; - 2.96 * sqrt(1/10000) = 0.574556;
    # tanh -> 0.51868: 0.5 fails, 0.7 and 0.9 pass
    w = image_weights(ROW, alpha=0.4, fisher_pixels=10000)
    np.testing.assert_allclose(w, [[1.0, 0.0, 0.622222, 0.0, 0.0]], atol=1e-6)
    # with 100 pixels the bound is tanh(0.308156) = 0.29867: nothing removed
    loose = image_weights(ROW, alpha=0.4, fisher_pixels=100)
    np.testing.assert_allclose(loose, image_weights(ROW, alpha=0.4))


def test_image_weights_ties():
    # [0.5, 0.5, 0.2, 0.1]: CDF [1, 1, 0.5, 0.25]; alpha 0.5 keeps F >= 0.5
    # w: 1 * 0.5/0.5, same, 0.5 * 0.2/0.5 = 0.2
    w = image_weights([[0.5, 0.5, 0.2, 0.1]], alpha=0.5)
    np.testing.assert_allclose(w, [[1.0, 1.0, 0.2, 0.0]])


def test_image_weights_guards_non_positive_correlation():
    # row 0 all negative: nothing; row 1 alpha 1 keeps all by rank but -0.2 is
    # dropped; F(0.1) = 2/3 -> 2/3 * 0.1/0.4 = 1/6
    c = [[-0.1, -0.5, -0.3], [0.4, -0.2, 0.1]]
    w = image_weights(c, alpha=1.0)
    np.testing.assert_allclose(w, [[0, 0, 0], [1.0, 0.0, 1 / 6]])


def test_image_weights_zero_distance_is_a_perfect_match():
    # F_c = [1, 0.5] -> [1, 0.5 * 0.8/0.9 = 0.4444]; H = [0.5, 1];
    # d*/d = [1 (guard), 0/2 = 0] -> [1 * 0.5 * 1, 0.4444 * 0 * 0] = [0.5, 0]
    w = image_weights([[0.9, 0.8]], alpha=1.0, distance=[[0.0, 2.0]])
    np.testing.assert_allclose(w, [[0.5, 0.0]])


def test_kept_count_formula_for_distinct_values():
    rng = np.random.default_rng(0)
    c = rng.uniform(0.1, 0.9, size=(20, 37))
    for alpha in (0.05, 0.2, 0.5):
        kept = (image_weights(c, alpha=alpha) > 0).sum(axis=1)
        expected = 37 - math.ceil((1 - alpha) * 37 - 1e-9) + 1
        assert (kept == expected).all()


# Two images, three directions; 0 and 1 are neighbours, 2 is alone.
C = np.array([[0.8, 0.6, 0.2], [0.4, 0.9, 0.1]])
NEIGH = sparse.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=bool))


def test_direction_reweight_pools_the_neighbours():
    # pool(0) = pool(1) = {0.8, 0.4, 0.6, 0.9}, top 0.9, L = 4
    #   (0,0): G = 3/4 -> 0.75 * 0.8/0.9 = 0.666667
    #   (1,0): G = 1/4 -> 0.25 * 0.4/0.9 = 0.111111
    #   (0,1): G = 2/4 -> 0.5 * 0.6/0.9 = 0.333333
    #   (1,1): G = 1   -> 0.9/0.9 = 1
    # pool(2) = {0.2, 0.1}, top 0.2: (0,2) -> 1; (1,2): 0.5 * 0.1/0.2 = 0.25
    w = direction_reweight(C, np.ones_like(C), NEIGH, alpha=1.0)
    expected = [[0.666667, 0.333333, 1.0], [0.111111, 1.0, 0.25]]
    np.testing.assert_allclose(w, expected, atol=1e-6)


def test_direction_reweight_diagonal_is_implied_and_counted_once():
    off_diagonal = sparse.csr_matrix(np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]]))
    np.testing.assert_allclose(
        direction_reweight(C, np.ones_like(C), off_diagonal, alpha=1.0),
        direction_reweight(C, np.ones_like(C), NEIGH, alpha=1.0),
    )


def test_direction_reweight_identity_is_xmipps_own_column():
    # pool(0) = {0.8, 0.4}, top 0.8: (0,0) -> 1, (1,0) -> 0.5 * 0.4/0.8 = 0.25
    w = direction_reweight(C, np.ones_like(C), sparse.identity(3), alpha=1.0)
    np.testing.assert_allclose(w[:, 0], [1.0, 0.25])


def test_direction_reweight_strict_and_zero_weights():
    # strict with alpha 0.5: (1,0) has G = 1/4 < 0.5 -> 0; (0,1) G = 0.5 kept
    # (0.333333); (1,2) G = 0.5 kept; a zero input weight stays zero
    weights = np.ones_like(C)
    weights[0, 2] = 0.0
    w = direction_reweight(C, weights, NEIGH, alpha=0.5, strict=True)
    expected = [[0.666667, 0.333333, 0.0], [0.0, 1.0, 0.25]]
    np.testing.assert_allclose(w, expected, atol=1e-6)


def test_direction_with_non_positive_pool_gets_no_weight():
    c = np.array([[0.5, -0.1], [0.4, -0.3]])
    w = direction_reweight(c, np.ones_like(c), sparse.identity(2), alpha=1.0)
    assert (w[:, 1] == 0).all()
    assert (w[:, 0] > 0).all()


def test_select_combines_both_steps():
    # alpha 1 keeps every positive pair; image step for row 0 ([0.8, 0.6, 0.2],
    # CDF [1, 2/3, 1/3]): [1, 2/3 * 0.6/0.8 = 0.5, 1/3 * 0.2/0.8 = 1/12];
    # times the direction factors above
    result = select(C, alpha=1.0, neighbourhoods=NEIGH)
    np.testing.assert_allclose(
        result.weights[0], [0.666667, 0.5 * 0.333333, 0.25 / 3], atol=1e-6
    )
    assert result.n_pairs == 6
    assert result.images_used == 2
    i, j = result.pairs
    assert list(zip(i.tolist(), j.tolist(), strict=True))[:2] == [(0, 0), (0, 1)]


@pytest.mark.parametrize("strict", [False, True])
def test_select_threads_give_the_same_weights(strict):
    rng = np.random.default_rng(3)
    c = rng.uniform(-0.2, 0.9, (40, 30)).round(2)  # rounding makes ties
    d = rng.uniform(0.5, 2.0, c.shape).round(2)
    neigh = sparse.random(30, 30, density=0.2, random_state=4, dtype=bool)
    one = select(c, alpha=0.3, neighbourhoods=neigh, distance=d, strict=strict)
    many = select(
        c, alpha=0.3, neighbourhoods=neigh, distance=d, strict=strict, workers=3
    )
    assert one.n_pairs > 0
    np.testing.assert_array_equal(many.weights, one.weights)
    np.testing.assert_array_equal(many.image_weights, one.image_weights)
