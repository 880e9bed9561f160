"""The ``example.frc_weighted_correlation`` metric and its registration hook.

Written against ``xp`` (NumPy or CuPy, whatever the backend passes), so it
runs on every sigcore backend; it imports nothing heavy at module level.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sigcore import hookimpl

__all__ = ["FRCWeightedCorrelation", "sigcore_register_metrics"]

# A ring whose power is below this fraction of the pair's total power carries
# no signal (only FFT round-off) and is left out of the average.
_EMPTY_RING = 1e-9


class FRCWeightedCorrelation:
    """Fourier ring correlation averaged over rings, weighted by ring size.

    For an aligned pair (image ``f``, reference ``g``) with 2D spectra ``F``,
    ``G`` and rings ``R_r`` of integer radius ``r = 1 .. n//2`` (the DC term is
    left out, so the score ignores additive offsets)::

        FRC_r = Re sum_{R_r} F conj(G) / sqrt(sum_{R_r} |F|^2 * sum_{R_r} |G|^2)
        score = sum_r |R_r| FRC_r / sum_r |R_r|

    where the sums over ``r`` run over rings with power in both images and
    ``|R_r|`` is the number of Fourier pixels of ring ``r``. Each ring is
    normalised on its own, so unlike the plain correlation, strong low
    frequencies do not drown the high ones. Higher is better; the score lies in
    [-1, 1], is 1 for identical images and is invariant to ``a * f + b``
    (``a > 0``).
    """

    name: ClassVar[str] = "example.frc_weighted_correlation"
    higher_is_better: ClassVar[bool] = True
    description: ClassVar[str] = "Fourier ring correlation averaged over rings"

    def score(self, images: Any, references: Any, xp: Any) -> Any:
        """Score aligned pairs.

        Parameters
        ----------
        images, references : Array, shape (k, n, n), float32
            ``images[p]`` already aligned onto ``references[p]``.
        xp : module
            ``numpy`` or ``cupy``, the namespace of the inputs.

        Returns
        -------
        Array, shape (k,), float32
            One score per pair, on the inputs' device; 0 for a pair with no
            power outside the DC term.
        """
        k, ny, nx = images.shape
        n_rings = min(ny, nx) // 2 + 1
        fy = xp.fft.fftfreq(ny) * ny
        fx = xp.fft.fftfreq(nx) * nx
        radius = xp.rint(xp.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)).astype(xp.int64)
        inside = ((radius >= 1) & (radius < n_rings)).ravel()
        ring = radius.ravel()[inside]
        ring_size = xp.bincount(ring, minlength=n_rings).astype(xp.float64)

        spec_f = xp.fft.fft2(images).reshape(k, -1)[:, inside]
        spec_g = xp.fft.fft2(references).reshape(k, -1)[:, inside]
        index = (xp.arange(k)[:, None] * n_rings + ring[None, :]).ravel()

        def per_ring(values: Any) -> Any:
            sums = xp.bincount(
                index, weights=values.ravel().astype(xp.float64), minlength=k * n_rings
            )
            return sums.reshape(k, n_rings)

        cross = per_ring((spec_f * spec_g.conj()).real)
        power_f = per_ring(spec_f.real**2 + spec_f.imag**2)
        power_g = per_ring(spec_g.real**2 + spec_g.imag**2)
        has_f = power_f > _EMPTY_RING * power_f.sum(axis=1, keepdims=True)
        has_g = power_g > _EMPTY_RING * power_g.sum(axis=1, keepdims=True)
        valid = has_f & has_g
        frc = xp.where(
            valid, cross / xp.sqrt(xp.where(valid, power_f * power_g, 1.0)), 0.0
        )
        weight = xp.where(valid, ring_size[None, :], 0.0)
        total = weight.sum(axis=1)
        score = (weight * frc).sum(axis=1) / xp.where(total > 0, total, 1.0)
        return score.astype(xp.float32)


@hookimpl
def sigcore_register_metrics() -> list[type]:
    """Contribute :class:`FRCWeightedCorrelation` to sigcore."""
    return [FRCWeightedCorrelation]
