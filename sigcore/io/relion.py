"""RELION STAR files: particles (3.1+ and 3.0) and 2D-classification models.

Owns every RELION convention sigcore touches (CONVENTIONS §1.3, §2.1):
``N@stack.mrcs`` image names (1-based, resolved against the STAR file's
folder and its parents), ``rlnAngleRot/Tilt/Psi`` (degrees) <-> rotation
matrices, ``rlnOriginXAngst/YAngst`` (Å) or 3.0's ``rlnOriginX/Y`` (pixels)
<-> shifts in pixels, optics groups, and ``run_itNNN_model.star`` class
tables. sigcore's own per-row numbers travel in extra columns:
``sigcore_weight`` (the pose weight) and ``sigcore_<key>`` for every
``PoseTable.extra`` column (e.g. ``sigcore_correlation``); RELION keeps
unknown labels without using them. ``starfile`` (and with it pandas) is
imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from sigcore.errors import FormatError
from sigcore.hookspecs import hookimpl
from sigcore.imageset import ImageSet, PoseTable
from sigcore.io._names import (
    collect_images,
    column_key,
    name_images,
    parse_image_name,
)
from sigcore.io.atomic import atomic_path, check_writable

__all__ = [
    "OPTICS_PLACEHOLDERS",
    "SIGCORE_PREFIX",
    "WEIGHT_COLUMN",
    "RelionStarReader",
    "RelionStarWriter",
    "read_star",
    "write_star",
]

SIGCORE_PREFIX = "sigcore_"
"""Prefix of the STAR columns that carry ``PoseTable.extra`` entries."""

WEIGHT_COLUMN = "sigcore_weight"
"""STAR column that carries ``PoseTable.weights``."""

OPTICS_PLACEHOLDERS: Mapping[str, float] = {
    "voltage": 300.0,
    "spherical_aberration": 2.7,
    "amplitude_contrast": 0.1,
}
"""Values written when the input had no optics (RELION refuses files without them)."""

_OPTICS_LABELS = {
    "voltage": "rlnVoltage",
    "spherical_aberration": "rlnSphericalAberration",
    "amplitude_contrast": "rlnAmplitudeContrast",
}
_ANGLES = ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi")
_FLOAT_FORMAT = "%.10g"


def read_star_blocks(path: Path, *, string_columns: tuple[str, ...] = ()) -> dict:
    """Read every block of a STAR-like file with ``starfile`` (``always_dict``).

    Raises
    ------
    FormatError
        When the file is missing or cannot be parsed.
    """
    import starfile

    if not path.is_file():
        raise FormatError(path, "file not found")
    try:
        blocks = starfile.read(
            path, always_dict=True, parse_as_string=list(string_columns)
        )
    except Exception as exc:  # starfile/pandas raise many types on bad text
        raise FormatError(path, f"cannot parse as STAR ({exc})") from None
    if not blocks:
        raise FormatError(path, "holds no data_ block")
    return blocks


def extra_from_columns(table: Any, rows: Any = slice(None)) -> dict[str, NDArray]:
    """Collect the ``sigcore_<key>`` columns (other than the weight) of a table."""
    return {
        column[len(SIGCORE_PREFIX) :]: table[column].to_numpy()[rows]
        for column in table.columns
        if column.startswith(SIGCORE_PREFIX) and column != WEIGHT_COLUMN
    }


def _column(table: Any, name: str, path: Path, block: str) -> NDArray[np.float64]:
    try:
        return table[name].to_numpy(dtype=np.float64)
    except (ValueError, TypeError):
        raise FormatError(path, f"column {name} in {block} is not numeric") from None


def _single_pixel_size(values: NDArray[np.float64], path: Path) -> float | None:
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        return None
    if np.ptp(values) > 1e-6 * values.max():
        raise FormatError(
            path, f"images have different pixel sizes ({sorted(set(values))})"
        )
    return float(values[0])


def _row_pixel_sizes(table: Any, optics: Any, path: Path) -> NDArray[np.float64] | None:
    """Pixel size of every particle row (3.1 optics or 3.0 columns), or None."""
    n = len(table)
    if optics is not None and len(optics):
        label = next(
            (c for c in ("rlnImagePixelSize", "rlnPixelSize") if c in optics), None
        )
        if label is None:
            return None
        sizes = dict(
            zip(
                optics["rlnOpticsGroup"].astype(int)
                if "rlnOpticsGroup" in optics
                else range(1, len(optics) + 1),
                _column(optics, label, path, "data_optics"),
                strict=True,
            )
        )
        groups = (
            table["rlnOpticsGroup"].astype(int).to_numpy()
            if "rlnOpticsGroup" in table
            else np.ones(n, dtype=int)
        )
        missing = set(groups) - set(sizes)
        if missing:
            raise FormatError(
                path, f"optics groups {sorted(missing)} not in data_optics"
            )
        return np.array([sizes[g] for g in groups], dtype=np.float64)
    if "rlnImagePixelSize" in table:
        return _column(table, "rlnImagePixelSize", path, "the particle table")
    if "rlnDetectorPixelSize" in table and "rlnMagnification" in table:
        detector = _column(table, "rlnDetectorPixelSize", path, "the particle table")
        magnification = _column(table, "rlnMagnification", path, "the particle table")
        return detector * 1e4 / magnification  # µm -> Å
    return None


def _particle_table(blocks: dict, path: Path) -> tuple[Any, Any, str]:
    import pandas as pd

    if "particles" in blocks and isinstance(blocks["particles"], pd.DataFrame):
        return blocks["particles"], blocks.get("optics"), "3.1"
    for table in blocks.values():
        if isinstance(table, pd.DataFrame) and "rlnImageName" in table:
            return table, None, "3.0"
    raise FormatError(path, "no data_particles block and no rlnImageName column")


def _read_particles(path: Path, blocks: dict) -> ImageSet:
    table, optics, version = _particle_table(blocks, path)
    block = "data_particles" if version == "3.1" else "the particle table"
    if "rlnImageName" not in table:
        raise FormatError(path, f"no rlnImageName column in {block}")
    refs = [parse_image_name(name, path) for name in table["rlnImageName"]]
    images, row_image, stack_apix = collect_images(refs, path)
    row_apix = _row_pixel_sizes(table, optics, path)
    pixel_size = None if row_apix is None else _single_pixel_size(row_apix, path)
    if pixel_size is None:
        pixel_size = stack_apix

    m = len(table)
    shifts = np.zeros((m, 2))
    if "rlnOriginXAngst" in table or "rlnOriginYAngst" in table:
        if row_apix is None or not np.all(row_apix > 0):
            raise FormatError(path, "shifts are in Å but no pixel size is given")
        for axis, label in enumerate(("rlnOriginXAngst", "rlnOriginYAngst")):
            if label in table:
                shifts[:, axis] = _column(table, label, path, block) / row_apix
    else:
        for axis, label in enumerate(("rlnOriginX", "rlnOriginY")):
            if label in table:
                shifts[:, axis] = _column(table, label, path, block)

    poses = None
    if any(label in table for label in _ANGLES):
        from sigcore.geometry import euler_to_matrix

        angles = np.zeros((m, 3))
        for axis, label in enumerate(_ANGLES):
            if label in table:
                angles[:, axis] = _column(table, label, path, block)
        weights = (
            _column(table, WEIGHT_COLUMN, path, block)
            if WEIGHT_COLUMN in table
            else np.ones(m)
        )
        poses = PoseTable(
            image_index=row_image,
            rotations=euler_to_matrix(angles),
            shifts=shifts,
            weights=weights,
            extra=extra_from_columns(table),
        )
    metadata: dict[str, Any] = {
        "kind": "metadata",
        "format": RelionStarReader.name,
        "relion_version": version,
        "columns": [str(c) for c in table.columns],
    }
    if optics is not None and len(optics):
        metadata["optics_columns"] = [str(c) for c in optics.columns]
        for key, label in _OPTICS_LABELS.items():
            if label in optics:
                metadata[key] = float(optics[label].iloc[0])
    return ImageSet(
        images=images,
        pixel_size=pixel_size,
        poses=poses,
        source=path,
        metadata=metadata,
    )


def _read_model(path: Path, blocks: dict) -> ImageSet:
    table = blocks["model_classes"]
    if "rlnReferenceImage" not in table:
        raise FormatError(path, "no rlnReferenceImage column in data_model_classes")
    refs = [parse_image_name(name, path) for name in table["rlnReferenceImage"]]
    images, _, stack_apix = collect_images(refs, path)
    general = blocks.get("model_general")
    pixel_size = None
    if isinstance(general, Mapping) and "rlnPixelSize" in general:
        pixel_size = float(general["rlnPixelSize"]) or None
    metadata: dict[str, Any] = {
        "kind": "metadata",
        "format": RelionStarReader.name,
        "relion_version": "model",
        "columns": [str(c) for c in table.columns],
    }
    for key, label in (
        ("class_distribution", "rlnClassDistribution"),
        ("estimated_resolution", "rlnEstimatedResolution"),
    ):
        if label in table:
            metadata[key] = _column(table, label, path, "data_model_classes")
    return ImageSet(
        images=images,
        pixel_size=pixel_size if pixel_size else stack_apix,
        source=path,
        metadata=metadata,
    )


def read_star(path: str | Path) -> ImageSet:
    """Read a RELION STAR file and the images it names.

    Handles RELION 3.1+ particle files (``data_optics`` + ``data_particles``),
    RELION 3.0 files (one table; ``rlnOriginX/Y`` in pixels; pixel size from
    ``rlnDetectorPixelSize`` (µm) and ``rlnMagnification``, else the stack
    header) and ``run_itNNN_model.star`` (``data_model_classes``: the class
    averages, in class order; ``rlnClassDistribution`` goes to
    ``metadata["class_distribution"]``).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    ImageSet
        Distinct images in order of first appearance; when the table has
        angle columns, ``poses`` has one row per STAR row (angles to RELION
        matrices, shifts in pixels, ``sigcore_weight`` or 1 as weights,
        ``sigcore_<key>`` columns in ``extra``).

    Raises
    ------
    FormatError
        Missing or unparsable file, no image column, missing stacks,
        indices out of range, Å shifts without a pixel size.
    """
    path = Path(path)
    blocks = read_star_blocks(
        path, string_columns=("rlnImageName", "rlnReferenceImage")
    )
    if "model_classes" in blocks:
        return _read_model(path, blocks)
    return _read_particles(path, blocks)


def _extra_columns(extra: Mapping[str, NDArray], path: Path) -> dict[str, NDArray]:
    columns = {}
    for key, values in extra.items():
        label = SIGCORE_PREFIX + column_key(key)
        if label in columns:
            raise FormatError(path, f"extra columns collide on the label {label!r}")
        values = np.asarray(values)
        if values.dtype == bool:
            values = values.astype(int)
        columns[label] = values
    return columns


def write_star(
    data: ImageSet,
    path: str | Path,
    *,
    stack_path: str | Path | None = None,
    overwrite: bool = False,
) -> None:
    """Write a RELION 3.1 STAR file (``data_optics`` + ``data_particles``).

    Parameters
    ----------
    data : ImageSet
        Needs a pixel size. With poses, one particle row per pose row
        (``N@stack`` from ``image_index``), angles from the matrices, origins
        in Å, ``sigcore_weight`` and ``sigcore_<key>`` extra columns; without
        poses, one row per image.
    path : str or Path
        The ``.star`` file.
    stack_path : str or Path, optional
        An existing stack holding ``data.images`` in order, to be named in
        the rows. By default the images are written to ``<stem>.mrcs`` beside
        the STAR file.
    overwrite : bool
        Replace existing files.

    Notes
    -----
    Voltage, spherical aberration and amplitude contrast come from
    ``data.metadata`` when the set was read from a file that had them;
    otherwise the placeholders of :data:`OPTICS_PLACEHOLDERS` are written and
    a comment in the file says so. Floats are written with 10 significant
    digits; NaN is written as ``nan`` (never ``<NA>``).

    Raises
    ------
    FormatError
        No pixel size, or an output exists and ``overwrite`` is false.
    """
    import pandas as pd
    import starfile

    from sigcore.geometry import matrix_to_euler

    path = Path(path)
    apix = data.pixel_size
    if apix is None or not apix > 0:
        raise FormatError(path, "a RELION STAR file needs a pixel size (give --apix)")
    check_writable(path, overwrite=overwrite)
    names = np.asarray(
        name_images(data, path, stack_path=stack_path, overwrite=overwrite)
    )

    columns: dict[str, Any] = {}
    poses = data.poses
    if poses is None:
        columns["rlnImageName"] = names
        columns["rlnOpticsGroup"] = np.ones(len(names), dtype=int)
    else:
        angles = matrix_to_euler(poses.rotations)
        columns["rlnImageName"] = names[poses.image_index]
        columns["rlnOpticsGroup"] = np.ones(len(poses), dtype=int)
        for axis, label in enumerate(_ANGLES):
            columns[label] = angles[:, axis]
        columns["rlnOriginXAngst"] = poses.shifts[:, 0] * apix
        columns["rlnOriginYAngst"] = poses.shifts[:, 1] * apix
        columns[WEIGHT_COLUMN] = poses.weights
        columns.update(_extra_columns(poses.extra, path))

    placeholders = [k for k in OPTICS_PLACEHOLDERS if k not in data.metadata]
    optics = pd.DataFrame(
        {
            "rlnOpticsGroupName": ["opticsGroup1"],
            "rlnOpticsGroup": [1],
            "rlnImagePixelSize": [float(apix)],
            "rlnImageSize": [data.box],
            "rlnImageDimensionality": [2],
            **{
                label: [float(data.metadata.get(key, OPTICS_PLACEHOLDERS[key]))]
                for key, label in _OPTICS_LABELS.items()
            },
        }
    )
    particles = pd.DataFrame(columns)
    with atomic_path(path, overwrite=overwrite) as tmp:
        starfile.write(
            {"optics": optics, "particles": particles},
            tmp,
            float_format=_FLOAT_FORMAT,
            na_rep="nan",
            sep=" ",
        )
        body = tmp.read_text()
        header = ["# Written by sigcore (RELION 3.1 STAR)."]
        if placeholders:
            labels = ", ".join(_OPTICS_LABELS[k] for k in placeholders)
            header.append(
                f"# {labels}: placeholder values (no acquisition data was given)."
            )
        header.append(
            "# sigcore_* columns: sigcore's pose weight and scores (ignored by RELION)."
        )
        body = body.replace("\ndata_", "\n# version 30001\ndata_")
        tmp.write_text("\n".join(header) + "\n" + body)


class RelionStarReader:
    """Read RELION ``.star`` files (particles 3.0/3.1+, ``_model.star``)."""

    name: ClassVar[str] = "relion-star"
    suffixes: ClassVar[tuple[str, ...]] = (".star",)

    def sniff(self, path: Path) -> bool:
        """Look for a ``data_`` block in the first 4 kB of a ``.star`` file."""
        if path.suffix.lower() != ".star":
            return False
        try:
            with open(path, "rb") as fh:
                head = fh.read(4096)
        except OSError:
            return False
        return b"data_" in head

    def read(self, path: Path) -> ImageSet:
        """Read the file; see :func:`read_star`."""
        return read_star(path)


class RelionStarWriter:
    """Write RELION 3.1 ``.star`` files with their image stack beside them."""

    name: ClassVar[str] = "relion-star"
    suffixes: ClassVar[tuple[str, ...]] = (".star",)

    def write(self, data: ImageSet, path: Path, *, overwrite: bool = False) -> None:
        """Write ``path`` and ``<stem>.mrcs``; see :func:`write_star`."""
        write_star(data, path, overwrite=overwrite)


@hookimpl(trylast=True)
def sigcore_register_readers() -> list[type]:
    """Contribute the RELION STAR reader."""
    return [RelionStarReader]


@hookimpl(trylast=True)
def sigcore_register_writers() -> list[type]:
    """Contribute the RELION STAR writer."""
    return [RelionStarWriter]
