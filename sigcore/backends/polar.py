"""Batched polar-Fourier alignment search, written once against ``xp``.

Evaluates the score of :mod:`sigcore.backends.search_reference` (Pearson
correlation of the images band-limited to ``0 < |k| <= max_frequency * n``,
periodic shifts) for every image, reference, shift, mirror and psi, without
ever holding an array of size N x G x psi x shifts (DESIGN §5.3).

Formulation
-----------
1. The 2D DFT of every image (zero-padded x2, so its samples are the DTFT on
   a half-index grid) is sampled on ``R`` polar rings of radius
   ``r_q = (q - 1/2) dr`` (midpoint rule over the band disk, ``dr <= 1``
   index unit) at ``L`` angles by Keys cubic interpolation; only the half
   circle is interpolated, the other half is its complex conjugate (real
   images). Mirrored images are sampled at ``(-kx, ky)``.
2. Shifts are phase factors ``exp(-2 pi i k.s / n)`` on the image samples;
   an FFT over the angle gives the angular harmonics ``a_{r,k}`` (images,
   per shift/mirror) and ``b_{r,k}`` (references). Ring ``r`` keeps the
   harmonics ``|k| <= K_r`` (``K_r ~ pi r``, rounded up to a block of 8, the
   angular band limit of an image supported in the box).
3. For every angular frequency ``k >= 0`` one complex matrix product over
   rings, ``C_k[(i,m,s), j] = sum_r w_r conj(a_{i,m,s,r,k}) b_{j,r,k}``
   (``w_r = 2 pi r dr``, the area element), batched over blocks of ``k``
   that share their rings. Real images make ``C_{-k} = conj(C_k)``, so only
   ``k >= 0`` is computed and the correlation over psi is one inverse real
   FFT, ``c(psi_m) = P * irfft(C)[m]`` on ``P >= 2 K`` samples.
4. Max over psi, then over shifts and mirrors; the winner's psi is refined to
   the maximum of the trigonometric polynomial (parabola, then Newton steps on
   the exact harmonic sum). By Parseval the band norms are rotation and shift
   invariant: each image and reference is normalised once. Steps 3-4 are a
   :class:`RingSearch`; since ``max_psi c <= sum_k m_k |C_k|``, a backend may
   evaluate only the products and transforms of rows that can still win
   (the ``cpu`` backend does, exactly).

Memory grows like N x G: images are processed a few at a time (all their
shifts and mirrors together) against slices of the gallery sized by
``budget_bytes``. Flops per search (complex products counted as 8 real flops):
``8 * N M S * G * sum_k R_k`` for the products plus the inverse FFTs
(:func:`search_flops`).

Metrics exposing ``fourier_weight(frequency, xp)`` are taken to be weighted
Euclidean distances between the standardised band-limited images,
``d = sqrt(n^2 sum_k W(|k|/n) |Y(k)/||Y|| - P(k)/||P|| |^2)``
(:mod:`sigcore.metrics.imed`); they are evaluated at the chosen alignment in
the polar domain without re-warping images. Other metrics get band-limited
aligned images in real space (:func:`aligned_pairs`), chunked.
"""

from __future__ import annotations

import functools
import hashlib
import math
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from sigcore.alignment import SearchParams, SearchResult
from sigcore.backends.search_reference import (
    band_radius,
    band_weight,
    default_psi_step,
    shift_grid,
    validate_inputs,
    wrap_psi,
)

if TYPE_CHECKING:
    from sigcore.protocols import Metric

__all__ = [
    "ImageCache",
    "PolarGrid",
    "polar_grid",
    "polar_samples",
    "search_flops",
    "search_polar",
]

_BLOCK = 8  # harmonics per batched product (rings are shared within a block)
_RING_SPACING = 0.5  # target ring spacing, DFT index units
_PAD = 2  # zero-padding factor of the 2D DFT that is interpolated
_HARMONIC_FACTOR = math.sqrt(2.0)  # ring r keeps harmonics |k| <~ factor * pi * r


@dataclass(frozen=True)
class PolarGrid:
    """Polar sampling of the band disk and the harmonic blocks.

    Attributes
    ----------
    n : int
        Image size.
    radii : ndarray, shape (R,)
        Ring radii, DFT index units (frequency ``radii / n`` cycles/px).
    weights : ndarray, shape (R,)
        ``2 pi r dr``: the area of each ring's annulus.
    n_angles : int
        ``L``, samples per ring on the full circle (even).
    cutoffs : ndarray, shape (R,), int
        Highest harmonic kept on each ring.
    n_harmonics : int
        ``K``: harmonics ``0..K-1`` are used.
    blocks : tuple of (k0, k1, r0)
        Harmonics ``k0 <= k < k1`` use rings ``r0:``.
    n_psi : int
        ``P``, samples of the correlation over psi (``>= 2K``).
    """

    n: int
    radii: NDArray[np.float64]
    weights: NDArray[np.float64]
    n_angles: int
    cutoffs: NDArray[np.int64]
    n_harmonics: int
    blocks: tuple[tuple[int, int, int], ...]
    n_psi: int


def _fast_length(m: int) -> int:
    """Smallest 2^a 3^b 5^c >= m."""
    best = 1 << max(0, (m - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < m:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


def polar_grid(n: int, params: SearchParams) -> PolarGrid:
    """Choose rings, angles, harmonic cut-offs and the psi sampling.

    Parameters
    ----------
    n : int
        Image size (pixels).
    params : SearchParams
        ``max_frequency`` sets the band, ``psi_step`` the psi sampling.

    Returns
    -------
    PolarGrid
    """
    radius = band_radius(n, params)
    n_rings = max(1, math.ceil(radius / _RING_SPACING - 1e-9))
    dr = radius / n_rings
    radii = (np.arange(n_rings) + 0.5) * dr
    weights = 2.0 * np.pi * radii * dr * band_weight(radii, n, params)
    # Angular band limit of a ring for an image supported in the box: pi r
    # (inscribed disk) to sqrt(2) pi r (corners). Keep the generous one:
    # 1.15 pi r passes the brute-force tolerances but moves the best psi by
    # more than a degree for ~2% of pairs (and the shift for ~4%) of 64^2
    # images, even disc-masked ones.
    raw = np.ceil(_HARMONIC_FACTOR * np.pi * radii).astype(np.int64) + 2
    cutoffs = (np.ceil((raw + 1) / _BLOCK).astype(np.int64) * _BLOCK) - 1
    n_harm = int(cutoffs.max()) + 1
    n_angles = _fast_length(2 * n_harm + 2)
    n_angles += n_angles % 2
    blocks = []
    for k0 in range(0, n_harm, _BLOCK):
        k1 = min(k0 + _BLOCK, n_harm)
        r0 = int(np.searchsorted(cutoffs, k1 - 1))  # first ring with cutoff >= k1-1
        blocks.append((k0, k1, r0))
    psi_samples = math.ceil(360.0 / default_psi_step(n, params))
    n_psi = _fast_length(max(2 * n_harm, psi_samples))
    return PolarGrid(
        n=n,
        radii=radii,
        weights=weights,
        n_angles=n_angles,
        cutoffs=cutoffs,
        n_harmonics=n_harm,
        blocks=tuple(blocks),
        n_psi=n_psi,
    )


def _keys(t: Any, xp: Any) -> Any:
    """Keys cubic convolution kernel (a = -1/2) at offsets ``t``."""
    t = xp.abs(t)
    inner = (1.5 * t - 2.5) * t * t + 1.0
    outer = ((-0.5 * t + 2.5) * t - 4.0) * t + 2.0
    return xp.where(t <= 1.0, inner, xp.where(t < 2.0, outer, 0.0))


def _interp_plan(grid: PolarGrid, mirror: bool, xp: Any) -> tuple[Any, Any]:
    """Flat indices and weights (16 taps) into the padded DFT for the half circle.

    Returns arrays of shape (R * L/2, 16): int64 indices, float32 weights
    (cached, read-only: the same every iteration).
    """
    return _interp_tables(grid.n, grid.n_angles, tuple(grid.radii.tolist()), mirror, xp)


@functools.lru_cache(maxsize=16)
def _interp_tables(
    n: int, n_angles: int, radii: tuple[float, ...], mirror: bool, xp: Any
) -> tuple[Any, Any]:
    """:func:`_interp_plan` for a grid given by its size, angles and radii."""
    size = _PAD * n
    half = n_angles // 2
    theta = 2.0 * np.pi * np.arange(half) / n_angles
    kx = np.outer(radii, np.cos(theta)).ravel()
    ky = np.outer(radii, np.sin(theta)).ravel()
    if mirror:
        kx = -kx
    ux, uy = _PAD * kx, _PAD * ky
    fx, fy = np.floor(ux), np.floor(uy)
    offsets = np.arange(-1, 3)
    ix = fx[:, None] + offsets[None, :]  # (Q, 4)
    iy = fy[:, None] + offsets[None, :]
    wx = _keys(ux[:, None] - ix, np)
    wy = _keys(uy[:, None] - iy, np)
    index = (np.mod(iy, size)[:, :, None] * size + np.mod(ix, size)[:, None, :]).astype(
        np.int64
    )
    weight = (wy[:, :, None] * wx[:, None, :]).astype(np.float32)
    q = index.shape[0]
    return _constant(index.reshape(q, 16), xp), _constant(weight.reshape(q, 16), xp)


@functools.lru_cache(maxsize=8)
def _shift_phases(
    n: int, n_angles: int, radii: tuple[float, ...], shifts: tuple[Any, ...], xp: Any
) -> Any:
    """``exp(+2 pi i k.s / n)`` at the polar samples, (S, R, L) complex64, cached.

    The conjugate of each shift's phase factor, applied to the conjugated
    image samples.
    """
    theta = 2.0 * np.pi * np.arange(n_angles) / n_angles
    kx = np.outer(radii, np.cos(theta))
    ky = np.outer(radii, np.sin(theta))
    s = np.asarray(shifts, dtype=np.float64).reshape(-1, 2)
    dot = s[:, 0, None, None] * kx + s[:, 1, None, None] * ky
    phase = np.exp(2j * np.pi * dot / n)
    return _constant(phase.astype(np.complex64), xp)


def _constant(array: NDArray[Any], xp: Any) -> Any:
    """``array`` on the device of ``xp``, read-only where the namespace allows.

    The tables of a search depend only on the grid and the shifts: cached per
    process, they are built and copied to a device once, not every iteration.
    """
    out = xp.asarray(array)
    if isinstance(out, np.ndarray):
        out.setflags(write=False)
    return out


def _keys_transform(nu: NDArray[np.float64]) -> NDArray[np.float64]:
    """Fourier transform of the Keys kernel at ``nu`` (cycles per sample)."""
    t = np.linspace(-2.0, 2.0, 4001)
    kernel = _keys(t, np)
    dt = t[1] - t[0]
    return (kernel[None, :] * np.cos(2.0 * np.pi * np.outer(nu, t))).sum(axis=1) * dt


@functools.lru_cache(maxsize=8)
def _deapodisation(n: int) -> NDArray[np.float32]:
    """Real-space factor undoing the interpolation kernel's attenuation, (n, n).

    Interpolating the padded DFT with a kernel multiplies the image by the
    kernel's transform at ``p / (PAD n)``; dividing first restores it (as the
    gridding correction of a projector).
    """
    p = np.arange(n) - n // 2
    profile = 1.0 / _keys_transform(p / (_PAD * n))
    out = np.outer(profile, profile).astype(np.float32)
    out.setflags(write=False)  # cached and shared
    return out


@functools.lru_cache(maxsize=8)
def _constant_deapodisation(n: int, xp: Any) -> Any:
    """:func:`_deapodisation` on the device of ``xp`` (cached)."""
    return _constant(_deapodisation(n), xp)


def _padded_spectra(stack: Any, n: int, xp: Any, fft: Any) -> Any:
    """DFT of each image zero-padded x2 about its centre: (B, 2n*2n) complex64.

    The images are divided by the interpolation kernel's transform first and
    written straight into the wrapped (``ifftshift``-ed) positions: pixel
    ``p`` goes to ``(p - n // 2) mod 2n``.
    """
    size = _PAD * n
    b = stack.shape[0]
    h = n // 2
    image = stack * _constant_deapodisation(n, xp)
    padded = xp.zeros((b, size, size), dtype=xp.float32)
    padded[:, : n - h, : n - h] = image[:, h:, h:]
    padded[:, : n - h, size - h :] = image[:, h:, :h]
    padded[:, size - h :, : n - h] = image[:, :h, h:]
    padded[:, size - h :, size - h :] = image[:, :h, :h]
    spectra = fft.fft2(padded, axes=(-2, -1))
    return spectra.astype(xp.complex64, copy=False).reshape(b, size * size)


Sampler = Callable[[Any, Any, Any], Any]
Warp = Callable[..., Any]  # as _warped, without ``xp``
TaskRunner = Callable[[Callable[[int], None], Sequence[int]], None]


def _gather_sampler(spectra: Any, index: Any, weight: Any) -> Any:
    """Generic interpolation: ``sum_t spectra[:, index[:, t]] * weight[:, t]``."""
    out = spectra[:, index[:, 0]] * weight[:, 0]
    for t in range(1, index.shape[1]):
        out += spectra[:, index[:, t]] * weight[:, t]
    return out


def polar_samples(
    stack: Any,
    grid: PolarGrid,
    *,
    mirror: bool = False,
    xp: Any,
    fft: Any = None,
    sampler: Sampler | None = None,
    batch: int = 64,
    run_tasks: TaskRunner | None = None,
) -> Any:
    """Sample the (mirrored) images' DTFT on the polar grid.

    Parameters
    ----------
    stack : Array, shape (B, n, n), float32
    grid : PolarGrid
    mirror : bool
        Sample ``X(-kx, ky)`` (the x-mirrored image).
    xp : module
    fft : module or None
        FFT namespace with ``fft2``; ``xp.fft`` by default.
    sampler : callable or None
        ``sampler(spectra (b, Q0) complex64, index (Q, 16), weight (Q, 16))
        -> (b, Q)``; a generic gather by default.
    batch : int
        Images transformed at a time.
    run_tasks : callable or None
        Runs the batches (see :func:`search_polar`); a plain loop by default.

    Returns
    -------
    Array, shape (B, R, L), complex64
    """
    fft = xp.fft if fft is None else fft
    sampler = _gather_sampler if sampler is None else sampler
    index, weight = _interp_plan(grid, mirror, xp)
    n_rings, half = len(grid.radii), grid.n_angles // 2
    out = xp.empty((stack.shape[0], n_rings, grid.n_angles), dtype=xp.complex64)

    def one_batch(b0: int) -> None:
        spectra = _padded_spectra(stack[b0 : b0 + batch], grid.n, xp, fft)
        values = sampler(spectra, index, weight).reshape(-1, n_rings, half)
        out[b0 : b0 + batch, :, :half] = values
        out[b0 : b0 + batch, :, half:] = xp.conj(values)

    _run(run_tasks, one_batch, range(0, stack.shape[0], batch))
    return out


def _reference_factors(
    references: Any,
    grid: PolarGrid,
    ring_w: Any,
    fweights: Sequence[Any],
    xp: Any,
    fft: Any,
    sampler: Sampler | None,
    run_tasks: TaskRunner | None,
    batch: int = 64,
) -> tuple[Any, list[Any]]:
    """The references' factors of the ring products, a batch per task.

    Returns ``b_w`` (K, R, G), complex64: the angular harmonics normalised to
    unit band norm, ring weights folded in; and for each Fourier metric
    weight the references' weighted squared norms relative to their band
    norm, (G,). Only the harmonics of a batch are held, never the gallery's
    full-circle samples.
    """
    n_ref = references.shape[0]
    b_w = xp.empty(
        (grid.n_harmonics, len(grid.radii), n_ref), dtype=xp.complex64
    )  # (K, R, G)
    wnorm = [xp.empty(n_ref, dtype=xp.float32) for _ in fweights]

    def one_batch(g0: int) -> None:
        g1 = min(n_ref, g0 + batch)
        part = polar_samples(references[g0:g1], grid, xp=xp, fft=fft, sampler=sampler)
        h = _harmonics(part, grid, xp, fft)
        norm, weighted = _band_norms(h, ring_w, fweights, grid, xp)
        xp.multiply(
            xp.transpose(h, (2, 1, 0)),
            (ring_w[:, None] / norm[None, :])[None, :, :],
            out=b_w[:, :, g0:g1],
        )
        for out, w in zip(wnorm, weighted, strict=True):
            out[g0:g1] = w

    _run(run_tasks, one_batch, range(0, n_ref, batch))
    return b_w, wnorm


def _run(run_tasks: TaskRunner | None, fn: Callable[[int], None], items: Any) -> None:
    """``run_tasks(fn, items)``, or a plain loop without a runner."""
    if run_tasks is None:
        for item in items:
            fn(item)
    else:
        run_tasks(fn, list(items))


def _harmonics(samples: Any, grid: PolarGrid, xp: Any, fft: Any) -> Any:
    """Angular harmonics ``0..K-1`` of ring samples (..., R, L), cut per ring."""
    keep = _harmonic_keep(tuple(grid.cutoffs.tolist()), grid.n_angles, xp)
    a = fft.fft(samples, axis=-1)[..., : grid.n_harmonics] * keep
    return a.astype(xp.complex64, copy=False)


@functools.lru_cache(maxsize=8)
def _harmonic_keep(cutoffs: tuple[int, ...], n_angles: int, xp: Any) -> Any:
    """``1 / L`` where ring ``r`` keeps harmonic ``k <= cutoffs[r]``, 0 beyond."""
    k = np.arange(max(cutoffs) + 1)
    keep = (k[None, :] <= np.asarray(cutoffs)[:, None]).astype(np.float32)
    return _constant(keep / np.float32(n_angles), xp)


def _multiplicity(grid: PolarGrid, xp: Any) -> Any:
    """1 for k = 0, 2 for k > 0 (the conjugate harmonic ``-k``)."""
    m = np.full(grid.n_harmonics, 2.0, dtype=np.float32)
    m[0] = 1.0
    return xp.asarray(m)


def _band_norms(
    h: Any, ring_w: Any, fweights: Sequence[Any], grid: PolarGrid, xp: Any
) -> tuple[Any, list[Any]]:
    """Band norms of harmonics (B, R, K) (1 where zero), and for each Fourier
    metric weight the weighted squared norms relative to the band norm's."""
    norm = xp.sqrt(_weighted_norm2(h, ring_w, grid, xp))
    norm = xp.where(norm > 0, norm, 1.0)
    return norm, [
        _weighted_norm2(h, ring_w * fw, grid, xp) / norm**2 for fw in fweights
    ]


def _weighted_norm2(h: Any, ring_weight: Any, grid: PolarGrid, xp: Any) -> Any:
    """``sum_r w_r sum_{|k|<=K_r} |h_{r,k}|^2`` for harmonics (B, R, K)."""
    power = (h.real**2 + h.imag**2) * _multiplicity(grid, xp)
    return xp.sum(xp.sum(power, axis=-1) * ring_weight, axis=-1)


def search_flops(
    n_images: int, n_refs: int, n: int, params: SearchParams
) -> dict[str, float]:
    """Floating-point operations of one :func:`search_polar` call.

    Returns
    -------
    dict
        ``gemm`` (8 flops per complex multiply-add of the ring products),
        ``irfft`` (``2.5 P log2 P`` per (row, reference) inverse FFT),
        ``total``.
    """
    grid = polar_grid(n, params)
    rows = n_images * len(shift_grid(params)) * (2 if params.mirror else 1)
    ring_terms = sum((k1 - k0) * (len(grid.radii) - r0) for k0, k1, r0 in grid.blocks)
    gemm = 8.0 * rows * n_refs * ring_terms
    irfft = 2.5 * grid.n_psi * math.log2(grid.n_psi) * rows * n_refs
    return {"gemm": gemm, "irfft": irfft, "total": gemm + irfft}


def _trig_value(coef: Any, psi: Any, mult: Any, xp: Any) -> Any:
    """``Re sum_k mult_k coef_k exp(i k psi)``; coef (K, p), psi (p,) radians."""
    k = xp.arange(coef.shape[0], dtype=xp.float32)[:, None]
    phase = xp.exp(1j * k * psi[None, :].astype(xp.float32))
    return xp.sum((mult[:, None] * coef * phase).real, axis=0)


def _trig_derivatives(coef: Any, psi: Any, mult: Any, xp: Any) -> tuple[Any, Any]:
    """First and second psi-derivatives of the harmonic sum (one exponential)."""
    k = xp.arange(coef.shape[0], dtype=xp.float32)[:, None]
    term = mult[:, None] * coef * xp.exp(1j * k * psi[None, :].astype(xp.float32))
    d1 = xp.sum((1j * k * term).real, axis=0)
    d2 = -xp.sum((k * k * term).real, axis=0)
    return d1, d2


def _refine(coef: Any, psi0: Any, step: float, mult: Any, xp: Any) -> tuple[Any, Any]:
    """Newton steps on the harmonic sum from ``psi0`` (radians), within a step."""
    psi = psi0
    for _ in range(3):
        d1, d2 = _trig_derivatives(coef, psi, mult, xp)
        delta = xp.where(d2 < 0, -d1 / xp.where(d2 < 0, d2, -1.0), 0.0)
        psi = xp.clip(psi + delta, psi0 - step, psi0 + step)
    value = _trig_value(coef, psi, mult, xp)
    start = _trig_value(coef, psi0, mult, xp)
    better = value >= start
    return xp.where(better, psi, psi0), xp.where(better, value, start)


def _psi_max(
    c: Any, ni: int, rows_per_image: int, nj: int, xp: Any
) -> tuple[Any, Any, Any]:
    """Best (mirror, shift) row and psi sample of every (image, reference) pair.

    Parameters
    ----------
    c : Array, shape (P, ni * rows_per_image * nj), float32
        Correlation samples over psi; column ``(i * rows_per_image + s) * nj + j``.

    Returns
    -------
    which : Array, shape (ni, nj), int
        Best row ``s`` (first on ties).
    m0 : Array, shape (ni, nj), int
        Its best psi sample (first on ties).
    around : Array, shape (3, ni, nj), float32
        ``c`` at samples ``m0 - 1, m0, m0 + 1`` (cyclic) of the best row.
    """
    n_psi = c.shape[0]
    arg = xp.argmax(c, axis=0)
    val = xp.take_along_axis(c, arg[None, :], axis=0)[0]
    which = xp.argmax(val.reshape(ni, rows_per_image, nj), axis=1)
    sel = (
        (xp.arange(ni)[:, None] * rows_per_image + which) * nj + xp.arange(nj)[None, :]
    ).ravel()
    m0 = arg[sel]
    around = xp.stack([c[(m0 + d) % n_psi, sel] for d in (-1, 0, 1)])
    return which, m0.reshape(ni, nj), around.reshape(3, ni, nj)


ChunkBest = tuple[Any, Any, Any, Any]


class ThreadScratch:
    """Working arrays reused across the chunks a thread processes.

    A fresh large array costs its page faults and the kernel's zeroing of
    every page on first touch (about 5% of a CPU search at 64²); each thread
    keeps one flat buffer per name instead, grown when a request is larger.
    Owned by one search, so the memory goes with it.
    """

    def __init__(self, xp: Any) -> None:
        self.xp = xp
        self._local = threading.local()

    def get(self, name: str, shape: tuple[int, ...], dtype: Any) -> Any:
        """An uninitialised C-contiguous array of ``shape``; valid until the
        same thread asks for ``name`` again."""
        buffers = self._local.__dict__.setdefault("buffers", {})
        size = math.prod(shape)
        flat = buffers.get(name)
        if flat is None or flat.dtype != dtype or flat.size < size:
            flat = self.xp.empty(size, dtype=dtype)
            buffers[name] = flat
        return flat[:size].reshape(shape)


class ImageCache:
    """What the searches of one set of images share (a run's iterations).

    The images' polar samples and norms, and, up to ``rows_budget`` bytes,
    each image chunk's prepared (mirror, shift) rows: the rows depend on the
    images and the search parameters only, and forming them is about a sixth
    of a CPU search at 64². One set of images at a time: a new key drops the
    old entry. Host memory only (the ``cpu`` backend's).

    Parameters
    ----------
    rows_budget : int
        Bytes of prepared rows kept; chunks beyond it are formed again by
        every search.
    """

    def __init__(self, rows_budget: int = 0) -> None:
        self.rows_budget = rows_budget
        self._key: Hashable = None
        self._factors: Any = None
        self._rows: dict[Hashable, Any] = {}
        self._rows_bytes = 0
        self._lock = threading.Lock()

    def factors(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """The entry's image factors, made (and the old entry dropped) on a new key."""
        if self._factors is None or key != self._key:
            self._key, self._factors = None, None
            self._rows.clear()
            self._rows_bytes = 0
            self._factors = make()
            self._key = key
        return self._factors

    def rows(self, name: Hashable) -> Any:
        """The rows kept under ``name`` for the current images, or None."""
        return self._rows.get(name)

    def keep_rows(self, name: Hashable, make: Callable[[], Any], nbytes: int) -> None:
        """Keep ``make()`` (owned arrays of ``nbytes``, never written) under
        ``name`` if the budget allows; ``make`` is not called where it does not."""
        with self._lock:
            if self._rows_bytes + nbytes > self.rows_budget:
                return
            self._rows_bytes += nbytes
        self._rows[name] = make()

    @property
    def rows_bytes(self) -> int:
        """Bytes of rows kept now."""
        return self._rows_bytes

    def __getstate__(self) -> dict[str, int]:
        """Pickle the budget only: a copy sent elsewhere starts empty."""
        return {"rows_budget": self.rows_budget}

    def __setstate__(self, state: dict[str, int]) -> None:
        """An empty cache with the pickled budget."""
        self.__init__(state["rows_budget"])  # type: ignore[misc]


class RingSearch:
    """Ring products of a search chunk and their best row and psi sample.

    The exhaustive evaluation, written once against ``xp``: every harmonic
    block as one batched product, one inverse real FFT over psi per column.
    A backend may subclass it to evaluate fewer products (the ``cpu``
    backend prunes, exactly); :func:`search_polar` only calls these methods.

    Parameters
    ----------
    b_w : Array, shape (K, R, G), complex64
        Reference harmonics, normalised, ring weights folded in.
    grid : PolarGrid
    xp, fft : module
        Array and FFT namespaces.

    Attributes
    ----------
    bytes_per_column : int
        Working memory per (row, reference) column of a chunk, which sizes the
        reference chunks.
    """

    def __init__(self, b_w: Any, grid: PolarGrid, xp: Any, fft: Any) -> None:
        self.b_w = b_w
        self.grid = grid
        self.xp = xp
        self.fft = fft
        self.mult = _multiplicity(grid, xp)
        self.n_spec = grid.n_psi // 2 + 1  # rfft length; rows n_harm: stay zero
        self.scratch = ThreadScratch(xp)
        self.bytes_per_column = self.n_spec * 8 + grid.n_psi * 4 + 8

    def image_rows(
        self,
        samples: Any,
        norm: Any,
        phase_conj: Any,
        ref_chunk: int,
        kept: tuple[ImageCache, int] | None = None,
    ) -> Any:
        """Prepare an image chunk's (mirror, shift) rows for :meth:`best`.

        Parameters
        ----------
        samples : Array, shape (ni, M, R, L), complex64
            Polar samples of the images (and their mirrors).
        norm : Array, shape (ni,), float32
            The images' band norms.
        phase_conj : Array, shape (S, R, L), complex64
            Conjugate shift phases at the samples (:func:`_shift_phases`).
        ref_chunk : int
            The most references :meth:`best` will be called with.
        kept : (ImageCache, int) or None
            Where the chunk's harmonics are kept between searches, and the
            chunk's first image (its name there).

        Returns
        -------
        object
            The state :meth:`best` takes; row ``(i M + m) S + s``.
        """
        name = None if kept is None else ("harmonics", kept[1])
        a = None if kept is None else kept[0].rows(name)
        if a is None:
            a = self._harmonics(samples, norm, phase_conj)
            if kept is not None:  # ``a`` is a view of a temporary
                kept[0].keep_rows(name, lambda: self.xp.ascontiguousarray(a), a.nbytes)
        return self.rows(a, ref_chunk)

    def _harmonics(self, samples: Any, norm: Any, phase_conj: Any) -> Any:
        """Harmonics (rows, R, K) of the chunk's rows (see :meth:`image_rows`), a
        view of a temporary."""
        xp = self.xp
        ni, n_mirror, n_rings, n_angles = samples.shape
        # conj(fft(x) / L) = ifft(conj(x)): conjugate, normalise and shift in
        # the angle domain, one inverse FFT, one transposing copy. Harmonics
        # beyond a ring's cut-off meet zeros in ``b_w``.
        unit = xp.conj(samples) / norm[:, None, None, None]
        shifted = self.scratch.get(
            "shifted",
            (ni, n_mirror, phase_conj.shape[0], n_rings, n_angles),
            xp.complex64,
        )
        xp.multiply(
            unit[:, :, None, :, :], phase_conj[None, None, :, :, :], out=shifted
        )
        a = _ifft_temporary(self.fft, shifted.reshape(-1, n_rings, n_angles))
        return a[..., : self.grid.n_harmonics]

    def rows(self, a: Any, ref_chunk: int) -> Any:
        """Prepare an image chunk's harmonics for :meth:`best`.

        Parameters
        ----------
        a : Array, shape (rows, R, K), complex64
            Harmonics of the (conjugated, normalised, shifted) image rows; a
            view, not necessarily contiguous.
        ref_chunk : int
            The most references :meth:`best` will be called with.
        """
        xp = self.xp
        a = xp.ascontiguousarray(xp.transpose(a, (2, 0, 1)))  # (K, rows, R)
        # One work buffer for all reference chunks (no fresh pages per chunk).
        work = self.scratch.get(
            "products", (self.n_spec * a.shape[1] * ref_chunk,), a.dtype
        )
        return a, work

    def best(self, state: Any, j0: int, j1: int, ni: int, rpi: int) -> ChunkBest:
        """Best row and psi sample of each (image, reference) pair of a chunk.

        Parameters
        ----------
        state : object
            From :meth:`rows` (``ni * rpi`` rows).
        j0, j1 : int
            References ``j0:j1``.
        ni, rpi : int
            Images and rows (mirror, shift) per image.

        Returns
        -------
        which, m0 : Array, shape (ni, nj), int
            Best row and its best psi sample (first on ties).
        around : Array, shape (3, ni, nj), float32
            The inverse real FFT of the best row's harmonics (the correlation
            over psi divided by ``P``) at samples ``m0 - 1, m0, m0 + 1``.
        coef : object
            The best rows' harmonics, for :meth:`refine`.
        """
        xp, grid = self.xp, self.grid
        a, work = state
        rows, nj = a.shape[1], j1 - j0
        n_rings = len(grid.radii)
        c_k = work[: self.n_spec * rows * nj].reshape(self.n_spec, rows, nj)
        c_k[grid.n_harmonics :] = 0
        for k0, k1, r0 in grid.blocks:
            # A one-ring block is an outer product: cheaper elementwise.
            product = xp.multiply if r0 == n_rings - 1 else xp.matmul
            product(a[k0:k1, :, r0:], self.b_w[k0:k1, r0:, j0:j1], out=c_k[k0:k1])
        c = self.fft.irfft(c_k.reshape(self.n_spec, -1), n=grid.n_psi, axis=0)
        which, m0, around = _psi_max(c, ni, rpi, nj, xp)
        flat_row = (xp.arange(ni)[:, None] * rpi + which).ravel()
        flat_col = xp.tile(xp.arange(nj), ni)
        return which, m0, around, c_k[: grid.n_harmonics, flat_row, flat_col]

    def refine(self, coef: Any, psi0: Any, step: float) -> tuple[Any, Any]:
        """Newton refinement of each pair's harmonic sum within ``step`` of ``psi0``."""
        return _refine(coef, psi0, step, self.mult, self.xp)

    def cross(
        self, state: Any, weight: Any, j0: int, rows: Any, cols: Any, psi: Any
    ) -> Any:
        """``Re sum_k m_k e^{i k psi} sum_r weight_r a[k, row, r] b_w[k, r, j0 + col]``.

        The ring-weighted cross term of listed pairs (the Fourier-metric
        distances), ``psi`` in radians.
        """
        xp = self.xp
        a = state[0]
        bw = self.b_w[:, :, j0 + cols] * weight[None, :, None]  # (K, R, p)
        cross = xp.matmul(  # per (k, pair): a_row . bw over rings
            a[:, rows, None, :], xp.transpose(bw, (0, 2, 1))[..., None]
        )[..., 0, 0]
        return _trig_value(cross, psi, self.mult, xp)


RingSearchFactory = Callable[[Any, PolarGrid, Any, Any], RingSearch]


def search_polar(
    images: Any,
    references: Any,
    params: SearchParams,
    metrics: Sequence[Metric] = (),
    *,
    xp: Any,
    fft: Any = None,
    sampler: Sampler | None = None,
    budget_bytes: int = 64 * 2**20,
    run_tasks: TaskRunner | None = None,
    ring_search: RingSearchFactory = RingSearch,
    image_cache: ImageCache | None = None,
    warp: Warp | None = None,
) -> SearchResult:
    """Align every image to every reference (the fast path of DESIGN §5.3).

    Parameters
    ----------
    images : Array, shape (N, n, n), float32
    references : Array, shape (G, n, n), float32
    params : SearchParams
    metrics : sequence of Metric
        Evaluated at each pair's chosen alignment (see the module notes).
    xp : module
        ``numpy`` or ``cupy``; the inputs live in it.
    fft : module or None
        FFT namespace (``fft2``, ``fft``, ``ifft``, ``irfft``); ``xp.fft`` by default
        (the CPU backend passes a multi-threaded ``scipy.fft``).
    sampler : callable or None
        Polar interpolation kernel (see :func:`polar_samples`).
    budget_bytes : int
        Target size of the per-chunk working arrays (per task).
    run_tasks : callable or None
        ``run_tasks(fn, items)`` calls ``fn(item)`` once per item, in any
        order and possibly concurrently (each call writes disjoint rows of
        the result); a plain loop by default. The CPU backend runs them on
        threads with single-threaded BLAS.
    ring_search : callable
        ``ring_search(b_w, grid, xp, fft) -> RingSearch``: evaluates the ring
        products and their max (:class:`RingSearch`, exhaustive, by default).
    image_cache : ImageCache or None
        Keeps the images' polar samples and norms, and their chunks' prepared
        rows up to its budget, between calls, keyed by the images' content,
        the parameters and the metrics' weights (host arrays only). The
        iterations of a run search the same images: from the second on,
        mostly the references are prepared.
    warp : callable or None
        Warps the pairs' spectra for metrics without a Fourier form
        (:func:`_warped`'s arguments without ``xp``); :func:`_warped` by
        default (the CPU backend passes a numba loop).

    Returns
    -------
    SearchResult
        Host arrays; the only device-to-host copy is of these tables.
    """
    fft = xp.fft if fft is None else fft
    images = xp.asarray(images, dtype=xp.float32)
    references = xp.asarray(references, dtype=xp.float32)
    n_img, n_ref, n = validate_inputs(images, references)
    grid = polar_grid(n, params)
    shifts = shift_grid(params)
    n_shift = len(shifts)
    mirrors = (False, True) if params.mirror else (False,)
    n_mirror = len(mirrors)
    n_psi = grid.n_psi
    ring_w = xp.asarray(grid.weights.astype(np.float32))

    fourier = [m for m in metrics if hasattr(m, "fourier_weight")]
    others = [m for m in metrics if not hasattr(m, "fourier_weight")]
    freq = xp.asarray((grid.radii / n).astype(np.float32))
    fweights = [
        xp.asarray(m.fourier_weight(freq, xp), dtype=xp.float32) for m in fourier
    ]
    # References: harmonics (K, R, G), normalised, weights folded in.
    b_w, ref_wnorm = _reference_factors(
        references, grid, ring_w, fweights, xp, fft, sampler, run_tasks
    )
    evaluator = ring_search(b_w, grid, xp, fft)

    # Images: polar samples per mirror, norms (shift/rotation invariant); the
    # same every iteration of a run, so kept by a caller that passes a cache.
    def prepare_images() -> tuple[Any, Any, list[Any]]:
        return _image_factors(
            images, grid, mirrors, ring_w, fweights, xp, fft, sampler, run_tasks
        )

    if image_cache is None:
        factors = prepare_images()
    else:
        key = (
            _fingerprint(images),
            params,
            tuple(_fingerprint(fw) for fw in fweights),
        )
        factors = image_cache.factors(key, prepare_images)
    samples, img_norm, img_wnorm = factors
    phase_conj = _shift_phases(  # (S, R, L)
        n,
        grid.n_angles,
        tuple(grid.radii.tolist()),
        tuple(map(tuple, shifts.tolist())),
        xp,
    )

    corr = xp.empty((n_img, n_ref), dtype=xp.float32)
    psi_out = xp.empty((n_img, n_ref), dtype=xp.float32)
    best_row = xp.empty((n_img, n_ref), dtype=xp.int64)
    extra = [xp.empty((n_img, n_ref), dtype=xp.float32) for _ in fourier]

    rows_per_image = n_mirror * n_shift
    img_chunk = max(1, min(n_img, 512 // rows_per_image))
    ref_chunk = max(
        1,
        min(
            n_ref,
            budget_bytes // (evaluator.bytes_per_column * rows_per_image * img_chunk),
        ),
    )
    psi_step = 2.0 * np.pi / n_psi

    def image_task(i0: int) -> None:
        """Score images ``i0 : i0 + img_chunk`` against every reference."""
        i1 = min(n_img, i0 + img_chunk)
        ni = i1 - i0
        state = evaluator.image_rows(
            samples[i0:i1],
            img_norm[i0:i1],
            phase_conj,
            ref_chunk,
            None if image_cache is None else (image_cache, i0),
        )
        for j0 in range(0, n_ref, ref_chunk):
            j1 = min(n_ref, j0 + ref_chunk)
            nj = j1 - j0
            which, m0, around, coef = evaluator.best(state, j0, j1, ni, rows_per_image)
            flat_row = (xp.arange(ni)[:, None] * rows_per_image + which).ravel()
            flat_col = xp.tile(xp.arange(nj), ni)
            m0 = m0.ravel()
            left, mid, right = (around[d].ravel() for d in range(3))
            curv = left - 2.0 * mid + right
            off = xp.where(
                curv < 0, 0.5 * (left - right) / xp.where(curv < 0, curv, -1.0), 0.0
            )
            psi0 = (m0.astype(xp.float32) + xp.clip(off, -0.5, 0.5)) * psi_step
            psi_ref, value = evaluator.refine(coef, psi0, psi_step)
            corr[i0:i1, j0:j1] = value.reshape(ni, nj)
            psi_out[i0:i1, j0:j1] = psi_ref.reshape(ni, nj)
            best_row[i0:i1, j0:j1] = which
            for e, fw in enumerate(fweights):
                cross_val = evaluator.cross(state, fw, j0, flat_row, flat_col, psi_ref)
                d2 = (
                    img_wnorm[e][i0:i1][:, None]
                    + ref_wnorm[e][None, j0:j1]
                    - 2.0 * cross_val.reshape(ni, nj)
                )
                extra[e][i0:i1, j0:j1] = xp.sqrt(xp.maximum(d2 * n * n, 0.0))

    _run(run_tasks, image_task, range(0, n_img, img_chunk))

    host_rows = _host(best_row)
    mirror = host_rows // n_shift
    chosen = shifts[host_rows % n_shift]
    psi_deg = wrap_psi(np.rad2deg(_host(psi_out).astype(np.float64)))
    result_metrics = {m.name: _host(v) for m, v in zip(fourier, extra, strict=True)}
    if others:
        result_metrics.update(
            _real_space_metrics(
                images,
                references,
                psi_deg,
                mirror > 0,
                chosen,
                params,
                others,
                xp,
                warp,
                fft,
            )
        )
    return SearchResult(
        correlation=np.clip(_host(corr), -1.0, 1.0).astype(np.float32),
        psi=psi_deg,
        shifts=chosen,
        mirror=np.asarray(mirror > 0),
        metrics=result_metrics,
    )


def _image_factors(
    images: Any,
    grid: PolarGrid,
    mirrors: Sequence[bool],
    ring_w: Any,
    fweights: Sequence[Any],
    xp: Any,
    fft: Any,
    sampler: Sampler | None,
    run_tasks: TaskRunner | None,
) -> tuple[Any, Any, list[Any]]:
    """Polar samples (N, M, R, L) of the images, band norms and weighted norms."""
    samples = xp.stack(
        [
            polar_samples(
                images,
                grid,
                mirror=m,
                xp=xp,
                fft=fft,
                sampler=sampler,
                batch=16,  # a few hundred images: small tasks balance the threads
                run_tasks=run_tasks,
            )
            for m in mirrors
        ],
        axis=1,
    )
    norm, wnorm = _band_norms(
        _harmonics(samples[:, 0], grid, xp, fft), ring_w, fweights, grid, xp
    )
    return samples, norm, wnorm


def _fingerprint(array: Any) -> tuple[Any, ...]:
    """Shape, dtype and a content digest of a host array (cache keys)."""
    data = np.ascontiguousarray(array)
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    return data.shape, str(data.dtype), digest


def _ifft_temporary(fft: Any, x: Any) -> Any:
    """Inverse FFT along the last axis of a temporary ``x`` (it may be overwritten).

    ``scipy.fft`` then works in place (a third less time on the image rows);
    NumPy's and CuPy's ``fft`` have no such option.
    """
    if getattr(fft, "__name__", "") == "scipy.fft":
        return fft.ifft(x, axis=-1, overwrite_x=True)
    return fft.ifft(x, axis=-1)


def _host(array: Any) -> NDArray[Any]:
    """Device -> host copy (no-op for NumPy)."""
    return np.asarray(array.get() if hasattr(array, "get") else array)


def aligned_pairs(
    images: Any,
    references: Any,
    psi: NDArray[np.float64],
    mirror: NDArray[np.bool_],
    shifts: NDArray[np.float64],
    params: SearchParams,
    *,
    xp: Any,
) -> tuple[Any, Any]:
    """Band-limited aligned images and references for listed pairs.

    Parameters
    ----------
    images : Array, shape (p, n, n)
        One image per pair (repeat rows as needed).
    references : Array, shape (p, n, n)
    psi, mirror, shifts : ndarray, shape (p,), (p,), (p, 2)
        The alignment of each pair (degrees, bool, pixels).
    params : SearchParams
    xp : module

    Returns
    -------
    aligned, refs : Array, shape (p, n, n), float32
        Real images filtered by ``sqrt(H)`` (the band filter of the score, as
        in ``search_reference``); ``aligned[q]`` is image q mirrored,
        shifted and rotated onto ``refs[q]`` (the definition's ``Y``), sampled
        from the x2-padded DFT by Keys cubic interpolation.
    """
    n = images.shape[-1]
    band = _band_filter(n, params, xp)
    spectra = _padded_spectra(xp.asarray(images, dtype=xp.float32), n, xp, xp.fft)
    which = np.arange(images.shape[0])
    aligned = _aligned(spectra, which, psi, mirror, shifts, band, xp)
    return aligned, _band_limited(references, band, xp)


def _band_filter(n: int, params: SearchParams, xp: Any) -> Any:
    """``sqrt(H)`` on the centred (n, n) grid, 0 at DC and beyond the band.

    The filter of the correlation's definition (``band_weight``), so that the
    real-space correlation of a filtered aligned pair is the search's score,
    as in the reference (``search_reference``).
    """
    radius = band_radius(n, params)
    k = np.arange(n) - n // 2
    ky, kx = np.meshgrid(k, k, indexing="ij")
    r2 = kx**2 + ky**2
    inside = (r2 > 0) & (r2 <= radius**2 + 1e-9)
    weight = np.sqrt(band_weight(np.sqrt(r2), n, params)) * inside
    return xp.asarray(weight.astype(np.float32))


def _band_limited(references: Any, band: Any, xp: Any, fft: Any = None) -> Any:
    """Real references filtered by ``band`` (centred, :func:`_band_filter`), float32.

    ``fft``: the transforms' namespace, ``xp.fft`` by default.
    """
    refs = xp.fft.fftshift(
        (fft or xp.fft).fft2(
            xp.fft.ifftshift(xp.asarray(references, dtype=xp.float32), axes=(-2, -1)),
            axes=(-2, -1),
        ),
        axes=(-2, -1),
    )
    return _centred_real(refs * band, xp, fft)


def _aligned(
    spectra: Any,
    which: NDArray[np.int64],
    psi: NDArray[np.float64],
    mirror: NDArray[np.bool_],
    shifts: NDArray[np.float64],
    band: Any,
    xp: Any,
    warp: Warp | None = None,
    fft: Any = None,
) -> Any:
    """Aligned band-limited real images of pairs from their images' padded DFTs.

    ``spectra`` (B, (2n)²) from :func:`_padded_spectra`; pair ``q`` uses row
    ``which[q]``; ``band`` the centred filter (:func:`_band_filter`). Only the
    frequencies inside the band are warped, by ``warp`` (the ``cpu``
    backend's numba kernel) or :func:`_warped`; ``fft`` (``xp.fft`` by
    default) brings them back to real space.
    """
    n = band.shape[-1]
    half = n // 2
    filt = _host(band).ravel()
    inside = np.flatnonzero(filt)
    ky, kx = np.divmod(inside, n)
    # Written in FFT order (no ifftshift); for even n, (-1)^(kx + ky) (exact)
    # centres the inverse transform (no fftshift).
    dest = ((ky - half) % n) * n + (kx - half) % n
    weight = filt[inside]
    if n % 2 == 0:
        weight = weight * np.where((kx + ky) % 2 == 0, 1.0, -1.0).astype(np.float32)
    y = (warp or functools.partial(_warped, xp=xp))(
        spectra,
        np.asarray(which),
        inside,
        dest,
        np.deg2rad(np.asarray(psi, dtype=np.float64)),
        np.asarray(mirror, dtype=np.bool_),
        np.asarray(shifts, dtype=np.float64),
        weight,
        n,
    )
    real = (fft or xp.fft).ifft2(y.reshape(-1, n, n), axes=(-2, -1)).real
    if n % 2:
        real = xp.fft.fftshift(real, axes=(-2, -1))
    return real.astype(xp.float32)


def _warped(
    spectra: Any,
    which: NDArray[np.int64],
    inside: NDArray[np.int64],
    dest: NDArray[np.int64],
    psi: NDArray[np.float64],
    mirror: NDArray[np.bool_],
    shifts: NDArray[np.float64],
    filt: NDArray[np.float32],
    n: int,
    *,
    xp: Any,
) -> Any:
    """Pairs' aligned spectra, (p, n * n) complex64, 0 but at ``dest``.

    Pair ``q``: image ``which[q]`` mirrored, rotated by ``psi[q]`` (radians)
    and shifted, Keys-interpolated from its padded DFT at the centred
    frequencies ``inside`` (flat indices), times ``filt``, written at
    ``dest`` (flat indices of the output, e.g. in FFT order). The
    geometry is float64 on the host: each axis's four weights and wrapped
    indices are formed once, each tap with its branch of the kernel, and the
    phase of the rotated frequency ``R(-psi) k`` is the product of an x and a
    y factor.
    """
    size = _PAD * n
    k = np.arange(n, dtype=np.float64) - n // 2
    kx, ky = k[inside % n][None, :], k[inside // n][None, :]
    c, s = np.cos(psi)[:, None], np.sin(psi)[:, None]
    sign = np.where(mirror, -1.0, 1.0)[:, None]
    ux = _PAD * sign * (c * kx + s * ky)  # R(-psi) k, x mirrored
    uy = _PAD * (-s * kx + c * ky)
    taps_x = _keys_taps(ux, size, 1)
    taps_y = _keys_taps(uy, size, size)
    out = xp.zeros((len(psi), len(inside)), dtype=xp.complex64)
    rows = xp.asarray(which)[:, None]
    for wy, iy in taps_y:
        for wx, ix in taps_x:
            w = (wx * wy).astype(np.float32)
            out += spectra[rows, xp.asarray(iy + ix)] * xp.asarray(w)
    # exp(-2 pi i (sx qx + sy qy) / n) with q = R(-psi) k, as x and y factors.
    alpha = (c * shifts[:, 0, None] - s * shifts[:, 1, None]) / n
    beta = (s * shifts[:, 0, None] + c * shifts[:, 1, None]) / n
    phase = np.exp(-2j * np.pi * alpha * kx) * np.exp(-2j * np.pi * beta * ky)
    phase *= filt
    y = xp.zeros((len(psi), n * n), dtype=xp.complex64)
    y[:, xp.asarray(dest)] = out * xp.asarray(phase.astype(np.complex64))
    return y


def _keys_taps(u: NDArray[np.float64], size: int, stride: int) -> list[Any]:
    """The four (Keys weight, wrapped index x stride) taps along one axis.

    Taps ``floor(u) + d``, ``d = -1 .. 2``, at distances ``t = |u - floor(u) - d|``
    in [1, 2), [0, 1), (0, 1] and (1, 2]: each takes its branch of
    :func:`_keys` (the branches agree, at 0, where they meet).
    """
    f = np.floor(u)
    base = f.astype(np.int64)
    taps = []
    for d in range(-1, 3):
        t = np.abs(u - (f + d))
        if d in (0, 1):
            w = (1.5 * t - 2.5) * t * t + 1.0
        else:
            w = ((-0.5 * t + 2.5) * t - 4.0) * t + 2.0
        i = base + d
        taps.append((w, np.where(i < 0, i + size, i) * stride))
    return taps


def _centred_real(spectrum: Any, xp: Any, fft: Any = None) -> Any:
    """Centred spectra -> real images centred at ``n // 2``, float32.

    ``fft``: the inverse transform's namespace, ``xp.fft`` by default.
    """
    shifted = xp.fft.ifftshift(spectrum, axes=(-2, -1))
    real = (fft or xp.fft).ifft2(shifted, axes=(-2, -1)).real
    return xp.fft.fftshift(real, axes=(-2, -1)).astype(xp.float32)


def _real_space_metrics(
    images: Any,
    references: Any,
    psi: NDArray[np.float64],
    mirror: NDArray[np.bool_],
    shifts: NDArray[np.float64],
    params: SearchParams,
    metrics: Sequence[Metric],
    xp: Any,
    warp: Warp | None = None,
    fft: Any = None,
    chunk: int = 256,
) -> dict[str, NDArray[Any]]:
    """Metrics without a Fourier form, on aligned real-space pairs.

    As :func:`aligned_pairs`, but each image's padded DFT and each
    band-limited reference are formed once, not once per pair; the pairs of
    an image are warped ``chunk`` at a time (by ``warp`` and ``fft``, see
    :func:`_aligned`).
    """
    n_img, n_ref = psi.shape
    n = images.shape[-1]
    band = _band_filter(n, params, xp)
    refs = _band_limited(references, band, xp, fft)
    out = {m.name: np.empty((n_img, n_ref), dtype=np.float32) for m in metrics}
    for i in range(n_img):
        spectra = _padded_spectra(
            xp.asarray(images[i : i + 1], dtype=xp.float32), n, xp, xp.fft
        )
        for j0 in range(0, n_ref, chunk):
            j1 = min(n_ref, j0 + chunk)
            aligned = _aligned(
                spectra,
                np.zeros(j1 - j0, dtype=np.int64),
                psi[i, j0:j1],
                mirror[i, j0:j1],
                shifts[i, j0:j1],
                band,
                xp,
                warp,
                fft,
            )
            for m in metrics:
                out[m.name][i, j0:j1] = _host(m.score(aligned, refs[j0:j1], xp))
    return out
