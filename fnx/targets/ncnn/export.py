"""The ncnn format: the deploy-form model traced to TorchScript, converted by pnnx to ncnn's .param + .bin.

fp32 writes fp32 weights (pnnx `fp16=0`); fp16 writes fp16 weights (pnnx's default), computed by the engine in
fp32 unless asked otherwise. No int8: ncnn's own int8 tools (ncnn2table, ncnn2int8) are not in any pip wheel, and
fnx does not ship a quantizer of its own. fnx gives the Input layer its shape and names the conv/linear layers
after the PyTorch modules (from pnnx's own graph), so `fnx verify --layers` can match them.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np

from fnx.errors import FnxError
from fnx.exporter.formats import ArtifactFormat, register_format
from fnx.install import pip_install
from fnx.targets.ncnn import FILE
from fnx.targets.ncnn.graph import name_weighted_layers, read_layers, set_input_shape, write_layers

PNNX_TIMEOUT_S = 600


def run_pnnx(torchscript: Path, shape: tuple[int, ...], fp16: bool, work: Path) -> tuple[Path, Path, Path]:
    """Convert a TorchScript file with pnnx in work; return (ncnn .param, ncnn .bin, pnnx's own .param)."""
    import pnnx

    out = {k: work / f"model.{k}" for k in ("ncnn.param", "ncnn.bin", "pnnx.param", "pnnx.bin", "pnnx.py",
                                             "pnnx.onnx", "ncnn.py")}
    args = [pnnx.EXEC_PATH, str(torchscript), f"inputshape=[{','.join(map(str, shape))}]", f"fp16={int(fp16)}",
            *(f"{k.replace('.', '')}={p}" for k, p in out.items())]
    try:
        r = subprocess.run(args, cwd=work, capture_output=True, text=True, timeout=PNNX_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise FnxError(f"pnnx did not finish in {PNNX_TIMEOUT_S} s converting the model to ncnn") from None
    if r.returncode != 0 or not out["ncnn.param"].is_file() or not out["ncnn.bin"].is_file():
        tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-5:])
        raise FnxError(f"pnnx could not convert the model to ncnn (exit {r.returncode}): {tail}")
    return out["ncnn.param"], out["ncnn.bin"], out["pnnx.param"]


@register_format
class NcnnFormat(ArtifactFormat):
    """ncnn artifacts (.param + .bin), NCHW, one image per run, for ncnn's CPU kernels (ARM NEON, x86 AVX)."""

    name = "ncnn"
    file = FILE
    pconv_form = "split_cat"  # pnnx turns the split into one Slice layer and the cat into one Concat
    converters = ("torch", "pnnx")
    requires = ("torch", "pnnx")
    install = pip_install("export", "pnnx")

    def int8_absent_reason(self) -> str:
        return (" (ncnn's int8 tools, ncnn2table and ncnn2int8, come with ncnn's source build, not with any pip wheel; "
                "fnx does not ship a quantizer of its own)")

    def refuse(self, opts) -> None:
        if opts.features:
            raise FnxError("--features is not available for ncnn: pnnx leaves part of the backbone's graph (a "
                           "pnnx.Expression) without an ncnn layer. Export the backbone as onnx, openvino or tflite")
        if opts.batch != 1:
            raise FnxError(f"--batch {opts.batch} is not available for ncnn: ncnn runs one image per extractor, and "
                           f"fnx's runtime feeds an ncnn file one image at a time; leave --batch out")

    def export_float(self, model, path: Path, built, opts) -> None:
        import torch

        shape = (1, built.model.in_chans, built.img_size, built.img_size)
        with tempfile.TemporaryDirectory(prefix="fnx-pnnx-") as tmp:
            work = Path(tmp)
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the input check, traced as a constant
                traced = torch.jit.trace(model.eval(), torch.zeros(shape), check_trace=False)
            traced.save(str(work / "model.pt"))
            param, weights, pnnx_param = run_pnnx(work / "model.pt", shape, opts.precision == "fp16", work)
            layers = read_layers(param)
            left = sorted({x.type for x in layers if x.type.startswith(("pnnx.", "torch.", "F."))})
            if left:
                raise FnxError(f"pnnx left {', '.join(left)} without an ncnn layer: this model does not convert to "
                               f"ncnn; export it as onnx, openvino or tflite")
            set_input_shape(layers, shape[1], shape[2])
            name_weighted_layers(layers, read_layers(pnnx_param))
            write_layers(path, layers)
            shutil.move(str(weights), str(path.with_suffix(".bin")))

    def layer_tensors(self, path: Path, batch_nhwc: np.ndarray) -> dict[str, np.ndarray]:
        from fnx.targets.ncnn.engine import blob_outputs

        return blob_outputs(path, np.ascontiguousarray(batch_nhwc.transpose(0, 3, 1, 2)))
