"""Parameters and results of the alignment search, and their conversion to poses.

The backends' ``search`` kernel (DESIGN §5.3) fills a :class:`SearchResult`:
for every image i and gallery direction j the in-plane rotation, shift and
mirror that maximise the normalised correlation, the correlation itself, and
every other requested metric at that alignment. This module defines what those
numbers mean and turns them into poses; it does no arithmetic on images.

Meaning of one (i, j) entry (the contract every backend honours):
the image ``x_i`` mirrored in x (``x -> -x`` about the centre, only when
``mirror[i, j]``) and then translated by ``+shift[i, j]`` pixels matches the
projection of the volume at Euler angles ``(rot_j, tilt_j, psi[i, j])``, where
``(rot_j, tilt_j, 0)`` is the gallery direction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sigcore.geometry import inplane_matrix, mirror_x_pose

__all__ = ["SearchParams", "SearchResult", "pair_poses"]


@dataclass(frozen=True, slots=True)
class SearchParams:
    """What the alignment search explores.

    Parameters
    ----------
    max_shift : float
        Largest shift magnitude searched, pixels (per axis, a square window).
    shift_step : float
        Spacing of the shift grid, pixels.
    psi_step : float or None
        Target in-plane angular step, degrees; ``None`` lets the backend choose
        (about ``360 / (2 pi r_max)``).
    mirror : bool
        Also search x-mirrored images (needed only when the gallery lacks the
        opposite views).
    max_frequency : float
        Highest spatial frequency used, cycles per pixel (0.5 = Nyquist).
    """

    max_shift: float = 6.0
    shift_step: float = 1.0
    psi_step: float | None = None
    mirror: bool = False
    max_frequency: float = 0.5


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Best alignment of every image against every gallery projection.

    Parameters
    ----------
    correlation : ndarray, shape (N, G), float32
        Normalised correlation at the best alignment, in [-1, 1].
    psi : ndarray, shape (N, G), float64
        In-plane Euler angle psi of the match, degrees.
    shifts : ndarray, shape (N, G, 2), float64
        (x, y) pixels, RELION sign, applied after the mirror.
    mirror : ndarray, shape (N, G), bool
        Whether the image was mirrored in x.
    metrics : dict of str to ndarray, shape (N, G)
        Other metrics evaluated at the chosen alignment (e.g. ``"imed"``).
    """

    correlation: NDArray[np.float32]
    psi: NDArray[np.float64]
    shifts: NDArray[np.float64]
    mirror: NDArray[np.bool_]
    metrics: dict[str, NDArray[Any]] = field(default_factory=dict)


def pair_poses(
    gallery: NDArray[np.float64],
    result: SearchResult,
    images: NDArray[np.int64],
    directions: NDArray[np.int64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Turn chosen (image, direction) pairs into unmirrored poses.

    Parameters
    ----------
    gallery : ndarray, shape (G, 3, 3)
        Rotation matrices of the gallery directions (psi = 0).
    result : SearchResult
    images, directions : ndarray, shape (m,), int
        The pairs.

    Returns
    -------
    rotations : ndarray, shape (m, 3, 3)
        RELION-sense matrices with any mirror folded in.
    shifts : ndarray, shape (m, 2)
        Pixels, RELION sign, for the unmirrored image.
    """
    psi = result.psi[images, directions]
    rotations = inplane_matrix(psi) @ gallery[directions]
    shifts = result.shifts[images, directions]
    mirrored = result.mirror[images, directions]
    if np.any(mirrored):
        flipped_rot, flipped_shift = mirror_x_pose(
            rotations[mirrored], shifts[mirrored]
        )
        rotations = rotations.copy()
        shifts = shifts.copy()
        rotations[mirrored] = flipped_rot
        shifts[mirrored] = flipped_shift
    return rotations, shifts
