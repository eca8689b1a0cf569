"""Each peer's default int8 recipe, as its documentation shows it, made from fnx's own fp32 files (or deploy-form
model) and the same calibration images fnx calibrates on: what a user who skips fnx's int8 gets.

- ONNX Runtime: `quantize_static(fp32, out, reader)` with every default (QDQ, int8 activations and weights,
  per-tensor weights, MinMax), on fnx's fp32 ONNX.
- NNCF: `nncf.quantize(model, nncf.Dataset(...))` with every default (its CPU preset, performance: symmetric
  activations) on fnx's fp32 ONNX read by OpenVINO.
- litert-torch: `PT2EQuantizer().set_global(get_symmetric_quantization_config())` with its defaults (static int8,
  per-tensor weights) on fnx's deploy-form model with NHWC I/O (the graph fnx's own TFLite converts).
- AI Edge Quantizer: its default recipe in its documentation, `dynamic_wi8_afp32` (int8 weights, activations
  quantized at run time, float I/O), on fnx's fp32 TFLite.
- ExecuTorch: its XNNPACK quantizer's documented config, `get_symmetric_quantization_config(is_per_channel=True)`,
  through torchao's prepare_pt2e/convert_pt2e, then XNNPACK lowering, on the PyTorch model's own PConv (torch.split).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def ort_default(fp32_onnx: Path, out: Path, calib_nchw: np.ndarray) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter({"input": calib_nchw[i:i + 1]} for i in range(len(calib_nchw)))

        def get_next(self):
            return next(self.items, None)

    quantize_static(str(fp32_onnx), str(out), Reader())
    return out


def nncf_default(fp32_onnx: Path, out_xml: Path, calib_nchw: np.ndarray) -> Path:
    from fnx.targets.openvino import env as openvino_env

    ov, nncf = openvino_env.openvino(), openvino_env.nncf()
    model = ov.Core().read_model(str(fp32_onnx))
    quantized = nncf.quantize(model, nncf.Dataset([calib_nchw[i:i + 1] for i in range(len(calib_nchw))]))
    ov.save_model(quantized, str(out_xml), compress_to_fp16=False)
    return out_xml


def litert_pt2e_default(deployed, out: Path, calib_nhwc: np.ndarray) -> Path:
    import torch
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    from fnx.calibration.sensitivity import observed
    from fnx.targets.tflite.convert import channel_last, litert_torch

    quantizer = PT2EQuantizer().set_global(get_symmetric_quantization_config())
    # the same observers fed 32 images per call (fnx's faster calibration; the ranges are the observers' own)
    converted = convert_pt2e(observed(channel_last(deployed), calib_nhwc, quantizer), fold_quantize=False)
    sample = torch.from_numpy(calib_nhwc[:1].copy())
    litert_torch().convert(converted, (sample,), quant_config=QuantConfig(pt2e_quantizer=quantizer)).export(str(out))
    return out


def aeq_dynamic_default(fp32_tflite: Path, out: Path) -> Path:
    from ai_edge_quantizer import quantizer, recipe

    q = quantizer.Quantizer(str(fp32_tflite))
    q.load_quantization_recipe(recipe.dynamic_wi8_afp32())
    q.quantize().export_model(str(out), overwrite=True)
    return out


def executorch_default(deployed_split, out: Path, calib_nchw: np.ndarray) -> Path:
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                          get_symmetric_quantization_config)
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from fnx.targets.executorch.lower import write_pte

    sample = (torch.from_numpy(calib_nchw[:1].copy()),)
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(torch.export.export(deployed_split, sample).module(), quantizer)
    with torch.no_grad():
        for i in range(len(calib_nchw)):
            prepared(torch.from_numpy(calib_nchw[i:i + 1].copy()))
    write_pte(convert_pt2e(prepared), sample, out)
    return out


# Why a peer's recipe differs from fnx's forms, for the notes under the table.
WHY = {
    "ORT quantize_static defaults": "int8 activations (ONNX Runtime's x86 kernels take uint8: it converts) and "
                                    "per-tensor weights",
    "NNCF defaults": "NNCF's CPU default is the performance preset, fnx's `performance` form (symmetric activations): "
                     "the same graph type, calibrated by NNCF alone",
    "litert-torch PT2E defaults": "per-tensor weights (fnx's `per-tensor` form, which auto leaves out)",
    "AI Edge Quantizer default (dynamic)": "activations quantized at run time from each input's own range (XNNPACK's "
                                           "dynamic int8 kernels), float I/O: not a static int8 graph, so no "
                                           "calibration to go wrong and no fixed ranges for an int8-only delegate",
    "ExecuTorch XNNPACK defaults": "fnx's `per-channel` form on PyTorch's split PConv (its channel splits stay "
                                   "outside XNNPACK: 14 delegate subgraphs against fnx's one)",
}
