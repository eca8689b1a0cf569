"""TFLite conversion: the deploy-form model traced by litert-torch with NHWC input and outputs (no Transpose ops),
and float16 weights through ai-edge-quantizer."""

from __future__ import annotations

import os
from pathlib import Path

from fnx.errors import FnxError
from fnx.install import pip_install
from fnx.quiet import import_quietly

# litert-torch prints a progress tree and TF-style logs unless told not to.
os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def litert_torch():
    """Return the litert_torch module (FnxError naming the extra when it is missing)."""
    import logging

    # torchao logs missing optional CUDA kernels and torch logs pytree deprecations on import: noise here.
    for name in ("torchao", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        lt = import_quietly("litert_torch")
    except ImportError as e:
        raise FnxError(f"TFLite export needs litert-torch: {pip_install('export')}") from e
    return lt


def channel_last(model, n_outputs_nchw: int = 0):
    """Return model wrapped to take NHWC input (and give its first n_outputs_nchw outputs as NHWC)."""
    outputs = list(range(n_outputs_nchw)) or None
    return litert_torch().to_channel_last_io(model, args=[0], outputs=outputs).eval()


def export_tflite(model, path: Path, sample_nhwc, n_feature_maps: int = 0, quant_config=None) -> None:
    """Write model (NCHW deploy form) to path as an NHWC TFLite flatbuffer."""
    edge = litert_torch().convert(channel_last(model, n_feature_maps), (sample_nhwc,), quant_config=quant_config)
    edge.export(str(path))


def to_fp16(src: Path, dest: Path) -> None:
    """Write src with float16 weights (dequantized to float at run time, or run in fp16 where the engine can)."""
    from ai_edge_quantizer import qtyping, quantizer
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    from fnx.quiet import quiet

    q = quantizer.Quantizer(str(src))
    q.add_weight_only_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=16,
                             algorithm_key=AlgorithmName.FLOAT_CASTING)
    quiet(lambda: q.quantize().export_model(str(dest), overwrite=True))
