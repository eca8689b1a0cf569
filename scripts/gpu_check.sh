#!/usr/bin/env bash
# GPU check: on a machine with an NVIDIA GPU, run the tests that skip without one (tests/test_gpu.py: ONNX Runtime's
# CUDA/TensorRT providers against PyTorch, fnx run/verify --device cuda, training on CUDA with NCCL + SyncBatchNorm)
# and print a T0/T2 fp32/fp16/int8 latency table (scripts/gpu_table.py) beside PyTorch eager on the same GPU, then
# batch-1/64 figures for ONNX Runtime's layout and TF32 options (scripts/gpu_throughput.py).
#
#   bash scripts/gpu_check.sh [OUT_DIR]     writes OUT_DIR/gpu_check.{log,json}, gpu_throughput.json, pytest.log
#
# Where the Python comes from:
#   online (default): a venv (.venv-gpu) with torch (CPU build: the exporter's; the CUDA training tests then skip),
#     fnx[dev] and onnxruntime-gpu[cuda,cudnn]
#   GPU_PYTHON=python3: that interpreter as it is (e.g. an image with CUDA torch, onnx and fnx's other needs), fnx from
#     this checkout; onnxruntime-gpu and anything else missing from FNX_WHEELHOUSE=DIR (wheels, installed offline
#     into a private target that shadows the interpreter's own onnxruntime).
# Exports are cached in GPU_WORK (default /tmp/fnx-gpu-work); GPU_STEPS=export|tests|table|throughput|all
# (default all). About 4 minutes on an H100 machine with 16 cores.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
OUT="${1:-${OUT:-gpu_check_out}}"
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
STEPS="${GPU_STEPS:-all}"
FAILED=""
WORK="${GPU_WORK:-/tmp/fnx-gpu-work}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || { echo "no NVIDIA GPU here"; exit 3; }

if [ -n "${GPU_PYTHON:-}" ]; then
  PY="$GPU_PYTHON"
  if [ -n "${FNX_WHEELHOUSE:-}" ]; then
    SITE="${GPU_SITE:-/tmp/fnx-gpu-site}"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
      "$FNX_WHEELHOUSE"/*.whl || exit 4
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  fi
  export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
else
  VENV="${GPU_VENV:-.venv-gpu}"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q "torch==2.13.0" --index-url "${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}" \
    || "$VENV/bin/pip" install -q "torch==2.13.0"
  "$VENV/bin/pip" install -q -e ".[dev]" || exit 4
  "$VENV/bin/pip" uninstall -q -y onnxruntime || true
  "$VENV/bin/pip" install -q "onnxruntime-gpu[cuda,cudnn]" || exit 4
  PY="$VENV/bin/python"
fi

"$PY" - <<'PYEOF'
import platform
import onnxruntime as ort
import torch
print("python", platform.python_version(), "| onnxruntime", ort.__version__, ort.__file__)
print("providers:", ort.get_available_providers())
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
PYEOF

if [[ "$STEPS" == all || "$STEPS" == export ]]; then
  echo "== exports (ONNX, 224 px, cached in $WORK)"
  "$PY" scripts/gpu_table.py "$OUT/gpu_check.json" --work "$WORK" --export-only || FAILED="$FAILED exports"
fi
if [[ "$STEPS" == all || "$STEPS" == tests ]]; then
  echo "== tests that skip without a GPU (pytest -m cuda tests/test_gpu.py)"
  "$PY" -m pytest -q -m cuda tests/test_gpu.py -p no:cacheprovider -rs ${GPU_PYTEST_ARGS:-} > "$OUT/pytest.log" 2>&1 \
    || FAILED="$FAILED tests"
  tail -40 "$OUT/pytest.log"
fi
if [[ "$STEPS" == all || "$STEPS" == table ]]; then
  echo "== latency table (batch 1, median ms; cosine against PyTorch fp32 on the CPU)"
  "$PY" scripts/gpu_table.py "$OUT/gpu_check.json" --work "$WORK" || FAILED="$FAILED table"
fi
if [[ "$STEPS" == all || "$STEPS" == throughput ]]; then
  echo "== batch 1 and 64: ONNX Runtime CUDA options (TF32, NHWC) and PyTorch eager"
  "$PY" scripts/gpu_throughput.py "$OUT/gpu_throughput.json" --work "$WORK" || FAILED="$FAILED throughput"
fi
if [ -n "$FAILED" ]; then echo "GPU CHECK FAILED:$FAILED"; exit 1; fi
echo "GPU CHECK OK"
