"""The RKNN format: fnx's fp32 ONNX built into an int8 .rknn by rknn-toolkit2 in its own environment (`build`),
guarded and checked against PyTorch on the toolkit's simulator."""

from __future__ import annotations

from pathlib import Path

from fnx.errors import FnxError
from fnx.exporter.formats import ArtifactFormat, register_format
from fnx.targets.rknn import FILE
from fnx.targets.rknn.toolchain import RKNN
from fnx.toolchains.simulated import SimulatedFormat

OPSET = 19  # the newest ONNX opset rknn-toolkit2 2.5.0 loads
# fnx's --calib-method -> rknn-toolkit2's quantized_algorithm (percentile has no counterpart there; mmse: Min Mean
# Square Error)
ALGORITHMS = {"minmax": "normal", "entropy": "kl_divergence", "mse": "mmse"}


@register_format
class RknnFormat(SimulatedFormat, ArtifactFormat):
    """int8 (w8a8) .rknn for a Rockchip NPU (`--target`, default the first of FILE.targets), float in and out.

    The toolkit quantizes fnx's fp32 ONNX from the user's calibration images; the guard and the parity check judge
    the simulator's outputs against PyTorch (`simulate`), and the manifest's `compilation` carries the NPU/CPU op
    split and each layer's cosine from the toolkit's accuracy analysis. No layer can be returned to float."""

    name = "rknn"
    file = FILE
    converters = ("torch", "onnx", "onnxslim")  # the toolkit's version is in compilation.compiler
    requires = ("torch", "onnx", "onnxslim")
    float_precisions = ()  # fnx builds RKNN in int8 only (the NPU's native precision)
    calib_fallback = True  # no layer can go back to float: the guard tries the other methods
    calib_methods = tuple(ALGORITHMS)
    toolchain = RKNN
    layers_absent = ("rknn-toolkit2's simulator cannot run a saved .rknn; the per-layer cosines of its accuracy "
                     "analysis at export are in the manifest (compilation.layers)")
    not_simulated = "rknn-toolkit2's simulator cannot run a saved .rknn (run it on the board: docs/guides/rknn.md)"

    def export_float(self, model, path: Path, built, opts) -> None:
        raise FnxError("fnx builds RKNN in int8: export --format rknn --precision int8")

    def refuse(self, opts) -> None:
        if opts.batch != 1 or opts.features:
            raise FnxError("--format rknn builds a batch-1 classifier: drop --batch and --features")
        if len(opts.formats) > 1 and not RKNN.ready:  # several formats: no multi-minute install as a side effect
            raise FnxError("its toolchain is not created here (fnx toolchains create rknn, once)")

    def int8_quantizer(self, model, built, opts, data, work: Path):
        return RknnQuantizer(model, built, opts, data, work)


class RknnQuantizer:
    """The Quantizer (fnx.calibration.quantizer) of the RKNN format: each quantize() is one toolkit session that
    builds the .rknn and simulates the held-out and parity images on it."""

    io = "float"
    form = "default"

    def __init__(self, model, built, opts, data, work: Path):
        from fnx.exporter.checks import verification_images

        self.model, self.built, self.opts, self.data = model, built, opts, data
        self.onnx = work.with_name(work.stem + ".fp32.onnx")
        self.algorithm = ALGORITHMS[opts.int8.method]
        self.scheme = f"rknn-toolkit2 {self.algorithm} (--calib-method {opts.int8.method})"
        self.description = "w8a8: int8 weights and activations, float input and output"
        self.notes = [f"built by rknn-toolkit2 for {self.target}; judged on its simulator (no board here)"]
        checked = verification_images(opts.data, built.preprocessing)[0] if opts.verify else data.held_out[:0]
        self.batches = [b.transpose(0, 3, 1, 2) for b in (data.held_out, checked) if len(b)]

    @property
    def target(self) -> str:
        return self.opts.int8.target or FILE.targets[0]

    def __enter__(self) -> "RknnQuantizer":
        import torch

        from fnx.targets.onnx.convert import export_onnx, simplify_onnx

        size, chans = self.built.img_size, self.built.model.in_chans
        export_onnx(self.model, self.onnx, torch.zeros(1, chans, size, size), self.built.output_names, opset=OPSET,
                    min_opset=OPSET)  # GELU as Erf, Mul, Add: the toolkit reads no Gelu op
        simplify_onnx(self.onnx)
        return self

    def __exit__(self, *exc) -> None:
        self.onnx.unlink(missing_ok=True)

    def quantize(self, out: Path, keep_float: list[str]) -> None:
        from fnx.progress import phase
        from fnx.targets.rknn.build import build_rknn

        if keep_float:
            raise FnxError("fnx cannot return RKNN layers to float")
        calib = self.data.calib.transpose(0, 3, 1, 2)
        build_rknn(self.onnx, out, self.target, calib, self.batches, self.algorithm, phase)

    def layer_errors(self, out: Path, probe_nhwc) -> list:
        return []  # the toolkit's own per-layer cosines are in compilation.layers; no layer can go back to float

    def float_ops(self, out: Path) -> dict[str, int]:
        return {}
