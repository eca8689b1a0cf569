"""The IMX500 format: fnx's deploy-form model quantized by Sony's MCT for the IMX500 and converted by imxconv-pt in
its own environment (`build`), guarded and checked against PyTorch on MCT's quantized model."""

from __future__ import annotations

from pathlib import Path

from fnx.errors import FnxError
from fnx.exporter.formats import ArtifactFormat, register_format
from fnx.models.costs import backbone_weights
from fnx.models.variants import VARIANTS
from fnx.targets.imx500 import FILE, SENSOR_MEMORY_BYTES
from fnx.targets.imx500.toolchain import IMX500, check_java
from fnx.toolchains.simulated import SimulatedFormat

# fnx's --calib-method -> MCT's QuantizationErrorMethod for the activations' ranges (percentile has no counterpart)
# (the first is its default: MSE held more than NOCLIPPING on T0 224, 0.99415 against 0.99007, in the same time)
ERROR_METHODS = {"mse": "MSE", "minmax": "NOCLIPPING", "entropy": "KL"}


@register_format
class Imx500Format(SimulatedFormat, ArtifactFormat):
    """int8 packerOut.zip for the IMX500 (Raspberry Pi AI Camera), float in and out as fnx hands it over.

    MCT quantizes fnx's deploy-form PyTorch model (traced by torch.fx) for the IMX500's target platform capabilities
    from the user's calibration images; the guard and the parity check judge MCT's quantized ONNX against PyTorch
    (`simulate`); imxconv-pt converts it, and its memory report is in the manifest's `compilation.memory` (a model
    that does not fit the sensor's memory is refused with its figures). No layer can be returned to float."""

    name = "imx500"
    file = FILE
    converters = ("torch",)  # MCT's and the converter's versions are in compilation
    requires = ("torch",)
    float_precisions = ()  # the IMX500 computes in int8 (MCT's quantization for its platform)
    calib_fallback = True  # no layer can go back to float: the guard tries the other methods
    calib_methods = tuple(ERROR_METHODS)
    toolchain = IMX500
    layers_absent = ("fnx cannot run an IMX500 file: its parity was measured at export on MCT's quantized model, "
                     "and the converter's memory report is in the manifest (compilation.memory)")
    not_simulated = ("MCT's quantized model exists only while the toolchain builds the file (run it on the camera: "
                     "docs/guides/imx500.md)")

    def export_float(self, model, path: Path, built, opts) -> None:
        raise FnxError("fnx builds IMX500 files in int8: export --format imx500 --precision int8")

    def refuse(self, opts) -> None:
        if opts.batch != 1 or opts.features:
            raise FnxError("--format imx500 builds a batch-1 classifier: drop --batch and --features")
        check_java()  # the converter's back end: said before anything is built or installed
        if len(opts.formats) > 1 and not IMX500.ready:  # several formats: no multi-minute install as a side effect
            raise FnxError("its toolchain is not created here (fnx toolchains create imx500, once)")

    def refuse_variant(self, variant, opts) -> None:
        """Refuse a variant whose int8 conv weights alone exceed the sensor's memory: a lower bound of what the
        converter's memory report counts (it adds the head, biases and runtime memory), known before MCT and the
        converter spend minutes on it. The converter's report decides for the others."""
        weights = backbone_weights(variant)
        if weights > SENSOR_MEMORY_BYTES:
            mib = lambda n: f"{n / 2**20:.2f} MiB"  # noqa: E731
            smaller = ", ".join(v.name.removeprefix("fasternet_") for v in VARIANTS.values()
                                if backbone_weights(v) <= SENSOR_MEMORY_BYTES)
            raise FnxError(f"{variant.name.replace('_', '-')} does not fit the IMX500: its int8 conv weights alone "
                           f"take {mib(weights)} of the sensor's {mib(SENSOR_MEMORY_BYTES)}; export {smaller} (the "
                           f"converter's memory report then decides)")

    def int8_quantizer(self, model, built, opts, data, work: Path):
        return Imx500Quantizer(model, built, opts, data)


class Imx500Quantizer:
    """The Quantizer (fnx.calibration.quantizer) of the IMX500 format: each quantize() is one toolchain run that
    quantizes with MCT, runs the held-out and parity images on its quantized model, and converts it."""

    io = "float"
    form = "default"

    def __init__(self, model, built, opts, data):
        from fnx.exporter.checks import verification_images

        self.model, self.built, self.opts, self.data = model, built, opts, data
        self.error_method = ERROR_METHODS[opts.int8.method]
        self.scheme = f"Sony MCT post-training quantization, {self.error_method} (--calib-method {opts.int8.method})"
        self.description = "MCT's IMX500 target platform: int8 weights and activations, float input and output"
        self.notes = ["quantized by Sony MCT for the IMX500 and converted by imxconv-pt; judged on MCT's quantized "
                      "model (no IMX500 here)"]
        checked = verification_images(opts.data, built.preprocessing)[0] if opts.verify else data.held_out[:0]
        self.batches = [b.transpose(0, 3, 1, 2) for b in (data.held_out, checked) if len(b)]

    def __enter__(self) -> "Imx500Quantizer":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def quantize(self, out: Path, keep_float: list[str]) -> None:
        from fnx.progress import phase
        from fnx.targets.imx500.build import convert_imx500

        if keep_float:
            raise FnxError("fnx cannot return IMX500 layers to float")
        calib = self.data.calib.transpose(0, 3, 1, 2)
        convert_imx500(self.model, out, calib, self.batches, self.error_method, phase)

    def layer_errors(self, out: Path, probe_nhwc) -> list:
        return []  # no layer can go back to float

    def float_ops(self, out: Path) -> dict[str, int]:
        return {}
