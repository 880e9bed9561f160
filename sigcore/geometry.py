"""Euler angles, rotation matrices, viewing directions and mirrors.

Conventions (CONVENTIONS.md §1): ZYZ Euler angles (rot, tilt, psi) in degrees,
RELION/Xmipp sense. The matrix ``A = Rz'(psi) Ry'(tilt) Rz'(rot)`` is built from
passive rotations and maps a point of the reference (map) frame into the image
frame; the projection is ``P(x, y) = integral V(A.T @ (x, y, z)) dz`` and the
viewing direction is the third row of ``A``. Angles exist only here and in
``sigcore.io``; everything else handles float64 matrices.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "direction",
    "direction_to_euler",
    "euler_to_matrix",
    "inplane_matrix",
    "matrix_to_euler",
    "mirror_x_pose",
    "random_rotations",
]

_GIMBAL_EPS = 1e-9


def euler_to_matrix(angles: ArrayLike) -> NDArray[np.float64]:
    """Build rotation matrices from ZYZ Euler angles.

    Parameters
    ----------
    angles : array_like, shape (..., 3)
        (rot, tilt, psi) in degrees, RELION/Xmipp convention.

    Returns
    -------
    ndarray, shape (..., 3, 3), float64
        ``A = Rz'(psi) Ry'(tilt) Rz'(rot)`` (reference -> particle frame).

    Examples
    --------
    >>> euler_to_matrix([0.0, 0.0, 90.0]).round(12)
    array([[ 0.,  1.,  0.],
           [-1.,  0.,  0.],
           [ 0.,  0.,  1.]])
    """
    a = np.deg2rad(np.asarray(angles, dtype=np.float64))
    cr, ct, cp = np.cos(a[..., 0]), np.cos(a[..., 1]), np.cos(a[..., 2])
    sr, st, sp = np.sin(a[..., 0]), np.sin(a[..., 1]), np.sin(a[..., 2])
    m = np.empty((*a.shape[:-1], 3, 3))
    m[..., 0, 0] = cp * ct * cr - sp * sr
    m[..., 0, 1] = cp * ct * sr + sp * cr
    m[..., 0, 2] = -cp * st
    m[..., 1, 0] = -sp * ct * cr - cp * sr
    m[..., 1, 1] = -sp * ct * sr + cp * cr
    m[..., 1, 2] = sp * st
    m[..., 2, 0] = st * cr
    m[..., 2, 1] = st * sr
    m[..., 2, 2] = ct
    return m


def matrix_to_euler(matrices: ArrayLike) -> NDArray[np.float64]:
    """Decompose rotation matrices into ZYZ Euler angles.

    Parameters
    ----------
    matrices : array_like, shape (..., 3, 3)
        Proper rotations, RELION sense.

    Returns
    -------
    ndarray, shape (..., 3), float64
        (rot, tilt, psi) in degrees with tilt in [0, 180] and rot, psi in
        (-180, 180]. At gimbal lock (tilt 0 or 180) rot is 0 and psi carries
        the whole in-plane angle.
    """
    m = np.asarray(matrices, dtype=np.float64)
    sin_tilt = np.hypot(m[..., 0, 2], m[..., 1, 2])
    tilt = np.arctan2(sin_tilt, m[..., 2, 2])
    regular = sin_tilt > _GIMBAL_EPS
    psi = np.where(regular, np.arctan2(m[..., 1, 2], -m[..., 0, 2]), 0.0)
    rot = np.where(regular, np.arctan2(m[..., 2, 1], m[..., 2, 0]), 0.0)
    # Gimbal lock: tilt 0 gives A = Rz'(psi + rot), tilt 180 gives
    # A = Rz'(psi - rot) diag(-1, 1, -1); put the whole angle in psi.
    flipped = m[..., 2, 2] < 0
    locked_psi = np.arctan2(
        m[..., 0, 1], np.where(flipped, -m[..., 0, 0], m[..., 0, 0])
    )
    psi = np.where(regular, psi, locked_psi)
    # With rot 0, only tilt exactly 0 or 180 is consistent with psi: a residual
    # tilt below the threshold would carry the sign the locked branch dropped.
    tilt = np.where(regular, tilt, np.where(flipped, np.pi, 0.0))
    out = np.rad2deg(np.stack([rot, tilt, psi], axis=-1))
    out[..., 0] = _wrap180(out[..., 0])
    out[..., 2] = _wrap180(out[..., 2])
    return out


def _wrap180(angles: NDArray[np.float64]) -> NDArray[np.float64]:
    wrapped = np.mod(angles + 180.0, 360.0) - 180.0
    return np.where(wrapped <= -180.0 + 1e-12, 180.0, wrapped)


def direction(matrices: ArrayLike) -> NDArray[np.float64]:
    """Return the viewing direction (third row) of rotation matrices.

    Parameters
    ----------
    matrices : array_like, shape (..., 3, 3)

    Returns
    -------
    ndarray, shape (..., 3)
        Unit vectors ``(sin tilt cos rot, sin tilt sin rot, cos tilt)`` in map
        coordinates.
    """
    return np.asarray(matrices, dtype=np.float64)[..., 2, :].copy()


def direction_to_euler(directions: ArrayLike) -> NDArray[np.float64]:
    """Convert unit viewing directions to (rot, tilt, 0) Euler angles in degrees.

    Parameters
    ----------
    directions : array_like, shape (..., 3)

    Returns
    -------
    ndarray, shape (..., 3)
        rot in (-180, 180], tilt in [0, 180], psi = 0; rot = 0 on the poles.
    """
    d = np.asarray(directions, dtype=np.float64)
    d = d / np.linalg.norm(d, axis=-1, keepdims=True)
    tilt = np.rad2deg(np.arccos(np.clip(d[..., 2], -1.0, 1.0)))
    on_pole = np.hypot(d[..., 0], d[..., 1]) < _GIMBAL_EPS
    rot = np.where(on_pole, 0.0, np.rad2deg(np.arctan2(d[..., 1], d[..., 0])))
    return np.stack([rot, tilt, np.zeros_like(rot)], axis=-1)


def inplane_matrix(psi: ArrayLike) -> NDArray[np.float64]:
    """Return ``Rz'(psi)``, the in-plane factor of the Euler matrix.

    ``euler_to_matrix((rot, tilt, psi)) == inplane_matrix(psi) @
    euler_to_matrix((rot, tilt, 0))``.

    Parameters
    ----------
    psi : array_like, shape (...)
        Degrees.

    Returns
    -------
    ndarray, shape (..., 3, 3)
    """
    p = np.deg2rad(np.asarray(psi, dtype=np.float64))
    c, s = np.cos(p), np.sin(p)
    m = np.zeros((*p.shape, 3, 3))
    m[..., 0, 0] = c
    m[..., 0, 1] = s
    m[..., 1, 0] = -s
    m[..., 1, 1] = c
    m[..., 2, 2] = 1.0
    return m


_MIRROR_Y = np.diag([-1.0, 1.0, -1.0])


def mirror_x_pose(
    matrices: ArrayLike, shifts: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Fold an x-mirror of the image into the pose.

    If the image mirrored in x (``x -> -x`` about the centre) and then shifted
    by ``(sx, sy)`` matches the projection at ``A``, the unmirrored image
    shifted by ``(-sx, sy)`` matches the projection at ``diag(-1, 1, -1) @ A``,
    which in Euler angles is ``(rot, tilt + 180, -psi)`` (CONVENTIONS §1.4).

    Parameters
    ----------
    matrices : array_like, shape (..., 3, 3)
    shifts : array_like, shape (..., 2)
        Pixels, RELION sign.

    Returns
    -------
    matrices, shifts
        The equivalent unmirrored pose.
    """
    m = _MIRROR_Y @ np.asarray(matrices, dtype=np.float64)
    s = np.array(shifts, dtype=np.float64, copy=True)
    s[..., 0] = -s[..., 0]
    return m, s


def random_rotations(n: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """Draw ``n`` rotations uniformly from SO(3) (Haar measure).

    Parameters
    ----------
    n : int
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, shape (n, 3, 3), float64
    """
    q = rng.standard_normal((n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    m = np.empty((n, 3, 3))
    m[:, 0, 0] = 1 - 2 * (y * y + z * z)
    m[:, 0, 1] = 2 * (x * y - z * w)
    m[:, 0, 2] = 2 * (x * z + y * w)
    m[:, 1, 0] = 2 * (x * y + z * w)
    m[:, 1, 1] = 1 - 2 * (x * x + z * z)
    m[:, 1, 2] = 2 * (y * z - x * w)
    m[:, 2, 0] = 2 * (x * z - y * w)
    m[:, 2, 1] = 2 * (y * z + x * w)
    m[:, 2, 2] = 1 - 2 * (x * x + y * y)
    return m
