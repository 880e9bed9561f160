"""The built-in executors: local and dask give the same results, in order."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from sigcore.executors import DaskExecutor, LocalExecutor
from sigcore.plugins import build_registry, get_plugin_manager
from sigcore.protocols import Executor


def _chunk_scores(chunk: tuple[int, int], *, images, gallery) -> np.ndarray:
    """Rows ``chunk`` of a correlation table images x gallery (a numeric job)."""
    start, stop = chunk
    block = images[start:stop].reshape(stop - start, -1)
    return block @ gallery.reshape(len(gallery), -1).T


def _job() -> tuple[functools.partial, list[tuple[int, int]], np.ndarray]:
    rng = np.random.default_rng(7)
    images = rng.standard_normal((23, 16, 16)).astype(np.float32)
    gallery = rng.standard_normal((9, 16, 16)).astype(np.float32)
    fn = functools.partial(_chunk_scores, images=images, gallery=gallery)
    chunks = [(i, min(i + 5, 23)) for i in range(0, 23, 5)]
    expected = images.reshape(23, -1) @ gallery.reshape(9, -1).T
    return fn, chunks, expected


def test_both_executors_are_registered_as_trylast_builtins() -> None:
    pm = get_plugin_manager(autoload=False)
    registry = build_registry(pm)
    assert registry.executors["local"] is LocalExecutor
    assert registry.executors["dask"] is DaskExecutor
    impls = pm.hook.sigcore_register_executors.get_hookimpls()
    ours = [i for i in impls if i.plugin_name == "sigcore.executors"]
    assert len(ours) == 1
    assert ours[0].trylast


def test_executors_satisfy_the_protocol() -> None:
    assert isinstance(LocalExecutor(), Executor)
    assert isinstance(DaskExecutor(), Executor)  # lazy: starts no cluster
    assert LocalExecutor.is_available() is True


def test_local_executor_keeps_order() -> None:
    fn, chunks, expected = _job()
    rows = LocalExecutor().map(fn, chunks)
    assert [r.shape[0] for r in rows] == [5, 5, 5, 5, 3]
    np.testing.assert_allclose(np.concatenate(rows), expected, rtol=1e-5)


def test_dask_is_available_matches_installation() -> None:
    import importlib.util

    installed = importlib.util.find_spec("distributed") is not None
    assert DaskExecutor.is_available() is installed


def test_dask_and_local_give_identical_results() -> None:
    pytest.importorskip("distributed")
    fn, chunks, _ = _job()
    local = LocalExecutor().map(fn, chunks)
    with DaskExecutor(n_workers=1, threads_per_worker=2, processes=False) as ex:
        remote = ex.map(fn, chunks)
        assert ex.map(fn, []) == []
        again = ex.map(fn, reversed(chunks))  # a second map reuses the cluster
    assert len(remote) == len(local)
    for a, b in zip(remote, local, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(again, local[::-1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_dask_executor_uses_a_given_client_and_leaves_it_open() -> None:
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        ex = DaskExecutor(client=client)
        assert ex.map(abs, [-1, 2, -3]) == [1, 2, 3]
        ex.close()
        assert client.status == "running"


def test_dask_with_worker_processes_matches_local() -> None:
    # Worker processes unpickle fn: use only importable callables here.
    pytest.importorskip("distributed")
    fn = functools.partial(np.multiply, np.arange(6.0, dtype=np.float32))
    chunks = [np.float32(k) for k in (3, -1, 0.5, 2)]
    with DaskExecutor(n_workers=2, threads_per_worker=1, processes=True) as ex:
        remote = ex.map(fn, chunks)
    for a, b in zip(remote, LocalExecutor().map(fn, chunks), strict=True):
        np.testing.assert_array_equal(a, b)
