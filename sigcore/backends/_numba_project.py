"""numba Fourier-slice extraction: :func:`projector.project` for the ``cpu`` backend.

This module owns one CPU replacement, :func:`project_numba`, of
:func:`sigcore.backends.projector.project` (``xp = numpy``): same arguments,
same grid conventions, same result up to float rounding. The padded,
sinc²-corrected spectrum and the half-plane samples come from
:func:`~sigcore.backends.projector.projection_plan`; the trilinear gather (the
fancy-indexing passes, most of the run time) is a parallel numba kernel over
orientations that writes straight into the rfft2 half-spectra, and the inverse
FFTs are multi-threaded ``scipy.fft`` calls. numba is imported lazily, so
importing this module is cheap.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import scipy.fft
from numpy.typing import NDArray

from sigcore.backends._numba_insert import _thread_count
from sigcore.backends.projector import projection_plan

__all__ = ["project_numba", "warm_up"]

# Upper bound on the per-batch buffers (half-spectra and inverse transforms).
_BATCH_BYTES = 100 * 2**20


@functools.cache
def _gather_kernel() -> Any:
    """Compile (or load from numba's cache) the slice-extraction kernel."""
    import numba

    # fastmath "contract" only: fused multiply-adds (about 10% faster, equal
    # to 1.4e-7 of the maximum), no reassociation or NaN assumptions.
    @numba.njit(cache=True, parallel=True, fastmath={"contract"})
    def gather(
        spectrum: Any,
        planes: Any,
        kx: Any,
        ky: Any,
        cells: Any,
        size: int,
        half: Any,
    ) -> None:  # pragma: no cover - compiled
        npoints = kx.shape[0]
        stride = size * size
        one = np.float32(1)
        for g in numba.prange(planes.shape[0]):
            a0 = planes[g, 0, 0]
            a1 = planes[g, 0, 1]
            a2 = planes[g, 0, 2]
            b0 = planes[g, 1, 0]
            b1 = planes[g, 1, 1]
            b2 = planes[g, 1, 2]
            row = half[g]
            for p in range(npoints):
                # q = A.T @ (kx, ky, 0), float32 as in the projector.
                qx = kx[p] * a0 + ky[p] * b0
                qy = kx[p] * a1 + ky[p] * b1
                qz = kx[p] * a2 + ky[p] * b2
                fx = np.floor(qx)
                fy = np.floor(qy)
                fz = np.floor(qz)
                ux = qx - fx
                uy = qy - fy
                uz = qz - fz
                # Periodic wrap; the (slow, signed) modulo only for |q| >= size,
                # which rotations never reach but must not index out of bounds.
                x0 = int(fx) + size if fx < 0 else int(fx)
                y0 = int(fy) + size if fy < 0 else int(fy)
                z0 = int(fz) + size if fz < 0 else int(fz)
                if not (0 <= x0 < size and 0 <= y0 < size and 0 <= z0 < size):
                    x0 %= size
                    y0 %= size
                    z0 %= size
                x1 = 0 if x0 + 1 == size else x0 + 1
                y1 = 0 if y0 + 1 == size else y0 + 1
                z1 = 0 if z0 + 1 == size else z0 + 1
                # Corners in the projector's order (z, then y, then x; low
                # first), weights (wz * wy) * wx, float32 sums.
                re = np.float32(0)
                im = np.float32(0)
                for cz in range(2):
                    zi = (z1 if cz else z0) * stride
                    wz = uz if cz else one - uz
                    for cy in range(2):
                        zyi = zi + (y1 if cy else y0) * size
                        wzy = wz * (uy if cy else one - uy)
                        for cx in range(2):
                            w = wzy * (ux if cx else one - ux)
                            value = spectrum[zyi + (x1 if cx else x0)]
                            re += value.real * w
                            im += value.imag * w
                row[cells[p]] = complex(re, im)

    return gather


def project_numba(
    volume: NDArray[np.float32],
    rotations: NDArray[np.float64],
    *,
    pad: float = 2,
    max_frequency: float = 0.5,
) -> NDArray[np.float32]:
    """Project a volume at many orientations, numba on the CPU.

    The same operator as :func:`sigcore.backends.projector.project` with
    ``xp = numpy`` (see its notes for the method): the result agrees with it
    to float rounding (relative 1e-6 of the projections' maximum).

    Parameters
    ----------
    volume : ndarray, shape (n, n, n), float32
        Indexed ``[z, y, x]``, centre at ``n // 2`` (odd or even ``n``).
    rotations : ndarray, shape (G, 3, 3), float64
        RELION-sense matrices ``A`` (map frame -> image frame).
    pad : float
        Zero-padding factor of the 3D Fourier grid.
    max_frequency : float
        Band limit, cycles per pixel (0.5 = Nyquist).

    Returns
    -------
    ndarray, shape (G, n, n), float32
        ``P_g(x, y) = sum_z V(A_g.T @ (x, y, z))``, centre at ``n // 2``.

    Raises
    ------
    ConfigError
        If the volume is not a cube, ``pad < 1`` or ``max_frequency <= 0``.

    Notes
    -----
    Orientations go in batches of about ``_BATCH_BYTES``; in each, the
    kernel's threads take whole orientations and write the half-spectra. The
    coefficients outside the band disc are never written, so that buffer is
    zeroed once. The inverse FFTs (``scipy.fft`` on numba's thread count) are
    ``irfft2`` split into its two passes, pruned to what the result keeps:
    the ``ky`` pass only on the columns below the band (the others are
    zero), the ``kx`` pass only on the ``n`` rows the centre crop keeps.
    This gives ``irfft2`` + ``fftshift`` + crop to float rounding (bit for
    bit with pocketfft, which splits ``irfft2`` the same way) at about half
    the cost.
    """
    threads = _thread_count()
    plan = projection_plan(
        np.asarray(volume, dtype=np.float32),
        rotations,
        xp=np,
        pad=pad,
        max_frequency=max_frequency,
        fftn=functools.partial(scipy.fft.fftn, workers=threads),
    )
    n, size, count = plan.n, plan.size, len(plan.rotations)
    out = np.empty((count, n, n), dtype=np.float32)
    if count == 0:
        return out
    width = size // 2 + 1
    columns = int(plan.kx.max()) + 1
    # Half-spectra, column transforms, kept rows, images: under 4 half-spectra.
    batch = max(1, min(count, _BATCH_BYTES // (4 * size * width * 8)))
    cells = np.flatnonzero(plan.inside)
    planes = np.ascontiguousarray(plan.rotations[:, :2, :], dtype=np.float32)
    gather = _gather_kernel()
    runs = _crop_runs(n, size)
    half = np.zeros((batch, size * width), dtype=np.complex64)
    for start in range(0, count, batch):
        stop = min(start + batch, count)
        slab = half[: stop - start]
        gather(plan.spectrum, planes[start:stop], plan.kx, plan.ky, cells, size, slab)
        spectra = slab.reshape(-1, size, width)[:, :, :columns]
        mixed = scipy.fft.ifft(spectra, axis=1, workers=threads)
        rows = np.concatenate([mixed[:, source] for _, source in runs], axis=1)
        images = scipy.fft.irfft(rows, n=size, axis=2, workers=threads)
        for target, source in runs:
            out[start:stop, :, target] = images[:, :, source]
    return out


def _crop_runs(n: int, size: int) -> tuple[tuple[slice, slice], ...]:
    """Return the (output, input) slices of ``fftshift`` + centre crop, per axis.

    Output pixel ``i`` of the ``n``-box is pixel ``(i - n // 2) mod size`` of
    the unshifted ``size``-box: two contiguous runs.
    """
    h = n // 2
    return (slice(0, h), slice(size - h, size)), (slice(h, n), slice(0, n - h))


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernel on a tiny input."""
    project_numba(np.zeros((4, 4, 4), dtype=np.float32), np.eye(3)[None])
