"""The brute-force search recovers known rotations, shifts and mirrors."""

from __future__ import annotations

import numpy as np
import pytest

from sigcore.alignment import SearchParams
from sigcore.backends.search_reference import band_weight, search_bruteforce, shift_grid
from sigcore.errors import ConfigError

N = 24


def render(seed: int, psi: float, shift: tuple[float, float], mirror: bool = False):
    """Gaussian blobs seen at in-plane angle psi, translated by -shift.

    ``x(p) = P0(R(psi) (p + s))`` with ``P0`` the unrotated object, so the
    search must return ``psi`` and ``s`` (SearchResult contract).
    """
    rng = np.random.default_rng(seed)
    centres, amps = rng.uniform(-6, 6, (7, 2)), rng.uniform(0.5, 1.5, 7)
    p = np.arange(N) - N // 2
    y, x = np.meshgrid(p, p, indexing="ij")
    a = np.deg2rad(psi)
    c, s = np.cos(a), np.sin(a)
    xs, ys = x + shift[0], y + shift[1]
    u, v = c * xs - s * ys, s * xs + c * ys
    if mirror:
        u = -u
    out = sum(
        am * np.exp(-((u - cx) ** 2 + (v - cy) ** 2) / 4.5)
        for (cx, cy), am in zip(centres, amps, strict=True)
    )
    return out.astype(np.float32)


def test_recovers_psi_and_shift():
    refs = np.stack([render(0, 0, (0, 0)), render(1, 0, (0, 0))])
    images = np.stack([render(0, 40.0, (2, -1)), render(1, -120.0, (-1, 2))])
    r = search_bruteforce(images, refs, SearchParams(max_shift=2))
    assert r.correlation[0, 0] > 0.999
    assert r.correlation[1, 1] > 0.999
    assert r.psi[0, 0] == pytest.approx(40.0, abs=0.05)
    assert r.psi[1, 1] == pytest.approx(-120.0, abs=0.05)
    np.testing.assert_array_equal(r.shifts[0, 0], [2, -1])
    np.testing.assert_array_equal(r.shifts[1, 1], [-1, 2])
    assert r.correlation[0, 1] < 0.95


def test_mirror_found_only_when_searched():
    refs = render(2, 0, (0, 0))[None]
    image = render(2, 0, (0, 0), mirror=True)[None]
    plain = search_bruteforce(image, refs, SearchParams(max_shift=1))
    mirrored = search_bruteforce(image, refs, SearchParams(max_shift=1, mirror=True))
    assert mirrored.mirror[0, 0]
    assert mirrored.correlation[0, 0] > 0.999
    assert not plain.mirror[0, 0]
    assert plain.correlation[0, 0] < 0.99


def test_metrics_evaluated_at_alignment():
    from sigcore.metrics.correlation import Correlation

    refs = render(3, 0, (0, 0))[None]
    images = np.stack([render(3, 75.0, (1, 0)), render(4, 0, (0, 0))])
    r = search_bruteforce(images, refs, SearchParams(max_shift=1), [Correlation()])
    # The real-space correlation of the aligned band-limited pair is the score.
    np.testing.assert_allclose(r.metrics["correlation"], r.correlation, atol=2e-3)


def test_shift_grid_and_band():
    grid = shift_grid(SearchParams(max_shift=2.5, shift_step=1.0))
    assert grid.shape == (25, 2)
    assert np.abs(grid).max() == 2
    w = band_weight(np.array([0.0, 2.0, 8.0, 12.0, 13.0]), 24, SearchParams())
    np.testing.assert_allclose(w, [0, 1, 1, 0, 0], atol=1e-12)
    with pytest.raises(ConfigError, match="max_frequency"):
        band_weight(1.0, 24, SearchParams(max_frequency=0.7))
