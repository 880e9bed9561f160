"""FSC and two-hand global alignment checked on real maps with known transforms."""

from __future__ import annotations

import time

import numpy as np
import pytest

from sigcore.errors import ConfigError
from sigcore.geometry import euler_to_matrix
from sigcore.validation import align_volumes, fsc, resolution_at
from sigcore.volume import flip_hand, lowpass, rotate_volume
from tests.conftest import load_map

CLASS_D = "ribosome50S_empiar10076_classD_32.mrc"
RIBO70S = "ribosome70S_aspire_65.mrc"


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    cos = (np.trace(a @ b.T) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def test_fsc_of_map_with_itself_is_one(shared_maps) -> None:
    vol, _ = load_map(CLASS_D)
    curve = fsc(vol, vol, pixel_size=4.0)
    assert curve.fsc.shape == (17,)
    np.testing.assert_allclose(curve.fsc[1:], 1.0, atol=1e-12)
    np.testing.assert_allclose(curve.frequencies, np.arange(17) / (32 * 4.0))
    assert resolution_at(curve, 0.5) == pytest.approx(8.0)  # never crosses: Nyquist
    assert curve.counts[1] == 6 + 12  # |k| = 1 (faces) and sqrt(2) (edges) round to 1


def test_fsc_with_independent_noise_matches_expectation() -> None:
    rng = np.random.default_rng(0)
    n = 48
    signal = rng.standard_normal((n, n, n))
    # equal signal and noise power per shell -> expected FSC = 1/2 everywhere
    a = signal + rng.standard_normal((n, n, n))
    b = signal + rng.standard_normal((n, n, n))
    curve = fsc(a, b)
    assert np.abs(curve.fsc[4:] - 0.5).max() < 0.08
    assert abs(curve.fsc[10:].mean() - 0.5) < 0.01
    # pure independent noise -> ~0 with the 1/sqrt(count) spread
    c = fsc(rng.standard_normal((n, n, n)), rng.standard_normal((n, n, n)))
    assert np.all(np.abs(c.fsc[5:]) < 4.0 / np.sqrt(c.counts[5:]))


def test_fsc_drops_where_noise_starts_and_resolution_interpolates(shared_maps) -> None:
    vol, _ = load_map(RIBO70S)
    rng = np.random.default_rng(3)
    noisy = vol + 3.0 * rng.standard_normal(vol.shape).astype(np.float32)
    curve = fsc(vol, noisy, pixel_size=2.0)
    # signal power falls with frequency while the white noise is flat
    assert curve.fsc[2] > 0.8
    assert curve.fsc[-1] < 0.2
    res = resolution_at(curve, 0.5)
    i = int(np.nonzero(curve.fsc[1:] < 0.5)[0][0]) + 1
    assert 1.0 / curve.frequencies[i - 1] >= res >= 1.0 / curve.frequencies[i]


def test_fsc_rejects_mismatched_shapes() -> None:
    with pytest.raises(ConfigError):
        fsc(np.zeros((8, 8, 8)), np.zeros((9, 9, 9)))


@pytest.mark.parametrize(
    ("name", "flip", "euler", "shift"),
    [
        (CLASS_D, True, (37.0, 71.0, -122.0), (2.5, -1.5, 1.0)),
        (CLASS_D, False, (-150.0, 128.0, 40.0), (-1.0, 2.0, -2.5)),
    ],
)
def test_align_recovers_known_rotation_shift_and_hand(
    shared_maps, name: str, flip: bool, euler: tuple, shift: tuple
) -> None:
    ref, apix = load_map(name)
    r0 = euler_to_matrix(euler)
    s0 = np.array(shift)
    start = flip_hand(ref) if flip else ref
    moving = rotate_volume(start, r0, s0, order=3)
    t0 = time.perf_counter()
    result = align_volumes(moving, ref)
    elapsed = time.perf_counter() - t0
    assert result.flipped is flip
    # moving(r) = S(R0^T (r - s0)), S = ref or F ref F with F = diag(1, 1, -1);
    # undoing it needs R = F R0^T F (R = R0^T without the flip), t = -R s0'.
    f = np.diag([1.0, 1.0, -1.0]) if flip else np.eye(3)
    expected_rot = f @ r0.T @ f
    expected_shift = -expected_rot @ (f @ s0)
    assert _angle_deg(result.rotation, expected_rot) < 2.0
    np.testing.assert_allclose(result.shift, expected_shift, atol=0.5)
    curve = fsc(result.volume, ref, pixel_size=apix)
    assert curve.fsc[1:9].min() > 0.98  # ~1 to half Nyquist
    assert result.correlation > 0.95
    other = "original" if flip else "flipped"
    assert result.hand_correlations[other] < result.correlation - 0.1
    assert elapsed < 30.0


def test_align_single_hand_cannot_superpose_mirror_image(shared_maps) -> None:
    ref, _ = load_map(CLASS_D)
    mirrored = rotate_volume(flip_hand(ref), euler_to_matrix([10.0, 20.0, 30.0]))
    result = align_volumes(mirrored, ref, both_hands=False)
    assert not result.flipped
    assert set(result.hand_correlations) == {"original"}
    assert result.correlation < 0.9


def test_align_65_box_70s_accuracy_and_runtime(shared_maps) -> None:
    ref, _ = load_map(RIBO70S)
    ref = lowpass(ref, 4.0, 1.0)
    r0 = euler_to_matrix((80.0, 40.0, 200.0))
    moving = rotate_volume(flip_hand(ref), r0, (1.5, 0.5, -2.0), order=3)
    t0 = time.perf_counter()
    result = align_volumes(moving, ref)
    elapsed = time.perf_counter() - t0
    f = np.diag([1.0, 1.0, -1.0])
    assert result.flipped
    assert _angle_deg(result.rotation, f @ r0.T @ f) < 1.0
    assert fsc(result.volume, ref).fsc[1:15].min() > 0.98  # signal ends at 16
    assert elapsed < 60.0
