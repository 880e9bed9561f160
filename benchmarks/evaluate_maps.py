"""Does sigcore find the right fold? Simulated class averages of real maps.

For every map in ``../shared/data/maps`` (and the bundled phantom) and every
seed: simulate ``-n`` class averages at SNR ``--snr`` with
:func:`sigcore.simulate.simulate`, reconstruct from a random start, bring the
truth to the working box and pixel size, align the result to it over both
hands (:func:`sigcore.validation.align_volumes`) and report the FSC 0.5
resolution, the hand, the run time and whether the fold was found (FSC 0.5
better than 4 x the working pixel size), next to the FSC 0.5 of the same
images reconstructed with their true poses (what the data allow). Maps with a
known symmetry are also
run with it. Results are printed as a table and, with ``--json PATH``, saved.

Usage::

    python benchmarks/evaluate_maps.py --seeds 0 1 2 3 4 --json eval.json
    python benchmarks/evaluate_maps.py --defaults --seeds 0 1   # default settings
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

MAPS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "maps"

# name -> (file, pixel size to simulate at in Å, true symmetry)
MAPS: dict[str, tuple[str | None, float, str]] = {
    "phantom": (None, 2.0, "c1"),
    "ribosome70S": ("ribosome70S_aspire_65.mrc", 3.0, "c1"),
    "trpv1": ("trpv1_c4_cryojax_48.mrc", 4.88, "c4"),
    "ribosome50S_D": ("ribosome50S_empiar10076_classD_32.mrc", 6.0, "c1"),
}


def load(name: str) -> tuple[np.ndarray, float, str]:
    """Return (normalised map, pixel size, true symmetry)."""
    filename, apix, sym = MAPS[name]
    if filename is None:
        from sigcore.phantom import protein_phantom

        return protein_phantom(64, seed=0), apix, sym
    from sigcore.io.mrc import read_volume

    vol, _ = read_volume(MAPS_DIR / filename)
    vol = (vol - vol.mean()) / vol.std()
    return vol.astype(np.float32), apix, sym


def evaluate(
    name: str, seed: int, *, symmetry: str, args: argparse.Namespace
) -> dict[str, Any]:
    """Simulate, reconstruct, align to the truth; return one table row."""
    import sigcore
    from sigcore.simulate import simulate
    from sigcore.validation import align_volumes, fsc, resolution_at
    from sigcore.volume import resample

    truth, apix, _ = load(name)
    images, _ = simulate(truth, n=args.n, snr=args.snr, pixel_size=apix, seed=seed)
    options: dict[str, Any] = {}
    if not args.defaults:
        options = {
            "step": args.step,
            "iterations": args.iterations,
            "max_resolution": max(args.resolution_px * apix, args.max_resolution or 0),
            "neighbourhood": max(10.0, 2 * args.step),
        }
    t0 = time.perf_counter()
    result = sigcore.reconstruct(
        images,
        pixel_size=apix,
        symmetry=symmetry,
        seed=seed,
        backend=args.backend,
        plots=False,
        **options,
    )
    seconds = time.perf_counter() - t0
    work = result.pixel_size
    box = result.volume.shape[0]
    truth_w = resample(truth, apix, new_pixel_size=work, box=box)
    aligned = align_volumes(result.volume, truth_w)
    curve = fsc(aligned.volume, truth_w, pixel_size=work)
    res = float(resolution_at(curve, 0.5))
    oracle = oracle_resolution(images, truth_w, work, symmetry, args.backend)
    return {
        "map": name,
        "symmetry": symmetry,
        "seed": seed,
        "n_images": args.n,
        "snr": args.snr,
        "working_box": box,
        "working_pixel_A": work,
        "fsc05_A": res,
        "found": bool(res < 4 * work),
        "oracle_fsc05_A": oracle,
        "hand": "flipped" if aligned.flipped else "original",
        "correlation": float(aligned.correlation),
        "seconds": seconds,
    }


def oracle_resolution(
    images: Any, truth_w: np.ndarray, work: float, symmetry: str, backend: str
) -> float:
    """FSC 0.5 (Å) of a reconstruction from the *true* poses (the data's limit).

    The same images, reconstructed with the simulation's poses at the working
    box and pixel size, masked as the scheduler masks; no alignment needed.
    It tells how much of a result's resolution the noise and the number of
    views allow, whatever the angular assignment.
    """
    from sigcore.imageset import PoseTable
    from sigcore.plugins import create_backend
    from sigcore.scheduler import MASK_EDGE
    from sigcore.symmetry import get_symmetry
    from sigcore.validation import fsc, resolution_at
    from sigcore.volume import apply_mask, fourier_crop

    box = truth_w.shape[0]
    x = np.asarray(images.images, dtype=np.float32)
    n = x.shape[-1]
    if box < n:
        x = np.asarray(fourier_crop(x, box, ndim=2), dtype=np.float32)
    poses = images.poses
    scaled = PoseTable(
        image_index=poses.image_index,
        rotations=poses.rotations,
        shifts=poses.shifts * box / n,
        weights=poses.weights,
    )
    engine = create_backend(backend)
    volume = engine.asnumpy(
        engine.reconstruct(
            engine.asarray(x), scaled, symmetry_ops=get_symmetry(symmetry).operators
        )
    )
    volume = apply_mask(volume, box / 2.0 - MASK_EDGE, edge=MASK_EDGE)
    return float(resolution_at(fsc(volume, truth_w, pixel_size=work), 0.5))


def main(argv: list[str] | None = None) -> int:
    """Run the table; print one line per run and a summary per map."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--maps", nargs="*", default=list(MAPS), choices=list(MAPS))
    p.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("-n", "--n", type=int, default=200)
    p.add_argument("--snr", type=float, default=3.0)
    p.add_argument("--step", type=float, default=10.0)
    p.add_argument("--iterations", type=int, default=15)
    p.add_argument(
        "--resolution-px",
        type=float,
        default=6.0,
        help="target resolution in input pixels (working pixel = half of it)",
    )
    p.add_argument("--max-resolution", type=float, default=None)
    p.add_argument(
        "--defaults",
        action="store_true",
        help="sigcore's default settings (step, iterations, no target "
        "resolution); ignores --step, --iterations and the resolution options",
    )
    p.add_argument("--backend", default="auto")
    p.add_argument("--no-true-symmetry", action="store_true")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    rows = []
    for name in args.maps:
        if MAPS[name][0] is not None and not (MAPS_DIR / MAPS[name][0]).exists():
            print(f"skip {name}: {MAPS_DIR / MAPS[name][0]} not found")
            continue
        syms = ["c1"]
        if MAPS[name][2] != "c1" and not args.no_true_symmetry:
            syms.append(MAPS[name][2])
        for sym in syms:
            for seed in args.seeds:
                row = evaluate(name, seed, symmetry=sym, args=args)
                rows.append(row)
                print(
                    f"{row['map']:>14} {sym:>3} seed {seed}: FSC0.5 "
                    f"{row['fsc05_A']:6.1f} Å (4x px {4 * row['working_pixel_A']:.1f},"
                    f" true poses {row['oracle_fsc05_A']:.1f})"
                    f" found={row['found']!s:5} hand={row['hand']:8} "
                    f"{row['seconds']:6.1f} s",
                    flush=True,
                )
                if args.json:
                    Path(args.json).write_text(json.dumps(rows, indent=1))
    for name in dict.fromkeys(r["map"] for r in rows):
        for sym in dict.fromkeys(r["symmetry"] for r in rows if r["map"] == name):
            sel = [r for r in rows if r["map"] == name and r["symmetry"] == sym]
            found = sum(r["found"] for r in sel)
            print(
                f"{name} {sym}: found {found}/{len(sel)}, median FSC0.5 "
                f"{np.median([r['fsc05_A'] for r in sel]):.1f} Å (true poses "
                f"{np.median([r['oracle_fsc05_A'] for r in sel]):.1f} Å), median time "
                f"{np.median([r['seconds'] for r in sel]):.0f} s"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
