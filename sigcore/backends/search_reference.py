"""The alignment score, its search grid, and the brute-force reference search.

This module owns the *definition* every backend's search honours (DESIGN
§5.3), and the obviously-correct oracle that evaluates it on an explicit grid.

Definition of the score
-----------------------
Let ``X(k) = sum_p x(p) exp(-2 pi i k.p / n)`` be the discrete-time Fourier
transform of image ``x`` (pixel coordinates ``p`` relative to the centre
``n // 2``; ``k`` in DFT index units, frequency ``|k| / n`` cycles/px),
defined for every real ``k``. The image mirrored in x has ``X(-kx, ky)``;
translated by ``+s`` it has ``X(k) exp(-2 pi i k.s / n)`` (a periodic Fourier
shift); rotated so that it matches the projection at in-plane angle ``psi``
(``sigcore.alignment`` contract) the aligned image is

    Y(k) = Z(R(-psi) k),   Z(k) = X_m(k) exp(-2 pi i k.s / n),

with ``R(a)`` the counter-clockwise rotation by ``a`` in ``(x, y)``
(``x`` = column, ``y`` = row). The score of ``(psi, s, m)`` against reference
``P`` is the Pearson correlation of the band-limited images,

    c = Re sum_{k in B} Y(k) conj(P(k)) / (||Y||_B ||P||_B),
    B = {k : 0 < |k| <= max_frequency * n},

i.e. the DC term is excluded (both images have zero mean) and everything above
``max_frequency`` cycles/px is ignored. This is the normalised correlation of
the images low-pass filtered to ``B``; on the integer grid it is exactly the
real-space Pearson correlation of the filtered images (Parseval).

The brute force evaluates the sum over the integer grid points of ``B`` with
``X`` computed exactly at the rotated points (a direct non-uniform DFT); the
fast search (:mod:`sigcore.backends.polar`) evaluates the same band integral
on polar rings. Shifts are the integer grid ``shift_grid(params)`` (a square
window, so no shift ever exceeds ``max_shift`` and no penalty is needed); psi
is searched on a grid and refined locally to its continuous maximum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from sigcore.alignment import SearchParams, SearchResult
from sigcore.errors import ConfigError

if TYPE_CHECKING:
    from sigcore.protocols import Metric

_LOW_EDGE = 2.0  # index units over which the band filter rises from DC
_SPACING = 0.5  # frequency grid step of the band sum (index units)

__all__ = [
    "band_radius",
    "band_weight",
    "default_psi_step",
    "search_bruteforce",
    "shift_grid",
    "validate_inputs",
    "wrap_psi",
]


def band_radius(n: int, params: SearchParams) -> float:
    """Radius of the correlation band in DFT index units (``max_frequency * n``)."""
    if not 0.0 < params.max_frequency <= 0.5:
        raise ConfigError(
            f"max_frequency must be in (0, 0.5] cycles/px, got {params.max_frequency}"
        )
    return float(params.max_frequency) * n


def band_weight(radius: Any, n: int, params: SearchParams) -> Any:
    """The band filter ``H`` at radii ``radius`` (DFT index units).

    ``H`` rises as ``sin^2`` from 0 at DC to 1 at ``_LOW_EDGE`` index units
    and falls as ``cos^2`` to 0 over the last ``max(2, 0.15 r_max)`` units
    before ``r_max = max_frequency * n``; 0 beyond. A smooth edge makes the
    band integral converge fast on any quadrature (polar or Cartesian).
    """
    r_max = band_radius(n, params)
    taper = max(2.0, 0.15 * r_max)
    low = min(_LOW_EDGE, 0.5 * (r_max - taper)) if r_max > taper else 0.25 * r_max
    r = np.asarray(radius, dtype=np.float64)
    rise = np.sin(0.5 * np.pi * np.clip(r / low, 0.0, 1.0)) ** 2
    fall = np.cos(0.5 * np.pi * np.clip((r - (r_max - taper)) / taper, 0.0, 1.0)) ** 2
    return rise * fall


def default_psi_step(n: int, params: SearchParams) -> float:
    """Psi grid step, degrees: ``params.psi_step`` or ``360 / (2 pi r_max)``."""
    if params.psi_step is not None:
        if params.psi_step <= 0:
            raise ConfigError(f"psi_step must be > 0 degrees, got {params.psi_step}")
        return float(params.psi_step)
    return 360.0 / (2.0 * math.pi * max(band_radius(n, params), 1.0))


def shift_grid(params: SearchParams) -> NDArray[np.float64]:
    """The searched shifts: a square grid, x fastest.

    Parameters
    ----------
    params : SearchParams
        ``max_shift`` (pixels, per axis) and ``shift_step`` (pixels).

    Returns
    -------
    ndarray, shape (S, 2), float64
        ``(sx, sy)`` in pixels, RELION sign; ``(0, 0)`` is always included.
    """
    if params.max_shift < 0:
        raise ConfigError(f"max_shift must be >= 0 pixels, got {params.max_shift}")
    if params.shift_step <= 0:
        raise ConfigError(f"shift_step must be > 0 pixels, got {params.shift_step}")
    m = math.floor(params.max_shift / params.shift_step + 1e-9)
    axis = np.arange(-m, m + 1, dtype=np.float64) * params.shift_step
    sy, sx = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([sx.ravel(), sy.ravel()], axis=-1)


def wrap_psi(psi: NDArray[np.float64]) -> NDArray[np.float64]:
    """Wrap angles in degrees to ``(-180, 180]``."""
    wrapped = np.mod(np.asarray(psi, dtype=np.float64) + 180.0, 360.0) - 180.0
    return np.where(wrapped <= -180.0, 180.0, wrapped)


def validate_inputs(images: Any, references: Any) -> tuple[int, int, int]:
    """Check the shapes of a search's inputs; return ``(N, G, n)``."""
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise ConfigError(f"images must be (N, n, n), got shape {images.shape}")
    if references.ndim != 3 or references.shape[1:] != images.shape[1:]:
        raise ConfigError(
            f"references must be (G, {images.shape[1]}, {images.shape[2]}), "
            f"got shape {references.shape}"
        )
    return images.shape[0], references.shape[0], images.shape[1]


def _band_points(n: int, radius: float, spacing: float = 1.0) -> NDArray[np.float64]:
    """Grid frequencies ``(kx, ky)`` (step ``spacing``) with ``0 < |k| <= radius``."""
    m = math.ceil(radius / spacing) + 1
    k = np.arange(-m, m + 1, dtype=np.float64) * spacing
    ky, kx = np.meshgrid(k, k, indexing="ij")
    r2 = kx**2 + ky**2
    keep = (r2 > 0) & (r2 <= radius**2 + 1e-9)
    return np.stack([kx[keep], ky[keep]], axis=-1)


def _dtft(images: NDArray[np.float64], points: NDArray[np.float64]) -> NDArray[Any]:
    """Exact DTFT of ``images`` (N, n, n) at ``points`` (M, 2); returns (N, M)."""
    n = images.shape[-1]
    p = np.arange(n, dtype=np.float64) - n // 2
    ex = np.exp(-2j * np.pi * np.outer(points[:, 0], p) / n)  # (M, n) over x
    ey = np.exp(-2j * np.pi * np.outer(points[:, 1], p) / n)  # (M, n) over y
    rows = np.einsum("iyx,mx->imy", images, ex, optimize=True)
    return np.einsum("imy,my->im", rows, ey, optimize=True)


def _rotated(points: NDArray[np.float64], psi_deg: float) -> NDArray[np.float64]:
    """``R(-psi) k`` for every point ``k``."""
    a = math.radians(psi_deg)
    c, s = math.cos(a), math.sin(a)
    x, y = points[:, 0], points[:, 1]
    return np.stack([c * x + s * y, -s * x + c * y], axis=-1)


def _transformed(
    images: NDArray[np.float64],
    points: NDArray[np.float64],
    psi: float,
    mirror: bool,
    shifts: NDArray[np.float64],
) -> NDArray[Any]:
    """``Y(k)`` of the definition for every image and shift: (N, S, M)."""
    n = images.shape[-1]
    kp = _rotated(points, psi)
    sample = kp * np.array([-1.0, 1.0]) if mirror else kp
    x = _dtft(images, sample)
    phase = np.exp(-2j * np.pi * (shifts @ kp.T) / n)  # (S, M)
    return x[:, None, :] * phase[None, :, :]


def _scores(y: NDArray[Any], ref_unit: NDArray[Any]) -> NDArray[np.float64]:
    """Correlations of ``y`` (..., M) with unit-norm references (G, M)."""
    norm = np.sqrt(np.sum(np.abs(y) ** 2, axis=-1, keepdims=True))
    unit = y / np.where(norm > 0, norm, 1.0)
    return unit.real @ ref_unit.real.T + unit.imag @ ref_unit.imag.T


def search_bruteforce(
    images: Any,
    references: Any,
    params: SearchParams,
    metrics: Sequence[Metric] = (),
    *,
    xp: Any = np,
) -> SearchResult:
    """Align every image to every reference by exhaustive search (the oracle).

    Every psi on a grid of step ``default_psi_step`` (halved), every shift of
    :func:`shift_grid` and both mirrors (when ``params.mirror``) are scored
    exactly as in the module's definition; the best grid point per pair is
    then refined in psi by successive parabolic fits to exact evaluations
    (step/4, step/8, step/16). Cost ``O(N n² M P)`` for ``P`` psi samples and
    ``M`` band points: small cases only.

    Parameters
    ----------
    images : Array, shape (N, n, n), float32
    references : Array, shape (G, n, n), float32
    params : SearchParams
    metrics : sequence of Metric
        Evaluated with ``metric.score(aligned, refs, xp)`` at each pair's best
        alignment, on the images and references filtered to the band ``B``
        (aligned images in real space, centre ``n // 2``).
    xp : module
        Namespace of the inputs; the work is done in NumPy on the host.

    Returns
    -------
    SearchResult
        Host arrays, shape (N, G) (shifts (N, G, 2)).
    """
    host_images = _to_host(images, xp)
    host_refs = _to_host(references, xp)
    n_img, n_ref, n = validate_inputs(host_images, host_refs)
    radius = band_radius(n, params)
    points = _band_points(n, radius, _SPACING)
    shifts = shift_grid(params)
    step = default_psi_step(n, params) / 2.0
    n_psi = math.ceil(360.0 / step)
    psis = np.arange(n_psi) * (360.0 / n_psi)
    mirrors = (False, True) if params.mirror else (False,)

    filt = np.sqrt(band_weight(np.hypot(points[:, 0], points[:, 1]), n, params))
    ref_hat = _dtft(host_refs, points) * filt
    ref_norm = np.sqrt(np.sum(np.abs(ref_hat) ** 2, axis=-1, keepdims=True))
    ref_unit = ref_hat / np.where(ref_norm > 0, ref_norm, 1.0)

    best = np.full((n_img, n_ref), -np.inf)
    best_psi = np.zeros((n_img, n_ref))
    best_shift = np.zeros((n_img, n_ref), dtype=np.int64)
    best_mirror = np.zeros((n_img, n_ref), dtype=bool)
    for mirror in mirrors:
        for psi in psis:
            y = _transformed(host_images, points, psi, mirror, shifts) * filt
            c = _scores(y, ref_unit)  # (N, S, G)
            s_best = np.argmax(c, axis=1)
            c_best = np.take_along_axis(c, s_best[:, None, :], axis=1)[:, 0, :]
            better = c_best > best
            best = np.where(better, c_best, best)
            best_psi = np.where(better, psi, best_psi)
            best_shift = np.where(better, s_best, best_shift)
            best_mirror = np.where(better, mirror, best_mirror)

    for i in range(n_img):
        for j in range(n_ref):
            best_psi[i, j], best[i, j] = _refine_psi(
                host_images[i : i + 1],
                ref_unit[j],
                points,
                best_psi[i, j],
                bool(best_mirror[i, j]),
                shifts[best_shift[i, j]],
                best[i, j],
                step,
                filt,
            )

    chosen_shifts = shifts[best_shift]
    result_metrics: dict[str, NDArray[Any]] = {}
    if metrics:
        aligned, filtered_refs = _aligned_pairs(
            host_images, host_refs, params, best_psi, best_mirror, chosen_shifts
        )
        for metric in metrics:
            values = metric.score(aligned, filtered_refs, np)
            result_metrics[metric.name] = np.asarray(values, dtype=np.float32).reshape(
                n_img, n_ref
            )
    return SearchResult(
        correlation=best.astype(np.float32),
        psi=wrap_psi(best_psi),
        shifts=chosen_shifts,
        mirror=best_mirror,
        metrics=result_metrics,
    )


def _refine_psi(
    image: NDArray[np.float64],
    ref_unit: NDArray[Any],
    points: NDArray[np.float64],
    psi: float,
    mirror: bool,
    shift: NDArray[np.float64],
    value: float,
    step: float,
    filt: NDArray[np.float64],
) -> tuple[float, float]:
    """Local maximisation in psi by parabolic fits to exact evaluations."""

    def score(angle: float) -> float:
        y = _transformed(image, points, angle, mirror, shift[None, :]) * filt
        return float(_scores(y, ref_unit[None, :])[0, 0, 0])

    h = step
    for _ in range(4):
        left, right = score(psi - h), score(psi + h)
        curvature = left - 2.0 * value + right
        if curvature < 0:
            delta = 0.5 * h * (left - right) / curvature
            delta = float(np.clip(delta, -h, h))
        else:
            delta = h if right > left else -h
        candidate = score(psi + delta)
        for angle, c in ((psi + delta, candidate), (psi - h, left), (psi + h, right)):
            if c > value:
                psi, value = angle, c
        h /= 2.0
    return psi, value


def _aligned_pairs(
    images: NDArray[np.float64],
    references: NDArray[np.float64],
    params: SearchParams,
    psi: NDArray[np.float64],
    mirror: NDArray[np.bool_],
    shifts: NDArray[np.float64],
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Aligned images and references filtered by ``sqrt(H)``, (N*G, n, n)."""
    n_img, n_ref = psi.shape
    n = images.shape[-1]
    points = _band_points(n, band_radius(n, params))
    filt = np.sqrt(band_weight(np.hypot(points[:, 0], points[:, 1]), n, params))
    index = ((points + n // 2) % n).astype(np.int64)
    aligned = np.zeros((n_img, n_ref, n, n), dtype=np.complex128)
    for i in range(n_img):
        for j in range(n_ref):
            y = _transformed(
                images[i : i + 1],
                points,
                psi[i, j],
                bool(mirror[i, j]),
                shifts[i, j][None],
            )
            aligned[i, j, index[:, 1], index[:, 0]] = y[0, 0] * filt
    ref_grid = np.zeros((n_ref, n, n), dtype=np.complex128)
    ref_grid[:, index[:, 1], index[:, 0]] = _dtft(references, points) * filt
    aligned_real = _to_real(aligned.reshape(-1, n, n))
    refs_real = _to_real(ref_grid)
    refs_pairs = np.broadcast_to(refs_real, (n_img, n_ref, n, n)).reshape(-1, n, n)
    return aligned_real, np.ascontiguousarray(refs_pairs)


def _to_real(spectrum: NDArray[Any]) -> NDArray[np.float32]:
    """Centred spectra (index ``k + n//2``) -> real images centred at ``n // 2``."""
    shifted = np.fft.ifftshift(spectrum, axes=(-2, -1))
    return np.fft.fftshift(np.fft.ifft2(shifted).real, axes=(-2, -1)).astype(np.float32)


def _to_host(array: Any, xp: Any) -> NDArray[np.float64]:
    """Host float64 copy of ``array``."""
    if xp is not np and hasattr(array, "get"):
        array = array.get()
    return np.asarray(array, dtype=np.float64)
