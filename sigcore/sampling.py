"""Gallery directions on the sphere and their angular neighbourhoods.

This module owns the choice of projection directions for a gallery (an even
sampling of the asymmetric unit of a symmetry group at a given angular step,
optionally limited to a tilt range) and the symmetry-aware angular distance
between directions. It does not project anything and knows no file formats.

Symmetry acts on directions as ``d -> L d`` for every operator ``L`` of the
group. For proper groups this is exact: the pose ``A @ L`` sees the map along
``L.T d``. For groups with mirrors (improper ``L``) the view along ``L d`` is
the *mirror image* of the view along ``d`` (up to an in-plane rotation), so the
reduced gallery relies on the alignment search testing mirrors, as sigcore's
search and Xmipp's do; this is also how Xmipp reduces such galleries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sigcore.errors import ConfigError
from sigcore.geometry import direction_to_euler, euler_to_matrix
from sigcore.symmetry import SymmetryGroup, get_symmetry

__all__ = ["Gallery", "angular_distance", "make_gallery", "neighbourhoods"]

# A generic pole (rot 27 deg, tilt 11 deg) that lies on no symmetry axis or
# mirror plane of any supported group; the asymmetric unit is its Dirichlet cell.
_POLE = np.array(
    [
        np.sin(np.radians(11)) * np.cos(np.radians(27)),
        np.sin(np.radians(11)) * np.sin(np.radians(27)),
        np.cos(np.radians(11)),
    ]
)
_SAMPLES_PER_DIRECTION = 24  # Lloyd density estimate: samples per Voronoi cell
_LLOYD_ITERATIONS = 12


@dataclass(frozen=True, slots=True, eq=False)
class Gallery:
    """Projection directions of a gallery (one psi = 0 per direction).

    Attributes
    ----------
    rotations : ndarray, shape (G, 3, 3), float64
        RELION-sense matrices with psi = 0; the third row is the direction.
    directions : ndarray, shape (G, 3), float64
        Unit viewing directions in map coordinates.
    angles : ndarray, shape (G, 3), float64
        (rot, tilt, psi = 0) in degrees.
    step : float
        Angular step in degrees the directions were sampled at.
    symmetry : str
        Name of the symmetry group whose asymmetric unit they cover.
    """

    rotations: NDArray[np.float64]
    directions: NDArray[np.float64]
    angles: NDArray[np.float64]
    step: float
    symmetry: str

    def __len__(self) -> int:
        return int(self.directions.shape[0])


def make_gallery(
    step: float = 5.0,
    symmetry: str | SymmetryGroup = "c1",
    *,
    min_tilt: float = 0.0,
    max_tilt: float = 180.0,
) -> Gallery:
    """Sample directions evenly over the asymmetric unit of a point group.

    Parameters
    ----------
    step : float
        Angular step in degrees, in (0, 90]. The full sphere gets
        ``round(4 pi / step_rad**2)`` directions (about 1650 at 5 degrees) and a
        group of order ``|S|`` gets ``round(that / |S|)``.
    symmetry : str or SymmetryGroup
        Xmipp symmetry name (see :func:`sigcore.symmetry.get_symmetry`).
    min_tilt, max_tilt : float
        Tilt range in degrees (polar angle of the viewing direction: 0 is a top
        view, 90 a side view). A direction is kept when one of its symmetry
        mates lies in the range; that mate is the one stored.

    Returns
    -------
    Gallery
        No two directions are symmetry-equivalent; every direction of the
        sphere is within about ``0.7 * step`` of a gallery direction after
        applying the group.

    Raises
    ------
    ConfigError
        For a step or tilt range out of bounds, or an unknown symmetry.

    Notes
    -----
    The directions are a centroidal Voronoi tessellation of the quotient of
    the sphere by the group: one direction pinned on every symmetry axis
    (otherwise the images of the nearest seeds form a ring around the axis and
    leave a hole), the others from a Fibonacci spiral inside the Dirichlet cell
    of a generic pole with the count set by the area of the asymmetric unit,
    then Lloyd iterations in which every free seed moves to the centroid of
    its cell among all symmetry images of all seeds (so cells wrap across the
    asymmetric-unit boundary and no boundary is sampled twice). Finally each
    direction is folded into the Dirichlet cell of the pole (ties go to the
    first operator). Xmipp uses an icosahedral geodesic grid and cuts it with
    fixed boundaries instead, which duplicates boundary directions.
    """
    step = float(step)
    if not 0.0 < step <= 90.0:
        raise ConfigError(f"angular step {step} deg must be in (0, 90]")
    if not 0.0 <= min_tilt <= max_tilt <= 180.0:
        raise ConfigError(
            f"tilt range [{min_tilt}, {max_tilt}] deg must satisfy "
            "0 <= min_tilt <= max_tilt <= 180"
        )
    group = get_symmetry(symmetry)
    ops = group.operators
    n_full = max(1, round(4.0 * np.pi / np.radians(step) ** 2))
    n_target = max(1, round(n_full / group.order))

    pins = _axis_directions(group)[:n_target]
    seeds = _initial_seeds(n_full, n_target, ops, pins)
    seeds = _lloyd(
        seeds, ops, n_pinned=pins.shape[0], n_samples=_SAMPLES_PER_DIRECTION * n_full
    )
    dirs = _pick_mates(seeds, ops, min_tilt=min_tilt, max_tilt=max_tilt)

    angles = direction_to_euler(dirs)
    rotations = euler_to_matrix(angles)
    return Gallery(
        rotations=rotations,
        directions=rotations[:, 2, :].copy(),
        angles=angles,
        step=step,
        symmetry=group.name,
    )


def angular_distance(
    a: ArrayLike, b: ArrayLike, symmetry: str | SymmetryGroup | None = None
) -> NDArray[np.float64]:
    """Angle between directions, optionally minimised over a symmetry group.

    Parameters
    ----------
    a, b : array_like, shape (..., 3)
        Directions (normalised here); broadcast against each other.
    symmetry : str or SymmetryGroup, optional
        When given, the result is ``min over L of angle(a, L b)``.

    Returns
    -------
    ndarray, shape (...), float64
        Degrees in [0, 180].
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    ops = np.eye(3)[None] if symmetry is None else get_symmetry(symmetry).operators
    mates = np.einsum("kij,...j->...ki", ops, b)
    cos = np.einsum("...i,...ki->...k", a, mates).max(axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def neighbourhoods(
    gallery: Gallery,
    radius_deg: float,
    symmetry: str | SymmetryGroup | None = None,
):
    """Directions within an angle of each gallery direction, symmetry included.

    Parameters
    ----------
    gallery : Gallery
    radius_deg : float
        Neighbourhood radius in degrees (>= 0).
    symmetry : str or SymmetryGroup, optional
        Defaults to the gallery's own group.

    Returns
    -------
    scipy.sparse.csr_matrix, shape (G, G), bool
        Entry (j, j') is True iff ``min over L of angle(d_j, L d_j') <=
        radius_deg``; symmetric, with a true diagonal.

    Notes
    -----
    One KD-tree over the ``G * |S|`` symmetry images of the directions, queried
    with the chord length ``2 sin(radius / 2)``.
    """
    from scipy.sparse import csr_matrix
    from scipy.spatial import cKDTree

    if radius_deg < 0:
        raise ConfigError(f"neighbourhood radius {radius_deg} deg must be >= 0")
    ops = get_symmetry(gallery.symmetry if symmetry is None else symmetry).operators
    d = gallery.directions
    n = d.shape[0]
    images = np.einsum("kij,nj->kni", ops, d).reshape(-1, 3)
    chord = 2.0 * np.sin(np.radians(min(float(radius_deg), 180.0)) / 2.0)
    hits = cKDTree(images).query_ball_point(d, r=chord * (1 + 1e-12) + 1e-12)
    rows = np.repeat(np.arange(n), [len(h) for h in hits])
    cols = np.concatenate([np.asarray(h, dtype=np.int64) for h in hits]) % n
    rows = np.concatenate([rows, np.arange(n)])
    cols = np.concatenate([cols, np.arange(n)])
    out = csr_matrix((np.ones(rows.size, dtype=bool), (rows, cols)), shape=(n, n))
    out.sum_duplicates()
    return out


# --------------------------------------------------------------------------- #
# construction helpers


def _fibonacci(n: int) -> NDArray[np.float64]:
    """``n`` near-evenly spread unit vectors (golden-angle spiral)."""
    k = np.arange(n) + 0.5
    z = 1.0 - 2.0 * k / n
    phi = np.pi * (3.0 - np.sqrt(5.0)) * k
    r = np.sqrt(np.clip(1.0 - z * z, 0.0, None))
    return np.column_stack([r * np.cos(phi), r * np.sin(phi), z])


def _fold(d: NDArray[np.float64], ops: NDArray[np.float64]) -> NDArray[np.float64]:
    """Map each direction to its mate closest to the pole (ties: first operator)."""
    mates = np.einsum("kij,nj->nki", ops, d)
    score = mates @ _POLE
    best = np.argmax(score >= score.max(axis=1, keepdims=True) - 1e-12, axis=1)
    return mates[np.arange(d.shape[0]), best]


def _axis_directions(group: SymmetryGroup) -> NDArray[np.float64]:
    """One folded direction per orbit of rotation-axis ends, highest fold first."""
    ops = group.operators
    found: list[tuple[float, NDArray[np.float64]]] = []
    for m in group.rotations[1:]:
        cos = np.clip((np.trace(m) - 1.0) / 2.0, -1.0, 1.0)
        fold = 360.0 / max(np.degrees(np.arccos(cos)), 1e-9)
        w, v = np.linalg.eigh(m + m.T)  # the axis is the eigenvector of 2
        axis = v[:, np.argmax(w)]
        for end in (axis, -axis):
            d = _fold(end[None], ops)[0]
            if all(float(np.max(ops @ d @ e)) < 1 - 1e-9 for _, e in found):
                found.append((fold, d))
    found.sort(key=lambda item: -item[0])
    return np.array([d for _, d in found]).reshape(-1, 3)


def _initial_seeds(
    n_full: int, n_target: int, ops: NDArray[np.float64], pins: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Pins, then spiral points in the pole's Dirichlet cell (``n_target`` in all)."""
    spiral = _fibonacci(n_full)
    inside = np.all(
        (spiral @ _POLE)[:, None]
        >= np.einsum("kij,nj->nki", ops, spiral) @ _POLE - 1e-12,
        axis=1,
    )
    seeds = np.vstack([pins, spiral[inside]])
    n_pins = pins.shape[0]
    if seeds.shape[0] > n_target:
        # Drop the most crowded free seeds (closest to another seed's image).
        for _ in range(seeds.shape[0] - n_target):
            crowd = _nearest_other(seeds, ops)[n_pins:]
            seeds = np.delete(seeds, n_pins + np.argmin(crowd), axis=0)
    elif seeds.shape[0] < n_target:
        # Add the candidates farthest from every existing seed (greedy).
        cand = _fold(_fibonacci(8 * n_full), ops)
        best = _max_cos(cand, seeds, ops)
        extra = []
        for _ in range(n_target - seeds.shape[0]):
            pick = int(np.argmin(best))
            extra.append(cand[pick])
            best = np.maximum(best, _max_cos(cand, cand[pick][None], ops))
        seeds = np.vstack([seeds, *extra])
    return seeds


def _max_cos(
    points: NDArray[np.float64], seeds: NDArray[np.float64], ops: NDArray[np.float64]
) -> NDArray[np.float64]:
    """cos of the symmetry-aware distance from each point to its nearest seed."""
    if seeds.size == 0:
        return np.full(points.shape[0], -2.0)
    images = np.einsum("kij,nj->kni", ops, seeds).reshape(-1, 3)
    return (points @ images.T).max(axis=1)


def _nearest_other(
    seeds: NDArray[np.float64], ops: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Chord distance from each seed to the nearest image of another seed."""
    from scipy.spatial import cKDTree

    n = seeds.shape[0]
    images = np.einsum("kij,nj->kni", ops, seeds).reshape(-1, 3)
    owner = np.tile(np.arange(n), ops.shape[0])
    k = min(images.shape[0], ops.shape[0] + 1)
    dist, idx = cKDTree(images).query(seeds, k=k)
    dist = np.where(owner[idx] == np.arange(n)[:, None], np.inf, dist)
    return dist.min(axis=1)


def _lloyd(
    seeds: NDArray[np.float64],
    ops: NDArray[np.float64],
    *,
    n_pinned: int,
    n_samples: int,
) -> NDArray[np.float64]:
    """Lloyd iterations for the symmetric point set ``{L s}`` (first seeds fixed)."""
    from scipy.spatial import cKDTree

    n = seeds.shape[0]
    samples = _fibonacci(n_samples)
    for _ in range(_LLOYD_ITERATIONS):
        images = np.einsum("kij,nj->kni", ops, seeds).reshape(-1, 3)
        _, nearest = cKDTree(images).query(samples)
        op, owner = np.divmod(nearest, n)
        # Bring each sample into its seed's frame: L^T c, then average.
        back = np.einsum("sji,sj->si", ops[op], samples)
        sums = np.zeros((n, 3))
        np.add.at(sums, owner, back)
        norm = np.linalg.norm(sums, axis=1, keepdims=True)
        moved = np.where(norm > 0, sums / np.where(norm > 0, norm, 1.0), seeds)
        moved[:n_pinned] = seeds[:n_pinned]
        seeds = moved
    return _fold(seeds, ops)


def _pick_mates(
    seeds: NDArray[np.float64],
    ops: NDArray[np.float64],
    *,
    min_tilt: float,
    max_tilt: float,
) -> NDArray[np.float64]:
    """Keep seeds with a mate in the tilt range; return that mate (pole-closest)."""
    if min_tilt <= 0.0 and max_tilt >= 180.0:
        return seeds
    mates = np.einsum("kij,nj->nki", ops, seeds)
    tilt = np.degrees(np.arccos(np.clip(mates[..., 2], -1.0, 1.0)))
    ok = (tilt >= min_tilt - 1e-9) & (tilt <= max_tilt + 1e-9)
    score = np.where(ok, mates @ _POLE, -np.inf)
    keep = ok.any(axis=1)
    best = np.argmax(score, axis=1)
    return mates[np.arange(seeds.shape[0]), best][keep]
