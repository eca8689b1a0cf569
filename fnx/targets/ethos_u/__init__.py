"""The Ethos-U target: fnx's guarded int8 TFLite compiled by Arm's Vela for an Ethos-U55 or U65 NPU (`export`,
`vela`). The file is a TFLite flatbuffer whose NPU part is one `ethos-u` custom op: TFLite Micro with the Ethos-U
driver runs it on the device; nothing here can (no engine: its manifest carries Vela's estimates, and the parity of
the int8 TFLite it was compiled from). Torch-free.
"""

from __future__ import annotations

from pathlib import Path

from fnx.formats import FileFormat, register_file_format

# --target name (Vela's --accelerator-config) -> (system configuration, memory mode) in Vela's Arm/vela.ini: Arm's
# high-end embedded system for each NPU, with the memory mode Vela's documentation pairs with it
ACCELERATORS = {
    **{f"ethos-u55-{macs}": ("Ethos_U55_High_End_Embedded", "Shared_Sram") for macs in (256, 128, 64, 32)},
    **{f"ethos-u65-{macs}": ("Ethos_U65_High_End", "Dedicated_Sram") for macs in (512, 256)},
}
CUSTOM_OP = b"\x07\x00\x00\x00ethos-u\x00"  # the flatbuffer string naming the custom op Vela writes the NPU part as


def compiled_by_vela(path: Path) -> bool:
    """Whether the TFLite file at path holds Vela's `ethos-u` custom op (a plain TFLite never does)."""
    with open(path, "rb") as f:
        return CUSTOM_OP in f.read()


FILE = register_file_format(FileFormat(
    "ethos-u", ".tflite", "NHWC", "TFLite compiled by Vela for an Arm Ethos-U NPU", sniff=lambda head: head[4:8] == b"TFL3",
    claims=compiled_by_vela, targets=tuple(ACCELERATORS),
    runs_on="an Arm Ethos-U NPU, through TFLite Micro and the Ethos-U driver (docs/guides/ethos-u.md); fnx bench shows "
            "Vela's estimates from its manifest, and its parity is that of the int8 TFLite it was compiled from"))
