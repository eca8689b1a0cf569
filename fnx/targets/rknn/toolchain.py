"""rknn-toolkit2's isolated environment. The wheel pins torch<=2.4.0 (a CUDA build of several GB here) for its
PyTorch front end; fnx hands it an ONNX file instead. Its modules still import torch on load, and any torch serves
that: the wheel is installed without its declared dependencies, then what its ONNX build and simulator import,
pinned as the wheel pins them, with torch held to this machine's CPU build (fnx.toolchains)."""

from __future__ import annotations

from fnx.toolchains import Toolchain, register_toolchain

TOOLKIT = "rknn-toolkit2==2.5.0"

RKNN = register_toolchain(Toolchain(
    "rknn", "Rockchip rknn-toolkit2: ONNX -> int8 .rknn, run on its simulator",
    requirements=("torch", "numpy==1.26.4", "onnx==1.18.0", "onnxruntime>=1.17,<1.27", "protobuf>=4.21.6,<=4.25.4",
                  "scipy>=1.9.3", "ruamel.yaml>=0.17.21", "psutil>=5.9.0", "tqdm>=4.64.1",
                  "opencv-python-headless>=4.5.5.64", "fast-histogram>=0.11",
                  "setuptools<81"),  # its modules import pkg_resources, which setuptools 81 dropped
    no_deps=(TOOLKIT,)))
