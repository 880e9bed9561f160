"""The ``cpu`` backend's ring products: exact, but only where a row can win.

:class:`sigcore.backends.polar.RingSearch` forms every ring product ``C_k``
of every (image, shift, reference) row and transforms it over psi. Most rows
cannot win their pair: class averages correlate mostly through their
rotational average, which the first harmonics carry. This evaluator forms the
first 8 harmonics densely (one batched GEMM over all rings, about a fifth of
the exhaustive products at 64², band 0.25; 16 where that prunes poorly,
:data:`DENSE_LEVELS`), bounds the rest by Cauchy-Schwarz from the factors'
norms (a small real product) and completes and transforms only the rows whose
bound can still beat their pair's best
(:func:`sigcore.backends._numba_kernels.pruned_best`). The result is the
exhaustive one, ties included, up to float rounding.

On phantom class averages (64², band 0.25, shifts +-6, 1650 references) 1.2%
of the (image, shift, reference) rows are completed, the lead rows included
(``benchmarks/bench_search.py``); the search performs about a sixth of the
exhaustive flops. Images without a dominant rotational average (noise) defeat
the bound: once a chunk has had to complete more than
:data:`FALLBACK_FRACTION` of its columns, the evaluator forms every product
for the rest of the search, as :class:`~sigcore.backends.polar.RingSearch`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sigcore.alignment import SearchParams
from sigcore.backends import _numba_kernels as kernels
from sigcore.backends._numba_rows import (
    phase_planes,
    row_harmonics,
    row_tables,
    rows_from_planes,
)
from sigcore.backends.polar import ImageCache, PolarGrid, RingSearch, polar_grid

__all__ = [
    "DENSE_LEVELS",
    "ESCALATE_FRACTION",
    "FALLBACK_FRACTION",
    "PrunedRingSearch",
    "pruned_flops",
]

# Harmonics formed for every row: 8 (one block of products) while the bound
# prunes well, 16 once a chunk had to complete more than ESCALATE_FRACTION of
# its columns. Measured on 60 simulated class averages x 1650 references,
# band 0.25, two threads, before the third-tier bound: phantom (64²) 8 -> 1.7%
# completed, 1.25 s (16 is 15% slower); 70S ribosome (65²) 8 -> 25% completed,
# 5.5 s; 16 -> 11%, 3.1 s. With the third tier the 70S completes 3.3% at 8
# (2.6 s) and no longer escalates; the escalation stays for harder data.
DENSE_LEVELS = (8, 16)
_MID = 8  # harmonics 8..15 feed the third-tier bound while 8 are dense
ESCALATE_FRACTION = 0.05
# Completing more than this share of a chunk's columns costs more than forming
# every product (white noise: 100% completed, 8.2 s vs 5.4 s exhaustive for 20
# images x 1650 references at 64²; break-even near 60%).
FALLBACK_FRACTION = 0.5


class PrunedRingSearch(RingSearch):
    """Exact best row and psi per pair from a fraction of the ring products.

    Parameters
    ----------
    b_w : ndarray, shape (K, R, G), complex64
        Reference harmonics, normalised, ring weights folded in.
    grid : PolarGrid
    xp : module
        ``numpy``.
    fft : module
        FFT namespace with ``irfft`` (``scipy.fft``).
    """

    def __init__(self, b_w: Any, grid: PolarGrid, xp: Any, fft: Any) -> None:
        super().__init__(b_w, grid, xp, fft)
        self.levels = sorted({min(n, grid.n_harmonics) for n in DENSE_LEVELS})
        self.level = 0  # index into levels, raised by best()
        self.b_low = {n: _real_form(b_w[:n]) for n in self.levels}
        self.ring_end = np.minimum(grid.cutoffs + 1, grid.n_harmonics).astype(np.int64)
        self.b_re, self.b_im, self.offsets, norm2 = kernels.pack_rings(
            np.transpose(b_w, (2, 1, 0)), self.ring_end
        )
        # Norm over rings of each (harmonic, reference) factor, (K, G).
        self.ref_norms = np.ascontiguousarray(np.sqrt(norm2).T)
        # Harmonics 8..15 of the references over the rings that keep them,
        # real and imaginary (G, 8, R'), for the third-tier bound
        # (kernels._third_tier), with the norms as (G, K).
        self.mid_ring = int(np.searchsorted(self.ring_end, 2 * _MID))
        self.mid_b: tuple[Any, ...] | None = None
        if grid.n_harmonics >= 2 * _MID and self.mid_ring < len(self.ring_end):
            self.mid_b = (
                *_planes(
                    np.transpose(b_w[_MID : 2 * _MID, self.mid_ring :], (2, 0, 1))
                ),
                np.ascontiguousarray(self.ref_norms.T),
            )
        # The image rows' harmonics as real products (_numba_rows), and the
        # shift phases' half-circle planes (set on the first chunk).
        self.tables = row_tables(grid.n_angles, tuple(self.ring_end.tolist()))
        self._phase: tuple[Any, list[tuple[Any, Any]]] | None = None
        # c_low (complex64) and the bound (float32) per column, largest level.
        self.bytes_per_column = self.levels[-1] * 8 + 4
        # Set once a chunk had to complete more than FALLBACK_FRACTION of its
        # columns (images without a strong rotational average): the rest of
        # the search then forms every product, which is cheaper there.
        self.exhaustive = False

    def image_rows(
        self,
        samples: Any,
        norm: Any,
        phase_conj: Any,
        ref_chunk: int,
        kept: tuple[ImageCache, int] | None = None,
    ) -> _Rows:
        """As :meth:`RingSearch.image_rows`, the harmonics as real products.

        Each ring's kept harmonics come from two real GEMMs of its half-circle
        samples (:mod:`sigcore.backends._numba_rows`), written straight into
        the packed planes, the dense harmonics and the third tier's planes.
        ``kept`` keeps the packed planes when it has room (the rest is derived
        from them again, a twentieth of the cost).
        Once the search has fallen back to every product, the FFT path.
        """
        if self.exhaustive:
            return super().image_rows(samples, norm, phase_conj, ref_chunk, kept)
        n_dense = self.levels[self.level]
        mid = None
        if n_dense == _MID and self.mid_b is not None:
            mid = (self.mid_ring, _MID, _MID)
        args = (self.tables, self.grid.n_harmonics, n_dense, mid, self.scratch)
        name = None if kept is None else ("packed", kept[1])
        planes = None if kept is None else kept[0].rows(name)
        if planes is not None:
            h = rows_from_planes(*planes, *args)
        else:
            if self._phase is None or self._phase[0] is not phase_conj:
                self._phase = (phase_conj, phase_planes(phase_conj, self.tables))
            h = row_harmonics(
                samples, 1.0 / np.asarray(norm, dtype=np.float32), self._phase[1],
                *args,
            )  # fmt: skip
            if kept is not None:  # h's arrays are the thread's scratch
                kept[0].keep_rows(
                    name, lambda: (h.a_re.copy(), h.a_im.copy()), 2 * h.a_re.nbytes
                )
        return self._state(h.a_re, h.a_im, h.norm2, h.low, h.mid, None, ref_chunk)

    def rows(self, a: Any, ref_chunk: int) -> _Rows:
        """Pack an image chunk's harmonics (rows, R, K) into real planes.

        Also keeps the first harmonics as (L, rows, R) for the dense product
        and the Cauchy-Schwarz factors ``m_k ||a_k||`` of the others.
        """
        n_dense = self.levels[self.level]
        low = np.ascontiguousarray(np.transpose(a[:, :, :n_dense], (2, 0, 1)))
        a_re, a_im, _, norm2 = kernels.pack_rings(a, self.ring_end)
        mid = None
        if n_dense == _MID and self.mid_b is not None:
            a_mid = np.transpose(a[:, self.mid_ring :, _MID : 2 * _MID], (0, 2, 1))
            mid = _planes(a_mid)
        return self._state(a_re, a_im, norm2, low, mid, a, ref_chunk)

    def _state(
        self,
        a_re: Any,
        a_im: Any,
        norm2: Any,
        low: Any,
        mid: tuple[Any, Any] | None,
        a: Any,
        ref_chunk: int,
    ) -> _Rows:
        """Bundle a chunk's row factors with the bounds' and a work buffer."""
        n_dense = low.shape[0]
        tail = 2.0 * np.sqrt(norm2[:, n_dense:])  # m_k = 2
        third = None
        if mid is not None:
            b_re, b_im, ref_norms = self.mid_b
            third = (*mid, b_re, b_im, tail, ref_norms)
        work = self.scratch.get(
            "c_low", (n_dense * a_re.shape[0] * ref_chunk,), np.complex64
        )
        planes = (a_re, a_im, self.b_re, self.b_im)
        return _Rows(a, low, planes, tail, work, third)

    def best(self, state: _Rows, j0: int, j1: int, ni: int, rpi: int) -> Any:
        """As :meth:`RingSearch.best`, forming few products (module notes)."""
        if self.exhaustive:
            return self._exhaustive(state, j0, j1, ni, rpi)
        low, planes, tail, work = state.low, state.planes, state.tail, state.work
        n_dense, rows, nj = low.shape[0], low.shape[1], j1 - j0
        c_low = work[: n_dense * rows * nj].reshape(n_dense, rows, nj)
        # Over all rings (references are zero beyond a ring's cut-off). As a
        # real product (1.5x the rate of the complex one at this shape):
        # complex64 memory read as interleaved float32 pairs.
        np.matmul(
            low.view(np.float32),
            self.b_low[n_dense][:, :, 2 * j0 : 2 * j1],
            out=c_low.view(np.float32),
        )
        if n_dense < self.grid.n_harmonics:
            bound = tail @ self.ref_norms[n_dense:, j0:j1]
        else:
            bound = np.zeros((rows, nj), dtype=np.float32)
        *found, completed = kernels.pruned_best(
            c_low,
            np.ascontiguousarray(bound, dtype=np.float32),
            planes,
            self.offsets,
            j0,
            ni,
            rpi,
            self.grid.n_psi,
            self.fft.irfft,
            state.mid if n_dense == _MID else None,
        )
        if completed > FALLBACK_FRACTION * rows * nj:
            self.exhaustive = True
        elif completed > ESCALATE_FRACTION * rows * nj:
            here = self.levels.index(n_dense)
            self.level = max(self.level, min(here + 1, len(self.levels) - 1))
        return tuple(found)

    def _exhaustive(self, state: _Rows, j0: int, j1: int, ni: int, rpi: int) -> Any:
        """:meth:`RingSearch.best` over sub-chunks of references, same outputs."""
        if state.dense is None:
            if state.a is None:  # the rows came as packed planes
                state.a = _unpacked(state.planes[:2], self.offsets, self.grid)
            state.dense = super().rows(state.a, 1)
        a_t = state.dense[0]
        rows = a_t.shape[1]
        step = max(1, len(state.work) // max(1, rows * self.n_spec))
        parts = []
        for s0 in range(j0, j1, step):
            s1 = min(j1, s0 + step)
            work = np.empty(self.n_spec * rows * (s1 - s0), dtype=np.complex64)
            parts.append(super().best((a_t, work), s0, s1, ni, rpi))
        which = np.concatenate([p[0] for p in parts], axis=1)
        m0 = np.concatenate([p[1] for p in parts], axis=1)
        around = np.concatenate([p[2] for p in parts], axis=2)
        n_harm = self.grid.n_harmonics
        coef = np.zeros((ni, j1 - j0, self.n_spec), dtype=np.complex64)
        col = 0
        for p in parts:
            width = p[0].shape[1]
            coef[:, col : col + width, :n_harm] = np.transpose(
                p[3].reshape(n_harm, ni, width), (1, 2, 0)
            )
            col += width
        return which, m0, around, coef.reshape(ni * (j1 - j0), self.n_spec)

    def refine(self, coef: Any, psi0: Any, step: float) -> tuple[Any, Any]:
        """Newton refinement (float64, numba) of the best rows' harmonic sums."""
        return kernels.refine(coef, self.grid.n_harmonics, psi0, step)

    def cross(
        self, state: Any, weight: Any, j0: int, rows: Any, cols: Any, psi: Any
    ) -> Any:
        """As :meth:`RingSearch.cross`, one numba loop over the listed pairs."""
        weight = np.asarray(weight, dtype=np.float32)
        return kernels.cross_value(
            state.planes, self.offsets, weight, rows, j0 + cols, psi
        )


@dataclass
class _Rows:
    """An image chunk's prepared harmonics (see :meth:`PrunedRingSearch.rows`)."""

    a: Any  # (rows, R, K) complex64 (FFT path) or None (packed planes only)
    low: Any  # (L, rows, R) complex64: the dense harmonics (L: the level)
    planes: tuple[Any, Any, Any, Any]  # packed a_re, a_im, b_re, b_im
    tail: Any  # (rows, K - L) float32: m_k ||a_k||
    work: Any  # c_low buffer
    mid: Any  # third-tier factors (kernels.pruned_best's ``mid``) or None
    dense: Any = None  # RingSearch.rows state, made on the first fallback


def _unpacked(planes: tuple[Any, Any], offsets: Any, grid: PolarGrid) -> Any:
    """Packed planes -> harmonics (rows, R, K), zero beyond each ring's cut-off."""
    a_re, a_im = planes
    a = np.zeros((a_re.shape[0], len(grid.radii), grid.n_harmonics), np.complex64)
    for r in range(len(grid.radii)):
        count = offsets[r + 1] - offsets[r]
        a[:, r, :count] = a_re[:, offsets[r] : offsets[r + 1]]
        a[:, r, :count] += 1j * a_im[:, offsets[r] : offsets[r + 1]]
    return a


def _planes(z: Any) -> tuple[Any, Any]:
    """Contiguous float32 real and imaginary planes of a complex array."""
    return (
        np.ascontiguousarray(z.real, dtype=np.float32),
        np.ascontiguousarray(z.imag, dtype=np.float32),
    )


def _real_form(b: Any) -> Any:
    """(L, R, G) complex factors as (L, 2R, 2G) float32 for a real product.

    With a row ``a`` (R complex) read as 2R interleaved floats ``(re, im)``,
    ``a_float @ out`` gives the 2G interleaved floats of ``a @ b``: row pair
    ``(2r, 2r + 1)`` and column pair ``(2j, 2j + 1)`` hold
    ``[[Re b, Im b], [-Im b, Re b]]``.
    """
    n_low, n_rings, n_refs = b.shape
    out = np.empty((n_low, n_rings, 2, n_refs, 2), dtype=np.float32)
    out[:, :, 0, :, 0] = b.real
    out[:, :, 0, :, 1] = b.imag
    out[:, :, 1, :, 0] = -b.imag
    out[:, :, 1, :, 1] = b.real
    return out.reshape(n_low, 2 * n_rings, 2 * n_refs)


def pruned_flops(
    n_rows: int,
    n_refs: int,
    n: int,
    params: SearchParams,
    completed: int,
    third_tier: int = 0,
    n_dense: int = DENSE_LEVELS[0],
) -> dict[str, float]:
    """Floating-point operations :class:`PrunedRingSearch` performs in a search.

    Parameters
    ----------
    n_rows : int
        Image rows (images x shifts x mirrors).
    n_refs : int
        References.
    n : int
        Image size.
    params : SearchParams
    completed : int
        (row, reference) columns completed and transformed (measured; it
        depends on the data).
    third_tier : int
        Columns the third-tier bound examined (measured).
    n_dense : int
        Harmonics formed densely (the level the search ran at).

    Returns
    -------
    dict
        ``dense`` (8 flops per complex multiply-add of the first harmonics'
        products), ``tail`` (the real product of the Cauchy-Schwarz norms),
        ``completion`` (the other harmonics of the completed columns),
        ``irfft`` (``2.5 P log2 P`` per completed column), ``third_tier``
        (harmonics 8..15 formed and 16 harmonics on 64 psi samples per
        examined column) and ``total``. The other bound bookkeeping
        (comparisons, the second-tier psi grid) is not counted.
    """
    grid = polar_grid(n, params)
    n_dense = min(n_dense, grid.n_harmonics)
    ring_end = np.minimum(grid.cutoffs + 1, grid.n_harmonics)
    high_terms = float(np.maximum(ring_end - n_dense, 0).sum())
    mid_terms = float(_MID * np.count_nonzero(ring_end >= 2 * _MID))
    out = {
        "dense": 8.0 * n_rows * n_refs * n_dense * len(grid.radii),
        "tail": 2.0 * n_rows * n_refs * (grid.n_harmonics - n_dense),
        "completion": 8.0 * completed * high_terms,
        "irfft": 2.5 * grid.n_psi * math.log2(grid.n_psi) * completed,
        "third_tier": third_tier * (8.0 * mid_terms + 2.0 * 2 * _MID * 64),
    }
    out["total"] = sum(out.values())
    return out
