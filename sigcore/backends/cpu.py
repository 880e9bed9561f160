"""The ``cpu`` backend: the polar-Fourier search on the host (NumPy + numba).

The heavy lifting of the search is complex64 GEMM (multi-threaded BLAS);
the FFTs run on ``scipy.fft`` with one worker per thread and the polar
interpolation is a parallel numba kernel. Projection and reconstruction are
the shared ``xp``-generic kernels. Registered as a built-in plugin.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sigcore.backends.base import ArrayBackend
from sigcore.errors import ConfigError
from sigcore.hookspecs import hookimpl

if TYPE_CHECKING:
    from sigcore.alignment import SearchParams, SearchResult
    from sigcore.protocols import Metric

__all__ = ["CpuBackend"]


class CpuBackend(ArrayBackend):
    """Host backend with the fast search.

    Parameters
    ----------
    threads : int
        Threads for numba and the FFTs (BLAS follows its own settings, e.g.
        ``OMP_NUM_THREADS``).
    """

    name = "cpu"

    def __init__(self, threads: int) -> None:
        super().__init__(np)
        self.threads = threads

    @classmethod
    def is_available(cls) -> bool:
        """Return True when numba is importable (checked without importing it)."""
        return importlib.util.find_spec("numba") is not None

    @classmethod
    def create(cls, threads: int | None = None, **options: Any) -> CpuBackend:
        """Build the backend, set the thread count and compile the kernels.

        Parameters
        ----------
        threads : int or None
            ``None`` uses ``NUMBA_NUM_THREADS`` or all cores.
        """
        import numba

        if threads is None:
            threads = int(
                os.environ.get("NUMBA_NUM_THREADS", numba.config.NUMBA_NUM_THREADS)
            )
        if threads < 1:
            raise ConfigError(f"threads must be >= 1, got {threads}")
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        backend = cls(threads)
        backend._warm_up()
        return backend

    def _warm_up(self) -> None:
        """Compile (or load from cache) the numba kernels outside any timing."""
        from sigcore.backends._numba_kernels import polar_sampler

        spectra = np.zeros((1, 4), dtype=np.complex64)
        polar_sampler(
            spectra, np.zeros((1, 16), np.int64), np.zeros((1, 16), np.float32)
        )

    def search(
        self,
        images: Any,
        references: Any,
        params: SearchParams,
        metrics: Sequence[Metric] = (),
    ) -> SearchResult:
        """Align every image to every reference (polar-Fourier, DESIGN §5.3).

        Parameters
        ----------
        images : ndarray, shape (N, n, n), float32
        references : ndarray, shape (G, n, n), float32
        params : SearchParams
        metrics : sequence of Metric

        Returns
        -------
        SearchResult
        """
        import scipy.fft

        from sigcore.backends._numba_kernels import polar_sampler
        from sigcore.backends.polar import search_polar

        with scipy.fft.set_workers(self.threads):
            return search_polar(
                images,
                references,
                params,
                metrics,
                xp=np,
                fft=scipy.fft,
                sampler=polar_sampler,
            )


@hookimpl(trylast=True)
def sigcore_register_backends() -> list[type[ArrayBackend]]:
    """Contribute the ``cpu`` backend."""
    return [CpuBackend]
