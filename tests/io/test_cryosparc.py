from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from sigcore.errors import FormatError
from sigcore.geometry import euler_to_matrix
from sigcore.io.cryosparc import CryosparcCsReader, read_cs, rodrigues_to_matrix
from sigcore.io.mrc import write_stack


def _save_cs(path, table):
    with open(path, "wb") as fh:  # np.save(path) would append ".npy"
        np.save(fh, table)


def _project(tmp_path, *, poses=False):
    """A cryoSPARC-like project: J7/ holds the .cs and its .mrc stack."""
    job = tmp_path / "P1" / "J7"
    job.mkdir(parents=True)
    images = np.arange(4, dtype=np.float32)[:, None, None] * np.ones((4, 6, 6))
    write_stack(job / "J7_020_class_averages.mrc", images, pixel_size=0.0)
    fields = [
        ("uid", "<u8"),
        ("blob/path", "S64"),
        ("blob/idx", "<u4"),
        ("blob/psize_A", "<f4"),
        ("blob/shape", "<u4", (2,)),
    ]
    if poses:
        fields += [
            ("alignments3D/pose", "<f4", (3,)),
            ("alignments3D/shift", "<f4", (2,)),
            ("alignments3D/psize_A", "<f4"),
        ]
    table = np.zeros(3, dtype=fields)
    table["uid"] = [11, 12, 13]
    table["blob/path"] = b"J7/J7_020_class_averages.mrc"  # project-relative
    table["blob/idx"] = [2, 0, 3]
    table["blob/psize_A"] = 1.5
    table["blob/shape"] = 6
    if poses:
        table["alignments3D/pose"] = [[0, 0, np.pi / 2], [0.1, -0.2, 0.3], [0, 0, 0]]
        table["alignments3D/shift"] = [[1.0, -2.0], [0, 0], [0.5, 0.5]]
        table["alignments3D/psize_A"] = 3.0  # shifts at twice the blob pixel size
    path = job / "J7_020_class_averages.cs"
    _save_cs(path, table)
    return path


def test_reads_stack_through_project_relative_path(tmp_path):
    path = _project(tmp_path)
    assert CryosparcCsReader().sniff(path)
    s = read_cs(path)
    assert s.pixel_size == pytest.approx(1.5)
    np.testing.assert_array_equal(s.images[:, 0, 0], [2, 0, 3])  # 0-based idx
    assert s.poses is None
    assert "blob/idx" in s.metadata["columns"]


def test_rodrigues_convention():
    # a quarter turn about z is RELION (0, 0, 90)
    np.testing.assert_allclose(
        rodrigues_to_matrix(np.array([[0, 0, np.pi / 2]]))[0],
        euler_to_matrix([0, 0, 90]),
        atol=1e-12,
    )
    vectors = np.random.default_rng(0).standard_normal((10, 3))
    np.testing.assert_allclose(
        rodrigues_to_matrix(vectors),
        np.swapaxes(Rotation.from_rotvec(vectors).as_matrix(), 1, 2),
        atol=1e-12,
    )
    np.testing.assert_allclose(rodrigues_to_matrix(np.zeros((1, 3)))[0], np.eye(3))


def test_3d_poses_and_shift_rescaling(tmp_path):
    s = read_cs(_project(tmp_path, poses=True))
    np.testing.assert_allclose(
        s.poses.rotations[0], euler_to_matrix([0, 0, 90]), atol=1e-6
    )
    np.testing.assert_allclose(s.poses.shifts[0], [2.0, -4.0], atol=1e-6)
    np.testing.assert_array_equal(s.poses.image_index, [0, 1, 2])


def test_bad_cs_files(tmp_path):
    junk = tmp_path / "junk.cs"
    junk.write_bytes(b"not numpy")
    with pytest.raises(FormatError, match=r"junk\.cs: not a cryoSPARC"):
        read_cs(junk)
    nofield = tmp_path / "nofield.cs"
    _save_cs(nofield, np.zeros(2, dtype=[("uid", "<u8")]))
    with pytest.raises(FormatError, match="no blob/path field"):
        read_cs(nofield)
    missing = tmp_path / "missing.cs"
    table = np.zeros(1, dtype=[("blob/path", "S16"), ("blob/idx", "<u4")])
    table["blob/path"] = b"J1/absent.mrc"
    _save_cs(missing, table)
    with pytest.raises(FormatError, match=r"missing\.cs: image stack J1/absent\.mrc"):
        read_cs(missing)
