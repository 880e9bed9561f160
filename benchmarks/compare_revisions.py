"""Same-run A/B of ``bench_iteration.py`` between a git revision and this tree.

    python benchmarks/compare_revisions.py --base HEAD~3 -- --n 300 --repeats 1

Checks ``--base`` out into a temporary git worktree, then runs each tree's own
``benchmarks/bench_iteration.py ARGS --json`` in turn, the base first, each in
a fresh process with ``PYTHONPATH`` on that tree, ``--rounds`` times. Prints
every run's seconds per stage, then the medians and the ratio base / this
tree. The machines are shared and noisy: runs alternated within one session
are what make a ratio mean something.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GIT = ("git", "-C", str(ROOT))
STAGES = ("total", "project", "search", "significance", "reconstruct")


def run_benchmark(tree: Path, args: list[str]) -> dict[str, Any]:
    """One ``bench_iteration.py`` run in ``tree``; its first JSON row."""
    script = tree / "benchmarks" / "bench_iteration.py"
    if not script.exists():
        raise SystemExit(f"{script}: no such benchmark in that revision")
    env = dict(os.environ, PYTHONPATH=str(tree))
    done = subprocess.run(
        [sys.executable, str(script), *args, "--json"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{script} failed:\n{done.stderr[-2000:]}")
    start = done.stdout.find("\n{")
    if start < 0:
        raise SystemExit(f"{script}: no JSON in its output")
    report = json.loads(done.stdout[start:])
    row = report["rows"][0]
    return {**row["seconds"], "calibration": report["calibration_seconds"]}


def main(argv: list[str] | None = None) -> int:
    """Alternate the benchmark between ``--base`` and this tree; print the ratios."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", required=True, help="git revision to compare against")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "bench_args",
        nargs=argparse.REMAINDER,
        help="arguments for bench_iteration.py, after --",
    )
    args = p.parse_args(argv)
    bench_args = [a for a in args.bench_args if a != "--"]
    runs: dict[str, list[dict[str, Any]]] = {"base": [], "this": []}
    with tempfile.TemporaryDirectory() as tmp:
        base_tree = Path(tmp) / "base"
        subprocess.run(
            [*GIT, "worktree", "add", "--detach", "-q", str(base_tree), args.base],
            check=True,
        )
        try:
            for r in range(args.rounds):
                for label, tree in (("base", base_tree), ("this", ROOT)):
                    seconds = run_benchmark(tree, bench_args)
                    runs[label].append(seconds)
                    cells = " ".join(f"{s} {seconds[s]:.3f}" for s in STAGES)
                    print(f"round {r + 1} {label:4s} | {cells}", flush=True)
        finally:
            subprocess.run(
                [*GIT, "worktree", "remove", "--force", str(base_tree)],
                check=False,
            )
    print(f"medians over {args.rounds} rounds (base {args.base} / this tree):")
    for stage in (*STAGES, "calibration"):
        base = statistics.median(s[stage] for s in runs["base"])
        this = statistics.median(s[stage] for s in runs["this"])
        ratio = base / this if this > 0 else float("nan")
        print(f"  {stage:13s} {base:8.3f} s {this:8.3f} s  ratio {ratio:5.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
