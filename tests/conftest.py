"""Shared fixtures: real maps from ../shared/data, GPU probe, backends."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_MAPS = REPO_ROOT.parent / "shared" / "data" / "maps"


@functools.cache
def gpu_probe() -> str | None:
    """Return None when CuPy and a CUDA device are usable, else the reason."""
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "no CUDA device visible"
    except Exception as exc:  # ImportError, CUDARuntimeError, ...
        return f"CuPy/CUDA not usable: {type(exc).__name__}: {exc}"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    reason = gpu_probe() if any("gpu" in item.keywords for item in items) else None
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"gpu test skipped: {reason}")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_maps() -> Path:
    """Folder of the real cryo-EM maps (skips when ../shared/data/maps is absent)."""
    if not SHARED_MAPS.is_dir():
        pytest.skip(f"real maps not found at {SHARED_MAPS} (../shared/data/maps)")
    return SHARED_MAPS


def load_map(name: str) -> tuple:
    """Read one shared map as (float32 volume normalised to unit std, voxel size)."""
    import mrcfile
    import numpy as np

    path = SHARED_MAPS / name
    if not path.exists():
        pytest.skip(f"real map {path} not found (../shared/data/maps)")
    with mrcfile.open(path, permissive=True) as mrc:
        data = np.asarray(mrc.data, dtype=np.float32).copy()
        voxel = float(mrc.voxel_size.x)
    data -= data.mean()
    data /= data.std()
    return data, (voxel if voxel > 0 else None)
