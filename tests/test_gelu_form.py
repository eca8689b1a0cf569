"""--gelu-form sigmoid: T0's int8 TFLite with GELU as x * sigmoid(1.702 x) is all int8 in one XNNPACK partition."""

from __future__ import annotations

import pytest
import torch

from fnx.errors import FnxError


def xnnpack_partitions(path) -> int:
    """How many XNNPACK partitions (DELEGATE ops) LiteRT's interpreter splits the file into."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    return sum(op["op_name"] == "DELEGATE" for op in interpreter._get_ops_details())


def test_sigmoid_gelu_is_within_its_stated_error():
    from fnx.exporter.gelu_form import SIGMOID_MAX_ERROR, SigmoidGelu

    x = torch.linspace(-12, 12, 400_001)
    err = (SigmoidGelu()(x.reshape(1, 1, 1, -1)).flatten() - torch.nn.functional.gelu(x)).abs().max()
    assert SIGMOID_MAX_ERROR - 2e-4 < float(err) <= SIGMOID_MAX_ERROR + 1e-4


def test_int8_tflite_with_sigmoid_gelu_is_one_partition_with_no_float_op(t0_ckpt, t0_tflite_int8, tmp_path):
    from fnx.exporter import ExportOptions, Int8Options, export_model
    from fnx.targets.tflite.graph import tflite_op_counts

    (res,) = export_model("t0", ExportOptions(formats=("tflite",), precision="int8", weights=str(t0_ckpt), img_size=64,
                                              out_dir=tmp_path, gelu_form="sigmoid",
                                              int8=Int8Options("synthetic", 32, min_cosine=0.95)))
    m = res.manifest
    assert m.calibration.report.float_ops == {} and m.calibration.kept_float == []
    assert any("x * sigmoid(1.702 x)" in n for n in m.calibration.notes)
    assert m.parity.passed and m.parity.reference == "pytorch fp32"  # against the exact-GELU model, int8's bound
    assert xnnpack_partitions(res.artifact) == 1 and "GELU" not in tflite_op_counts(res.artifact)
    # The exact form: int8 GELU ops, which XNNPACK leaves to TFLite's kernels between its partitions.
    assert tflite_op_counts(t0_tflite_int8.artifact)["GELU"] == 14 and xnnpack_partitions(t0_tflite_int8.artifact) > 1


@pytest.mark.parametrize("kw, message", [
    ({"precision": "fp32", "gelu_form": "sigmoid"}, "keeps the exact GELU"),
    ({"precision": "int8", "gelu_form": "tanh"}, "unknown --gelu-form"),
])
def test_gelu_form_refusals(kw, message):
    from fnx.exporter import ExportOptions

    with pytest.raises(FnxError, match=message):
        ExportOptions(formats=("tflite",), **kw)


def test_gelu_form_refused_for_relu_variants(cli, t0_ckpt, tmp_path):
    r = cli("export", "fasternet-t2", "--weights", "random", "--img-size", "64", "--precision", "int8", "--calib-data",
            "synthetic", "--gelu-form", "sigmoid", "--out", tmp_path)
    assert r.exit_code != 0 and "uses relu" in " ".join(r.output.split())
    assert not list(tmp_path.iterdir())
