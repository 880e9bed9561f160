"""The ``numpy`` reference backend is registered and runs the shared kernels."""

from __future__ import annotations

import numpy as np

from sigcore.backends.numpy_backend import NumpyBackend
from sigcore.backends.projector import project
from sigcore.geometry import random_rotations
from sigcore.imageset import PoseTable
from sigcore.plugins import build_registry, create_backend, get_plugin_manager


def test_registered_and_created_by_name() -> None:
    registry = build_registry(get_plugin_manager(autoload=False))
    assert registry.backends["numpy"] is NumpyBackend
    backend = create_backend("numpy", registry)
    assert isinstance(backend, NumpyBackend)
    assert backend.xp is np
    assert NumpyBackend.is_available()


def test_project_and_reconstruct_delegate_to_the_projector() -> None:
    rng = np.random.default_rng(0)
    volume = rng.standard_normal((12, 12, 12)).astype(np.float32)
    rotations = random_rotations(5, rng)
    backend = NumpyBackend.create()
    images = backend.project(volume, rotations)
    np.testing.assert_array_equal(images, project(volume, rotations, xp=np))
    poses = PoseTable(np.arange(5), rotations, np.zeros((5, 2)), np.ones(5))
    result = backend.reconstruct(images, poses)
    assert result.shape == (12, 12, 12)
    assert result.dtype == np.float32
