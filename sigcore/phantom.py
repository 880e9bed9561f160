"""A deterministic, chiral, protein-like test volume made in code.

The bundled example and many tests need a map that is shipped with no data
file: :func:`protein_phantom` builds one from a few hundred Gaussian "atoms"
placed along one folded chain. The chain runs through three compact globular
domains of different sizes (persistent random walks confined to spheres) and
ends in a right-handed coiled arm that leaves the plane of the domain centres,
so the object has no mirror symmetry at any resolution: its hand can be told
apart after any rotation.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from sigcore.errors import ConfigError

__all__ = ["phantom_atoms", "protein_phantom"]

_BOND = 1.0  # distance between consecutive atoms, in chain units


def _unit(v: NDArray[np.float64]) -> NDArray[np.float64]:
    return v / np.linalg.norm(v)


def _globule(
    start: NDArray[np.float64],
    centre: NDArray[np.float64],
    radius: float,
    n: int,
    rng: np.random.Generator,
    *,
    persistence: float = 0.75,
) -> NDArray[np.float64]:
    """A chain of ``n`` atoms, one bond apart, wandering inside a sphere.

    Each step keeps ``persistence`` of the previous direction, adds a random
    turn, and is pulled back toward ``centre`` once beyond 0.8 ``radius``.
    """
    pos = np.empty((n, 3))
    p = start.copy()
    d = _unit(centre - start)
    for i in range(n):
        turn = rng.standard_normal(3)
        d = persistence * d + (1 - persistence) * _unit(turn)
        out = p - centre
        dist = np.linalg.norm(out)
        if dist > 0.8 * radius:
            d = d - 0.6 * (dist / radius) * out / dist
        d = _unit(d)
        p = p + _BOND * d
        pos[i] = p
    return pos


def _coil(
    start: NDArray[np.float64],
    axis: NDArray[np.float64],
    n: int,
    *,
    radius: float,
    pitch: float,
) -> NDArray[np.float64]:
    """A right-handed helix of ``n`` atoms from ``start`` along ``axis``."""
    w = _unit(axis)
    u = _unit(np.cross(w, [0.3, 0.5, 0.8]))
    v = np.cross(w, u)  # (u, v, w) right-handed
    # arc length per atom = one bond
    dt = _BOND / np.hypot(radius, pitch / (2 * np.pi))
    t = np.arange(1, n + 1) * dt
    centre = start - radius * u
    return (
        centre
        + radius * (np.cos(t)[:, None] * u + np.sin(t)[:, None] * v)
        + (pitch * t / (2 * np.pi))[:, None] * w
    )


def _linker(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Atoms about one bond apart strictly between ``a`` and ``b`` on a line."""
    n = int(np.linalg.norm(b - a) // _BOND)
    t = np.arange(1, n) / n
    return a + t[:, None] * (b - a)


def phantom_atoms(
    *, seed: int = 0, n_atoms: int = 300, domains: tuple[float, ...] = (0.5, 0.3, 0.2)
) -> NDArray[np.float64]:
    """Atom positions of the phantom chain, in chain units (one bond = 1).

    Parameters
    ----------
    seed : int
        Seeds the random walks.
    n_atoms : int
        Number of atoms in the domains and the coiled arm (an eighth of
        them); the short straight linkers between them come on top.
    domains : tuple of float
        Relative sizes of the globular domains (at least one).

    Returns
    -------
    ndarray, shape (m, 3), float64
        ``(x, y, z)`` positions, in chain order, not yet centred or scaled.
    """
    if n_atoms < 12 * len(domains) or not domains or min(domains) <= 0:
        raise ConfigError(
            f"phantom needs positive domain sizes and at least 12 atoms per domain, "
            f"got n_atoms={n_atoms}, domains={domains}"
        )
    rng = np.random.default_rng(seed)
    n_arm = n_atoms // 8
    weights = np.asarray(domains, dtype=np.float64)
    counts = np.floor(weights / weights.sum() * (n_atoms - n_arm)).astype(int)
    counts[0] += n_atoms - n_arm - counts.sum()
    radii = 1.05 * counts ** (1 / 3)
    # domain centres on a bent, twisted path; each domain touches the previous
    centres = [np.zeros(3)]
    for k in range(1, len(counts)):
        angle = 1.9 * k + rng.normal(0.0, 0.4)
        rise = 0.35 * k + rng.normal(0.0, 0.2)
        heading = _unit(np.array([np.cos(angle), np.sin(angle), rise]))
        centres.append(centres[-1] + 0.9 * (radii[k - 1] + radii[k]) * heading)
    chain = [centres[0] + np.array([[0.0, 0.0, -radii[0]]])]
    for centre, radius, count in zip(centres, radii, counts, strict=True):
        entry = centre + 0.8 * radius * _unit(chain[-1][-1] - centre)
        chain.append(_linker(chain[-1][-1], entry))
        chain.append(_globule(entry, centre, radius, int(count), rng))
    # the arm leaves the last domain out of the plane of the domain centres
    arm_axis = _unit(np.array([0.2, -0.3, 1.0]) + 0.3 * rng.standard_normal(3))
    arm_start = centres[-1] + radii[-1] * arm_axis
    chain.append(_linker(chain[-1][-1], arm_start))
    chain.append(_coil(arm_start, arm_axis, n_arm, radius=1.5, pitch=3.0))
    return np.concatenate(chain[1:])


def protein_phantom(
    box: int = 64,
    *,
    seed: int = 0,
    n_atoms: int = 300,
    domains: tuple[float, ...] = (0.5, 0.3, 0.2),
    radius: float = 0.35,
    atom_sigma: float | None = None,
) -> NDArray[np.float32]:
    """Render the phantom chain as a sum of Gaussian atoms in a cubic box.

    Parameters
    ----------
    box : int
        Side of the volume in voxels.
    seed : int
        Same seed, same volume (bit for bit on one platform).
    n_atoms : int
        Number of Gaussian atoms ("a few hundred").
    domains : tuple of float
        Relative sizes of the globular domains.
    radius : float
        Fraction of the box: every atom centre lies within
        ``radius * box - 1.5 * atom_sigma`` voxels of the box centre.
    atom_sigma : float, optional
        Standard deviation of each atom in voxels; default ``box / 40``.

    Returns
    -------
    ndarray, shape (box, box, box), float32
        Indexed ``[z, y, x]``; the atoms' centre of mass is at index
        ``box // 2``; the maximum is about 1.

    Examples
    --------
    >>> vol = protein_phantom(32, seed=1)
    >>> vol.shape, vol.dtype
    ((32, 32, 32), dtype('float32'))
    """
    if box < 8:
        raise ConfigError(f"phantom box must be at least 8 voxels, got {box}")
    if not 0 < radius <= 0.5:
        raise ConfigError(
            f"phantom radius must be in (0, 0.5] of the box, got {radius}"
        )
    sigma = box / 40.0 if atom_sigma is None else float(atom_sigma)
    atoms = phantom_atoms(seed=seed, n_atoms=n_atoms, domains=domains)
    atoms = atoms - atoms.mean(axis=0)
    extent = np.linalg.norm(atoms, axis=1).max()
    atoms *= (radius * box - 1.5 * sigma) / extent
    coords = np.arange(box, dtype=np.float64) - box // 2
    # separable Gaussians: V[z, y, x] = sum_a gz[a, z] gy[a, y] gx[a, x]
    g = np.exp(-((coords[None, None, :] - atoms[:, :, None]) ** 2) / (2 * sigma**2))
    gx, gy, gz = g[:, 0], g[:, 1], g[:, 2]
    zy = (gz[:, :, None] * gy[:, None, :]).reshape(len(atoms), box * box)
    vol = (zy.T @ gx).reshape(box, box, box)
    return (vol / vol.max()).astype(np.float32)
