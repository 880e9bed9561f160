from __future__ import annotations

import mrcfile
import numpy as np
import pytest

from sigcore.errors import FormatError
from sigcore.geometry import random_rotations
from sigcore.imageset import ImageSet, PoseTable
from sigcore.io import open_reader, read_images, write_images
from sigcore.io.mrc import write_stack, write_volume


def test_plugins_registered_under_their_names(io_registry):
    assert set(io_registry.readers) == {
        "mrc",
        "relion-star",
        "xmipp-xmd",
        "spider",
        "cryosparc-cs",
    }
    assert set(io_registry.writers) == {"mrc", "relion-star", "xmipp-xmd"}


def test_reader_choice(tmp_path, stage, io_registry):
    stack = tmp_path / "s.mrcs"
    write_stack(stack, np.ones((2, 4, 4)), pixel_size=1.0)
    assert open_reader(stack, registry=io_registry).name == "mrc"
    # an MRC stack under a foreign name is found by sniffing
    odd = tmp_path / "s.dat"
    odd.write_bytes(stack.read_bytes())
    assert open_reader(odd, registry=io_registry).name == "mrc"
    xmd = stage("xmipp_blocks.xmd")
    assert open_reader(f"classes@{xmd}", registry=io_registry).name == "xmipp-xmd"
    assert open_reader(f"{stack}:mrcs", registry=io_registry).name == "mrc"
    with pytest.raises(FormatError, match="file not found"):
        open_reader(tmp_path / "absent.mrcs", registry=io_registry)
    unknown = tmp_path / "notes.txt"
    unknown.write_text("hello")
    with pytest.raises(FormatError, match="unrecognised format"):
        open_reader(unknown, registry=io_registry)


def test_pixel_size_override_and_requirement(tmp_path, io_registry):
    stack = tmp_path / "s.mrcs"
    write_stack(stack, np.ones((2, 4, 4)), pixel_size=None)
    assert read_images(stack, registry=io_registry).pixel_size is None
    with pytest.raises(FormatError, match="no pixel size"):
        read_images(stack, require_pixel_size=True, registry=io_registry)
    s = read_images(
        stack, pixel_size=3.0, require_pixel_size=True, registry=io_registry
    )
    assert s.pixel_size == 3.0
    with pytest.raises(FormatError, match="must be positive"):
        read_images(stack, pixel_size=-1.0, registry=io_registry)


def test_validation_errors_name_the_file(tmp_path, io_registry):
    nan = tmp_path / "nan.mrcs"
    images = np.ones((3, 4, 4), np.float32)
    images[1, 2, 2] = np.nan
    write_stack(nan, images, pixel_size=1.0)
    with pytest.raises(FormatError, match=r"nan\.mrcs: image 2 holds NaN or Inf"):
        read_images(nan, registry=io_registry)
    rect = tmp_path / "rect.mrcs"
    write_stack(rect, np.ones((2, 4, 6)), pixel_size=1.0)
    with pytest.raises(FormatError, match=r"rect\.mrcs: images are not square"):
        read_images(rect, registry=io_registry)
    vol = tmp_path / "vol.mrc"
    write_volume(vol, np.ones((4, 4, 4)), voxel_size=1.0)
    with pytest.raises(FormatError, match=r"vol\.mrc: is a volume"):
        read_images(vol, registry=io_registry)
    # the same volume is accepted as a stack when forced
    assert len(read_images(f"{vol}:mrcs", registry=io_registry)) == 4


def test_write_images_dispatch(tmp_path, io_registry):
    data = ImageSet(np.ones((2, 4, 4)), pixel_size=1.0)
    write_images(data, tmp_path / "a.mrcs", registry=io_registry)
    write_images(data, tmp_path / "b.star", registry=io_registry)
    write_images(data, tmp_path / "c.xmd", registry=io_registry)
    for name in ("a.mrcs", "b.mrcs", "c.mrcs"):
        with mrcfile.open(tmp_path / name) as mrc:
            assert mrc.data.shape == (2, 4, 4)
    with pytest.raises(FormatError, match="cannot write this format"):
        write_images(data, tmp_path / "d.cs", registry=io_registry)
    with pytest.raises(FormatError, match="exists; use --force"):
        write_images(data, tmp_path / "a.mrcs", registry=io_registry)


def test_star_xmd_star_round_trip(tmp_path, io_registry):
    """STAR -> ImageSet -> XMD -> ImageSet -> STAR keeps rotations, shifts, weights."""
    rng = np.random.default_rng(11)
    rows = 12
    rotations = random_rotations(rows, rng)
    rotations[0] = np.eye(3)  # gimbal lock
    rotations[1] = np.diag([-1.0, 1.0, -1.0])  # tilt 180
    original = ImageSet(
        rng.standard_normal((5, 12, 12)),
        pixel_size=1.7,
        poses=PoseTable(
            image_index=rng.integers(0, 5, rows),
            rotations=rotations,
            shifts=rng.uniform(-6, 6, (rows, 2)),
            weights=rng.random(rows),
            extra={"correlation": rng.random(rows)},
        ),
    )
    write_images(original, tmp_path / "first.star", registry=io_registry)
    first = read_images(tmp_path / "first.star", registry=io_registry)
    write_images(first, tmp_path / "middle.xmd", registry=io_registry)
    middle = read_images(tmp_path / "middle.xmd", registry=io_registry)
    write_images(middle, tmp_path / "last.star", registry=io_registry)
    last = read_images(tmp_path / "last.star", registry=io_registry)

    assert last.pixel_size == pytest.approx(1.7)
    np.testing.assert_allclose(last.poses.rotations, rotations, atol=1e-6)
    np.testing.assert_allclose(last.poses.shifts, original.poses.shifts, atol=1e-4)
    np.testing.assert_allclose(last.poses.weights, original.poses.weights, atol=1e-6)
    np.testing.assert_allclose(
        last.poses.extra["correlation"], original.poses.extra["correlation"], atol=1e-6
    )
    for row, image in enumerate(original.poses.image_index):
        np.testing.assert_array_equal(
            last.images[last.poses.image_index[row]],
            original.images[image].astype(np.float32),
        )


def test_flipped_xmd_equals_its_relion_equivalent(stage, tmp_path, io_registry):
    """A flip=1 XMD row and the STAR it converts to give the same geometry."""
    xmd = read_images(stage("xmipp_flip.xmd"), pixel_size=2.0, registry=io_registry)
    write_images(xmd, tmp_path / "converted.star", registry=io_registry)
    text = (tmp_path / "converted.star").read_text().splitlines()
    row = next(line for line in text if line.startswith("000001@")).split()
    rot, tilt, psi, ox, oy = (float(v) for v in row[2:7])
    from sigcore.geometry import euler_to_matrix

    # RELION's own Euler triple for the flipped row: (30, 220, -50) up to
    # the equivalent triple (rot + 180, -tilt, psi - 180) = (-150, 140, 130)
    np.testing.assert_allclose(
        euler_to_matrix([rot, tilt, psi]),
        euler_to_matrix([30.0, 220.0, -50.0]),
        atol=1e-8,
    )
    np.testing.assert_allclose([ox, oy], [-6.0, -4.0])  # (-3, -2) px at 2 Å
