#!/usr/bin/env python3
"""Classify an image through `fnx serve` with NVIDIA's tritonclient, on the tensor route (POST .../infer).

The client preprocesses: it reads the artifact's manifest (X.json, written by `fnx export`) for the transform and
labels, and the server's model metadata for the input's name, shape, layout and datatype, so the same script works
for TFLite (NHWC, `serving_default_args_0`) and ONNX (NCHW, `input`) artifacts.
    pip install 'tritonclient[http]' numpy pillow
    python triton_client.py MODEL.json IMAGE --model NAME [--url localhost:8000] [--topk 3]
(`fnx serve`'s own POST /v2/models/NAME/classify takes the encoded image and preprocesses on the server instead.)
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from classify import Error, preprocess  # noqa: E402  (the on-device script's preprocessing: same transform as fnx)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("manifest", type=Path, help="the artifact's manifest (X.json beside the served file)")
    ap.add_argument("image", type=Path)
    ap.add_argument("--url", default="localhost:8000", help="HOST:PORT of fnx serve")
    ap.add_argument("--model", required=True, help="the name it is served under (fnx serve NAME=FILE)")
    ap.add_argument("--topk", type=int, default=1)
    args = ap.parse_args(argv)
    try:
        import tritonclient.http as http
    except ImportError:
        print("triton_client.py: error: pip install 'tritonclient[http]'", file=sys.stderr)
        return 1
    try:
        manifest = json.loads(args.manifest.read_text())
        client = http.InferenceServerClient(args.url)
        name = args.model
        meta = client.get_model_metadata(name)
        inp, out = meta["inputs"][0], meta["outputs"][0]
        layout = meta.get("parameters", {}).get("layout", "NCHW")
        x = preprocess(args.image, manifest["preprocessing"])[None]  # HWC float32 -> batch of one
        if layout == "NCHW":
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        tensor = http.InferInput(inp["name"], list(x.shape), inp["datatype"])
        tensor.set_data_from_numpy(x.astype(np.float32))
        logits = client.infer(name, [tensor]).as_numpy(out["name"])[0]
    except (Error, OSError, KeyError, ValueError) as e:
        print(f"triton_client.py: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # tritonclient's InferenceServerException: the server's own message
        print(f"triton_client.py: error: the server said: {e}", file=sys.stderr)
        return 1
    print(f"{name}: input {inp['name']} {list(x.shape)} {layout} {inp['datatype']}, output {out['name']}")
    p = np.exp(logits - logits.max())
    p /= p.sum()
    labels = manifest.get("labels") or []
    for i in np.argsort(-p)[: args.topk]:
        print(f"  {labels[i] if i < len(labels) else i}  {p[i]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
