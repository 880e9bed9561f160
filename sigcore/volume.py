"""Operations on 3D maps: masks, low-pass, centring, symmetrisation, hand, resampling.

Everything here works on float32 arrays indexed ``[z, y, x]`` with the centre at
index ``n // 2`` (DESIGN §4). Coordinates are ``r = (x, y, z) = (column, row,
section) - n // 2`` in voxels. A rotation matrix ``M`` acts on a map as
``W(r) = V(M.T @ r)`` (the map turned by ``M``), so projecting ``W`` at ``A``
equals projecting ``V`` at ``A @ M``. Functions that are cheap to express with
plain array arithmetic take ``xp`` (NumPy or CuPy); interpolation-based ones
(:func:`symmetrize`, :func:`rotate_volume`) use ``scipy.ndimage`` on the host.
These are the post-processing steps of DESIGN §5.8 and the resampling of §5.9.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sigcore.errors import ConfigError

__all__ = [
    "apply_mask",
    "center",
    "center_of_mass_shift",
    "flip_hand",
    "fourier_crop",
    "fourier_pad",
    "lowpass",
    "resample",
    "rotate_volume",
    "shift_volume",
    "soft_sphere_mask",
    "symmetrize",
]


def _radius_grid(shape: Sequence[int], xp: Any) -> Any:
    """Distance (voxels) of every grid point from the centre ``n // 2`` per axis."""
    r2 = 0.0
    for axis, n in enumerate(shape):
        c = xp.arange(n, dtype=xp.float32) - n // 2
        view = [1] * len(shape)
        view[axis] = n
        r2 = r2 + c.reshape(view) ** 2
    return xp.sqrt(r2)


def _frequency_radius(shape: Sequence[int], xp: Any) -> Any:
    """|k| in cycles per voxel of an unshifted ``fftn`` grid of ``shape``."""
    k2 = 0.0
    for axis, n in enumerate(shape):
        k = xp.fft.fftfreq(n).astype(xp.float32)
        view = [1] * len(shape)
        view[axis] = n
        k2 = k2 + k.reshape(view) ** 2
    return xp.sqrt(k2)


def _raised_cosine(x: Any, edge: float, xp: Any) -> Any:
    """1 for ``x <= -edge/2``, 0 for ``x >= edge/2``, a half cosine in between."""
    if edge <= 0:
        return (x <= 0).astype(xp.float32)
    t = xp.clip(x / edge + 0.5, 0.0, 1.0)
    return (0.5 * (1.0 + xp.cos(np.pi * t))).astype(xp.float32)


def soft_sphere_mask(
    n: int, radius: float, *, edge: float = 3.0, ndim: int = 3, xp: Any = np
) -> Any:
    """A spherical (or circular) mask with a raised-cosine edge.

    Parameters
    ----------
    n : int
        Box side in voxels.
    radius : float
        Voxels; the mask is 1 for ``r <= radius`` and falls to 0 at
        ``r = radius + edge`` along a half cosine, ``(1 + cos(pi (r - radius) /
        edge)) / 2``.
    edge : float
        Width of the soft edge in voxels; 0 gives a hard mask.
    ndim : int
        3 for a volume mask, 2 for an image mask.
    xp : module
        Array namespace.

    Returns
    -------
    Array, shape (n,) * ndim, float32
    """
    if radius <= 0:
        raise ConfigError(f"mask radius must be positive, got {radius}")
    r = _radius_grid((n,) * ndim, xp)
    if edge <= 0:
        return (r <= radius).astype(xp.float32)
    return _raised_cosine(r - radius - edge / 2.0, edge, xp)


def apply_mask(
    volume: Any, radius: float | None = None, *, edge: float = 3.0, xp: Any = np
) -> Any:
    """Multiply a map (or every image of a stack) by :func:`soft_sphere_mask`.

    Parameters
    ----------
    volume : Array, shape (n, n, n) or (m, n, n)
        A cubic array is treated as a volume; anything else as a stack of
        images (masked with the 2D mask).
    radius : float, optional
        Voxels; default ``n / 2 - edge`` (the soft edge ends at the box edge).
    edge : float
        Soft-edge width in voxels.
    xp : module

    Returns
    -------
    Array, same shape, float32
    """
    n = volume.shape[-1]
    ndim = volume.ndim if len(set(volume.shape)) == 1 else 2
    if radius is None:
        radius = n / 2.0 - edge
    return (volume * soft_sphere_mask(n, radius, edge=edge, ndim=ndim, xp=xp)).astype(
        xp.float32
    )


def _spatial_ndim(array: Any, ndim: int | None) -> int:
    if ndim is not None:
        return ndim
    if array.ndim <= 2 or len(set(array.shape)) == 1:
        return array.ndim
    return 2


def lowpass(
    volume: Any,
    resolution_A: float,
    pixel_size: float,
    *,
    edge_width: float = 0.02,
    ndim: int | None = None,
    xp: Any = np,
) -> Any:
    """Low-pass filter with a raised-cosine edge (Xmipp-style).

    Parameters
    ----------
    volume : Array
        A volume ``(n, n, n)``, an image ``(n, n)`` or a stack ``(m, n, n)``
        (filtered image by image; pass ``ndim=2`` for a stack with ``m == n``).
    resolution_A : float
        Cut-off resolution in Å; the cut-off frequency is
        ``fc = pixel_size / resolution_A`` cycles per voxel.
    pixel_size : float
        Å per voxel.
    edge_width : float
        Width of the cosine edge in cycles per voxel, centred on ``fc``: the
        gain is 1 below ``fc - edge_width / 2`` and 0 above ``fc + edge_width /
        2``.
    ndim : int, optional
        Number of trailing axes to filter over (default: see ``volume``).
    xp : module

    Returns
    -------
    Array, same shape, float32
    """
    if resolution_A <= 0 or pixel_size <= 0:
        raise ConfigError(
            f"low-pass needs positive resolution and pixel size, got "
            f"{resolution_A} Å and {pixel_size} Å/px"
        )
    ndim = _spatial_ndim(volume, ndim)
    axes = tuple(range(volume.ndim - ndim, volume.ndim))
    fc = pixel_size / resolution_A
    gain = _raised_cosine(
        _frequency_radius(volume.shape[-ndim:], xp) - fc, edge_width, xp
    )
    spectrum = xp.fft.fftn(volume, axes=axes)
    return xp.fft.ifftn(spectrum * gain, axes=axes).real.astype(xp.float32)


def shift_volume(volume: Any, shift: ArrayLike, *, xp: Any = np) -> Any:
    """Translate an array by a (sub-voxel) shift with a Fourier phase ramp.

    Parameters
    ----------
    volume : Array, shape (n_z, n_y, n_x) or (n_y, n_x)
    shift : array_like, shape (ndim,)
        ``(x, y[, z])`` in voxels; the content moves by ``+shift`` (cyclically).
    xp : module

    Returns
    -------
    Array, same shape, float32
    """
    shift = np.asarray(shift, dtype=np.float64)
    if shift.shape != (volume.ndim,):
        raise ValueError(f"shift must have {volume.ndim} components (x, y[, z])")
    phase = 0.0
    for axis, n in enumerate(volume.shape):
        # axis 0 of a volume is z, the last axis is x
        s = float(shift[volume.ndim - 1 - axis])
        k = xp.fft.fftfreq(n)
        view = [1] * volume.ndim
        view[axis] = n
        phase = phase + (k * s).reshape(view)
    ramp = xp.exp(-2j * np.pi * phase)
    return xp.fft.ifftn(xp.fft.fftn(volume) * ramp).real.astype(xp.float32)


def center_of_mass_shift(volume: ArrayLike) -> NDArray[np.float64]:
    """The shift that moves the centre of mass of the positive density to the centre.

    Parameters
    ----------
    volume : array_like, shape (n, n, n)

    Returns
    -------
    ndarray, shape (3,), float64
        ``(x, y, z)`` voxels; ``shift_volume(volume, result)`` is centred.
        Zero when the map has no positive density.
    """
    v = np.clip(np.asarray(volume, dtype=np.float64), 0.0, None)
    total = v.sum()
    if total <= 0:
        return np.zeros(3)
    com = []
    for axis in (2, 1, 0):  # x, y, z
        other = tuple(a for a in range(3) if a != axis)
        profile = v.sum(axis=other)
        coords = np.arange(v.shape[axis]) - v.shape[axis] // 2
        com.append(float(profile @ coords) / total)
    return -np.asarray(com)


def _inversion_centre_shift(volume: NDArray[np.float64]) -> NDArray[np.float64]:
    """Shift that puts the best point-inversion centre of ``volume`` at the box centre.

    ``V(r)`` and its inversion about ``c``, ``V(2c - r)``, agree best where the
    cross-correlation of ``V`` with ``V(-r)`` peaks, at ``2c``.
    """
    n = volume.shape
    inverted = np.roll(volume[::-1, ::-1, ::-1], [1 - s % 2 for s in n], axis=(0, 1, 2))
    cc = np.fft.ifftn(np.fft.fftn(volume) * np.conj(np.fft.fftn(inverted))).real
    peak = _subpixel_peak(cc)
    return -peak / 2.0


def _subpixel_peak(cc: NDArray[np.float64]) -> NDArray[np.float64]:
    """Location ``(x, y, z)`` of the maximum of a cyclic correlation map.

    The integer peak is refined per axis by a parabola through its neighbours;
    offsets beyond half the box wrap to negative values.
    """
    idx = np.unravel_index(int(np.argmax(cc)), cc.shape)
    out = []
    for axis, n in enumerate(cc.shape):
        i = idx[axis]
        lo = list(idx)
        hi = list(idx)
        lo[axis] = (i - 1) % n
        hi[axis] = (i + 1) % n
        y0, y1, y2 = cc[tuple(lo)], cc[idx], cc[tuple(hi)]
        denom = y0 - 2 * y1 + y2
        frac = 0.5 * (y0 - y2) / denom if denom < 0 else 0.0
        pos = i + float(np.clip(frac, -0.5, 0.5))
        out.append(pos - n if pos >= n / 2 else pos)
    return np.asarray(out[::-1])


def center(volume: ArrayLike, *, method: str = "com") -> NDArray[np.float32]:
    """Centre a map in its box with a Fourier shift (DESIGN §5.8).

    Parameters
    ----------
    volume : array_like, shape (n, n, n)
    method : {"com", "inversion"}
        ``"com"`` moves the centre of mass of the positive density to the box
        centre. ``"inversion"`` is the translation part of Xmipp's centring
        (ALGORITHM §12.2, which aligns V to ``V + V(-r)``): it moves the point
        about which the map best matches its own inversion to the centre,
        found in closed form as the peak of the correlation of ``V`` with
        ``V(-r)``.

    Returns
    -------
    ndarray, shape (n, n, n), float32

    Notes
    -----
    ``"com"`` is the default: it is deterministic, needs no optimiser, is
    defined for any map, and during a reconstruction from noisy, partly wrong
    assignments the centre of mass is a stable target, while the inversion
    centre of an early, blobby map can jump between equally good candidates.
    Xmipp's rotation and scale terms of that alignment are left out: a
    centring step should not rotate or rescale the map.
    """
    v = np.asarray(volume, dtype=np.float32)
    if v.ndim != 3:
        raise ValueError("center expects a volume of shape (n, n, n)")
    if method == "com":
        shift = center_of_mass_shift(v)
    elif method == "inversion":
        shift = _inversion_centre_shift(v.astype(np.float64))
    else:
        raise ConfigError(
            f"unknown centring method {method!r} (use 'com' or 'inversion')"
        )
    return shift_volume(v, shift)


def _index_affine(
    matrix: NDArray[np.float64], shift: NDArray[np.float64], shape: Sequence[int]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Index-space affine map for ``W(r) = V(M.T (r - s))`` in ``[z, y, x]`` order.

    scipy's ``affine_transform`` samples the input at ``T @ o + offset`` for
    each output index ``o``.
    """
    perm = np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0]], dtype=np.float64)  # xyz<->zyx
    t = perm @ matrix.T @ perm
    c = np.array([s // 2 for s in shape], dtype=np.float64)
    s_zyx = perm @ shift
    offset = c - t @ (c + s_zyx)
    return t, offset


def rotate_volume(
    volume: ArrayLike,
    matrix: ArrayLike,
    shift: ArrayLike | None = None,
    *,
    order: int = 1,
) -> NDArray[np.float32]:
    """Turn a map by a rotation and then translate it (host, ``scipy.ndimage``).

    Parameters
    ----------
    volume : array_like, shape (n, n, n)
    matrix : array_like, shape (3, 3)
        Rotation ``M`` acting on ``(x, y, z)``.
    shift : array_like, shape (3,), optional
        ``(x, y, z)`` voxels applied after the rotation.
    order : int
        Spline order of the interpolation (1 = trilinear, 3 = cubic).

    Returns
    -------
    ndarray, shape (n, n, n), float32
        ``W(r) = V(M.T @ (r - shift))``; outside the box counts as 0.
    """
    from scipy import ndimage

    v = np.asarray(volume, dtype=np.float32)
    m = np.asarray(matrix, dtype=np.float64)
    s = np.zeros(3) if shift is None else np.asarray(shift, dtype=np.float64)
    t, offset = _index_affine(m, s, v.shape)
    out = ndimage.affine_transform(
        v, t, offset=offset, order=order, mode="constant", cval=0.0, prefilter=order > 1
    )
    return out.astype(np.float32, copy=False)


def symmetrize(
    volume: ArrayLike, operators: ArrayLike, *, order: int = 1
) -> NDArray[np.float32]:
    """Average a map over the operators of a point group.

    Parameters
    ----------
    volume : array_like, shape (n, n, n)
    operators : array_like, shape (k, 3, 3)
        The group elements ``L`` (identity included), acting on ``(x, y, z)``.
    order : int
        Spline order of the interpolation, 1–3.

    Returns
    -------
    ndarray, shape (n, n, n), float32
        ``mean_L V(L r)``, which satisfies ``W(L r) = W(r)`` for every ``L``
        of a closed group (up to interpolation).
    """
    if order not in (1, 2, 3):
        raise ConfigError(f"symmetrize order must be 1, 2 or 3, got {order}")
    ops = np.asarray(operators, dtype=np.float64).reshape(-1, 3, 3)
    v = np.asarray(volume, dtype=np.float32)
    acc = np.zeros(v.shape, dtype=np.float64)
    for op in ops:
        if np.allclose(op, np.eye(3)):
            acc += v
        else:
            # V(L r) = rotate_volume(V, M) with M.T = L
            acc += rotate_volume(v, op.T, order=order)
    return (acc / len(ops)).astype(np.float32)


def flip_hand(volume: Any, *, xp: Any = np) -> Any:
    """Mirror a map through the central z section: ``W(x, y, z) = V(x, y, -z)``.

    This is ``volume[::-1]`` (cryoDRGN's ``flip_hand``, Xmipp's ``--flipZ``)
    for odd boxes; for even boxes the flipped array is also rolled by one
    section so the mirror plane is the section at index ``n // 2`` and a
    centred map stays centred.

    Parameters
    ----------
    volume : Array, shape (n_z, n_y, n_x)
    xp : module

    Returns
    -------
    Array, same shape
    """
    flipped = volume[::-1]
    if volume.shape[0] % 2 == 0:
        flipped = xp.roll(flipped, 1, axis=0)
    return xp.ascontiguousarray(flipped)


def _resample_axis(spectrum: Any, axis: int, m: int, xp: Any) -> Any:
    """Crop or zero-pad one axis of a centred (fftshifted) spectrum to ``m`` bins.

    The Nyquist bin of an even box is split evenly between ``+n/2`` and ``-n/2``
    on padding, and on cropping the two bins that alias onto the new Nyquist
    bin are summed (exact sampling of a function band-limited to it), so real
    maps stay real and padding then cropping is the identity.
    """
    n = spectrum.shape[axis]
    if m == n:
        return spectrum
    sl = [slice(None)] * spectrum.ndim

    def at(i: int | slice) -> tuple:
        sl2 = list(sl)
        sl2[axis] = i
        return tuple(sl2)

    if m < n:
        start = n // 2 - m // 2
        out = spectrum[at(slice(start, start + m))].copy()
        if m % 2 == 0:
            out[at(0)] = spectrum[at(start)] + spectrum[at(n // 2 + m // 2)]
        return out
    shape = list(spectrum.shape)
    shape[axis] = m
    out = xp.zeros(shape, dtype=spectrum.dtype)
    start = m // 2 - n // 2
    out[at(slice(start, start + n))] = spectrum
    if n % 2 == 0:
        half = 0.5 * spectrum[at(0)]
        out[at(start)] = half
        out[at(m // 2 + n // 2)] = half
    return out


def _fourier_resample(array: Any, new_box: int, ndim: int | None, xp: Any) -> Any:
    if new_box < 1:
        raise ConfigError(f"new box must be at least 1, got {new_box}")
    ndim = _spatial_ndim(array, ndim)
    axes = tuple(range(array.ndim - ndim, array.ndim))
    spectrum = xp.fft.fftshift(
        xp.fft.fftn(xp.fft.ifftshift(array, axes=axes), axes=axes), axes=axes
    )
    scale = 1.0
    for axis in axes:
        scale *= new_box / array.shape[axis]
        spectrum = _resample_axis(spectrum, axis, new_box, xp)
    out = xp.fft.fftshift(
        xp.fft.ifftn(xp.fft.ifftshift(spectrum, axes=axes), axes=axes), axes=axes
    )
    return (out.real * scale).astype(xp.float32)


def fourier_crop(
    volume_or_images: Any, new_box: int, *, ndim: int | None = None, xp: Any = np
) -> Any:
    """Downsample by cropping the centred spectrum (pixel size x ``n / new_box``).

    Parameters
    ----------
    volume_or_images : Array
        A volume ``(n, n, n)``, an image ``(n, n)`` or a stack ``(m, n, n)``;
        for a stack with ``m == n`` pass ``ndim=2``.
    new_box : int
        Output side, ``<= n``.
    ndim : int, optional
        Number of trailing axes to resample.
    xp : module

    Returns
    -------
    Array, float32
        Same values for a function band-limited below the new Nyquist
        frequency (the density scale is kept); the centre stays at index
        ``new_box // 2``.
    """
    if new_box > volume_or_images.shape[-1]:
        raise ConfigError(
            f"fourier_crop cannot enlarge box {volume_or_images.shape[-1]} to {new_box}"
        )
    return _fourier_resample(volume_or_images, new_box, ndim, xp)


def fourier_pad(
    volume_or_images: Any, new_box: int, *, ndim: int | None = None, xp: Any = np
) -> Any:
    """Upsample by zero-padding the centred spectrum (pixel size x ``n / new_box``).

    Parameters and return value as :func:`fourier_crop`, with ``new_box >= n``;
    ``fourier_crop(fourier_pad(v, m), n)`` returns ``v``.
    """
    if new_box < volume_or_images.shape[-1]:
        raise ConfigError(
            f"fourier_pad cannot shrink box {volume_or_images.shape[-1]} to {new_box}"
        )
    return _fourier_resample(volume_or_images, new_box, ndim, xp)


def resample(
    volume: ArrayLike, pixel_size: float, *, new_pixel_size: float, box: int
) -> NDArray[np.float32]:
    """Bring a map to another pixel size and box (for comparing maps).

    The map is Fourier-cropped or padded to ``round(n * pixel_size /
    new_pixel_size)`` voxels (so the pixel size becomes ``new_pixel_size`` up
    to that rounding), then cut or zero-padded in real space about its centre
    to ``box``.

    Parameters
    ----------
    volume : array_like, shape (n, n, n)
    pixel_size : float
        Å per voxel of ``volume``.
    new_pixel_size : float
        Å per voxel wanted.
    box : int
        Output side.

    Returns
    -------
    ndarray, shape (box, box, box), float32
    """
    v = np.asarray(volume, dtype=np.float32)
    n = v.shape[0]
    if pixel_size <= 0 or new_pixel_size <= 0:
        raise ConfigError("resampling needs positive pixel sizes")
    m = max(round(n * pixel_size / new_pixel_size), 1)
    if m < n:
        v = fourier_crop(v, m, ndim=3)
    elif m > n:
        v = fourier_pad(v, m, ndim=3)
    out = np.zeros((box, box, box), np.float32)
    # copy the overlap, keeping index m // 2 on index box // 2
    lo_src = max(m // 2 - box // 2, 0)
    lo_dst = max(box // 2 - m // 2, 0)
    size = min(m - lo_src, box - lo_dst)
    src = slice(lo_src, lo_src + size)
    dst = slice(lo_dst, lo_dst + size)
    out[dst, dst, dst] = v[src, src, src]
    return out
