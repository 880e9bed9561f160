"""ReconstructionConfig defaults and up-front rejection of impossible options."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from sigcore.config import MAX_SHIFT_FRACTION, ReconstructionConfig
from sigcore.errors import ConfigError


def test_defaults_follow_the_original_method():
    cfg = ReconstructionConfig()
    assert (cfg.symmetry, cfg.step, cfg.min_tilt, cfg.max_tilt) == ("c1", 5, 0, 180)
    assert (cfg.alpha0, cfg.alpha_final, cfg.neighbourhood) == (80, 99.5, 10)
    assert cfg.imed
    assert cfg.fisher
    assert not cfg.strict_direction
    assert cfg.max_shift == -1
    assert cfg.reference is None
    assert cfg.compat == "none"
    cfg.validate(box=64, pixel_size=2.0, symmetry_order=1)


def test_frozen_and_normalised():
    cfg = ReconstructionConfig(symmetry="D2", reference="ref.mrc")
    assert cfg.symmetry == "d2"
    assert cfg.reference == Path("ref.mrc")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.step = 3.0  # type: ignore[misc]


def test_unrestricted_shift_is_a_fraction_of_the_box():
    assert ReconstructionConfig().effective_max_shift(64) == MAX_SHIFT_FRACTION * 64
    assert ReconstructionConfig(max_shift=3).effective_max_shift(64) == 3.0


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"step": 15, "neighbourhood": 10}, "step 15 exceeds neighbourhood 10"),
        ({"step": 0}, "step"),
        ({"min_tilt": 90, "max_tilt": 90}, "min_tilt/max_tilt"),
        ({"max_tilt": 200}, "min_tilt/max_tilt"),
        ({"iterations": 0}, "iterations"),
        ({"starts": 0}, "starts"),
        ({"starts": 2, "reference": "r.mrc"}, "reference"),
        ({"alpha0": 100}, "alpha0"),
        ({"alpha0": 95, "alpha_final": 90}, "must not decrease"),
        ({"compat": "relion"}, "compat"),
        ({"max_resolution": -3}, "max_resolution"),
        ({"mask_radius": 0}, "mask_radius"),
    ],
)
def test_impossible_options_are_rejected(changes, match):
    with pytest.raises(ConfigError, match=match):
        ReconstructionConfig(**changes).validate(symmetry_order=1)


def test_alpha0_too_low_for_the_group():
    # order 12 (t): (1 - 0.8) * 12 = 2.4 > 1
    with pytest.raises(ConfigError, match="too low for a group of order 12"):
        ReconstructionConfig(symmetry="t").validate(symmetry_order=12)
    # 95%: 0.05 * 12 = 0.6 is fine
    ReconstructionConfig(symmetry="t", alpha0=95).validate(symmetry_order=12)


def test_alpha_check_uses_xmipps_factor_in_compat_mode():
    # c2 + alpha0 40: ours 0.6 * 2 = 1.2 > 1; Xmipp's factor 1 -> 0.6
    with pytest.raises(ConfigError):
        ReconstructionConfig(alpha0=40).validate(symmetry_order=2)
    ReconstructionConfig(alpha0=40, compat="xmipp").validate(symmetry_order=2)


def test_symmetry_order_is_looked_up():
    pytest.importorskip("sigcore.symmetry")
    with pytest.raises(ConfigError, match="order 12"):
        ReconstructionConfig(symmetry="t").validate()


def test_box_too_small_for_the_shift_range():
    with pytest.raises(ConfigError, match="quarter of the 32 px box"):
        ReconstructionConfig(max_shift=10).validate(box=32, symmetry_order=1)
    with pytest.raises(ConfigError, match="too small"):
        ReconstructionConfig().validate(box=8, symmetry_order=1)


def test_resolution_beyond_nyquist_and_mask_too_big():
    with pytest.raises(ConfigError, match="beyond Nyquist"):
        ReconstructionConfig(max_resolution=3).validate(pixel_size=2, symmetry_order=1)
    with pytest.raises(ConfigError, match="exceeds half the box"):
        ReconstructionConfig(mask_radius=70).validate(
            box=64, pixel_size=2, symmetry_order=1
        )


def test_small_neighbourhood_warns():
    with pytest.warns(UserWarning, match="below twice the step"):
        ReconstructionConfig(step=6, neighbourhood=10).validate(symmetry_order=1)


def test_replace_validates_and_to_dict_is_plain():
    cfg = ReconstructionConfig().replace(iterations=3, reference="a.mrc")
    assert cfg.iterations == 3
    d = cfg.to_dict()
    assert d["reference"] == "a.mrc"
    assert d["alpha_final"] == 99.5
    with pytest.raises(ConfigError):
        cfg.replace(iterations=-1)
