"""The numba insertion kernel against the NumPy direct Fourier inversion."""

from __future__ import annotations

import time

import numpy as np
import pytest

from sigcore.backends.projector import reconstruct
from sigcore.errors import ConfigError
from sigcore.geometry import random_rotations
from sigcore.imageset import PoseTable
from sigcore.symmetry import get_symmetry

pytest.importorskip("numba")

from sigcore.backends._numba_insert import reconstruct_numba, warm_up


def _case(
    n: int, rows: int, images: int, rng: np.random.Generator
) -> tuple[np.ndarray, PoseTable]:
    """Random images and poses with shifts, uneven weights and some zero weights."""
    stack = rng.standard_normal((images, n, n)).astype(np.float32)
    weights = rng.uniform(0.1, 2.0, rows)
    weights[::4] = 0.0
    poses = PoseTable(
        image_index=rng.integers(0, images, rows),
        rotations=random_rotations(rows, rng),
        shifts=rng.uniform(-4.0, 4.0, (rows, 2)),
        weights=weights,
    )
    return stack, poses


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize(("n", "symmetry"), [(16, "c1"), (17, "c4"), (24, "c4")])
def test_matches_projector(n: int, symmetry: str) -> None:
    rng = np.random.default_rng(n)
    stack, poses = _case(n, 40, 6, rng)
    ops = get_symmetry(symmetry).operators
    expected = reconstruct(stack, poses, symmetry_ops=ops, xp=np)
    got = reconstruct_numba(stack, poses, symmetry_ops=ops)
    assert got.dtype == np.float32
    assert got.shape == (n, n, n)
    assert _relative(got, expected) < 1e-5


def test_zero_weight_rows_change_nothing() -> None:
    rng = np.random.default_rng(3)
    stack, poses = _case(12, 20, 4, rng)
    kept = poses.take(poses.weights > 0)
    a = reconstruct_numba(stack, poses)
    b = reconstruct_numba(stack, kept)
    np.testing.assert_array_equal(a, b)


def test_padding_and_regulariser_follow_projector() -> None:
    rng = np.random.default_rng(4)
    stack, poses = _case(15, 12, 3, rng)
    expected = reconstruct(stack, poses, xp=np, pad=1.5, regularizer=0.1)
    got = reconstruct_numba(stack, poses, pad=1.5, regularizer=0.1)
    assert _relative(got, expected) < 1e-5


def test_no_rows_gives_zero_volume() -> None:
    stack = np.ones((2, 8, 8), dtype=np.float32)
    poses = PoseTable.identity(2)
    poses = PoseTable(poses.image_index, poses.rotations, poses.shifts, np.zeros(2))
    assert not reconstruct_numba(stack, poses).any()


def test_invalid_input_raises() -> None:
    stack = np.ones((2, 8, 8), dtype=np.float32)
    with pytest.raises(ConfigError):
        reconstruct_numba(stack[0], PoseTable.identity(1))
    with pytest.raises(ConfigError):
        reconstruct_numba(stack, PoseTable.identity(3))
    bad = PoseTable.identity(1)
    bad = PoseTable(bad.image_index, bad.rotations, bad.shifts, -np.ones(1))
    with pytest.raises(ConfigError):
        reconstruct_numba(stack, bad)
    with pytest.raises(ConfigError):
        reconstruct_numba(stack, PoseTable.identity(1), pad=0.5)


def test_speed_at_64(capsys: pytest.CaptureFixture[str]) -> None:
    """Rows per second at 64², both paths measured in this run (printed)."""
    warm_up()
    rng = np.random.default_rng(5)
    stack, _ = _case(64, 1, 20, rng)
    few = PoseTable(
        image_index=rng.integers(0, 20, 30),
        rotations=random_rotations(30, rng),
        shifts=rng.uniform(-4.0, 4.0, (30, 2)),
        weights=np.ones(30),
    )
    many = PoseTable(
        image_index=rng.integers(0, 20, 1500),
        rotations=random_rotations(1500, rng),
        shifts=rng.uniform(-4.0, 4.0, (1500, 2)),
        weights=np.ones(1500),
    )
    start = time.perf_counter()
    expected = reconstruct(stack, few, xp=np)
    numpy_rate = len(few) / (time.perf_counter() - start)
    start = time.perf_counter()
    reconstruct_numba(stack, many)
    numba_rate = len(many) / (time.perf_counter() - start)
    assert _relative(reconstruct_numba(stack, few), expected) < 1e-5
    with capsys.disabled():
        print(
            f"\nreconstruct 64²: numpy {numpy_rate:.0f} rows/s, "
            f"numba {numba_rate:.0f} rows/s, ratio {numba_rate / numpy_rate:.1f}"
        )
    assert numba_rate > 2 * numpy_rate
