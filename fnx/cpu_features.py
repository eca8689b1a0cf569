"""The machine switch: hide CPU features fnx would use, or pretend to have them, through FNX_CPU_FEATURES.

fnx branches on what the CPU offers (today: OpenVINO's bf16/f16 inference precisions, which only CPUs with
AVX512_BF16/AMX or AVX512_FP16 have). A test suite that runs on one kind of machine sees one branch only;
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
    "f16": "OpenVINO's f16 inference precision (AVX512_FP16 / AMX-FP16)",
}


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


def apply(detected: Iterable[str], value: str | None = None) -> list[str]:
    """Return the detected features with FNX_CPU_FEATURES applied: hidden ones removed, shown ones added, in order."""
    switch = overrides(value)
    have = [f for f in detected if switch.get(f, True)]
    return have + [f for f, shown in switch.items() if shown and f not in have]
