"""Reproduce the shipped demo model: FasterNet-T0 at 64x64 trained on the digits demo set.

    python -m fnx.demo.train_demo [--out fnx/demo/fasternet_t0_digits.safetensors]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from fnx.demo.digits import build_digits
from fnx.progress import Steps
from fnx.training.fit import TrainOptions, accuracy, save_checkpoint, train

DEMO_DIR = Path(__file__).parent
DEMO_CHECKPOINT = DEMO_DIR / "fasternet_t0_digits.safetensors"
DEMO_OPTIONS = TrainOptions(epochs=15, batch_size=32, lr=3e-3, img_size=64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=DEMO_CHECKPOINT)
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "fnx-digits")
    ap.add_argument("--epochs", type=int, default=DEMO_OPTIONS.epochs)
    args = ap.parse_args()
    t0 = time.time()
    data = build_digits(args.data)
    opts = TrainOptions(**{**vars(DEMO_OPTIONS), "epochs": args.epochs})
    full = args.out.with_suffix(".pth")
    sidecar = train("fasternet_t0", data, full, opts, Steps())
    from fnx.models import create_model
    from fnx.training.fit import _load, image_folder

    model = create_model("fasternet_t0", weights=str(full))
    _, test_items = image_folder(data / "test")
    xte, yte = _load(test_items, sidecar.preprocessing, center=True)
    sidecar.extra = {"test_acc": accuracy(model, xte, yte), "train_seconds": round(time.time() - t0, 1),
                     "stored_as": "float16 (loads as float32)"}
    full.unlink()  # its sidecar (same stem) is rewritten below for the final file
    save_checkpoint(model, args.out, sidecar, half=True)
    print(json.dumps({"val_acc": sidecar.val_acc, "epoch": sidecar.epoch, **sidecar.extra}, indent=1))


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
