"""sigcore.reconstruct: outputs, refusal to overwrite, resume, report."""

from __future__ import annotations

import json

import mrcfile
import numpy as np
import pytest

from sigcore.api import reconstruct
from sigcore.errors import ConfigError, FormatError
from sigcore.hookspecs import hookimpl
from sigcore.plugins import get_plugin_manager
from sigcore.testing import UnalignedBackend, blob_stack

BOX = 24


class _ZeroSearch(UnalignedBackend):
    name = "test-zero"
    psi = 10.0
    shift = 1.0


class _Plugin:
    def __init__(self):
        self.ended = []

    @hookimpl
    def sigcore_register_backends(self):
        return [_ZeroSearch]

    @hookimpl
    def sigcore_run_end(self, run, result):
        self.ended.append(result)


def _stack(n=10, seed=0):
    return blob_stack(n, BOX, seed=seed)


def _run(images, out, plugin=None, **kw):
    plugin = plugin or _Plugin()
    pm = get_plugin_manager(autoload=False, extra=[plugin])
    options = {
        "pixel_size": 2.5,
        "step": 20,
        "neighbourhood": 40,
        "iterations": 2,
        "imed": False,
        "backend": "test-zero",
        "seed": 3,
    }
    options.update(kw)
    return reconstruct(images, output_dir=out, plugin_manager=pm, **options)


def test_outputs_of_a_run(tmp_path):
    plugin = _Plugin()
    out = tmp_path / "run"
    result = _run(_stack(), out, plugin=plugin, write_xmd=True)
    assert plugin.ended == [result]
    for name in (
        "volume.mrc",
        "images.mrcs",
        "assignments.star",
        "assignments.xmd",
        "report.json",
        "checkpoint",
    ):
        assert (out / name).exists(), name
    with mrcfile.open(out / "volume.mrc") as mrc:
        assert mrc.data.shape == (BOX,) * 3
        assert float(mrc.voxel_size.x) == pytest.approx(2.5)
        np.testing.assert_allclose(mrc.data, result.volume)
    import starfile

    particles = starfile.read(out / "assignments.star")["particles"]
    assert len(particles) == len(result.assignments)
    # shifts of 1 px at 2.5 Å/px -> 2.5 Å; weights carried
    np.testing.assert_allclose(particles["rlnOriginXAngst"], 2.5)
    np.testing.assert_allclose(
        particles["sigcore_weight"], result.assignments.weights, rtol=1e-6
    )
    assert particles["rlnImageName"].str.endswith("@images.mrcs").all()
    report = json.loads((out / "report.json").read_text())
    assert report["parameters"]["iterations"] == 2
    assert report["seed"] == 3
    assert report["backend"] == "test-zero"
    assert len(report["iterations"]) == 2
    assert report["iterations"][1]["significant_pairs"] == len(result.assignments)
    assert "search" in report["timings"]["per_step_seconds"]
    assert report["geometry"]["working_box"] == BOX


def test_plots_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    _run(_stack(), out)
    for name in ("slices.png", "angular_distribution.png", "significance.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"


def test_existing_directory_needs_force(tmp_path):
    out = tmp_path / "run"
    _run(_stack(), out, plots=False)
    with pytest.raises(FormatError, match="use --force"):
        _run(_stack(), out, plots=False)
    _run(_stack(), out, plots=False, force=True)


def test_resume_without_checkpoint_is_refused(tmp_path):
    with pytest.raises(FormatError, match="no checkpoint"):
        _run(_stack(), tmp_path / "empty", resume=True)


def test_resume_of_a_finished_run_rewrites_the_same_map(tmp_path):
    out = tmp_path / "run"
    first = _run(_stack(), out, plots=False, seed=None)
    again = _run(_stack(), out, plots=False, seed=None, resume=True)
    np.testing.assert_array_equal(first.volume, again.volume)
    assert first.run.seed == again.run.seed


def test_bad_options_fail_before_any_work(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match="step"):
        _run(_stack(), out, step=50, neighbourhood=40)
    assert not out.exists()
    with pytest.raises(ConfigError, match="pixel size unknown"):
        _run(_stack(), tmp_path / "b", pixel_size=None)


def test_max_resolution_works_on_a_smaller_box(tmp_path):
    stack = np.repeat(np.repeat(_stack(), 2, axis=1), 2, axis=2)  # 48 px at 1.25 Å
    result = _run(stack, None, pixel_size=1.25, max_resolution=5.0)
    # target pixel 2.5 Å -> 48 * 1.25 / 2.5 = 24 px
    assert result.volume.shape == (24, 24, 24)
    assert result.pixel_size == pytest.approx(2.5)


def _doubled_stack():
    return np.repeat(np.repeat(_stack(), 2, axis=1), 2, axis=2)  # 48 px at 1.25 Å


def test_pad_to_input_writes_the_map_at_the_input_box(tmp_path):
    from sigcore.volume import fourier_crop

    out = tmp_path / "run"
    result = _run(
        _doubled_stack(),
        out,
        plots=False,
        pixel_size=1.25,
        max_resolution=5.0,
        pad_to_input=True,
    )
    assert result.volume.shape == (24, 24, 24)
    with mrcfile.open(out / "volume_input_box.mrc") as mrc:
        padded = mrc.data.copy()
        assert float(mrc.voxel_size.x) == pytest.approx(1.25)
    with mrcfile.open(out / "volume.mrc") as mrc:
        working = mrc.data.copy()
        assert float(mrc.voxel_size.x) == pytest.approx(2.5)
    assert padded.shape == (48, 48, 48)
    back = fourier_crop(padded, 24)
    scale = np.abs(working).max()
    np.testing.assert_allclose(back, working, rtol=1e-4, atol=1e-4 * scale)
    # same density at the same physical position: the centre voxel is shared
    assert padded[24, 24, 24] == pytest.approx(working[12, 12, 12], rel=1e-4)
    report = json.loads((out / "report.json").read_text())
    assert report["outputs"]["volume_input_box"] == "volume_input_box.mrc"


def test_no_padded_map_without_the_flag_or_when_boxes_agree(tmp_path):
    out = tmp_path / "run"
    options = {"plots": False, "pixel_size": 1.25, "max_resolution": 5.0}
    _run(_doubled_stack(), out, pad_to_input=True, **options)
    assert (out / "volume_input_box.mrc").exists()
    # a --force rerun without the flag removes the earlier run's padded map
    _run(_doubled_stack(), out, force=True, **options)
    assert (out / "volume.mrc").exists()
    assert not (out / "volume_input_box.mrc").exists()
    report = json.loads((out / "report.json").read_text())
    assert "volume_input_box" not in report["outputs"]
    # boxes equal (no max_resolution): the flag adds nothing
    same = tmp_path / "same"
    _run(_stack(), same, plots=False, pad_to_input=True)
    assert not (same / "volume_input_box.mrc").exists()
