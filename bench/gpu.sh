#!/usr/bin/env bash
# The GPU check: one command on a machine with a CUDA GPU (or a CPU, with --device cpu --quick).
#
#   bench/gpu.sh                              # install into .venv if needed, then check the GPU (at most ~8 min)
#   bench/gpu.sh --device cpu --quick         # the same code paths at toy sizes, on a CPU
#   bench/gpu.sh --out DIR --budget SECONDS   # where gpu.json goes (default gpu_check/), the time budget
#
# Installs like `make install`: a virtualenv in $VENV (default .venv) with the torch the Makefile pins (PyPI's Linux
# wheel, CUDA included), then this project with its test and demo extras under constraints.txt (PyAV's wheels bundle
# FFmpeg: no system package needed). Offline machines: WHEELHOUSE=/path/to/wheels installs from that folder only.
# PYTHON=/path/to/python skips the installation and uses that interpreter as it is.
# Reads the GPU's state, never changes it (no nvidia-smi settings, no clocks, no persistence mode).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${PYTHON:-}" ]]; then
    VENV="${VENV:-.venv}"
    TORCH_PIN="$(grep -o 'torch==[0-9][0-9.]*' Makefile | head -n 1)"
    if [[ -z "$TORCH_PIN" ]]; then
        echo "bench/gpu.sh: no torch==VERSION pin found in Makefile" >&2
        exit 2
    fi
    PIP_ARGS=(-q)
    if [[ -n "${WHEELHOUSE:-}" ]]; then
        PIP_ARGS+=(--no-index --find-links "$WHEELHOUSE")
    fi
    if [[ ! -f "$VENV/.installed" ]]; then
        python3 -m venv "$VENV"
        "$VENV/bin/python" -m pip install "${PIP_ARGS[@]}" "$TORCH_PIN"
        "$VENV/bin/python" -m pip install "${PIP_ARGS[@]}" -c constraints.txt -e ".[test,demo]"
        touch "$VENV/.installed"
    fi
    PYTHON="$VENV/bin/python"
fi

export HF_HUB_OFFLINE=1
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true  # read only
fi
# The check keeps its own time budget (default 450 s); the hard limit is a safety net.
exec timeout 540 "$PYTHON" -m bench.gpu "$@"
