"""Built-in file formats (reader and writer plugins) and the two entry points.

:func:`read_images` and :func:`write_images` pick the plugin for a path
(:func:`sigcore.plugins.find_reader` / ``find_writer``) and validate what
comes in, so the rest of sigcore never handles a file format. Format modules
(``mrc``, ``relion``, ``xmipp``, ``spider``, ``cryosparc``) are imported only
when the registry is built.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sigcore.errors import FormatError

if TYPE_CHECKING:
    from sigcore.imageset import ImageSet
    from sigcore.plugins import Registry

__all__ = ["open_reader", "read_images", "validate_images", "write_images"]


def open_reader(path: str | Path, *, registry: Registry | None = None) -> Any:
    """Return the reader plugin for ``path``.

    Besides plain files this accepts ``name.mrc:mrcs`` (an MRC file forced to
    be a stack) and Xmipp's ``block@file.xmd``.

    Raises
    ------
    FormatError
        When the file does not exist or no reader accepts it.
    """
    from sigcore.plugins import find_reader

    text = str(path)
    if not Path(text).exists():
        if text.endswith(":mrcs") and Path(text[: -len(":mrcs")]).is_file():
            from sigcore.io.mrc import MrcReader

            return MrcReader()
        if "@" in text:
            from sigcore.io.xmipp import XmippXmdReader, split_block

            block, file_path = split_block(text)
            if block is not None and file_path.is_file():
                return XmippXmdReader()
    return find_reader(path, registry)


def validate_images(
    data: ImageSet, path: str | Path, *, allow_volume: bool = False
) -> None:
    """Check that a set read from ``path`` is usable as input images.

    Parameters
    ----------
    data : ImageSet
    path : str or Path
        Named in the error message.
    allow_volume : bool
        Accept a set the reader flagged as a volume (``metadata["kind"]``).

    Raises
    ------
    FormatError
        Empty set, a volume (unless allowed), non-square images, NaN or Inf
        pixels.
    """
    import numpy as np

    if len(data) == 0:
        raise FormatError(path, "holds no images")
    if data.metadata.get("kind") == "volume" and not allow_volume:
        raise FormatError(path, "is a volume, not a stack of images")
    ny, nx = data.images.shape[1:]
    if ny != nx:
        raise FormatError(path, f"images are not square ({ny} x {nx} pixels)")
    bad = ~np.isfinite(data.images)
    if bad.any():
        first = int(np.argmax(bad.reshape(len(data), -1).any(axis=1)))
        raise FormatError(
            path, f"image {first + 1} holds NaN or Inf pixels ({int(bad.sum())} in all)"
        )


def read_images(
    path: str | Path,
    *,
    pixel_size: float | None = None,
    require_pixel_size: bool = False,
    registry: Registry | None = None,
) -> ImageSet:
    """Read any supported file as a validated stack of images.

    Parameters
    ----------
    path : str or Path
        A stack (``.mrcs``, ``.mrc``, ``.spi``, ``.stk``), or a metadata file
        (``.star``, ``.xmd``, ``.cs``) whose images are loaded with it.
    pixel_size : float, optional
        Å per pixel; overrides the file's value.
    require_pixel_size : bool
        Raise when neither the file nor ``pixel_size`` gives one.
    registry : Registry, optional
        Plugin registry; defaults to :func:`sigcore.plugins.default_registry`.

    Returns
    -------
    ImageSet
        float32 images of shape (n, box, box), poses in sigcore's convention.

    Raises
    ------
    FormatError
        Missing or unreadable file, volume, empty, non-square, NaN/Inf pixels,
        or no pixel size when one is required.
    """
    data = open_reader(path, registry=registry).read(Path(path))
    validate_images(data, path)
    if pixel_size is not None:
        if not pixel_size > 0:
            raise FormatError(path, f"pixel size must be positive, not {pixel_size}")
        data = dataclasses.replace(data, pixel_size=float(pixel_size))
    if require_pixel_size and data.pixel_size is None:
        raise FormatError(path, "records no pixel size; give one (--apix)")
    return data


def write_images(
    data: ImageSet,
    path: str | Path,
    *,
    overwrite: bool = False,
    registry: Registry | None = None,
) -> None:
    """Write a set with the writer plugin chosen by the suffix of ``path``.

    Metadata formats (``.star``, ``.xmd``) also write ``<stem>.mrcs`` beside
    the file. Writes are atomic and refuse existing outputs unless
    ``overwrite``.

    Raises
    ------
    FormatError
        Unknown suffix, existing output, or data the format cannot hold.
    """
    from sigcore.plugins import find_writer

    find_writer(path, registry).write(data, Path(path), overwrite=overwrite)
