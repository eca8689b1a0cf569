"""Inference engines behind one base class, in a registry ordered by preference.

Each engine lives in its target's package (`fnx.targets.NAME.engine`): LiteRT, tflite-runtime and tf.lite run
TFLite; ONNX Runtime runs ONNX; OpenVINO runs its IR (and ONNX when named). An engine's own package is imported only
when it is asked whether it is available or opens a model. To add one, subclass `Engine` and decorate it with
`register_engine`.
"""

from fnx.runtime.engines.base import (ENGINES, Engine, TensorInfo, check_engine_fits, dist_version, engine_for, get_engine,
                                      open_engine, register_engine)
from fnx.targets import load

load("engine")  # every target's engines, fnx's own first, then other distributions'

__all__ = ["ENGINES", "Engine", "TensorInfo", "check_engine_fits", "dist_version", "engine_for", "get_engine", "open_engine",
           "register_engine"]
