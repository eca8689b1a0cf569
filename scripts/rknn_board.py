"""Run an fnx .rknn on a Rockchip board (RK3588, RK3576, RK356x...) with RKNN Lite 2, on one image or a folder.

On the board (Debian/Ubuntu aarch64 with Rockchip's NPU driver): `pip install rknn-toolkit-lite2 pillow numpy`, copy
the .rknn with its manifest (.json, same name), then `python3 rknn_board.py MODEL.rknn IMAGE_OR_FOLDER [--core 0]`.
It preprocesses as the manifest says (resize the short side, center-crop, scale, normalize: float NCHW, as fnx's
parity check fed the simulator), prints the top-5 classes and the mean latency. Needs nothing of fnx.

fnx could not run this on hardware: no Rockchip board was at hand when it was written (docs/guides/rknn.md).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def preprocess(path: Path, pre: dict) -> np.ndarray:
    """The manifest's preprocessing: short side to resize_short, center crop, scale, normalize; 1 x C x H x W."""
    im = Image.open(path).convert("RGB")
    w, h = im.size
    s = pre["resize_short"] / min(w, h)
    im = im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BICUBIC)
    w, h = im.size
    c = pre["crop"]
    left, top = (w - c) // 2, (h - c) // 2
    x = np.asarray(im.crop((left, top, left + c, top + c)), dtype=np.float32) * pre["scale"]
    x = (x - np.array(pre["mean"], np.float32)) / np.array(pre["std"], np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def main() -> None:
    from rknnlite.api import RKNNLite

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("images", type=Path)
    ap.add_argument("--core", type=int, default=None, help="NPU core (RK3588/RK3576: 0, 1, 2); default: the driver's")
    args = ap.parse_args()
    manifest = json.loads(args.model.with_suffix(".json").read_text())
    labels = manifest.get("labels") or []
    paths = sorted(p for p in args.images.rglob("*") if p.suffix.lower() in SUFFIXES) if args.images.is_dir() \
        else [args.images]
    rknn = RKNNLite()
    if rknn.load_rknn(str(args.model)) != 0:
        raise SystemExit(f"RKNN Lite could not load {args.model}")
    cores = {0: RKNNLite.NPU_CORE_0, 1: RKNNLite.NPU_CORE_1, 2: RKNNLite.NPU_CORE_2}
    ret = rknn.init_runtime(core_mask=cores[args.core]) if args.core is not None else rknn.init_runtime()
    if ret != 0:
        raise SystemExit("RKNN Lite could not start the NPU runtime (is this a Rockchip board with its NPU driver?)")
    times = []
    for path in paths:
        x = preprocess(path, manifest["preprocessing"])
        t0 = time.perf_counter()
        logits = rknn.inference(inputs=[x], data_format=["nchw"])[0].reshape(-1)
        times.append(time.perf_counter() - t0)
        top = np.argsort(logits)[::-1][:5]
        print(path.name, ", ".join(f"{labels[i] if i < len(labels) else i} {logits[i]:.3f}" for i in top))
    rknn.release()
    print(f"{len(times)} image(s), mean {1e3 * np.mean(times):.2f} ms per inference (NPU, batch 1)")


if __name__ == "__main__":
    main()
