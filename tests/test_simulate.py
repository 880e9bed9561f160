"""Simulated class averages: pose conventions, noise level, determinism, files."""

from __future__ import annotations

import numpy as np
import pytest

from sigcore.errors import ConfigError, FormatError
from sigcore.geometry import euler_to_matrix
from sigcore.imageset import PoseTable
from sigcore.phantom import protein_phantom
from sigcore.simulate import simulate, translate_images, write_simulation


def _blob(n: int, centre: tuple[float, float, float], sigma: float) -> np.ndarray:
    z, y, x = np.mgrid[:n, :n, :n] - n // 2
    cx, cy, cz = centre
    r2 = (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2
    return np.exp(-r2 / (2 * sigma**2)).astype(np.float32)


def _centroid(image: np.ndarray) -> np.ndarray:
    n = image.shape[-1]
    y, x = np.mgrid[:n, :n] - n // 2
    w = np.clip(image, 0, None)
    return np.array([(w * x).sum(), (w * y).sum()]) / w.sum()


def test_translate_images_moves_content_by_plus_shift() -> None:
    img = np.zeros((1, 16, 16), np.float32)
    img[0, 8, 8] = 1.0
    out = translate_images(img, [[3.0, -2.0]])
    assert out[0, 6, 11] == pytest.approx(1.0, abs=1e-5)


def test_noise_free_images_follow_pose_convention() -> None:
    n = 32
    p = np.array([5.0, -3.0, 2.0])
    vol = _blob(n, tuple(p), 1.5)
    data, truth = simulate(vol, n=12, snr=np.inf, pixel_size=2.0, seed=3, max_shift=3)
    np.testing.assert_array_equal(truth, vol)
    poses = data.poses
    assert poses is not None
    np.testing.assert_array_equal(poses.image_index, np.arange(12))
    assert np.all(np.linalg.norm(poses.shifts, axis=1) <= 3.0)
    for i in range(12):
        a, s = poses.rotations[i], poses.shifts[i]
        # the blob at p projects to (A p)_xy; the observed image is moved by -s
        expected = (a @ p)[:2] - s
        np.testing.assert_allclose(_centroid(data.images[i]), expected, atol=0.15)


def test_deterministic_for_a_seed_and_noise_at_requested_snr() -> None:
    vol = protein_phantom(32, seed=2)
    a, _ = simulate(vol, n=40, snr=0.5, pixel_size=3.0, seed=11)
    b, _ = simulate(vol, n=40, snr=0.5, pixel_size=3.0, seed=11)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.poses.rotations, b.poses.rotations)
    c, _ = simulate(vol, n=40, snr=0.5, pixel_size=3.0, seed=12)
    assert not np.allclose(a.poses.rotations, c.poses.rotations)
    clean, _ = simulate(vol, n=40, snr=np.inf, pixel_size=3.0, seed=11)
    np.testing.assert_array_equal(clean.poses.shifts, a.poses.shifts)
    noise = a.images - clean.images
    ratio = clean.images.var() / noise.var()
    assert ratio == pytest.approx(0.5, rel=0.03)
    assert abs(noise.mean()) < 0.01 * noise.std()


def test_random_orientations_are_uniform() -> None:
    vol = _blob(16, (0.0, 0.0, 0.0), 2.0)
    data, _ = simulate(vol, n=3000, snr=np.inf, pixel_size=1.0, seed=0)
    d = data.poses.rotations[:, 2, :]  # viewing directions
    np.testing.assert_allclose(d.mean(axis=0), 0.0, atol=0.05)
    # cos(tilt) uniform on [-1, 1]: quartiles at -0.5, 0, 0.5
    np.testing.assert_allclose(
        np.quantile(d[:, 2], [0.25, 0.5, 0.75]), [-0.5, 0, 0.5], atol=0.05
    )
    # in-plane angle uniform: first row direction covers the circle
    psi_axis = data.poses.rotations[:, 0, :2]
    assert np.linalg.norm(psi_axis.mean(axis=0)) < 0.05


def test_given_orientations_box_and_lowpass() -> None:
    vol = protein_phantom(48, seed=0)
    rots = euler_to_matrix(
        np.array([[0.0, 0.0, 0.0], [0.0, 90.0, 0.0], [30.0, 45.0, 0.0]])
    )
    data, truth = simulate(
        vol,
        n=3,
        snr=np.inf,
        pixel_size=2.0,
        box=32,
        rotations=rots,
        random_psi=False,
        max_shift=0.0,
        lowpass_A=12.0,
    )
    assert truth.shape == (32, 32, 32)
    assert data.pixel_size == pytest.approx(3.0)
    np.testing.assert_array_equal(data.poses.rotations, rots)
    np.testing.assert_array_equal(data.poses.shifts, 0.0)
    # first image: projection along z of the cropped truth, low-passed at 12 Å
    top = truth.sum(axis=0)
    spec = np.abs(np.fft.fft2(data.images[0]))
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(32), np.fft.fftfreq(32)))
    assert spec[k > 3.0 / 12.0 + 0.02].max() < 1e-3 * spec.max()
    keep = k < 3.0 / 12.0 - 0.02
    np.testing.assert_allclose(
        spec[keep], np.abs(np.fft.fft2(top))[keep], rtol=0.02, atol=1e-2 * spec.max()
    )


def test_rejects_bad_parameters() -> None:
    vol = np.zeros((16, 16, 16), np.float32)
    with pytest.raises(ConfigError):
        simulate(vol, n=2, snr=0.0, pixel_size=1.0)
    with pytest.raises(ConfigError):
        simulate(vol[:, :, :8], n=2, snr=1.0, pixel_size=1.0)
    with pytest.raises(ConfigError):
        simulate(vol, n=2, snr=1.0, pixel_size=1.0, max_shift=9.0)


def test_write_simulation_round_trip(tmp_path) -> None:
    from sigcore.io.mrc import read_volume
    from sigcore.plugins import find_reader

    vol = protein_phantom(24, seed=1)
    data, truth = simulate(vol, n=5, snr=2.0, pixel_size=4.0, seed=5)
    paths = write_simulation(tmp_path / "sim", data, truth)
    assert sorted(p.name for p in paths.values()) == [
        "classes.mrcs",
        "classes.star",
        "truth.mrc",
    ]
    back = find_reader(paths["star"]).read(paths["star"])
    np.testing.assert_allclose(back.images, data.images, atol=1e-6)
    assert back.pixel_size == pytest.approx(4.0)
    np.testing.assert_allclose(back.poses.rotations, data.poses.rotations, atol=1e-6)
    np.testing.assert_allclose(back.poses.shifts, data.poses.shifts, atol=1e-6)
    t, voxel = read_volume(paths["truth"])
    np.testing.assert_array_equal(t, truth)
    assert voxel == pytest.approx(4.0)
    with pytest.raises(FormatError):
        write_simulation(tmp_path / "sim", data, truth)


def test_reconstruction_from_true_poses_recovers_truth() -> None:
    from sigcore.plugins import create_backend
    from sigcore.validation import fsc

    vol = protein_phantom(32, seed=0)
    data, truth = simulate(vol, n=400, snr=np.inf, pixel_size=2.0, seed=0, max_shift=3)
    backend = create_backend("numpy")
    rec = backend.asnumpy(backend.reconstruct(data.images, data.poses))
    assert fsc(rec, truth).fsc[1:16].min() > 0.99
    # a wrong shift sign breaks it: the poses really describe the images
    flipped = PoseTable(
        image_index=data.poses.image_index,
        rotations=data.poses.rotations,
        shifts=-data.poses.shifts,
        weights=data.poses.weights,
    )
    bad = backend.asnumpy(backend.reconstruct(data.images, flipped))
    assert fsc(bad, truth).fsc[8:16].mean() < 0.9
