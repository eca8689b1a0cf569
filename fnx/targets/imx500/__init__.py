"""The IMX500 target: a FasterNet quantized by Sony's Model Compression Toolkit (MCT) for the IMX500 sensor's NPU
(Raspberry Pi AI Camera) and converted by `imxconv-pt` into its `packerOut.zip`, in its own isolated environment
(`toolchain`, `build`, `export`).

Nothing here runs that file (no engine): on the Pi, `imx500-package` turns it into the `.rpk` the camera loads
(docs/guides/imx500.md, scripts/imx500_board.py). Its parity is measured at export on MCT's quantized model (there is
no IMX500 simulator), and the converter's memory report says whether it fits the sensor's memory. Torch-free.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from fnx.formats import FileFormat, register_file_format

TARGET = "imx500"  # one device: the sensor of the Raspberry Pi AI Camera
# the sensor's memory for weights and runtime, as imxconv-pt 3.19.2's memory report gives it ("Total Memory Available
# On Chip", bytes; tests/fixtures/imx500)
SENSOR_MEMORY_BYTES = 8388480
PACKED = ("dnnParams.xml", "l2staticData.bin")  # what every packerOut.zip imxconv-pt writes holds


def is_packer_output(path: Path) -> bool:
    """Whether the zip at path is a converter's packerOut.zip (by the files it holds)."""
    try:
        with zipfile.ZipFile(path) as z:
            return set(PACKED) <= set(z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


FILE = register_file_format(FileFormat(
    "imx500", ".zip", "NCHW", "Sony IMX500 converter output (packerOut.zip) for the Raspberry Pi AI Camera",
    sniff=lambda head: head[:4] == b"PK\x03\x04", claims=is_packer_output, targets=(TARGET,),
    runs_on="the Raspberry Pi AI Camera's IMX500, once `imx500-package` on the Pi has made its .rpk "
            "(docs/guides/imx500.md, scripts/imx500_board.py); its parity was measured at export on Sony MCT's "
            "quantized model and its fit from the converter's memory report (its manifest: parity, "
            "compilation.memory)"))
