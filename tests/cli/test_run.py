"""``sigcore reconstruct`` on the command line: options, progress, errors."""

from __future__ import annotations

import json

import mrcfile
import numpy as np
import pytest

import sigcore.plugins
from sigcore.cli import main
from sigcore.hookspecs import hookimpl
from sigcore.testing import UnalignedBackend, blob_stack

BOX = 24


class _ZeroSearch(UnalignedBackend):
    name = "test-zero"


class _Plugin:
    @hookimpl
    def sigcore_register_backends(self):
        return [_ZeroSearch]


@pytest.fixture
def fake_backend(monkeypatch):
    real = sigcore.plugins.get_plugin_manager

    def with_fake(*, autoload=None, extra=()):
        return real(autoload=False, extra=[*extra, _Plugin()])

    monkeypatch.setattr(sigcore.plugins, "get_plugin_manager", with_fake)


@pytest.fixture
def stack(tmp_path):
    images = blob_stack(8, BOX)
    path = tmp_path / "classes.mrcs"
    with mrcfile.new(path) as mrc:
        mrc.set_data(images)
    return path


FAST = [
    "--step",
    "20",
    "--neighbourhood",
    "40",
    "--iterations",
    "2",
    "--no-imed",
    "--backend",
    "test-zero",
    "--seed",
    "1",
    "--apix",
    "2.0",
]


def _ok(args):
    """Run the CLI and require exit status 0."""
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code in (0, None)


def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["reconstruct", "--help"])
    out = capsys.readouterr().out
    for option in (
        "--sym",
        "--reference",
        "--step",
        "--min-tilt",
        "--max-tilt",
        "--max-shift",
        "--alpha0",
        "--alphaF",
        "--iterations",
        "--no-imed",
        "--strict-direction",
        "--neighbourhood",
        "--no-fisher",
        "--max-resolution",
        "--mask-radius",
        "--keep-intermediates",
        "--backend",
        "--seed",
        "--starts",
        "--resume",
        "--force",
        "--compat",
        "--apix",
        "--quiet",
        "--json-progress",
        "--threads",
        "--pad-to-input",
    ):
        assert option in out, option


def test_json_progress_one_line_per_iteration(fake_backend, stack, tmp_path, capsys):
    out = tmp_path / "run"
    _ok(["reconstruct", str(stack), "-o", str(out), "--json-progress", *FAST])
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["event"] for x in lines] == ["iteration", "iteration", "done"]
    assert lines[0]["significance"] == 80.0
    assert lines[1]["significance"] == 99.5
    assert lines[-1]["box"] == BOX
    with mrcfile.open(out / "volume.mrc") as mrc:
        assert float(mrc.voxel_size.x) == pytest.approx(2.0)


def test_rich_progress_on_stderr_and_quiet(fake_backend, stack, tmp_path, capsys):
    _ok(["reconstruct", str(stack), "-o", str(tmp_path / "a"), *FAST])
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "volume written to" in captured.err
    assert "pairs" in captured.err
    _ok(["reconstruct", str(stack), "-o", str(tmp_path / "b"), "--quiet", *FAST])
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


def test_user_errors_are_one_line(fake_backend, stack, tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "reconstruct",
                str(stack),
                "-o",
                str(out),
                *FAST,
                "--alpha0",
                "20",
                "--sym",
                "c4",
            ]
        )
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "alpha0 = 20% is too low for a group of order 4" in err[0]
    _ok(["reconstruct", str(stack), "-o", str(out), "-q", *FAST])
    with pytest.raises(SystemExit):
        main(["reconstruct", str(stack), "-o", str(out), "-q", *FAST])
    assert "use --force" in capsys.readouterr().err


def test_resume_continues_with_the_same_result(fake_backend, stack, tmp_path):
    out = tmp_path / "run"
    _ok(["reconstruct", str(stack), "-o", str(out), "-q", *FAST])
    with mrcfile.open(out / "volume.mrc") as mrc:
        first = mrc.data.copy()
    _ok(["reconstruct", str(stack), "-o", str(out), "-q", "--resume", *FAST])
    with mrcfile.open(out / "volume.mrc") as mrc:
        np.testing.assert_array_equal(mrc.data, first)


def test_pad_to_input_writes_the_input_box(fake_backend, tmp_path):
    big = tmp_path / "big.mrcs"
    with mrcfile.new(big) as mrc:
        mrc.set_data(blob_stack(8, 2 * BOX))
    out = tmp_path / "run"
    # 48 px at 2 Å, target 8 Å -> working pixel 4 Å, box 24
    _ok(
        [
            "reconstruct",
            str(big),
            "-o",
            str(out),
            "-q",
            *FAST,
            "--max-resolution",
            "8",
            "--pad-to-input",
        ]
    )
    with mrcfile.open(out / "volume.mrc") as mrc:
        assert mrc.data.shape == (BOX, BOX, BOX)
        assert float(mrc.voxel_size.x) == pytest.approx(4.0)
    with mrcfile.open(out / "volume_input_box.mrc") as mrc:
        assert mrc.data.shape == (2 * BOX,) * 3
        assert float(mrc.voxel_size.x) == pytest.approx(2.0)
    report = json.loads((out / "report.json").read_text())
    assert report["outputs"]["volume_input_box"] == "volume_input_box.mrc"
