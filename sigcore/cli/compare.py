"""``sigcore fsc`` and ``sigcore simulate``: compare maps, make test data.

Thin wrappers over :mod:`sigcore.validation` (FSC, two-hand global alignment)
and :mod:`sigcore.simulate` (class-average-like images with true poses).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from sigcore.cli import app
from sigcore.errors import ConfigError

__all__ = ["fsc", "simulate"]


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _load_pair(
    a: Path, b: Path, apix: float | None
) -> tuple[np.ndarray, np.ndarray, float | None, str | None]:
    """Read two maps; bring B to A's pixel size and box when they differ."""
    from sigcore.io.mrc import read_volume
    from sigcore.volume import resample

    va, pa = read_volume(a)
    vb, pb = read_volume(b)
    pa = apix or pa
    pb = apix or pb
    if va.shape == vb.shape and (pa is None or pb is None or np.isclose(pa, pb)):
        return va, vb, pa or pb, None
    if pa is None or pb is None:
        raise ConfigError(
            f"{b}: box {vb.shape[0]} differs from {a} (box {va.shape[0]}) and a "
            "voxel size is missing; pass --apix or resample the maps"
        )
    vb = resample(vb, pb, new_pixel_size=pa, box=va.shape[0])
    note = f"{b.name} resampled from {pb:.4g} Å/voxel to {pa:.4g}, box {va.shape[0]}"
    return va, vb, pa, note


@app.command()
def fsc(
    map_a: Annotated[
        Path, typer.Argument(help="Map to judge (e.g. an initial model).")
    ],
    map_b: Annotated[Path, typer.Argument(help="Reference map (e.g. the truth).")],
    align: Annotated[
        bool,
        typer.Option(
            "--align",
            help="First align A onto B (rotation + translation, both hands).",
        ),
    ] = False,
    apix: Annotated[
        float | None,
        typer.Option("--apix", help="Voxel size, Å (overrides both headers)."),
    ] = None,
    aligned_out: Annotated[
        Path | None,
        typer.Option("--aligned-out", help="With --align: write the aligned A here."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout.")
    ] = False,
) -> None:
    """Fourier shell correlation of two maps; resolution at FSC 0.5 and 0.143.

    Use 0.5 against a noise-free reference (a known structure, a simulation's
    truth) and 0.143 only for genuine half maps. With --align, A is first
    rotated and translated onto B by a global search over both hands (A and
    its mirror image), and the winning hand is reported: an initial model
    has no absolute hand.
    """
    from sigcore.validation import align_volumes, resolution_at
    from sigcore.validation import fsc as fsc_curve

    va, vb, pixel, note = _load_pair(map_a, map_b, apix)
    info: dict[str, Any] = {"a": str(map_a), "b": str(map_b), "pixel_size": pixel}
    if note:
        info["note"] = note
    if align:
        from sigcore.geometry import matrix_to_euler

        t0 = time.perf_counter()
        result = align_volumes(va, vb)
        va = result.volume
        info["alignment"] = {
            "hand": "flipped" if result.flipped else "original",
            "correlation": result.correlation,
            "hand_correlations": result.hand_correlations,
            "rotation": result.rotation.tolist(),
            "euler": matrix_to_euler(result.rotation).tolist(),
            "shift_voxels": result.shift.tolist(),
            "seconds": time.perf_counter() - t0,
        }
        if aligned_out is not None:
            from sigcore.io.mrc import write_volume

            write_volume(aligned_out, va, voxel_size=pixel)
            info["alignment"]["written"] = str(aligned_out)
    curve = fsc_curve(va, vb, pixel_size=pixel)
    info["resolution_0.5"] = _finite(resolution_at(curve, 0.5))
    info["resolution_0.143"] = _finite(resolution_at(curve, 0.143))
    info["unit"] = "A" if pixel else "px"
    info["curve"] = [
        {"shell": i, "frequency": float(f), "resolution": _finite(r), "fsc": float(c)}
        for i, (f, r, c) in enumerate(
            zip(curve.frequencies, curve.resolution, curve.fsc, strict=True)
        )
    ]
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    _print_fsc(info)


def _fmt(value: float | None, unit: str) -> str:
    return "not reached" if value is None else f"{value:.2f} {unit}"


def _print_fsc(info: dict[str, Any]) -> None:
    unit = "Å" if info["unit"] == "A" else "px"
    if "note" in info:
        typer.echo(f"note: {info['note']}")
    if "alignment" in info:
        al = info["alignment"]
        others = ", ".join(f"{h} {c:.3f}" for h, c in al["hand_correlations"].items())
        rot, tilt, psi = al["euler"]
        sx, sy, sz = al["shift_voxels"]
        typer.echo(
            f"alignment: {al['hand']} hand wins (correlation {al['correlation']:.3f}; "
            f"search best per hand: {others})"
        )
        typer.echo(
            f"  rotation rot {rot:.2f} tilt {tilt:.2f} psi {psi:.2f} deg, "
            f"shift ({sx:.2f}, {sy:.2f}, {sz:.2f}) voxels, {al['seconds']:.1f} s"
        )
    typer.echo(f"{'shell':>5} {'1/' + unit:>10} {'res ' + unit:>9} {'FSC':>7}")
    for row in info["curve"][1:]:
        res = row["resolution"]
        typer.echo(
            f"{row['shell']:>5} {row['frequency']:>10.4f} "
            f"{res if res is not None else float('inf'):>9.2f} {row['fsc']:>7.3f}"
        )
    typer.echo(f"FSC 0.5:   {_fmt(info['resolution_0.5'], unit)}")
    typer.echo(f"FSC 0.143: {_fmt(info['resolution_0.143'], unit)}")


@app.command()
def simulate(
    volume_map: Annotated[
        str,
        typer.Argument(
            metavar="MAP",
            help="An MRC map, or the word 'phantom' for the built-in chiral phantom.",
        ),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output directory.")],
    n: Annotated[int, typer.Option("-n", help="Number of images.")] = 200,
    snr: Annotated[
        float,
        typer.Option("--snr", help="Signal variance / noise variance (whole image)."),
    ] = 3.0,
    box: Annotated[
        int | None,
        typer.Option("--box", help="Image box; the map is Fourier-resampled to it."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every choice.")] = 0,
    apix: Annotated[
        float | None,
        typer.Option("--apix", help="Voxel size of MAP, Å (phantom: 2.0)."),
    ] = None,
    max_shift: Annotated[
        float | None,
        typer.Option("--max-shift", help="Largest shift, pixels (default 5% of box)."),
    ] = None,
    lowpass: Annotated[
        float | None,
        typer.Option("--lowpass", help="Low-pass envelope of the images, Å."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite existing outputs.")
    ] = False,
) -> None:
    """Make class-average-like test data with known poses from any map.

    Writes DIR/classes.mrcs, DIR/classes.star (RELION 3.1, true poses) and
    DIR/truth.mrc. Orientations are uniform on SO(3) (in-plane angle
    included), shifts uniform in a disk; the same seed gives the same files.
    """
    from sigcore.simulate import simulate as run_simulation
    from sigcore.simulate import write_simulation

    if volume_map == "phantom":
        from sigcore.phantom import protein_phantom

        volume = protein_phantom(box or 64, seed=seed)
        pixel = apix or 2.0
    else:
        from sigcore.io.mrc import read_volume

        volume, voxel = read_volume(Path(volume_map))
        pixel = apix or voxel
        if pixel is None:
            raise ConfigError(f"{volume_map}: the map has no voxel size; pass --apix")
    data, truth = run_simulation(
        volume,
        n=n,
        snr=snr,
        pixel_size=pixel,
        box=box,
        seed=seed,
        max_shift=max_shift,
        lowpass_A=lowpass,
    )
    paths = write_simulation(output, data, truth, overwrite=force)
    typer.echo(
        f"wrote {n} images ({data.box}^2, {data.pixel_size:.4g} Å/px, SNR {snr:g}, "
        f"seed {seed}) to {paths['stack']}, true poses to {paths['star']}, "
        f"truth to {paths['truth']}"
    )
