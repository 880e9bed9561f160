from __future__ import annotations

import numpy as np
import pytest

from sigcore.errors import FormatError
from sigcore.geometry import euler_to_matrix, random_rotations
from sigcore.imageset import ImageSet, PoseTable
from sigcore.io.relion import RelionStarReader, read_star, write_star

A_PSI90 = np.array([[0.0, 1, 0], [-1, 0, 0], [0, 0, 1]])
A_ROT90_TILT90 = np.array([[0.0, 0, -1], [-1, 0, 0], [0, 1, 0]])


def test_relion31_known_values(stage):
    path = stage("relion31_particles.star")
    s = read_star(path)
    assert s.pixel_size == pytest.approx(2.0)
    # rows 1 and 3 name the same image (000002@ and 2@): two distinct images
    assert s.images.shape == (2, 8, 8)
    assert s.images[0, 0, 0] == 2.0
    assert s.images[1, 0, 0] == 1.0
    np.testing.assert_array_equal(s.poses.image_index, [0, 1, 0])
    np.testing.assert_allclose(s.poses.rotations[0], A_PSI90, atol=1e-12)
    np.testing.assert_allclose(s.poses.rotations[1], A_ROT90_TILT90, atol=1e-12)
    np.testing.assert_allclose(s.poses.shifts, [[2, -1], [0, 0.5], [-0.5, 0]])
    np.testing.assert_array_equal(s.poses.weights, [1, 1, 1])
    assert s.metadata["voltage"] == pytest.approx(200.0)
    assert s.metadata["relion_version"] == "3.1"
    assert "rlnClassNumber" in s.metadata["columns"]


def test_relion30_pixels_and_detector_pixel_size(stage):
    s = read_star(stage("relion30_particles.star"))
    assert s.pixel_size == pytest.approx(2.0)
    assert s.metadata["relion_version"] == "3.0"
    np.testing.assert_allclose(s.poses.shifts, [[1.5, -0.5], [0, 2]])
    assert s.images[1, 0, 0] == 3.0
    np.testing.assert_allclose(s.poses.rotations[0], A_PSI90, atol=1e-12)


def test_model_star_classes(stage):
    path = stage(
        "run_it025_model.star", stack="Class2D/job010/run_it025_classes.mrcs", n=3
    )
    s = read_star(path)
    assert s.pixel_size == pytest.approx(3.5)
    assert s.poses is None
    np.testing.assert_array_equal(s.images[:, 0, 0], [1, 2, 3])
    np.testing.assert_allclose(s.metadata["class_distribution"], [0.5, 0.3, 0.2])


def _random_set(rng, *, n_images=4, rows=7, apix=1.3):
    return ImageSet(
        images=rng.standard_normal((n_images, 10, 10)),
        pixel_size=apix,
        poses=PoseTable(
            image_index=rng.integers(0, n_images, rows),
            rotations=random_rotations(rows, rng),
            shifts=rng.uniform(-5, 5, (rows, 2)),
            weights=rng.random(rows),
            extra={
                "correlation": rng.random(rows),
                "direction": rng.integers(0, 100, rows),
            },
        ),
    )


def test_write_read_round_trip_with_several_rows_per_image(tmp_path):
    rng = np.random.default_rng(5)
    data = _random_set(rng)
    path = tmp_path / "assignments.star"
    write_star(data, path)
    assert (tmp_path / "assignments.mrcs").exists()
    text = path.read_text()
    assert "<NA>" not in text
    assert "data_optics" in text
    assert "placeholder" in text
    back = read_star(path)
    used = np.unique(data.poses.image_index)  # only images named in rows come back
    order = {old: new for new, old in enumerate(dict.fromkeys(data.poses.image_index))}
    np.testing.assert_array_equal(
        back.poses.image_index, [order[i] for i in data.poses.image_index]
    )
    assert len(back) == len(used)
    for old, new in order.items():
        np.testing.assert_array_equal(back.images[new], data.images[old])
    np.testing.assert_allclose(back.poses.rotations, data.poses.rotations, atol=1e-8)
    np.testing.assert_allclose(back.poses.shifts, data.poses.shifts, atol=1e-8)
    np.testing.assert_allclose(back.poses.weights, data.poses.weights, atol=1e-9)
    np.testing.assert_allclose(
        back.poses.extra["correlation"], data.poses.extra["correlation"], atol=1e-9
    )
    np.testing.assert_array_equal(
        back.poses.extra["direction"], data.poses.extra["direction"]
    )


def test_stack_path_option_points_at_existing_stack(tmp_path):
    from sigcore.io.mrc import write_stack

    rng = np.random.default_rng(6)
    data = _random_set(rng, n_images=3, rows=3)
    stack = tmp_path / "inputs" / "classes.mrcs"
    stack.parent.mkdir()
    write_stack(stack, data.images, pixel_size=1.3)
    out = tmp_path / "run" / "assignments.star"
    out.parent.mkdir()
    write_star(data, out, stack_path=stack)
    assert not (out.parent / "assignments.mrcs").exists()
    assert "@../inputs/classes.mrcs" in out.read_text()
    back = read_star(out)
    for row, image in enumerate(data.poses.image_index):
        np.testing.assert_array_equal(
            back.images[back.poses.image_index[row]], data.images[image]
        )


def test_write_without_poses_and_optics_from_metadata(tmp_path):
    data = ImageSet(np.ones((2, 4, 4)), pixel_size=1.0, metadata={"voltage": 120.0})
    path = tmp_path / "plain.star"
    write_star(data, path)
    back = read_star(path)
    assert back.poses is None
    assert back.metadata["voltage"] == pytest.approx(120.0)
    assert len(back) == 2


def test_write_errors(tmp_path):
    with pytest.raises(FormatError, match="needs a pixel size"):
        write_star(ImageSet(np.ones((1, 4, 4))), tmp_path / "x.star")
    data = ImageSet(np.ones((1, 4, 4)), pixel_size=1.0)
    (tmp_path / "y.mrcs").write_text("occupied")
    with pytest.raises(FormatError, match=r"y\.mrcs: exists"):
        write_star(data, tmp_path / "y.star")
    assert not (tmp_path / "y.star").exists()


def test_read_errors_name_the_star_file(stage, tmp_path):
    path = stage("relion31_particles.star")
    (tmp_path / "classes.mrcs").unlink()
    with pytest.raises(FormatError, match=r"relion31_particles\.star: image stack"):
        read_star(path)
    bad = tmp_path / "nocol.star"
    bad.write_text("data_particles\n\nloop_\n_rlnAngleRot #1\n10.0\n20.0\n")
    with pytest.raises(FormatError, match=r"nocol\.star: no rlnImageName"):
        read_star(bad)
    stage("relion30_particles.star", n=2)  # index 3 is out of range
    with pytest.raises(FormatError, match="out of range"):
        read_star(tmp_path / "relion30_particles.star")


def test_euler_columns_match_geometry(tmp_path):
    data = ImageSet(
        np.ones((1, 4, 4)),
        pixel_size=1.0,
        poses=PoseTable(
            image_index=[0],
            rotations=euler_to_matrix([[10.0, 20.0, 30.0]]),
            shifts=[[0.0, 0.0]],
            weights=[1.0],
        ),
    )
    write_star(data, tmp_path / "e.star")
    row = (tmp_path / "e.star").read_text().strip().splitlines()[-1].split()
    np.testing.assert_allclose([float(v) for v in row[2:5]], [10, 20, 30], atol=1e-7)


def test_sniff(tmp_path, stage):
    assert RelionStarReader().sniff(stage("relion31_particles.star"))
    other = tmp_path / "x.star"
    other.write_text("nothing here")
    assert not RelionStarReader().sniff(other)


def test_namespaced_extra_columns_become_valid_labels(tmp_path):
    """A third-party metric name ("pkg.metric") is written as a valid label."""
    import numpy as np

    from sigcore.imageset import ImageSet, PoseTable
    from sigcore.io.relion import read_star, write_star

    poses = PoseTable(
        image_index=np.arange(2),
        rotations=np.broadcast_to(np.eye(3), (2, 3, 3)),
        shifts=np.zeros((2, 2)),
        weights=np.ones(2),
        extra={"example.frc_weighted_correlation": np.array([0.25, 0.5])},
    )
    data = ImageSet(np.zeros((2, 8, 8), np.float32), pixel_size=2.0, poses=poses)
    write_star(data, tmp_path / "a.star")
    back = read_star(tmp_path / "a.star")
    np.testing.assert_allclose(
        back.poses.extra["example_frc_weighted_correlation"], [0.25, 0.5]
    )
