"""cryoSPARC ``.cs`` class averages (reader plugin).

Owns the cryoSPARC conventions (CONVENTIONS §1.3, §2.4): a ``.cs`` file is a
NumPy structured array (``np.save`` format) whose rows point into an MRC
stack through ``blob/path`` (relative to the project folder; a leading ``>``
is dropped) and ``blob/idx`` (0-based), with the pixel size in
``blob/psize_A``. The stack is read as a stack even though cryoSPARC names it
``.mrc``. Poses, when present: ``alignments3D/pose`` is a Rodrigues vector
(radians) whose rotation is the transpose of sigcore's matrix (as pyem
reads it), ``alignments2D/pose`` an in-plane angle (radians, taken as psi);
``alignments*/shift`` are pixels at ``alignments*/psize_A`` and are rescaled to
the blob pixel size, sign unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from sigcore.errors import FormatError
from sigcore.hookspecs import hookimpl
from sigcore.imageset import ImageSet, PoseTable
from sigcore.io._names import ImageRef, collect_images

__all__ = ["CryosparcCsReader", "read_cs", "rodrigues_to_matrix"]

_NPY_MAGIC = b"\x93NUMPY"


def rodrigues_to_matrix(vectors: NDArray[np.float64]) -> NDArray[np.float64]:
    """Turn cryoSPARC Rodrigues vectors into sigcore rotation matrices.

    Parameters
    ----------
    vectors : ndarray, shape (m, 3)
        Axis times angle, radians.

    Returns
    -------
    ndarray, shape (m, 3, 3), float64
        ``A = R(v).T`` where ``R(v)`` is the active rotation by ``|v|`` about
        ``v / |v|`` (RELION sense, reference -> particle frame).
    """
    v = np.asarray(vectors, dtype=np.float64).reshape(-1, 3)
    theta = np.linalg.norm(v, axis=1)
    axis = np.divide(v, theta[:, None], out=np.zeros_like(v), where=theta[:, None] > 0)
    k = np.zeros((len(v), 3, 3))
    k[:, 0, 1], k[:, 0, 2] = -axis[:, 2], axis[:, 1]
    k[:, 1, 0], k[:, 1, 2] = axis[:, 2], -axis[:, 0]
    k[:, 2, 0], k[:, 2, 1] = -axis[:, 1], axis[:, 0]
    s, c = np.sin(theta)[:, None, None], np.cos(theta)[:, None, None]
    active = np.eye(3) + s * k + (1 - c) * (k @ k)
    return np.swapaxes(active, 1, 2)


def _field(table: Any, name: str, path: Path) -> NDArray:
    if name not in (table.dtype.names or ()):
        raise FormatError(path, f"no {name} field")
    return np.asarray(table[name])


def _poses(
    table: Any, row_image: NDArray[np.int64], apix: float | None
) -> PoseTable | None:
    from sigcore.geometry import euler_to_matrix

    names = table.dtype.names
    for kind in ("alignments3D", "alignments2D"):
        if f"{kind}/pose" not in names:
            continue
        pose = np.asarray(table[f"{kind}/pose"], dtype=np.float64)
        if kind == "alignments3D":
            rotations = rodrigues_to_matrix(pose)
        else:
            psi = np.rad2deg(pose.reshape(len(table)))
            zeros = np.zeros_like(psi)
            rotations = euler_to_matrix(np.stack([zeros, zeros, psi], axis=1))
        shifts = np.zeros((len(table), 2))
        if f"{kind}/shift" in names:
            shifts = np.asarray(table[f"{kind}/shift"], dtype=np.float64).reshape(-1, 2)
            if f"{kind}/psize_A" in names and apix:
                shifts = shifts * (
                    np.asarray(table[f"{kind}/psize_A"], dtype=np.float64)[:, None]
                    / apix
                )
        extra = {}
        if f"{kind}/class" in names:
            extra["class"] = np.asarray(table[f"{kind}/class"]).astype(np.int64)
        return PoseTable(
            image_index=row_image,
            rotations=rotations,
            shifts=shifts,
            weights=np.ones(len(table)),
            extra=extra,
        )
    return None


def read_cs(path: str | Path) -> ImageSet:
    """Read a cryoSPARC ``.cs`` file and the stack its rows point into.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    ImageSet
        Distinct images in row order, pixel size from ``blob/psize_A`` (else
        the stack header), poses when an ``alignments3D``/``alignments2D``
        pose field is present.

    Raises
    ------
    FormatError
        Not a structured NumPy file, no ``blob/path``/``blob/idx`` field,
        missing stack, index out of range.
    """
    path = Path(path)
    if not path.is_file():
        raise FormatError(path, "file not found")
    try:
        table = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise FormatError(path, f"not a cryoSPARC .cs file ({exc})") from None
    if table.dtype.names is None or table.ndim != 1:
        raise FormatError(path, "not a cryoSPARC .cs file (no structured rows)")
    if len(table) == 0:
        raise FormatError(path, "lists no images")
    blob_paths = _field(table, "blob/path", path)
    blob_idx = _field(table, "blob/idx", path).astype(np.int64)
    refs = []
    for raw, idx in zip(blob_paths, blob_idx, strict=True):
        name = raw.decode() if isinstance(raw, bytes) else str(raw)
        refs.append(ImageRef(Path(name.removeprefix(">")), int(idx)))
    images, row_image, stack_apix = collect_images(refs, path)
    pixel_size = stack_apix
    if "blob/psize_A" in table.dtype.names:
        psize = float(np.asarray(table["blob/psize_A"], dtype=np.float64)[0])
        if np.isfinite(psize) and psize > 0:
            pixel_size = psize
    return ImageSet(
        images=images,
        pixel_size=pixel_size,
        poses=_poses(table, row_image, pixel_size),
        source=path,
        metadata={
            "kind": "metadata",
            "format": CryosparcCsReader.name,
            "columns": list(table.dtype.names),
        },
    )


class CryosparcCsReader:
    """Read cryoSPARC ``.cs`` class-average (or particle) tables."""

    name: ClassVar[str] = "cryosparc-cs"
    suffixes: ClassVar[tuple[str, ...]] = (".cs",)

    def sniff(self, path: Path) -> bool:
        """Check for the NumPy ``.npy`` magic bytes."""
        try:
            with open(path, "rb") as fh:
                return fh.read(len(_NPY_MAGIC)) == _NPY_MAGIC
        except OSError:
            return False

    def read(self, path: Path) -> ImageSet:
        """Read the file; see :func:`read_cs`."""
        return read_cs(path)


@hookimpl(trylast=True)
def sigcore_register_readers() -> list[type]:
    """Contribute the cryoSPARC reader."""
    return [CryosparcCsReader]
