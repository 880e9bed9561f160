"""The numba Fourier-slice extraction against the NumPy projector."""

from __future__ import annotations

import numpy as np
import pytest

from sigcore.backends.projector import project
from sigcore.errors import ConfigError
from sigcore.geometry import random_rotations

pytest.importorskip("numba")

from sigcore.backends._numba_project import project_numba


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def _smooth_volume(n: int, rng: np.random.Generator) -> np.ndarray:
    """A sum of four anisotropic Gaussians near the centre, float32."""
    g = np.arange(n) - n // 2
    z, y, x = np.meshgrid(g, g, g, indexing="ij")
    volume = np.zeros((n, n, n))
    for _ in range(4):
        mean = rng.uniform(-0.1, 0.1, 3) * n
        sigma = rng.uniform(1.5, 3.0, 3)
        r2 = sum(
            ((c - m) / s) ** 2 for c, m, s in zip((x, y, z), mean, sigma, strict=True)
        )
        volume += np.exp(-0.5 * r2)
    return volume.astype(np.float32)


@pytest.mark.parametrize("n", [16, 17])
@pytest.mark.parametrize("max_frequency", [0.5, 0.3])
@pytest.mark.parametrize("pad", [2, 1.5])
def test_matches_projector(n: int, max_frequency: float, pad: float) -> None:
    rng = np.random.default_rng(n)
    volume = rng.standard_normal((n, n, n)).astype(np.float32)
    rotations = random_rotations(37, rng)
    expected = project(volume, rotations, xp=np, pad=pad, max_frequency=max_frequency)
    got = project_numba(volume, rotations, pad=pad, max_frequency=max_frequency)
    assert got.dtype == np.float32
    assert got.shape == (37, n, n)
    assert _relative(got, expected) < 1e-5


def test_band_limit_changes_the_result_as_in_the_projector() -> None:
    rng = np.random.default_rng(2)
    volume = rng.standard_normal((16, 16, 16)).astype(np.float32)
    rotations = random_rotations(5, rng)
    full = project_numba(volume, rotations)
    band = project_numba(volume, rotations, max_frequency=0.2)
    assert _relative(band, full) > 0.1  # white noise: most power is above 0.2
    assert _relative(band, project(volume, rotations, xp=np, max_frequency=0.2)) < 1e-5


@pytest.mark.parametrize("n", [24, 25])
def test_identity_projection_is_sum_over_z(n: int) -> None:
    volume = _smooth_volume(n, np.random.default_rng(1))
    image = project_numba(volume, np.eye(3)[None])[0]
    expected = volume.sum(axis=0)
    # exact up to the sinc² pre-correction (about 1.5 %, projector notes)
    assert np.abs(image - expected).max() < 0.02 * expected.max()


def test_coordinates_beyond_the_grid_wrap_as_in_the_projector() -> None:
    """Scaled matrices reach |q| > N: indices wrap periodically, never out of range."""
    rng = np.random.default_rng(3)
    volume = rng.standard_normal((12, 12, 12)).astype(np.float32)
    matrices = np.stack([3.0 * np.eye(3), -2.5 * random_rotations(1, rng)[0]])
    expected = project(volume, matrices, xp=np)
    assert _relative(project_numba(volume, matrices), expected) < 1e-5


def test_no_rotations_gives_an_empty_stack() -> None:
    out = project_numba(np.ones((9, 9, 9), np.float32), np.zeros((0, 3, 3)))
    assert out.shape == (0, 9, 9)
    assert out.dtype == np.float32


def test_invalid_input_raises() -> None:
    with pytest.raises(ConfigError, match="cube"):
        project_numba(np.zeros((4, 4, 5), np.float32), np.eye(3)[None])
    with pytest.raises(ConfigError, match="max_frequency"):
        project_numba(np.zeros((4, 4, 4), np.float32), np.eye(3)[None], max_frequency=0)
    with pytest.raises(ConfigError, match="pad"):
        project_numba(np.zeros((4, 4, 4), np.float32), np.eye(3)[None], pad=0.5)


def test_cpu_backend_projects_with_the_kernel() -> None:
    from sigcore.backends.cpu import CpuBackend

    rng = np.random.default_rng(4)
    volume = rng.standard_normal((14, 14, 14)).astype(np.float32)
    rotations = random_rotations(6, rng)
    backend = CpuBackend(threads=1)
    np.testing.assert_array_equal(
        backend.project(volume, rotations, max_frequency=0.25),
        project_numba(volume, rotations, max_frequency=0.25),
    )
