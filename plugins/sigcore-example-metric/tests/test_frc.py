"""Tests of the example metric: known answers, invariances, registration."""

from __future__ import annotations

import numpy as np
import pytest
from sigcore_example_metric import frc
from sigcore_example_metric.frc import FRCWeightedCorrelation

from sigcore.plugins import build_registry, get_plugin_manager
from sigcore.protocols import Metric

N = 32


def _wave(*, ky: int, kx: int) -> np.ndarray:
    y, x = np.mgrid[:N, :N]
    return np.cos(2 * np.pi * (ky * y + kx * x) / N).astype(np.float32)


def _ring_size(radius: int) -> int:
    """Fourier pixels of an N x N grid at rounded radius ``radius`` (by counting)."""
    f = np.fft.fftfreq(N) * N
    return int(np.sum(np.rint(np.hypot(f[:, None], f[None, :])) == radius))


def _score(images: np.ndarray, refs: np.ndarray) -> np.ndarray:
    return FRCWeightedCorrelation().score(images, refs, np)


def test_satisfies_the_metric_contract() -> None:
    metric = FRCWeightedCorrelation()
    assert isinstance(metric, Metric)
    assert metric.name == "example.frc_weighted_correlation"
    assert metric.higher_is_better is True


def test_registers_through_its_hook() -> None:
    pm = get_plugin_manager(autoload=False, extra=[frc])
    registry = build_registry(pm)
    assert (
        registry.metrics["example.frc_weighted_correlation"] is FRCWeightedCorrelation
    )


def test_identity_and_negation() -> None:
    rng = np.random.default_rng(0)
    images = rng.standard_normal((4, N, N)).astype(np.float32)
    scores = _score(images, images)
    assert scores.shape == (4,)
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores, 1.0, atol=1e-6)
    np.testing.assert_allclose(_score(images, -images), -1.0, atol=1e-6)


def test_two_rings_known_answer() -> None:
    # ring 3 agrees (FRC = +1), ring 5 is inverted (FRC = -1), all others empty
    low, high = _wave(ky=0, kx=3), _wave(ky=5, kx=0)
    score = _score((low + high)[None], (low - high)[None])[0]
    w3, w5 = _ring_size(3), _ring_size(5)
    assert score == pytest.approx((w3 - w5) / (w3 + w5), abs=1e-6)


def test_rings_count_equally_whatever_their_power() -> None:
    # a plain correlation would be dominated by the strong ring (+1); here the
    # weak, anti-correlated ring counts by its size, not its power
    low, high = _wave(ky=0, kx=3), _wave(ky=5, kx=0)
    score = _score((10 * low + high)[None], (10 * low - high)[None])[0]
    w3, w5 = _ring_size(3), _ring_size(5)
    assert score == pytest.approx((w3 - w5) / (w3 + w5), abs=1e-6)
    assert score < 0


def test_invariant_to_gain_and_offset_and_symmetric() -> None:
    rng = np.random.default_rng(1)
    images = rng.standard_normal((3, N, N)).astype(np.float32)
    refs = images + rng.standard_normal((3, N, N)).astype(np.float32)
    base = _score(images, refs)
    np.testing.assert_allclose(_score(3.5 * images + 7.0, refs), base, atol=1e-5)
    np.testing.assert_allclose(_score(refs, images), base, atol=1e-6)
    assert np.all((base > 0.3) & (base < 0.95))


def test_independent_noise_scores_near_zero() -> None:
    rng = np.random.default_rng(2)
    images = rng.standard_normal((64, N, N)).astype(np.float32)
    refs = rng.standard_normal((64, N, N)).astype(np.float32)
    scores = _score(images, refs)
    assert abs(scores.mean()) < 0.02
    assert scores.std() < 0.05


def test_flat_image_scores_zero() -> None:
    flat = np.full((1, N, N), 5.0, dtype=np.float32)
    assert _score(flat, _wave(ky=1, kx=2)[None])[0] == 0.0
