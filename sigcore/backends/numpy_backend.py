"""The ``numpy`` backend: the pure-NumPy reference, slow and obviously correct.

It runs the shared ``xp``-generic kernels of :mod:`sigcore.backends.projector`
with ``xp = numpy`` and the brute-force alignment search of
:mod:`sigcore.backends.search_reference`; the faster backends are tested
against it. Registered as a built-in (``trylast``) plugin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sigcore.backends.base import ArrayBackend
from sigcore.hookspecs import hookimpl

if TYPE_CHECKING:
    from sigcore.alignment import SearchParams, SearchResult
    from sigcore.protocols import Metric

__all__ = ["NumpyBackend"]


class NumpyBackend(ArrayBackend):
    """Reference backend on the host, ``xp = numpy``."""

    name = "numpy"

    def __init__(self) -> None:
        super().__init__(np)

    @classmethod
    def is_available(cls) -> bool:
        """Return True: NumPy is always there."""
        return True

    @classmethod
    def create(cls, **options: Any) -> NumpyBackend:
        """Build the backend (it takes no options; unknown ones are ignored)."""
        return cls()

    def search(
        self,
        images: Any,
        references: Any,
        params: SearchParams,
        metrics: Sequence[Metric] = (),
    ) -> SearchResult:
        """Align every image to every reference by brute force (DESIGN §5.3).

        Parameters
        ----------
        images : ndarray, shape (N, n, n), float32
        references : ndarray, shape (G, n, n), float32
        params : SearchParams
        metrics : sequence of Metric
            Metrics evaluated at each best alignment.

        Returns
        -------
        SearchResult
        """
        from sigcore.backends.search_reference import search_bruteforce

        return search_bruteforce(images, references, params, metrics, xp=np)


@hookimpl(trylast=True)
def sigcore_register_backends() -> list[type[ArrayBackend]]:
    """Contribute the ``numpy`` reference backend."""
    return [NumpyBackend]
