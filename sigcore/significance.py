"""Significance of (image, direction) pairs and their reconstruction weights.

This module owns the statistics of DESIGN §5.1, §5.4 and §5.5: the alpha
schedule with its symmetry factor, the empirical CDFs, the Fisher
pre-selection, the per-image weights (correlation and IMED factors) and the
per-direction reweighting over an angular neighbourhood. It works on the host
score table (``N x G``, small) with NumPy and knows nothing about images,
volumes or files.

Empirical CDF and ties
----------------------
``F(x) = #{v <= x} / L`` over the L values of the sample: the smallest distinct
value gets ``(its multiplicity) / L`` and the largest gets 1. Equal values all
get the *largest* rank they share ("max" ranks), so the result does not depend
on sort order. Xmipp sorts with an unstable sort and gives tied values
arbitrary consecutive ranks (ALGORITHM.md §3); for distinct values both agree.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sigcore.errors import ConfigError

__all__ = [
    "FISHER_Z",
    "SignificanceResult",
    "alpha_schedule",
    "direction_reweight",
    "empirical_cdf",
    "fisher_bound",
    "image_weights",
    "select",
    "symmetry_factor",
    "tail_probability",
]

FISHER_Z = 2.96
"""Width of the Fisher-z interval in standard errors (DESIGN §5.4, ALGORITHM Q22)."""


def empirical_cdf(values: ArrayLike, *, axis: int = -1) -> NDArray[np.float64]:
    """Evaluate the empirical CDF of a sample at each of its own values.

    Parameters
    ----------
    values : array_like, shape (..., L, ...)
        Finite samples; the CDF is taken along ``axis``.
    axis : int
        Axis holding the L samples.

    Returns
    -------
    ndarray, same shape, float64
        ``#{v <= x} / L`` for each ``x``; ties share the largest rank.

    Examples
    --------
    >>> empirical_cdf([0.3, 0.1, 0.3, 0.2]).tolist()
    [1.0, 0.25, 1.0, 0.5]
    """
    from scipy.stats import rankdata

    x = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("empirical_cdf: values must be finite")
    length = x.shape[axis]
    return rankdata(x, method="max", axis=axis) / float(length)


def _cdf_at(sample_sorted: NDArray[np.float64], x: NDArray[np.float64]) -> Any:
    """``#{v <= x} / L`` for a sorted sample, evaluated at arbitrary ``x``."""
    return np.searchsorted(sample_sorted, x, side="right") / float(len(sample_sorted))


def alpha_schedule(
    alpha0: float, alpha_final: float, iterations: int, *, compat: bool = False
) -> NDArray[np.float64]:
    """Return the significance level (percent) of every iteration.

    Parameters
    ----------
    alpha0, alpha_final : float
        First and last significance, percent (e.g. 80 and 99.5).
    iterations : int
        Number of iterations T >= 1.
    compat : bool
        Xmipp/Scipion's schedule, which divides by T and so stops one step
        short of ``alpha_final`` (ALGORITHM.md Q4).

    Returns
    -------
    ndarray, shape (T,), float64
        ``a_t = alpha0 + (alpha_final - alpha0) * t / (T - 1)`` (DESIGN §5.1);
        ``alpha0`` when T = 1.
    """
    if iterations < 1:
        raise ConfigError(f"iterations must be >= 1, got {iterations}")
    t = np.arange(iterations, dtype=np.float64)
    divisor = float(iterations) if compat else float(max(iterations - 1, 1))
    return alpha0 + (alpha_final - alpha0) * t / divisor


def symmetry_factor(order: int, *, compat: bool = False) -> int:
    """Return the factor the tail probability is multiplied by for a group.

    Parameters
    ----------
    order : int
        Number of operators |S| of the point group (1 for c1).
    compat : bool
        Xmipp's factor |S| - 1 for groups other than c1 (ALGORITHM.md Q5:
        c2 is not scaled at all); sigcore uses |S| so that every group keeps
        the same number of directions per image as c1.

    Returns
    -------
    int
    """
    if order < 1:
        raise ValueError(f"group order must be >= 1, got {order}")
    if compat:
        return order - 1 if order > 1 else 1
    return order


def tail_probability(
    significance: ArrayLike, *, symmetry_order: int = 1, compat: bool = False
) -> NDArray[np.float64]:
    """Turn significance percentages into tail probabilities alpha_t.

    Parameters
    ----------
    significance : array_like
        Percent, e.g. the output of :func:`alpha_schedule`.
    symmetry_order : int
        |S| of the point group.
    compat : bool
        Use Xmipp's symmetry factor (see :func:`symmetry_factor`).

    Returns
    -------
    ndarray, float64
        ``(1 - a / 100) * factor``, each in (0, 1].

    Raises
    ------
    ConfigError
        When a value exceeds 1: the starting significance is too low for the
        group order.
    """
    a = np.asarray(significance, dtype=np.float64)
    factor = symmetry_factor(symmetry_order, compat=compat)
    alpha = (1.0 - a / 100.0) * factor
    if np.any(alpha > 1.0 + 1e-12):
        # The least significant value sets the bound.
        lowest = float(np.min(a))
        needed = 100.0 * (1.0 - 1.0 / factor)
        raise ConfigError(
            f"alpha0 = {lowest:g}% is too low for a group of order "
            f"{symmetry_order}: the tail probability (1 - alpha0/100) x {factor} "
            f"exceeds 1; use alpha0 > {needed:g}"
        )
    if np.any(alpha <= 0.0):
        raise ConfigError("significance must be below 100%")
    return alpha


def fisher_bound(best: ArrayLike, alpha: float, n_pixels: int) -> NDArray[np.float64]:
    """Return the Fisher-z lower bound a pair's correlation must reach.

    ``r = best * (1 - alpha)``, ``z = atanh(r) - 2.96 * sqrt(1 / n_pixels)``,
    bound ``= tanh(z)`` (DESIGN §5.4).

    Parameters
    ----------
    best : array_like, shape (N,)
        Best correlation of each image, c_i*.
    alpha : float
        Tail probability of this iteration, in (0, 1].
    n_pixels : int
        Number of pixels the correlation is computed over.

    Returns
    -------
    ndarray, shape (N,), float64
    """
    r = np.asarray(best, dtype=np.float64) * (1.0 - alpha)
    # atanh(+-1) is infinite; a correlation of exactly 1 stays finite this way.
    r = np.clip(r, -1.0 + 1e-12, 1.0 - 1e-12)
    return np.tanh(np.arctanh(r) - FISHER_Z * np.sqrt(1.0 / n_pixels))


def image_weights(
    correlation: ArrayLike,
    *,
    alpha: float,
    distance: ArrayLike | None = None,
    fisher_pixels: int | None = None,
    workers: int = 1,
) -> NDArray[np.float64]:
    """Select each image's significant directions and weight them (DESIGN §5.4).

    A pair (i, j) is significant when ``F_i(c_ij) >= 1 - alpha`` (F_i is the
    empirical CDF of row i), ``c_ij > 0`` and, with Fisher on,
    ``c_ij >= fisher_bound(c_i*)``. Its weight is
    ``F_i(c_ij) * c_ij / c_i*``, times ``(1 - H_i(d_ij)) * d_i* / d_ij`` with a
    distance (H_i: empirical CDF of the distances of row i, d_i* their
    minimum). Every other pair weighs 0.

    Parameters
    ----------
    correlation : array_like, shape (N, G)
        Correlation of every image with every direction at the best alignment.
    alpha : float
        Tail probability alpha_t in (0, 1].
    distance : array_like, shape (N, G), optional
        A distance (lower is better, >= 0) at the same alignment, e.g. IMED.
    fisher_pixels : int, optional
        Number of pixels the correlation uses; enables the Fisher bound.
    workers : int
        Threads for the two rankings (correlation, distance); same result.

    Returns
    -------
    ndarray, shape (N, G), float64
        Weights in [0, 1].

    Notes
    -----
    Guards: an image whose best correlation is <= 0 gets no significant pair
    (nothing in it resembles any projection); pairs with ``c_ij <= 0`` are
    never significant (their weight would be <= 0); ``d_ij = 0`` counts as a
    perfect match (``d_i* / d_ij = 1``).
    """
    c = np.asarray(correlation, dtype=np.float64)
    if c.ndim != 2:
        raise ValueError("correlation must have shape (N, G)")
    d = None if distance is None else np.asarray(distance, dtype=np.float64)
    if d is not None:
        if d.shape != c.shape:
            raise ValueError("distance must have the same shape as correlation")
        if np.any(d < 0.0):
            raise ValueError("distance must be >= 0")
    if d is not None and workers > 1:  # the rankings release the GIL
        with ThreadPoolExecutor(2) as pool:
            cdf, dcdf = pool.map(lambda x: empirical_cdf(x, axis=1), (c, d))
    else:
        cdf = empirical_cdf(c, axis=1)
        dcdf = None if d is None else empirical_cdf(d, axis=1)
    best = c.max(axis=1, keepdims=True)
    keep = (cdf >= 1.0 - alpha - 1e-12) & (c > 0.0) & (best > 0.0)
    if fisher_pixels is not None:
        keep &= c >= fisher_bound(best, alpha, fisher_pixels)
    safe_best = np.where(best > 0.0, best, 1.0)
    weights = np.where(keep, cdf * c / safe_best, 0.0)
    if d is not None:
        dbest = d.min(axis=1, keepdims=True)
        ratio = np.divide(
            np.broadcast_to(dbest, d.shape),
            d,
            out=np.ones_like(d),
            where=d > 0.0,
        )
        weights *= (1.0 - dcdf) * ratio
    return weights


def _pooled(
    correlation: NDArray[np.float64], neighbourhoods: Any, workers: int = 1
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Pooled CDF ``G_j(c_ij)`` and pooled maxima ``c_j*`` for every direction.

    The directions are split over ``workers`` threads (the sorts and searches
    release the GIL); the result does not depend on it.
    """
    from scipy import sparse

    n_dirs = correlation.shape[1]
    adj = sparse.csr_matrix(neighbourhoods, dtype=bool)
    if adj.shape != (n_dirs, n_dirs):
        raise ValueError(f"neighbourhoods must have shape ({n_dirs}, {n_dirs})")
    # Each direction is in its own pool exactly once, whether or not the
    # matrix holds its diagonal.
    adj = (adj + sparse.identity(n_dirs, dtype=bool, format="csr")).tocsr()
    columns = np.ascontiguousarray(correlation.T)  # (G, N)
    cdf_t = np.empty_like(columns)
    top = np.empty(n_dirs)

    def pool_block(block: range) -> None:
        for j in block:
            members = adj.indices[adj.indptr[j] : adj.indptr[j + 1]]
            pool = np.sort(columns[members], axis=None)
            cdf_t[j] = _cdf_at(pool, columns[j])
            top[j] = pool[-1]

    workers = max(1, min(workers, n_dirs))
    blocks = [range(w, n_dirs, workers) for w in range(workers)]
    if workers == 1:
        pool_block(blocks[0])
    else:
        with ThreadPoolExecutor(workers) as executor:
            list(executor.map(pool_block, blocks))
    return cdf_t.T, top


def direction_reweight(
    correlation: ArrayLike,
    weights: ArrayLike,
    neighbourhoods: Any,
    *,
    alpha: float,
    strict: bool = False,
    workers: int = 1,
) -> NDArray[np.float64]:
    """Reweight the surviving pairs by each direction's pooled statistics (§5.5).

    For direction j the pool holds the correlations of every image with j and
    with each of j's neighbours (each direction once). With G_j its empirical
    CDF and c_j* its maximum, a pair with ``w_ij > 0`` becomes
    ``w_ij * G_j(c_ij) * c_ij / c_j*``; in strict mode pairs with
    ``G_j(c_ij) < 1 - alpha`` drop to 0.

    Parameters
    ----------
    correlation : array_like, shape (N, G)
    weights : array_like, shape (N, G)
        Output of :func:`image_weights`.
    neighbourhoods : sparse or dense matrix, shape (G, G), bool
        ``[j, k]`` true when k is within the angular neighbourhood of j; the
        diagonal is implied. The identity reproduces Xmipp, whose pool is
        direction j's own column repeated (ALGORITHM.md Q2).
    alpha : float
        Tail probability alpha_t.
    strict : bool
        Drop pairs not significant for the direction.
    workers : int
        Threads for the pooled statistics; same result.

    Returns
    -------
    ndarray, shape (N, G), float64
        Weights in [0, 1]; a direction whose pooled maximum is <= 0 gets none.
    """
    c = np.asarray(correlation, dtype=np.float64)
    w = np.array(weights, dtype=np.float64, copy=True)
    if w.shape != c.shape:
        raise ValueError("weights must have the same shape as correlation")
    cdf, top = _pooled(c, neighbourhoods, workers)
    live = (w > 0.0) & (top[None, :] > 0.0)
    if strict:
        live &= cdf >= 1.0 - alpha - 1e-12
    safe_top = np.where(top > 0.0, top, 1.0)[None, :]
    factor = np.clip(cdf * c / safe_top, 0.0, None)
    return np.where(live, w * factor, 0.0)


@dataclass(frozen=True, slots=True)
class SignificanceResult:
    """The outcome of one iteration's significance step.

    Attributes
    ----------
    weights : ndarray, shape (N, G), float64
        Final weight of every pair; 0 for pairs not used.
    image_weights : ndarray, shape (N, G), float64
        Weights after the per-image step only (for diagnostics).
    alpha : float
        Tail probability used.
    """

    weights: NDArray[np.float64]
    image_weights: NDArray[np.float64]
    alpha: float

    @property
    def pairs(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(image, direction) index arrays of the pairs with weight > 0."""
        i, j = np.nonzero(self.weights > 0.0)
        return i.astype(np.int64), j.astype(np.int64)

    @property
    def n_pairs(self) -> int:
        """Number of pairs with weight > 0."""
        return int(np.count_nonzero(self.weights > 0.0))

    @property
    def images_used(self) -> int:
        """Number of images with at least one pair of weight > 0."""
        return int(np.count_nonzero((self.weights > 0.0).any(axis=1)))


def select(
    correlation: ArrayLike,
    *,
    alpha: float,
    neighbourhoods: Any,
    distance: ArrayLike | None = None,
    fisher_pixels: int | None = None,
    strict: bool = False,
    workers: int = 1,
) -> SignificanceResult:
    """Run the per-image and the per-direction steps of one iteration.

    Parameters
    ----------
    correlation : array_like, shape (N, G)
    alpha : float
        Tail probability alpha_t (already multiplied by the symmetry factor).
    neighbourhoods : matrix, shape (G, G), bool
        See :func:`direction_reweight`.
    distance : array_like, shape (N, G), optional
        IMED distances; ``None`` turns the IMED factor off.
    fisher_pixels : int, optional
        Pixels the correlation uses; ``None`` turns Fisher off.
    strict : bool
        Strict per-direction mode.
    workers : int
        Host threads for the rankings and the pooled statistics (the result
        does not depend on it).

    Returns
    -------
    SignificanceResult
    """
    first = image_weights(
        correlation,
        alpha=alpha,
        distance=distance,
        fisher_pixels=fisher_pixels,
        workers=workers,
    )
    final = direction_reweight(
        correlation, first, neighbourhoods, alpha=alpha, strict=strict, workers=workers
    )
    return SignificanceResult(weights=final, image_weights=first, alpha=float(alpha))
