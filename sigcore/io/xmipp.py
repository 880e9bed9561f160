"""Xmipp metadata (``.xmd``) reader and writer plugins.

Owns the Xmipp conventions (CONVENTIONS §1.3, §1.4, §2.2): the
``# XMIPP_STAR_1 *`` header, unprefixed labels and their aliases
(``rot``/``tilt``/``psi``, ``Xoff``/``Yoff``, ``Weight``), shifts in pixels,
``enabled = -1`` rows (dropped), ``blockname@file.xmd`` addressing, and the
``flip`` flag: a ``flip = 1`` row is unflipped on reading with
:func:`sigcore.geometry.mirror_x_pose` (angles (rot, tilt + 180, -psi),
shiftX negated), so poses leave this module with the mirror folded in and the
writer always writes ``flip = 0``. Per-row scores travel as ``maxCC``
(``correlation``), ``cost`` (``imed``), ``ref`` (``direction``),
``weightSignificant`` and ``sigcore_<key>`` for anything else.
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
    "EXTRA_LABELS",
    "XmippXmdReader",
    "XmippXmdWriter",
    "read_xmd",
    "split_block",
    "write_xmd",
]

HEADER = "# XMIPP_STAR_1 *"
EXTRA_LABELS: Mapping[str, str] = {
    "correlation": "maxCC",
    "imed": "cost",
    "direction": "ref",
    "weight_significant": "weightSignificant",
}
"""``PoseTable.extra`` keys written under Xmipp's own label names."""

_PREFIX = "sigcore_"
_ALIASES: Mapping[str, tuple[str, ...]] = {
    "rot": ("angleRot", "rot"),
    "tilt": ("angleTilt", "tilt"),
    "psi": ("anglePsi", "psi"),
    "shift_x": ("shiftX", "Xoff"),
    "shift_y": ("shiftY", "Yoff"),
    "weight": ("weight", "Weight"),
    "sampling": ("samplingRate", "sampling_rate"),
}


def split_block(spec: str | Path) -> tuple[str | None, Path]:
    """Split Xmipp's ``block@file.xmd`` into (block, path); block may be None."""
    text = str(spec)
    if "@" in text and not Path(text).exists():
        block, _, rest = text.partition("@")
        if block and rest:
            return block, Path(rest)
    return None, Path(text)


def _find(table: Any, key: str) -> str | None:
    return next((label for label in _ALIASES[key] if label in table), None)


def _numeric(table: Any, label: str, path: Path) -> NDArray[np.float64]:
    try:
        return table[label].to_numpy(dtype=np.float64)
    except (ValueError, TypeError):
        raise FormatError(path, f"column {label} is not numeric") from None


def _select_table(blocks: dict, block: str | None, path: Path) -> tuple[Any, str]:
    import pandas as pd

    def as_table(value: Any) -> Any:
        if isinstance(value, pd.DataFrame):
            return value
        return pd.DataFrame({k: [v] for k, v in value.items()})  # row format

    if block is not None:
        if block not in blocks:
            names = ", ".join(f"data_{b}" for b in blocks)
            raise FormatError(path, f"no block data_{block} (blocks: {names})")
        return as_table(blocks[block]), block
    for name, value in blocks.items():
        table = as_table(value)
        if "image" in table:
            return table, name
    raise FormatError(path, "no block with an image column")


def read_xmd(spec: str | Path) -> ImageSet:
    """Read an Xmipp ``.xmd`` file (or ``block@file.xmd``) and its images.

    Parameters
    ----------
    spec : str or Path
        The file, optionally prefixed with a block name. Without one, the
        first block that has an ``image`` column is read.

    Returns
    -------
    ImageSet
        Distinct enabled images in order of first appearance; when the table
        has angle columns, ``poses`` holds one row per enabled metadata row
        with flips folded in. Pixel size from ``samplingRate`` or the stack
        header.

    Raises
    ------
    FormatError
        Missing or unparsable file, no ``image`` column, missing stacks, or
        no enabled row.
    """
    from sigcore.io.relion import read_star_blocks

    block, path = split_block(spec)
    blocks = read_star_blocks(path, string_columns=("image",))
    table, block_name = _select_table(blocks, block, path)
    if "image" not in table:
        raise FormatError(path, f"no image column in data_{block_name}")
    columns = [str(c) for c in table.columns]
    if "enabled" in table:
        table = table[_numeric(table, "enabled", path) >= 0]
    if len(table) == 0:
        raise FormatError(path, f"no enabled row in data_{block_name}")
    refs = [parse_image_name(name, path) for name in table["image"]]
    images, row_image, stack_apix = collect_images(refs, path)

    pixel_size = stack_apix
    sampling = _find(table, "sampling")
    if sampling is not None:
        values = _numeric(table, sampling, path)
        if values.size and np.isfinite(values[0]) and values[0] > 0:
            pixel_size = float(values[0])

    poses = None
    if any(_find(table, key) for key in ("rot", "tilt", "psi")):
        from sigcore.geometry import euler_to_matrix, mirror_x_pose

        m = len(table)
        angles = np.zeros((m, 3))
        for axis, key in enumerate(("rot", "tilt", "psi")):
            label = _find(table, key)
            if label is not None:
                angles[:, axis] = _numeric(table, label, path)
        shifts = np.zeros((m, 2))
        for axis, key in enumerate(("shift_x", "shift_y")):
            label = _find(table, key)
            if label is not None:
                shifts[:, axis] = _numeric(table, label, path)
        rotations = euler_to_matrix(angles)
        if "flip" in table:
            flip = _numeric(table, "flip", path) != 0
            rotations[flip], shifts[flip] = mirror_x_pose(rotations[flip], shifts[flip])
        weight = _find(table, "weight")
        poses = PoseTable(
            image_index=row_image,
            rotations=rotations,
            shifts=shifts,
            weights=np.ones(m) if weight is None else _numeric(table, weight, path),
            extra=_read_extra(table),
        )
    return ImageSet(
        images=images,
        pixel_size=pixel_size,
        poses=poses,
        source=path,
        metadata={
            "kind": "metadata",
            "format": XmippXmdReader.name,
            "block": block_name,
            "columns": columns,
        },
    )


def _read_extra(table: Any) -> dict[str, NDArray]:
    by_label = {label: key for key, label in EXTRA_LABELS.items()}
    extra = {}
    for column in table.columns:
        if column in by_label:
            extra[by_label[column]] = table[column].to_numpy()
        elif column.startswith(_PREFIX):
            extra[column[len(_PREFIX) :]] = table[column].to_numpy()
    return extra


def _format(values: NDArray, label: str, path: Path) -> list[str]:
    values = np.asarray(values)
    if values.dtype.kind in "iub":
        return [str(int(v)) for v in values]
    if values.dtype.kind == "f":
        return [f"{v:.10g}" for v in values]
    texts = [str(v) for v in values]
    if any(not t or any(c.isspace() for c in t) for t in texts):
        raise FormatError(path, f"column {label} holds empty or blank-containing text")
    return texts


def write_xmd(
    data: ImageSet,
    path: str | Path,
    *,
    stack_path: str | Path | None = None,
    overwrite: bool = False,
) -> None:
    """Write an Xmipp ``.xmd`` file (one ``data_noname`` loop block).

    Parameters
    ----------
    data : ImageSet
        With poses: one row per pose row (``image``, ``enabled``,
        ``angleRot/Tilt/Psi`` in degrees, ``shiftX/Y`` in pixels, ``flip = 0``,
        ``weight`` and the extra columns); without: one row per image.
        ``samplingRate`` (Å/px) when the pixel size is known.
    path : str or Path
        The ``.xmd`` file.
    stack_path : str or Path, optional
        An existing stack holding ``data.images`` in order; by default the
        images are written to ``<stem>.mrcs`` beside the file.
    overwrite : bool
        Replace existing files.

    Raises
    ------
    FormatError
        When an output exists and ``overwrite`` is false.
    """
    from sigcore.geometry import matrix_to_euler

    path = Path(path)
    check_writable(path, overwrite=overwrite)
    names = np.asarray(
        name_images(data, path, stack_path=stack_path, overwrite=overwrite)
    )
    columns: dict[str, NDArray] = {}
    poses = data.poses
    if poses is None:
        columns["image"] = names
        columns["enabled"] = np.ones(len(names), dtype=int)
    else:
        angles = matrix_to_euler(poses.rotations)
        columns["image"] = names[poses.image_index]
        columns["enabled"] = np.ones(len(poses), dtype=int)
        columns["angleRot"] = angles[:, 0]
        columns["angleTilt"] = angles[:, 1]
        columns["anglePsi"] = angles[:, 2]
        columns["shiftX"] = poses.shifts[:, 0]
        columns["shiftY"] = poses.shifts[:, 1]
        columns["flip"] = np.zeros(len(poses), dtype=int)
        columns["weight"] = poses.weights
        for key, values in poses.extra.items():
            label = EXTRA_LABELS.get(key, _PREFIX + column_key(key))
            columns[label] = np.asarray(values)
    if data.pixel_size:
        columns["samplingRate"] = np.full(len(columns["image"]), data.pixel_size)
    formatted = [_format(values, label, path) for label, values in columns.items()]
    lines = [
        HEADER,
        "# Written by sigcore: shifts in pixels, mirrors folded into the angles.",
        "data_noname",
        "loop_",
        *(f" _{label}" for label in columns),
        *(" " + " ".join(row) + " " for row in zip(*formatted, strict=True)),
    ]
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


class XmippXmdReader:
    """Read Xmipp ``.xmd`` metadata (``block@file.xmd`` accepted)."""

    name: ClassVar[str] = "xmipp-xmd"
    suffixes: ClassVar[tuple[str, ...]] = (".xmd",)

    def sniff(self, path: Path) -> bool:
        """Accept ``.xmd`` files and files starting with the Xmipp header."""
        _, path = split_block(path)
        if path.suffix.lower() == ".xmd":
            return True
        try:
            with open(path, "rb") as fh:
                return fh.read(len(HEADER)) == HEADER.encode()
        except OSError:
            return False

    def read(self, path: Path) -> ImageSet:
        """Read the file; see :func:`read_xmd`."""
        return read_xmd(path)


class XmippXmdWriter:
    """Write Xmipp ``.xmd`` metadata with its image stack beside it."""

    name: ClassVar[str] = "xmipp-xmd"
    suffixes: ClassVar[tuple[str, ...]] = (".xmd",)

    def write(self, data: ImageSet, path: Path, *, overwrite: bool = False) -> None:
        """Write ``path`` and ``<stem>.mrcs``; see :func:`write_xmd`."""
        write_xmd(data, path, overwrite=overwrite)


@hookimpl(trylast=True)
def sigcore_register_readers() -> list[type]:
    """Contribute the Xmipp metadata reader."""
    return [XmippXmdReader]


@hookimpl(trylast=True)
def sigcore_register_writers() -> list[type]:
    """Contribute the Xmipp metadata writer."""
    return [XmippXmdWriter]
