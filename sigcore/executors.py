"""Built-in executor plugins: where chunks of images are processed.

An executor applies one function to a sequence of chunks and returns the
results in order (contract: :class:`sigcore.protocols.Executor`). ``local``
runs the chunks one after the other in this process; ``dask`` sends them to a
``dask.distributed`` cluster. Data shared by every chunk (the gallery of one
iteration) travels inside ``fn`` -- a :func:`functools.partial` or a closure --
and the ``dask`` executor scatters ``fn`` to the workers once per
:meth:`~DaskExecutor.map` call, so it is never re-sent per chunk.

This module is cheap to import: dask is imported only when a
:class:`DaskExecutor` first needs its client.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from sigcore.errors import BackendUnavailable
from sigcore.hookspecs import hookimpl

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["DaskExecutor", "LocalExecutor"]


class LocalExecutor:
    """Run every chunk in this process, in order.

    The kernels themselves may still use threads (numba) or a GPU; this
    executor only decides that chunks are not spread over processes.
    """

    name: ClassVar[str] = "local"
    description: ClassVar[str] = "in-process, one chunk after the other"

    @classmethod
    def is_available(cls) -> bool:
        """Return True: running in-process always works."""
        return True

    def map(self, fn: Callable[[Any], Any], chunks: Iterable[Any]) -> list[Any]:
        """Apply ``fn`` to every chunk.

        Parameters
        ----------
        fn : callable
            Called once per chunk with the chunk as its only argument.
        chunks : iterable
            The work items (e.g. index ranges of the image stack).

        Returns
        -------
        list
            ``[fn(c) for c in chunks]``, in the order of ``chunks``.
        """
        return [fn(chunk) for chunk in chunks]

    def close(self) -> None:
        """Release nothing (present so all executors can be closed alike)."""

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _apply(chunk: Any, fn: Callable[[Any], Any]) -> Any:
    """Run on a dask worker: ``fn`` arrives resolved from its scattered future."""
    return fn(chunk)


class DaskExecutor:
    """Map chunks over a ``dask.distributed`` cluster.

    Parameters
    ----------
    client : distributed.Client, optional
        An existing client (a SLURM cluster from dask-jobqueue, a dask-mpi
        cluster, a test ``LocalCluster``). Not closed by :meth:`close`.
    address : str, optional
        Scheduler address to connect to (``"tcp://host:8786"``) when no
        ``client`` is given. Without either, a ``LocalCluster`` is started on
        first use with ``cluster_options`` and closed by :meth:`close`.
    **cluster_options
        Passed to ``distributed.LocalCluster`` (``n_workers``,
        ``threads_per_worker``, ``processes``, ...).

    Notes
    -----
    Each :meth:`map` call scatters ``fn`` (with everything it carries, e.g. the
    gallery of the iteration) to all workers once, then submits one task per
    chunk that refers to the scattered copy, and gathers the results in order.
    Results equal those of :class:`LocalExecutor` because each chunk runs the
    same code on the same data; only where it runs differs.
    """

    name: ClassVar[str] = "dask"
    description: ClassVar[str] = "dask.distributed cluster (Client.map over chunks)"

    def __init__(
        self,
        *,
        client: Client | None = None,
        address: str | None = None,
        **cluster_options: Any,
    ) -> None:
        self._client = client
        self._owns_client = client is None
        self._address = address
        self._cluster_options = cluster_options
        self._cluster: Any = None

    @classmethod
    def is_available(cls) -> bool:
        """Return True when ``dask.distributed`` is installed (imports nothing)."""
        return (
            importlib.util.find_spec("dask") is not None
            and importlib.util.find_spec("distributed") is not None
        )

    @property
    def client(self) -> Client:
        """The ``distributed.Client`` in use (connected or started on first use)."""
        if self._client is None:
            if not self.is_available():
                raise BackendUnavailable(
                    "executor 'dask' needs dask.distributed "
                    "(pip install 'sigcore[dask]')"
                )
            from distributed import Client, LocalCluster

            if self._address is not None:
                self._client = Client(self._address)
            else:
                options = {"dashboard_address": None, **self._cluster_options}
                self._cluster = LocalCluster(**options)
                self._client = Client(self._cluster)
        return self._client

    def map(self, fn: Callable[[Any], Any], chunks: Iterable[Any]) -> list[Any]:
        """Apply ``fn`` to every chunk on the cluster.

        Parameters
        ----------
        fn : callable
            Must be picklable (cloudpickle) when the workers are processes.
            Scattered to every worker once per call.
        chunks : iterable
            The work items; each is sent to the worker that processes it.

        Returns
        -------
        list
            ``[fn(c) for c in chunks]``, in the order of ``chunks``.
        """
        chunks = list(chunks)
        if not chunks:
            return []
        client = self.client
        shared = client.scatter(fn, broadcast=True, hash=False)
        futures = client.map(_apply, chunks, fn=shared, pure=False)
        try:
            return list(client.gather(futures))
        finally:
            client.cancel([*futures, shared])

    def close(self) -> None:
        """Close the client and cluster if this executor started them."""
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@hookimpl(trylast=True)
def sigcore_register_executors() -> list[type]:
    """Contribute the built-in ``local`` and ``dask`` executors."""
    return [LocalExecutor, DaskExecutor]
