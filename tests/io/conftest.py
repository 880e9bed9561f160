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
