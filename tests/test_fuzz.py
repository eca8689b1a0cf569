"""Fuzzing the loaders: random bytes and mutated valid files give an FnxError (or a valid result), never another
exception or a crash. Bounded: a fixed number of examples, derandomized, so `make test` stays fast and repeatable."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from fnx.errors import FnxError
from fnx.manifest import read_manifest
from fnx.runtime.preprocess import load_image, preprocess

pytestmark = pytest.mark.filterwarnings("ignore::fnx.runtime.preprocess.SmallImageWarning")
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)


def _valid_manifest(t0_exports) -> dict:
    return json.loads(t0_exports["tflite"].artifact.with_suffix(".json").read_text())


def _read(tmp_path, raw: bytes):
    art = tmp_path / "m.tflite"
    art.write_bytes(b"x")
    art.with_suffix(".json").write_bytes(raw)
    try:
        read_manifest(art)
    except FnxError:
        pass


@FUZZ
@given(raw=st.binary(max_size=2000))
def test_manifest_reader_random_bytes(tmp_path, raw):
    _read(tmp_path, raw)


@FUZZ
@given(data=st.data())
def test_manifest_reader_mutated_manifests(tmp_path, t0_exports, data):
    m = _valid_manifest(t0_exports)
    node, path = m, []
    while isinstance(node, (dict, list)) and node and data.draw(st.booleans(), label="descend"):
        key = data.draw(st.sampled_from(sorted(node) if isinstance(node, dict) else list(range(len(node)))))
        path.append(key)
        if not isinstance(node[key], (dict, list)):
            break
        node = node[key]
    parent = m
    for key in path[:-1]:
        parent = parent[key]
    if path:
        action = data.draw(st.sampled_from(["delete", "replace"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(json_values)
    _read(tmp_path, json.dumps(m).encode())


def _image_bytes(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.arange(48 * 40 * 3, dtype=np.uint8).reshape(40, 48, 3)).save(buf, format=fmt)
    return buf.getvalue()


VALID_IMAGES = {s: _image_bytes(f) for s, f in ((".png", "PNG"), (".jpg", "JPEG"), (".bmp", "BMP"), (".webp", "WEBP"))}


@FUZZ
@given(suffix=st.sampled_from(sorted(VALID_IMAGES)), data=st.data())
def test_image_loader_mutated_and_random_files(tmp_path, suffix, data):
    raw = bytearray(VALID_IMAGES[suffix])
    kind = data.draw(st.sampled_from(["flip", "truncate", "random"]))
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 20))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    elif kind == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    else:
        raw = bytearray(data.draw(st.binary(max_size=3000)))
    path = tmp_path / f"img{suffix}"
    path.write_bytes(bytes(raw))
    try:
        x = preprocess(load_image(path))
        assert x.shape == (224, 224, 3) and np.isfinite(x).all()
    except FnxError:
        pass


FUZZ_MODELS = r"""
import os, random, sys
import numpy as np
from fnx.errors import FnxError
from fnx.runtime import load
src, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data, rng = open(src, "rb").read(), random.Random(seed)
other = []
for i in range(n):
    b = bytearray(data)
    kind = ("flip", "truncate", "chunk", "random")[i % 4]
    if kind == "flip":
        for _ in range(rng.randint(1, 50)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif kind == "truncate":
        b = b[: rng.randrange(len(b))]
    elif kind == "chunk":
        s = rng.randrange(len(b)); b[s:s + 4096] = bytes(rng.randrange(256) for _ in range(min(4096, len(b) - s)))
    else:
        b = bytearray(rng.randbytes(rng.randint(0, 5000)))
    path = os.path.join(sys.argv[4], f"m{i}" + os.path.splitext(src)[1])
    open(path, "wb").write(b)
    try:
        s = load(path, device="cpu", check_manifest=False)
        s.run(np.zeros([d or 1 for d in s.input_shape], np.float32))
    except FnxError:
        pass
    except Exception as e:
        other.append(f"{kind} #{i}: {type(e).__name__}: {str(e)[:150]}")
print("\n".join(other) or "ok")
"""


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_model_opening_mutated_and_random_files(t0_exports, tmp_path, fmt):
    """In a child process, so an engine crash fails this test instead of killing the test run."""
    r = subprocess.run([sys.executable, "-c", FUZZ_MODELS, str(t0_exports[fmt].artifact), "48", "7", str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"the engine crashed (rc {r.returncode}):\n{r.stderr[-2000:]}"
    assert r.stdout.strip().splitlines()[-1] == "ok", r.stdout
