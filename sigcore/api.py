"""The Python entry point: ``sigcore.reconstruct(...)``.

This module wires the pieces together for one run: read and validate the
input, validate the options, prepare the output directory (refusing to
overwrite without ``force``), choose the backend and metrics once, hand over
to :func:`sigcore.scheduler.run`, and write the outputs of DESIGN §1
(``volume.mrc``, ``images.mrcs``, ``assignments.star`` and optionally
``assignments.xmd``, ``report.json``, PNG diagnostics, ``iterations/``,
``checkpoint/``; with ``pad_to_input`` also ``volume_input_box.mrc``, the map
at the input box and pixel size, DESIGN §5.9). Every file is written
atomically. The algorithm itself lives in the scheduler.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from sigcore.config import DEFAULT_ITERATIONS, ReconstructionConfig
from sigcore.errors import FormatError, PluginError
from sigcore.imageset import ImageSet
from sigcore.scheduler import ReconstructionResult, Reporter

__all__ = ["OUTPUT_FILES", "ReconstructionResult", "reconstruct"]

OUTPUT_FILES = {
    "volume": "volume.mrc",
    "volume_input_box": "volume_input_box.mrc",
    "images": "images.mrcs",
    "assignments": "assignments.star",
    "assignments_xmd": "assignments.xmd",
    "report": "report.json",
}
CHECKPOINT_DIR = "checkpoint"
INTERMEDIATES_DIR = "iterations"


def _load_images(images: Any, pixel_size: float | None) -> tuple[ImageSet, str]:
    if isinstance(images, ImageSet):
        if pixel_size is not None:
            import dataclasses

            images = dataclasses.replace(images, pixel_size=float(pixel_size))
        return images, str(images.source or "<ImageSet>")
    if isinstance(images, str | Path):
        from sigcore.io import read_images

        return read_images(images, pixel_size=pixel_size), str(images)
    return ImageSet(np.asarray(images), pixel_size=pixel_size), "<array>"


def _prepare_output(output_dir: Path, *, resume: bool, force: bool) -> None:
    """Check the output directory before any work (DESIGN §7)."""
    if output_dir.exists() and not output_dir.is_dir():
        raise FormatError(output_dir, "exists and is not a directory")
    busy = output_dir.is_dir() and any(output_dir.iterdir())
    if resume:
        if not (output_dir / CHECKPOINT_DIR / "state.json").exists():
            raise FormatError(output_dir, "holds no checkpoint to --resume from")
        return
    if busy and not force:
        raise FormatError(output_dir, "exists and is not empty; use --force")
    if busy:
        # A fresh run must not pick up a stale checkpoint or old iterations.
        for name in (CHECKPOINT_DIR, INTERMEDIATES_DIR):
            shutil.rmtree(output_dir / name, ignore_errors=True)
    output_dir.mkdir(parents=True, exist_ok=True)


def _metrics(registry: Any, config: ReconstructionConfig) -> list[Any]:
    """Instantiate every registered metric except the search metric."""
    if config.imed and "imed" not in registry.metrics:
        raise PluginError("metric 'imed' is not registered; use --no-imed")
    return [cls() for name, cls in registry.metrics.items() if name != "correlation"]


def _set_threads(threads: int | None) -> None:
    if threads is None:
        return
    import numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def reconstruct(
    images: str | Path | ImageSet | ArrayLike,
    *,
    output_dir: str | Path | None = None,
    pixel_size: float | None = None,
    symmetry: str = "c1",
    reference: str | Path | None = None,
    step: float = 5.0,
    min_tilt: float = 0.0,
    max_tilt: float = 180.0,
    max_shift: float = -1.0,
    alpha0: float = 80.0,
    alpha_final: float = 99.5,
    iterations: int = DEFAULT_ITERATIONS,
    imed: bool = True,
    strict_direction: bool = False,
    neighbourhood: float = 10.0,
    fisher: bool = True,
    max_resolution: float | None = None,
    mask_radius: float | None = None,
    keep_intermediates: bool = False,
    backend: str = "auto",
    seed: int | None = None,
    starts: int = 1,
    compat: str = "none",
    threads: int | None = None,
    config: ReconstructionConfig | None = None,
    resume: bool = False,
    force: bool = False,
    write_xmd: bool = False,
    plots: bool = True,
    pad_to_input: bool = False,
    reporter: Reporter | None = None,
    plugin_manager: Any = None,
) -> ReconstructionResult:
    """Build an initial map from class averages by significant assignment.

    Parameters
    ----------
    images : str, Path, ImageSet or array_like, shape (N, n, n)
        Any supported input file (MRCS stack, RELION STAR or ``_model.star``,
        Xmipp XMD, cryoSPARC ``.cs``), an :class:`~sigcore.imageset.ImageSet`
        or an array.
    output_dir : str or Path, optional
        Run directory; ``None`` writes nothing (no checkpoint either).
    pixel_size : float, optional
        Å per pixel; overrides the file's value (required if it has none).
    symmetry, reference, step, min_tilt, max_tilt, max_shift, alpha0, \
alpha_final, iterations, imed, strict_direction, neighbourhood, fisher, \
max_resolution, mask_radius, keep_intermediates, backend, seed, starts, \
compat, threads
        The options of :class:`~sigcore.config.ReconstructionConfig` (units
        and meaning there); ignored when ``config`` is given.
    config : ReconstructionConfig, optional
        All options at once.
    resume : bool
        Continue the interrupted run in ``output_dir`` from its checkpoint.
    force : bool
        Reuse a non-empty ``output_dir`` (its files are replaced).
    write_xmd : bool
        Also write ``assignments.xmd`` (Xmipp).
    plots : bool
        Write the PNG diagnostics (needs matplotlib).
    pad_to_input : bool
        When the working box is smaller than the input box (``max_resolution``),
        also write ``volume_input_box.mrc``: the final map Fourier-padded to
        the input box, voxel size the input pixel size, same density values at
        the same physical positions (DESIGN §5.9). Nothing extra is written
        when the boxes are equal; ``result.volume`` stays the working map.
    reporter : callable, optional
        Called with every :class:`~sigcore.scheduler.IterationStats`.
    plugin_manager : pluggy.PluginManager, optional
        Source of plugins and receiver of the lifecycle hooks; default
        :func:`sigcore.plugins.get_plugin_manager`.

    Returns
    -------
    ReconstructionResult
        ``volume`` float32 on the host at the working pixel size,
        ``assignments``, ``history``, ``config``.

    Raises
    ------
    ConfigError, FormatError, PluginError, BackendUnavailable
        Before any work, for bad options, inputs, outputs or plugins.
    """
    from sigcore.plugins import build_registry, create_backend, get_plugin_manager
    from sigcore.preprocess import prepare_images, prepare_reference
    from sigcore.scheduler import run
    from sigcore.symmetry import get_symmetry

    t_start = time.perf_counter()
    if config is None:
        config = ReconstructionConfig(
            symmetry=symmetry,
            reference=None if reference is None else Path(reference),
            step=step,
            min_tilt=min_tilt,
            max_tilt=max_tilt,
            max_shift=max_shift,
            alpha0=alpha0,
            alpha_final=alpha_final,
            iterations=iterations,
            imed=imed,
            strict_direction=strict_direction,
            neighbourhood=neighbourhood,
            fisher=fisher,
            max_resolution=max_resolution,
            mask_radius=mask_radius,
            keep_intermediates=keep_intermediates,
            backend=backend,
            seed=seed,
            starts=starts,
            compat=compat,
            threads=threads,
        )
    group = get_symmetry(config.symmetry)
    config.validate(symmetry_order=group.order)
    out = None if output_dir is None else Path(output_dir)
    if out is not None:
        _prepare_output(out, resume=resume, force=force)
    data, source = _load_images(images, pixel_size)
    config.validate(
        box=data.box, pixel_size=data.pixel_size, symmetry_order=group.order
    )
    prepared = prepare_images(
        data.images,
        pixel_size=data.pixel_size,
        max_resolution=config.max_resolution,
        source=source,
    )
    ref = None
    if config.reference is not None:
        from sigcore.io.mrc import read_volume

        volume, voxel = read_volume(config.reference)
        ref = prepare_reference(
            volume,
            voxel if voxel else prepared.input_pixel_size,
            box=prepared.box,
            pixel_size=prepared.pixel_size,
        )

    checkpoint_dir = None if out is None else out / CHECKPOINT_DIR
    run_seed = _seed(config, checkpoint_dir if resume else None)
    pm = plugin_manager if plugin_manager is not None else get_plugin_manager()
    registry = build_registry(pm)
    metrics = _metrics(registry, config)
    _set_threads(config.threads)
    engine = create_backend(config.backend, registry)

    result = run(
        prepared,
        config,
        backend=engine,
        metrics=metrics,
        seed=run_seed,
        reference=ref,
        pm=pm,
        reporter=reporter,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        intermediates_dir=(
            out / INTERMEDIATES_DIR
            if out is not None and config.keep_intermediates
            else None
        ),
        output_dir=out,
    )
    if out is not None:
        _write_outputs(
            out,
            result,
            source=source,
            t_start=t_start,
            write_xmd=write_xmd,
            plots=plots,
            pad_to_input=pad_to_input,
        )
    pm.hook.sigcore_run_end(run=result.run, result=result)
    return result


def _seed(config: ReconstructionConfig, checkpoint_dir: Path | None) -> int:
    """The seed to use: given, stored in the checkpoint, or freshly drawn."""
    if config.seed is not None:
        return int(config.seed)
    if checkpoint_dir is not None:
        from sigcore.checkpoint import load_checkpoint

        state = load_checkpoint(checkpoint_dir)
        if state is not None:
            return state.seed
    return int(np.random.SeedSequence().entropy % (2**32))


def _write_outputs(
    out: Path,
    result: ReconstructionResult,
    *,
    source: str,
    t_start: float,
    write_xmd: bool,
    plots: bool,
    pad_to_input: bool,
) -> None:
    from sigcore.io.mrc import write_stack, write_volume
    from sigcore.io.relion import write_star
    from sigcore.report import build_report, write_plots, write_report

    written = {}
    stack = out / OUTPUT_FILES["images"]
    write_stack(stack, result.images, pixel_size=result.pixel_size, overwrite=True)
    written["images"] = stack.name
    volume = out / OUTPUT_FILES["volume"]
    write_volume(volume, result.volume, voxel_size=result.pixel_size, overwrite=True)
    written["volume"] = volume.name
    if pad_to_input and result.run.input_box != result.volume.shape[0]:
        from sigcore.volume import fourier_pad

        # Padding the spectrum keeps the field of view, so the voxel becomes
        # working_pixel * box / input_box: the input pixel (exactly, up to
        # float rounding, since working_pixel = input_pixel * input_box / box).
        padded = out / OUTPUT_FILES["volume_input_box"]
        write_volume(
            padded,
            fourier_pad(result.volume, result.run.input_box),
            voxel_size=result.run.input_pixel_size,
            overwrite=True,
        )
        written["volume_input_box"] = padded.name
    else:
        # A --force rerun must not leave a padded map of an earlier run behind.
        (out / OUTPUT_FILES["volume_input_box"]).unlink(missing_ok=True)
    data = ImageSet(
        result.images, pixel_size=result.pixel_size, poses=result.assignments
    )
    star = out / OUTPUT_FILES["assignments"]
    write_star(data, star, stack_path=stack, overwrite=True)
    written["assignments"] = star.name
    if write_xmd:
        from sigcore.io.xmipp import write_xmd as _write_xmd

        xmd = out / OUTPUT_FILES["assignments_xmd"]
        _write_xmd(data, xmd, stack_path=stack, overwrite=True)
        written["assignments_xmd"] = xmd.name
    if plots:
        for name in write_plots(out, result):
            written[name.removesuffix(".png")] = name
    if result.config.keep_intermediates:
        written["intermediates"] = INTERMEDIATES_DIR + "/"
    written["checkpoint"] = CHECKPOINT_DIR + "/"
    report = build_report(
        result,
        source=source,
        elapsed=time.perf_counter() - t_start,
        outputs=written,
    )
    write_report(out / OUTPUT_FILES["report"], report)
