"""What fnx reads from an OpenVINO IR's graph: its layers by module path, where a layer's output is as the next layer
reads it, residual adds, and which ops read int8 data (a FakeQuantize feeds them). Needs only the model objects."""

from __future__ import annotations

from fnx.targets.onnx.int8 import module_path

LAYER_OPS = ("Convolution", "GroupConvolution", "MatMul")
COMPUTE_OPS = (*LAYER_OPS, "Gelu")
_PASS_THROUGH = ("Convert", "Reshape", "Transpose", "VariadicSplit", "Split")  # data movement after a FakeQuantize
_CARRIERS = ("Add", "Relu", "FakeQuantize")  # what follows a layer before the next one reads it (bias, ReLU, int8)


def layer_name(node_name: str) -> str:
    """Return the module path of a converted node ("/stages/stages.0/mlp/mlp.0/Conv/WithoutBiases" -> "stages.0.mlp.0")."""
    return module_path(node_name.removesuffix("/WithoutBiases"))


def layer_output(op):
    """Return a conv/matmul's output as the next layer reads it: after its bias Add, a fused ReLU and the
    FakeQuantize that follows (in an int8 IR), as the int8 file computes it; the raw product would leave out the
    layer's own output rounding."""
    out = op.output(0)
    while True:
        users = [t.get_node() for t in out.get_target_inputs()]
        if len(users) != 1 or users[0].get_type_name() not in _CARRIERS or residual_add(users[0]):
            return out
        out = users[0].output(0)


def residual_add(node) -> bool:
    """True for an Add of two computed tensors (FasterNet's residual), not of a layer and its bias (a Constant)."""
    return node.get_type_name() == "Add" and not any(
        node.input_value(i).get_node().get_type_name() == "Constant" for i in range(node.get_input_size()))


def from_fake_quantize(node) -> bool:
    """True when node's value comes from FakeQuantize through data movement only (a Concat: all its inputs)."""
    kind = node.get_type_name()
    if kind == "FakeQuantize":
        return True
    if kind == "Concat":
        return all(from_fake_quantize(node.input_value(i).get_node()) for i in range(node.get_input_size()))
    return kind in _PASS_THROUGH and node.get_input_size() > 0 and from_fake_quantize(node.input_value(0).get_node())
