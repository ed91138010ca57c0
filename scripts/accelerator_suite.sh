#!/usr/bin/env bash
# The accelerator suite (scripts/accelerator_suite.py) on a machine with a GPU and JAX and
# PyTorch with CUDA already installed, without the network: this package's own small
# dependencies that such an image lacks (loguru, tensorboardX, Rax) come as wheels carried in
# a folder (default .whl), installed into a temporary folder with pip --no-index. Fetch them
# where PyPI is reachable, for the device's Python (3.12 here):
#
#   pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl \
#       loguru==0.7.3 tensorboardX==2.6.5 rax==0.4.0
#
# Usage: bash scripts/accelerator_suite.sh [--wheels DIR] [--out docs/gpu.md] [--budget-s 420] [--tiny]
# (every option but --wheels goes to accelerator_suite.py; $PYTHON picks the interpreter).
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
wheels=.whl
if [[ "${1:-}" == "--wheels" ]]; then
    wheels="${2:?--wheels needs a folder}"
    shift 2
    [[ -d "$wheels" ]] || { echo "accelerator_suite.sh: --wheels: no folder $wheels" >&2; exit 2; }
fi
site="$(mktemp -d)"
trap 'rm -rf "$site"' EXIT
shopt -s nullglob
carried=("$wheels"/*.whl)
if ((${#carried[@]})); then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" "${carried[@]}"
fi
export PYTHONPATH="$PWD:$site${PYTHONPATH:+:$PYTHONPATH}"
# JAX and PyTorch share the device: neither takes memory it does not use.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
missing="$("$python" -c 'import importlib.util as u; print(" ".join(m for m in ("jax", "torch", "flax", "optax", "loguru", "tensorboardX", "pandas", "tqdm") if u.find_spec(m) is None))')"
if [[ -n "$missing" ]]; then
    echo "accelerator_suite.sh: missing Python packages: $missing (carry them as wheels in $wheels)" >&2
    exit 1
fi
"$python" scripts/accelerator_suite.py "$@"
