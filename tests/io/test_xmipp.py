from __future__ import annotations

import numpy as np
import pytest

from sigcore.errors import FormatError
from sigcore.geometry import euler_to_matrix, random_rotations
from sigcore.imageset import ImageSet, PoseTable
from sigcore.io.xmipp import HEADER, XmippXmdReader, read_xmd, write_xmd


def _image_positions(points, rotation, shift):
    """Where 3D points land in the *observed* image for a RELION-sense pose.

    The projection at A puts r at (A r)_xy; the observed image is the
    projection translated by -shift (CONVENTIONS §1.3).
    """
    return (points @ rotation.T)[:, :2] - shift


def test_flip_row_is_unflipped_to_the_relion_rule(stage):
    s = read_xmd(stage("xmipp_flip.xmd"))
    # the enabled = -1 row (image 2) is dropped, its image never loaded
    assert len(s.poses) == 2
    np.testing.assert_array_equal(s.images[:, 0, 0], [1, 3])
    relion = euler_to_matrix([30.0, 220.0, -50.0])
    np.testing.assert_allclose(s.poses.rotations[0], relion, atol=1e-12)
    np.testing.assert_allclose(s.poses.shifts[0], [-3.0, -2.0])
    # the unflipped row is taken as it is
    np.testing.assert_allclose(
        s.poses.rotations[1], euler_to_matrix([30.0, 40.0, 50.0]), atol=1e-12
    )
    np.testing.assert_allclose(s.poses.shifts[1], [3.0, -2.0])
    np.testing.assert_allclose(s.poses.weights, [0.75, 0.25])
    np.testing.assert_allclose(s.poses.extra["correlation"], [0.91, 0.8])


def test_flip_gives_same_projection_geometry_as_relion_equivalent(stage):
    """Xmipp: the image mirrored in x, then shifted by s, matches P_A."""
    s = read_xmd(stage("xmipp_flip.xmd"))
    a_xmipp = euler_to_matrix([30.0, 40.0, 50.0])
    shift_xmipp = np.array([3.0, -2.0])
    points = np.random.default_rng(0).standard_normal((20, 3))
    # Position of each point in the mirrored+shifted image is (A r)_xy; so in
    # the mirrored image it is (A r)_xy - s, and in the observed image that
    # position with x negated.
    in_mirrored = (points @ a_xmipp.T)[:, :2] - shift_xmipp
    observed = in_mirrored * np.array([-1.0, 1.0])
    np.testing.assert_allclose(
        _image_positions(points, s.poses.rotations[0], s.poses.shifts[0]),
        observed,
        atol=1e-12,
    )


def test_blocks_and_aliases(stage, tmp_path):
    path = stage("xmipp_blocks.xmd")
    first = read_xmd(path)  # first block with an image column: classes
    assert first.poses is None
    np.testing.assert_array_equal(first.images[:, 0, 0], [1, 2])
    s = read_xmd(f"class000002_images@{path}")
    assert s.metadata["block"] == "class000002_images"
    np.testing.assert_array_equal(s.images[:, 0, 0], [3, 1])
    np.testing.assert_allclose(s.poses.weights, [0.5, 2.0])
    np.testing.assert_allclose(s.poses.shifts, [[1, 2], [-1, 0]])
    np.testing.assert_allclose(
        s.poses.rotations[1], euler_to_matrix([90.0, 90.0, 0.0]), atol=1e-12
    )
    with pytest.raises(FormatError, match="no block data_nothing"):
        read_xmd(f"nothing@{path}")


def test_writer_format_and_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    rows = 6
    data = ImageSet(
        rng.standard_normal((3, 8, 8)),
        pixel_size=2.0,
        poses=PoseTable(
            image_index=[0, 0, 1, 2, 2, 2],
            rotations=random_rotations(rows, rng),
            shifts=rng.uniform(-3, 3, (rows, 2)),
            weights=rng.random(rows),
            extra={"correlation": rng.random(rows), "imed": rng.random(rows)},
        ),
    )
    path = tmp_path / "angles.xmd"
    write_xmd(data, path)
    lines = path.read_text().splitlines()
    assert lines[0] == HEADER
    assert " _maxCC" in lines
    assert " _cost" in lines
    assert " _flip" in lines
    assert lines[-1].startswith(" 000003@angles.mrcs ")
    back = read_xmd(path)
    assert back.pixel_size == pytest.approx(2.0)
    np.testing.assert_array_equal(back.poses.image_index, data.poses.image_index)
    np.testing.assert_array_equal(back.images, data.images)
    np.testing.assert_allclose(back.poses.rotations, data.poses.rotations, atol=1e-8)
    np.testing.assert_allclose(back.poses.shifts, data.poses.shifts, atol=1e-8)
    np.testing.assert_allclose(back.poses.extra["imed"], data.poses.extra["imed"])


def test_missing_image_column_and_sniff(tmp_path):
    path = tmp_path / "bad.xmd"
    path.write_text(f"{HEADER}\ndata_noname\nloop_\n _angleRot\n 1.0 \n")
    with pytest.raises(FormatError, match=r"bad\.xmd: no block with an image column"):
        read_xmd(path)
    other = tmp_path / "plain.txt"
    other.write_text(f"{HEADER}\n")
    assert XmippXmdReader().sniff(other)
    assert not XmippXmdReader().sniff(tmp_path / "absent.txt")
