"""The ``cpu`` backend: the polar-Fourier search on the host (NumPy + numba).

The heavy lifting of the search is complex64 GEMM. Its matrices are small
(the inner dimension is the ring count), so multi-threaded BLAS spends its
time in barriers, badly so on a shared machine; the search instead runs its
image chunks on ``threads`` Python threads, each with single-threaded BLAS
(OpenBLAS's per-thread setting) and single-threaded ``scipy.fft``. The polar
interpolation is a parallel numba kernel; the ring products are formed in
full only for the rows whose bounds can beat their pair's best
(:mod:`sigcore.backends.pruned_search`, an exact pruning), and the psi
refinement and the IMED cross terms are numba loops. Projection is a numba
gather kernel (:mod:`sigcore.backends._numba_project`), reconstruction a numba
insertion kernel (:mod:`sigcore.backends._numba_insert`); both compute the
shared ``xp``-generic operators of :mod:`sigcore.backends.projector`.
Registered as a built-in plugin.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sigcore.backends.base import ArrayBackend
from sigcore.backends.polar import ImageCache
from sigcore.errors import ConfigError
from sigcore.hookspecs import hookimpl

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from sigcore.alignment import SearchParams, SearchResult
    from sigcore.imageset import PoseTable
    from sigcore.protocols import Metric

__all__ = ["CpuBackend"]

# Working set of one search task: 16 MiB measured fastest at 64² (2, 4, 16,
# 32 MiB: 4.40, 3.94, 3.62, 3.84 s for 120 images x 1650 references, one thread).
_CHUNK_BYTES = 16 * 2**20
# Prepared image rows kept between a run's searches, at most: they take about
# 1.8 MB per image at 64², shifts +-6, and forming them again is about a sixth
# of every later search (issue 6). The budget is also capped at a sixteenth of
# the machine's memory (_kept_rows_budget).
_KEPT_ROWS_BYTES = 2 * 2**30
_CGROUP_LIMITS = (
    "/sys/fs/cgroup/memory.max",  # cgroup v2
    "/sys/fs/cgroup/memory/memory.limit_in_bytes",  # v1 (huge when unlimited)
)


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
        # The last searched images' polar samples, norms and prepared rows
        # (search_polar's image_cache): a run's iterations search the same
        # images.
        self._image_cache = ImageCache(rows_budget=_kept_rows_budget())

    def forget_images(self) -> None:
        """Drop the kept image factors and rows (the next search forms them again)."""
        self._image_cache = ImageCache(rows_budget=self._image_cache.rows_budget)

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
        from sigcore.alignment import SearchParams
        from sigcore.backends._numba_insert import warm_up
        from sigcore.metrics.correlation import Correlation
        from sigcore.metrics.imed import Imed

        blobs = np.zeros((2, 16, 16), dtype=np.float32)
        blobs[:, 6:10, 5:11] = 1.0
        # Correlation: the real-space metrics' warp (third-party metrics).
        self.search(blobs, blobs, SearchParams(max_shift=1.0), [Imed(), Correlation()])
        self.forget_images()
        warm_up()
        self.project(np.zeros((4, 4, 4), dtype=np.float32), np.eye(3)[None])

    def project(
        self,
        volume: Any,
        rotations: NDArray[np.float64],
        *,
        max_frequency: float = 0.5,
    ) -> Any:
        """Fourier-slice projection with the numba gather kernel.

        Same result as :func:`sigcore.backends.projector.project` (to about
        1e-6), about 4x faster at 64² on two cores.
        """
        from sigcore.backends._numba_project import project_numba

        return project_numba(
            np.asarray(volume, dtype=np.float32),
            rotations,
            max_frequency=max_frequency,
        )

    def reconstruct(
        self,
        images: Any,
        poses: PoseTable,
        *,
        symmetry_ops: NDArray[np.float64] | None = None,
        max_frequency: float = 0.5,
    ) -> Any:
        """Weighted direct Fourier inversion with the numba insertion kernel.

        Same result as :func:`sigcore.backends.projector.reconstruct` (to
        about 1e-6), about 20x faster at 64² on two cores.
        """
        from sigcore.backends._numba_insert import reconstruct_numba

        return reconstruct_numba(
            np.asarray(images, dtype=np.float32),
            poses,
            symmetry_ops=symmetry_ops,
            max_frequency=max_frequency,
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

        from sigcore.backends._numba_kernels import polar_sampler, warp_pairs
        from sigcore.backends.polar import search_polar
        from sigcore.backends.pruned_search import PrunedRingSearch

        # scipy.fft's worker count is per thread: the preparation (the
        # references' transforms) runs here on every core, the search tasks on
        # the runner's threads with the default of one worker each.
        with scipy.fft.set_workers(self.threads):
            return search_polar(
                images,
                references,
                params,
                metrics,
                xp=np,
                fft=scipy.fft,
                sampler=polar_sampler,
                run_tasks=_thread_runner(self.threads),
                ring_search=PrunedRingSearch,
                budget_bytes=_CHUNK_BYTES,
                image_cache=self._image_cache,
                warp=warp_pairs,
            )


def _kept_rows_budget() -> int:
    """Bytes of image rows the searches keep: ``_KEPT_ROWS_BYTES`` or 1/16 of memory.

    The memory is the machine's, or the process's cgroup limit where one is
    set and smaller (batch schedulers); a quarter of the constant where
    neither can be read.
    """
    limits = []
    with contextlib.suppress(AttributeError, ValueError, OSError):  # not POSIX
        limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    for path in _CGROUP_LIMITS:
        try:
            with open(path, encoding="ascii") as f:
                limits.append(int(f.read().strip()))
        except (OSError, ValueError):  # absent, or "max" (no limit)
            continue
    if not limits:
        return _KEPT_ROWS_BYTES // 4
    return int(min(_KEPT_ROWS_BYTES, min(limits) // 16))


def _blas_thread_setter() -> Callable[[int], None] | None:
    """OpenBLAS's ``openblas_set_num_threads_local`` if NumPy's BLAS has it."""
    with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
        paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    for path in sorted(paths):
        try:
            setter = ctypes.CDLL(path).openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        setter.argtypes = [ctypes.c_int]
        setter.restype = ctypes.c_int
        return setter
    return None


def _thread_runner(
    threads: int,
) -> Callable[[Callable[[int], None], Sequence[int]], None] | None:
    """Run search tasks on ``threads`` threads, each with single-threaded BLAS.

    One thread runs the tasks in the calling thread with BLAS limited to one
    thread too (``--threads 1`` means one core, and a multi-threaded BLAS on
    a busy machine spins). Returns None (let BLAS thread each product) where
    the per-thread BLAS setting is unavailable (not Linux, not OpenBLAS >=
    0.3.27).
    """
    setter = _blas_thread_setter() if os.path.exists("/proc") else None
    if setter is None:
        return None

    def run(fn: Callable[[int], None], items: Sequence[int]) -> None:
        # The setting is per thread in some OpenBLAS builds and global in
        # others (numpy's wheels): set it in every worker and restore the
        # caller's afterwards, or later products would stay single-threaded.
        previous = setter(1)
        try:
            if threads == 1:
                for item in items:
                    fn(item)
                return
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(threads, initializer=setter, initargs=(1,)) as pool:
                for done in [pool.submit(fn, item) for item in items]:
                    done.result()
        finally:
            setter(max(1, previous))

    return run


@hookimpl(trylast=True)
def sigcore_register_backends() -> list[type[ArrayBackend]]:
    """Contribute the ``cpu`` backend."""
    return [CpuBackend]
