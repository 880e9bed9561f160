"""``sigcore reconstruct`` and ``sigcore demo``: the method from the command line.

Thin wrappers over :func:`sigcore.api.reconstruct`: options become a
:class:`~sigcore.config.ReconstructionConfig`; progress, an observer on the
lifecycle hooks, goes to stderr as a rich display (iteration, significance,
significant pairs, ETA), nothing with ``--quiet``, or one JSON object per
iteration on stdout with ``--json-progress``. ``sigcore demo`` builds the
bundled example in code (a chiral protein-like phantom simulated into class
averages) and reconstructs it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from sigcore.cli import app
from sigcore.config import DEFAULT_ITERATIONS
from sigcore.hookspecs import hookimpl

__all__ = ["demo", "reconstruct"]


class _Progress:
    """Progress display, hung on the lifecycle hooks (DESIGN §3).

    ``mode`` is ``"rich"`` (a live bar on stderr), ``"json"`` (one JSON object
    per iteration on stdout) or ``"quiet"``.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self._progress: Any = None
        self._task: Any = None
        self._iterations = 1

    @hookimpl
    def sigcore_run_start(self, run: Any) -> None:
        self._iterations = run.config.iterations
        if self.mode != "rich":
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]iteration"),
            MofNCompleteColumn(),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self._progress.start()
        self._task = self._progress.add_task(
            "reconstruct",
            total=run.total_iterations,
            status=f"{run.n_images} images, {run.gallery_size} directions, "
            f"box {run.box}, backend {run.backend}",
        )

    @hookimpl
    def sigcore_iteration_end(self, run: Any, iteration: int, state: Any) -> None:
        if self.mode == "json":
            record = {"event": "iteration", **state.to_dict()}
            sys.stdout.write(json.dumps(record) + "\n")
            sys.stdout.flush()
        elif self._progress is not None:
            status = (
                f"start {state.start + 1} α {state.significance:.2f}% "
                f"pairs {state.significant_pairs} "
                f"Δvol {state.volume_change:.3f}"
            )
            done = state.start * self._iterations + iteration + 1
            self._progress.update(self._task, completed=done, status=status)

    def close(self) -> None:
        """Stop the live display (also after an error)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _run_with_progress(data: Any, mode: str, **kwargs: Any) -> Any:
    from sigcore.api import reconstruct as run_reconstruct
    from sigcore.plugins import get_plugin_manager

    progress = _Progress(mode)
    pm = get_plugin_manager(extra=[progress])
    try:
        return run_reconstruct(data, plugin_manager=pm, **kwargs)
    finally:
        progress.close()


def _summary(result: Any, out: Path, mode: str) -> None:
    last = result.history[-1]
    if mode == "json":
        record = {
            "event": "done",
            "output_dir": str(out),
            "best_start": result.best_start,
            "agreement": result.agreements[result.best_start],
            "pixel_size": result.pixel_size,
            "box": int(result.volume.shape[0]),
        }
        sys.stdout.write(json.dumps(record) + "\n")
    elif mode == "rich":
        typer.echo(
            f"volume written to {out / 'volume.mrc'} "
            f"({result.volume.shape[0]}^3, {result.pixel_size:.3g} Å/voxel); "
            f"{last.significant_pairs} significant pairs in the last iteration",
            err=True,
        )


@app.command()
def reconstruct(
    input: Annotated[
        Path,
        typer.Argument(
            help="Class averages: MRCS stack (+ --apix), RELION STAR or "
            "_model.star, Xmipp XMD, cryoSPARC .cs.",
        ),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Run directory.")],
    sym: Annotated[
        str, typer.Option("--sym", help="Point group (Xmipp names: c1, c4, d2, i1).")
    ] = "c1",
    reference: Annotated[
        Path | None,
        typer.Option("--reference", help="Starting volume (else random start)."),
    ] = None,
    step: Annotated[
        float, typer.Option("--step", help="Gallery angular step, degrees.")
    ] = 5.0,
    min_tilt: Annotated[
        float,
        typer.Option(
            "--min-tilt",
            help="Smallest tilt of the viewing direction, degrees (0 top view, "
            "90 side view).",
        ),
    ] = 0.0,
    max_tilt: Annotated[
        float,
        typer.Option("--max-tilt", help="Largest tilt of the viewing direction."),
    ] = 180.0,
    max_shift: Annotated[
        float,
        typer.Option(
            "--max-shift",
            help="Largest shift, input pixels; -1: 10% of the box.",
        ),
    ] = -1.0,
    alpha0: Annotated[
        float, typer.Option("--alpha0", help="First significance, percent.")
    ] = 80.0,
    alpha_final: Annotated[
        float, typer.Option("--alphaF", help="Last significance, percent.")
    ] = 99.5,
    iterations: Annotated[
        int,
        typer.Option(
            "--iterations",
            help=f"Iterations ({DEFAULT_ITERATIONS}; Scipion uses 50).",
        ),
    ] = DEFAULT_ITERATIONS,
    imed: Annotated[
        bool, typer.Option("--imed/--no-imed", help="IMED weighting.")
    ] = True,
    strict_direction: Annotated[
        bool,
        typer.Option(
            "--strict-direction",
            help="Drop pairs not significant for their direction.",
        ),
    ] = False,
    neighbourhood: Annotated[
        float,
        typer.Option("--neighbourhood", help="Per-direction neighbourhood, degrees."),
    ] = 10.0,
    no_fisher: Annotated[
        bool, typer.Option("--no-fisher", help="Skip the Fisher pre-selection.")
    ] = False,
    max_resolution: Annotated[
        float | None,
        typer.Option(
            "--max-resolution",
            help="Target resolution, Å: working pixel R/2, low-pass at R.",
        ),
    ] = None,
    mask_radius: Annotated[
        float | None,
        typer.Option("--mask-radius", help="Soft mask radius, Å (default box/2)."),
    ] = None,
    keep_intermediates: Annotated[
        bool,
        typer.Option("--keep-intermediates", help="Write every iteration's volume."),
    ] = False,
    backend: Annotated[
        str,
        typer.Option("--backend", help="auto, numpy, cpu, cupy or a plugin's."),
    ] = "auto",
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of every random choice.")
    ] = None,
    starts: Annotated[
        int, typer.Option("--starts", help="Independent random starts; keep the best.")
    ] = 1,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue an interrupted run (same options)."),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Reuse a non-empty output directory.")
    ] = False,
    compat: Annotated[
        str,
        typer.Option(
            "--compat",
            help="none, or xmipp: the original's choices (no Fisher, no "
            "neighbourhood, its schedule and symmetry factor, no mirrors).",
        ),
    ] = "none",
    apix: Annotated[
        float | None,
        typer.Option("--apix", help="Pixel size, Å (overrides the file)."),
    ] = None,
    xmd: Annotated[
        bool, typer.Option("--xmd", help="Also write assignments.xmd.")
    ] = False,
    pad_to_input: Annotated[
        bool,
        typer.Option(
            "--pad-to-input",
            help="With --max-resolution, also write volume_input_box.mrc: the "
            "map Fourier-padded to the input box and pixel size.",
        ),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress display.")
    ] = False,
    json_progress: Annotated[
        bool,
        typer.Option(
            "--json-progress", help="One JSON object per iteration on stdout."
        ),
    ] = False,
    threads: Annotated[
        int | None, typer.Option("--threads", help="CPU threads for the kernels.")
    ] = None,
) -> None:
    """Build an initial 3D map from 2D class averages."""
    from sigcore.config import ReconstructionConfig

    config = ReconstructionConfig(
        symmetry=sym,
        reference=reference,
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
        fisher=not no_fisher,
        max_resolution=max_resolution,
        mask_radius=mask_radius,
        keep_intermediates=keep_intermediates,
        backend=backend,
        seed=seed,
        starts=starts,
        compat=compat,
        threads=threads,
    )
    mode = "json" if json_progress else ("quiet" if quiet else "rich")
    result = _run_with_progress(
        input,
        mode,
        output_dir=output,
        pixel_size=apix,
        config=config,
        resume=resume,
        force=force,
        write_xmd=xmd,
        pad_to_input=pad_to_input,
    )
    _summary(result, output, mode)


@app.command()
def demo(
    output: Annotated[Path, typer.Option("-o", "--output", help="Run directory.")],
    images: Annotated[
        int, typer.Option("--images", help="Number of class averages.")
    ] = 80,
    seed: Annotated[int, typer.Option("--seed", help="Seed.")] = 1,
    backend: Annotated[str, typer.Option("--backend")] = "auto",
    force: Annotated[
        bool, typer.Option("--force", help="Reuse a non-empty output directory.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Reconstruct the bundled example: a phantom simulated into class averages.

    The images are made in code (no data is shipped); at the end the map is
    aligned to the phantom (both hands) and its FSC 0.5 resolution reported.
    """
    from sigcore.demo import DEMO_CONFIG, make_demo_images
    from sigcore.validation import align_volumes, fsc, resolution_at
    from sigcore.volume import fourier_crop

    data, truth = make_demo_images(n_images=images, seed=seed)
    config = DEMO_CONFIG.replace(seed=seed, backend=backend)
    mode = "quiet" if quiet else "rich"
    result = _run_with_progress(
        data, mode, output_dir=output, config=config, force=force
    )
    _summary(result, output, mode)
    truth = fourier_crop(truth, result.volume.shape[0])
    aligned = align_volumes(result.volume, truth)
    resolution = resolution_at(
        fsc(aligned.volume, truth, pixel_size=result.pixel_size), 0.5
    )
    hand = "flipped" if aligned.flipped else "original"
    typer.echo(
        f"against the phantom: FSC 0.5 at {resolution:.1f} Å "
        f"(working pixel {result.pixel_size:.2f} Å), {hand} hand, "
        f"correlation {aligned.correlation:.3f}",
        err=True,
    )
