"""numba kernels of the ``cpu`` backend (imported only by ``CpuBackend.create``)."""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

__all__ = ["polar_sampler", "psi_max"]


@numba.njit(parallel=True, cache=True, fastmath=True)
def _sample(
    spectra: Any, index: Any, weight: Any, out: Any
) -> None:  # pragma: no cover
    b, q = out.shape
    taps = index.shape[1]
    for t in numba.prange(b * q):
        i = t // q
        p = t - i * q
        acc = np.complex64(0)
        for s in range(taps):
            acc += spectra[i, index[p, s]] * weight[p, s]
        out[i, p] = acc


def polar_sampler(spectra: Any, index: Any, weight: Any) -> Any:
    """Interpolate ``spectra`` (b, Q0) at the plan's points: (b, Q) complex64."""
    out = np.empty((spectra.shape[0], index.shape[0]), dtype=np.complex64)
    _sample(spectra, index, weight, out)
    return out


@numba.njit(cache=True)
def _psi_max(
    c: Any, ni: int, rpi: int, nj: int, which: Any, m0: Any, around: Any
) -> None:  # pragma: no cover
    n_psi = c.shape[0]
    row_max = np.empty(nj, dtype=np.float32)
    row_arg = np.empty(nj, dtype=np.int64)
    best = np.empty(nj, dtype=np.float32)
    for i in range(ni):
        for s in range(rpi):
            base = (i * rpi + s) * nj
            for j in range(nj):
                row_max[j] = c[0, base + j]
                row_arg[j] = 0
            for m in range(1, n_psi):
                for j in range(nj):
                    v = c[m, base + j]
                    if v > row_max[j]:
                        row_max[j] = v
                        row_arg[j] = m
            for j in range(nj):
                if s == 0 or row_max[j] > best[j]:
                    best[j] = row_max[j]
                    which[i, j] = s
                    m0[i, j] = row_arg[j]
        for j in range(nj):
            col = (i * rpi + which[i, j]) * nj + j
            for d in range(3):
                around[d, i, j] = c[(m0[i, j] + d - 1) % n_psi, col]


def psi_max(c: Any, ni: int, rows_per_image: int, nj: int) -> tuple[Any, Any, Any]:
    """One-pass max over psi and rows (see ``sigcore.backends.polar._psi_max``).

    Serial: the search already runs one chunk per thread.
    """
    which = np.empty((ni, nj), dtype=np.int64)
    m0 = np.empty((ni, nj), dtype=np.int64)
    around = np.empty((3, ni, nj), dtype=np.float32)
    _psi_max(c, ni, rows_per_image, nj, which, m0, around)
    return which, m0, around
