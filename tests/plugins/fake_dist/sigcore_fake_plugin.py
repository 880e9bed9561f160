"""A fake third-party plugin found through tests/plugins/fake_dist (npe2's trick)."""

from __future__ import annotations

from typing import Any, ClassVar

from sigcore import hookimpl


class SumOfProductsMetric:
    """Un-normalised inner product of aligned pairs (higher is better)."""

    name: ClassVar[str] = "fake.dot"
    higher_is_better: ClassVar[bool] = True

    def score(self, images: Any, references: Any, xp: Any) -> Any:
        """Return sum(images * references) per pair, shape (k,)."""
        return xp.sum(images * references, axis=(1, 2))


@hookimpl
def sigcore_register_metrics() -> list[type]:
    """Contribute ``fake.dot``."""
    return [SumOfProductsMetric]
