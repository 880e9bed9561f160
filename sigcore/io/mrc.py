"""MRC/MRCS images and volumes (reader and writer plugins, plus helpers).

Owns everything sigcore knows about the MRC format: reading with mrcfile
(falling back to permissive mode only for a bad machine stamp), telling
stacks from volumes by extension and header (never by ``ispg`` alone,
CONVENTIONS §3.2), and writing float32 stacks (``ispg = 0``) and volumes
(``ispg = 1``) atomically. ``mrcfile`` is imported inside the functions so
the plugin module stays cheap to import.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sigcore.errors import FormatError
from sigcore.hookspecs import hookimpl
from sigcore.imageset import ImageSet
from sigcore.io.atomic import atomic_path

__all__ = [
    "FORCE_STACK",
    "MrcReader",
    "MrcWriter",
    "read_mrc",
    "read_volume",
    "write_stack",
    "write_volume",
]

FORCE_STACK = ":mrcs"
"""Suffix (``name.mrc:mrcs``) that forces a ``.mrc`` file to be read as a stack."""

_STACK_SUFFIXES = (".mrcs", ".st", ".ali")
_SUFFIXES = (".mrc", ".mrcs", ".map", ".st", ".ali")


def split_force_stack(path: str | Path) -> tuple[Path, bool]:
    """Strip a trailing ``:mrcs`` from ``path``; say whether it was there."""
    text = str(path)
    if text.endswith(FORCE_STACK):
        return Path(text[: -len(FORCE_STACK)]), True
    return Path(text), False


def _open(path: Path) -> Any:
    """Open an MRC file read-only; permissive only for a bad machine stamp."""
    import mrcfile

    if not path.is_file():
        raise FormatError(path, "file not found")
    try:
        return mrcfile.open(path, mode="r")
    except ValueError as exc:
        if "machine stamp" not in str(exc):
            raise FormatError(path, f"not a readable MRC file ({exc})") from None
    except OSError as exc:
        raise FormatError(path, f"cannot open ({exc.strerror or exc})") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mrc = mrcfile.open(path, mode="r", permissive=True)
    if mrc.data is None:
        mrc.close()
        raise FormatError(path, "not a readable MRC file (header or data broken)")
    return mrc


def _is_stack(header: Any, path: Path, nz: int) -> bool:
    """Decide stack vs volume from extension and header (CONVENTIONS §3.2)."""
    if path.suffix.lower() in _STACK_SUFFIXES or nz == 1:
        return True
    ispg = int(header.ispg)
    if ispg >= 1:  # 1..230: a volume, 401+: a volume stack (not images)
        return False
    nx, ny = int(header.nx), int(header.ny)
    # ispg 0 with mz == 1 marks an MRC2014 image stack; RELION maps have
    # ispg 0 and mz == nz, so a cube with mz == nz is a volume.
    if int(header.mz) == 1:
        return True
    return not (nx == ny == nz)


def read_mrc(
    path: str | Path, *, force_stack: bool = False
) -> tuple[NDArray[np.float32], float | None, bool]:
    """Read an MRC file into memory.

    Parameters
    ----------
    path : str or Path
        ``.mrc``/``.mrcs``/``.map``; a trailing ``:mrcs`` forces a stack.
    force_stack : bool
        Treat the file as an image stack whatever its header says.

    Returns
    -------
    data : ndarray, float32
        Shape (n, ny, nx) for a stack (a single 2D image is a stack of one),
        (nz, ny, nx) for a volume.
    pixel_size : float or None
        Voxel size x in Å; ``None`` when the header holds 0.
    is_stack : bool

    Raises
    ------
    FormatError
        Missing, truncated or non-MRC file, complex data.
    """
    path, forced = split_force_stack(path)
    force_stack = force_stack or forced
    with _open(path) as mrc:
        raw = mrc.data
        if np.iscomplexobj(raw):
            raise FormatError(path, "complex MRC data cannot be read as images")
        data = np.array(raw, dtype=np.float32)
        voxel = float(mrc.voxel_size.x)
        header = mrc.header
        if data.ndim == 2:
            data = data[None]
        if data.ndim != 3:
            raise FormatError(path, f"unsupported MRC data of shape {data.shape}")
        stack = force_stack or _is_stack(header, path, data.shape[0])
    pixel_size = voxel if np.isfinite(voxel) and voxel > 0 else None
    return data, pixel_size, stack


def read_volume(path: str | Path) -> tuple[NDArray[np.float32], float | None]:
    """Read a cubic 3D map.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    volume : ndarray, shape (n, n, n), float32
        Indexed ``[z, y, x]``.
    voxel_size : float or None
        Å; ``None`` when the header holds 0.

    Raises
    ------
    FormatError
        When the file is not a readable MRC map, not cubic, or holds NaN/Inf.
    """
    data, voxel, _ = read_mrc(path)
    path = Path(path)
    if data.shape[0] == 1 or len(set(data.shape)) != 1:
        raise FormatError(path, f"not a cubic volume (shape {data.shape})")
    if not np.isfinite(data).all():
        raise FormatError(path, "volume holds NaN or Inf values")
    return data, voxel


def _write(
    path: Path,
    data: NDArray[np.float32],
    *,
    pixel_size: float | None,
    stack: bool,
    overwrite: bool,
) -> None:
    import mrcfile

    with (
        atomic_path(path, overwrite=overwrite) as tmp,
        mrcfile.new(tmp, overwrite=True) as mrc,
    ):
        mrc.set_data(np.ascontiguousarray(data, dtype=np.float32))
        if stack:
            mrc.set_image_stack()
        else:
            mrc.set_volume()
        mrc.voxel_size = float(pixel_size) if pixel_size else 0.0
        mrc.header.origin = (0.0, 0.0, 0.0)
        mrc.update_header_stats()


def write_stack(
    path: str | Path,
    images: ArrayLike,
    *,
    pixel_size: float | None,
    overwrite: bool = False,
) -> None:
    """Write an image stack atomically (float32, ``ispg = 0``).

    Parameters
    ----------
    path : str or Path
        Usually ``.mrcs``.
    images : array_like, shape (n, ny, nx)
        Converted to float32.
    pixel_size : float or None
        Å per pixel; ``None`` writes 0 (unknown).
    overwrite : bool
        Replace an existing file.
    """
    data = np.asarray(images, dtype=np.float32)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise ValueError("images must have shape (n, ny, nx)")
    _write(Path(path), data, pixel_size=pixel_size, stack=True, overwrite=overwrite)


def write_volume(
    path: str | Path,
    volume: ArrayLike,
    *,
    voxel_size: float | None,
    overwrite: bool = False,
) -> None:
    """Write a 3D map atomically (float32, ``ispg = 1``, origin 0).

    Parameters
    ----------
    path : str or Path
        Usually ``.mrc``.
    volume : array_like, shape (n, n, n)
        Indexed ``[z, y, x]``; converted to float32.
    voxel_size : float or None
        Å; ``None`` writes 0 (unknown).
    overwrite : bool
        Replace an existing file.
    """
    data = np.asarray(volume, dtype=np.float32)
    if data.ndim != 3:
        raise ValueError("volume must have shape (nz, ny, nx)")
    _write(Path(path), data, pixel_size=voxel_size, stack=False, overwrite=overwrite)


class MrcReader:
    """Read ``.mrc``/``.mrcs`` image stacks (and volumes, flagged as such).

    A volume is returned as an :class:`ImageSet` whose ``metadata["kind"]`` is
    ``"volume"`` (its sections as images), so ``sigcore info`` can describe it;
    :func:`sigcore.io.read_images` refuses it as input images.
    """

    name: ClassVar[str] = "mrc"
    suffixes: ClassVar[tuple[str, ...]] = _SUFFIXES

    def sniff(self, path: Path) -> bool:
        """Check the ``MAP`` id at byte 208 (or the suffix for odd writers)."""
        path, _ = split_force_stack(path)
        try:
            with open(path, "rb") as fh:
                head = fh.read(212)
        except OSError:
            return False
        if head[208:211] == b"MAP":
            return True
        return len(head) == 212 and path.suffix.lower() in _SUFFIXES

    def read(self, path: Path) -> ImageSet:
        """Read the file; see :func:`read_mrc`."""
        data, pixel_size, stack = read_mrc(path)
        file_path, _ = split_force_stack(path)
        return ImageSet(
            images=data,
            pixel_size=pixel_size,
            source=file_path,
            metadata={"kind": "stack" if stack else "volume", "format": self.name},
        )


class MrcWriter:
    """Write an :class:`ImageSet` as an MRC stack (or a volume, if it is one).

    ``.mrcs`` is always a stack; ``.mrc`` is a volume only when the set came
    from a volume (``metadata["kind"] == "volume"``), otherwise a stack with
    ``ispg = 0`` and ``mz = 1`` (which sigcore reads back as a stack).
    """

    name: ClassVar[str] = "mrc"
    suffixes: ClassVar[tuple[str, ...]] = _SUFFIXES

    def write(self, data: ImageSet, path: Path, *, overwrite: bool = False) -> None:
        """Write the images (poses are not stored in MRC files)."""
        volume = data.metadata.get("kind") == "volume"
        if volume and Path(path).suffix.lower() in _STACK_SUFFIXES:
            volume = False
        _write(
            Path(path),
            data.images,
            pixel_size=data.pixel_size,
            stack=not volume,
            overwrite=overwrite,
        )


@hookimpl(trylast=True)
def sigcore_register_readers() -> list[type]:
    """Contribute the MRC reader."""
    return [MrcReader]


@hookimpl(trylast=True)
def sigcore_register_writers() -> list[type]:
    """Contribute the MRC writer."""
    return [MrcWriter]
