#!/usr/bin/env bash
# One-shot GPU check: the GPU-marked tests, then the cupy benchmarks (the
# standard case and the 4x larger ones) with a cpu baseline from the same
# machine, so every ratio comes from one run. Meant for a borrowed GPU
# machine where every minute counts: run it from the repository root,
#
#     bash benchmarks/device_check.sh            # about 3-5 minutes
#
# sigcore runs from the source tree (PYTHONPATH), so nothing needs
# installing where numpy, scipy, numba, pluggy, typer, rich and CuPy are
# already there; wheels of anything missing can be put in ./.whl. The logs
# (tables, then JSON) go to $OUT when set (the device tool's output folder),
# else to /tmp/sigcore-device-check. Exit status 1 if any step failed.
set -uo pipefail

out="${OUT:-/tmp/sigcore-device-check}"
mkdir -p "$out"
python="${PYTHON:-python3}"
if compgen -G ".whl/*.whl" >/dev/null; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target /tmp/sigcore-site .whl/*.whl || exit 1
    export PYTHONPATH="/tmp/sigcore-site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
status=0

echo "== device"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
    | tee "$out/device.txt" || status=1
"$python" -c "import cupy, numpy, numba; print('cupy', cupy.__version__, \
'numpy', numpy.__version__, 'numba', numba.__version__)" | tee -a "$out/device.txt" \
    || status=1

echo "== GPU tests (pytest -m gpu)"
"$python" -m pytest -q -m gpu -p no:cacheprovider tests 2>&1 \
    | tee "$out/pytest_gpu.log" || status=1

bench() {  # name, then bench_iteration.py arguments
    local name="$1"
    shift
    echo "== bench_iteration $*"
    "$python" benchmarks/bench_iteration.py "$@" --json >"$out/$name.log" 2>&1 \
        || status=1
    grep -E "^calibration:|^ +[a-z]+ +N=" "$out/$name.log" || tail -5 "$out/$name.log"
}
bench cupy_n300 --backend cupy --n 300 --repeats 3
bench cupy_n1200 --backend cupy --n 1200 --repeats 3
bench cupy_box128 --backend cupy --n 300 --box 128 --repeats 2
bench cupy_n300_last --backend cupy --n 300 --repeats 3 --last-iteration
bench cpu_n300 --backend cpu --n 300 --repeats 1
exit "$status"
