"""``sigcore plugins [--json]`` lists every plugin and its contributions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import sigcore
import sigcore.cli.plugins_cmd  # registers the command on app
from sigcore.cli import app
from sigcore.plugins import DEFAULT_PLUGINS

runner = CliRunner()


def _listing() -> dict[str, dict]:
    result = runner.invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    return {entry["name"]: entry for entry in json.loads(result.stdout)}


def test_json_lists_builtins_with_their_contributions() -> None:
    listing = _listing()
    assert set(DEFAULT_PLUGINS) <= set(listing)
    executors = listing["sigcore.executors"]
    assert executors["builtin"] is True
    assert executors["distribution"] == "sigcore"
    assert executors["version"] == sigcore.__version__
    assert executors["contributes"]["executors"][0] == {
        "name": "local",
        "available": True,
    }
    for entry in listing.values():
        for kind in ("readers", "writers"):
            for item in entry["contributes"].get(kind, []):
                assert item["suffixes"], f"{item['name']} lists no suffixes"
                assert all(s.startswith(".") for s in item["suffixes"])
        for kind in ("backends", "executors"):
            for item in entry["contributes"].get(kind, []):
                assert isinstance(item["available"], bool)


def test_third_party_plugin_is_listed(fake_dist: Path) -> None:
    fake = _listing()["fake"]
    assert fake["builtin"] is False
    assert (fake["distribution"], fake["version"]) == ("sigcore-fake", "0.1")
    assert fake["contributes"] == {
        "metrics": [{"name": "fake.dot", "higher_is_better": True}]
    }
    assert fake["hooks"] == ["sigcore_register_metrics"]

    plain = runner.invoke(app, ["plugins"])
    assert plain.exit_code == 0
    assert "fake  (sigcore-fake 0.1, third-party)" in plain.stdout
    assert "    metrics: fake.dot (higher is better)" in plain.stdout
    assert "sigcore.executors  (sigcore" in plain.stdout
    assert "executors: local (available)" in plain.stdout


def test_autoload_switch_hides_third_party(
    fake_dist: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGCORE_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert "fake" not in _listing()
