"""The iteration loop of significant angular assignment (DESIGN §2, §5).

The scheduler is the only place that knows the order of the steps: starting
volume (random poses or a reference), then per iteration gallery (cached),
projection, alignment search, significance, weighted reconstruction with
symmetry, centring, soft mask and low-pass. It calls plain functions and
plugin objects resolved once by the caller (backend, metrics, plugin manager);
it fires the lifecycle hooks once per run and once per iteration, never per
image. It reads no input files and writes only checkpoints and (on request)
intermediate volumes; the final outputs are :mod:`sigcore.api`'s job.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sigcore import significance
from sigcore.alignment import SearchParams, SearchResult, pair_poses
from sigcore.checkpoint import (
    Checkpoint,
    FinishedStart,
    check_compatible,
    load_checkpoint,
    load_start,
    save_checkpoint,
    save_start,
)
from sigcore.config import ReconstructionConfig
from sigcore.errors import SigcoreError
from sigcore.geometry import random_rotations
from sigcore.imageset import PoseTable
from sigcore.preprocess import PreparedImages

__all__ = [
    "IterationStats",
    "ReconstructionResult",
    "Reporter",
    "RunInfo",
    "fisher_pixels",
    "needs_mirror",
    "random_start",
    "run",
    "search_band",
]

MASK_EDGE = 3.0
"""Width of the soft edge of the spherical mask, working pixels."""

Reporter = Callable[["IterationStats"], None]
"""Called with every iteration's figures (progress displays)."""


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What a run works on; passed to the lifecycle hooks.

    Attributes
    ----------
    config : ReconstructionConfig
    seed : int
        The seed actually used.
    n_images : int
    box : int
        Working box, pixels.
    pixel_size : float
        Working Å per pixel.
    input_box : int
    input_pixel_size : float
    gallery_size : int
        Number of gallery directions G.
    mirror : bool
        Whether the search tests mirrored images.
    backend : str
        Name of the backend in use.
    output_dir : Path or None
    """

    config: ReconstructionConfig
    seed: int
    n_images: int
    box: int
    pixel_size: float
    input_box: int
    input_pixel_size: float
    gallery_size: int
    mirror: bool
    backend: str
    output_dir: Path | None = None

    @property
    def total_iterations(self) -> int:
        """Iterations over all starts."""
        return self.config.iterations * self.config.starts


@dataclass(frozen=True, slots=True)
class IterationStats:
    """Figures of one iteration.

    Attributes
    ----------
    start : int
        0-based start number.
    iteration : int
        0-based iteration number within the start.
    significance : float
        a_t, percent.
    alpha : float
        Tail probability after the symmetry factor.
    significant_pairs : int
        Pairs with weight > 0 (rows of the assignment table).
    images_used : int
        Images with at least one such pair.
    mean_weight : float
        Mean weight over those pairs.
    mean_best_correlation : float
        Mean over images of ``max_j c_ij`` (agreement with the projections
        of the previous volume).
    volume_change : float
        ``||V_t - V_(t-1)|| / ||V_(t-1)||``.
    timings : dict of str to float
        Seconds per step (project, search, significance, reconstruct,
        postprocess, checkpoint).
    """

    start: int
    iteration: int
    significance: float
    alpha: float
    significant_pairs: int
    images_used: int
    mean_weight: float
    mean_best_correlation: float
    volume_change: float
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return plain JSON-friendly values."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ReconstructionResult:
    """The outcome of a reconstruction (all starts).

    Attributes
    ----------
    volume : ndarray, shape (n, n, n), float32
        Final map of the best start, on the host, working box.
    pixel_size : float
        Working Å per voxel of ``volume``.
    assignments : PoseTable
        The weighted poses that produced it: one row per significant
        (image, direction) pair, ``image_index`` into the working images,
        extra columns ``correlation``, ``direction`` and every metric.
    history : list of IterationStats
        Every iteration of every start.
    config : ReconstructionConfig
    run : RunInfo
    best_start : int
    agreements : dict of int to float
        Final reprojection agreement of every start (mean best correlation).
    images : ndarray, shape (N, n, n), float32
        The normalised working images the assignments refer to.
    """

    volume: NDArray[np.float32]
    pixel_size: float
    assignments: PoseTable
    history: list[IterationStats]
    config: ReconstructionConfig
    run: RunInfo
    best_start: int
    agreements: dict[int, float]
    images: NDArray[np.float32]


def needs_mirror(config: ReconstructionConfig, *, proper: bool) -> bool:
    """Say whether the search must test mirrored images (DESIGN §5.3).

    A mirrored image is the view from the opposite direction. A gallery over
    the whole sphere (modulo a proper group) already holds it, so mirrors are
    only searched for a restricted tilt range or an improper group; never in
    ``--compat xmipp`` (Scipion turns them off).
    """
    if config.xmipp:
        return False
    restricted = config.min_tilt > 0.0 or config.max_tilt < 180.0
    return restricted or not proper


SEARCH_BAND_DEFAULT = 0.25
"""Search band (cycles/px) without ``--max-resolution``: the band Xmipp's gallery
projector keeps (ALGORITHM §5.3); an initial model needs no more, and the
search cost grows with the square of the band."""


VOLUME_BAND_MARGIN = 2.0
"""DFT index units added to the search band for the intermediate volumes' band:
the polar sampler's cubic kernel reaches one index beyond a ring."""


def search_band(config: ReconstructionConfig) -> float:
    """Highest frequency the alignment search uses, cycles per working pixel.

    With ``--max-resolution`` the images are already cropped so that Nyquist
    is the target resolution, and the whole band (0.5) is used; otherwise
    :data:`SEARCH_BAND_DEFAULT`.
    """
    return 0.5 if config.max_resolution is not None else SEARCH_BAND_DEFAULT


def fisher_pixels(box: int, band: float = 0.5) -> int:
    """Number of pixels the Fisher bound treats as independent samples.

    sigcore counts the pixels of the inscribed disc (the region the images
    carry signal in), scaled by the fraction ``(band / 0.5)²`` of the
    Fourier plane the search correlates (a band-limited image has that many
    independent samples); Xmipp counts the whole square (ALGORITHM §9), but
    ``--compat xmipp`` turns Fisher off anyway (ALGORITHM Q1).
    """
    c = box // 2
    yy, xx = np.mgrid[:box, :box]
    disc = np.count_nonzero(np.hypot(yy - c, xx - c) <= box / 2.0)
    return max(1, round(float(disc) * min(1.0, band / 0.5) ** 2))


def random_start(
    images: Any,
    backend: Any,
    rng: np.random.Generator,
    *,
    symmetry_ops: NDArray[np.float64],
) -> NDArray[np.float32]:
    """Reconstruct from uniformly random poses (DESIGN §5.7).

    Parameters
    ----------
    images : Array, shape (N, n, n), float32
        On the backend.
    backend : Backend
    rng : numpy.random.Generator
        Seeded; consumed for N rotations (Haar measure on SO(3)).
    symmetry_ops : ndarray, shape (S, 3, 3)
        The reconstruction symmetrises with them.

    Returns
    -------
    ndarray, shape (n, n, n), float32
    """
    n = int(images.shape[0])
    poses = PoseTable(
        image_index=np.arange(n),
        rotations=random_rotations(n, rng),
        shifts=np.zeros((n, 2)),
        weights=np.ones(n),
    )
    volume = backend.reconstruct(images, poses, symmetry_ops=symmetry_ops)
    return np.asarray(backend.asnumpy(volume), dtype=np.float32)


class _Loop:
    """One run's fixed context: images on the backend, gallery, search options."""

    def __init__(
        self,
        prepared: PreparedImages,
        config: ReconstructionConfig,
        backend: Any,
        metrics: Sequence[Any],
    ) -> None:
        from sigcore.sampling import make_gallery, neighbourhoods
        from sigcore.symmetry import get_symmetry

        self.config = config
        self.prepared = prepared
        self.backend = backend
        self.metrics = list(metrics)
        # Host threads for the significance step: --threads, else the
        # backend's own setting, else every core this process may use.
        self.host_threads = int(
            config.threads or getattr(backend, "threads", None) or _usable_cores()
        )
        self.group = get_symmetry(config.symmetry)
        self.images = backend.asarray(prepared.images)
        self.gallery = make_gallery(
            config.step,
            self.group,
            min_tilt=config.min_tilt,
            max_tilt=config.max_tilt,
        )
        if config.xmipp:
            # Xmipp's pool is the direction's own column (ALGORITHM Q2).
            from scipy import sparse

            self.neighbours = sparse.identity(len(self.gallery), format="csr")
        else:
            self.neighbours = neighbourhoods(
                self.gallery, config.neighbourhood, self.group
            )
        self.mirror = needs_mirror(config, proper=self.group.is_proper)
        box = prepared.box
        shift = config.effective_max_shift(prepared.input_box) * prepared.scale
        self.params = SearchParams(
            max_shift=float(max(1.0, round(shift))),
            shift_step=1.0,
            mirror=self.mirror,
            max_frequency=search_band(config),
        )
        # Intermediate volumes only feed the next search: they are projected and
        # reconstructed within its band (plus the reach of the interpolation
        # kernels, VOLUME_BAND_MARGIN index units); the last iteration
        # reconstructs the full band.
        self.volume_band = min(
            0.5, self.params.max_frequency + VOLUME_BAND_MARGIN / float(box)
        )
        self.fisher_pixels = (
            fisher_pixels(box, self.params.max_frequency)
            if config.fisher and not config.xmipp
            else None
        )
        schedule = significance.alpha_schedule(
            config.alpha0, config.alpha_final, config.iterations, compat=config.xmipp
        )
        self.schedule = schedule
        self.alphas = significance.tail_probability(
            schedule, symmetry_order=self.group.order, compat=config.xmipp
        )
        radius = (
            box / 2.0 - MASK_EDGE
            if config.mask_radius is None
            else config.mask_radius / prepared.pixel_size
        )
        self.mask_radius = float(radius)

    def search(self, volume: NDArray[np.float32]) -> tuple[SearchResult, float, float]:
        t0 = time.perf_counter()
        refs = self.backend.project(
            self.backend.asarray(volume),
            self.gallery.rotations,
            max_frequency=self.volume_band,
        )
        self.backend.synchronize()
        t1 = time.perf_counter()
        result = self.backend.search(self.images, refs, self.params, self.metrics)
        self.backend.synchronize()
        return result, t1 - t0, time.perf_counter() - t1

    def postprocess(self, volume: NDArray[np.float32]) -> NDArray[np.float32]:
        from sigcore.volume import apply_mask, center, lowpass

        v = center(volume, method="com")
        v = apply_mask(v, self.mask_radius, edge=MASK_EDGE)
        if self.config.max_resolution is not None:
            v = lowpass(v, self.config.max_resolution, self.prepared.pixel_size)
        return np.asarray(v, dtype=np.float32)

    def assignments(
        self, result: SearchResult, weights: NDArray[np.float64]
    ) -> PoseTable:
        i, j = np.nonzero(weights > 0.0)
        rotations, shifts = pair_poses(self.gallery.rotations, result, i, j)
        extra: dict[str, NDArray[Any]] = {
            "correlation": np.asarray(result.correlation[i, j], dtype=np.float64),
            "direction": j.astype(np.int64),
        }
        for name, table in result.metrics.items():
            extra[name] = np.asarray(table[i, j], dtype=np.float64)
        return PoseTable(
            image_index=i,
            rotations=rotations,
            shifts=shifts,
            weights=weights[i, j],
            extra=extra,
        )

    def iterate(
        self, volume: NDArray[np.float32], start: int, t: int
    ) -> tuple[NDArray[np.float32], PoseTable, IterationStats]:
        result, t_project, t_search = self.search(volume)
        t0 = time.perf_counter()
        distance = result.metrics.get("imed") if self.config.imed else None
        if self.config.imed and distance is None:
            raise SigcoreError("imed: the backend's search returned no IMED table")
        alpha = float(self.alphas[t])
        sig = significance.select(
            result.correlation,
            alpha=alpha,
            neighbourhoods=self.neighbours,
            distance=distance,
            fisher_pixels=self.fisher_pixels,
            strict=self.config.strict_direction,
            workers=self.host_threads,
        )
        if sig.n_pairs == 0:
            raise SigcoreError(
                f"iteration {t + 1}: no image is significant for any direction "
                "(all correlations <= 0?); check the input images"
            )
        poses = self.assignments(result, sig.weights)
        t1 = time.perf_counter()
        last = t == self.config.iterations - 1
        new = self.backend.reconstruct(
            self.images,
            poses,
            symmetry_ops=self.group.operators,
            max_frequency=0.5 if last else self.volume_band,
        )
        new = np.asarray(self.backend.asnumpy(new), dtype=np.float32)
        t2 = time.perf_counter()
        new = self.postprocess(new)
        t3 = time.perf_counter()
        norm = float(np.linalg.norm(volume))
        change = float(np.linalg.norm(new - volume) / norm) if norm > 0 else 1.0
        stats = IterationStats(
            start=start,
            iteration=t,
            significance=float(self.schedule[t]),
            alpha=alpha,
            significant_pairs=sig.n_pairs,
            images_used=sig.images_used,
            mean_weight=float(poses.weights.mean()),
            mean_best_correlation=float(result.correlation.max(axis=1).mean()),
            volume_change=change,
            timings={
                "project": t_project,
                "search": t_search,
                "significance": t1 - t0,
                "reconstruct": t2 - t1,
                "postprocess": t3 - t2,
            },
        )
        return new, poses, stats

    def agreement(self, volume: NDArray[np.float32]) -> float:
        result, _, _ = self.search(volume)
        return float(result.correlation.max(axis=1).mean())


def _emit(pm: Any, hook: str, **kwargs: Any) -> None:
    if pm is not None:
        getattr(pm.hook, hook)(**kwargs)


def run(
    prepared: PreparedImages,
    config: ReconstructionConfig,
    *,
    backend: Any,
    metrics: Sequence[Any] = (),
    seed: int,
    reference: NDArray[np.float32] | None = None,
    pm: Any = None,
    reporter: Reporter | None = None,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    intermediates_dir: Path | None = None,
    output_dir: Path | None = None,
) -> ReconstructionResult:
    """Run every start and iteration; return the best start's map.

    Parameters
    ----------
    prepared : PreparedImages
        Normalised images at the working size.
    config : ReconstructionConfig
        Validated options.
    backend : Backend
        Provides ``project``, ``search`` and ``reconstruct``.
    metrics : sequence of Metric
        Evaluated at each chosen alignment; must include ``imed`` when
        ``config.imed``.
    seed : int
        Start ``k`` draws its random poses from
        ``numpy.random.default_rng([seed, k])``.
    reference : ndarray, shape (n, n, n), optional
        Starting volume on the working grid (replaces the random start).
    pm : pluggy.PluginManager, optional
        Receives ``sigcore_run_start`` and ``sigcore_iteration_end``.
    reporter : callable, optional
        Called with each :class:`IterationStats`.
    checkpoint_dir : Path, optional
        Where a checkpoint is written after every iteration.
    resume : bool
        Continue from the checkpoint in ``checkpoint_dir``, if any.
    intermediates_dir : Path, optional
        Write every iteration's volume there (``volume_sKK_itTTT.mrc``).
    output_dir : Path, optional
        Only reported to the hooks.

    Returns
    -------
    ReconstructionResult
    """
    loop = _Loop(prepared, config, backend, metrics)
    info = RunInfo(
        config=config,
        seed=seed,
        n_images=len(prepared.images),
        box=prepared.box,
        pixel_size=prepared.pixel_size,
        input_box=prepared.input_box,
        input_pixel_size=prepared.input_pixel_size,
        gallery_size=len(loop.gallery),
        mirror=loop.mirror,
        backend=str(getattr(backend, "name", type(backend).__name__)),
        output_dir=output_dir,
    )
    _emit(pm, "sigcore_run_start", run=info)

    state = load_checkpoint(checkpoint_dir) if resume and checkpoint_dir else None
    if state is not None:
        check_compatible(state.config, config.to_dict())
        if state.seed != seed:
            raise SigcoreError(
                f"--resume: the checkpoint used seed {state.seed}, not {seed}"
            )
    history = [] if state is None else [IterationStats(**h) for h in state.history]
    finished = [] if state is None else list(state.finished)
    first_start = 0 if state is None else state.start
    kept: dict[int, tuple[NDArray[np.float32], PoseTable]] = {}

    for start in range(first_start, config.starts):
        if any(f.start == start for f in finished):
            continue
        rng = np.random.default_rng([seed, start])
        if state is not None and state.start == start:
            rng.bit_generator.state = state.rng_state
            volume = state.volume
            poses = state.assignments
            first_t = state.iteration + 1
        else:
            if reference is not None:
                volume = np.asarray(reference, dtype=np.float32)
            else:
                volume = random_start(
                    loop.images, backend, rng, symmetry_ops=loop.group.operators
                )
                volume = loop.postprocess(volume)
            poses = None
            first_t = 0
            if checkpoint_dir is not None:
                save_checkpoint(
                    checkpoint_dir,
                    _snapshot(
                        config, seed, start, -1, volume, None, rng, history, finished
                    ),
                )
        for t in range(first_t, config.iterations):
            volume, poses, stats = loop.iterate(volume, start, t)
            if intermediates_dir is not None:
                from sigcore.io.mrc import write_volume

                intermediates_dir.mkdir(parents=True, exist_ok=True)
                write_volume(
                    intermediates_dir / f"volume_s{start:02d}_it{t + 1:03d}.mrc",
                    volume,
                    voxel_size=prepared.pixel_size,
                    overwrite=True,
                )
            if checkpoint_dir is not None:
                t0 = time.perf_counter()
                snapshot = _snapshot(
                    config,
                    seed,
                    start,
                    t,
                    volume,
                    poses,
                    rng,
                    [*history, stats],
                    finished,
                )
                save_checkpoint(checkpoint_dir, snapshot)
                stats.timings["checkpoint"] = time.perf_counter() - t0
            history.append(stats)
            _emit(pm, "sigcore_iteration_end", run=info, iteration=t, state=stats)
            if reporter is not None:
                reporter(stats)
        assert poses is not None  # iterations >= 1
        score = (
            loop.agreement(volume)
            if config.starts > 1
            else history[-1].mean_best_correlation
        )
        finished.append(FinishedStart(start, score))
        kept[start] = (volume, poses)
        if checkpoint_dir is not None:
            save_start(checkpoint_dir, start, volume, poses)
            final = _snapshot(
                config,
                seed,
                start,
                config.iterations - 1,
                volume,
                poses,
                rng,
                history,
                finished,
            )
            save_checkpoint(checkpoint_dir, final)
        state = None

    best = max(finished, key=lambda f: f.agreement)
    if best.start in kept:
        volume, poses = kept[best.start]
    elif checkpoint_dir is not None:
        volume, poses = load_start(checkpoint_dir, best.start)
    else:  # unreachable: finished starts come from this run or a checkpoint
        raise SigcoreError(f"the map of start {best.start} was not kept")
    return ReconstructionResult(
        volume=volume,
        pixel_size=prepared.pixel_size,
        assignments=poses,
        history=history,
        config=config,
        run=info,
        best_start=best.start,
        agreements={f.start: f.agreement for f in finished},
        images=prepared.images,
    )


def _snapshot(
    config: ReconstructionConfig,
    seed: int,
    start: int,
    iteration: int,
    volume: NDArray[np.float32],
    poses: PoseTable | None,
    rng: np.random.Generator,
    history: list[IterationStats],
    finished: list[FinishedStart],
) -> Checkpoint:
    return Checkpoint(
        config=config.to_dict(),
        seed=seed,
        start=start,
        iteration=iteration,
        volume=volume,
        assignments=poses,
        rng_state=rng.bit_generator.state,
        history=[h.to_dict() for h in history],
        finished=list(finished),
    )


def _usable_cores() -> int:
    """CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
