"""The ``cpu`` backend's image rows: angular harmonics as real products, not FFTs.

:func:`sigcore.backends.polar.search_polar` forms, for every image, mirror and
shift, the angular harmonics ``a_k = (1 / L) sum_n x_n e^{2 pi i n k / L}`` of
the ring samples ``x_n`` (the conjugated, normalised image samples times the
conjugate shift phase) with one inverse FFT per ring. The image is real, so
the samples of the second half circle are the conjugates of the first
(``x_{n + L/2} = conj(x_n)``), and so::

    a_k = (2 / L) sum_{n < L/2} Re(x_n) e^{2 pi i n k / L}        (k even)
    a_k = (2 i / L) sum_{n < L/2} Im(x_n) e^{2 pi i n k / L}      (k odd)

Each ring then needs two real products of its ``L/2`` samples with a fixed
matrix, for the harmonics it keeps only: one GEMM per group of rings sharing a
cut-off (about 2.5x faster than the FFTs at 64², which also form the harmonics
no ring keeps). The results are written straight into the layouts of
:class:`sigcore.backends.pruned_search.PrunedRingSearch`: the packed planes of
:func:`sigcore.backends._numba_kernels.pack_rings`, the dense harmonics and
the third tier's planes. Same values as the FFT path up to float rounding.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from sigcore.backends.polar import ThreadScratch

__all__ = [
    "RowHarmonics",
    "RowTables",
    "phase_planes",
    "row_harmonics",
    "row_tables",
    "rows_from_planes",
]


@dataclass(frozen=True)
class RowTables:
    """Fixed factors of the image rows' harmonics (see the module notes).

    Attributes
    ----------
    groups : tuple of (r0, r1, even, odd)
        Rings ``r0:r1`` keep the same harmonics; ``even`` (L/2, 2 n_even) and
        ``odd`` (L/2, 2 n_odd) float32 map the real (imaginary) parts of their
        samples to the real then imaginary parts of their even (odd)
        harmonics.
    ring_end : ndarray, shape (R,), int64
        Harmonics ``0 .. ring_end[r] - 1`` kept on ring ``r``.
    offsets : ndarray, shape (R + 1,), int64
        Where each ring starts in the packed planes.
    scratch_per_row : int
        float32 scratch per row for the half-circle samples of the largest
        group of rings (:func:`row_harmonics`).
    """

    groups: tuple[tuple[int, int, Any, Any], ...]
    ring_end: Any
    offsets: Any
    scratch_per_row: int


@functools.lru_cache(maxsize=8)
def row_tables(n_angles: int, ring_end: tuple[int, ...]) -> RowTables:
    """The DFT factors of each cut-off group (cached per grid)."""
    ends = np.asarray(ring_end, dtype=np.int64)
    half = n_angles // 2
    n = np.arange(half)[:, None]
    groups = []
    r0 = 0
    for r in range(1, len(ends) + 1):
        if r < len(ends) and ends[r] == ends[r0]:
            continue
        k = np.arange(int(ends[r0]))
        angle = 2.0 * np.pi * n * k[None, :] / n_angles
        scale = 2.0 / n_angles
        cos, sin = scale * np.cos(angle), scale * np.sin(angle)
        # k even: a_k = Re(x) . (cos + i sin); k odd: a_k = Im(x) . (-sin + i cos).
        even = np.concatenate([cos[:, 0::2], sin[:, 0::2]], axis=1)
        odd = np.concatenate([-sin[:, 1::2], cos[:, 1::2]], axis=1)
        groups.append((r0, r, _frozen(even, np.float32), _frozen(odd, np.float32)))
        r0 = r
    offsets = np.concatenate([[0], np.cumsum(ends)])
    return RowTables(
        groups=tuple(groups),
        ring_end=_frozen(ends, np.int64),
        offsets=_frozen(offsets, np.int64),
        scratch_per_row=max((r1 - r0) * n_angles for r0, r1, *_ in groups),
    )


def _frozen(array: Any, dtype: Any) -> Any:
    """A contiguous read-only copy (the tables are cached and shared)."""
    out = np.ascontiguousarray(array, dtype=dtype)
    out.setflags(write=False)
    return out


def phase_planes(phase_conj: Any, tables: RowTables) -> list[tuple[Any, Any]]:
    """Half-circle real and imaginary planes of the conjugate shift phases.

    Parameters
    ----------
    phase_conj : ndarray, shape (S, R, L), complex64
    tables : RowTables

    Returns
    -------
    list of (ndarray, ndarray)
        Per group of rings, (S, rings, L/2) float32 each, contiguous.
    """
    half = phase_conj[:, :, : phase_conj.shape[2] // 2]
    return [
        (
            np.ascontiguousarray(half[:, r0:r1].real, dtype=np.float32),
            np.ascontiguousarray(half[:, r0:r1].imag, dtype=np.float32),
        )
        for r0, r1, *_ in tables.groups
    ]


@numba.njit(cache=True, nogil=True, fastmath=True)
def _shifted_halves(
    s_re: Any, s_im: Any, inv_norm: Any, p_re: Any, p_im: Any, out: Any
) -> None:  # pragma: no cover
    """``out[r, row] = [Re x, Im x]`` of ``x = conj(s) / norm * phase``, half circle.

    ``s_*`` (ni, M, R, L/2) image samples, ``p_*`` (S, R, L/2) the conjugate
    shift phases (any ring range, the same in both); row ``(i M + m) S + s``.
    """
    ni, nm, nr, half = s_re.shape
    ns = p_re.shape[0]
    u_re = np.empty(half, dtype=np.float32)
    u_im = np.empty(half, dtype=np.float32)
    for i in range(ni):
        scale = inv_norm[i]
        for m in range(nm):
            for r in range(nr):
                for t in range(half):
                    u_re[t] = s_re[i, m, r, t] * scale
                    u_im[t] = -s_im[i, m, r, t] * scale
                for s in range(ns):
                    row = (i * nm + m) * ns + s
                    for t in range(half):
                        a = p_re[s, r, t]
                        b = p_im[s, r, t]
                        out[r, row, t] = u_re[t] * a - u_im[t] * b
                        out[r, row, half + t] = u_re[t] * b + u_im[t] * a


@numba.njit(cache=True, nogil=True, fastmath=True)
def _unpack(
    y: Any, ring_start: Any, ring_end: Any, offsets: Any, a_re: Any, a_im: Any
) -> None:  # pragma: no cover
    """Per-ring products -> the rows' packed planes, a row at a time.

    Ring ``r`` with ``e = ring_end[r]`` harmonics holds, for row ``row``,
    ``[Re a_0, Re a_2, .., Im a_0, Im a_2, .., Re a_1, Re a_3, .., Im a_1, ..]``
    at ``y[ring_start[r] + row * 2 e :]`` (:func:`row_tables`); each row's
    planes are written whole (contiguous, cache-line at a time).
    """
    for row in range(a_re.shape[0]):
        dst_re = a_re[row]
        dst_im = a_im[row]
        for r in range(ring_end.shape[0]):
            e = ring_end[r]
            n_even = (e + 1) // 2
            n_odd = e // 2
            src = y[ring_start[r] + row * 2 * e : ring_start[r] + (row + 1) * 2 * e]
            start = offsets[r]
            for j in range(n_even):
                dst_re[start + 2 * j] = src[j]
                dst_im[start + 2 * j] = src[n_even + j]
            for j in range(n_odd):
                dst_re[start + 2 * j + 1] = src[2 * n_even + j]
                dst_im[start + 2 * j + 1] = src[2 * n_even + n_odd + j]


@numba.njit(cache=True, nogil=True, fastmath=True)
def _derive(
    ring_end: Any,
    offsets: Any,
    a_re: Any,
    a_im: Any,
    norm2: Any,
    low: Any,
    mid_re: Any,
    mid_im: Any,
    mid_ring: int,
    mid_k0: int,
) -> None:  # pragma: no cover
    """Norms per harmonic, dense harmonics and third-tier planes of packed rows.

    A row at a time (its planes stay in cache; the ring-group order of
    :func:`_unpack` would write these strided, 3x slower).
    """
    n_low = low.shape[0]
    n_mid = mid_re.shape[1]
    for row in range(a_re.shape[0]):
        x_re = a_re[row]
        x_im = a_im[row]
        acc = norm2[row]
        for r in range(ring_end.shape[0]):
            e = ring_end[r]
            start = offsets[r]
            for k in range(e):
                re = x_re[start + k]
                im = x_im[start + k]
                acc[k] += re * re + im * im
            for k in range(n_low):  # zero beyond the ring's cut-off
                low[k, row, r] = x_re[start + k] + 1j * x_im[start + k] if k < e else 0
            if r >= mid_ring:
                for k in range(n_mid):
                    mid_re[row, k, r - mid_ring] = x_re[start + mid_k0 + k]
                    mid_im[row, k, r - mid_ring] = x_im[start + mid_k0 + k]


@dataclass
class RowHarmonics:
    """An image chunk's rows in the pruned search's layouts."""

    a_re: Any  # (rows, P) packed planes
    a_im: Any
    norm2: Any  # (rows, K): sum over the rings keeping k of |a_k|^2
    low: Any  # (n_low, rows, R) complex64, zero beyond each ring's cut-off
    mid: tuple[Any, Any] | None  # (rows, n_mid, R') real and imaginary


def row_harmonics(
    samples: Any,
    inv_norm: Any,
    phase: Sequence[tuple[Any, Any]],
    tables: RowTables,
    n_harmonics: int,
    n_low: int,
    mid: tuple[int, int, int] | None,
    scratch: ThreadScratch,
) -> RowHarmonics:
    """Harmonics of an image chunk's (mirror, shift) rows, FFT-free.

    Parameters
    ----------
    samples : ndarray, shape (ni, M, R, L), complex64
        Polar samples of the images (and mirrors).
    inv_norm : ndarray, shape (ni,), float32
        ``1 / ||image||``.
    phase : sequence of (ndarray, ndarray)
        Real and imaginary parts of the conjugate shift phases on the half
        circle, per group of rings (:func:`phase_planes`).
    tables : RowTables
    n_harmonics : int
        ``K``.
    n_low : int
        Harmonics returned densely.
    mid : tuple of int or None
        ``(first ring, first harmonic, count)`` of the third tier's planes.
    scratch : ThreadScratch
        Where the working arrays and the results come from (valid until the
        thread's next chunk, no fresh pages per chunk).

    Returns
    -------
    RowHarmonics
    """
    ni, nm, n_rings, n_angles = samples.shape
    half = n_angles // 2
    rows = ni * nm * phase[0][0].shape[0]
    first = samples[..., :half]
    s_re = np.ascontiguousarray(first.real)
    s_im = np.ascontiguousarray(first.imag)
    inv_norm = np.asarray(inv_norm, dtype=np.float32)
    packed = (rows, int(tables.offsets[-1]))
    a_re = scratch.get("rows_re", packed, np.float32)
    a_im = scratch.get("rows_im", packed, np.float32)
    buffer = scratch.get("rows_work", (rows * tables.scratch_per_row,), np.float32)
    # A group of rings at a time: its samples and products stay in cache.
    # The products of every group are kept and unpacked a row at a time:
    # writing whole rows of the planes is 3x faster than a group's columns.
    y = scratch.get("rows_products", (2 * int(tables.offsets[-1]) * rows,), np.float32)
    ring_start = np.empty(n_rings, dtype=np.int64)
    at = 0
    for g, (r0, r1, even, odd) in enumerate(tables.groups):
        n_even, n_odd = even.shape[1], odd.shape[1]
        width = n_even + n_odd
        x = buffer[: (r1 - r0) * rows * n_angles].reshape(r1 - r0, rows, n_angles)
        _shifted_halves(
            np.ascontiguousarray(s_re[:, :, r0:r1]),
            np.ascontiguousarray(s_im[:, :, r0:r1]),
            inv_norm, *phase[g], x,
        )  # fmt: skip
        block = y[at : at + (r1 - r0) * rows * width]
        ring_start[r0:r1] = at + np.arange(r1 - r0) * rows * width
        at += block.size
        xs, ys = x.reshape(-1, n_angles), block.reshape(-1, width)
        np.matmul(xs[:, :half], even, out=ys[:, :n_even])
        np.matmul(xs[:, half:], odd, out=ys[:, n_even:])
    _unpack(y, ring_start, tables.ring_end, tables.offsets, a_re, a_im)
    return rows_from_planes(a_re, a_im, tables, n_harmonics, n_low, mid, scratch)


def rows_from_planes(
    a_re: Any,
    a_im: Any,
    tables: RowTables,
    n_harmonics: int,
    n_low: int,
    mid: tuple[int, int, int] | None,
    scratch: ThreadScratch,
) -> RowHarmonics:
    """The rows' norms, dense harmonics and third-tier planes from packed planes.

    What :func:`row_harmonics` derives last (one pass, about a twentieth of
    its time): a search that kept only the packed planes of a chunk
    (``(rows, P)`` float32 each) gets the rest again from here.

    Parameters
    ----------
    a_re, a_im : ndarray, shape (rows, P), float32
        Packed planes (:func:`sigcore.backends._numba_kernels.pack_rings` layout).
    tables : RowTables
    n_harmonics, n_low, mid, scratch
        As :func:`row_harmonics`.

    Returns
    -------
    RowHarmonics
        With ``a_re`` and ``a_im`` as given.
    """
    rows = a_re.shape[0]
    n_rings = len(tables.ring_end)
    norm2 = scratch.get("rows_norm2", (rows, n_harmonics), np.float32)
    norm2.fill(0.0)
    low = scratch.get("rows_low", (n_low, rows, n_rings), np.complex64)
    mid_ring, mid_k0, n_mid = (n_rings, 0, 0) if mid is None else mid
    planes = (rows, n_mid, n_rings - mid_ring)
    mid_re = scratch.get("rows_mid_re", planes, np.float32)
    mid_im = scratch.get("rows_mid_im", planes, np.float32)
    _derive(
        tables.ring_end, tables.offsets, a_re, a_im, norm2, low, mid_re, mid_im,
        mid_ring, mid_k0,
    )  # fmt: skip
    return RowHarmonics(
        a_re, a_im, norm2, low, None if mid is None else (mid_re, mid_im)
    )
