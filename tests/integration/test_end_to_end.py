"""End to end: class averages of a known map -> sigcore.reconstruct -> FSC vs truth.

The fold counts as found when, after aligning the result to the truth over
both hands, the FSC drops below 0.5 at a resolution better than 4 x the working
pixel size (the criterion of issue 5). Failing this means the method broke.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from sigcore.api import reconstruct
from sigcore.validation import align_volumes, fsc, resolution_at


def _backend() -> str:
    """The fastest backend whose search exists (skip while none does)."""
    from sigcore.plugins import default_registry

    registry = default_registry()
    if "imed" not in registry.metrics:
        pytest.skip("the imed metric is not registered yet")
    if "cpu" in registry.backends and registry.backends["cpu"].is_available():
        return "cpu"
    if importlib.util.find_spec("sigcore.backends.search_reference") is None:
        pytest.skip("no backend with an alignment search is installed yet")
    return "numpy"


def _found(volume, truth, pixel_size):
    aligned = align_volumes(volume, truth)
    resolution = resolution_at(fsc(aligned.volume, truth, pixel_size=pixel_size), 0.5)
    return resolution, aligned


def test_phantom_fold_is_found_fast(tmp_path):
    from sigcore.phantom import protein_phantom
    from sigcore.simulate import simulate

    backend = _backend()
    images, truth = simulate(
        protein_phantom(48, seed=0), n=60, snr=3.0, pixel_size=2.0, box=24, seed=2
    )
    result = reconstruct(
        images,
        output_dir=tmp_path / "run",
        step=15,
        neighbourhood=30,
        iterations=8,
        seed=4,
        backend=backend,
        plots=False,
    )
    assert result.pixel_size == pytest.approx(4.0)
    resolution, aligned = _found(result.volume, truth, result.pixel_size)
    assert resolution < 4 * result.pixel_size, (resolution, aligned.hand_correlations)
    assert aligned.correlation > 0.8


@pytest.mark.slow
def test_ribosome_fold_is_found(shared_maps, tmp_path):
    from sigcore.simulate import simulate
    from tests.conftest import load_map

    backend = _backend()
    volume, _ = load_map("ribosome50S_empiar10076_classD_32.mrc")
    images, truth = simulate(volume, n=100, snr=3.0, pixel_size=3.0, seed=7)
    result = reconstruct(
        images, step=10, neighbourhood=20, iterations=12, seed=1, backend=backend
    )
    resolution, aligned = _found(result.volume, truth, result.pixel_size)
    assert resolution < 4 * result.pixel_size, (resolution, aligned.hand_correlations)
    assert np.isfinite(aligned.correlation)
