"""The run report's diagnostics: the reprojection panels and their PNG."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sigcore.config import ReconstructionConfig
from sigcore.imageset import PoseTable
from sigcore.preprocess import prepare_images
from sigcore.report import PLOTS, reprojection_pairs, write_plots
from sigcore.scheduler import run
from sigcore.simulate import simulate
from sigcore.testing import UnalignedBackend, blob_stack

BOX = 24


def _blobs() -> np.ndarray:
    """An asymmetric volume of four Gaussian blobs, box ``BOX``."""
    z, y, x = np.mgrid[:BOX, :BOX, :BOX] - BOX // 2
    volume = np.zeros((BOX,) * 3, np.float32)
    for (cz, cy, cx), sigma, height in (
        ((0, 0, 0), 2.5, 1.0),
        ((4, -3, 1), 1.5, 0.8),
        ((-2, 4, -4), 1.5, 0.6),
        ((1, 2, 5), 1.2, 0.9),
    ):
        r2 = (z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2
        volume += height * np.exp(-r2 / (2 * sigma**2))
    return volume


def _simulated(snr: float):
    data, truth = simulate(
        _blobs(), n=6, snr=snr, pixel_size=3.0, seed=4, max_shift=3.0
    )
    return data, truth


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_reprojection_at_the_true_pose_matches_the_clean_image():
    noisy, truth = _simulated(snr=1.0)
    clean, _ = _simulated(snr=np.inf)
    poses = noisy.poses
    assert np.abs(poses.shifts).max() > 1.0  # the shift matters
    indices, shown, reprojections, correlations = reprojection_pairs(
        truth, noisy.images, poses
    )
    np.testing.assert_array_equal(indices, np.arange(6))
    np.testing.assert_array_equal(shown, noisy.images)
    assert reprojections.shape == shown.shape
    assert reprojections.dtype == np.float32
    for k in range(6):
        assert _corr(reprojections[k], clean.images[k]) > 0.95
    # the reported figure is the correlation with the (noisy) image shown
    for k in range(6):
        assert correlations[k] == pytest.approx(
            _corr(reprojections[k], noisy.images[k]), abs=1e-6
        )
    # the shift is applied with the right sign: the opposite one misaligns
    flipped = dataclasses.replace(poses, shifts=-poses.shifts)
    _, _, wrong, _ = reprojection_pairs(truth, noisy.images, flipped)
    worst = min(_corr(wrong[k], clean.images[k]) for k in range(6))
    assert worst < 0.9


def test_best_weight_row_is_used_and_missing_images_are_marked():
    clean, truth = _simulated(snr=np.inf)
    true = clean.poses
    # image 0: a wrong pose (low weight) and its true pose (high weight);
    # image 1: only a wrong pose; image 2: no row at all; 3-5: true poses.
    wrong = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
    table = PoseTable(
        image_index=np.array([0, 0, 1, 3, 4, 5]),
        rotations=np.stack([wrong, true.rotations[0], wrong, *true.rotations[3:]]),
        shifts=np.stack([np.zeros(2), true.shifts[0], np.zeros(2), *true.shifts[3:]]),
        weights=np.array([0.2, 0.9, 0.5, 1.0, 1.0, 1.0]),
    )
    indices, _, reprojections, correlations = reprojection_pairs(
        truth, clean.images, table
    )
    np.testing.assert_array_equal(indices, np.arange(6))
    assert correlations[0] > 0.95
    assert correlations[1] < 0.9
    assert np.isnan(correlations[2])
    assert np.isnan(reprojections[2]).all()
    assert np.isfinite(np.delete(reprojections, 2, axis=0)).all()
    assert (correlations[3:] > 0.95).all()


def test_sample_is_spread_evenly_over_the_stack():
    images = np.zeros((30, 8, 8), np.float32)
    indices, shown, reprojections, correlations = reprojection_pairs(
        np.zeros((8, 8, 8), np.float32), images, PoseTable.identity(0), count=12
    )
    assert len(indices) == 12
    assert indices[0] == 0
    assert indices[-1] == 29
    assert (np.diff(indices) >= 2).all()
    assert np.isnan(correlations).all()
    assert np.isnan(reprojections).all()
    assert shown.shape == (12, 8, 8)


def _stack(n=8, seed=0):
    return prepare_images(blob_stack(n, BOX, seed=seed, offset=3.0), pixel_size=3.0)


def _without(poses: PoseTable, image: int) -> PoseTable:
    keep = poses.image_index != image
    return PoseTable(
        image_index=poses.image_index[keep],
        rotations=poses.rotations[keep],
        shifts=poses.shifts[keep],
        weights=poses.weights[keep],
        extra={name: column[keep] for name, column in poses.extra.items()},
    )


def test_write_plots_writes_the_reprojection_png(tmp_path):
    plt = pytest.importorskip("matplotlib.pyplot")
    config = ReconstructionConfig(
        step=20, neighbourhood=40, iterations=2, seed=5, imed=False
    )
    result = run(_stack(), config, backend=UnalignedBackend(), seed=5)
    # drop every row of image 3 so one panel reads "no significant pose"
    assert (result.assignments.image_index == 3).any()
    result = dataclasses.replace(result, assignments=_without(result.assignments, 3))
    written = write_plots(tmp_path, result)
    assert written == list(PLOTS)
    png = tmp_path / "reprojections.png"
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000
    pixels = plt.imread(png)
    assert pixels.shape[0] > 100
    assert pixels.shape[1] > 500
    assert pixels[..., :3].std() > 0.05  # not a blank canvas
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(PLOTS)
