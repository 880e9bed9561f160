"""The ``cupy`` backend: every kernel on one CUDA GPU.

Images, gallery projections, the polar samples and the Fourier grids stay on
the device; the only transfer inside an iteration is the score table
(N x G) coming back for the significance step, plus the poses going in and the
reconstructed volume (n³ floats) coming out. The kernels are the shared
``xp``-generic ones (:mod:`sigcore.backends.projector`,
:mod:`sigcore.backends.polar`) run with ``xp = cupy``; cuFFT plans are cached
by CuPy across iterations. Importing this module does not import CuPy.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sigcore.backends.base import ArrayBackend
from sigcore.errors import BackendUnavailable
from sigcore.hookspecs import hookimpl

if TYPE_CHECKING:
    from sigcore.alignment import SearchParams, SearchResult
    from sigcore.protocols import Metric

__all__ = ["CupyBackend"]


class CupyBackend(ArrayBackend):
    """GPU backend (float32/complex64 only).

    Parameters
    ----------
    cupy : module
        The imported ``cupy`` package.
    device : int
        CUDA device number.
    """

    name = "cupy"

    def __init__(self, cupy: Any, device: int = 0) -> None:
        super().__init__(cupy)
        self.device = device

    @classmethod
    def is_available(cls) -> bool:
        """Return True when CuPy imports and sees at least one CUDA device."""
        if importlib.util.find_spec("cupy") is None:
            return False
        try:
            import cupy

            return int(cupy.cuda.runtime.getDeviceCount()) > 0
        except Exception:  # CUDA driver missing, no device, broken install
            return False

    @classmethod
    def create(cls, device: int = 0, **options: Any) -> CupyBackend:
        """Import CuPy and bind the backend to ``device``.

        Parameters
        ----------
        device : int
            CUDA device number.
        **options
            Accepted and ignored (e.g. ``threads``), so ``"auto"`` can pass
            the same options to every backend.
        """
        if not cls.is_available():
            raise BackendUnavailable("backend 'cupy': CuPy or a CUDA device is missing")
        import cupy

        cupy.cuda.Device(device).use()
        return cls(cupy, device)

    def asarray(self, array: Any) -> Any:
        """Move a host array to the device (float64 geometry stays on the host)."""
        return self.xp.asarray(array)

    def asnumpy(self, array: Any) -> Any:
        """Copy a device array to the host."""
        return self.xp.asnumpy(array)

    def synchronize(self) -> None:
        """Wait for the device's queued work."""
        self.xp.cuda.get_current_stream().synchronize()

    def search(
        self,
        images: Any,
        references: Any,
        params: SearchParams,
        metrics: Sequence[Metric] = (),
    ) -> SearchResult:
        """Align every image to every reference on the GPU (DESIGN §5.3).

        Parameters
        ----------
        images : cupy.ndarray, shape (N, n, n), float32
        references : cupy.ndarray, shape (G, n, n), float32
        params : SearchParams
        metrics : sequence of Metric

        Returns
        -------
        SearchResult
            Host arrays (the score table is the one transfer).
        """
        from sigcore.backends.polar import search_polar

        return search_polar(
            self.asarray(images),
            self.asarray(references),
            params,
            metrics,
            xp=self.xp,
            budget_bytes=1 << 30,
        )


@hookimpl(trylast=True)
def sigcore_register_backends() -> list[type[ArrayBackend]]:
    """Contribute the ``cupy`` backend."""
    return [CupyBackend]
