"""Inference engines behind one protocol, in a registry ordered by preference.

LiteRT, tflite-runtime and tf.lite run TFLite; ONNX Runtime runs ONNX; OpenVINO runs its IR (and ONNX
when named). Each engine's own package
is imported only when it is asked whether it is available or opens a model. To add one, write a
class with the `Engine` attributes and methods and decorate it with `register_engine`.
"""

from fnx.runtime.engines.base import (ENGINES, Engine, TensorInfo, check_engine_fits, dist_version, engine_for, get_engine,
                                      open_engine, register_engine)
from fnx.runtime.engines import tflite as _tflite  # noqa: F401  (registers LiteRT, tflite-runtime, tf.lite)
from fnx.runtime.engines import onnxruntime as _onnxruntime  # noqa: F401  (registers ONNX Runtime)
from fnx.runtime.engines import openvino as _openvino  # noqa: F401  (registers OpenVINO: IR, and ONNX when asked)
from fnx.plugins import load_targets

load_targets()  # other distributions' targets (entry point group fnx.targets), after fnx's own

__all__ = ["ENGINES", "Engine", "TensorInfo", "check_engine_fits", "dist_version", "engine_for", "get_engine", "open_engine",
           "register_engine"]
