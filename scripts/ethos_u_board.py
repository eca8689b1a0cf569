"""Turn an fnx Ethos-U file into firmware sources for TFLite Micro: the model as an aligned C array, its I/O facts
from the manifest, and (with --image) one image preprocessed and quantized as fnx feeds it, to check the board's
first answer against `fnx`'s.

On the host that exported it (fnx installed; torch-free): `python scripts/ethos_u_board.py MODEL.tflite OUT_DIR
[--image IMAGE]`. Writes OUT_DIR/fnx_model.h (sizes, input/output scale and zero point, the Vela estimate's SRAM, the
labels), fnx_model.cc (the file, alignas(16), as the NPU reads it) and fnx_input.cc (int8 NHWC). Build them into a
TFLite Micro application with the Ethos-U kernel (docs/guides/ethos-u.md, section 2).

fnx could not run the result on hardware: no Ethos-U board or Arm FVP was at hand when it was written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from fnx.errors import FnxError
from fnx.manifest import read_manifest
from fnx.runtime.engines.base import TensorInfo
from fnx.runtime.preprocess import preprocess
from fnx.targets.ethos_u import compiled_by_vela

ALIGN = 16  # the NPU reads the model and the input over AXI: 16-byte aligned


def c_bytes(data: bytes, per_line: int = 16) -> str:
    """Return data as the lines of a C initializer list (hex bytes)."""
    rows = (", ".join(f"0x{b:02x}" for b in data[i:i + per_line]) for i in range(0, len(data), per_line))
    return ",\n".join(f"  {row}" for row in rows)


def c_string(text: str) -> str:
    """Return text as a C string literal (UTF-8, escaped)."""
    out = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\?' else "".join(f"\\{b:03o}" for b in ch.encode())
                  for ch in text)
    return f'"{out}"'


def load(model: Path):
    """Return the manifest of an Ethos-U file, refusing what TFLite Micro's Ethos-U kernel cannot run."""
    if not model.is_file():
        raise FnxError(f"{model} does not exist")
    if not compiled_by_vela(model):
        raise FnxError(f"{model} holds no ethos-u op (not compiled by Vela): fnx export MODEL --format ethos-u "
                       "--precision int8 makes one")
    m = read_manifest(model)
    if m is None:
        raise FnxError(f"no manifest beside {model}: copy {model.with_suffix('.json').name} with it")
    (inp,), (out,) = m.inputs, m.outputs[:1]
    if inp.dtype != "int8" or inp.quantization is None or inp.layout != "NHWC":
        raise FnxError(f"{model}'s input is {inp.dtype} {inp.layout}: this script writes int8 NHWC inputs")
    return m


def header(m, size: int) -> str:
    """Return fnx_model.h: the model array's declaration and the manifest's facts the application needs."""
    inp, out = m.inputs[0], m.outputs[0]
    _, h, w, c = inp.shape
    oq = out.quantization
    e = m.compilation.estimate
    labels = m.labels or []
    lines = [
        f"// {m.artifact.file}: written by scripts/ethos_u_board.py from its manifest",
        "#pragma once",
        "#include <cstddef>",
        "#include <cstdint>",
        "",
        f"constexpr size_t kModelSize = {size};",
        "extern const unsigned char kModel[];",
        f"constexpr int kInputHeight = {h}, kInputWidth = {w}, kInputChannels = {c};  // int8 NHWC",
        f"constexpr float kInputScale = {inp.quantization.scale!r}f;",
        f"constexpr int kInputZeroPoint = {inp.quantization.zero_point};",
        f"constexpr int kNumClasses = {out.shape[-1]};",
        f"constexpr float kOutputScale = {(oq.scale if oq else 0.0)!r}f;  // 0: the output is float",
        f"constexpr int kOutputZeroPoint = {oq.zero_point if oq else 0};",
        f"// Vela's estimate for {m.compilation.target}: {e.latency_ms:.2f} ms, {e.ops_on_npu} ops on the NPU, "
        f"{e.ops_on_cpu} on the CPU",
        f"constexpr size_t kVelaSramBytes = {e.sram_bytes};  // at least this for the arena (U55) or fast memory (U65)",
        f"constexpr int kNumLabels = {len(labels)};",
        "extern const char* const kLabels[];",
        "extern const int8_t kInput[];  // fnx_input.cc, with --image",
        "",
    ]
    return "\n".join(lines)


def model_source(data: bytes, labels: list[str]) -> str:
    """Return fnx_model.cc: the file's bytes, aligned, and the labels."""
    names = ",\n".join(f"  {c_string(x)}" for x in labels) or '  ""'
    model = f"alignas({ALIGN}) const unsigned char kModel[kModelSize] = {{\n{c_bytes(data)}\n}};\n"
    return f'#include "fnx_model.h"\n\n{model}\nconst char* const kLabels[] = {{\n{names}\n}};\n'


def quantized_input(m, image: Path) -> np.ndarray:
    """Return image as the model's int8 NHWC input: fnx's preprocessing (exact), then its scale and zero point."""
    inp = m.inputs[0]
    x = preprocess(image, m.preprocessing, mode="exact")
    return TensorInfo(inp.name, tuple(inp.shape), np.dtype(np.int8), inp.quantization.scale,
                      inp.quantization.zero_point).encode(x[None])


def input_source(q: np.ndarray, image: Path) -> str:
    """Return fnx_input.cc: the quantized image."""
    values = q.reshape(-1).astype(np.int16)
    rows = (", ".join(str(v) for v in values[i:i + 24]) for i in range(0, values.size, 24))
    body = ",\n".join(f"  {row}" for row in rows)
    return (f'#include "fnx_model.h"\n\n// {image.name}: preprocessed as the manifest says, quantized to int8 NHWC\n'
            f"alignas({ALIGN}) const int8_t kInput[kInputHeight * kInputWidth * kInputChannels] = {{\n{body}\n}};\n")


def write_sources(model: Path, out_dir: Path, image: Path | None = None) -> list[Path]:
    """Write the firmware sources for model into out_dir; return their paths. Nothing is written on bad input."""
    m = load(model)
    data = model.read_bytes()
    files = {"fnx_model.h": header(m, len(data)), "fnx_model.cc": model_source(data, m.labels or [])}
    if image is not None:
        files["fnx_input.cc"] = input_source(quantized_input(m, image), image)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out_dir / name).write_text(text)
    return [out_dir / name for name in files]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path, help="an fnx --format ethos-u .tflite, its manifest beside it")
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--image", type=Path, help="an image to write as fnx_input.cc")
    args = ap.parse_args()
    try:
        written = write_sources(args.model, args.out_dir, args.image)
    except FnxError as e:
        sys.exit(f"error: {e}")
    for path in written:
        print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
