"""Fixtures that put fake plugin distributions on ``sys.path`` (npe2's trick).

A folder holding ``<name>-<version>.dist-info/`` (``METADATA`` and
``entry_points.txt``) next to the plugin module is enough for
``importlib.metadata`` to report an installed distribution with entry points;
nothing is installed. The fixtures undo ``sys.path``, the metadata caches and
the imported plugin modules afterwards.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

FAKE_DIST = Path(__file__).parent / "fake_dist"


@pytest.fixture
def on_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], None]]:
    """Return ``add(folder)``: make the distributions in ``folder`` visible."""
    monkeypatch.delenv("SIGCORE_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    before = set(sys.modules)

    def add(folder: Path) -> None:
        monkeypatch.syspath_prepend(str(folder))  # also invalidates import caches

    yield add
    for name in set(sys.modules) - before:
        module = sys.modules[name]
        origin = getattr(module, "__file__", None) or ""
        if "fake_dist" in origin or "sigcore_test_dists" in origin:
            del sys.modules[name]
    importlib.invalidate_caches()


@pytest.fixture
def fake_dist(on_path: Callable[[Path], None]) -> Path:
    """Put tests/plugins/fake_dist (distribution ``sigcore-fake 0.1``) on the path."""
    on_path(FAKE_DIST)
    return FAKE_DIST


@pytest.fixture
def make_dist(
    tmp_path_factory: pytest.TempPathFactory, on_path: Callable[[Path], None]
) -> Callable[..., Path]:
    """Return ``make(dist, version, entry_points, modules)``: write and expose a dist.

    ``entry_points`` maps entry-point names to module names; ``modules`` maps
    module names to their source code.
    """
    root = tmp_path_factory.mktemp("sigcore_test_dists")
    on_path(root)

    def make(
        dist: str, version: str, entry_points: dict[str, str], modules: dict[str, str]
    ) -> Path:
        info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
        )
        lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
        (info / "entry_points.txt").write_text(f"[sigcore]\n{lines}")
        for module, source in modules.items():
            (root / f"{module}.py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        return root

    return make
