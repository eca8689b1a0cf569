"""examples/classify.py: the standalone Pi script agrees exactly with fnx's runtime, and needs neither fnx nor torch."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

CLASSIFY = Path(__file__).resolve().parents[1] / "examples" / "classify.py"

# Runs classify.py as __main__ in a clean interpreter, then reports which of fnx/torch got imported.
# BLOCK (module names) makes those imports fail, as on a device without that engine.
WRAPPER = r"""
import json, runpy, sys
argv, block = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for name in block:
    sys.modules[name] = None
sys.argv = [argv[0]] + argv[1:]
rc = 0
try:
    runpy.run_path(argv[0], run_name="__main__")
except SystemExit as e:
    rc = e.code if isinstance(e.code, int) else 1
print("LOADED=" + json.dumps(sorted({m.split(".")[0] for m in sys.modules} & {"fnx", "torch"})))
sys.exit(rc)
"""


def classify(*args, block=(), cwd=None):
    """Run classify.py in a subprocess without fnx on sys.path; returns (rc, stdout, stderr, loaded fnx/torch)."""
    argv = [str(CLASSIFY)] + [str(a) for a in args]
    r = subprocess.run([sys.executable, "-c", WRAPPER, json.dumps(argv), json.dumps(list(block))],
                       capture_output=True, text=True, cwd=cwd or CLASSIFY.parent, timeout=120)
    m = re.search(r"^LOADED=(.*)$", r.stdout, re.M)
    return r.returncode, r.stdout, r.stderr, json.loads(m.group(1)) if m else None


def top5(stdout: str) -> list[list[int]]:
    """Parse the class indices of each image's block ('  97.12%      5  label')."""
    blocks, cur = [], None
    for line in stdout.splitlines():
        m = re.match(r"^\s+([\d.]+)%\s+(\d+)", line)
        if m:
            cur.append(int(m.group(2)))
        elif line and not line.startswith((" ", "time:", "LOADED=")) and " on " not in line:
            cur = []
            blocks.append(cur)
    return blocks


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Two non-square RGB PNGs (resize + crop both matter) and one undecodable file."""
    from PIL import Image

    from fnx.calibration.synthetic import synthetic_images

    d = tmp_path_factory.mktemp("images")
    ims = synthetic_images(2, size=120, seed=3)
    paths = [d / "wide.png", d / "tall.png"]
    Image.fromarray(ims[0][:90]).save(paths[0])
    Image.fromarray(ims[1][:, :77]).save(paths[1])
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    return paths, d / "broken.jpg"


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_classify_matches_runtime(fmt, t0_exports, images, tmp_path):
    from fnx.runtime import load

    model = t0_exports[fmt].artifact
    paths, _ = images
    session = load(model, device="cpu", threads=1)
    raw = tmp_path / "raw.npy"
    rc, out, err, loaded = classify(model, *paths, "--topk", "5", "--threads", "1", "--raw-out", raw)
    assert rc == 0, err
    assert loaded == [], f"classify.py imported {loaded}"
    assert re.search(r"time: load [\d.]+ ms, preprocess [\d.]+ ms, inference [\d.]+ ms", out)
    assert top5(out) == [p.indices for p in session.predict(paths, topk=5)]
    np.testing.assert_array_equal(np.load(raw), session.run(session.preprocess(paths))[0])

    # the parity path: a preprocessed batch in the model's layout in, raw floats out
    x = np.random.default_rng(0).standard_normal((3, *session.input_shape[1:])).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    rc, out, err, _ = classify(model, "--input-npy", tmp_path / "x.npy", "--raw-out", raw, "--threads", "1")
    assert rc == 0, err
    np.testing.assert_array_equal(np.load(raw), session.run(x)[0])


def test_classify_labels_file(t0_exports, images, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"thing-{i}" for i in range(10)) + "\n")
    rc, out, err, _ = classify(t0_exports["onnx"].artifact, images[0][0], "--labels", labels, "--topk", "2")
    assert rc == 0, err
    assert len(re.findall(r"^\s+[\d.]+%\s+\d+\s+thing-\d$", out, re.M)) == 2


def test_classify_clear_errors(t0_exports, images):
    _, broken = images
    rc, out, err, _ = classify(t0_exports["tflite"].artifact, broken)
    assert rc != 0 and "cannot read image" in err and "broken.jpg" in err and "Traceback" not in err
    rc, out, err, _ = classify(t0_exports["tflite"].artifact, images[0][0], block=("ai_edge_litert", "tflite_runtime"))
    assert rc != 0 and "pip install ai-edge-litert" in err and "Traceback" not in err
    rc, out, err, _ = classify(t0_exports["onnx"].artifact, images[0][0], block=("onnxruntime",))
    assert rc != 0 and "pip install onnxruntime" in err and "Traceback" not in err


def test_classify_folder_fast_matches_the_streamed_runtime(t0_exports, tmp_path):
    """Folders (recursive) and --fast: the same files, in the same order, with the same fast decode as fnx run."""
    from fnx.dev.images import write_jpegs
    from fnx.runtime import load

    write_jpegs(tmp_path / "photos" / "day1", 2, seed=1)
    write_jpegs(tmp_path / "photos" / "day2", 1, seed=2)
    model = t0_exports["tflite"].artifact
    rc, out, err, loaded = classify(model, tmp_path / "photos", "--fast", "--threads", "1")
    assert rc == 0 and loaded == [], err
    streamed = list(load(model, device="cpu", threads=1).stream([str(tmp_path / "photos")], mode="fast"))
    assert top5(out) == [r.prediction.indices for r in streamed] and len(streamed) == 3
