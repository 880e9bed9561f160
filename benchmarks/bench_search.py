"""Time the alignment search of the ``cpu`` backend against a GEMM calibration.

Standard case (issue 6): N = 300 images of 64², G = 1650 references, shifts
+-6 px, no mirror, IMED on; at ``max_frequency`` 0.5 and 0.25. Prints the
wall time, the flops the pruned search performed
(:func:`sigcore.backends.pruned_search.pruned_flops`, with the measured count
of completed columns) and their rate relative to a complex64 (4096x256) @
(256x2048) product timed in the same run, the share of (image, shift,
reference) rows completed and transformed, and the flops of the exhaustive
formulation (:func:`sigcore.backends.polar.search_flops`) for comparison.

    python benchmarks/bench_search.py [--n-images 300] [--refs 1650] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np


def calibration(repeats: int = 5) -> dict[str, float]:
    """Best time and rate of a complex64 (4096x256) @ (256x2048) product."""
    rng = np.random.default_rng(0)
    a = (
        rng.standard_normal((4096, 256)) + 1j * rng.standard_normal((4096, 256))
    ).astype(np.complex64)
    b = (
        rng.standard_normal((256, 2048)) + 1j * rng.standard_normal((256, 2048))
    ).astype(np.complex64)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    flops = 8.0 * 4096 * 256 * 2048
    return {"seconds": best, "gflops": flops / best / 1e9}


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def smooth_stack(count: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Random low-passed images (stand-ins for class averages / projections)."""
    k = np.fft.fftfreq(n)
    filt = np.exp(-(k[None] ** 2 + k[:, None] ** 2) * 60.0)
    noise = rng.standard_normal((count, n, n))
    return np.fft.ifft2(np.fft.fft2(noise) * filt).real.astype(np.float32)


def phantom_case(count: int, n_refs: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Class averages (SNR 3) of the bundled phantom and projections of its
    20 Å low-pass at random orientations (what an iteration searches)."""
    from sigcore.backends.projector import project
    from sigcore.geometry import random_rotations
    from sigcore.phantom import protein_phantom
    from sigcore.preprocess import prepare_images
    from sigcore.simulate import simulate
    from sigcore.volume import lowpass

    truth = protein_phantom(n, seed=0)
    sim, _ = simulate(truth, n=count, snr=3.0, pixel_size=2.0, seed=0)
    images = prepare_images(sim.images, pixel_size=2.0).images
    rotations = random_rotations(n_refs, np.random.default_rng(2))
    refs = project(np.asarray(lowpass(truth, 20.0, 2.0)), rotations, xp=np)
    return np.asarray(images, np.float32), np.asarray(refs, np.float32)


def main() -> None:
    from sigcore.alignment import SearchParams
    from sigcore.backends.cpu import CpuBackend
    from sigcore.backends.polar import search_flops
    from sigcore.backends.pruned_search import pruned_flops
    from sigcore.backends.search_reference import shift_grid
    from sigcore.metrics.imed import Imed

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=300)
    parser.add_argument("--refs", type=int, default=1650)
    parser.add_argument("--box", type=int, default=64)
    parser.add_argument("--max-shift", type=float, default=6.0)
    parser.add_argument("--frequencies", type=float, nargs="+", default=[0.5, 0.25])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--images",
        choices=["phantom", "noise"],
        default="phantom",
        help="class averages of the phantom, or smooth noise (no rotational "
        "average to prune with: the worst case of the pruned psi max)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    if args.images == "noise":
        rng = np.random.default_rng(1)
        images = smooth_stack(args.n_images, args.box, rng)
        refs = smooth_stack(args.refs, args.box, rng)
    else:
        images, refs = phantom_case(args.n_images, args.refs, args.box)
    backend = CpuBackend.create(threads=args.threads)
    cal = calibration()
    rows = []
    for fmax in args.frequencies:
        params = SearchParams(max_shift=args.max_shift, max_frequency=fmax)
        backend.search(images[:2], refs[:8], params, [Imed()])  # warm-up
        with _count_transforms() as transformed:
            t = _timed(lambda p=params: backend.search(images, refs, p, [Imed()]))
        flops = search_flops(args.n_images, args.refs, args.box, params)
        n_rows = args.n_images * len(shift_grid(params))
        done = pruned_flops(n_rows, args.refs, args.box, params, *transformed)
        rows.append(
            {
                "max_frequency": fmax,
                "seconds": t,
                "calibration_units": t / cal["seconds"],
                "performed_gflop": {k: v / 1e9 for k, v in done.items()},
                "performed_gflops": done["total"] / t / 1e9,
                "fraction_of_calibration_rate": done["total"] / t / 1e9 / cal["gflops"],
                "exhaustive_gflop": flops["total"] / 1e9,
                "exhaustive_equivalent_gflops": flops["total"] / t / 1e9,
                "transformed_fraction": transformed[0] / (n_rows * args.refs),
            }
        )
    report = {
        "case": vars(args),
        "calibration": cal,
        "searches": rows,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"calibration GEMM c64 4096x256x2048: {cal['seconds'] * 1e3:.1f} ms, "
        f"{cal['gflops']:.1f} GFLOP/s"
    )
    for r in rows:
        g = r["performed_gflop"]
        print(
            f"fmax {r['max_frequency']:.2f}: {r['seconds']:.2f} s "
            f"({r['calibration_units']:.0f} cal units); performed "
            f"{g['total']:.0f} GFLOP (dense {g['dense']:.0f}, tail {g['tail']:.0f}, "
            f"completion {g['completion']:.1f}, irfft {g['irfft']:.1f}, "
            f"third tier {g['third_tier']:.1f}) at "
            f"{r['performed_gflops']:.1f} GFLOP/s = "
            f"{100 * r['fraction_of_calibration_rate']:.0f}% of calibration; "
            f"completed and transformed "
            f"{100 * r['transformed_fraction']:.1f}% of the (image, shift, "
            f"reference) rows; the exhaustive formulation is "
            f"{r['exhaustive_gflop']:.0f} GFLOP "
            f"({r['exhaustive_equivalent_gflops']:.0f} GFLOP/s equivalent)"
        )


@contextlib.contextmanager
def _count_transforms() -> Iterator[list[int]]:
    """Count the columns the ``cpu`` backend completed and transformed.

    Yields ``[completed, third_tier]``: chunks searched exhaustively (the
    pruning's fallback on noise-like images) count all their columns as
    completed; ``third_tier`` counts the columns the third-tier bound
    examined.
    """
    from sigcore.backends import _numba_kernels
    from sigcore.backends.pruned_search import PrunedRingSearch

    original = _numba_kernels._complete_max
    third = _numba_kernels._third_tier
    exhaustive = PrunedRingSearch._exhaustive
    count = [0, 0]
    lock = threading.Lock()

    def counting_third(*args: Any) -> Any:
        with lock:
            count[1] += len(args[-4])  # the rows argument
        return third(*args)

    def counting(
        args: Any, rows: Any, cols: Any, j0: int, n_psi: int, irfft: Any
    ) -> Any:
        with lock:
            count[0] += len(rows)
        return original(args, rows, cols, j0, n_psi, irfft)

    def counting_exhaustive(
        self: Any, state: Any, j0: int, j1: int, ni: int, rpi: int
    ) -> Any:
        with lock:
            count[0] += state.low.shape[1] * (j1 - j0)
        return exhaustive(self, state, j0, j1, ni, rpi)

    _numba_kernels._complete_max = counting
    _numba_kernels._third_tier = counting_third
    PrunedRingSearch._exhaustive = counting_exhaustive
    try:
        yield count
    finally:
        _numba_kernels._complete_max = original
        _numba_kernels._third_tier = third
        PrunedRingSearch._exhaustive = exhaustive


if __name__ == "__main__":
    main()
