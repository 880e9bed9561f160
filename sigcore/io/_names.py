"""Image references inside metadata files: ``N@stack`` names and stack loading.

Shared by the RELION, Xmipp and cryoSPARC plugins. Owns the parsing of
``N@path`` names (1-based ``N``; Xmipp's ``path:mrcs`` suffix), the
resolution of relative paths (against the metadata file's folder, then each
of its parents, because RELION, Scipion and cryoSPARC write paths relative to
the project folder), loading the referenced images (each stack read once),
and writing a set's images next to a metadata file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from sigcore.errors import FormatError
from sigcore.imageset import ImageSet

__all__ = [
    "ImageRef",
    "collect_images",
    "column_key",
    "name_images",
    "parse_image_name",
    "resolve",
]


@dataclass(frozen=True, slots=True)
class ImageRef:
    """One image inside a file: ``index`` is 0-based, ``None`` for a single image."""

    path: Path
    index: int | None


def parse_image_name(name: str, metadata_path: Path) -> ImageRef:
    """Parse ``N@path``, ``path`` or ``N@path:mrcs``.

    Parameters
    ----------
    name : str
        As written in the metadata file (``N`` is 1-based, zero padding allowed).
    metadata_path : Path
        The metadata file (named in error messages).

    Returns
    -------
    ImageRef
        With the path not yet resolved.
    """
    text = str(name).strip()
    # Every MRC file named in metadata is read as a stack, so ":mrcs" only
    # needs stripping.
    text = text.removesuffix(":mrcs")
    index: int | None = None
    if "@" in text:
        number, _, text = text.partition("@")
        try:
            index = int(number) - 1
        except ValueError:
            raise FormatError(
                metadata_path, f"bad image name {name!r} (expected N@file)"
            ) from None
        if index < 0:
            raise FormatError(metadata_path, f"bad image name {name!r} (N < 1)")
    if not text:
        raise FormatError(metadata_path, f"bad image name {name!r} (no file)")
    return ImageRef(Path(text), index)


def resolve(path: Path, metadata_path: Path) -> Path | None:
    """Find ``path`` relative to the metadata file's folder or one of its parents.

    Absolute paths are taken as they are. Returns ``None`` when nothing exists.
    """
    if path.is_absolute():
        return path if path.exists() else None
    folder = metadata_path.resolve().parent
    for base in (folder, *folder.parents):
        candidate = base / path
        if candidate.exists():
            return candidate
    return None


def _read_image_file(path: Path) -> tuple[NDArray, float | None]:
    suffix = path.suffix.lower()
    if suffix in {".spi", ".stk", ".xmp", ".spider"}:
        from sigcore.io.spider import read_spider

        return read_spider(path), None
    from sigcore.io.mrc import read_mrc

    data, pixel_size, _ = read_mrc(path, force_stack=True)
    return data, pixel_size


def collect_images(
    refs: Sequence[ImageRef], metadata_path: Path
) -> tuple[NDArray[np.float32], NDArray[np.int64], float | None]:
    """Load the images a metadata file refers to, each distinct image once.

    Parameters
    ----------
    refs : sequence of ImageRef
        One per metadata row.
    metadata_path : Path
        The metadata file; relative paths are resolved against it.

    Returns
    -------
    images : ndarray, shape (n, ny, nx), float32
        Distinct images in order of first appearance.
    row_image : ndarray, shape (len(refs),), int64
        For every row, the index of its image in ``images``.
    pixel_size : float or None
        From the first stack header that records one.

    Raises
    ------
    FormatError
        Naming ``metadata_path`` when a stack is missing, an index is out of
        range, or the images differ in shape.
    """
    if not refs:
        raise FormatError(metadata_path, "lists no images")
    cache: dict[Path, tuple[NDArray, float | None]] = {}
    resolved: dict[Path, Path] = {}
    order: dict[tuple[Path, int], int] = {}
    row_image = np.empty(len(refs), dtype=np.int64)
    picked: list[NDArray] = []
    pixel_size: float | None = None
    for row, ref in enumerate(refs):
        key = ref.path
        if key not in resolved:
            found = resolve(ref.path, metadata_path)
            if found is None:
                raise FormatError(
                    metadata_path, f"image stack {ref.path} not found (row {row + 1})"
                )
            resolved[key] = found
        path = resolved[key]
        if path not in cache:
            cache[path] = _read_image_file(path)
            if pixel_size is None:
                pixel_size = cache[path][1]
        stack = cache[path][0]
        index = 0 if ref.index is None else ref.index
        if ref.index is None and len(stack) != 1:
            raise FormatError(
                metadata_path,
                f"{ref.path} holds {len(stack)} images but row {row + 1} "
                "gives no index (N@file)",
            )
        if index >= len(stack):
            raise FormatError(
                metadata_path,
                f"image {index + 1}@{ref.path} is out of range "
                f"(the stack holds {len(stack)} images)",
            )
        slot = order.setdefault((path, index), len(picked))
        if slot == len(picked):
            picked.append(stack[index])
        row_image[row] = slot
    shapes = {image.shape for image in picked}
    if len(shapes) != 1:
        raise FormatError(metadata_path, f"images differ in shape: {sorted(shapes)}")
    return np.stack(picked).astype(np.float32, copy=False), row_image, pixel_size


def name_images(
    data: ImageSet,
    metadata_path: Path,
    *,
    stack_path: str | Path | None,
    overwrite: bool,
) -> list[str]:
    """Write (or point at) the stack of a set and return one name per image.

    Parameters
    ----------
    data : ImageSet
    metadata_path : Path
        The metadata file about to be written.
    stack_path : str, Path or None
        ``None``: write ``data.images`` to ``<stem>.mrcs`` beside the metadata
        file (unless the set was read from that very stack, which is then
        named as it is). Otherwise an existing stack that already holds ``data.images``
        in order; nothing is written.
    overwrite : bool
        Replace an existing ``<stem>.mrcs``.

    Returns
    -------
    list of str
        ``"NNNNNN@relative/stack.mrcs"`` for image 0, 1, ...
    """
    metadata_path = Path(metadata_path)
    if stack_path is None:
        default = metadata_path.with_suffix(".mrcs")
        if (
            data.metadata.get("kind") == "stack"
            and data.source is not None
            and default.exists()
            and default.resolve() == Path(data.source).resolve()
        ):
            stack_path = default  # the set was read from this very stack
    if stack_path is None:
        from sigcore.io.atomic import check_writable
        from sigcore.io.mrc import write_stack

        target = metadata_path.with_suffix(".mrcs")
        check_writable(metadata_path, overwrite=overwrite)
        write_stack(
            target, data.images, pixel_size=data.pixel_size, overwrite=overwrite
        )
    else:
        target = Path(stack_path)
    try:
        rel = os.path.relpath(target.resolve(), metadata_path.resolve().parent)
    except ValueError:  # another drive on Windows
        rel = str(target.resolve())
    rel = Path(rel).as_posix()
    return [f"{i + 1:06d}@{rel}" for i in range(len(data))]


def column_key(key: str) -> str:
    """Turn a ``PoseTable.extra`` key into a STAR/XMD-safe label fragment.

    Metric names of third-party plugins are namespaced with dots
    (``"example.frc"``); labels allow letters, digits and ``_`` only, so every
    other character becomes ``_``.
    """
    return re.sub(r"[^0-9A-Za-z_]", "_", key)
