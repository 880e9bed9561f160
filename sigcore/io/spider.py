"""SPIDER images and stacks (``.spi``, ``.stk``, ``.xmp``): reader plugin.

Owns the SPIDER binary layout (CONVENTIONS §3.3): a header of 4-byte floats
whose 0-based words are 0 ``nslice``, 1 ``nrow``, 4 ``iform``, 11 ``nsam``,
12 ``labrec``, 21 ``labbyt`` (header bytes), 22 ``lenbyt`` (record bytes),
23 ``istack`` (> 0 for a stack's overall header), 25 ``maxim`` (images in
the stack); a stack is the overall header followed, per image, by that
image's header and its float32 data. The byte order is the one in which
these words are plausible. SPIDER records no pixel size here, so the reader
returns ``None`` for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from sigcore.errors import FormatError
from sigcore.hookspecs import hookimpl
from sigcore.imageset import ImageSet

__all__ = ["SpiderReader", "read_spider"]

_HEAD_WORDS = 27
_SUFFIXES = (".spi", ".stk", ".xmp", ".spider")


def _header(raw: bytes) -> tuple[str, NDArray[np.float64]] | None:
    """Return (byte order, header words) if the bytes look like SPIDER."""
    if len(raw) < 4 * _HEAD_WORDS:
        return None
    for order in ("<", ">"):
        words = np.frombuffer(raw[: 4 * _HEAD_WORDS], dtype=f"{order}f4").astype(
            np.float64
        )
        if not np.all(np.isfinite(words)):
            continue
        nslice, nrow, nsam = words[0], words[1], words[11]
        labrec, labbyt, lenbyt = words[12], words[21], words[22]
        counts = np.array([nslice, nrow, nsam, labrec, labbyt, lenbyt])
        if np.any(counts != np.round(counts)) or np.any(np.abs(counts) > 2**31):
            continue
        if not (1 <= nrow <= 100_000 and 1 <= nsam <= 100_000 and nslice != 0):
            continue
        if lenbyt != nsam * 4 or labbyt != labrec * lenbyt or labbyt < 4 * 256:
            continue
        return order, words
    return None


def read_spider(path: str | Path) -> NDArray[np.float32]:
    """Read a SPIDER 2D image or image stack.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    ndarray, shape (n, nrow, nsam), float32
        ``n = 1`` for a single image.

    Raises
    ------
    FormatError
        Missing, truncated or non-SPIDER file, or a 3D volume.
    """
    path = Path(path)
    if not path.is_file():
        raise FormatError(path, "file not found")
    raw = path.read_bytes()
    found = _header(raw)
    if found is None:
        raise FormatError(path, "not a SPIDER file (no plausible header)")
    order, words = found
    nslice, nrow, nsam = abs(int(words[0])), int(words[1]), int(words[11])
    labbyt, istack, maxim = int(words[21]), int(words[23]), int(words[25])
    if nslice != 1:
        raise FormatError(path, f"is a SPIDER volume ({nslice} slices), not images")
    image_bytes = nrow * nsam * 4
    dtype = np.dtype(f"{order}f4")
    if istack > 0:
        if maxim < 1:
            raise FormatError(path, "SPIDER stack holds no images")
        starts = [labbyt + k * (labbyt + image_bytes) + labbyt for k in range(maxim)]
    else:
        starts = [labbyt]
    if starts[-1] + image_bytes > len(raw):
        raise FormatError(
            path,
            f"truncated SPIDER file ({len(raw)} bytes, "
            f"{starts[-1] + image_bytes} needed)",
        )
    images = np.empty((len(starts), nrow, nsam), dtype=np.float32)
    for k, start in enumerate(starts):
        pixels = np.frombuffer(raw, dtype=dtype, count=nrow * nsam, offset=start)
        images[k] = pixels.reshape(nrow, nsam)
    return images


class SpiderReader:
    """Read SPIDER ``.spi``/``.stk``/``.xmp`` images and stacks."""

    name: ClassVar[str] = "spider"
    suffixes: ClassVar[tuple[str, ...]] = _SUFFIXES

    def sniff(self, path: Path) -> bool:
        """Check the first header words for plausible values in either order."""
        try:
            with open(path, "rb") as fh:
                return _header(fh.read(4 * _HEAD_WORDS)) is not None
        except OSError:
            return False

    def read(self, path: Path) -> ImageSet:
        """Read the file; see :func:`read_spider`."""
        return ImageSet(
            images=read_spider(path),
            pixel_size=None,
            source=Path(path),
            metadata={"kind": "stack", "format": self.name},
        )


@hookimpl(trylast=True)
def sigcore_register_readers() -> list[type]:
    """Contribute the SPIDER reader."""
    return [SpiderReader]
