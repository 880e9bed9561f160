"""Projection and reconstruction kernels against closed forms and real maps."""

from __future__ import annotations

import numpy as np
import pytest

from sigcore.backends.projector import project, reconstruct
from sigcore.errors import ConfigError
from sigcore.geometry import random_rotations
from sigcore.imageset import PoseTable
from tests.conftest import load_map


def _grid(n: int, ndim: int) -> list[np.ndarray]:
    """Pixel coordinates (x, y[, z]) relative to the centre n // 2."""
    g = np.arange(n) - n // 2
    axes = np.meshgrid(*([g] * ndim), indexing="ij")  # [z,] y, x
    return axes[::-1]


def _gaussian(n: int, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Normalised Gaussian sampled on the n-box, 2D or 3D, float64."""
    ndim = len(mean)
    r = np.stack(_grid(n, ndim), axis=-1) - mean
    q = np.einsum("...i,ij,...j->...", r, np.linalg.inv(cov), r)
    return np.exp(-0.5 * q) / np.sqrt((2 * np.pi) ** ndim * np.linalg.det(cov))


def _blob(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """An off-centre anisotropic blob: mean (pixels) and covariance (pixels²)."""
    mean = np.array([0.12, -0.08, 0.1]) * n
    axes = random_rotations(1, rng)[0]
    cov = axes @ np.diag(np.array([1.5, 2.5, 3.5]) * n / 32) ** 2 @ axes.T
    return mean, cov


def _fsc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from sigcore.validation import fsc

    return fsc(a, b).fsc


def _soft_sphere(n: int, radius: float) -> np.ndarray:
    x, y, z = _grid(n, 3)
    r = np.sqrt(x * x + y * y + z * z)
    return np.clip((radius + 3 - r) / 6, 0, 1).astype(np.float32)


# -- projection -----------------------------------------------------------------


@pytest.mark.parametrize("n", [32, 33])
def test_projection_of_gaussian_blob_matches_closed_form(n: int) -> None:
    rng = np.random.default_rng(n)
    mean, cov = _blob(n, rng)
    volume = _gaussian(n, mean, cov).astype(np.float32)
    rotations = random_rotations(16, rng)
    images = project(volume, rotations, xp=np)
    assert images.shape == (16, n, n)
    assert images.dtype == np.float32
    for a, image in zip(rotations, images, strict=True):
        # Linear map of a Gaussian: mean A mu, covariance A S A^T; integrating
        # over z keeps the top-left 2x2 block and the first two coordinates.
        expected = _gaussian(n, (a @ mean)[:2], (a @ cov @ a.T)[:2, :2])
        peak = expected.max()
        # trilinear interpolation with pad 2: about 1-2 % (module notes)
        assert np.abs(image - expected).max() < 0.03 * peak
        assert np.linalg.norm(image - expected) < 0.02 * np.linalg.norm(expected)


@pytest.mark.parametrize("n", [24, 25])
def test_identity_projection_is_sum_over_z(n: int) -> None:
    rng = np.random.default_rng(1)
    volume = np.zeros((n, n, n))
    for _ in range(4):  # a smooth, asymmetric volume near the centre
        mean = rng.uniform(-0.1, 0.1, 3) * n
        volume += _gaussian(n, mean, np.diag(rng.uniform(1.5, 3.0, 3) ** 2))
    volume = volume.astype(np.float32)
    image = project(volume, np.eye(3)[None], xp=np)[0]
    expected = volume.sum(axis=0)
    # exact up to the sinc² pre-correction, which integer sample positions do
    # not undo (about 1.5 % here, module notes)
    assert np.abs(image - expected).max() < 0.02 * expected.max()


def test_projection_rejects_non_cubic_volume() -> None:
    with pytest.raises(ConfigError, match="cube"):
        project(np.zeros((4, 4, 5), np.float32), np.eye(3)[None], xp=np)


# -- reconstruction -------------------------------------------------------------


def _analytic_stack(
    n: int, mean: np.ndarray, cov: np.ndarray, rotations: np.ndarray, shifts: np.ndarray
) -> np.ndarray:
    """Closed-form projections of the blob, translated by -shift."""
    return np.stack(
        [
            _gaussian(n, (a @ mean)[:2] - s, (a @ cov @ a.T)[:2, :2])
            for a, s in zip(rotations, shifts, strict=True)
        ]
    ).astype(np.float32)


@pytest.mark.parametrize("n", [32, 33])
def test_reconstruction_of_gaussian_blob_from_closed_form_projections(n: int) -> None:
    rng = np.random.default_rng(10 + n)
    mean, cov = _blob(n, rng)
    count = 600
    rotations = random_rotations(count, rng)
    shifts = rng.uniform(-3, 3, (count, 2))  # fractional; images moved by -shift
    images = _analytic_stack(n, mean, cov, rotations, shifts)
    poses = PoseTable(np.arange(count), rotations, shifts, np.ones(count))
    volume = reconstruct(images, poses, xp=np)
    expected = _gaussian(n, mean, cov)
    assert volume.shape == (n, n, n)
    assert volume.dtype == np.float32
    assert np.abs(volume - expected).max() < 0.03 * expected.max()
    assert np.linalg.norm(volume - expected) < 0.02 * np.linalg.norm(expected)


@pytest.mark.parametrize(
    "name", ["ribosome70S_aspire_65.mrc", "trpv1_c4_cryojax_48.mrc"]
)
def test_reconstruction_from_1000_projections_of_real_map(
    shared_maps: object, name: str
) -> None:
    volume, _ = load_map(name)
    n = volume.shape[0]
    rotations = random_rotations(1000, np.random.default_rng(3))
    images = project(volume, rotations, xp=np)
    poses = PoseTable(np.arange(1000), rotations, np.zeros((1000, 2)), np.ones(1000))
    result = reconstruct(images, poses, xp=np)
    curve = _fsc(result, volume)
    print(f"\nFSC {name} (shell: value):", " ".join(f"{c:.4f}" for c in curve))
    # FSC(0.5) better than 2.5 px means every shell up to n / 2.5 is above 0.5.
    # (shell 0 is the mean, zero for the normalised map: its sign is noise)
    assert np.all(curve[1 : int(np.ceil(n / 2.5)) + 1] > 0.5)
    assert curve[1:].min() > 0.9
    rel = np.linalg.norm(result - volume) / np.linalg.norm(volume)
    print(f"relative real-space error {rel:.4f}")
    if name.startswith("ribosome"):  # smooth map: nothing beyond Nyquist, no edges
        assert rel < 0.04


def test_zero_weight_removes_an_image_exactly() -> None:
    rng = np.random.default_rng(4)
    n, count = 20, 60
    images = rng.standard_normal((count, n, n)).astype(np.float32)
    rotations = random_rotations(count, rng)
    shifts = rng.uniform(-2, 2, (count, 2))
    weights = rng.uniform(0.2, 1.0, count)
    poses = PoseTable(np.arange(count), rotations, shifts, weights)
    garbage = np.full((1, n, n), 1e6, np.float32)
    with_garbage = PoseTable(
        np.arange(count + 1),
        np.concatenate([rotations[:30], random_rotations(1, rng), rotations[30:]]),
        np.concatenate([shifts[:30], [[1.5, -2.5]], shifts[30:]]),
        np.concatenate([weights[:30], [0.0], weights[30:]]),
    )
    stack = np.concatenate([images[:30], garbage, images[30:]])
    expected = reconstruct(images, poses, xp=np)
    result = reconstruct(stack, with_garbage, xp=np)
    np.testing.assert_array_equal(result, expected)
    # and the garbage image does change the map when its weight is not zero
    heavy = PoseTable(
        with_garbage.image_index,
        with_garbage.rotations,
        with_garbage.shifts,
        np.where(with_garbage.weights == 0, 1.0, with_garbage.weights),
    )
    assert not np.allclose(reconstruct(stack, heavy, xp=np), expected)


def test_several_rows_per_image_and_weights_act_as_repetition() -> None:
    rng = np.random.default_rng(5)
    n, count = 20, 40
    images = rng.standard_normal((count, n, n)).astype(np.float32)
    rotations = random_rotations(count, rng)
    # weight 2 on a row == the same row given twice with weight 1
    doubled = PoseTable(
        np.arange(count),
        rotations,
        np.zeros((count, 2)),
        np.r_[2.0, np.ones(count - 1)],
    )
    repeated = PoseTable(
        np.r_[0, np.arange(count)],
        np.concatenate([rotations[:1], rotations]),
        np.zeros((count + 1, 2)),
        np.ones(count + 1),
    )
    np.testing.assert_allclose(
        reconstruct(images, doubled, xp=np),
        reconstruct(images, repeated, xp=np),
        rtol=0,
        atol=1e-4 * np.abs(images).max(),
    )


def test_symmetric_reconstruction_equals_c1_from_expanded_views(
    shared_maps: object,
) -> None:
    from sigcore.symmetry import get_symmetry

    ops = get_symmetry("c4").operators
    assert len(ops) == 4
    volume, _ = load_map("ribosome70S_aspire_65.mrc")  # odd box: rot90 is exact
    volume *= _soft_sphere(65, 26)
    symmetrised = np.mean([np.rot90(volume, k, axes=(1, 2)) for k in range(4)], 0)
    # the operators are the 90-degree rotations about z that rot90 applies
    np.testing.assert_allclose(
        ops[:, :, 2], np.tile([0.0, 0.0, 1.0], (4, 1)), atol=1e-12
    )
    np.testing.assert_allclose(np.abs(ops[:, 0, 1]).sum(), 2.0, atol=1e-12)

    count = 250
    rotations = random_rotations(count, np.random.default_rng(6))
    images = project(symmetrised, rotations, xp=np)
    poses = PoseTable(np.arange(count), rotations, np.zeros((count, 2)), np.ones(count))
    sym = reconstruct(images, poses, symmetry_ops=ops, xp=np)

    expanded_rot = (rotations[:, None] @ ops[None]).reshape(-1, 3, 3)
    expanded_img = project(symmetrised, expanded_rot, xp=np)
    expanded = PoseTable(
        np.arange(4 * count), expanded_rot, np.zeros((4 * count, 2)), np.ones(4 * count)
    )
    c1 = reconstruct(expanded_img, expanded, xp=np)

    between = _fsc(sym, c1)
    print("\nFSC c4(250 views) vs c1(1000 expanded):", np.round(between, 4))
    assert between[1:].min() > 0.95
    assert np.abs(sym - c1).max() < 0.01 * np.abs(c1).max()
    truth = _fsc(sym, symmetrised)
    print("FSC c4(250 views) vs symmetrised map:", np.round(truth, 4))
    assert truth[1:].min() > 0.95


def test_shifted_images_with_pose_shifts_equal_unshifted(shared_maps: object) -> None:
    volume, _ = load_map("trpv1_c4_cryojax_48.mrc")
    n = volume.shape[0]
    rng = np.random.default_rng(7)
    count = 300
    rotations = random_rotations(count, rng)
    x, y = _grid(n, 2)
    disc = (x * x + y * y <= 19**2).astype(np.float32)  # exact support
    images = project(volume, rotations, xp=np) * disc
    steps = rng.integers(-4, 5, (count, 2))
    moved = np.stack(  # translate each image by -s (x = column, y = row)
        [
            np.roll(im, (-sy, -sx), axis=(0, 1))
            for im, (sx, sy) in zip(images, steps, strict=True)
        ]
    )
    plain = PoseTable(np.arange(count), rotations, np.zeros((count, 2)), np.ones(count))
    shifted = PoseTable(
        np.arange(count), rotations, steps.astype(float), np.ones(count)
    )
    expected = reconstruct(images, plain, xp=np)
    result = reconstruct(moved, shifted, xp=np)
    np.testing.assert_allclose(result, expected, atol=1e-4 * np.abs(expected).max())
    wrong = PoseTable(np.arange(count), rotations, -steps.astype(float), np.ones(count))
    assert (
        np.abs(reconstruct(moved, wrong, xp=np) - expected).max()
        > 0.05 * np.abs(expected).max()
    )


def test_reconstruct_validates_poses() -> None:
    images = np.zeros((2, 8, 8), np.float32)
    bad_index = PoseTable(
        np.array([0, 2]), np.stack([np.eye(3)] * 2), np.zeros((2, 2)), np.ones(2)
    )
    with pytest.raises(ConfigError, match="image_index"):
        reconstruct(images, bad_index, xp=np)
    negative = PoseTable(
        np.arange(2), np.stack([np.eye(3)] * 2), np.zeros((2, 2)), -np.ones(2)
    )
    with pytest.raises(ConfigError, match="weights"):
        reconstruct(images, negative, xp=np)


# -- band limit -------------------------------------------------------------------


def _radius(shape: tuple[int, ...]) -> np.ndarray:
    """|k| in cycles per pixel on the FFT grid of ``shape``."""
    grids = np.meshgrid(*[np.fft.fftfreq(s) for s in shape], indexing="ij")
    return np.sqrt(sum(g * g for g in grids))


def _band_power(volume: np.ndarray, frequency: float) -> tuple[float, float]:
    """Spectral power below and above ``frequency`` (cycles/px), any ndim."""
    spectrum = np.abs(np.fft.fftn(volume)) ** 2
    radius = _radius(volume.shape)
    return float(spectrum[radius < frequency].sum()), float(
        spectrum[radius >= frequency].sum()
    )


def _lowpassed(volume: np.ndarray, frequency: float) -> np.ndarray:
    keep = _radius(volume.shape) < frequency
    return np.fft.ifftn(np.fft.fftn(volume) * keep).real


def test_band_limited_projection_keeps_the_band_and_drops_the_rest() -> None:
    rng = np.random.default_rng(4)
    n = 32
    volume = _gaussian(n, *_blob(n, rng)).astype(np.float32)
    volume += 0.05 * volume.max() * rng.standard_normal(volume.shape).astype(np.float32)
    rotations = random_rotations(6, rng)
    full = project(volume, rotations, xp=np)
    band = project(volume, rotations, xp=np, max_frequency=0.25)
    for f, b in zip(full, band, strict=True):
        inside, outside = _band_power(b, 0.3)
        assert outside < 1e-3 * inside  # (cropping leaks a little past 0.25)
        low_f, low_b = _lowpassed(f, 0.2), _lowpassed(b, 0.2)
        assert np.abs(low_f - low_b).max() < 2e-2 * np.abs(low_f).max()


@pytest.mark.parametrize("insert", ["numpy", "numba"])
def test_band_limited_reconstruction_matches_full_in_the_band(insert: str) -> None:
    rng = np.random.default_rng(5)
    n = 32
    volume = _gaussian(n, *_blob(n, rng)).astype(np.float32)
    rotations = random_rotations(300, rng)
    images = project(volume, rotations, xp=np)
    poses = PoseTable(
        image_index=np.arange(300),
        rotations=rotations,
        shifts=np.zeros((300, 2)),
        weights=np.ones(300),
    )
    if insert == "numba":
        pytest.importorskip("numba")
        from sigcore.backends._numba_insert import reconstruct_numba

        def rec(**kw: float) -> np.ndarray:
            return reconstruct_numba(images, poses, **kw)
    else:

        def rec(**kw: float) -> np.ndarray:
            return reconstruct(images, poses, xp=np, **kw)

    full, band = rec(), rec(max_frequency=0.25)
    inside, outside = _band_power(band, 0.3)
    assert outside < 1e-3 * inside
    fsc = _fsc(full, band)
    assert fsc[: int(0.2 * n)].min() > 0.99


def test_max_frequency_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="max_frequency"):
        project(
            np.zeros((8, 8, 8), np.float32), np.eye(3)[None], xp=np, max_frequency=0
        )
