"""The ONNX target: protobuf files, NCHW, traced by torch.onnx and simplified by onnxslim, int8 by ONNX Runtime's
QDQ quantization (`export`, `int8`, `int8_form`), run by ONNX Runtime (`engine`; OpenVINO runs them too). An ONNX
file can carry its manifest inside (metadata_props). Torch-free."""

from __future__ import annotations

from pathlib import Path

from fnx.formats import EMBED_KEY, FileFormat, register_file_format

# fnx's --calib-method -> ONNX Runtime's CalibrationMethod (it has no MSE calibrator)
CALIBRATORS = {"minmax": "MinMax", "percentile": "Percentile", "entropy": "Entropy"}


def _looks_like_onnx(head: bytes) -> bool:
    # onnx.save writes ModelProto's fields in number order: field 1, ir_version (a small varint), comes first
    return len(head) >= 2 and head[0] == 0x08 and 0 < head[1] < 0x40


def _embed_in_onnx(path: Path, manifest_json: str) -> None:
    """Store the manifest as the `fnx.manifest` metadata_props entry of an ONNX file (in place)."""
    import onnx

    from fnx import __version__

    model = onnx.load(str(path))
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = EMBED_KEY, manifest_json
    model.producer_name, model.producer_version = "fnx", __version__
    onnx.save(model, str(path))


def _read_embedded_onnx(path: Path) -> str | None:
    """Return the `fnx.manifest` metadata_props entry of an ONNX file, None if absent or onnx is not installed (on a
    device with ONNX Runtime alone, the Session reads it from the engine: `Engine.embedded_metadata`)."""
    try:
        import onnx
    except ImportError:
        return None
    try:
        return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}.get(EMBED_KEY)
    except Exception:  # noqa: BLE001 - a damaged file: the engine that opens it says what is wrong
        return None


FILE = register_file_format(FileFormat("onnx", ".onnx", "NCHW", "ONNX model (protobuf)", sniff=_looks_like_onnx,
                                       embed=_embed_in_onnx, read_embedded=_read_embedded_onnx, dynamic_batch=True))
