"""The TFLite target: LiteRT flatbuffers, NHWC, made by litert-torch (`export`), run by LiteRT, tflite-runtime or
tf.lite (`engine`). Torch-free."""

from fnx.formats import FileFormat, register_file_format

FILE = register_file_format(FileFormat("tflite", ".tflite", "NHWC", "TFLite model (LiteRT flatbuffer)",
                                       sniff=lambda head: head[4:8] == b"TFL3"))
