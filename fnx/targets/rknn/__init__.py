"""The RKNN target: fnx's fp32 ONNX built by Rockchip's rknn-toolkit2 into an int8 (w8a8) `.rknn` for a Rockchip NPU
(RK3588, RK3576, RK356x, RV110x, ...), in the toolkit's own isolated environment (`toolchain`, `build`, `export`).

Nothing here runs a `.rknn` (no engine): RKNN Lite 2 runs it on the board (docs/guides/rknn.md,
scripts/rknn_board.py). Its parity is measured at export on the toolkit's simulator, which can run a model only
while the toolkit builds it (a saved `.rknn` cannot be reloaded into it). Torch-free.
"""

from __future__ import annotations

from fnx.formats import FileFormat, register_file_format

# --target names: the target_platform values rknn-toolkit2 2.5.0 builds fnx's model for (each built and simulated
# here); the first is the default. It also names rk2118, an MCU-class NPU whose build refuses the float-input stem
# conv ("Meet unsupported conv ... input type: 3"): left out.
PLATFORMS = ("rk3588", "rk3576", "rk3568", "rk3566", "rk3562", "rv1103", "rv1106", "rv1103b", "rv1106b", "rv1126b")
MAGIC = b"RKNN"  # a .rknn file's first bytes

FILE = register_file_format(FileFormat(
    "rknn", ".rknn", "NCHW", "RKNN model for a Rockchip NPU (rknn-toolkit2)", sniff=lambda head: head[:4] == MAGIC,
    targets=PLATFORMS,
    runs_on="a Rockchip NPU, through RKNN Lite 2 on the board (docs/guides/rknn.md, scripts/rknn_board.py); its "
            "parity and each layer's cosine were measured at export on rknn-toolkit2's simulator, which cannot run a "
            "saved .rknn (its manifest: parity, compilation.layers)"))
