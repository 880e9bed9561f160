"""Conformance checks for array backends, usable by third-party backends.

A backend conforms when, on small cases, it agrees with the pure-NumPy
reference (``numpy`` backend, brute-force search) within the tolerances of
issue 6: the same best direction, psi and mirror for at least 99% of the
images, correlations within ``corr_tol``, projections within ``proj_tol``
and reconstructions with FSC above 0.99 up to Nyquist; band-limited
(``max_frequency=0.25``) projections and reconstructions must agree within
their band. Run it from a test::

    from sigcore.testing import check_backend
    report = check_backend(MyBackend.create())
    assert report.passed, report.summary()

This module imports nothing heavy at import time (no pytest, numba or cupy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sigcore.alignment import SearchResult
from sigcore.backends.base import ArrayBackend

__all__ = [
    "ConformanceReport",
    "UnalignedBackend",
    "blob_stack",
    "check_backend",
    "small_case",
]


@dataclass
class ConformanceReport:
    """Figures of one backend against the reference.

    Attributes
    ----------
    backend : str
    best_direction_agreement : float
        Fraction of images whose best direction is the reference's.
    pose_agreement : float
        Fraction of (image, direction) pairs whose psi (within one psi step)
        and mirror agree with the reference, among pairs near the top.
    max_correlation_error : float
    max_projection_error : float
        Relative to the reference projections' maximum.
    min_reconstruction_fsc : float
        Lowest FSC shell between the two reconstructions.
    failures : list of str
    """

    backend: str
    best_direction_agreement: float
    pose_agreement: float
    max_correlation_error: float
    max_projection_error: float
    min_reconstruction_fsc: float
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return not self.failures

    def summary(self) -> str:
        """One line per figure, then the failures."""
        lines = [
            f"backend {self.backend}",
            f"best direction agreement {self.best_direction_agreement:.3f}",
            f"psi/mirror agreement {self.pose_agreement:.3f}",
            f"max |c - c_ref| {self.max_correlation_error:.2e}",
            f"max projection error {self.max_projection_error:.2e}",
            f"min reconstruction FSC {self.min_reconstruction_fsc:.4f}",
        ]
        return "\n".join(lines + [f"FAILED: {f}" for f in self.failures])


def small_case(
    *, n_images: int = 6, n_refs: int = 10, box: int = 24, seed: int = 0
) -> dict[str, Any]:
    """Build a small, deterministic alignment case from the bundled phantom.

    Returns
    -------
    dict
        ``volume`` (box³), ``gallery`` (n_refs, 3, 3) rotations, ``images``
        (n_images, box, box): noisy projections at gallery directions with
        random psi and shifts, ``poses`` (a PoseTable of the true poses).
    """
    from sigcore.backends.projector import project
    from sigcore.geometry import (
        direction_to_euler,
        euler_to_matrix,
        inplane_matrix,
        random_rotations,
    )
    from sigcore.imageset import PoseTable
    from sigcore.phantom import protein_phantom
    from sigcore.simulate import translate_images

    rng = np.random.default_rng(seed)
    volume = protein_phantom(box, seed=seed)
    # Gallery directions (psi = 0) drawn uniformly on the sphere.
    gallery = euler_to_matrix(direction_to_euler(random_rotations(n_refs, rng)[:, 2]))
    which = rng.integers(0, n_refs, n_images)
    psi = rng.uniform(0.0, 360.0, n_images)
    rotations = inplane_matrix(psi) @ gallery[which]
    shifts = rng.integers(-2, 3, size=(n_images, 2)).astype(np.float64)
    clean = project(volume, rotations, xp=np)
    images = translate_images(clean, -shifts)
    images = images + 0.1 * images.std() * rng.standard_normal(images.shape)
    poses = PoseTable(
        image_index=np.arange(n_images),
        rotations=rotations,
        shifts=shifts,
        weights=np.ones(n_images),
    )
    return {
        "volume": volume,
        "gallery": gallery,
        "images": images.astype(np.float32),
        "poses": poses,
        "which": which,
    }


def _fsc_curve(a: NDArray[Any], b: NDArray[Any]) -> NDArray[np.float64]:
    from sigcore.validation import fsc

    return np.asarray(fsc(a, b).fsc, dtype=np.float64)


def _fsc_min(a: NDArray[Any], b: NDArray[Any]) -> float:
    return float(np.min(_fsc_curve(a, b)[1:]))


def _lowpass(images: NDArray[Any], frequency: float) -> NDArray[np.float64]:
    """Images (..., n, n) with every frequency at or above ``frequency`` removed."""
    k = np.fft.fftfreq(images.shape[-1])
    keep = np.hypot(k[:, None], k[None, :]) < frequency
    return np.fft.ifft2(np.fft.fft2(images) * keep).real


def check_backend(
    backend: Any,
    reference: Any = None,
    *,
    case: dict[str, Any] | None = None,
    corr_tol: float = 1e-3,
    proj_tol: float = 1e-3,
    agreement: float = 0.99,
) -> ConformanceReport:
    """Compare ``backend`` with the reference backend on a small case.

    Parameters
    ----------
    backend : sigcore.protocols.Backend
        The backend under test.
    reference : Backend, optional
        Defaults to the ``numpy`` reference backend.
    case : dict, optional
        From :func:`small_case` (built when omitted).
    corr_tol, proj_tol : float
        Largest correlation difference and relative projection difference.
    agreement : float
        Least fraction of agreeing best directions and poses.

    Returns
    -------
    ConformanceReport
    """
    from sigcore.alignment import SearchParams
    from sigcore.backends.numpy_backend import NumpyBackend
    from sigcore.backends.search_reference import default_psi_step

    reference = reference or NumpyBackend.create()
    case = case or small_case()
    params = SearchParams(max_shift=2.0, shift_step=1.0, mirror=False)
    failures: list[str] = []

    ref_proj = reference.asnumpy(
        reference.project(reference.asarray(case["volume"]), case["gallery"])
    )
    got_proj = backend.asnumpy(
        backend.project(backend.asarray(case["volume"]), case["gallery"])
    )
    proj_err = float(np.abs(got_proj - ref_proj).max() / np.abs(ref_proj).max())
    if proj_err > proj_tol:
        failures.append(f"projection differs by {proj_err:.2e} > {proj_tol:.0e}")

    ref_res = reference.search(
        reference.asarray(case["images"]), reference.asarray(ref_proj), params
    )
    got_res = backend.search(
        backend.asarray(case["images"]), backend.asarray(ref_proj), params
    )
    c_ref = np.asarray(ref_res.correlation, dtype=np.float64)
    c_got = np.asarray(got_res.correlation, dtype=np.float64)
    corr_err = float(np.abs(c_got - c_ref).max())
    if corr_err > corr_tol:
        failures.append(f"correlations differ by {corr_err:.2e} > {corr_tol:.0e}")
    best = float(np.mean(c_got.argmax(axis=1) == c_ref.argmax(axis=1)))
    if best < agreement:
        failures.append(f"best direction agrees for {best:.1%} of images")
    # psi/mirror of the well-defined pairs: the best direction of each image
    # (weak pairs have flat correlation over psi and no meaningful optimum).
    rows = np.arange(c_ref.shape[0])
    cols = c_ref.argmax(axis=1)
    step = default_psi_step(case["images"].shape[-1], params)
    dpsi = np.abs(
        (got_res.psi[rows, cols] - ref_res.psi[rows, cols] + 180.0) % 360.0 - 180.0
    )
    same = (dpsi <= step) & (got_res.mirror[rows, cols] == ref_res.mirror[rows, cols])
    pose = float(np.mean(same))
    if pose < agreement:
        failures.append(f"psi/mirror agree for {pose:.1%} of the best pairs")

    poses = case["poses"]
    ref_vol = reference.asnumpy(
        reference.reconstruct(reference.asarray(case["images"]), poses)
    )
    got_vol = backend.asnumpy(
        backend.reconstruct(backend.asarray(case["images"]), poses)
    )
    fsc_min = _fsc_min(np.asarray(got_vol), np.asarray(ref_vol))
    if fsc_min < 0.99:
        failures.append(f"reconstruction FSC drops to {fsc_min:.3f} < 0.99")

    # Band-limited projection and reconstruction (the scheduler's intermediate
    # iterations): only the band below max_frequency must agree.
    band = 0.25
    vol = backend.asarray(case["volume"])
    got_band = backend.asnumpy(
        backend.project(vol, case["gallery"], max_frequency=band)
    )
    low_ref, low_got = _lowpass(ref_proj, 0.8 * band), _lowpass(got_band, 0.8 * band)
    band_err = float(np.abs(low_got - low_ref).max() / np.abs(low_ref).max())
    if band_err > 10 * proj_tol:
        failures.append(f"band-limited projection differs by {band_err:.2e} in band")
    got_vol = backend.asnumpy(
        backend.reconstruct(backend.asarray(case["images"]), poses, max_frequency=band)
    )
    curve = _fsc_curve(np.asarray(got_vol), np.asarray(ref_vol))
    shells = int(0.8 * band * got_vol.shape[-1])
    band_fsc = float(np.min(curve[1:shells]))
    if band_fsc < 0.99:
        failures.append(f"band-limited reconstruction FSC {band_fsc:.3f} < 0.99")
    return ConformanceReport(
        backend=str(getattr(backend, "name", type(backend).__name__)),
        best_direction_agreement=best,
        pose_agreement=pose,
        max_correlation_error=corr_err,
        max_projection_error=proj_err,
        min_reconstruction_fsc=fsc_min,
        failures=failures,
    )


def blob_stack(
    count: int, box: int, *, seed: int = 0, offset: float = 0.0
) -> NDArray[np.float32]:
    """Noisy anisotropic Gaussian blobs: small stand-ins for class averages.

    Parameters
    ----------
    count, box : int
        Number of images and their size.
    seed : int
        Seeds the widths (2-5 px per axis), centres and the noise.
    offset : float
        Centres are uniform in ``[-offset, offset]`` pixels per axis (0: centred).

    Returns
    -------
    ndarray, shape (count, box, box), float32
        Peak 1, plus white noise of standard deviation 0.05.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:box, :box] - box // 2
    out = np.empty((count, box, box), np.float32)
    for k in range(count):
        cx, cy = rng.uniform(-offset, offset, 2) if offset > 0 else (0.0, 0.0)
        sx, sy = rng.uniform(2, 5, 2)
        out[k] = np.exp(-((xx - cx) ** 2 / sx**2 + (yy - cy) ** 2 / sy**2))
        out[k] += 0.05 * rng.standard_normal((box, box))
    return out


class UnalignedBackend(ArrayBackend):
    """Test double: real projector and reconstructor, a search that does not align.

    Every image is scored against every reference by the Pearson correlation
    of the unaligned pixels; psi and shifts are reported as the fixed class
    attributes ``psi`` (degrees) and ``shift`` (pixels, both axes), and with
    ``with_imed`` an ``imed`` table ``2 - 2c`` is added. It lets scheduler,
    API and CLI tests run the whole loop in milliseconds; it is not a backend
    for real data. ``calls`` counts the searches.
    """

    name = "test-unaligned"
    psi = 0.0
    shift = 0.0
    with_imed = False

    def __init__(self) -> None:
        super().__init__(np)
        self.calls = 0

    @classmethod
    def is_available(cls) -> bool:
        """Always available."""
        return True

    @classmethod
    def create(cls, **options: Any) -> UnalignedBackend:
        """Build one (options are ignored)."""
        return cls()

    def search(
        self, images: Any, references: Any, params: Any, metrics: Any = ()
    ) -> SearchResult:
        """Correlate the unaligned images with every reference."""
        self.calls += 1
        a = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
        b = np.asarray(references, dtype=np.float64).reshape(len(references), -1)
        a = (a - a.mean(1, keepdims=True)) / a.std(1, keepdims=True)
        b = (b - b.mean(1, keepdims=True)) / (b.std(1, keepdims=True) + 1e-12)
        corr = a @ b.T / a.shape[1]
        shape = corr.shape
        extra = (
            {"imed": (2.0 - 2.0 * corr).clip(0).astype(np.float32)}
            if self.with_imed
            else {}
        )
        return SearchResult(
            correlation=corr.astype(np.float32),
            psi=np.full(shape, float(self.psi)),
            shifts=np.full((*shape, 2), float(self.shift)),
            mirror=np.zeros(shape, dtype=bool),
            metrics=extra,
        )
