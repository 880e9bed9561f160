"""Known-answer tests of sigcore.volume (masks, filters, centring, resampling)."""

from __future__ import annotations

import numpy as np
import pytest

from sigcore import volume as V
from sigcore.errors import ConfigError
from sigcore.geometry import euler_to_matrix


def _grid(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    z, y, x = np.mgrid[:n, :n, :n] - n // 2
    return x.astype(float), y.astype(float), z.astype(float)


def _blob(n: int, centre: tuple[float, float, float], sigma: float = 2.0) -> np.ndarray:
    x, y, z = _grid(n)
    cx, cy, cz = centre
    r2 = (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2
    return np.exp(-r2 / (2 * sigma**2)).astype(np.float32)


def test_soft_sphere_mask_profile() -> None:
    mask = V.soft_sphere_mask(32, 10.0, edge=4.0)
    c = 16
    assert mask.dtype == np.float32
    assert mask[c, c, c + 10] == pytest.approx(1.0)
    assert mask[c, c, c + 12] == pytest.approx(0.5, abs=1e-6)  # middle of the edge
    assert mask[c, c, c + 11] == pytest.approx((1 + np.cos(np.pi / 4)) / 2, abs=1e-6)
    assert mask[c, c, c + 14] == pytest.approx(0.0, abs=1e-7)
    assert mask[0, 0, 0] == 0.0
    hard = V.soft_sphere_mask(32, 10.0, edge=0)
    assert hard.sum() == np.count_nonzero(np.sqrt(sum(g**2 for g in _grid(32))) <= 10)
    image_mask = V.soft_sphere_mask(32, 10.0, edge=4.0, ndim=2)
    np.testing.assert_array_equal(image_mask, mask[c])
    with pytest.raises(ConfigError):
        V.soft_sphere_mask(32, 0.0)


def test_apply_mask_volume_and_stack() -> None:
    vol = np.ones((16, 16, 16), np.float32)
    out = V.apply_mask(vol, 5.0, edge=2.0)
    np.testing.assert_array_equal(out, V.soft_sphere_mask(16, 5.0, edge=2.0))
    stack = np.ones((3, 16, 16), np.float32)
    out2 = V.apply_mask(stack, 5.0, edge=2.0)
    np.testing.assert_array_equal(
        out2[1], V.soft_sphere_mask(16, 5.0, edge=2.0, ndim=2)
    )


def _plane_wave(n: int, k: int) -> np.ndarray:
    x, _, _ = _grid(n)
    return np.cos(2 * np.pi * k * x / n).astype(np.float32)


def test_lowpass_keeps_below_and_removes_above_cutoff() -> None:
    n, apix = 32, 2.0
    # cut-off 8 Å -> fc = 0.25 cycles/px = shell 8 of 32
    low = _plane_wave(n, 4) + _plane_wave(n, 6)
    high = _plane_wave(n, 12)
    out = V.lowpass(low + high, 8.0, apix, edge_width=0.04)
    np.testing.assert_allclose(out, low, atol=1e-5)
    # in the edge the gain is the raised cosine: at fc exactly 1/2
    at_fc = V.lowpass(_plane_wave(n, 8), 8.0, apix, edge_width=0.04)
    np.testing.assert_allclose(at_fc, 0.5 * _plane_wave(n, 8), atol=1e-5)
    # a stack is filtered image by image
    stack = np.stack([(low + high)[0], (low + high)[3]])
    np.testing.assert_allclose(
        V.lowpass(stack, 8.0, apix, edge_width=0.04, ndim=2), low[[0, 3]], atol=1e-5
    )


def test_shift_volume_moves_content() -> None:
    blob = _blob(24, (0, 0, 0))
    moved = V.shift_volume(blob, (2.0, -3.0, 1.0))
    np.testing.assert_allclose(moved, _blob(24, (2, -3, 1)), atol=1e-5)


@pytest.mark.parametrize("method", ["com", "inversion"])
def test_center_moves_displaced_blob_to_centre(method: str) -> None:
    off = (4.5, -3.0, 2.0)
    blob = _blob(32, off) + 0.5 * _blob(32, (off[0] + 2, off[1], off[2]), 1.5)
    assert np.allclose(V.center_of_mass_shift(blob), -np.array(off), atol=1.0)
    centred = V.center(blob, method=method)
    np.testing.assert_allclose(V.center_of_mass_shift(centred), 0.0, atol=0.6)
    if method == "com":
        np.testing.assert_allclose(V.center_of_mass_shift(centred), 0.0, atol=1e-4)
    with pytest.raises(ConfigError):
        V.center(blob, method="magic")


def test_rotate_volume_convention() -> None:
    blob = _blob(24, (5.0, -2.0, 3.0))
    quarter_z = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    # W(r) = V(M.T r): the blob at p moves to M p = (2, 5, 3), then + shift
    turned = V.rotate_volume(blob, quarter_z, (1.0, 1.0, -1.0))
    np.testing.assert_allclose(turned, _blob(24, (3.0, 6.0, 2.0)), atol=1e-4)


def test_symmetrize_makes_c4_invariant() -> None:
    n = 32
    vol = _blob(n, (6.0, 1.0, 2.0)) + 0.7 * _blob(n, (-2.0, 3.0, -4.0), 2.5)
    c4 = np.stack([euler_to_matrix([0.0, 0.0, 90.0 * k]) for k in range(4)])
    sym = V.symmetrize(vol, c4, order=3)
    before = V.rotate_volume(vol, c4[1].T, order=3)
    assert np.abs(before - vol).max() > 0.5
    for op in c4[1:]:
        # V(L r) = V(r)
        np.testing.assert_allclose(V.rotate_volume(sym, op.T, order=3), sym, atol=2e-3)
    # the symmetrised map is the average of the four turned copies of the blobs
    exact = np.mean(
        [
            _blob(n, tuple(op.T @ np.array([6.0, 1.0, 2.0])))
            + 0.7 * _blob(n, tuple(op.T @ np.array([-2.0, 3.0, -4.0])), 2.5)
            for op in c4
        ],
        axis=0,
    )
    np.testing.assert_allclose(sym, exact, atol=2e-3)
    with pytest.raises(ConfigError):
        V.symmetrize(vol, c4, order=5)


@pytest.mark.parametrize("n", [24, 25])
def test_flip_hand_mirrors_z_about_centre(n: int) -> None:
    blob = _blob(n, (2.0, -1.0, 3.0))
    np.testing.assert_allclose(
        V.flip_hand(blob), _blob(n, (2.0, -1.0, -3.0)), atol=1e-4
    )
    np.testing.assert_array_equal(V.flip_hand(V.flip_hand(blob)), blob)
    if n % 2:
        np.testing.assert_array_equal(V.flip_hand(blob), blob[::-1])


def _bandlimited(n: int, apix: float, shape_ndim: int = 3) -> np.ndarray:
    """sum of a few low-frequency cosines, evaluated at physical coordinates."""
    x, y, z = _grid(n)
    x, y, z = x * apix, y * apix, z * apix
    length = 48.0  # the period of the fundamental in physical units
    v = (
        np.cos(2 * np.pi * (2 * x + 1 * y) / length + 0.3)
        + 0.5 * np.sin(2 * np.pi * (3 * z - 2 * x) / length)
        + 0.25 * np.cos(2 * np.pi * (4 * y + 3 * z + x) / length - 1.0)
    )
    return v.astype(np.float32)


@pytest.mark.parametrize(("n", "m"), [(48, 24), (48, 16), (48, 18)])
def test_fourier_crop_matches_analytic_samples(n: int, m: int) -> None:
    fine = _bandlimited(n, 1.0)
    coarse = V.fourier_crop(fine, m)
    assert coarse.shape == (m, m, m)
    np.testing.assert_allclose(coarse, _bandlimited(m, n / m), atol=1e-4)
    padded = V.fourier_pad(coarse, n)
    np.testing.assert_allclose(padded, fine, atol=1e-4)


def test_fourier_pad_then_crop_is_identity_and_stacks() -> None:
    rng = np.random.default_rng(1)
    vol = rng.standard_normal((16, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(
        V.fourier_crop(V.fourier_pad(vol, 22), 16), vol, atol=1e-5
    )
    stack = rng.standard_normal((5, 16, 16)).astype(np.float32)
    small = V.fourier_crop(stack, 8)
    assert small.shape == (5, 8, 8)
    np.testing.assert_allclose(small[2], V.fourier_crop(stack[2], 8), atol=1e-6)
    with pytest.raises(ConfigError):
        V.fourier_crop(vol, 20)
    with pytest.raises(ConfigError):
        V.fourier_pad(vol, 8)


def test_resample_changes_pixel_size_and_box() -> None:
    fine = _blob(32, (2.0, -1.0, 3.0), 3.0)  # 1 Å/voxel
    # to 2 Å/voxel in a 24 box: the blob sits at half the voxel coordinates
    out = V.resample(fine, 1.0, new_pixel_size=2.0, box=24)
    assert out.shape == (24, 24, 24)
    np.testing.assert_allclose(out, _blob(24, (1.0, -0.5, 1.5), 1.5), atol=2e-3)
    # same pixel size, smaller box: a centred cut
    cut = V.resample(fine, 1.0, new_pixel_size=1.0, box=20)
    np.testing.assert_array_equal(cut, fine[6:26, 6:26, 6:26])
