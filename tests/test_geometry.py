"""Tests for sigcore.geometry: closed form, scipy cross-check, round trips, mirrors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from sigcore.geometry import (
    direction,
    direction_to_euler,
    euler_to_matrix,
    inplane_matrix,
    matrix_to_euler,
    mirror_x_pose,
    random_rotations,
)

angle = st.floats(-360.0, 360.0, allow_nan=False, allow_infinity=False)
tilt_regular = st.floats(0.01, 179.99, allow_nan=False, allow_infinity=False)


def closed_form(rot: float, tilt: float, psi: float) -> np.ndarray:
    """CONVENTIONS.md §1.2 table, written out entry by entry."""
    r, t, p = np.deg2rad([rot, tilt, psi])
    cr, ct, cp = np.cos([r, t, p])
    sr, s_t, sp = np.sin([r, t, p])
    return np.array(
        [
            [cp * ct * cr - sp * sr, cp * ct * sr + sp * cr, -cp * s_t],
            [-sp * ct * cr - cp * sr, -sp * ct * sr + cp * cr, sp * s_t],
            [s_t * cr, s_t * sr, ct],
        ]
    )


def scipy_matrix(rot: float, tilt: float, psi: float) -> np.ndarray:
    return Rotation.from_euler("ZYZ", [rot, tilt, psi], degrees=True).as_matrix().T


@pytest.mark.parametrize(
    "angles",
    [(0, 0, 0), (30, 40, 50), (-120, 170, 10), (90, 90, 90), (10, 0, 20), (5, 180, 7)],
)
def test_euler_to_matrix_matches_closed_form_and_scipy(angles):
    m = euler_to_matrix(angles)
    np.testing.assert_allclose(m, closed_form(*angles), atol=1e-14)
    np.testing.assert_allclose(m, scipy_matrix(*angles), atol=1e-14)


def test_euler_to_matrix_known_values():
    # rot = 90 about Z (passive): x axis of the map goes to -y of the image.
    np.testing.assert_allclose(
        euler_to_matrix([90, 0, 0]), [[0, 1, 0], [-1, 0, 0], [0, 0, 1]], atol=1e-15
    )
    # tilt = 90: the viewing direction (third row) is +x.
    np.testing.assert_allclose(
        euler_to_matrix([0, 90, 0]), [[0, 0, -1], [0, 1, 0], [1, 0, 0]], atol=1e-15
    )


def test_euler_to_matrix_batched_shape_and_scipy():
    rng = np.random.default_rng(0)
    angles = rng.uniform(-180, 180, (4, 5, 3))
    m = euler_to_matrix(angles)
    assert m.shape == (4, 5, 3, 3)
    assert m.dtype == np.float64
    ref = Rotation.from_euler("ZYZ", angles.reshape(-1, 3), degrees=True).as_matrix()
    np.testing.assert_allclose(m.reshape(-1, 3, 3), ref.transpose(0, 2, 1), atol=1e-14)


@settings(max_examples=200, deadline=None)
@given(angle, angle, angle)
def test_matrix_is_proper_rotation(rot, tilt, psi):
    m = euler_to_matrix([rot, tilt, psi])
    np.testing.assert_allclose(m @ m.T, np.eye(3), atol=1e-13)
    assert np.linalg.det(m) == pytest.approx(1.0, abs=1e-13)


@settings(max_examples=200, deadline=None)
@given(st.floats(-179.9, 180.0), tilt_regular, st.floats(-179.9, 180.0))
def test_round_trip_away_from_gimbal_lock(rot, tilt, psi):
    e = matrix_to_euler(euler_to_matrix([rot, tilt, psi]))
    np.testing.assert_allclose(e, [rot, tilt, psi], atol=1e-7)


@settings(max_examples=200, deadline=None)
@given(angle, angle, angle)
def test_matrix_round_trip_any_angles(rot, tilt, psi):
    m = euler_to_matrix([rot, tilt, psi])
    e = matrix_to_euler(m)
    assert 0.0 <= e[1] <= 180.0
    assert -180.0 < e[0] <= 180.0
    assert -180.0 < e[2] <= 180.0
    np.testing.assert_allclose(euler_to_matrix(e), m, atol=1e-9)


@pytest.mark.parametrize("tilt", [0.0, 180.0])
@pytest.mark.parametrize(("rot", "psi"), [(0, 30), (20, 30), (-150, 100), (170, -170)])
def test_round_trip_at_gimbal_lock(rot, tilt, psi):
    m = euler_to_matrix([rot, tilt, psi])
    e = matrix_to_euler(m)
    assert e[0] == 0.0
    assert e[1] == pytest.approx(tilt, abs=1e-12)
    np.testing.assert_allclose(euler_to_matrix(e), m, atol=1e-13)
    # Only psi + rot (tilt 0) or psi - rot (tilt 180) is defined.
    expected = psi + rot if tilt == 0 else psi - rot
    assert np.cos(np.deg2rad(e[2] - expected)) == pytest.approx(1.0, abs=1e-12)


def test_matrix_to_euler_against_scipy_decomposition():
    rots = random_rotations(500, np.random.default_rng(1))
    e = matrix_to_euler(rots)
    ref = Rotation.from_matrix(rots.transpose(0, 2, 1)).as_euler("ZYZ", degrees=True)
    np.testing.assert_allclose(euler_to_matrix(ref), rots, atol=1e-12)
    np.testing.assert_allclose(euler_to_matrix(e), rots, atol=1e-12)
    np.testing.assert_allclose(e[:, 1], ref[:, 1], atol=1e-9)


def test_direction_is_third_row_and_spherical():
    rng = np.random.default_rng(2)
    angles = np.column_stack(
        [
            rng.uniform(-180, 180, 50),
            rng.uniform(0, 180, 50),
            rng.uniform(-180, 180, 50),
        ]
    )
    d = direction(euler_to_matrix(angles))
    r, t = np.deg2rad(angles[:, 0]), np.deg2rad(angles[:, 1])
    expected = np.column_stack(
        [np.sin(t) * np.cos(r), np.sin(t) * np.sin(r), np.cos(t)]
    )
    np.testing.assert_allclose(d, expected, atol=1e-14)
    # Rotating the viewing direction into the image frame gives +z.
    np.testing.assert_allclose(
        np.einsum("nij,nj->ni", euler_to_matrix(angles), d),
        [[0, 0, 1]] * 50,
        atol=1e-14,
    )


def test_direction_to_euler_inverts_direction():
    rng = np.random.default_rng(3)
    angles = np.column_stack(
        [rng.uniform(-179, 180, 40), rng.uniform(0.1, 179.9, 40), np.zeros(40)]
    )
    back = direction_to_euler(direction(euler_to_matrix(angles)))
    np.testing.assert_allclose(back, angles, atol=1e-9)
    np.testing.assert_allclose(direction_to_euler([0, 0, 2.0]), [0, 0, 0], atol=1e-15)
    np.testing.assert_allclose(direction_to_euler([0, 0, -1.0]), [0, 180, 0])


def test_inplane_matrix_factorisation():
    rng = np.random.default_rng(4)
    angles = rng.uniform(-180, 180, (30, 3))
    no_psi = angles.copy()
    no_psi[:, 2] = 0.0
    np.testing.assert_allclose(
        inplane_matrix(angles[:, 2]) @ euler_to_matrix(no_psi),
        euler_to_matrix(angles),
        atol=1e-14,
    )
    np.testing.assert_allclose(inplane_matrix(0.0), np.eye(3))
    np.testing.assert_allclose(inplane_matrix(360.0), np.eye(3), atol=1e-15)
    np.testing.assert_allclose(
        inplane_matrix(30.0) @ inplane_matrix(50.0), inplane_matrix(80.0), atol=1e-15
    )


def test_mirror_x_pose_matches_euler_rule():
    rng = np.random.default_rng(5)
    angles = rng.uniform(-180, 180, (40, 3))
    shifts = rng.normal(size=(40, 2))
    m, s = mirror_x_pose(euler_to_matrix(angles), shifts)
    rule = angles + np.array([0.0, 180.0, 0.0])
    rule[:, 2] = -angles[:, 2]
    np.testing.assert_allclose(m, euler_to_matrix(rule), atol=1e-13)
    np.testing.assert_allclose(s[:, 0], -shifts[:, 0])
    np.testing.assert_allclose(s[:, 1], shifts[:, 1])
    assert np.allclose(np.linalg.det(m), 1.0)
    # The image-frame operation is the x mirror (z sign is irrelevant to projections).
    np.testing.assert_allclose(
        m @ euler_to_matrix(angles).transpose(0, 2, 1),
        np.broadcast_to(np.diag([-1.0, 1.0, -1.0]), (40, 3, 3)),
        atol=1e-13,
    )


def test_mirror_x_pose_is_an_involution():
    a = euler_to_matrix([10, 20, 30])
    m, s = mirror_x_pose(*mirror_x_pose(a, [1.5, -2.0]))
    np.testing.assert_allclose(m, a, atol=1e-15)
    np.testing.assert_allclose(s, [1.5, -2.0])


def test_random_rotations_are_uniform_rotations():
    rots = random_rotations(4000, np.random.default_rng(6))
    np.testing.assert_allclose(
        rots @ rots.transpose(0, 2, 1),
        np.broadcast_to(np.eye(3), rots.shape),
        atol=1e-12,
    )
    np.testing.assert_allclose(np.linalg.det(rots), 1.0, atol=1e-12)
    # Haar measure: the viewing direction is uniform, so E[d] = 0 and E[d d^T] = I/3.
    d = direction(rots)
    assert np.abs(d.mean(axis=0)).max() < 0.05
    np.testing.assert_allclose(d.T @ d / len(d), np.eye(3) / 3, atol=0.03)
