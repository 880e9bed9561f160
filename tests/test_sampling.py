"""Tests for sigcore.sampling: counts, coverage, tilt range, neighbourhoods."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy.spatial import cKDTree

from sigcore.errors import ConfigError
from sigcore.geometry import direction, random_rotations
from sigcore.sampling import Gallery, angular_distance, make_gallery, neighbourhoods
from sigcore.symmetry import get_symmetry

GROUPS = ["c1", "d2", "d7", "t", "o", "i"]


def images(gallery: Gallery, sym: str) -> np.ndarray:
    ops = get_symmetry(sym).operators
    return np.einsum("kij,nj->kni", ops, gallery.directions).reshape(-1, 3)


def chord_to_deg(chord: np.ndarray) -> np.ndarray:
    return np.degrees(2 * np.arcsin(np.clip(chord / 2, 0, 1)))


@pytest.fixture(scope="module")
def probes() -> np.ndarray:
    return direction(random_rotations(20000, np.random.default_rng(11)))


@pytest.mark.parametrize("step", [5.0, 10.0])
def test_counts_scale_with_group_order(step):
    counts = {sym: len(make_gallery(step, sym)) for sym in GROUPS}
    print(f"\nstep {step}: " + ", ".join(f"{s}={n}" for s, n in counts.items()))
    full = 4 * np.pi / np.radians(step) ** 2
    assert abs(counts["c1"] - full) <= 1
    for sym, n in counts.items():
        expected = counts["c1"] / get_symmetry(sym).order
        assert abs(n - expected) <= 0.05 * expected, (sym, n, expected)


@pytest.mark.parametrize("sym", [*GROUPS, "cs", "c3v", "d3v", "d4h", "oh", "i3h"])
def test_gallery_structure(sym):
    g = make_gallery(5.0, sym)
    n = len(g)
    assert g.rotations.shape == (n, 3, 3)
    assert g.directions.shape == (n, 3)
    assert g.angles.shape == (n, 3)
    assert g.symmetry == get_symmetry(sym).name
    assert g.step == 5.0
    np.testing.assert_allclose(g.rotations[:, 2, :], g.directions, atol=1e-14)
    np.testing.assert_allclose(np.linalg.norm(g.directions, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(g.rotations), 1.0, atol=1e-12)
    np.testing.assert_array_equal(g.angles[:, 2], 0.0)
    assert np.all((g.angles[:, 1] >= 0) & (g.angles[:, 1] <= 180))


@pytest.mark.parametrize(
    ("sym", "step"),
    [(s, 5.0) for s in GROUPS]
    + [(s, 10.0) for s in GROUPS]
    + [("cs", 5.0), ("d3v", 5.0), ("oh", 5.0)],
)
def test_coverage_and_no_equivalent_pairs(sym, step, probes):
    g = make_gallery(step, sym)
    tree = cKDTree(images(g, sym))
    # Coverage: every direction is within one step of a gallery direction
    # after applying the group (measured: <= 0.85 step for these groups).
    dist, _ = tree.query(probes)
    assert chord_to_deg(dist).max() < step
    # No two gallery directions are symmetry-equivalent; they are well apart.
    order = get_symmetry(sym).order
    dist, idx = tree.query(g.directions, k=min(order + 1, order * len(g)))
    owner = idx % len(g)
    dist = np.where(owner == np.arange(len(g))[:, None], np.inf, dist)
    assert chord_to_deg(dist.min()) > 0.6 * step


def test_gallery_is_deterministic():
    a, b = make_gallery(5.0, "d7"), make_gallery(5.0, "d7")
    np.testing.assert_array_equal(a.directions, b.directions)


def test_tilt_range():
    full = make_gallery(5.0, "c1")
    top = make_gallery(5.0, "c1", min_tilt=0.0, max_tilt=90.0)
    band = make_gallery(5.0, "c1", min_tilt=60.0, max_tilt=120.0)
    assert np.all(top.angles[:, 1] <= 90 + 1e-9)
    assert np.all((band.angles[:, 1] >= 60 - 1e-9) & (band.angles[:, 1] <= 120 + 1e-9))
    # Kept fraction follows the area of the zone: (cos a - cos b) / 2.
    assert len(top) == pytest.approx(len(full) / 2, rel=0.03)
    assert len(band) == pytest.approx(len(full) * 0.5, rel=0.03)
    # Exactly the full-gallery directions that fall in the range.
    in_band = (full.angles[:, 1] >= 60) & (full.angles[:, 1] <= 120)
    np.testing.assert_allclose(band.directions, full.directions[in_band])


def test_tilt_range_with_symmetry_uses_a_mate_in_range():
    full = make_gallery(5.0, "d2")
    top = make_gallery(5.0, "d2", max_tilt=30.0)
    assert np.all(top.angles[:, 1] <= 30 + 1e-9)
    # Every kept direction is a symmetry mate of a full-gallery direction.
    dist = angular_distance(top.directions[:, None], full.directions[None], "d2")
    assert dist.min(axis=1).max() < 1e-6
    # d2 maps tilt t to 180 - t: the orbits meeting the cap tilt <= 30 are those
    # meeting tilt <= 30 or >= 150, i.e. that fraction of the asymmetric unit.
    cap = (1 - np.cos(np.radians(30))) / 2  # fraction of the sphere
    assert len(top) == pytest.approx(2 * cap * len(full), rel=0.1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"step": 0.0},
        {"step": -1.0},
        {"step": 120.0},
        {"min_tilt": 100.0, "max_tilt": 90.0},
        {"max_tilt": 181.0},
        {"symmetry": "i5"},
    ],
)
def test_bad_parameters_raise(kwargs):
    with pytest.raises(ConfigError):
        make_gallery(**kwargs)


def test_angular_distance():
    x, y, z = np.eye(3)
    assert angular_distance(x, y) == pytest.approx(90.0)
    assert angular_distance(z, -z) == pytest.approx(180.0)
    assert angular_distance(z, 2 * z) == pytest.approx(0.0, abs=1e-6)
    # d2 has a 2-fold on X, which maps +z to -z.
    assert angular_distance(z, -z, "d2") == pytest.approx(0.0, abs=1e-6)
    # c4: x and y are equivalent.
    assert angular_distance(x, y, "c4") == pytest.approx(0.0, abs=1e-6)
    a = np.array([np.sin(0.3), 0, np.cos(0.3)])
    assert angular_distance(a, z, "c7") == pytest.approx(np.degrees(0.3))
    out = angular_distance(np.tile(x, (4, 1))[:, None], np.tile(y, (5, 1))[None])
    assert out.shape == (4, 5)


def brute_force_neighbourhoods(g: Gallery, radius: float, sym: str) -> np.ndarray:
    dist = angular_distance(g.directions[:, None], g.directions[None], sym)
    return dist <= radius


@pytest.mark.parametrize(
    ("sym", "step", "radius"),
    [("c1", 15.0, 20.0), ("d7", 6.0, 12.0), ("o", 4.0, 9.0), ("i3h", 4.0, 10.0)],
)
def test_neighbourhoods_match_brute_force(sym, step, radius):
    g = make_gallery(step, sym)
    nb = neighbourhoods(g, radius)
    assert nb.shape == (len(g), len(g))
    assert nb.dtype == bool
    dense = nb.toarray()
    np.testing.assert_array_equal(dense, brute_force_neighbourhoods(g, radius, sym))
    assert np.all(np.diag(dense))
    np.testing.assert_array_equal(dense, dense.T)
    assert dense.sum() > len(g)  # not just the diagonal


def test_neighbourhoods_radius_zero_and_explicit_symmetry():
    g = make_gallery(10.0, "c1")
    nb = neighbourhoods(g, 0.0)
    np.testing.assert_array_equal(nb.toarray(), np.eye(len(g), dtype=bool))
    # Ignoring a symmetry gives fewer neighbours than taking it into account.
    g2 = make_gallery(5.0, "d2")
    assert neighbourhoods(g2, 10.0, "c1").nnz < neighbourhoods(g2, 10.0).nnz
    with pytest.raises(ConfigError):
        neighbourhoods(g, -1.0)


@pytest.mark.parametrize("step", [5.0, 2.5])
def test_neighbourhoods_are_fast(step):
    g = make_gallery(step, "c1")
    t0 = time.perf_counter()
    nb = neighbourhoods(g, 10.0)
    elapsed = time.perf_counter() - t0
    print(f"\nneighbourhoods: G={len(g)}, 10 deg: {elapsed * 1e3:.1f} ms, nnz={nb.nnz}")
    assert elapsed < 2.0
    # Mean count follows the cap area: G * (1 - cos r) / 2.
    expected = len(g) * (1 - np.cos(np.radians(10.0))) / 2
    assert nb.nnz / len(g) == pytest.approx(expected, rel=0.1)
