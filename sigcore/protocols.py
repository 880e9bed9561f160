"""The plugin contracts, as ``typing.Protocol`` classes.

A plugin author reads this one file to know what to write. Registration hooks
(``sigcore.hookspecs``) return *classes* (or other factories) that satisfy the
``...Factory`` protocols; sigcore instantiates them once per run. ``Array`` is
whatever the backend's ``xp`` produces (a NumPy or CuPy array).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from sigcore.alignment import SearchParams, SearchResult
    from sigcore.imageset import ImageSet, PoseTable

__all__ = [
    "Array",
    "Backend",
    "BackendFactory",
    "Executor",
    "Metric",
    "Reader",
    "Writer",
]

Array = Any
"""A backend array (``numpy.ndarray`` or ``cupy.ndarray``)."""


@runtime_checkable
class Backend(Protocol):
    """An array backend instance: the array namespace plus the heavy kernels.

    Attributes
    ----------
    name : str
        Registered name (``"numpy"``, ``"cpu"``, ``"cupy"``, ...).
    xp : module
        The array namespace (``numpy`` or ``cupy``).
    """

    name: ClassVar[str]
    xp: Any

    def asarray(self, array: Any) -> Array:
        """Move a host array onto the backend (no copy when already there)."""
        ...

    def asnumpy(self, array: Array) -> NDArray[Any]:
        """Return a host NumPy copy (or view) of a backend array."""
        ...

    def synchronize(self) -> None:
        """Block until queued device work is done (no-op on the CPU)."""
        ...

    def project(
        self,
        volume: Array,
        rotations: NDArray[np.float64],
        *,
        max_frequency: float = 0.5,
    ) -> Array:
        """Project a volume at many orientations.

        Parameters
        ----------
        volume : Array, shape (n, n, n), float32
            Indexed ``[z, y, x]``, centre at ``n // 2``.
        rotations : ndarray, shape (G, 3, 3), float64
            RELION-sense matrices.
        max_frequency : float
            Band limit, cycles per pixel: the projections need be correct
            only below it (a backend may leave higher frequencies out).

        Returns
        -------
        Array, shape (G, n, n), float32
            ``P_g(x, y) = integral V(A_g.T @ (x, y, z)) dz``.
        """
        ...

    def reconstruct(
        self,
        images: Array,
        poses: PoseTable,
        *,
        symmetry_ops: NDArray[np.float64] | None = None,
        max_frequency: float = 0.5,
    ) -> Array:
        """Weighted direct Fourier inversion (DESIGN §5.6).

        Parameters
        ----------
        images : Array, shape (N, n, n), float32
        poses : PoseTable
            Rows refer to ``images`` by ``image_index``; shifts in pixels
            (RELION sign), weights >= 0 (0 removes a row exactly).
        symmetry_ops : ndarray, shape (S, 3, 3), optional
            Group operators (identity included); every row is inserted once
            per operator.
        max_frequency : float
            Band limit, cycles per pixel: the volume need be correct only
            below it (a backend may leave higher frequencies out).

        Returns
        -------
        Array, shape (n, n, n), float32
        """
        ...

    def search(
        self,
        images: Array,
        references: Array,
        params: SearchParams,
        metrics: Sequence[Metric] = (),
    ) -> SearchResult:
        """Align every image to every reference (DESIGN §5.3).

        Parameters
        ----------
        images : Array, shape (N, n, n), float32
        references : Array, shape (G, n, n), float32
            Gallery projections at (rot_j, tilt_j, psi = 0).
        params : SearchParams
        metrics : sequence of Metric
            Extra metrics evaluated at the chosen alignment.

        Returns
        -------
        SearchResult
            Host arrays of shape (N, G) (the score table).
        """
        ...


@runtime_checkable
class BackendFactory(Protocol):
    """What ``sigcore_register_backends`` returns: a class with a cheap probe."""

    name: ClassVar[str]

    @classmethod
    def is_available(cls) -> bool:
        """Say cheaply whether the backend can run here (imports nothing heavy)."""
        ...

    @classmethod
    def create(cls, **options: Any) -> Backend:
        """Build a backend instance; heavy imports (numba, cupy) happen here."""
        ...


@runtime_checkable
class Metric(Protocol):
    """A similarity metric between aligned image/reference pairs.

    Attributes
    ----------
    name : str
        Registered name; third parties should prefix it (``"mypkg.frc"``).
    higher_is_better : bool
        True for similarities (correlation), False for distances (IMED).
    """

    name: ClassVar[str]
    higher_is_better: ClassVar[bool]

    def score(self, images: Array, references: Array, xp: Any) -> Array:
        """Score aligned pairs.

        Parameters
        ----------
        images, references : Array, shape (k, n, n), float32
            ``images[p]`` already aligned onto ``references[p]``.
        xp : module
            The array namespace of the inputs.

        Returns
        -------
        Array, shape (k,), float32
        """
        ...


@runtime_checkable
class Reader(Protocol):
    """Reads one file format into an :class:`~sigcore.imageset.ImageSet`."""

    name: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]]

    def sniff(self, path: Path) -> bool:
        """Say cheaply (suffix, a few header bytes) whether ``path`` is ours."""
        ...

    def read(self, path: Path) -> ImageSet:
        """Read the file; raise :class:`~sigcore.errors.FormatError` on bad input."""
        ...


@runtime_checkable
class Writer(Protocol):
    """Writes an :class:`~sigcore.imageset.ImageSet` in one file format."""

    name: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]]

    def write(self, data: ImageSet, path: Path, *, overwrite: bool = False) -> None:
        """Write atomically (temporary name + rename); refuse to overwrite."""
        ...


@runtime_checkable
class Executor(Protocol):
    """Runs chunks of work, locally or on a cluster.

    Registered as a class by ``sigcore_register_executors`` and instantiated
    with keyword options only (``LocalExecutor()``, ``DaskExecutor(address=...)``).
    Data shared by all chunks travels inside ``fn`` (a ``functools.partial`` or
    closure); a distributed executor ships it to the workers once per call.
    """

    name: ClassVar[str]

    @classmethod
    def is_available(cls) -> bool:
        """Say cheaply whether this executor can run here (imports nothing heavy)."""
        ...

    def map(self, fn: Callable[[Any], Any], chunks: Iterable[Any]) -> list[Any]:
        """Apply ``fn`` to every chunk and return the results in order."""
        ...
