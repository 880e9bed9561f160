"""The ``correlation`` metric: Pearson correlation of aligned pairs (a plugin).

It is the search score of DESIGN §5.3 evaluated on images that are already
aligned (and, inside the search, band-limited): the mean is removed and the
result lies in [-1, 1]. Higher is better.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sigcore.hookspecs import hookimpl

__all__ = ["Correlation"]


class Correlation:
    """Pearson correlation over all pixels of each aligned pair."""

    name: ClassVar[str] = "correlation"
    higher_is_better: ClassVar[bool] = True

    def score(self, images: Any, references: Any, xp: Any) -> Any:
        """Correlate aligned pairs.

        Parameters
        ----------
        images, references : Array, shape (k, n, n), float32
            ``images[p]`` aligned onto ``references[p]``.
        xp : module

        Returns
        -------
        Array, shape (k,), float32
            0 where either image is constant.
        """
        a = xp.asarray(images, dtype=xp.float32).reshape(images.shape[0], -1)
        b = xp.asarray(references, dtype=xp.float32).reshape(references.shape[0], -1)
        a = a - a.mean(axis=1, keepdims=True)
        b = b - b.mean(axis=1, keepdims=True)
        den = xp.sqrt(xp.sum(a * a, axis=1) * xp.sum(b * b, axis=1))
        num = xp.sum(a * b, axis=1)
        return xp.where(den > 0, num / xp.where(den > 0, den, 1.0), 0.0).astype(
            xp.float32
        )


@hookimpl(trylast=True)
def sigcore_register_metrics() -> list[type]:
    """Contribute the ``correlation`` metric."""
    return [Correlation]
