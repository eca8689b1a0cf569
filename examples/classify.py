#!/usr/bin/env python3
"""Classify images with an fnx-exported FasterNet on a Raspberry Pi (or any CPU).

Needs numpy, Pillow and one engine, nothing else (no fnx, no torch):
    pip install numpy pillow ai-edge-litert       # .tflite (or: tflite-runtime 'numpy<2' on older Pi OS)
    pip install numpy pillow onnxruntime          # .onnx
Usage:
    python classify.py MODEL.tflite|MODEL.onnx IMAGE... [--topk 5] [--threads N] [--labels FILE]
    python classify.py MODEL FOLDER/ video.mp4 --fast               # folders (recursive), videos (OpenCV), fast JPEG decode
    python classify.py MODEL --input-npy X.npy --raw-out OUT.npy    # parity: a preprocessed batch in, floats out
The manifest beside the model (MODEL.json, written by `fnx export`) gives the preprocessing,
layout and labels. A camera frame saved to a file is just another IMAGE.
"""

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

# Used only without a manifest: fnx's defaults (fnx.manifest.Preprocessing, timm's FasterNet eval transform).
IMAGENET = {"interpolation": "bicubic", "scale": 1 / 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
            "crop_pct": 0.9}
MANIFEST_SCHEMA = "fnx.manifest/2"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


class Error(Exception):
    """A problem the user can fix; printed without a traceback."""


class Model:
    """One .tflite or .onnx model on the CPU; run() takes and returns float32 (int8 I/O handled here)."""

    def __init__(self, path: Path, threads: int):
        if not path.is_file():
            raise Error(f"model file {path} does not exist")
        self.onnx = path.suffix == ".onnx"
        if self.onnx:
            try:
                import onnxruntime as ort
            except ImportError:
                raise Error("no ONNX engine: pip install onnxruntime") from None
            opts = ort.SessionOptions()
            opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level = threads, 1, 3
            self.sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            i = self.sess.get_inputs()[0]
            self.engine, self.in_name = f"onnxruntime {ort.__version__}", i.name
            self.shape = [d if isinstance(d, int) else None for d in i.shape]
            self.in_q = self.out_q = None  # QDQ int8 ONNX models take and give float
            return
        try:
            from ai_edge_litert.interpreter import Interpreter
            self.engine = "ai-edge-litert"
        except ImportError:
            try:
                from tflite_runtime.interpreter import Interpreter
                self.engine = "tflite-runtime"
            except ImportError:
                raise Error("no TFLite engine: pip install ai-edge-litert (older Pi OS: pip install tflite-runtime 'numpy<2')") from None
        from importlib.metadata import version
        self.engine += " " + version(self.engine)
        with silenced_fds():  # LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on every load
            self.interp = Interpreter(model_path=str(path), num_threads=threads)
            self.interp.allocate_tensors()
        self.inp, self.out = self.interp.get_input_details()[0], self.interp.get_output_details()[0]
        self.shape = [int(d) for d in self.inp["shape"]]
        quant = lambda d: d["quantization"] if np.issubdtype(d["dtype"], np.integer) and d["quantization"][0] else None
        self.in_q, self.out_q = quant(self.inp), quant(self.out)

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Return the float32 outputs for a float batch in the model's layout."""
        if list(batch.shape[1:]) != self.shape[1:]:
            raise Error(f"input of shape {batch.shape} does not fit this model; it takes (N, {', '.join(map(str, self.shape[1:]))})")
        if self.shape[0] is not None and batch.shape[0] != self.shape[0]:  # fixed batch (usually 1): one by one
            return np.concatenate([self.run(batch[i:i + self.shape[0]]) for i in range(0, len(batch), self.shape[0])])
        if self.onnx:
            return self.sess.run(None, {self.in_name: np.ascontiguousarray(batch, dtype=np.float32)})[0].astype(np.float32)
        if self.in_q:  # float -> int8 with the input tensor's own scale and zero point
            scale, zp = self.in_q
            info = np.iinfo(self.inp["dtype"])
            batch = np.clip(np.round(batch.astype(np.float32) / scale) + zp, info.min, info.max)
        self.interp.set_tensor(self.inp["index"], np.ascontiguousarray(batch, dtype=self.inp["dtype"]))
        self.interp.invoke()
        out = self.interp.get_tensor(self.out["index"]).copy()
        if self.out_q:  # int8 -> float
            scale, zp = self.out_q
            return (out.astype(np.float32) - zp) * np.float32(scale)
        return out.astype(np.float32)


@contextlib.contextmanager
def silenced_fds():
    """Send what C++ code writes to stdout/stderr (fds 1 and 2) to /dev/null for the block."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved, devnull = (os.dup(1), os.dup(2)), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def preprocess(path, spec: dict, fast: bool = False) -> np.ndarray:
    """Return an HWC float32 image: short side resized, center-cropped, scaled and normalized as spec says.

    path may be a file or an HWC uint8 RGB frame. fast: decode JPEGs at reduced size (>= 2x the resize target).
    """
    from PIL import Image
    if isinstance(path, np.ndarray):
        return preprocess_image(Image.fromarray(path), spec, fast)
    try:
        with Image.open(path) as im:
            if fast and im.format == "JPEG" and min(im.size) > 2 * int(spec["resize_short"]):
                scale = 2 * int(spec["resize_short"]) / min(im.size)
                im.draft("RGB", (int(im.size[0] * scale + 1), int(im.size[1] * scale + 1)))
            if im.mode.startswith("I;16") or im.mode in ("I", "F"):  # 16-bit/float gray: scale, never clip, to 8 bits
                arr = np.asarray(im, dtype=np.float64)
                full = 65535.0 if im.mode.startswith("I;16") or arr.max(initial=0) > 255 else (
                    1.0 if im.mode == "F" and arr.max(initial=0) <= 1 else 255.0)
                im = Image.fromarray(np.clip(np.round(arr * (255.0 / full)), 0, 255).astype(np.uint8), "L")
            image = im.convert("RGB")
    except Exception as e:  # missing, truncated, not an image...
        raise Error(f"cannot read image {path} ({type(e).__name__}: {e}); is it a valid jpg/png/bmp/webp?") from None
    return preprocess_image(image, spec, fast)


def preprocess_image(image, spec: dict, fast: bool = False) -> np.ndarray:
    """The resize, crop and normalization of preprocess, on a decoded RGB PIL image (fast: the crop's pixels only)."""
    from PIL import Image
    image = image.convert("RGB")
    resample = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST}[spec.get("interpolation", "bicubic")]
    w, h = image.size
    short, crop = int(spec["resize_short"]), int(spec["crop"])
    size = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
    left, top = int(round((size[0] - crop) / 2.0)), int(round((size[1] - crop) / 2.0))
    if fast and size != (w, h):  # resample just the crop (its box mapped onto the source), as fnx's fast mode does
        sx, sy = w / size[0], h / size[1]
        image = image.resize((crop, crop), resample, box=(left * sx, top * sy, (left + crop) * sx, (top + crop) * sy))
    else:
        image = (image.resize(size, resample) if size != (w, h) else image).crop((left, top, left + crop, top + crop))
    arr = np.asarray(image, dtype=np.float32) * np.float32(spec.get("scale", 1 / 255))
    return (arr - np.asarray(spec.get("mean", [0, 0, 0]), np.float32)) / np.asarray(spec.get("std", [1, 1, 1]), np.float32)


def inputs(items, failed: list):
    """Yield (name, path or frame) for image files, folders (recursive) and videos (OpenCV, frame by frame); an
    input that yields nothing (an empty folder, a video that cannot open) is said on stderr and added to failed."""
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(q for q in path.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
            if not found:
                failed.append(f"folder {item} holds no images")
                print(f"failed: folder {item} holds no images ({', '.join(IMAGE_SUFFIXES)})", file=sys.stderr)
            for p in found:
                yield str(p), p
        elif path.suffix.lower() in VIDEO_SUFFIXES or item.startswith("camera:"):
            try:
                import cv2
            except ImportError:
                raise Error("video input needs OpenCV: pip install opencv-python-headless") from None
            cap = cv2.VideoCapture(int(item[7:]) if item.startswith("camera:") else item)
            if not cap.isOpened():
                failed.append(f"cannot open video {item}")
                print(f"failed: cannot open video {item}", file=sys.stderr)
                continue
            n = 0
            while True:
                ok, bgr = cap.read()
                if not ok:
                    break
                yield f"{item}#{n}", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                n += 1
            cap.release()
        else:
            yield item, item


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Classify images with an fnx-exported FasterNet (.tflite or .onnx).")
    ap.add_argument("model", type=Path, help="MODEL.tflite or MODEL.onnx (its manifest MODEL.json beside it)")
    ap.add_argument("images", nargs="*", help="image files (jpg, png, bmp, webp), folders, videos or camera:N")
    ap.add_argument("--fast", action="store_true", help="decode JPEGs at reduced size (much faster on photos)")
    ap.add_argument("--topk", type=int, default=5)
    ap.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1),
                    help="CPU threads (default: this machine's cores, at most 4; a Pi 4/5 has 4)")
    ap.add_argument("--labels", type=Path, help="a text file with one class name per line")
    ap.add_argument("--input-npy", type=Path, help="a preprocessed float batch in the model's layout, instead of images")
    ap.add_argument("--raw-out", type=Path, help="save the float outputs (logits) to this .npy")
    args = ap.parse_args(argv)
    if not args.images and args.input_npy is None:
        ap.error("give at least one IMAGE (or --input-npy)")
    failed: list[str] = []
    try:
        mpath = args.model.with_suffix(".json")
        manifest = json.loads(mpath.read_text()) if mpath.is_file() else {}
        if manifest and manifest.get("schema") != MANIFEST_SCHEMA:
            raise Error(f"{mpath} has manifest schema {manifest.get('schema')!r}; this script reads {MANIFEST_SCHEMA}: "
                        f"re-export the model with the current fnx, or use the classify.py that came with it")
        t0 = time.perf_counter()
        try:
            model = Model(args.model, args.threads)
        except Error:
            raise
        except Exception as e:  # the engines raise RuntimeError/ValueError with C++ messages
            raise Error(f"cannot load {args.model} ({str(e).strip()[:200]}): corrupt, truncated or not a model?") from None
        t1 = time.perf_counter()
        layout = (manifest.get("inputs") or [{}])[0].get("layout") or ("NCHW" if model.onnx else "NHWC")
        spec = manifest.get("preprocessing")
        if not spec:  # no manifest: ImageNet defaults at the model's input size
            size = model.shape[2] if layout == "NCHW" else model.shape[1]
            spec = {**IMAGENET, "crop": size, "resize_short": int(size / IMAGENET["crop_pct"])}
        labels = args.labels.read_text().splitlines() if args.labels else manifest.get("labels") or []
        shape = (1, *model.shape[1:])
        print(f"{args.model.name} on {model.engine}, {args.threads} thread(s), input {layout} {shape}")
        if args.input_npy is not None:  # parity runs: one preprocessed batch in, raw floats out
            pre = time.perf_counter()
            logits = model.run(np.load(args.input_npy).astype(np.float32, copy=False))
            inf = time.perf_counter() - pre
            pre, n = 0.0, len(logits)
            report(logits, [f"input[{i}]" for i in range(n)], labels, args.topk)
        else:  # one image at a time, printed as it goes: memory stays flat on a folder or a video
            pre = inf = 0.0
            n, all_logits = 0, []
            for name, item in inputs(args.images, failed):
                t = time.perf_counter()
                try:
                    x = preprocess(item, spec, fast=args.fast)[None]
                except Error as e:  # like `fnx run`: say it, go on with the others, exit 1 at the end
                    failed.append(str(e))
                    print(f"failed: {e}", file=sys.stderr)
                    continue
                x = np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if layout == "NCHW" else x
                t2 = time.perf_counter()
                logits = model.run(x)
                pre, inf, n = pre + (t2 - t), inf + time.perf_counter() - t2, n + 1
                report(logits, [name], labels, args.topk)
                if args.raw_out:
                    all_logits.append(logits)
            logits = np.concatenate(all_logits) if all_logits else None
        if args.raw_out and logits is not None:
            np.save(args.raw_out, logits)
    except (Error, OSError, ValueError) as e:
        print(f"classify.py: error: {e}", file=sys.stderr)
        return 1
    print(f"time: load {(t1 - t0) * 1e3:.1f} ms, preprocess {pre * 1e3:.1f} ms, "
          f"inference {inf * 1e3:.1f} ms ({inf * 1e3 / max(n, 1):.1f} ms/image)")
    if failed:
        total = n + len(failed)
        rest = f"; the other {n} {'was' if n == 1 else 'were'} classified" if n else ""
        print(f"classify.py: error: {'none' if not n else len(failed)} of {total} input(s) could not be read (listed "
              f"above){rest}", file=sys.stderr)
        return 1
    return 0


def report(logits: np.ndarray, names: list, labels: list, topk: int) -> None:
    """Print the top-k classes of each row of logits (nothing for backbone outputs)."""
    if logits.ndim != 2:
        return
    e = np.exp(logits - logits.max(1, keepdims=True))
    probs = e / e.sum(1, keepdims=True)
    for name, p in zip(names, probs):
        print(name)
        for i in np.argsort(-p)[:min(topk, p.size)]:
            print(f"  {p[i]:7.2%}  {i:5d}  {labels[i] if i < len(labels) else ''}".rstrip())


if __name__ == "__main__":
    sys.exit(main())
