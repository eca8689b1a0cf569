"""The ExecuTorch target: `.pte` programs, NCHW, lowered to ExecuTorch's XNNPACK delegate (`export`, `lower`; int8
through PT2E with XNNPACK's quantizer: `int8`), run by ExecuTorch's own runtime (`engine`, which imports torch).
Torch-free."""

from fnx.formats import FileFormat, register_file_format


def _looks_like_pte(head: bytes) -> bool:
    # a .pte is a flatbuffer with the file identifier "ETnn" (the program schema's version) at bytes 4-8
    return head[4:6] == b"ET" and head[6:8].isdigit()


FILE = register_file_format(FileFormat("executorch", ".pte", "NCHW", "ExecuTorch program (.pte)", sniff=_looks_like_pte))
