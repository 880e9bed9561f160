"""Shared machinery of the array backends (host/device moves, kernels on ``xp``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from sigcore.alignment import SearchParams, SearchResult
    from sigcore.imageset import PoseTable
    from sigcore.protocols import Metric

__all__ = ["ArrayBackend"]


class ArrayBackend:
    """A backend bound to one array namespace.

    Subclasses set ``name`` and implement :meth:`search`; projection and
    reconstruction default to the ``xp``-generic kernels of
    :mod:`sigcore.backends.projector`.

    Parameters
    ----------
    xp : module
        ``numpy`` or ``cupy``.
    """

    name: ClassVar[str] = "base"

    def __init__(self, xp: Any) -> None:
        self.xp = xp

    def asarray(self, array: Any) -> Any:
        """Move a host array onto the backend."""
        return self.xp.asarray(array)

    def asnumpy(self, array: Any) -> NDArray[Any]:
        """Return a host NumPy array."""
        if isinstance(array, np.ndarray):
            return array
        return np.asarray(array.get()) if hasattr(array, "get") else np.asarray(array)

    def synchronize(self) -> None:
        """Wait for queued work (no-op on the CPU)."""

    def project(
        self,
        volume: Any,
        rotations: NDArray[np.float64],
        *,
        max_frequency: float = 0.5,
    ) -> Any:
        """Project ``volume`` at ``rotations`` (see ``protocols.Backend``)."""
        from sigcore.backends.projector import project

        return project(
            self.asarray(volume), rotations, xp=self.xp, max_frequency=max_frequency
        )

    def reconstruct(
        self,
        images: Any,
        poses: PoseTable,
        *,
        symmetry_ops: NDArray[np.float64] | None = None,
        max_frequency: float = 0.5,
    ) -> Any:
        """Weighted direct Fourier inversion (see ``protocols.Backend``)."""
        from sigcore.backends.projector import reconstruct

        return reconstruct(
            self.asarray(images),
            poses,
            symmetry_ops=symmetry_ops,
            xp=self.xp,
            max_frequency=max_frequency,
        )

    def search(
        self,
        images: Any,
        references: Any,
        params: SearchParams,
        metrics: Sequence[Metric] = (),
    ) -> SearchResult:
        """Align every image to every reference (implemented by subclasses)."""
        raise NotImplementedError
