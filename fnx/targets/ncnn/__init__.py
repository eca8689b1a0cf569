"""The ncnn target: a text graph (.param) and its weights (.bin), NCHW, written by pnnx from TorchScript (`export`),
run by ncnn's own Python wheel with no torch (`engine`). Torch-free."""

from fnx.formats import FileFormat, register_file_format

MAGIC = b"7767517"  # the first line of every ncnn .param text file

FILE = register_file_format(FileFormat("ncnn", ".param", "NCHW", "ncnn model (.param graph + .bin weights)",
                                       sniff=lambda head: head.startswith(MAGIC), companions=(".bin",)))
