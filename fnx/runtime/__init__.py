"""The torch-free runtime: `load(path)` gives a Session on the best installed engine for the artifact.

Imports numpy only; each engine's package is imported when a model of its format is opened.
`ENGINES` lists the engines (LiteRT, tflite-runtime, tf.lite, ONNX Runtime); `register_engine` adds one.
"""

from fnx.runtime.engines import ENGINES, Engine, TensorInfo, register_engine
from fnx.runtime.placement import Placement, RunOptions, resolve_placement
from fnx.runtime.session import Prediction, Session, load

__all__ = ["ENGINES", "Engine", "Placement", "RunOptions", "Prediction", "Session", "TensorInfo", "load", "register_engine",
           "resolve_placement"]
