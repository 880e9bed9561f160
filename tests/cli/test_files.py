"""``sigcore info`` and ``sigcore convert`` through the real entry point."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sigcore.cli import main
from sigcore.errors import FormatError
from sigcore.io.mrc import read_mrc, write_stack, write_volume

DATA = Path(__file__).resolve().parents[1] / "data"


def run(capsys, *args: str) -> tuple[int, str, str]:
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def star(tmp_path) -> Path:
    """The hand-written RELION 3.1 file with a 3-image stack beside it."""
    shutil.copy(DATA / "relion31_particles.star", tmp_path)
    images = np.arange(1, 4, dtype=np.float32)[:, None, None] * np.ones((3, 8, 8))
    write_stack(tmp_path / "classes.mrcs", images, pixel_size=2.0)
    return tmp_path / "relion31_particles.star"


def test_info_json_for_star(capsys, star):
    code, out, _ = run(capsys, "info", star, "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["format"] == "relion-star"
    assert summary["kind"] == "metadata"
    assert summary["shape"] == [2, 8, 8]
    assert summary["images"] == 2
    assert summary["pixel_size"] == pytest.approx(2.0)
    assert summary["poses"] is True
    assert summary["pose_rows"] == 3
    assert "rlnAngleTilt" in summary["columns"]


def test_info_text_for_volume_and_stack(capsys, tmp_path):
    write_volume(tmp_path / "v.mrc", np.zeros((6, 6, 6)), voxel_size=1.5)
    code, out, _ = run(capsys, "info", tmp_path / "v.mrc")
    assert code == 0
    assert "volume" in out
    assert "6 x 6 x 6" in out
    assert "1.5 Å" in out
    write_stack(tmp_path / "s.mrcs", np.zeros((2, 4, 4)), pixel_size=None)
    code, out, _ = run(capsys, "info", tmp_path / "s.mrcs")
    assert "unknown" in out
    assert "poses       no" in out


def test_convert_star_to_xmd_to_star(capsys, star, tmp_path):
    xmd = tmp_path / "out" / "angles.xmd"
    xmd.parent.mkdir()
    code, _, err = run(capsys, "convert", star, xmd)
    assert code == 0, err
    assert (xmd.parent / "angles.mrcs").exists()  # stack carried along
    back = tmp_path / "back.star"
    code, _, err = run(capsys, "convert", xmd, back)
    assert code == 0, err
    code, out, _ = run(capsys, "info", back, "--json")
    summary = json.loads(out)
    assert summary["pose_rows"] == 3
    assert summary["pixel_size"] == pytest.approx(2.0)


def test_convert_apix_and_force(capsys, tmp_path):
    src = tmp_path / "s.mrcs"
    write_stack(src, np.ones((2, 4, 4)), pixel_size=None)
    dst = tmp_path / "s.star"
    code, _, err = run(capsys, "convert", src, dst)
    assert code == 1
    assert "needs a pixel size" in err
    code, _, err = run(capsys, "convert", src, dst, "--apix", "1.25")
    assert code == 0, err
    code, _, err = run(capsys, "convert", src, dst, "--apix", "1.25")
    assert code == 1
    assert "exists; use --force" in err
    code, _, err = run(capsys, "convert", src, dst, "--apix", "2.5", "--force")
    assert code == 0, err
    # s.star names the source stack s.mrcs instead of rewriting it
    assert "000002@s.mrcs" in dst.read_text()
    assert read_mrc(src)[1] is None
    code, out, _ = run(capsys, "info", dst, "--json")
    assert json.loads(out)["pixel_size"] == pytest.approx(2.5)


def test_convert_volume(capsys, tmp_path):
    write_volume(tmp_path / "v.mrc", np.ones((4, 4, 4)), voxel_size=2.0)
    code, _, err = run(capsys, "convert", tmp_path / "v.mrc", tmp_path / "w.mrc")
    assert code == 0, err
    _, voxel, stack = read_mrc(tmp_path / "w.mrc")
    assert not stack
    assert voxel == pytest.approx(2.0)
    code, _, err = run(capsys, "convert", tmp_path / "v.mrc", tmp_path / "w.star")
    assert code == 1
    assert "only be written as .mrc" in err


def _bad_inputs(tmp_path: Path, star: Path) -> dict[str, tuple[Path, str]]:
    good = tmp_path / "good.mrcs"
    write_stack(good, np.ones((2, 4, 4)), pixel_size=1.0)
    cut = tmp_path / "cut.mrcs"
    cut.write_bytes(good.read_bytes()[:-16])
    junk = tmp_path / "junk.mrcs"
    junk.write_bytes(b"definitely not MRC " * 64)
    nocol = tmp_path / "nocol.star"
    nocol.write_text("data_particles\n\nloop_\n_rlnAngleRot #1\n1.0\n")
    nostack = tmp_path / "nostack.star"
    nostack.write_text(star.read_text().replace("classes.mrcs", "gone.mrcs"))
    nan = tmp_path / "nan.mrcs"
    pixels = np.ones((2, 4, 4), np.float32)
    pixels[0, 0, 0] = np.nan
    write_stack(nan, pixels, pixel_size=1.0)
    rect = tmp_path / "rect.mrcs"
    write_stack(rect, np.ones((2, 4, 5)), pixel_size=1.0)
    return {
        "missing": (tmp_path / "absent.mrcs", "file not found"),
        "truncated": (cut, "not a readable MRC file"),
        "non-mrc": (junk, "not a readable MRC file"),
        "no columns": (nocol, "no rlnImageName column"),
        "missing stack": (nostack, "image stack gone.mrcs not found"),
        "nan": (nan, "NaN or Inf"),
        "non-square": (rect, "not square"),
    }


@pytest.mark.parametrize("command", ["info", "convert"])
def test_bad_input_is_one_line_and_exit_1(capsys, tmp_path, star, command):
    for case, (path, problem) in _bad_inputs(tmp_path, star).items():
        args = [command, path] + (
            [tmp_path / "out.mrcs"] if command == "convert" else []
        )
        code, _, err = run(capsys, *args)
        assert code == 1, case
        lines = err.strip().splitlines()
        assert len(lines) == 1, (case, err)
        assert lines[0].startswith(f"sigcore: error: {path}: "), (case, err)
        assert problem in lines[0], (case, err)
        assert "Traceback" not in err
        assert not (tmp_path / "out.mrcs").exists()


def test_debug_shows_the_exception(capsys, tmp_path):
    with pytest.raises(FormatError, match="file not found"):
        main(["--debug", "info", str(tmp_path / "absent.mrcs")])
