from __future__ import annotations

import mrcfile
import numpy as np
import pytest

from sigcore.errors import FormatError
from sigcore.io.mrc import MrcReader, read_mrc, read_volume, write_stack, write_volume


def _raw(path, data, *, ispg=None, mz=None, voxel=0.0):
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.asarray(data))
        if ispg is not None:
            mrc.header.ispg = ispg
        if mz is not None:
            mrc.header.mz = mz
        mrc.voxel_size = voxel
    return path


def test_write_stack_header_and_round_trip(tmp_path):
    images = np.random.default_rng(1).standard_normal((4, 6, 6)).astype(np.float32)
    path = tmp_path / "s.mrcs"
    write_stack(path, images, pixel_size=1.7)
    with mrcfile.open(path) as mrc:
        assert mrc.header.ispg == 0
        assert mrc.header.mode == 2
        assert mrc.header.mz == 1
        assert mrc.voxel_size.x == pytest.approx(1.7)
    data, apix, stack = read_mrc(path)
    assert stack
    assert data.dtype == np.float32
    np.testing.assert_array_equal(data, images)
    assert apix == pytest.approx(1.7)


def test_write_volume_header_and_read_volume(tmp_path):
    vol = np.random.default_rng(2).standard_normal((5, 5, 5))  # float64 in
    path = tmp_path / "v.mrc"
    write_volume(path, vol, voxel_size=2.5)
    with mrcfile.open(path) as mrc:
        assert mrc.header.ispg == 1
        assert mrc.header.mode == 2
        assert tuple(mrc.header.origin.tolist()) == (0.0, 0.0, 0.0)
    data, voxel = read_volume(path)
    assert data.dtype == np.float32
    np.testing.assert_allclose(data, vol.astype(np.float32))
    assert voxel == pytest.approx(2.5)
    with pytest.raises(FormatError, match="exists; use --force"):
        write_volume(path, vol, voxel_size=2.5)


@pytest.mark.parametrize(
    ("name", "shape", "ispg", "mz", "expect_stack"),
    [
        ("a.mrcs", (4, 4, 4), 1, 4, True),  # extension wins over ispg
        ("relion_map.mrc", (4, 4, 4), 0, 4, False),  # RELION: ispg 0, mz = nz
        ("map.mrc", (4, 4, 4), 1, 4, False),
        ("stack.mrc", (4, 4, 4), 0, 1, True),  # MRC2014 stack: mz = 1
        ("cryosparc.mrc", (3, 4, 4), 0, 3, True),  # not a cube: images
        ("one.mrc", (4, 4), 0, 1, True),  # a single image: stack of one
    ],
)
def test_stack_or_volume(tmp_path, name, shape, ispg, mz, expect_stack):
    path = _raw(tmp_path / name, np.zeros(shape, np.float32), ispg=ispg, mz=mz)
    data, _, stack = read_mrc(path)
    assert stack is expect_stack
    assert data.ndim == 3


def test_force_stack_suffix(tmp_path):
    path = _raw(tmp_path / "map.mrc", np.zeros((4, 4, 4), np.float32), ispg=1, mz=4)
    assert read_mrc(path)[2] is False
    data, _, stack = read_mrc(f"{path}:mrcs")
    assert stack
    assert data.shape == (4, 4, 4)


def test_zero_voxel_size_is_none_and_ints_become_float32(tmp_path):
    path = _raw(tmp_path / "i.mrcs", np.arange(32, dtype=np.int16).reshape(2, 4, 4))
    s = MrcReader().read(path)
    assert s.pixel_size is None
    assert s.images.dtype == np.float32
    assert s.images[1, 3, 3] == 31.0
    assert s.metadata["kind"] == "stack"


def test_bad_machine_stamp_read_permissively(shared_maps):
    data, voxel = read_volume(shared_maps / "ribosome50S_empiar10076_classD_32.mrc")
    assert data.shape == (32, 32, 32)
    assert voxel == pytest.approx(1.0)
    assert np.isfinite(data).all()


def test_truncated_and_non_mrc_files(tmp_path):
    good = tmp_path / "good.mrcs"
    write_stack(good, np.ones((2, 4, 4)), pixel_size=1.0)
    cut = tmp_path / "cut.mrcs"
    cut.write_bytes(good.read_bytes()[:-10])
    with pytest.raises(FormatError, match=r"cut\.mrcs: not a readable MRC"):
        read_mrc(cut)
    junk = tmp_path / "junk.mrc"
    junk.write_bytes(b"not an mrc file " * 100)
    with pytest.raises(FormatError, match=r"junk\.mrc: not a readable MRC"):
        read_mrc(junk)
    assert MrcReader().sniff(good)
    assert not MrcReader().sniff(tmp_path / "absent.mrc")


def test_read_volume_rejects_stack_shapes(tmp_path):
    path = _raw(tmp_path / "s.mrc", np.zeros((3, 4, 4), np.float32))
    with pytest.raises(FormatError, match="not a cubic volume"):
        read_volume(path)
