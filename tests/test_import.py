"""``import sigcore`` is cheap: no heavy modules, no plugin discovery."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

HEAVY = ("numba", "cupy", "dask", "distributed", "scipy.ndimage", "matplotlib")


def _run(code: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_sigcore_loads_no_heavy_module() -> None:
    result = _run(
        f"""
        import json, sys
        import sigcore
        print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))
        """
    )
    assert result == []


def test_import_sigcore_scans_no_entry_points() -> None:
    result = _run(
        """
        import importlib.metadata, json
        calls = []
        importlib.metadata.distributions = lambda *a, **k: calls.append("d") or []
        importlib.metadata.entry_points = lambda *a, **k: calls.append("e") or []
        import sigcore
        sigcore.__version__, sigcore.hookimpl, sigcore.SigcoreError
        print(json.dumps(calls))
        """
    )
    assert result == []


def test_the_probe_sees_a_heavy_import() -> None:
    # The check above can fail: importing the dask executor's client does load dask.
    result = _run(
        f"""
        import json, sys
        import sigcore
        from sigcore.executors import DaskExecutor
        if DaskExecutor.is_available():
            import distributed
        heavy = [m for m in {HEAVY!r} if m in sys.modules]
        print(json.dumps({{"available": DaskExecutor.is_available(), "heavy": heavy}}))
        """
    )
    if result["available"]:
        assert "distributed" in result["heavy"]
    else:
        assert result["heavy"] == []
