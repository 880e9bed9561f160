"""The built-in phantom: deterministic, centred, compact and chiral."""

from __future__ import annotations

import numpy as np
import pytest

from sigcore.errors import ConfigError
from sigcore.phantom import phantom_atoms, protein_phantom
from sigcore.validation import align_volumes, fsc
from sigcore.volume import center_of_mass_shift, flip_hand


def test_deterministic_and_seed_dependent() -> None:
    a = protein_phantom(32, seed=4)
    np.testing.assert_array_equal(a, protein_phantom(32, seed=4))
    assert a.dtype == np.float32
    assert a.shape == (32, 32, 32)
    assert a.max() == pytest.approx(1.0)
    b = protein_phantom(32, seed=5)
    assert fsc(a, b).fsc[4:8].max() < 0.9


def test_chain_is_a_connected_protein_sized_chain() -> None:
    atoms = phantom_atoms(seed=0, n_atoms=300)
    assert 300 <= len(atoms) < 360  # a few hundred atoms, linkers on top
    bonds = np.linalg.norm(np.diff(atoms, axis=0), axis=1)
    assert bonds.min() > 0.9  # no jumps along the chain
    assert bonds.max() < 2.5
    with pytest.raises(ConfigError):
        phantom_atoms(n_atoms=10)


def test_centred_and_inside_035_of_the_box() -> None:
    box = 64
    vol = protein_phantom(box)
    np.testing.assert_allclose(center_of_mass_shift(vol), 0.0, atol=0.05)
    z, y, x = np.mgrid[:box, :box, :box] - box // 2
    r = np.sqrt(x**2 + y**2 + z**2)
    assert vol[r > 0.35 * box].sum() < 0.01 * vol.sum()
    # and it is not a point: the density fills a protein-like extent
    assert vol[r > 0.15 * box].sum() > 0.2 * vol.sum()


def test_chiral_mirror_image_cannot_be_superposed() -> None:
    vol = protein_phantom(32, seed=0)
    flipped = flip_hand(vol)
    assert fsc(vol, flipped).fsc[2:8].max() < 0.9
    mirror = align_volumes(flipped, vol, both_hands=False)
    assert mirror.correlation < 0.92
    # the same hand turned by a rotation is recovered almost exactly
    turned = np.ascontiguousarray(np.transpose(vol, (1, 2, 0)))
    same = align_volumes(turned, vol, both_hands=False)
    assert same.correlation > 0.99
