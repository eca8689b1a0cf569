"""The machine switch: hide CPU features fnx would use, or pretend to have them, through FNX_CPU_FEATURES.

fnx branches on what the CPU offers: OpenVINO's bf16/f16 inference precisions, which only CPUs with
AVX512_BF16/AMX or AVX512_FP16 have, and the ONNX int8 form its rule picks (for `--target`, and the quantizer's first
form), which depends on whether x86 int8 dot products saturate (no VNNI) or not (AVX512_VNNI, AVX_VNNI, AMX-INT8). A test suite that runs on one kind of machine sees one branch only;
the switch lets either kind run both, and lets a user keep a feature out of `fnx bench all`:

    FNX_CPU_FEATURES=-bf16,-f16     behave as on a CPU without them (no bf16/f16 rows, hints refused)
    FNX_CPU_FEATURES=+bf16          offer bf16 even where the CPU lacks it (for tests: OpenVINO then
                                    computes in f32, and fnx reports the precision it read back)

Torch-free: the runtime reads it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from fnx.errors import FnxError

ENV = "FNX_CPU_FEATURES"
SWITCHABLE = {  # feature -> what it gates
    "bf16": "OpenVINO's bf16 inference precision (AVX512_BF16 / AMX)",
    "f16": "OpenVINO's f16 inference precision (AVX512_FP16 / AMX-FP16); ncnn's (ARMv8.2 fp16 arithmetic)",
    "vnni": "x86 int8 dot products into 32 bits without saturating (AVX512_VNNI / AVX_VNNI / AMX-INT8)",
}
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")  # /proc/cpuinfo flags that mean "vnni"


def overrides(value: str | None = None) -> dict[str, bool]:
    """Return {feature: shown} from FNX_CPU_FEATURES (or value): '+name' shows a feature, '-name' hides it."""
    text = os.environ.get(ENV, "") if value is None else value
    result: dict[str, bool] = {}
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        sign, name = item[0], item[1:].strip().lower()
        if sign not in "+-" or name not in SWITCHABLE:
            raise FnxError(f"{ENV}={text!r}: {item!r} is not '+' or '-' followed by one of "
                           f"{', '.join(SWITCHABLE)} (e.g. {ENV}=-bf16,-f16)")
        result[name] = sign == "+"
    return result


def apply(detected: Iterable[str], value: str | None = None, among: Iterable[str] | None = None) -> list[str]:
    """Return the detected features with FNX_CPU_FEATURES applied: hidden ones removed, shown ones added, in order.

    among: the features this caller asks about (a shown feature outside it is not added)."""
    switch = overrides(value)
    have = [f for f in detected if switch.get(f, True)]
    asked = set(among) if among is not None else set(SWITCHABLE)
    return have + [f for f, shown in switch.items() if shown and f not in have and f in asked]


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str]:
    """Return the CPU's feature flags from /proc/cpuinfo (x86 "flags", ARM "Features"; empty where unreadable)."""
    try:
        text = open(cpuinfo).read()
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def has_vnni(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this x86 CPU computes int8 dot products without saturating, after FNX_CPU_FEATURES."""
    detected = ["vnni"] if cpu_flags(cpuinfo) & set(VNNI_FLAGS) else []
    return "vnni" in apply(detected, among=("vnni",))
