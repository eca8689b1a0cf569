#!/usr/bin/env bash
# GPU check: on a machine with an NVIDIA GPU, install what CUDA/TensorRT need, run the tests that skip on
# CPU (-m cuda), and print a T0/T2 fp32/fp16/int8 latency table (ONNX Runtime's CUDA and TensorRT providers).
# Usage: bash scripts/gpu_check.sh [OUT_DIR]   (about 10 minutes; writes OUT_DIR/gpu_check.{log,json})
# Offline machines: the wheels must come from a reachable package index (or a wheelhouse: PIP_FIND_LINKS).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-${OUT:-gpu_check_out}}"
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || { echo "no NVIDIA GPU here"; exit 3; }
PY="${PYTHON:-python3}"
VENV="${GPU_VENV:-.venv-gpu}"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
# CPU torch (the exporter needs it, not the GPU), onnxruntime-gpu (CUDA 12 + cuDNN 9 and TensorRT libraries
# from their pip packages) in place of onnxruntime.
"$VENV/bin/pip" install -q "torch==2.13.0" --index-url "${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}" \
  || "$VENV/bin/pip" install -q "torch==2.13.0"
"$VENV/bin/pip" install -q -e ".[dev]"
"$VENV/bin/pip" uninstall -q -y onnxruntime || true
"$VENV/bin/pip" install -q "onnxruntime-gpu[cuda,cudnn]" tensorrt-cu12 || "$VENV/bin/pip" install -q onnxruntime-gpu
"$VENV/bin/python" - <<'PYEOF'
import onnxruntime as ort
print("onnxruntime", ort.__version__, "providers:", ort.get_available_providers())
try:
    ort.preload_dlls()  # CUDA/cuDNN from the nvidia-* pip packages
except Exception as e:  # older onnxruntime-gpu
    print("preload_dlls:", e)
PYEOF
echo "== tests that skip without a GPU (-m cuda), and the runtime tests"
"$VENV/bin/python" -m pytest -q -m "cuda or not slow" tests/test_runtime.py -k "cuda" -p no:cacheprovider || true
echo "== latency table"
"$VENV/bin/python" scripts/gpu_table.py "$OUT/gpu_check.json"
