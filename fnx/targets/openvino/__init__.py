"""The OpenVINO target: IR (.xml graph + .bin weights), NCHW, converted from fnx's ONNX with int8 by NNCF (`export`),
run by OpenVINO's CPU plugin (`engine`). Torch-free."""

from fnx.formats import FileFormat, register_file_format

FILE = register_file_format(FileFormat("openvino", ".xml", "NCHW", "OpenVINO IR (.xml graph + .bin weights)",
                                       sniff=lambda head: head.lstrip().startswith((b"<?xml", b"<net")),
                                       companions=(".bin",), dynamic_batch=True))
