"""IMED: real-space definition, its Fourier form, and the correlation metric."""

from __future__ import annotations

import numpy as np

from sigcore.metrics.correlation import Correlation
from sigcore.metrics.imed import Imed, _standardised

N = 24


def _smooth(rng):
    k = np.fft.fftfreq(N)
    filt = np.exp(-(k[None] ** 2 + k[:, None] ** 2) * 40)
    return np.fft.ifft2(np.fft.fft2(rng.standard_normal((3, N, N))) * filt).real


def test_imed_matches_direct_sum_and_fourier_form():
    rng = np.random.default_rng(2)
    a, b = _smooth(rng), _smooth(rng)
    d = Imed().score(a.astype(np.float32), b.astype(np.float32), np)
    p = np.arange(N) - N // 2
    disk = (p[None] ** 2 + p[:, None] ** 2) <= (N / 2) ** 2
    e = (_standardised(a, np) - _standardised(b, np)) * disk
    yy, xx = np.nonzero(disk)
    dist2 = (yy[:, None] - yy[None]) ** 2 + (xx[:, None] - xx[None]) ** 2
    g = np.exp(-dist2 / 2.0) / (2 * np.pi)
    direct = np.sqrt([e[q][yy, xx] @ g @ e[q][yy, xx] for q in range(3)])
    np.testing.assert_allclose(d, direct, rtol=1e-4)
    f = np.fft.fftfreq(N)
    w = Imed().fourier_weight(np.sqrt(f[None] ** 2 + f[:, None] ** 2), np)
    fourier = np.sqrt((w * np.abs(np.fft.fft2(e)) ** 2).sum(axis=(1, 2)) / N**2)
    np.testing.assert_allclose(fourier, direct, rtol=1e-2)


def test_imed_zero_for_equal_and_invariant_to_contrast():
    rng = np.random.default_rng(3)
    a = _smooth(rng).astype(np.float32)
    assert np.allclose(Imed().score(a, 3.0 * a + 1.0, np), 0.0, atol=1e-3)


def test_correlation_metric():
    rng = np.random.default_rng(4)
    a = _smooth(rng).astype(np.float32)
    c = Correlation().score(a, np.stack([a[0], -a[1], 2 * a[2] + 5]), np)
    np.testing.assert_allclose(c, [1, -1, 1], atol=1e-5)
