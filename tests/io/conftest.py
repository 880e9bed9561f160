"""Fixtures for the file-format tests: stage hand-written files with a stack."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[1] / "data"


def marker_stack(n: int, box: int = 8) -> np.ndarray:
    """Image k (0-based) filled with k + 1, so tests can tell images apart."""
    return np.repeat(np.arange(1, n + 1, dtype=np.float32), box * box).reshape(
        n, box, box
    )


@pytest.fixture
def stage(tmp_path: Path) -> Callable[..., Path]:
    """Copy a tests/data file into tmp_path and write the stack it names."""
    import mrcfile

    def _stage(
        name: str, *, stack: str = "classes.mrcs", n: int = 3, apix: float = 0.0
    ) -> Path:
        target = tmp_path / name
        shutil.copy(DATA / name, target)
        stack_path = tmp_path / stack
        stack_path.parent.mkdir(parents=True, exist_ok=True)
        with mrcfile.new(stack_path, overwrite=True) as mrc:
            mrc.set_data(marker_stack(n))
            mrc.voxel_size = apix
        return target

    return _stage


IO_MODULES = (
    "sigcore.io.mrc",
    "sigcore.io.relion",
    "sigcore.io.xmipp",
    "sigcore.io.spider",
    "sigcore.io.cryosparc",
)


@pytest.fixture(scope="session")
def io_registry():
    """A registry holding only the built-in file-format plugins."""
    import importlib

    import pluggy

    from sigcore import hookspecs
    from sigcore.plugins import build_registry

    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name in IO_MODULES:
        pm.register(importlib.import_module(name), name=name)
    return build_registry(pm)
