"""``sigcore project`` / ``sigcore backproject`` end to end on a real map."""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest

from sigcore.cli import main
from sigcore.io import read_images
from sigcore.io.mrc import read_volume
from sigcore.validation import fsc

TRPV1 = "trpv1_c4_cryojax_48.mrc"


def _sigcore(*args: str) -> int:
    """Run the CLI in-process; return its exit code."""
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture
def gallery(shared_maps: Path, tmp_path: Path) -> Path:
    out = tmp_path / "gallery.mrcs"
    code = _sigcore(
        "project",
        str(shared_maps / TRPV1),
        "--step",
        "5",
        "--sym",
        "c4",
        "-o",
        str(out),
    )
    assert code == 0
    return out


def test_project_writes_stack_and_star_of_the_gallery(gallery: Path) -> None:
    from sigcore.sampling import make_gallery

    star = gallery.with_suffix(".star")
    assert gallery.exists()
    assert star.exists()
    data = read_images(star)
    expected = make_gallery(5.0, "c4")
    assert len(data) == len(expected) == len(data.poses)
    assert data.pixel_size == pytest.approx(4.88, abs=1e-3)
    np.testing.assert_allclose(data.poses.rotations, expected.rotations, atol=1e-6)
    with mrcfile.open(gallery) as mrc:
        assert mrc.data.shape == (len(expected), 48, 48)


def test_backproject_from_gallery_star_recovers_the_map(
    gallery: Path, shared_maps: Path, tmp_path: Path
) -> None:
    out = tmp_path / "vol.mrc"
    star = gallery.with_suffix(".star")
    assert _sigcore("backproject", str(star), "--sym", "c4", "-o", str(out)) == 0
    volume, voxel = read_volume(out)
    truth, _ = read_volume(shared_maps / TRPV1)
    assert voxel == pytest.approx(4.88, abs=1e-3)
    curve = fsc(volume, truth).fsc
    print("\nFSC backproject(c4 gallery, step 5) vs map:", np.round(curve, 4))
    assert curve[1:20].min() > 0.95
    assert curve[1:].min() > 0.8


def test_outputs_are_not_overwritten_without_force(
    gallery: Path, shared_maps: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = gallery.read_bytes()
    args = ["project", str(shared_maps / TRPV1), "--step", "20", "-o", str(gallery)]
    assert _sigcore(*args) == 1
    assert "exists; use --force" in capsys.readouterr().err
    assert gallery.read_bytes() == before
    assert _sigcore(*args, "--force") == 0
    assert gallery.read_bytes() != before


def test_backproject_needs_poses(
    gallery: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "v.mrc"
    assert _sigcore("backproject", str(gallery), "-o", str(out)) == 1
    assert "no poses" in capsys.readouterr().err
    assert not out.exists()
