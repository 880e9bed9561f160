"""Time one full sigcore iteration per backend, against a GEMM calibration.

Standard case (issue 6): N = 300 class-average-like images of 64² simulated
from the bundled phantom, a 5° c1 gallery (G about 1650), shifts ±6 px, IMED
on. One warm-up iteration (numba compilation, cuFFT plans) is run first and
not timed. Every time is also printed in *calibration units*: the time of one
complex64 (4096 x 256) @ (256 x 2048) matrix product measured in the same run
on the same device, so figures from shared, noisy machines can be compared.

The timed iteration is the first of the default schedule: its volume is
projected and reconstructed within the search band. ``--last-iteration``
times the last one instead, which reconstructs the full band. The timed
iterations search the warm-up's images again, as a run's iterations after its
first do (the ``cpu`` backend keeps the images' prepared rows between them);
``--new-images`` makes the backend forget them first, as in a run's first
iteration. Two search
rates are printed: the flops the search performed (``cpu``: the pruned
formulation, :func:`sigcore.backends.pruned_search.pruned_flops` with the
measured count of completed columns; ``cupy``: the exhaustive one) and the
*exhaustive-equivalent* rate, the flops of the exhaustive formulation
(:func:`sigcore.backends.polar.search_flops`) over the same time.

Usage::

    python benchmarks/bench_iteration.py                 # cpu backend, standard case
    python benchmarks/bench_iteration.py --backend numpy --n 60
    python benchmarks/bench_iteration.py --backend cupy --n 1200
    python benchmarks/bench_iteration.py --scaling --plot scaling.png
    python benchmarks/bench_iteration.py --json
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from typing import Any

import numpy as np
from bench_search import _count_transforms

CAL_SHAPE = (4096, 256, 2048)


def calibration_gemm(backend: Any, repeats: int = 5) -> tuple[float, float]:
    """Best-of time of the complex64 calibration product and its GFLOP/s."""
    xp = backend.xp
    m, k, n = CAL_SHAPE
    rng = np.random.default_rng(0)
    a = backend.asarray(
        (rng.standard_normal((m, k)) + 1j * rng.standard_normal((m, k))).astype(
            np.complex64
        )
    )
    b = backend.asarray(
        (rng.standard_normal((k, n)) + 1j * rng.standard_normal((k, n))).astype(
            np.complex64
        )
    )
    xp.matmul(a, b)
    backend.synchronize()
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        xp.matmul(a, b)
        backend.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best, 8.0 * m * k * n / best / 1e9


def _case(n_images: int, box: int, seed: int = 0) -> Any:
    from sigcore.phantom import protein_phantom
    from sigcore.preprocess import prepare_images
    from sigcore.simulate import simulate

    truth = protein_phantom(box, seed=seed)
    images, _ = simulate(truth, n=n_images, snr=3.0, pixel_size=2.0, seed=seed)
    return prepare_images(images.images, pixel_size=2.0), truth


def _reset_peak_rss() -> None:
    """Restart the process's peak-RSS count (Linux: ``clear_refs`` 5), so that
    each case reports its own peak rather than the largest case's so far."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:  # not Linux: _peak_rss_mb falls back to the process's peak
        pass


def _peak_rss_mb() -> float:
    """Peak resident memory since the last :func:`_reset_peak_rss`, MB."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_device_bytes(backend: Any) -> int | None:
    if backend.name != "cupy":
        return None
    import cupy

    return int(cupy.get_default_memory_pool().total_bytes())


def time_iteration(
    backend_name: str,
    *,
    n_images: int,
    box: int,
    step: float,
    max_shift: float,
    threads: int | None = None,
    repeats: int = 1,
    warmup: bool = True,
    last: bool = False,
    new_images: bool = False,
    metrics: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Run one warm-up and ``repeats`` timed iterations; return the best split.

    ``last`` times the schedule's last iteration (alpha 99.5%, full-band
    reconstruction) instead of its first (80%, band-limited volumes).
    ``new_images`` drops what the backend keeps of the images before each
    timed iteration (``forget_images``), as if it had not searched them.
    ``metrics`` names registered metrics scored besides IMED (e.g.
    ``correlation``, which has no Fourier form: real-space pairs).
    """
    from sigcore import scheduler
    from sigcore.config import ReconstructionConfig
    from sigcore.plugins import create_backend, default_registry

    options = {"threads": threads} if threads else {}
    backend = create_backend(backend_name, **options)
    prepared, truth = _case(n_images, box)
    config = ReconstructionConfig(
        step=step, max_shift=max_shift, backend=backend_name, seed=0
    )
    registry = default_registry()
    scored = [registry.metrics[name]() for name in ("imed", *metrics)]
    loop = scheduler._Loop(prepared, config, backend, scored)
    # A smooth start close to what iteration 0 sees: the low-passed truth.
    from sigcore.volume import lowpass

    volume = np.asarray(lowpass(truth, 20.0, 2.0), dtype=np.float32)
    t = config.iterations - 1 if last else 0
    if warmup:  # compilation, FFT plans, caches
        loop.iterate(volume, 0, t)
    best: dict[str, float] | None = None
    for _ in range(repeats):
        if new_images and hasattr(backend, "forget_images"):
            backend.forget_images()
        with _count_transforms() as completed:
            t0 = time.perf_counter()
            _, _, stats = loop.iterate(volume, 0, t)
            total = time.perf_counter() - t0
        if best is None or total < best["total"]:
            best = dict(stats.timings, total=total)
            pairs = stats.significant_pairs
            columns = list(completed)
    assert best is not None
    flops = exhaustive = None
    if backend_name in {"cpu", "cupy"}:
        from sigcore.backends.polar import search_flops
        from sigcore.backends.pruned_search import pruned_flops

        exhaustive = float(
            search_flops(n_images, len(loop.gallery), box, loop.params)["total"]
        )
        flops = exhaustive
        if backend_name == "cpu":
            rows = n_images * int((2 * max_shift + 1) ** 2)
            flops = pruned_flops(rows, len(loop.gallery), box, loop.params, *columns)[
                "total"
            ]
    return {
        "backend": backend_name,
        "n_images": n_images,
        "box": box,
        "step": step,
        "gallery": len(loop.gallery),
        "shifts": int((2 * max_shift + 1) ** 2),
        "new_images": new_images,
        "metrics": ["imed", *metrics],
        "significant_pairs": int(pairs),
        "seconds": best,
        "search_flops": flops,
        "search_gflops": None if flops is None else flops / best["search"] / 1e9,
        "exhaustive_equivalent_gflops": (
            None if exhaustive is None else exhaustive / best["search"] / 1e9
        ),
        "peak_rss_mb": _peak_rss_mb(),
        "peak_device_mb": (
            None if (b := _peak_device_bytes(backend)) is None else b / 2**20
        ),
        "_backend": backend,
    }


def _report(row: dict[str, Any], cal: float, cal_gflops: float) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if not k.startswith("_")}
    out["calibration_units"] = {k: v / cal for k, v in row["seconds"].items()}
    if row["search_gflops"] is not None:
        out["search_rate_vs_gemm"] = row["search_gflops"] / cal_gflops
    return out


def _print_row(r: dict[str, Any]) -> None:
    s = r["seconds"]
    u = r["calibration_units"]
    print(
        f"{r['backend']:>6} N={r['n_images']:<5d} box={r['box']:<4d} "
        f"step={r['step']:<4g} G={r['gallery']:<5d} | total {s['total']:7.3f} s "
        f"({u['total']:7.1f} cal) | project {s['project']:.3f} search "
        f"{s['search']:.3f} significance {s['significance']:.3f} reconstruct "
        f"{s['reconstruct']:.3f} post {s['postprocess']:.3f} | "
        + (
            f"search {r['search_gflops']:.1f} GFLOP/s performed "
            f"({100 * r['search_rate_vs_gemm']:.0f}% of calibration), "
            f"{r['exhaustive_equivalent_gflops']:.0f} exhaustive-equivalent | "
            if r.get("search_gflops")
            else ""
        )
        + f"RSS {r['peak_rss_mb']:.0f} MB"
        + (
            f", device {r['peak_device_mb']:.0f} MB"
            if r["peak_device_mb"] is not None
            else ""
        ),
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print a table (and JSON with ``--json``)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", default="cpu")
    p.add_argument("--n", type=int, default=300, help="number of images")
    p.add_argument("--box", type=int, default=64)
    p.add_argument("--step", type=float, default=5.0)
    p.add_argument("--max-shift", type=float, default=6.0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument(
        "--no-warmup",
        action="store_true",
        help="skip the untimed first iteration (the cpu backend compiles its "
        "kernels when created; GPU runs need the warm-up for cuFFT plans)",
    )
    p.add_argument(
        "--reference-n",
        type=int,
        default=0,
        help="also time the numpy reference backend at this N (scaled to --n)",
    )
    p.add_argument(
        "--last-iteration",
        action="store_true",
        help="time the schedule's last iteration (full-band reconstruction) "
        "instead of the first",
    )
    p.add_argument(
        "--new-images",
        action="store_true",
        help="time searches of images the backend has not kept (a run's first "
        "iteration) instead of a later iteration's",
    )
    p.add_argument(
        "--metric",
        action="append",
        default=[],
        help="also score this registered metric (repeatable; e.g. correlation, "
        "which is scored on real-space aligned pairs)",
    )
    p.add_argument("--scaling", action="store_true", help="N, step and box sweeps")
    p.add_argument("--plot", default=None, help="log-log plot of the sweeps (PNG)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    from sigcore.plugins import create_backend

    calib_backend = create_backend(args.backend if args.backend != "numpy" else "cpu")
    cal, cal_gflops = calibration_gemm(calib_backend)
    print(
        f"calibration: complex64 {CAL_SHAPE[0]}x{CAL_SHAPE[1]} @ "
        f"{CAL_SHAPE[1]}x{CAL_SHAPE[2]} on {args.backend}: {cal * 1e3:.2f} ms "
        f"({cal_gflops:.1f} GFLOP/s)",
        flush=True,
    )
    common = {
        "max_shift": args.max_shift,
        "threads": args.threads,
        "metrics": tuple(args.metric),
    }
    rows = []
    cases = [(args.n, args.box, args.step)]
    if args.scaling:
        cases += [(n, args.box, args.step) for n in (100, 1000, 3000) if n != args.n]
        cases += [(args.n, args.box, s) for s in (10.0, 3.0) if s != args.step]
        cases += [(args.n, b, args.step) for b in (32, 128) if b != args.box]
    for n, box, step in cases:
        row = None  # the previous case's backend (and what it keeps) goes first
        _reset_peak_rss()
        row = time_iteration(
            args.backend,
            n_images=n,
            box=box,
            step=step,
            repeats=args.repeats,
            warmup=not args.no_warmup,
            last=args.last_iteration,
            new_images=args.new_images,
            **common,
        )
        rows.append(_report(row, cal, cal_gflops))
        _print_row(rows[-1])
    if args.reference_n:
        ref = time_iteration(
            "numpy",
            n_images=args.reference_n,
            box=args.box,
            step=args.step,
            repeats=1,
            **common,
        )
        ref_report = _report(ref, cal, cal_gflops)
        ref_report["scaled_total_at_n"] = (
            ref["seconds"]["total"] * args.n / args.reference_n
        )
        rows.append(ref_report)
        _print_row(ref_report)
        print(
            f"numpy reference scaled to N={args.n}: "
            f"{ref_report['scaled_total_at_n']:.1f} s "
            f"(x{ref_report['scaled_total_at_n'] / rows[0]['seconds']['total']:.0f}"
            f" the {args.backend} backend)"
        )
    if args.plot and args.scaling:
        _plot(rows, args, args.plot)
    if args.json:
        json.dump(
            {
                "calibration_seconds": cal,
                "calibration_gflops": cal_gflops,
                "rows": rows,
            },
            sys.stdout,
            indent=2,
        )
        print()
    return 0


def _plot(rows: list[dict[str, Any]], args: argparse.Namespace, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    sweeps = (
        (
            "n_images",
            "N images",
            lambda r: r["box"] == args.box and r["step"] == args.step,
        ),
        (
            "gallery",
            "G directions",
            lambda r: r["box"] == args.box and r["n_images"] == args.n,
        ),
        (
            "box",
            "box (px)",
            lambda r: r["n_images"] == args.n and r["step"] == args.step,
        ),
    )
    for ax, (key, label, keep) in zip(axes, sweeps, strict=True):
        pts = sorted(
            (r[key], r["seconds"]["total"])
            for r in rows
            if r["backend"] == args.backend and keep(r)
        )
        if pts:
            x, y = zip(*pts, strict=True)
            ax.loglog(x, y, "o-")
            # Label the measured points only (log minor labels overlap).
            ax.set_xticks(x, [str(v) for v in x])
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(label)
        ax.set_ylabel("seconds per iteration")
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(f"sigcore {args.backend} backend, one iteration")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}")


if __name__ == "__main__":
    raise SystemExit(main())
