"""numba kernels of the ``cpu`` backend (imported only by ``CpuBackend.create``)."""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

__all__ = ["polar_sampler"]


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
