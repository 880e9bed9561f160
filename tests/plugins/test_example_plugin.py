"""The example plugin in plugins/ is found through its entry point."""

from __future__ import annotations

import importlib.metadata
import tomllib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from sigcore.plugins import build_registry, describe_plugins, get_plugin_manager

EXAMPLE = Path(__file__).resolve().parents[2] / "plugins" / "sigcore-example-metric"
PROJECT = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
METRIC = "example.frc_weighted_correlation"


def _check_registered() -> None:
    pm = get_plugin_manager()
    registry = build_registry(pm)
    assert METRIC in registry.metrics
    label = f"{PROJECT['name']} {PROJECT['version']}"
    assert registry.providers[("metrics", METRIC)] == label
    info = {p.name: p for p in describe_plugins(pm)}["example_metric"]
    assert info.distribution == PROJECT["name"]
    assert not info.builtin
    assert info.contributes["metrics"] == [{"name": METRIC, "higher_is_better": True}]
    metric = registry.metrics[METRIC]()
    images = np.random.default_rng(3).standard_normal((2, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(metric.score(images, images, np), 1.0, atol=1e-6)


def test_entry_point_declared_in_pyproject() -> None:
    entry_points = PROJECT["entry-points"]["sigcore"]
    assert entry_points == {"example_metric": "sigcore_example_metric.frc"}


@pytest.fixture
def example_dist(on_path: Callable[[Path], None], tmp_path: Path) -> Path:
    """Put the example package and a dist-info made from its pyproject on the path."""
    dist = PROJECT["name"].replace("-", "_")
    info = tmp_path / f"{dist}-{PROJECT['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {PROJECT['name']}\n"
        f"Version: {PROJECT['version']}\n"
    )
    lines = "".join(
        f"{k} = {v}\n" for k, v in PROJECT["entry-points"]["sigcore"].items()
    )
    (info / "entry_points.txt").write_text(f"[sigcore]\n{lines}")
    on_path(EXAMPLE)  # the package itself
    on_path(tmp_path)  # its metadata, found before any installed copy
    return tmp_path


def test_found_when_its_dist_info_is_on_the_path(example_dist: Path) -> None:
    _check_registered()


def test_found_when_installed(on_path: Callable[[Path], None]) -> None:
    try:
        importlib.metadata.distribution(PROJECT["name"])
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{PROJECT['name']} is not installed (pip install -e {EXAMPLE})")
    _check_registered()


def test_autoload_off_hides_it(
    example_dist: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert METRIC in build_registry(get_plugin_manager()).metrics
    monkeypatch.setenv("SIGCORE_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert METRIC not in build_registry(get_plugin_manager()).metrics
