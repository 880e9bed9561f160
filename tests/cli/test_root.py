"""The root of the command line: version, help, one-line errors, --debug."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import sigcore
from sigcore.cli import main
from sigcore.errors import PluginError


def _broken_plugin_dir(root: Path) -> Path:
    """A distribution whose ``sigcore`` entry point cannot be imported."""
    info = root / "sigcore_broken-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: sigcore-broken\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text("[sigcore]\nbroken = sigcore_broken_mod\n")
    (root / "sigcore_broken_mod.py").write_text("import no_such_module_for_sigcore\n")
    return root


def _run_cli(*args: str, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("SIGCORE_DISABLE_PLUGIN_AUTOLOAD", None)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(pythonpath), env.get("PYTHONPATH", "")) if p
        )
    return subprocess.run(
        [sys.executable, "-m", "sigcore", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"sigcore {sigcore.__version__}\n"


def test_help_lists_the_fixed_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in ("plugins", "info", "convert"):
        assert command in out


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["no-such-command"])
    assert exit_.value.code == 2
    assert "no-such-command" in capsys.readouterr().err


def test_user_error_is_one_line_on_stderr(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("SIGCORE_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.syspath_prepend(str(_broken_plugin_dir(tmp_path)))
    with pytest.raises(SystemExit) as exit_:
        main(["plugins"])
    assert exit_.value.code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        "sigcore: error: entry point broken = sigcore_broken_mod"
    )
    assert "sigcore-broken 0.1" in lines[0]
    with pytest.raises(PluginError):  # --debug: the exception itself
        main(["--debug", "plugins"])


def test_traceback_only_with_debug_in_a_real_process(tmp_path: Path) -> None:
    path = _broken_plugin_dir(tmp_path)
    plain = _run_cli("plugins", pythonpath=path)
    assert plain.returncode == 1
    assert "Traceback" not in plain.stderr
    assert plain.stderr.count("\n") == 1
    debug = _run_cli("--debug", "plugins", pythonpath=path)
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr
    assert "PluginError" in debug.stderr


def test_python_dash_m_runs_the_cli() -> None:
    done = _run_cli("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"sigcore {sigcore.__version__}"
