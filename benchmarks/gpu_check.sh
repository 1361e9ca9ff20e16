#!/usr/bin/env bash
# The emulator's torch path on a CUDA GPU: exactness tests, then a speed check (< 5 minutes).
#
#   bash benchmarks/gpu_check.sh            (from the repository root, with the project's venv)
#
# 1. tests/test_emulator_torch.py: every integer network bit-identical to the numpy reference on
#    device "cuda" (outputs, traces, event counts), float networks within float64 rounding; the
#    cuda cases skip (saying so) where torch sees no GPU, so this step fails loudly if none ran.
# 2. benchmarks/bench_torch_device.py --device cuda: numpy vs torch-on-cuda ms per sample-step on
#    the 784-512-512-10 network (int8 and float) at batch 32, 256 and 1024, outputs checked.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[[ -x "$PY" ]] || PY=python
export OPENBLAS_NUM_THREADS=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -c 'import torch, sys; ok = torch.cuda.is_available(); print("cuda:", ok, torch.cuda.get_device_name(0) if ok else ""); sys.exit(0 if ok else 1)'
timeout 180 "$PY" -m pytest -p no:xdist -q -rs tests/test_emulator_torch.py -k "cuda" 2>&1 | tee /tmp/gpu_check_tests.txt
grep -q "passed" /tmp/gpu_check_tests.txt && ! grep -q "skipped" /tmp/gpu_check_tests.txt
timeout 120 "$PY" benchmarks/bench_torch_device.py --device cuda --batches 32 256 1024 --steps 100
