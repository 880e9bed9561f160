"""Input validation, normalisation, working box and reference resampling."""

from __future__ import annotations

import numpy as np
import pytest

from sigcore.errors import ConfigError
from sigcore.preprocess import (
    normalize_images,
    prepare_images,
    prepare_reference,
    validate_images,
    working_geometry,
)


def _blobs(n=32, count=4, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:n, :n] - n // 2
    out = np.empty((count, n, n), np.float32)
    for k in range(count):
        cx, cy = rng.uniform(-3, 3, 2)
        out[k] = 5.0 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 18.0) + 2.0
    return out


@pytest.mark.parametrize(
    ("images", "apix", "match"),
    [
        (np.zeros((0, 8, 8)), 1.0, "non-empty"),
        (np.ones((4, 8, 6)), 1.0, "not square"),
        (np.random.default_rng(0).random((2, 8, 8)), 1.0, "at least 3"),
        (np.ones((4, 8, 8)), 1.0, "image 0 is constant"),
        (None, 1.0, "NaN or Inf"),
        (np.random.default_rng(0).random((4, 8, 8)), None, "pixel size unknown"),
    ],
)
def test_validate_rejects_bad_input(images, apix, match):
    if images is None:
        images = np.random.default_rng(0).random((4, 8, 8))
        images[2, 3, 3] = np.nan
    with pytest.raises(ConfigError, match=match):
        validate_images(images, pixel_size=apix, source="x.mrcs")


def test_normalize_zero_background_unit_std():
    out = normalize_images(_blobs())
    assert out.dtype == np.float32
    # the background (offset 2) is removed: the corners are ~0 (the blob tails
    # reaching the ring, ~5 exp(-9.8^2 / 18) = 0.02, move it by < 0.01)
    assert np.abs(out[:, 0, 0]).max() < 1e-2
    np.testing.assert_allclose(out.std(axis=(1, 2)), 1.0, rtol=1e-5)


def test_working_geometry_by_hand():
    # 64 px at 2 Å, R = 8 Å -> target pixel 4 Å -> 64 * 2 / 4 = 32 px, 4 Å
    assert working_geometry(64, 2.0, 8.0) == (32, 4.0)
    # R = 10 Å: 64 * 2 / 5 = 25.6 -> even 26 px, pixel 2 * 64 / 26
    box, apix = working_geometry(64, 2.0, 10.0)
    assert box == 26
    assert apix == pytest.approx(128 / 26)
    # never upsampled, never below 24 px
    assert working_geometry(64, 2.0, 4.0) == (64, 2.0)
    assert working_geometry(64, 2.0, 60.0)[0] == 24
    assert working_geometry(64, 2.0, None) == (64, 2.0)


def test_prepare_images_crops_and_keeps_low_frequencies():
    imgs = _blobs(n=64, count=3)
    prepared = prepare_images(imgs, pixel_size=1.0, max_resolution=4.0)
    assert prepared.box == 32
    assert prepared.pixel_size == 2.0
    assert prepared.input_box == 64
    assert prepared.scale == 0.5
    # a smooth blob survives: same picture as subsampling the normalised input
    ref = normalize_images(imgs)[:, ::2, ::2]
    corr = np.corrcoef(prepared.images.ravel(), ref.ravel())[0, 1]
    assert corr > 0.99


def test_prepare_reference_resamples_to_working_grid():
    n = 32
    z, y, x = np.mgrid[:n, :n, :n] - n // 2
    blob = np.exp(-((x - 4) ** 2 + y**2 + z**2) / 8.0).astype(np.float32)
    # reference at 1 Å onto a 16-voxel grid at 2 Å: the blob centre moves from
    # x = +4 voxels to +2 voxels, and the box is zero-padded to 24
    out = prepare_reference(blob, 1.0, box=24, pixel_size=2.0)
    assert out.shape == (24, 24, 24)
    peak = np.unravel_index(np.argmax(out), out.shape)
    assert peak == (12, 12, 14)
    assert out.std() == pytest.approx(1.0, rel=1e-4)


def test_prepare_reference_rejects_non_cubic():
    with pytest.raises(ConfigError, match="cubic"):
        prepare_reference(np.ones((4, 4, 5)), 1.0, box=4, pixel_size=1.0)
