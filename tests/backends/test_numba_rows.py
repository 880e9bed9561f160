"""The image rows' harmonics as real products equal the FFT path's."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

import scipy.fft

from sigcore.alignment import SearchParams
from sigcore.backends import pruned_search
from sigcore.backends._numba_kernels import pack_rings
from sigcore.backends._numba_rows import (
    phase_planes,
    row_harmonics,
    row_tables,
    rows_from_planes,
)
from sigcore.backends.polar import (
    RingSearch,
    ThreadScratch,
    _shift_phases,
    polar_grid,
    polar_samples,
    shift_grid,
)
from sigcore.backends.pruned_search import PrunedRingSearch


def _case(n, params, n_images=2, seed=0):
    """Polar samples (ni, M, R, L) of random images, norms and phases."""
    grid = polar_grid(n, params)
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((n_images, n, n)).astype(np.float32)
    mirrors = (False, True) if params.mirror else (False,)
    samples = np.stack(
        [polar_samples(images, grid, mirror=m, xp=np) for m in mirrors], axis=1
    )
    norm = rng.uniform(0.5, 2.0, n_images).astype(np.float32)
    shifts = shift_grid(params)
    phase = _shift_phases(
        n,
        grid.n_angles,
        tuple(grid.radii.tolist()),
        tuple(map(tuple, shifts.tolist())),
        np,
    )
    return grid, samples, norm, phase


def _fft_harmonics(grid, samples, norm, phase):
    """The generic path: conjugate, normalise, shift, inverse FFT, (rows, R, K)."""
    unit = np.conj(samples) / norm[:, None, None, None]
    shifted = unit[:, :, None] * phase[None, None]
    a = scipy.fft.ifft(shifted.reshape(-1, *shifted.shape[3:]), axis=-1)
    return a[..., : grid.n_harmonics]


@pytest.mark.parametrize(
    ("n", "params"),
    [
        (64, SearchParams(max_frequency=0.25, max_shift=2)),
        (32, SearchParams(max_frequency=0.5, max_shift=1, mirror=True)),
        (17, SearchParams(max_frequency=0.4, max_shift=1.5, shift_step=0.5)),
    ],
)
def test_row_harmonics_equal_the_fft_path(n, params):
    """Packed planes, norms, dense harmonics and third-tier planes agree with
    the inverse FFT of the full circle to float rounding."""
    grid, samples, norm, phase = _case(n, params)
    want = _fft_harmonics(grid, samples, norm, phase).astype(np.complex64)
    ring_end = np.minimum(grid.cutoffs + 1, grid.n_harmonics).astype(np.int64)
    want_re, want_im, _, want_norm2 = pack_rings(want, ring_end)
    tables = row_tables(grid.n_angles, tuple(ring_end.tolist()))
    mid_ring = int(np.searchsorted(ring_end, 16))
    mid = (mid_ring, 8, 8) if mid_ring < len(ring_end) else None
    got = row_harmonics(
        samples,
        1.0 / norm,
        phase_planes(phase, tables),
        tables,
        grid.n_harmonics,
        8,
        mid,
        ThreadScratch(np),
    )
    scale = np.abs(want).max()
    np.testing.assert_allclose(got.a_re, want_re, atol=2e-6 * scale)
    np.testing.assert_allclose(got.a_im, want_im, atol=2e-6 * scale)
    np.testing.assert_allclose(got.norm2, want_norm2, rtol=1e-5, atol=1e-6 * scale**2)
    kept = np.arange(8)[:, None, None] < ring_end[None, None, :]
    want_low = np.where(kept, np.transpose(want[:, :, :8], (2, 0, 1)), 0)
    np.testing.assert_allclose(got.low, want_low, atol=2e-6 * scale)
    if mid is not None:
        want_mid = np.transpose(want[:, mid_ring:, 8:16], (0, 2, 1))
        np.testing.assert_allclose(got.mid[0], want_mid.real, atol=2e-6 * scale)
        np.testing.assert_allclose(got.mid[1], want_mid.imag, atol=2e-6 * scale)
    else:
        assert got.mid is None
    # What a search derives again from kept planes equals the first pass.
    planes = (got.a_re.copy(), got.a_im.copy())
    scratch = ThreadScratch(np)
    again = rows_from_planes(*planes, tables, grid.n_harmonics, 8, mid, scratch)
    assert again.a_re is planes[0]
    np.testing.assert_array_equal(again.norm2, got.norm2)
    np.testing.assert_array_equal(again.low, got.low)
    if mid is not None:
        np.testing.assert_array_equal(again.mid[0], got.mid[0])
        np.testing.assert_array_equal(again.mid[1], got.mid[1])


def _references(grid, n_refs, seed):
    """Reference factors (K, R, G), zero beyond each ring's cut-off."""
    rng = np.random.default_rng(seed)
    k, r = grid.n_harmonics, len(grid.radii)
    b = rng.standard_normal((k, r, n_refs)) + 1j * rng.standard_normal((k, r, n_refs))
    b /= 1.0 + np.arange(k)[:, None, None]
    b[0] += 3.0
    b *= np.arange(k)[:, None, None] <= grid.cutoffs[None, :, None]
    return np.ascontiguousarray(b.astype(np.complex64))


@pytest.mark.parametrize("fallback", [False, True])
def test_pruned_image_rows_match_the_exhaustive_search(monkeypatch, fallback):
    """Best row and psi from the real-product rows equal the exhaustive ones,
    also once a chunk falls back to every product (its rows then come back
    from the packed planes)."""
    params = SearchParams(max_frequency=0.5, max_shift=1)
    grid, samples, norm, phase = _case(32, params, n_images=3, seed=4)
    b_w = _references(grid, 7, seed=5)
    ni, rpi, nj = samples.shape[0], phase.shape[0], b_w.shape[2]
    dense = RingSearch(b_w, grid, np, scipy.fft)
    want = dense.best(dense.image_rows(samples, norm, phase, nj), 0, nj, ni, rpi)
    # Random images prune poorly: force either path.
    monkeypatch.setattr(pruned_search, "FALLBACK_FRACTION", -1.0 if fallback else 2.0)
    fast = PrunedRingSearch(b_w, grid, np, scipy.fft)
    state = fast.image_rows(samples, norm, phase, nj)
    assert state.a is None
    got = fast.best(state, 0, nj, ni, rpi)
    assert fast.exhaustive == fallback
    if fallback:  # the first chunk completes; the second runs exhaustively
        got = fast.best(state, 0, nj, ni, rpi)
        assert state.a is not None
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[2], want[2], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        got[3][:, : grid.n_harmonics], np.asarray(want[3]).T, rtol=1e-4, atol=1e-6
    )
