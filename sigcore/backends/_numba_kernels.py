"""numba kernels of the ``cpu`` backend's search (imported only by ``CpuBackend``)."""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from sigcore.backends.polar import _PAD

__all__ = [
    "cross_value",
    "pack_rings",
    "polar_sampler",
    "pruned_best",
    "refine",
    "warp_pairs",
]


@numba.njit(cache=True, nogil=True, fastmath=True)
def _sample(
    spectra: Any, index: Any, weight: Any, out: Any
) -> None:  # pragma: no cover
    # Serial: the search runs the batches on its own threads (a parallel
    # kernel called from several threads needs a thread-safe numba layer).
    b, q = out.shape
    taps = index.shape[1]
    for t in range(b * q):
        i = t // q
        p = t - i * q
        acc = np.complex64(0)
        for s in range(taps):
            acc += spectra[i, index[p, s]] * weight[p, s]
        out[i, p] = acc


@numba.njit(cache=True, nogil=True, inline="always")
def _keys_tap(t: float, inner: bool) -> float:  # pragma: no cover
    """The Keys kernel's inner (``|t| <= 1``) or outer branch at ``t >= 0``."""
    if inner:
        return (1.5 * t - 2.5) * t * t + 1.0
    return ((-0.5 * t + 2.5) * t - 4.0) * t + 2.0


@numba.njit(cache=True, nogil=True, parallel=True)
def _warp(
    spectra: Any,
    which: Any,
    inside: Any,
    dest: Any,
    psi: Any,
    mirror: Any,
    shifts: Any,
    filt: Any,
    n: int,
    out: Any,
) -> None:  # pragma: no cover
    # The operations of polar._warped, in its order, a point at a time; the
    # phase factors from per-pair tables over the n integer frequencies.
    # Parallel over pairs: called from the searching thread only.
    size = _PAD * n
    half = n // 2
    for q in numba.prange(out.shape[0]):
        c = np.cos(psi[q])
        s = np.sin(psi[q])
        sign = -1.0 if mirror[q] else 1.0
        alpha = (c * shifts[q, 0] - s * shifts[q, 1]) / n
        beta = (s * shifts[q, 0] + c * shifts[q, 1]) / n
        ex = np.empty(n, dtype=np.complex128)
        ey = np.empty(n, dtype=np.complex128)
        for j in range(n):
            ex[j] = np.exp(-2j * np.pi * alpha * float(j - half))
            ey[j] = np.exp(-2j * np.pi * beta * float(j - half))
        wx = np.empty(4, dtype=np.float64)
        wy = np.empty(4, dtype=np.float64)
        ix = np.empty(4, dtype=np.int64)
        iy = np.empty(4, dtype=np.int64)
        row = spectra[which[q]]
        out[q, :] = 0
        for t in range(inside.shape[0]):
            jx = inside[t] % n
            jy = inside[t] // n
            kx = float(jx - half)
            ky = float(jy - half)
            ux = _PAD * sign * (c * kx + s * ky)
            uy = _PAD * (-s * kx + c * ky)
            fx = np.floor(ux)
            fy = np.floor(uy)
            for d in range(4):
                inner = d == 1 or d == 2
                wx[d] = _keys_tap(abs(ux - (fx + (d - 1))), inner)
                wy[d] = _keys_tap(abs(uy - (fy + (d - 1))), inner)
                i = int(fx) + d - 1
                ix[d] = i + size if i < 0 else i
                i = int(fy) + d - 1
                iy[d] = (i + size if i < 0 else i) * size
            acc = np.complex64(0)
            for b in range(4):
                for a in range(4):
                    acc += row[iy[b] + ix[a]] * np.float32(wx[a] * wy[b])
            out[q, dest[t]] = acc * np.complex64(ex[jx] * ey[jy] * filt[t])


def warp_pairs(
    spectra: Any,
    which: Any,
    inside: Any,
    dest: Any,
    psi: Any,
    mirror: Any,
    shifts: Any,
    filt: Any,
    n: int,
) -> Any:
    """``polar._warped`` as one parallel numba loop (same arguments, no ``xp``)."""
    out = np.empty((len(psi), n * n), dtype=np.complex64)
    _warp(spectra, which, inside, dest, psi, mirror, shifts, filt, n, out)
    return out


def polar_sampler(spectra: Any, index: Any, weight: Any) -> Any:
    """Interpolate ``spectra`` (b, Q0) at the plan's points: (b, Q) complex64."""
    out = np.empty((spectra.shape[0], index.shape[0]), dtype=np.complex64)
    _sample(spectra, index, weight, out)
    return out


@numba.njit(cache=True, nogil=True, fastmath=True)
def _ring_bounds(c_k: Any, rpi: int, bound: Any, lead: Any) -> None:  # pragma: no cover
    rows, nj = bound.shape
    for k in range(c_k.shape[0]):  # ``bound`` holds the tail's bound on entry
        m = np.float32(1.0 if k == 0 else 2.0)
        for r in range(rows):
            for j in range(nj):
                z = c_k[k, r, j]
                bound[r, j] += m * np.sqrt(z.real * z.real + z.imag * z.imag)
    best = np.empty(nj, dtype=np.float32)  # each pair's highest bound so far
    for i in range(rows // rpi):
        first = bound[i * rpi]
        for j in range(nj):
            best[j] = first[j]
            lead[i, j] = 0
        for s in range(1, rpi):  # rows outer, columns inner: contiguous
            row = bound[i * rpi + s]
            for j in range(nj):
                if row[j] > best[j]:  # strict: the first row wins ties
                    best[j] = row[j]
                    lead[i, j] = s


@numba.njit(cache=True, nogil=True)
def _row_max(c: Any, arg: Any, val: Any) -> None:  # pragma: no cover
    cols, n_psi = c.shape
    for q in range(cols):
        best = c[q, 0]
        at = 0
        for m in range(1, n_psi):
            if c[q, m] > best:
                best = c[q, m]
                at = m
        val[q] = best
        arg[q] = at


_LOW_HARMONICS = 8  # harmonics of the second-tier bound evaluated on a grid
_LOW_SAMPLES = 32  # psi samples of that grid


@numba.njit(cache=True, nogil=True, inline="always")
def _floor(value: float, scale: float) -> float:  # pragma: no cover
    """A pair's best value so far times ``P``, less the margin (relative 1e-5)
    that keeps rows whose bound only float rounding puts below it."""
    floor = value * scale
    return floor - (1e-5 * abs(floor) + 1e-12)


@numba.njit(cache=True, nogil=True)
def _floors(values: Any, pairs: Any, scale: float) -> Any:  # pragma: no cover
    """:func:`_floor` of the listed pairs' values, float32."""
    out = np.empty(pairs.shape[0], dtype=np.float32)
    for q in range(pairs.shape[0]):
        out[q] = _floor(values[pairs[q]], scale)
    return out


@numba.njit(cache=True, nogil=True)
def _psi_table(n_harm: int, n_samples: int) -> tuple[Any, Any]:  # pragma: no cover
    """``m_k cos(k psi_p)`` and ``m_k sin(k psi_p)`` on ``n_samples`` psi, float32."""
    step = 2.0 * np.pi / n_samples
    cos_t = np.empty((n_harm, n_samples), dtype=np.float32)
    sin_t = np.empty((n_harm, n_samples), dtype=np.float32)
    for k in range(n_harm):
        m = 1.0 if k == 0 else 2.0
        for p in range(n_samples):
            cos_t[k, p] = m * np.cos(k * p * step)
            sin_t[k, p] = m * np.sin(k * p * step)
    return cos_t, sin_t


_GRID_BLOCK = 256  # columns per block of the psi grid (their factors stay in L1)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _grid_max(
    z_re: Any, z_im: Any, cos_t: Any, sin_t: Any, n: int, values: Any, best: Any
) -> None:  # pragma: no cover
    """``best[q]``: the harmonic sum's maximum on the table's psi samples, q < n.

    ``z_re[k, q], z_im[k, q]`` hold column q's first harmonics; evaluated
    across the columns (contiguous, vectorised) in blocks of
    :data:`_GRID_BLOCK`, 8 harmonics per pass (the second tier's sum written
    out, :func:`_grid_max8`): 2-4x faster than a pass per harmonic, which
    other counts take.
    """
    n_harm, n_samples = cos_t.shape
    if n_harm % 8 == 0 and n <= _GRID_BLOCK:  # one block, rows contiguous from 0
        if n_harm == 8:
            _grid_max8(z_re, z_im, cos_t, sin_t, n, best)
        else:
            _grid_max_by8(z_re, z_im, cos_t, sin_t, n, values, best)
        return
    if n_harm % 8 == 0:
        block_re = np.empty((n_harm, _GRID_BLOCK), dtype=np.float32)
        block_im = np.empty((n_harm, _GRID_BLOCK), dtype=np.float32)
        block_values = np.empty(_GRID_BLOCK, dtype=np.float32)
        block_best = np.empty(_GRID_BLOCK, dtype=np.float32)
        for q0 in range(0, n, _GRID_BLOCK):
            nb = min(_GRID_BLOCK, n - q0)
            for k in range(n_harm):
                for t in range(nb):
                    block_re[k, t] = z_re[k, q0 + t]
                    block_im[k, t] = z_im[k, q0 + t]
            if n_harm == 8:
                _grid_max8(block_re, block_im, cos_t, sin_t, nb, block_best)
            else:
                _grid_max_by8(
                    block_re, block_im, cos_t, sin_t, nb, block_values, block_best
                )
            for t in range(nb):
                best[q0 + t] = block_best[t]
        return
    best[:n] = -np.inf
    for p in range(n_samples):
        values[:n] = 0.0
        for k in range(n_harm):
            ck = cos_t[k, p]
            sk = sin_t[k, p]
            for q in range(n):
                values[q] += z_re[k, q] * ck - z_im[k, q] * sk
        for q in range(n):
            best[q] = max(best[q], values[q])


@numba.njit(cache=True, nogil=True, fastmath=True)
def _grid_max8(
    z_re: Any, z_im: Any, cos_t: Any, sin_t: Any, n: int, best: Any
) -> None:  # pragma: no cover
    """``best[q]``: max over the samples of ``sum_{k < 8} Re(z_k e^{i k psi})``."""
    r0 = z_re[0]
    i0 = z_im[0]
    r1 = z_re[1]
    i1 = z_im[1]
    r2 = z_re[2]
    i2 = z_im[2]
    r3 = z_re[3]
    i3 = z_im[3]
    r4 = z_re[4]
    i4 = z_im[4]
    r5 = z_re[5]
    i5 = z_im[5]
    r6 = z_re[6]
    i6 = z_im[6]
    r7 = z_re[7]
    i7 = z_im[7]
    for q in range(n):
        best[q] = -np.inf
    for p in range(cos_t.shape[1]):
        c0 = cos_t[0, p]
        s0 = sin_t[0, p]
        c1 = cos_t[1, p]
        s1 = sin_t[1, p]
        c2 = cos_t[2, p]
        s2 = sin_t[2, p]
        c3 = cos_t[3, p]
        s3 = sin_t[3, p]
        c4 = cos_t[4, p]
        s4 = sin_t[4, p]
        c5 = cos_t[5, p]
        s5 = sin_t[5, p]
        c6 = cos_t[6, p]
        s6 = sin_t[6, p]
        c7 = cos_t[7, p]
        s7 = sin_t[7, p]
        for q in range(n):  # from 0: no index wrap-around test, vectorised
            v = (
                r0[q] * c0
                - i0[q] * s0
                + r1[q] * c1
                - i1[q] * s1
                + r2[q] * c2
                - i2[q] * s2
                + r3[q] * c3
                - i3[q] * s3
                + r4[q] * c4
                - i4[q] * s4
                + r5[q] * c5
                - i5[q] * s5
                + r6[q] * c6
                - i6[q] * s6
                + r7[q] * c7
                - i7[q] * s7
            )
            best[q] = max(best[q], v)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _grid_max_by8(
    z_re: Any, z_im: Any, cos_t: Any, sin_t: Any, n: int, values: Any, best: Any
) -> None:  # pragma: no cover
    """As :func:`_grid_max8` for a multiple of 8 harmonics, 8 per pass."""
    for q in range(n):
        best[q] = -np.inf
    for p in range(cos_t.shape[1]):
        for k0 in range(0, cos_t.shape[0], 8):
            c0, s0 = cos_t[k0, p], sin_t[k0, p]
            c1, s1 = cos_t[k0 + 1, p], sin_t[k0 + 1, p]
            c2, s2 = cos_t[k0 + 2, p], sin_t[k0 + 2, p]
            c3, s3 = cos_t[k0 + 3, p], sin_t[k0 + 3, p]
            c4, s4 = cos_t[k0 + 4, p], sin_t[k0 + 4, p]
            c5, s5 = cos_t[k0 + 5, p], sin_t[k0 + 5, p]
            c6, s6 = cos_t[k0 + 6, p], sin_t[k0 + 6, p]
            c7, s7 = cos_t[k0 + 7, p], sin_t[k0 + 7, p]
            first = k0 == 0
            for q in range(n):  # 2D indices from 0: vectorised
                v = z_re[k0, q] * c0 - z_im[k0, q] * s0
                v += z_re[k0 + 1, q] * c1 - z_im[k0 + 1, q] * s1
                v += z_re[k0 + 2, q] * c2 - z_im[k0 + 2, q] * s2
                v += z_re[k0 + 3, q] * c3 - z_im[k0 + 3, q] * s3
                v += z_re[k0 + 4, q] * c4 - z_im[k0 + 4, q] * s4
                v += z_re[k0 + 5, q] * c5 - z_im[k0 + 5, q] * s5
                v += z_re[k0 + 6, q] * c6 - z_im[k0 + 6, q] * s6
                v += z_re[k0 + 7, q] * c7 - z_im[k0 + 7, q] * s7
                if not first:
                    v += values[q]
                values[q] = v
        for q in range(n):
            best[q] = max(best[q], values[q])


@numba.njit(cache=True, nogil=True, fastmath=True)
def _survivors(
    c_k: Any, bound: Any, lead: Any, lead_val: Any, rpi: int, scale: float
) -> tuple[Any, Any, Any]:  # pragma: no cover
    rows, nj = bound.shape
    n_low = min(_LOW_HARMONICS, c_k.shape[0])
    step = 2.0 * np.pi / _LOW_SAMPLES
    cos_t, sin_t = _psi_table(n_low, _LOW_SAMPLES)
    slack = np.float32(step * step / 8.0)
    # First bound: every (row, column) but each pair's lead row, against the
    # lead's value. The candidates of all rows are then evaluated together,
    # a block at a time (long contiguous runs for the psi grid, not a few
    # columns per row).
    cell = np.empty(rows * nj, dtype=np.int64)
    floors = np.empty(rows * nj, dtype=np.float32)
    n = 0
    for i in range(rows // rpi):
        for s in range(rpi):
            r = i * rpi + s
            for j in range(nj):
                floor = _floor(lead_val[i * nj + j], scale)
                if s == lead[i, j] or bound[r, j] < floor:
                    continue
                cell[n] = r * nj + j
                floors[n] = floor
                n += 1
    # Second tier: the low harmonics' sum on a grid of psi, plus the most a
    # maximum can exceed its nearest sample (half the curvature bound times
    # (step / 2)^2), plus |C_k| of the rest.
    z_re = np.empty((n_low, _GRID_BLOCK), dtype=np.float32)
    z_im = np.empty((n_low, _GRID_BLOCK), dtype=np.float32)
    extra = np.empty(_GRID_BLOCK, dtype=np.float32)
    values = np.empty(_GRID_BLOCK, dtype=np.float32)
    best = np.empty(_GRID_BLOCK, dtype=np.float32)
    pair = np.empty(n, dtype=np.int64)
    row = np.empty(n, dtype=np.int64)
    tier = np.empty(n, dtype=np.float32)
    count = 0
    for q0 in range(0, n, _GRID_BLOCK):
        nb = min(_GRID_BLOCK, n - q0)
        for t in range(nb):
            r = cell[q0 + t] // nj
            j = cell[q0 + t] - r * nj
            extra[t] = bound[r, j]
            for k in range(n_low):
                z = c_k[k, r, j]
                z_re[k, t] = z.real
                z_im[k, t] = z.imag
        for k in range(n_low):
            m = np.float32(1.0 if k == 0 else 2.0)
            curve = np.float32(k * k) * slack
            zr = z_re[k]
            zi = z_im[k]
            for t in range(nb):
                a = m * np.sqrt(zr[t] * zr[t] + zi[t] * zi[t])
                extra[t] += a * curve - a
        _grid_max(z_re, z_im, cos_t, sin_t, nb, values, best)
        for t in range(nb):
            tier2 = best[t] + extra[t]
            if tier2 >= floors[q0 + t]:
                r = cell[q0 + t] // nj
                i = r // rpi
                pair[count] = i * nj + cell[q0 + t] - r * nj
                row[count] = r - i * rpi
                tier[count] = tier2
                count += 1
    return pair[:count], row[:count], tier[:count]


@numba.njit(cache=True, nogil=True)
def _split_candidates(
    pair: Any, tier: Any, n_pairs: int
) -> tuple[Any, Any]:  # pragma: no cover
    """Each pair's candidate with the highest bound (first on ties), and the rest."""
    top = np.full(n_pairs, -1, dtype=np.int64)
    for q in range(pair.shape[0]):
        t = top[pair[q]]
        if t < 0 or tier[q] > tier[t]:
            top[pair[q]] = q
    first = np.empty(pair.shape[0], dtype=np.int64)
    rest = np.empty(pair.shape[0], dtype=np.int64)
    n_first = 0
    n_rest = 0
    for q in range(pair.shape[0]):
        if top[pair[q]] == q:
            first[n_first] = q
            n_first += 1
        else:
            rest[n_rest] = q
            n_rest += 1
    return first[:n_first], rest[:n_rest]


@numba.njit(cache=True, nogil=True)
def _still_open(
    rest: Any, pair: Any, tier: Any, floor_val: Any, scale: float
) -> Any:  # pragma: no cover
    """The candidates in ``rest`` whose bound reaches their pair's best so far."""
    keep = np.empty(rest.shape[0], dtype=np.int64)
    count = 0
    for q in rest:
        floor = _floor(floor_val[pair[q]], scale)
        if tier[q] >= floor:
            keep[count] = q
            count += 1
    return keep[:count]


_MID_SAMPLES = 64  # psi samples of its grid


@numba.njit(cache=True, nogil=True, fastmath=True)
def _third_tier(
    c_low: Any,
    a_re: Any,
    a_im: Any,
    b_re: Any,
    b_im: Any,
    tail: Any,
    ref_norms: Any,
    rows: Any,
    cols: Any,
    j0: int,
    floors: Any,
) -> Any:  # pragma: no cover
    """Which listed columns can still reach their floor: a bound from 16 harmonics.

    Harmonics 8..15 are formed (``a[row, t] . b[ref, t]`` over the rings that
    keep them: real and imaginary planes, (rows or G, 8, R')), the
    16-harmonic sum is taken on 64 psi samples plus its curvature slack, and
    harmonics >= 16 are bounded by Cauchy-Schwarz (``tail``: ``m_k ||a_k||``
    from harmonic 8; ``ref_norms``: ``||b_k||``, (G, K)). The grid is
    evaluated across the columns (contiguous, vectorised).
    """
    n_low = c_low.shape[0]
    n_mid = a_re.shape[1]
    n_harm = ref_norms.shape[1]
    n = rows.shape[0]
    step = 2.0 * np.pi / _MID_SAMPLES
    slack = np.float32(step * step / 8.0)
    z_re = np.empty((n_low + n_mid, n), dtype=np.float32)
    z_im = np.empty((n_low + n_mid, n), dtype=np.float32)
    extra = np.zeros(n, dtype=np.float32)
    for q in range(n):
        row = rows[q]
        col = cols[q]
        ref = j0 + col
        for k in range(n_low):
            z = c_low[k, row, col]
            z_re[k, q] = z.real
            z_im[k, q] = z.imag
        for t in range(n_mid):  # contiguous over rings: vectorised reductions
            xr = a_re[row, t]
            xi = a_im[row, t]
            yr = b_re[ref, t]
            yi = b_im[ref, t]
            s_re = np.float32(0.0)
            s_im = np.float32(0.0)
            for r in range(xr.shape[0]):
                s_re += xr[r] * yr[r] - xi[r] * yi[r]
                s_im += xr[r] * yi[r] + xi[r] * yr[r]
            z_re[n_low + t, q] = s_re
            z_im[n_low + t, q] = s_im
        total = np.float32(0.0)
        for k in range(n_low + n_mid):
            m = np.float32(1.0 if k == 0 else 2.0)
            a = m * np.sqrt(z_re[k, q] * z_re[k, q] + z_im[k, q] * z_im[k, q])
            total += a * np.float32(k * k) * slack
        for k in range(n_low + n_mid, n_harm):
            total += tail[row, k - n_low] * ref_norms[ref, k]
        extra[q] = total
    best = np.empty(n, dtype=np.float32)
    cos_t, sin_t = _psi_table(n_low + n_mid, _MID_SAMPLES)
    _grid_max(z_re, z_im, cos_t, sin_t, n, np.empty(n, dtype=np.float32), best)
    keep = np.empty(n, dtype=np.bool_)
    for q in range(n):
        keep[q] = best[q] + extra[q] >= floors[q]
    return keep


@numba.njit(cache=True, nogil=True, fastmath=True)
def _ring_dot(
    a_re: Any,
    a_im: Any,
    b_re: Any,
    b_im: Any,
    offsets: Any,
    k0: int,
    acc_re: Any,
    acc_im: Any,
) -> None:  # pragma: no cover
    """``acc[k - k0] = sum_r a[r, k] b[r, k]`` over the harmonics ``k >= k0`` kept.

    ``a_*`` and ``b_*`` are one row's and one reference's packed planes: ring
    ``r`` holds harmonics ``0 .. offsets[r + 1] - offsets[r] - 1`` at
    ``offsets[r]:offsets[r + 1]`` (:func:`pack_rings`). The loops run over
    views so that the index is a plain induction variable (LLVM vectorises).
    """
    acc_re[:] = 0.0
    acc_im[:] = 0.0
    for r in range(offsets.shape[0] - 1):
        start = offsets[r] + k0
        count = offsets[r + 1] - start
        if count <= 0:
            continue
        xr = a_re[start : start + count]
        xi = a_im[start : start + count]
        yr = b_re[start : start + count]
        yi = b_im[start : start + count]
        for k in range(count):  # contiguous in both operands
            acc_re[k] += xr[k] * yr[k] - xi[k] * yi[k]
            acc_im[k] += xr[k] * yi[k] + xi[k] * yr[k]


@numba.njit(cache=True, nogil=True)
def _complete(
    c_low: Any,
    a_re: Any,
    a_im: Any,
    b_re: Any,
    b_im: Any,
    offsets: Any,
    rows: Any,
    cols: Any,
    j0: int,
    out: Any,
) -> None:  # pragma: no cover
    n_low = c_low.shape[0]
    n_high = np.max(offsets[1:] - offsets[:-1]) - n_low
    acc_re = np.zeros(max(n_high, 0), dtype=np.float32)
    acc_im = np.zeros(max(n_high, 0), dtype=np.float32)
    for q in range(rows.shape[0]):
        row = rows[q]
        col = cols[q]
        ref = j0 + col
        for k in range(n_low):
            out[q, k] = c_low[k, row, col]
        for k in range(n_low + max(n_high, 0), out.shape[1]):  # beyond the band
            out[q, k] = 0
        if n_high <= 0:
            continue
        _ring_dot(
            a_re[row], a_im[row], b_re[ref], b_im[ref], offsets, n_low, acc_re, acc_im
        )
        for k in range(n_high):
            out[q, n_low + k] = acc_re[k] + 1j * acc_im[k]


@numba.njit(cache=True, nogil=True)
def _pack(
    h: Any, offsets: Any, re: Any, im: Any, norm2: Any
) -> None:  # pragma: no cover
    for b in range(h.shape[0]):
        for r in range(h.shape[1]):
            start = offsets[r]
            for k in range(offsets[r + 1] - start):
                z = h[b, r, k]
                re[b, start + k] = z.real
                im[b, start + k] = z.imag
                norm2[b, k] += z.real * z.real + z.imag * z.imag


def pack_rings(h: Any, ring_end: Any) -> tuple[Any, Any, Any, Any]:
    """Pack harmonics (B, R, K) ring by ring into real and imaginary planes.

    Ring ``r`` keeps harmonics ``0 .. ring_end[r] - 1``: the triangle of
    products actually formed, without the zeros of a (R, K) layout (half the
    memory traffic of the completion).

    Parameters
    ----------
    h : ndarray, shape (B, R, K), complex64
        Any strides (e.g. a view of a larger FFT output).
    ring_end : ndarray, shape (R,), int64

    Returns
    -------
    re, im : ndarray, shape (B, L), float32
        Ring ``r`` at ``offsets[r]:offsets[r + 1]``.
    offsets : ndarray, shape (R + 1,), int64
    norm2 : ndarray, shape (B, K), float32
        ``sum_r |h[b, r, k]|^2`` over the rings that keep harmonic ``k``.
    """
    offsets = np.concatenate([[0], np.cumsum(ring_end)]).astype(np.int64)
    re = np.empty((h.shape[0], offsets[-1]), dtype=np.float32)
    im = np.empty_like(re)
    norm2 = np.zeros((h.shape[0], h.shape[2]), dtype=np.float32)
    _pack(h, offsets, re, im, norm2)
    return re, im, offsets, norm2


@numba.njit(cache=True, nogil=True)
def _merge(
    lead: Any,
    lead_coef: Any,
    c_lead: Any,
    lead_arg: Any,
    lead_val: Any,
    surv_coef: Any,
    c_surv: Any,
    surv_arg: Any,
    surv_val: Any,
    surv_pair: Any,
    surv_row: Any,
    which: Any,
    m0: Any,
    around: Any,
    coef: Any,
) -> None:  # pragma: no cover
    ni, nj = lead.shape
    n_psi = c_lead.shape[1]
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
            around[d, i, j] = c_lead[p, t] if q < 0 else c_surv[q, t]
        for k in range(coef.shape[1]):
            coef[p, k] = lead_coef[p, k] if q < 0 else surv_coef[q, k]


def pruned_best(
    c_low: Any,
    bound: Any,
    planes: tuple[Any, Any, Any, Any],
    offsets: Any,
    j0: int,
    ni: int,
    rows_per_image: int,
    n_psi: int,
    irfft: Any,
    mid: tuple[Any, ...] | None = None,
) -> tuple[Any, Any, Any, Any, int]:
    """Exact best row and psi sample of each pair, evaluating few ring products.

    ``c(psi) = Re sum_k m_k C_k e^{i k psi}`` never exceeds
    ``sum_k m_k |C_k|``, and ``|C_k|`` never exceeds the product of its
    factors' norms over rings (Cauchy-Schwarz). With the first harmonics'
    ``C_k`` (``c_low``, one dense product) and that norm bound for the rest
    (``bound``), each pair's row with the highest bound has its other
    harmonics computed (``_complete``) and is transformed first; another row
    is completed and transformed only where its bound reaches that row's best
    sample. Rows passing that test meet a tighter bound first: the sum of the
    low harmonics on 32 psi samples, plus ``(h / 2)^2 / 2`` times its
    curvature bound ``sum_k m_k k^2 |C_k|`` (a maximum lies within ``h / 2``
    of a sample and has zero slope there), plus the rest of the bound. The
    candidates are evaluated in two rounds: each pair's most promising one,
    then those still able to beat the better of it and the lead row; the
    second round meets a third bound first (``mid``, :func:`_third_tier`:
    harmonics 8..15 formed, 16 harmonics on 64 psi samples), which removes
    about 80% of it. On phantom class averages (64², band 0.25, shifts +-6)
    1.2% of the (image, shift, reference) rows are completed, lead rows
    included (``benchmarks/bench_search.py``).
    Same result as the exhaustive ``sigcore.backends.polar.RingSearch``,
    ties included (first row, first sample), up to float rounding of the
    bound (a relative margin of 1e-5 keeps borderline rows).

    Parameters
    ----------
    c_low : ndarray, shape (L, ni * rows_per_image, nj), complex64
        ``C_k`` of the first ``L`` harmonics.
    bound : ndarray, shape (ni * rows_per_image, nj), float32
        ``sum_{k >= L} m_k |C_k|`` bounded above (Cauchy-Schwarz); overwritten
        with the whole bound.
    planes : tuple of ndarray
        ``a_re, a_im`` (rows, L) and ``b_re, b_im`` (G, L): the two factors
        (ring weights folded into ``b``) packed by :func:`pack_rings`.
    offsets : ndarray, shape (R + 1,), int64
        Where each ring starts in the packed planes.
    j0 : int
        First reference of the chunk (in ``b``).
    ni, rows_per_image : int
        Images, rows (shift/mirror) per image.
    n_psi : int
        Psi samples.
    irfft : callable
        ``irfft(x, n=, axis=-1)`` (e.g. ``scipy.fft.irfft``).
    mid : tuple or None
        ``(a_re, a_im, b_re, b_im, tail, ref_norms)`` for the third-tier bound
        of the second round (:func:`_third_tier`): harmonics 8..15 of the
        rows (rows, 8, R') and of the references (G, 8, R') over the R' rings
        that keep them, the rows' ``m_k ||a_k||`` from harmonic 8 and the
        references' ``||b_k||`` (G, K). Only with 8 dense harmonics.

    Returns
    -------
    which, m0, around
        As ``sigcore.backends.polar._psi_max``.
    coef : ndarray, shape (ni * nj, P // 2 + 1), complex64
        The best rows' harmonics.
    completed : int
        Columns completed and transformed.
    """
    nj = bound.shape[1]
    lead = np.empty((ni, nj), dtype=np.int64)
    _ring_bounds(c_low, rows_per_image, bound, lead)
    flat_row = (np.arange(ni)[:, None] * rows_per_image + lead).ravel()
    flat_col = np.tile(np.arange(nj), ni)
    args = (c_low, *planes, offsets)
    lead_coef, c_lead, lead_arg, lead_val = _complete_max(
        args, flat_row, flat_col, j0, n_psi, irfft
    )
    scale = float(n_psi)
    pair, row, tier = _survivors(c_low, bound, lead, lead_val, rows_per_image, scale)
    # Branch and bound in two rounds: each pair's most promising candidate
    # first, then whatever can still beat the better of it and the lead row
    # (1.7% of rows evaluated in all instead of 4.5% in one round; 1.2% with
    # the third tier below).
    first, rest = _split_candidates(pair, tier, ni * nj)
    found = _complete_max(
        args, (pair[first] // nj) * rows_per_image + row[first], pair[first] % nj,
        j0, n_psi, irfft,
    )  # fmt: skip
    floor_val = lead_val.copy()
    np.maximum.at(floor_val, pair[first], found[3])
    rest = _still_open(rest, pair, tier, floor_val, scale)
    if mid is not None and len(rest):
        # Third tier for the second round (most of it cannot win): harmonics
        # 8..15 formed, 16 harmonics on a finer psi grid.
        rows3 = (pair[rest] // nj) * rows_per_image + row[rest]
        floors = _floors(floor_val, pair[rest], scale)
        rest = rest[_third_tier(c_low, *mid, rows3, pair[rest] % nj, j0, floors)]
    more = _complete_max(
        args, (pair[rest] // nj) * rows_per_image + row[rest], pair[rest] % nj,
        j0, n_psi, irfft,
    )  # fmt: skip
    order = np.concatenate([first, rest])
    pair, row = pair[order], row[order]
    surv_coef, c_surv, surv_arg, surv_val = (
        np.concatenate([x, y]) for x, y in zip(found, more, strict=True)
    )
    which = np.empty((ni, nj), dtype=np.int64)
    m0 = np.empty((ni, nj), dtype=np.int64)
    around = np.empty((3, ni, nj), dtype=np.float32)
    coef = np.empty((ni * nj, n_psi // 2 + 1), dtype=np.complex64)
    _merge(
        lead, lead_coef, c_lead, lead_arg, lead_val,
        surv_coef, c_surv, surv_arg, surv_val, pair, row,
        which, m0, around, coef,
    )  # fmt: skip
    completed = len(flat_row) + len(first) + len(rest)
    return which, m0, around, coef, completed


def _complete_max(
    args: tuple[Any, ...], rows: Any, cols: Any, j0: int, n_psi: int, irfft: Any
) -> tuple[Any, Any, Any, Any]:
    """Complete the listed columns, transform them, take each one's max."""
    coef = np.empty((rows.shape[0], n_psi // 2 + 1), dtype=np.complex64)
    _complete(*args, rows, cols, j0, coef)  # writes every column
    c = irfft(coef, n=n_psi, axis=-1)
    arg = np.empty(c.shape[0], dtype=np.int64)
    val = np.empty(c.shape[0], dtype=np.float32)
    _row_max(c, arg, val)
    return coef, c, arg, val


@numba.njit(cache=True, nogil=True, fastmath=True)
def _harmonic_sum(
    c_re: Any, c_im: Any, k1: Any, k2: Any, psi: float, e_re: Any, e_im: Any
) -> tuple[float, float, float]:  # pragma: no cover
    """``sum_k Re(c_k e^{i k psi})`` and its first two psi-derivatives.

    ``c = m_k coef_k`` split into float64 planes padded to a multiple of 8
    with zeros, ``k1 = k``, ``k2 = k^2``. The phases ``e^{i k psi}`` come from
    eight short recurrences (``e^{i (k + 8) psi} = e^{i k psi} e^{i 8 psi}``),
    so the sums below have no loop-carried product and vectorise.
    """
    c = np.cos(psi)
    s = np.sin(psi)
    z_re = 1.0
    z_im = 0.0
    for t in range(8):
        e_re[t] = z_re
        e_im[t] = z_im
        z_re, z_im = z_re * c - z_im * s, z_re * s + z_im * c
    for k in range(8, e_re.shape[0]):  # z = e^{i 8 psi}
        p_re = e_re[k - 8]
        p_im = e_im[k - 8]
        e_re[k] = p_re * z_re - p_im * z_im
        e_im[k] = p_re * z_im + p_im * z_re
    value = 0.0
    d1 = 0.0
    d2 = 0.0
    for k in range(e_re.shape[0]):
        t_re = c_re[k] * e_re[k] - c_im[k] * e_im[k]
        t_im = c_re[k] * e_im[k] + c_im[k] * e_re[k]
        value += t_re
        d1 -= k1[k] * t_im
        d2 -= k2[k] * t_re
    return value, d1, d2


@numba.njit(cache=True, nogil=True)
def _refine_kernel(
    coef: Any, n_harm: int, psi0: Any, step: float, psi_out: Any, val_out: Any
) -> None:  # pragma: no cover
    width = (n_harm + 7) // 8 * 8
    c_re = np.zeros(width)
    c_im = np.zeros(width)
    e_re = np.empty(width)
    e_im = np.empty(width)
    k1 = np.zeros(width)
    k2 = np.zeros(width)
    for k in range(n_harm):
        k1[k] = k
        k2[k] = k * k
    for q in range(coef.shape[0]):
        for k in range(n_harm):
            m = 1.0 if k == 0 else 2.0
            c_re[k] = m * coef[q, k].real
            c_im[k] = m * coef[q, k].imag
        start = float(psi0[q])
        x = start
        at_start = 0.0
        for it in range(3):
            value, d1, d2 = _harmonic_sum(c_re, c_im, k1, k2, x, e_re, e_im)
            if it == 0:
                at_start = value
            delta = -d1 / d2 if d2 < 0 else 0.0
            x = min(max(x + delta, start - step), start + step)
        value = _harmonic_sum(c_re, c_im, k1, k2, x, e_re, e_im)[0]
        if value >= at_start:
            psi_out[q] = x
            val_out[q] = value
        else:
            psi_out[q] = start
            val_out[q] = at_start


def refine(coef: Any, n_harm: int, psi0: Any, step: float) -> tuple[Any, Any]:
    """Newton refinement of the harmonic sum (``sigcore.backends.polar._refine``).

    ``coef`` is (pairs, >= n_harm); same steps, in float64 with the phases by
    recurrence (:func:`_harmonic_sum`).
    """
    psi = np.empty(coef.shape[0], dtype=np.float32)
    value = np.empty(coef.shape[0], dtype=np.float32)
    _refine_kernel(coef, n_harm, psi0, float(step), psi, value)
    return psi, value


@numba.njit(cache=True, nogil=True, fastmath=True)
def _cross_kernel(
    a_re: Any,
    a_im: Any,
    b_re: Any,
    b_im: Any,
    offsets: Any,
    weight: Any,
    rows: Any,
    refs: Any,
    psi: Any,
    out: Any,
) -> None:  # pragma: no cover
    n_harm = np.max(offsets[1:] - offsets[:-1])
    z_re = np.empty(n_harm, dtype=np.float32)  # m_k e^{i k psi}
    z_im = np.empty(n_harm, dtype=np.float32)
    for q in range(rows.shape[0]):
        xr_all = a_re[rows[q]]
        xi_all = a_im[rows[q]]
        yr_all = b_re[refs[q]]
        yi_all = b_im[refs[q]]
        step = np.cos(psi[q]) + 1j * np.sin(psi[q])
        z = 1.0 + 0.0j
        for k in range(n_harm):
            m = 1.0 if k == 0 else 2.0
            z_re[k] = m * z.real
            z_im[k] = m * z.imag
            z *= step
        total = 0.0
        for r in range(offsets.shape[0] - 1):
            start = offsets[r]
            count = offsets[r + 1] - start
            xr = xr_all[start : start + count]
            xi = xi_all[start : start + count]
            yr = yr_all[start : start + count]
            yi = yi_all[start : start + count]
            ring = np.float32(0.0)
            for k in range(count):
                re = xr[k] * yr[k] - xi[k] * yi[k]
                im = xr[k] * yi[k] + xi[k] * yr[k]
                ring += z_re[k] * re - z_im[k] * im
            total += weight[r] * ring
        out[q] = total


def cross_value(
    planes: tuple[Any, Any, Any, Any],
    offsets: Any,
    weight: Any,
    rows: Any,
    refs: Any,
    psi: Any,
) -> Any:
    """Ring-weighted cross term of listed pairs at their psi.

    ``Re sum_k m_k e^{i k psi} sum_r weight_r a[row, r, k] b[ref, r, k]``
    (the numba form of ``sigcore.backends.polar.RingSearch.cross``) from the
    packed planes ``a_re, a_im, b_re, b_im`` (:func:`pack_rings`).
    """
    out = np.empty(rows.shape[0], dtype=np.float32)
    _cross_kernel(*planes, offsets, weight, rows, refs, psi, out)
    return out
