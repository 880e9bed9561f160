"""``sigcore fsc`` and ``sigcore simulate`` through the CLI entry point."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sigcore.cli import main
from sigcore.geometry import euler_to_matrix
from sigcore.io.mrc import read_volume, write_volume
from sigcore.phantom import protein_phantom
from sigcore.volume import flip_hand, rotate_volume


def _run(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_simulate_phantom_then_fsc_of_truth_with_itself(tmp_path, capsys) -> None:
    out = tmp_path / "sim"
    argv = ["simulate", "phantom", "-n", "6", "--snr", "2", "--box", "24"]
    assert _run([*argv, "--seed", "3", "-o", str(out)]) == 0
    assert "wrote 6 images" in capsys.readouterr().out
    for name in ("classes.mrcs", "classes.star", "truth.mrc"):
        assert (out / name).is_file()
    truth, voxel = read_volume(out / "truth.mrc")
    assert truth.shape == (24, 24, 24)
    assert voxel == pytest.approx(2.0)
    np.testing.assert_allclose(truth, protein_phantom(24, seed=3), atol=1e-6)
    # same seed, same files; existing outputs are refused without --force
    assert _run([*argv, "--seed", "3", "-o", str(out)]) == 1
    assert "exists" in capsys.readouterr().err
    assert _run([*argv, "--seed", "3", "-o", str(out), "--force"]) == 0
    capsys.readouterr()

    assert _run(["fsc", str(out / "truth.mrc"), str(out / "truth.mrc"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["resolution_0.5"] == pytest.approx(4.0)  # Nyquist at 2 Å/px
    assert all(row["fsc"] == pytest.approx(1.0) for row in info["curve"][1:])


def test_simulate_map_needs_voxel_size(tmp_path, capsys) -> None:
    path = tmp_path / "m.mrc"
    write_volume(path, protein_phantom(16), voxel_size=None)
    assert _run(["simulate", str(path), "-n", "2", "-o", str(tmp_path / "o")]) == 1
    assert "--apix" in capsys.readouterr().err
    argv = ["simulate", str(path), "-n", "2", "--apix", "3", "-o", str(tmp_path / "o")]
    assert _run(argv) == 0


def test_fsc_align_reports_flipped_hand(tmp_path, capsys) -> None:
    ref = protein_phantom(32, seed=0)
    moving = rotate_volume(
        flip_hand(ref), euler_to_matrix([20.0, 60.0, -45.0]), [1, -1, 2]
    )
    write_volume(tmp_path / "a.mrc", moving, voxel_size=3.0)
    write_volume(tmp_path / "b.mrc", ref, voxel_size=3.0)
    aligned = tmp_path / "aligned.mrc"
    argv = ["fsc", str(tmp_path / "a.mrc"), str(tmp_path / "b.mrc"), "--align"]
    assert _run([*argv, "--aligned-out", str(aligned)]) == 0
    text = capsys.readouterr().out
    assert "flipped hand wins" in text
    assert "FSC 0.5:" in text
    assert "FSC 0.143:" in text
    out, _ = read_volume(aligned)
    assert np.corrcoef(out.ravel(), ref.ravel())[0, 1] > 0.98
    # without --align the mirror image scores poorly
    assert (
        _run(["fsc", str(tmp_path / "a.mrc"), str(tmp_path / "b.mrc"), "--json"]) == 0
    )
    info = json.loads(capsys.readouterr().out)
    assert "alignment" not in info
    assert info["curve"][3]["fsc"] < 0.5


def test_fsc_resamples_a_different_box(tmp_path, capsys) -> None:
    ref = protein_phantom(32, seed=1)
    write_volume(tmp_path / "big.mrc", ref, voxel_size=2.0)
    from sigcore.volume import fourier_crop

    write_volume(tmp_path / "small.mrc", fourier_crop(ref, 16), voxel_size=4.0)
    argv = ["fsc", str(tmp_path / "small.mrc"), str(tmp_path / "big.mrc"), "--json"]
    assert _run(argv) == 0
    info = json.loads(capsys.readouterr().out)
    assert "resampled" in info["note"]
    assert info["pixel_size"] == pytest.approx(4.0)
    assert min(row["fsc"] for row in info["curve"][1:6]) > 0.99
