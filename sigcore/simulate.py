"""Class-average-like test data from any map, with the true poses.

:func:`simulate` projects a volume at random (uniform on SO(3)) or given
orientations, turns each projection in-plane and translates it, applies an
optional low-pass envelope and adds white Gaussian noise at a given SNR;
:func:`write_simulation` writes the result as ``classes.mrcs`` +
``classes.star`` (true poses, RELION 3.1) + ``truth.mrc``. Everything is
deterministic for a seed. Projection goes through an array backend
(``backend.project``), so the geometry is the one the reconstruction uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sigcore.errors import ConfigError
from sigcore.geometry import inplane_matrix, random_rotations
from sigcore.imageset import ImageSet, PoseTable
from sigcore.volume import fourier_crop, fourier_pad, lowpass

__all__ = ["default_max_shift", "simulate", "translate_images", "write_simulation"]


def default_max_shift(box: int) -> float:
    """The default largest simulated shift: 5 % of the box, in pixels."""
    return 0.05 * box


def translate_images(images: ArrayLike, shifts: ArrayLike) -> NDArray[np.float32]:
    """Translate every image of a stack by its own (sub-pixel) shift.

    Parameters
    ----------
    images : array_like, shape (m, n, n)
    shifts : array_like, shape (m, 2)
        ``(x, y)`` in pixels; the content of image ``i`` moves by
        ``+shifts[i]`` (cyclically, with a Fourier phase ramp).

    Returns
    -------
    ndarray, shape (m, n, n), float32
    """
    imgs = np.asarray(images, dtype=np.float32)
    s = np.asarray(shifts, dtype=np.float64).reshape(-1, 2)
    ky = np.fft.fftfreq(imgs.shape[-2])
    kx = np.fft.rfftfreq(imgs.shape[-1])
    phase = (
        s[:, 0, None, None] * kx[None, None, :]
        + s[:, 1, None, None] * ky[None, :, None]
    )
    spectrum = np.fft.rfft2(imgs) * np.exp(-2j * np.pi * phase)
    return np.fft.irfft2(spectrum, s=imgs.shape[-2:]).astype(np.float32)


def _uniform_disk(
    n: int, radius: float, rng: np.random.Generator
) -> NDArray[np.float64]:
    r = radius * np.sqrt(rng.random(n))
    angle = rng.random(n) * 2 * np.pi
    return np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1)


def simulate(
    volume: ArrayLike,
    *,
    n: int,
    snr: float,
    pixel_size: float,
    box: int | None = None,
    seed: int = 0,
    rotations: ArrayLike | None = None,
    random_psi: bool = True,
    max_shift: float | None = None,
    lowpass_A: float | None = None,
    backend: Any = None,
) -> tuple[ImageSet, NDArray[np.float32]]:
    """Simulate ``n`` class-average-like images of a map with known poses.

    Parameters
    ----------
    volume : array_like, shape (m, m, m)
        The map, indexed ``[z, y, x]``.
    n : int
        Number of images.
    snr : float
        Signal-to-noise ratio: the variance of the noise-free images, pooled
        over all pixels of all images (the whole box, background included),
        divided by the variance of the added white Gaussian noise. ``inf``
        adds no noise.
    pixel_size : float
        Å per voxel of ``volume``.
    box : int, optional
        Image (and truth) box; the map is first Fourier-cropped or padded to
        it, which changes the pixel size to ``pixel_size * m / box``.
    seed : int
        Seeds every random choice (orientations, in-plane angles, shifts,
        noise), drawn in that order.
    rotations : array_like, shape (n, 3, 3), optional
        Orientations (RELION sense); default uniform on SO(3).
    random_psi : bool
        Compose a uniform random in-plane rotation with each orientation
        (``A = Rz'(psi) @ A0``); uniform rotations stay uniform.
    max_shift : float, optional
        Pixels; the pose shifts are uniform in a disk of this radius
        (default :func:`default_max_shift`).
    lowpass_A : float, optional
        Resolution (Å) of a raised-cosine low-pass envelope applied to the
        noise-free images.
    backend : str or backend object, optional
        What projects (``backend.project``); default the ``numpy`` reference
        backend.

    Returns
    -------
    images : ImageSet
        float32 ``(n, box, box)`` with ``pixel_size`` and ``poses`` (one row
        per image: rotation, shift in pixels with the RELION sign, weight 1).
        Image ``i`` is the projection at ``rotations[i]`` translated by
        ``-shifts[i]``. ``metadata["simulation"]`` records the parameters.
    truth : ndarray, shape (box, box, box), float32
        The map the images were made from, at the output pixel size.
    """
    vol = np.asarray(volume, dtype=np.float32)
    if vol.ndim != 3 or len(set(vol.shape)) != 1:
        raise ConfigError(f"simulate needs a cubic volume, got shape {vol.shape}")
    if n < 1:
        raise ConfigError(f"number of images must be at least 1, got {n}")
    if not snr > 0:
        raise ConfigError(f"SNR must be positive, got {snr}")
    if not pixel_size > 0:
        raise ConfigError(f"pixel size must be positive, got {pixel_size}")
    size = vol.shape[0] if box is None else int(box)
    if size < 8:
        raise ConfigError(f"box must be at least 8 pixels, got {size}")
    truth = vol
    if size < vol.shape[0]:
        truth = fourier_crop(vol, size, ndim=3)
    elif size > vol.shape[0]:
        truth = fourier_pad(vol, size, ndim=3)
    apix = pixel_size * vol.shape[0] / size
    shift_radius = default_max_shift(size) if max_shift is None else float(max_shift)
    if shift_radius < 0 or shift_radius >= size / 2:
        raise ConfigError(
            f"max shift must be in [0, {size / 2}) pixels, got {max_shift}"
        )

    rng = np.random.default_rng(seed)
    if rotations is None:
        rots = random_rotations(n, rng)
    else:
        rots = np.asarray(rotations, dtype=np.float64)
        if rots.shape != (n, 3, 3):
            raise ConfigError(
                f"rotations must have shape ({n}, 3, 3), got {rots.shape}"
            )
    if random_psi:
        rots = inplane_matrix(rng.uniform(0.0, 360.0, n)) @ rots
    shifts = _uniform_disk(n, shift_radius, rng)

    if backend is None or isinstance(backend, str):
        from sigcore.plugins import create_backend

        backend = create_backend(backend or "numpy")
    clean = np.asarray(backend.asnumpy(backend.project(truth, rots)), dtype=np.float32)
    clean = translate_images(clean, -shifts)
    if lowpass_A is not None:
        clean = lowpass(clean, lowpass_A, apix, ndim=2)
    images = clean
    if np.isfinite(snr):
        sigma = float(np.sqrt(clean.var(dtype=np.float64) / snr))
        noise = rng.standard_normal(clean.shape).astype(np.float32)
        images = clean + sigma * noise
    poses = PoseTable(
        image_index=np.arange(n), rotations=rots, shifts=shifts, weights=np.ones(n)
    )
    info = {
        "n": n,
        "snr": float(snr),
        "seed": int(seed),
        "max_shift": shift_radius,
        "lowpass_A": lowpass_A,
    }
    data = ImageSet(
        images=images.astype(np.float32),
        pixel_size=apix,
        poses=poses,
        metadata={"simulation": info},
    )
    return data, truth.astype(np.float32)


def write_simulation(
    directory: str | Path,
    images: ImageSet,
    truth: ArrayLike,
    *,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write a simulation as ``classes.mrcs``, ``classes.star`` and ``truth.mrc``.

    Parameters
    ----------
    directory : str or Path
        Created if missing.
    images : ImageSet
        From :func:`simulate` (needs a pixel size and poses).
    truth : array_like, shape (b, b, b)
        Written with the images' pixel size.
    overwrite : bool
        Replace existing files; otherwise an existing output is an error
        raised before anything is written.

    Returns
    -------
    dict
        ``{"stack": ..., "star": ..., "truth": ...}`` paths.
    """
    from sigcore.io.atomic import check_writable
    from sigcore.io.mrc import write_stack, write_volume
    from sigcore.io.relion import write_star

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "stack": out / "classes.mrcs",
        "star": out / "classes.star",
        "truth": out / "truth.mrc",
    }
    for path in paths.values():
        check_writable(path, overwrite=overwrite)
    write_stack(
        paths["stack"], images.images, pixel_size=images.pixel_size, overwrite=overwrite
    )
    write_star(images, paths["star"], stack_path=paths["stack"], overwrite=overwrite)
    write_volume(
        paths["truth"], truth, voxel_size=images.pixel_size, overwrite=overwrite
    )
    return paths
