"""numba kernels of the ``cpu`` backend's search (imported only by ``CpuBackend``)."""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

__all__ = ["cross_value", "polar_sampler", "pruned_psi_max", "refine"]


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


@numba.njit(cache=True, nogil=True, fastmath=True)
def _ring_bounds(
    c_k: Any, n_exact: int, rpi: int, bound: Any, lead: Any
) -> None:  # pragma: no cover
    rows, nj = bound.shape
    for k in range(n_exact):  # ``bound`` holds the tail's bound on entry
        m = np.float32(1.0 if k == 0 else 2.0)
        for r in range(rows):
            for j in range(nj):
                z = c_k[k, r, j]
                bound[r, j] += m * np.sqrt(z.real * z.real + z.imag * z.imag)
    for i in range(rows // rpi):
        for j in range(nj):
            best = bound[i * rpi, j]
            arg = 0
            for s in range(1, rpi):
                v = bound[i * rpi + s, j]
                if v > best:
                    best = v
                    arg = s
            lead[i, j] = arg


@numba.njit(cache=True, nogil=True)
def _column_max(c: Any, arg: Any, val: Any) -> None:  # pragma: no cover
    n_psi, cols = c.shape
    for q in range(cols):
        val[q] = c[0, q]
        arg[q] = 0
    for m in range(1, n_psi):
        for q in range(cols):
            v = c[m, q]
            if v > val[q]:
                val[q] = v
                arg[q] = m


_EXACT_HARMONICS = 16  # harmonics whose |C_k| enters the first bound exactly
_LOW_HARMONICS = 8  # harmonics of the second-tier bound evaluated on a grid
_LOW_SAMPLES = 32  # psi samples of that grid


@numba.njit(cache=True, nogil=True)
def _survivors(
    c_k: Any, bound: Any, lead: Any, lead_val: Any, rpi: int, scale: float
) -> tuple[Any, Any]:  # pragma: no cover
    rows, nj = bound.shape
    n_low = min(_LOW_HARMONICS, c_k.shape[0])
    step = 2.0 * np.pi / _LOW_SAMPLES
    cos_t = np.empty((n_low, _LOW_SAMPLES))
    sin_t = np.empty((n_low, _LOW_SAMPLES))
    for k in range(n_low):
        for p in range(_LOW_SAMPLES):
            cos_t[k, p] = np.cos(k * p * step)
            sin_t[k, p] = np.sin(k * p * step)
    slack = step * step / 8.0
    pair = np.empty(rows * nj, dtype=np.int64)
    row = np.empty(rows * nj, dtype=np.int64)
    count = 0
    for i in range(rows // rpi):
        for j in range(nj):
            floor = lead_val[i * nj + j] * scale
            floor -= 1e-5 * abs(floor) + 1e-12
            for s in range(rpi):
                r = i * rpi + s
                if s == lead[i, j] or bound[r, j] < floor:
                    continue
                # Second tier: the low harmonics' sum on a grid of psi, plus
                # the most a maximum can exceed its nearest sample (half the
                # curvature bound times (step / 2)^2), plus |C_k| of the rest.
                low_abs = 0.0
                curvature = 0.0
                for k in range(n_low):
                    z = c_k[k, r, j]
                    m = 1.0 if k == 0 else 2.0
                    a = m * np.sqrt(z.real * z.real + z.imag * z.imag)
                    low_abs += a
                    curvature += a * k * k
                low_max = -np.inf
                for p in range(_LOW_SAMPLES):
                    v = 0.0
                    for k in range(n_low):
                        z = c_k[k, r, j]
                        m = 1.0 if k == 0 else 2.0
                        v += m * (z.real * cos_t[k, p] - z.imag * sin_t[k, p])
                    low_max = max(low_max, v)
                tier2 = low_max + curvature * slack + (bound[r, j] - low_abs)
                if tier2 >= floor:
                    pair[count] = i * nj + j
                    row[count] = s
                    count += 1
    return pair[:count], row[:count]


@numba.njit(cache=True, nogil=True)
def _merge(
    lead: Any,
    c_lead: Any,
    lead_arg: Any,
    lead_val: Any,
    c_surv: Any,
    surv_arg: Any,
    surv_val: Any,
    surv_pair: Any,
    surv_row: Any,
    which: Any,
    m0: Any,
    around: Any,
) -> None:  # pragma: no cover
    ni, nj = lead.shape
    n_psi = c_lead.shape[0]
    pairs = ni * nj
    best_val = lead_val.copy()
    best_src = np.full(pairs, -1, dtype=np.int64)  # -1: the lead row
    best_row = lead.copy().reshape(pairs)
    for q in range(surv_pair.shape[0]):
        p = surv_pair[q]
        v = surv_val[q]
        if v > best_val[p] or (v == best_val[p] and surv_row[q] < best_row[p]):
            best_val[p] = v
            best_row[p] = surv_row[q]
            best_src[p] = q
    for p in range(pairs):
        i = p // nj
        j = p - i * nj
        which[i, j] = best_row[p]
        q = best_src[p]
        m = lead_arg[p] if q < 0 else surv_arg[q]
        m0[i, j] = m
        for d in range(3):
            t = (m + d - 1) % n_psi
            around[d, i, j] = c_lead[t, p] if q < 0 else c_surv[t, q]


def pruned_psi_max(
    c_k: Any,
    n_harm: int,
    n_psi: int,
    ni: int,
    rows_per_image: int,
    nj: int,
    irfft: Any,
    row_norms: Any = None,
    ref_norms: Any = None,
) -> tuple[Any, Any, Any]:
    """Exact max over psi and rows, skipping rows that provably cannot win.

    ``c(psi) = Re sum_k m_k C_k e^{i k psi}`` never exceeds
    ``sum_k m_k |C_k|``, and ``|C_k|`` never exceeds the product of its
    factors' norms over rings (Cauchy-Schwarz): with the norms given, the
    bound is exact for the first 16 harmonics and uses the norms beyond
    (nearly as tight on class averages, whose high harmonics are weak, and
    five times less to read). Each pair's row with the highest bound is evaluated
    first (one inverse FFT); the other rows are transformed only where their
    bound reaches that row's best sample. Rows passing that test (about 10%
    on class averages, whose correlation is dominated by the rotational
    average) meet a tighter bound: the sum of the first 8 harmonics on 32
    psi samples, plus ``(h / 2)^2 / 2`` times its curvature bound
    ``sum_k m_k k^2 |C_k|`` (a maximum lies within ``h / 2`` of a sample and
    has zero slope there), plus ``sum_k m_k |C_k|`` of the other harmonics;
    about 4% of rows are transformed in all (phantom class averages, 64², band
    0.25: ``benchmarks/bench_search.py``).
    Same result as ``sigcore.backends.polar._psi_max`` on the transformed
    table, ties included (first row, first sample), up to float rounding of
    the bound (a relative margin of 1e-5 keeps borderline rows).

    Parameters
    ----------
    c_k : ndarray, shape (P // 2 + 1, ni * rows_per_image, nj), complex64
        Harmonic coefficients; rows ``n_harm:`` are zero.
    n_harm, n_psi : int
        Harmonics used and psi samples.
    ni, rows_per_image, nj : int
        Images, rows (shift/mirror) per image and references of the chunk.
    irfft : callable
        ``irfft(x, n=, axis=0)`` (e.g. ``scipy.fft.irfft``).
    row_norms, ref_norms : ndarray, shape (K, ni * rows_per_image), (K, nj)
        Optional norms over rings of the two factors of each ``C_k``.

    Returns
    -------
    which, m0, around
        As ``sigcore.backends.polar._psi_max``.
    """
    rows = ni * rows_per_image
    exact = n_harm if row_norms is None else min(_EXACT_HARMONICS, n_harm)
    if exact < n_harm:
        # Cauchy-Schwarz per harmonic, one small product for all pairs.
        tail = (2.0 * row_norms[exact:n_harm]).T @ ref_norms[exact:n_harm]
        bound = np.ascontiguousarray(tail, dtype=np.float32)
    else:
        bound = np.zeros((rows, nj), dtype=np.float32)
    lead = np.empty((ni, nj), dtype=np.int64)
    _ring_bounds(c_k, exact, rows_per_image, bound, lead)
    flat_row = (np.arange(ni)[:, None] * rows_per_image + lead).ravel()
    flat_col = np.tile(np.arange(nj), ni)
    c_lead, lead_arg, lead_val = _transform_max(c_k, flat_row, flat_col, n_psi, irfft)
    pair, row = _survivors(c_k, bound, lead, lead_val, rows_per_image, float(n_psi))
    s_rows = (pair // nj) * rows_per_image + row
    c_surv, surv_arg, surv_val = _transform_max(c_k, s_rows, pair % nj, n_psi, irfft)
    which = np.empty((ni, nj), dtype=np.int64)
    m0 = np.empty((ni, nj), dtype=np.int64)
    around = np.empty((3, ni, nj), dtype=np.float32)
    _merge(
        lead, c_lead, lead_arg, lead_val, c_surv, surv_arg, surv_val, pair, row,
        which, m0, around,
    )  # fmt: skip
    return which, m0, around


def _transform_max(
    c_k: Any, rows: Any, cols: Any, n_psi: int, irfft: Any
) -> tuple[Any, Any, Any]:
    """Inverse FFT of the listed columns and each column's max: (c, arg, val)."""
    c = np.ascontiguousarray(irfft(c_k[:, rows, cols], n=n_psi, axis=0))
    arg = np.empty(c.shape[1], dtype=np.int64)
    val = np.empty(c.shape[1], dtype=np.float32)
    _column_max(c, arg, val)
    return c, arg, val


@numba.njit(cache=True, nogil=True, fastmath=True)
def _harmonic_sum(
    coef: Any, q: int, psi: float, order: int
) -> float:  # pragma: no cover
    """``sum_k m_k d^order/dpsi^order Re(coef[k, q] e^{i k psi})``, m = 1, 2, 2, ..."""
    step = np.cos(psi) + 1j * np.sin(psi)
    z = 1.0 + 0.0j
    total = 0.0
    for k in range(coef.shape[0]):
        term = complex(coef[k, q]) * z
        m = 1.0 if k == 0 else 2.0
        if order == 0:
            total += m * term.real
        elif order == 1:
            total -= m * k * term.imag
        else:
            total -= m * k * k * term.real
        z *= step
    return total


@numba.njit(cache=True, nogil=True)
def _refine_kernel(
    coef: Any, psi0: Any, step: float, psi_out: Any, val_out: Any
) -> None:  # pragma: no cover
    for q in range(coef.shape[1]):
        start = float(psi0[q])
        x = start
        for _ in range(3):
            d1 = _harmonic_sum(coef, q, x, 1)
            d2 = _harmonic_sum(coef, q, x, 2)
            delta = -d1 / d2 if d2 < 0 else 0.0
            x = min(max(x + delta, start - step), start + step)
        value = _harmonic_sum(coef, q, x, 0)
        at_start = _harmonic_sum(coef, q, start, 0)
        if value >= at_start:
            psi_out[q] = x
            val_out[q] = value
        else:
            psi_out[q] = start
            val_out[q] = at_start


def refine(coef: Any, psi0: Any, step: float) -> tuple[Any, Any]:
    """Newton refinement of the harmonic sum (``sigcore.backends.polar._refine``).

    Same steps, in float64 with the phase by recurrence.
    """
    psi = np.empty(coef.shape[1], dtype=np.float32)
    value = np.empty(coef.shape[1], dtype=np.float32)
    _refine_kernel(np.ascontiguousarray(coef), psi0, float(step), psi, value)
    return psi, value


@numba.njit(cache=True, nogil=True, fastmath=True)
def _cross_kernel(
    a: Any, b_t: Any, rows: Any, cols: Any, psi: Any, out: Any
) -> None:  # pragma: no cover
    n_harm, _, n_rings = a.shape
    for q in range(rows.shape[0]):
        row = rows[q]
        col = cols[q]
        step = np.cos(psi[q]) + 1j * np.sin(psi[q])
        z = 1.0 + 0.0j
        total = 0.0
        for k in range(n_harm):
            acc = np.complex64(0)
            for r in range(n_rings):  # contiguous in both operands
                acc += a[k, row, r] * b_t[col, k, r]
            m = 1.0 if k == 0 else 2.0
            total += m * (complex(acc) * z).real
            z *= step
        out[q] = total


def cross_value(
    a: Any, b: Any, weight: Any, j0: int, rows: Any, cols: Any, psi: Any
) -> Any:
    """Ring-weighted cross term of listed pairs at their psi.

    ``Re sum_k m_k e^{i k psi} sum_r weight_r a[k, row, r] b[k, r, j0 + col]``,
    the numba form of the default in ``sigcore.backends.polar``.
    """
    width = int(cols.max()) + 1 if cols.shape[0] else 0
    b_t = np.ascontiguousarray(
        np.transpose(b[:, :, j0 : j0 + width] * weight[None, :, None], (2, 0, 1))
    )
    out = np.empty(rows.shape[0], dtype=np.float32)
    _cross_kernel(a, b_t, rows, cols, psi, out)
    return out
