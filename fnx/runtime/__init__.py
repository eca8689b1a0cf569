"""The torch-free runtime: `load(path)` gives a Session on LiteRT / tflite-runtime / ONNX Runtime.

Imports numpy only; each engine is imported when a model of its format is loaded.
"""

from fnx.runtime.session import Prediction, Session, load

__all__ = ["Prediction", "Session", "load"]
