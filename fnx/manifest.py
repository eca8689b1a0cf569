"""The manifest: a JSON beside each artifact (`X.tflite` -> `X.json`) saying what it is and how to feed it.

Torch-free: the runtime reads it on the device.
"""

from __future__ import annotations

import json
from pathlib import Path

from fnx.errors import FnxError
from fnx.fileio import write_text_atomic

SCHEMA = "fnx.manifest/1"


def manifest_path(artifact: str | Path) -> Path:
    """Return the manifest path for an artifact (same name, `.json`)."""
    return Path(artifact).with_suffix(".json")


def read_manifest(artifact: str | Path) -> dict | None:
    """Return the manifest beside artifact, or None if there is none."""
    path = manifest_path(artifact)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise FnxError(f"manifest {path} is not valid JSON ({e}); re-export the model or delete the file") from e
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise FnxError(f"{path} is not an fnx manifest (schema {SCHEMA!r} expected); move it aside or re-export")
    return data


def write_manifest(artifact: str | Path, manifest: dict) -> Path:
    """Write manifest beside artifact atomically; returns its path."""
    return write_text_atomic(manifest_path(artifact), json.dumps(manifest, indent=2, sort_keys=False) + "\n")


def embed_in_onnx(path: str | Path, manifest: dict) -> None:
    """Store manifest as the `fnx.manifest` metadata_props entry of an ONNX file (in place)."""
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = "fnx.manifest", json.dumps(manifest, sort_keys=True)
    model.producer_name, model.producer_version = "fnx", manifest.get("converter", {}).get("fnx", "")
    onnx.save(model, str(path))
