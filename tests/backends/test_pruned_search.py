"""The ``cpu`` backend's pruned ring search equals the exhaustive one."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

import scipy.fft

from sigcore.alignment import SearchParams
from sigcore.backends._numba_kernels import pack_rings
from sigcore.backends.polar import RingSearch, polar_grid
from sigcore.backends.pruned_search import DENSE_LEVELS, PrunedRingSearch


def _factors(grid, rows, refs, dominant, seed, decay=True):
    """Random harmonics decaying with k; ``dominant`` adds a rotational average.

    Returns ``a`` (rows, R, K), as the search passes image rows, and ``b_w``
    (K, R, G), zero beyond each ring's cut-off as the search's reference
    harmonics are (the image rows are not cut).
    """
    rng = np.random.default_rng(seed)
    k, r = grid.n_harmonics, len(grid.radii)

    def normal(*shape):
        return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)

    decay = 1.0 / (1.0 + np.arange(k)) if decay else np.ones(k)
    a = normal(k, rows, r) * decay[:, None, None]
    b = normal(k, r, refs) * decay[:, None, None]
    a[0] += abs(dominant) * (1.0 + 0.1 * rng.standard_normal((rows, 1)))
    b[0] += dominant
    b *= np.arange(k)[:, None, None] <= grid.cutoffs[None, :, None]
    a = np.transpose(a, (1, 2, 0)).astype(np.complex64)
    return a, np.ascontiguousarray(b.astype(np.complex64))


def _both(a, b_w, grid, ni, rpi):
    rows, nj = a.shape[0], b_w.shape[2]
    out = []
    for cls in (RingSearch, PrunedRingSearch):
        search = cls(b_w, grid, np, scipy.fft)
        which, m0, around, coef = search.best(search.rows(a, nj), 0, nj, ni, rpi)
        coef = np.asarray(coef)
        coef = coef if cls is PrunedRingSearch else coef.T  # (pairs, K...)
        out.append((which, m0, around, coef[:, : grid.n_harmonics]))
    assert rows == ni * rpi
    return out


@pytest.mark.parametrize("shape", [(3, 25, 7), (1, 1, 1), (2, 2, 5)])
@pytest.mark.parametrize("dominant", [0.0, 6.0, -6.0])
def test_best_matches_exhaustive(shape, dominant):
    """Same best row and psi sample, ties included (the first row wins).

    A strong positive rotational average lets most rows be pruned; a negative
    one makes every bound useless (all correlations negative) and every row
    must be evaluated.
    """
    ni, rpi, nj = shape
    grid = polar_grid(32, SearchParams(max_frequency=0.5))
    assert grid.n_harmonics > DENSE_LEVELS[-1]  # the completion is exercised
    a, b_w = _factors(grid, ni * rpi, nj, dominant, seed=7)
    if rpi > 1:
        a[1] = a[0]  # rows 0 and 1 of image 0 tie: row 0 wins
    (w0, m0, ar0, c0), (w1, m1, ar1, c1) = _both(a, b_w, grid, ni, rpi)
    np.testing.assert_array_equal(w1, w0)
    np.testing.assert_array_equal(m1, m0)
    np.testing.assert_allclose(ar1, ar0, rtol=1e-4, atol=1e-5 * np.abs(ar0).max())
    np.testing.assert_allclose(c1, c0, rtol=1e-4, atol=1e-5 * np.abs(c0).max())


def test_best_with_few_harmonics_is_dense():
    """A band with no more harmonics than the dense block needs no completion."""
    grid = polar_grid(8, SearchParams(max_frequency=0.1))
    a, b_w = _factors(grid, 6, 4, 3.0, seed=1)
    (w0, m0, _, c0), (w1, m1, _, c1) = _both(a, b_w, grid, 2, 3)
    np.testing.assert_array_equal(w1, w0)
    np.testing.assert_array_equal(m1, m0)
    np.testing.assert_allclose(c1, c0, rtol=1e-5, atol=1e-6)


def test_pack_rings_keeps_each_rings_harmonics():
    grid = polar_grid(32, SearchParams(max_frequency=0.5))
    a, _ = _factors(grid, 5, 1, 0.0, seed=2)
    ring_end = np.minimum(grid.cutoffs + 1, grid.n_harmonics)
    re, im, offsets, norm2 = pack_rings(a, ring_end)
    assert offsets[-1] == ring_end.sum() == re.shape[1]
    for r, end in enumerate(ring_end):
        seg = slice(offsets[r], offsets[r + 1])
        np.testing.assert_array_equal(re[:, seg] + 1j * im[:, seg], a[:, r, :end])
    kept = np.arange(a.shape[2])[None, :] < ring_end[:, None]  # (R, K)
    want = (np.abs(a) ** 2 * kept).sum(axis=1)
    np.testing.assert_allclose(norm2, want, rtol=1e-5)


def test_cross_matches_exhaustive():
    """The numba cross term equals the generic batched product."""
    grid = polar_grid(32, SearchParams(max_frequency=0.5))
    a, b_w = _factors(grid, 6, 5, 2.0, seed=3)
    rng = np.random.default_rng(4)
    weight = rng.uniform(0.5, 2.0, len(grid.radii)).astype(np.float32)
    rows = np.array([0, 5, 2, 2])
    cols = np.array([4, 0, 1, 3])
    psi = rng.uniform(-np.pi, np.pi, 4).astype(np.float32)
    dense = RingSearch(b_w, grid, np, scipy.fft)
    fast = PrunedRingSearch(b_w, grid, np, scipy.fft)
    want = dense.cross(dense.rows(a, 5), weight, 0, rows, cols, psi)
    got = fast.cross(fast.rows(a, 5), weight, 0, rows, cols, psi)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_refine_matches_generic():
    """Float64 numba Newton steps agree with the generic float32 ones."""
    grid = polar_grid(32, SearchParams(max_frequency=0.5))
    a, b_w = _factors(grid, 4, 3, 4.0, seed=5)
    dense = RingSearch(b_w, grid, np, scipy.fft)
    fast = PrunedRingSearch(b_w, grid, np, scipy.fft)
    _, m0, _, coef = dense.best(dense.rows(a, 3), 0, 3, 2, 2)
    step = 2.0 * np.pi / grid.n_psi
    psi0 = (m0.ravel() * step).astype(np.float32)
    psi_d, val_d = dense.refine(coef, psi0, step)
    padded = np.zeros((coef.shape[1], grid.n_psi // 2 + 1), np.complex64)
    padded[:, : grid.n_harmonics] = coef.T
    psi_f, val_f = fast.refine(padded, psi0, step)
    np.testing.assert_allclose(val_f, val_d, rtol=1e-4)
    np.testing.assert_allclose(psi_f, psi_d, atol=2e-3)
    assert np.all(val_f >= val_d - 1e-4 * np.abs(val_d))


def test_falls_back_to_exhaustive_when_nothing_prunes():
    """White harmonics (no rotational average) defeat the bound: the evaluator
    switches to forming every product after the first chunk, same result."""
    grid = polar_grid(32, SearchParams(max_frequency=0.5))
    ni, rpi, nj = 2, 9, 6
    a, b_w = _factors(grid, ni * rpi, nj, 0.0, seed=11, decay=False)
    dense = RingSearch(b_w, grid, np, scipy.fft)
    want = dense.best(dense.rows(a, nj), 0, nj, ni, rpi)
    fast = PrunedRingSearch(b_w, grid, np, scipy.fft)
    state = fast.rows(a, nj)
    first = fast.best(state, 0, nj, ni, rpi)
    assert fast.exhaustive
    second = fast.best(state, 0, nj, ni, rpi)
    for got in (first, second):
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_allclose(got[2], want[2], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(
            got[3][:, : grid.n_harmonics], np.asarray(want[3]).T, rtol=1e-4, atol=1e-6
        )


def test_escalates_to_more_dense_harmonics(monkeypatch):
    """After a chunk that completed too many columns, later chunks form 16
    harmonics densely; the result stays the exhaustive one."""
    import sigcore.backends.pruned_search as pruned

    monkeypatch.setattr(pruned, "ESCALATE_FRACTION", 0.0)
    grid = polar_grid(32, SearchParams(max_frequency=0.5))
    ni, rpi, nj = 2, 9, 6
    a, b_w = _factors(grid, ni * rpi, nj, 3.0, seed=12)
    dense = RingSearch(b_w, grid, np, scipy.fft)
    want = dense.best(dense.rows(a, nj), 0, nj, ni, rpi)
    fast = PrunedRingSearch(b_w, grid, np, scipy.fft)
    first = fast.best(fast.rows(a, nj), 0, nj, ni, rpi)
    assert fast.level == 1
    assert not fast.exhaustive
    state = fast.rows(a, nj)
    assert state.low.shape[0] == DENSE_LEVELS[1]
    second = fast.best(state, 0, nj, ni, rpi)
    for got in (first, second):
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_allclose(
            got[3][:, : grid.n_harmonics], np.asarray(want[3]).T, rtol=1e-4, atol=1e-5
        )


def test_third_tier_bounds_the_maximum_over_psi():
    """The 16-harmonic bound is never below a column's maximum over psi."""
    from sigcore.backends._numba_kernels import _third_tier

    grid = polar_grid(32, SearchParams(max_frequency=0.5))
    rows, nj = 12, 9
    a, b_w = _factors(grid, rows, nj, 3.0, seed=11)
    search = PrunedRingSearch(b_w, grid, np, scipy.fft)
    state = search.rows(a, nj)
    assert state.mid is not None  # 8 dense harmonics, K > 16
    c_all = np.einsum("qrk,krj->kqj", a.astype(np.complex128), b_w)  # (K, rows, G)
    c_low = np.ascontiguousarray(c_all[:8].astype(np.complex64))
    mult = np.where(np.arange(grid.n_harmonics) == 0, 1.0, 2.0)
    psi = np.linspace(0.0, 2.0 * np.pi, 4096, endpoint=False)
    phase = np.exp(1j * np.outer(np.arange(grid.n_harmonics), psi))  # (K, P)
    curve = np.einsum("kqj,kp->qjp", c_all * mult[:, None, None], phase).real
    top = curve.max(axis=-1).ravel()  # (rows * G,)
    row_idx, col_idx = (x.ravel() for x in np.indices((rows, nj)))
    floors = (top - 1e-5 * np.abs(top) - 1e-6).astype(np.float32)
    keep = _third_tier(c_low, *state.mid, row_idx, col_idx, 0, floors)
    assert keep.all()
    # Above 1.3 x the Cauchy-Schwarz sum (the grid's slack adds < 30% to the
    # first 16 harmonics) nothing can be kept.
    a_norm = np.linalg.norm(a, axis=1)  # (rows, K)
    b_norm = np.linalg.norm(b_w, axis=1)  # (K, G)
    out_of_reach = 1.3 * ((a_norm * mult) @ b_norm).ravel() + 1.0
    keep = _third_tier(
        c_low, *state.mid, row_idx, col_idx, 0, out_of_reach.astype(np.float32)
    )
    assert not keep.any()


@pytest.mark.parametrize("n_harm", [5, 8, 12, 16])
@pytest.mark.parametrize("n", [1, 37, 256, 700])
def test_grid_max_equals_the_sampled_sum(n_harm, n):
    """The psi-grid maximum (written-out 8 and 16 harmonics, blocks of
    columns, the general loop otherwise) equals a direct evaluation."""
    from sigcore.backends._numba_kernels import _grid_max, _psi_table

    rng = np.random.default_rng(n_harm * 1000 + n)
    z_re = rng.standard_normal((n_harm, n)).astype(np.float32)
    z_im = rng.standard_normal((n_harm, n)).astype(np.float32)
    cos_t, sin_t = _psi_table(n_harm, 32)
    best = np.empty(n, np.float32)
    _grid_max(z_re, z_im, cos_t, sin_t, n, np.empty(n, np.float32), best)
    want = (z_re.T.astype(np.float64) @ cos_t - z_im.T.astype(np.float64) @ sin_t).max(
        axis=1
    )
    np.testing.assert_allclose(best, want, rtol=1e-5, atol=1e-5)


def test_kept_rows_are_reused_with_the_same_result(monkeypatch):
    """Through search_polar with an ImageCache, the second search of the same
    images forms no image rows and returns the first search's tables."""
    import sigcore.backends.pruned_search as pruned
    from sigcore.backends.polar import ImageCache, search_polar
    from sigcore.metrics.imed import Imed

    from .test_search_reference import render

    rng = np.random.default_rng(3)
    refs = np.stack([render(s, 0, (0, 0)) for s in range(3)] * 4)
    images = np.stack([render(j % 3, 40.0 * j, (1, -1)) for j in range(30)])
    images += 0.2 * rng.standard_normal(images.shape).astype(np.float32)
    params = SearchParams(max_shift=2, max_frequency=0.4)
    formed = []
    row_harmonics = pruned.row_harmonics
    monkeypatch.setattr(
        pruned, "row_harmonics", lambda *a: formed.append(1) or row_harmonics(*a)
    )

    def search(cache):
        return search_polar(
            images, refs, params, [Imed()], xp=np, fft=scipy.fft,
            ring_search=PrunedRingSearch, image_cache=cache,
        )  # fmt: skip

    want = search(None)
    n_chunks = len(formed)
    cache = ImageCache(rows_budget=1 << 30)
    first, second = search(cache), search(cache)
    assert len(formed) == 2 * n_chunks  # none formed by the second search
    for got in (first, second):
        np.testing.assert_array_equal(got.correlation, want.correlation)
        np.testing.assert_array_equal(got.psi, want.psi)
        np.testing.assert_array_equal(got.shifts, want.shifts)
        np.testing.assert_array_equal(got.metrics["imed"], want.metrics["imed"])
