"""OpenVINO int8 with NNCF post-training quantization of an fp32 IR; torch-free.

`NncfQuantizer` is the OpenVINO format's Quantizer: NNCF's min-max calibration over all the images (per-channel
symmetric weights, per-tensor activations) in one of NNCF's two presets (the forms below) on fnx's calibration
images, judged by fnx's guard, whose lever here is NNCF's accuracy control (`restore`: fnx.targets.openvino.
accuracy_control); layers named to stay float go to NNCF's ignored scope.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np

from fnx.calibration.data import CalibrationSet
from fnx.calibration.forms import Int8Form
from fnx.manifest import LayerError
from fnx.targets.openvino import env as openvino_env
from fnx.targets.openvino.graph import COMPUTE_OPS, LAYER_OPS, from_fake_quantize, layer_name, layer_output

# NNCF's presets. mixed: asymmetric activations, which fit ranges that do not centre on zero (more accurate);
# performance (NNCF's default): symmetric activations, OpenVINO's fast int8 path on x86 (the issue #38 Xeon: T2 1.24x).
FORMS = (
    Int8Form("mixed", "FakeQuantize (NNCF, mixed preset); activations uint8 asymmetric; weights int8 per-channel "
                      "symmetric"),
    Int8Form("performance", "FakeQuantize (NNCF, performance preset); activations int8 symmetric; weights int8 "
                            "per-channel symmetric"),
)
DESCRIPTIONS = {f.name: f.description for f in FORMS}


def global_minmax(nncf):
    """NNCF's parameters for min-max ranges over all the calibration images. Its default for activations is the mean of
    each sample's min and max: with fnx's one image per sample, every image beyond the average one is clipped (FasterNet
    T0 224 on synthetic images: held-out cosine 0.970, with 12 layers in float 0.972; over all images 0.994)."""
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    return AdvancedQuantizationParameters(activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX)


class NncfQuantizer:
    """NNCF int8 of an fp32 OpenVINO IR file (the Quantizer protocol of fnx.calibration)."""

    restorer = "NNCF accuracy control"  # the guard's lever: restore() instead of the worst layers by their error

    def __init__(self, fp32: Path, data: CalibrationSet, batch: int = 1, owns_fp32: bool = False, form: str = "auto"):
        self.fp32, self.data, self.batch, self.owns_fp32 = Path(fp32), data, batch, owns_fp32
        self.form = form if form in DESCRIPTIONS else FORMS[0].name  # auto: the default until a measured one is set
        self.notes: list[str] = []
        self.io = "float"

    @property
    def scheme(self) -> str:
        return f"minmax (NNCF, {self.form} preset)"

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self.form]

    def __enter__(self) -> "NncfQuantizer":
        return self

    def __exit__(self, *exc) -> None:
        if self.owns_fp32:
            for path in (self.fp32, self.fp32.with_suffix(".bin")):
                path.unlink(missing_ok=True)

    def quantize(self, out: Path, keep_float: list[str]) -> None:
        nncf = openvino_env.nncf()
        ov = openvino_env.openvino()

        from fnx.quiet import silenced

        model = ov.Core().read_model(str(self.fp32))
        ignored = [op.get_friendly_name() for op in model.get_ordered_ops()
                   if op.get_type_name() in LAYER_OPS and layer_name(op.get_friendly_name()) in keep_float]
        batches = self.calibration_batches()
        nncf_logger = logging.getLogger("nncf")  # its INFO lines go to the stream it found at import (stdout)
        level = nncf_logger.level
        nncf_logger.setLevel(logging.ERROR)
        try:
            with silenced():  # NNCF's progress bars
                preset = nncf.QuantizationPreset(self.form)  # the enum's values are the forms' names
                quantized = nncf.quantize(model, nncf.Dataset(batches), subset_size=len(batches), preset=preset,
                                          ignored_scope=nncf.IgnoredScope(names=ignored, validate=False),
                                          advanced_parameters=global_minmax(nncf))
        finally:
            nncf_logger.setLevel(level)
        ov.save_model(quantized, str(out), compress_to_fp16=False)

    def restore(self, out: Path, probe_nhwc: np.ndarray, refs: list[np.ndarray], min_cosine: float,
                max_steps: int) -> list[str]:
        """Replace the all-int8 IR at out with NNCF's accuracy-controlled one (fnx.targets.openvino.accuracy_control):
        the fewest quantized ops back in float for the probe images' lowest cosine to refs to reach min_cosine;
        return those ops."""
        from fnx.targets.openvino.accuracy_control import accuracy_controlled

        kept = accuracy_controlled(self.fp32, out, self.form, self.calibration_batches(),
                                   np.ascontiguousarray(probe_nhwc.transpose(0, 3, 1, 2)), refs, min_cosine, max_steps,
                                   global_minmax(openvino_env.nncf()))
        self.notes.append(f"guard: {self.restorer} returned {len(kept)} ops to float, ranked by their effect on the "
                          f"held-out images' lowest cosine ({len(probe_nhwc)} images, at most {max_steps} steps)")
        return kept

    def calibration_batches(self) -> list[np.ndarray]:
        """Return the calibration images as NNCF's samples: NCHW batches of self.batch."""
        calib = self.data.calib
        return [np.ascontiguousarray(calib[i : i + self.batch].transpose(0, 3, 1, 2))
                for i in range(0, len(calib) - self.batch + 1, self.batch)]

    def layer_errors(self, out: Path, probe_nhwc: np.ndarray) -> list[LayerError]:
        """Return every conv/matmul's error: the int8 model's output vs fp32's (matched by module), worst first."""
        nchw = np.ascontiguousarray(probe_nhwc.transpose(0, 3, 1, 2))
        f_runs, q_runs = _layer_outputs(self.fp32, nchw), _layer_outputs(out, nchw)
        rows = []
        for name in f_runs[0] if f_runs else {}:
            if name not in q_runs[0]:
                continue
            errs = [float(np.linalg.norm(q[name] - f[name]) / (np.linalg.norm(f[name]) + 1e-12))
                    for f, q in zip(f_runs, q_runs)]
            rel = float(np.mean(errs))
            rows.append(LayerError(name, rel, float(-20 * np.log10(max(rel, 1e-12))), name))
        return sorted(rows, key=lambda r: -r.rel_error)

    def float_ops(self, out: Path) -> dict[str, int]:
        return float_ops(out)


def _layer_outputs(path: Path, nchw: np.ndarray) -> list[dict[str, np.ndarray]]:
    """Run the IR at path on each image with every layer's output (layer_output) exposed; returns, per image,
    {module path: output}."""
    ov = openvino_env.openvino()

    core = ov.Core()
    model = core.read_model(str(path))
    layers = {layer_name(op.get_friendly_name()): layer_output(op) for op in model.get_ordered_ops()
              if op.get_type_name() in LAYER_OPS}
    model.add_outputs(list(layers.values()))  # one that is already a model output (the head's) is not added twice
    key = lambda out: (out.get_node().get_friendly_name(), out.get_index())  # noqa: E731
    where = {key(result.input_value(0)): k for k, result in enumerate(model.get_results())}
    index = {name: where[key(out)] for name, out in layers.items()}
    request = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}).create_infer_request()
    runs = []
    for i in range(len(nchw)):
        request.infer({0: nchw[i : i + 1]})
        runs.append({name: request.get_output_tensor(k).data.copy() for name, k in index.items()})
    return runs


def openvino_layer_tensors(path: Path, nchw: np.ndarray) -> dict[str, np.ndarray]:
    """Return {module path: output} of every conv/matmul of an OpenVINO IR (`fnx verify --layers`), batch concatenated."""
    runs = _layer_outputs(path, nchw)
    return {name: np.concatenate([r[name] for r in runs]) for name in (runs[0] if runs else {})}


def float_ops(path: Path) -> dict[str, int]:
    """Return {op type: count} of the compute ops whose data input is not int8 (no FakeQuantize feeds it)."""
    ov = openvino_env.openvino()

    counts: Counter = Counter()
    for op in ov.Core().read_model(str(path)).get_ordered_ops():
        if op.get_type_name() in COMPUTE_OPS and not from_fake_quantize(op.input_value(0).get_node()):
            counts[op.get_type_name()] += 1
    return dict(counts)
