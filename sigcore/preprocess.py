"""Input checks, normalisation and the working box of a reconstruction.

Everything the images (and a reference volume) go through before the first
iteration (DESIGN §2, §5.9): validation (square, non-empty, finite, not
constant, pixel size known), normalisation, Fourier cropping to the working
pixel size implied by ``--max-resolution`` and resampling of a reference to the
working grid. No file formats here: callers pass arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sigcore.errors import ConfigError

__all__ = [
    "BACKGROUND_RING",
    "MIN_WORKING_BOX",
    "PreparedImages",
    "normalize_images",
    "prepare_images",
    "prepare_reference",
    "validate_images",
    "working_geometry",
]

BACKGROUND_RING = (0.8, 1.0)
"""Inner and outer radius of the background ring, fractions of ``n / 2``."""

MIN_WORKING_BOX = 24
"""Smallest box Fourier cropping goes down to (pixels)."""


@dataclass(frozen=True, slots=True)
class PreparedImages:
    """Images ready for the search, and how they relate to the input.

    Attributes
    ----------
    images : ndarray, shape (N, n, n), float32
        Normalised images at the working size.
    pixel_size : float
        Working Å per pixel.
    input_box : int
        Side of the input images, pixels.
    input_pixel_size : float
        Å per pixel of the input.
    """

    images: NDArray[np.float32]
    pixel_size: float
    input_box: int
    input_pixel_size: float

    @property
    def box(self) -> int:
        """Working box side, pixels."""
        return int(self.images.shape[-1])

    @property
    def scale(self) -> float:
        """Working pixels per input pixel (``<= 1``)."""
        return self.box / self.input_box


def validate_images(
    images: ArrayLike, *, pixel_size: float | None, source: str = "images"
) -> NDArray[np.float32]:
    """Check a stack before any work and return it as float32.

    Parameters
    ----------
    images : array_like, shape (N, n, n)
    pixel_size : float or None
        Å per pixel; required.
    source : str
        Name used in messages (the input file).

    Returns
    -------
    ndarray, shape (N, n, n), float32

    Raises
    ------
    ConfigError
        Empty or non-square stack, fewer than 3 images, NaN/Inf pixels, a
        constant image, or no pixel size.
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 3 or x.shape[0] == 0:
        raise ConfigError(
            f"{source}: expected a non-empty stack (N, n, n), got {x.shape}"
        )
    if x.shape[1] != x.shape[2]:
        raise ConfigError(
            f"{source}: images are not square ({x.shape[1]}x{x.shape[2]})"
        )
    if x.shape[0] < 3:
        raise ConfigError(f"{source}: {x.shape[0]} images; need at least 3")
    bad = ~np.isfinite(x).all(axis=(1, 2))
    if bad.any():
        raise ConfigError(
            f"{source}: image {int(np.argmax(bad))} holds NaN or Inf pixels"
        )
    flat = x.std(axis=(1, 2)) == 0
    if flat.any():
        raise ConfigError(f"{source}: image {int(np.argmax(flat))} is constant")
    if pixel_size is None or not pixel_size > 0:
        raise ConfigError(
            f"{source}: pixel size unknown; pass --apix / pixel_size= (Å per pixel)"
        )
    return x


def normalize_images(images: ArrayLike) -> NDArray[np.float32]:
    """Zero the background and scale every image to unit standard deviation.

    The mean of the background ring (radii :data:`BACKGROUND_RING` of ``n/2``,
    where class averages hold solvent) is subtracted, so empty regions match
    the zero background of projections; then each image is divided by its
    standard deviation over the whole box. The ring gives the offset but not
    the scale: in clean class averages its noise can be nearly zero.

    Parameters
    ----------
    images : array_like, shape (N, n, n)

    Returns
    -------
    ndarray, shape (N, n, n), float32
    """
    x = np.asarray(images, dtype=np.float64)
    n = x.shape[-1]
    c = n // 2
    yy, xx = np.mgrid[:n, :n]
    r = np.hypot(yy - c, xx - c) / (n / 2.0)
    ring = (r >= BACKGROUND_RING[0]) & (r < BACKGROUND_RING[1])
    x = x - x[:, ring].mean(axis=1)[:, None, None]
    std = x.std(axis=(1, 2))
    return (x / np.where(std > 0, std, 1.0)[:, None, None]).astype(np.float32)


def working_geometry(
    box: int, pixel_size: float, max_resolution: float | None
) -> tuple[int, float]:
    """Return the working box and pixel size for a target resolution (§5.9).

    Parameters
    ----------
    box : int
        Input box, pixels.
    pixel_size : float
        Input Å per pixel.
    max_resolution : float or None
        Target resolution R, Å; ``None`` keeps the input size.

    Returns
    -------
    box : int
        ``round_even(box * pixel_size / (R / 2))``, never above the input box
        (no upsampling) nor below :data:`MIN_WORKING_BOX` (or the input box if
        that is smaller).
    pixel_size : float
        ``pixel_size * box_in / box``, Å (the exact pixel after cropping).
    """
    if max_resolution is None:
        return box, pixel_size
    target = box * pixel_size / (max_resolution / 2.0)
    new = 2 * round(target / 2.0)
    new = max(min(new, box), min(MIN_WORKING_BOX, box))
    return int(new), pixel_size * box / new


def prepare_images(
    images: ArrayLike,
    *,
    pixel_size: float | None,
    max_resolution: float | None = None,
    source: str = "images",
) -> PreparedImages:
    """Validate, Fourier-crop to the working size and normalise.

    Parameters
    ----------
    images : array_like, shape (N, n, n)
    pixel_size : float or None
        Input Å per pixel (required).
    max_resolution : float, optional
        Target resolution, Å (see :func:`working_geometry`).
    source : str
        Name used in messages.

    Returns
    -------
    PreparedImages
    """
    from sigcore.volume import fourier_crop

    x = validate_images(images, pixel_size=pixel_size, source=source)
    assert pixel_size is not None  # checked above
    n = x.shape[-1]
    box, work_pixel = working_geometry(n, pixel_size, max_resolution)
    if box < n:
        x = np.asarray(fourier_crop(x, box, ndim=2), dtype=np.float32)
    return PreparedImages(
        images=normalize_images(x),
        pixel_size=float(work_pixel),
        input_box=n,
        input_pixel_size=float(pixel_size),
    )


def prepare_reference(
    volume: ArrayLike,
    voxel_size: float,
    *,
    box: int,
    pixel_size: float,
) -> NDArray[np.float32]:
    """Resample a reference volume onto the working grid (DESIGN §5.7).

    The map is Fourier-cropped (or padded) so that its voxel becomes
    ``pixel_size``, then its box is centre-cropped or zero-padded to ``box``,
    and it is scaled to zero mean and unit standard deviation.

    Parameters
    ----------
    volume : array_like, shape (m, m, m)
    voxel_size : float
        Å per voxel of the reference (callers pass the input images' pixel
        size when the file records none).
    box : int
        Working box, voxels.
    pixel_size : float
        Working Å per voxel.

    Returns
    -------
    ndarray, shape (box, box, box), float32
    """
    from sigcore.volume import fourier_crop, fourier_pad

    v = np.asarray(volume, dtype=np.float32)
    if v.ndim != 3 or len(set(v.shape)) != 1:
        raise ConfigError(f"reference: expected a cubic volume, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ConfigError("reference: volume holds NaN or Inf voxels")
    m = v.shape[0]
    resampled = max(2, round(m * voxel_size / pixel_size))
    if resampled < m:
        v = np.asarray(fourier_crop(v, resampled), dtype=np.float32)
    elif resampled > m:
        v = np.asarray(fourier_pad(v, resampled), dtype=np.float32)
    v = _window(v, box)
    std = float(v.std())
    return ((v - v.mean()) / (std if std > 0 else 1.0)).astype(np.float32)


def _window(volume: NDArray[np.float32], box: int) -> NDArray[np.float32]:
    """Centre-crop or zero-pad a cube to ``box`` keeping index ``n // 2`` central."""
    m = volume.shape[0]
    out = np.zeros((box,) * 3, dtype=np.float32)
    # Source and destination ranges that keep the centres m//2 and box//2 aligned.
    lo = max(0, m // 2 - box // 2)
    hi = min(m, m // 2 - box // 2 + box)
    dst = lo - (m // 2 - box // 2)
    size = hi - lo
    out[dst : dst + size, dst : dst + size, dst : dst + size] = volume[
        lo:hi, lo:hi, lo:hi
    ]
    return out
