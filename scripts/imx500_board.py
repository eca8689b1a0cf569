"""Run an fnx IMX500 classifier on the Raspberry Pi AI Camera with picamera2, and print its top classes per frame.

On the Pi (Raspberry Pi OS, AI Camera attached): `sudo apt install imx500-all python3-picamera2` (the sensor's
firmware and Sony's packaging tool), then turn fnx's packerOut zip into the camera's .rpk, once:
`imx500-package -i fasternet_t0_224_imx500_int8.zip -o rpk/`, and run
`python3 imx500_board.py rpk/network.rpk fasternet_t0_224_imx500_int8.json [--frames 100]`.
The network runs on the sensor itself: the Pi receives its output tensor with each frame's metadata. The script
centre-crops the sensor's view to the network's square input (as fnx's preprocessing centre-crops), prints the
top-5 classes with the manifest's labels, and the rate at which inference results arrived. Needs nothing of fnx.

fnx could not run this on hardware: no AI Camera was at hand when it was written (docs/guides/imx500.md).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    from picamera2 import Picamera2
    from picamera2.devices import IMX500
    from picamera2.devices.imx500 import NetworkIntrinsics

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rpk", type=Path, help="the .rpk imx500-package made from fnx's zip")
    ap.add_argument("manifest", type=Path, help="fnx's manifest (.json beside the zip): the class labels")
    ap.add_argument("--frames", type=int, default=100, help="frames with an inference result to print")
    args = ap.parse_args()
    labels = json.loads(args.manifest.read_text()).get("labels") or []

    imx500 = IMX500(str(args.rpk))  # before Picamera2: it uploads the network to the sensor
    intrinsics = imx500.network_intrinsics or NetworkIntrinsics()
    intrinsics.task = "classification"
    intrinsics.update_with_defaults()
    picam2 = Picamera2(imx500.camera_num)
    config = picam2.create_preview_configuration(controls={"FrameRate": intrinsics.inference_rate}, buffer_count=12)
    imx500.show_network_fw_progress_bar()
    picam2.start(config, show_preview=False)
    imx500.set_auto_aspect_ratio()  # the sensor's centre, cropped to the network's aspect ratio
    done, started = 0, None
    while done < args.frames:
        outputs = imx500.get_outputs(picam2.capture_metadata())
        if outputs is None:  # no inference result with this frame (yet)
            continue
        started = started or time.perf_counter()
        logits = np.asarray(outputs[0], dtype=np.float32).reshape(-1)
        top = np.argsort(logits)[::-1][:5]
        print(", ".join(f"{labels[i] if i < len(labels) else i} {logits[i]:.3f}" for i in top))
        done += 1
    seconds = time.perf_counter() - started
    picam2.stop()
    print(f"{done} inference results in {seconds:.1f} s ({(done - 1) / max(seconds, 1e-9):.1f} per second, on the "
          f"sensor)")


if __name__ == "__main__":
    main()
