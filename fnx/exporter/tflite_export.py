"""Trace a deploy-form FasterNet to TFLite with litert-torch, NHWC in and out (no Transpose ops)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import torch

# litert-torch prints a progress tree and TF-style logs unless told not to.
os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _litert_torch():
    import logging

    # torchao logs missing optional CUDA kernels and torch logs pytree deprecations on import: noise here.
    for name in ("torchao", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import litert_torch
    except ImportError as e:
        from fnx.errors import FnxError

        raise FnxError("TFLite export needs litert-torch: pip install 'fnx[export]'") from e
    return litert_torch


def channel_last(model: torch.nn.Module, features: bool) -> torch.nn.Module:
    """Return model wrapped to take NHWC input (and give NHWC feature maps when features=True)."""
    lt = _litert_torch()
    outputs = [0, 1, 2, 3] if features else None
    return lt.to_channel_last_io(model, args=[0], outputs=outputs).eval()


def export_tflite(model: torch.nn.Module, path: Path, sample_nhwc: torch.Tensor, features: bool = False,
                  quant_config=None) -> None:
    """Write model (NCHW deploy form) to path as an NHWC TFLite flatbuffer."""
    lt = _litert_torch()
    wrapped = channel_last(model, features)
    edge = lt.convert(wrapped, (sample_nhwc,), quant_config=quant_config)
    edge.export(str(path))


def to_fp16(src: Path, dest: Path) -> None:
    """Write src with float16 weights (dequantized to float at run time, or run in fp16 where the engine can)."""
    from ai_edge_quantizer import qtyping, quantizer
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    q = quantizer.Quantizer(str(src))
    q.add_weight_only_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=16,
                             algorithm_key=AlgorithmName.FLOAT_CASTING)
    from fnx.quiet import quiet

    quiet(lambda: q.quantize().export_model(str(dest), overwrite=True))




def tflite_op_counts(path: Path) -> Counter:
    """Return the number of ops of each type in a TFLite file (before any delegate rewrites the graph)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    return Counter(op["op_name"] for op in it._get_ops_details())
