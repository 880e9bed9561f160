"""Time the alignment search of the ``cpu`` backend against a GEMM calibration.

Standard case (issue 6): N = 300 images of 64², G = 1650 references, shifts
+-6 px, no mirror, IMED on; at ``max_frequency`` 0.5 and 0.25. Prints the
wall time, the flops of the formulation (:func:`sigcore.backends.polar.search_flops`)
and the rate relative to a complex64 (4096x256) @ (256x2048) product timed in
the same run.

    python benchmarks/bench_search.py [--n-images 300] [--refs 1650] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

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


def main() -> None:
    from sigcore.alignment import SearchParams
    from sigcore.backends.cpu import CpuBackend
    from sigcore.backends.polar import search_flops
    from sigcore.metrics.imed import Imed

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=300)
    parser.add_argument("--refs", type=int, default=1650)
    parser.add_argument("--box", type=int, default=64)
    parser.add_argument("--max-shift", type=float, default=6.0)
    parser.add_argument("--frequencies", type=float, nargs="+", default=[0.5, 0.25])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rng = np.random.default_rng(1)
    images = smooth_stack(args.n_images, args.box, rng)
    refs = smooth_stack(args.refs, args.box, rng)
    backend = CpuBackend.create(threads=args.threads)
    cal = calibration()
    rows = []
    for fmax in args.frequencies:
        params = SearchParams(max_shift=args.max_shift, max_frequency=fmax)
        backend.search(images[:2], refs[:8], params, [Imed()])  # warm-up
        t = _timed(lambda p=params: backend.search(images, refs, p, [Imed()]))
        flops = search_flops(args.n_images, args.refs, args.box, params)
        rows.append(
            {
                "max_frequency": fmax,
                "seconds": t,
                "calibration_units": t / cal["seconds"],
                "gflop": flops["total"] / 1e9,
                "gemm_gflop": flops["gemm"] / 1e9,
                "gflops": flops["total"] / t / 1e9,
                "fraction_of_calibration_rate": flops["total"]
                / t
                / 1e9
                / cal["gflops"],
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
        print(
            f"fmax {r['max_frequency']:.2f}: {r['seconds']:.2f} s "
            f"({r['calibration_units']:.0f} cal units), {r['gflop']:.0f} GFLOP "
            f"(GEMM {r['gemm_gflop']:.0f}), {r['gflops']:.1f} GFLOP/s = "
            f"{100 * r['fraction_of_calibration_rate']:.0f}% of calibration"
        )


if __name__ == "__main__":
    main()
