"""Work out which device profile fits the machine we are running on.

Rules, first match wins:
  1. device-tree / cpuinfo model says NVIDIA Jetson        -> jetson-orin
  2. model says Raspberry Pi 5 / Pi 4 (incl. 400, CM4)     -> rpi5 / rpi4
  3. x86_64 and ONNX Runtime offers CUDAExecutionProvider  -> cuda
  4. ARM, no model string, every core Cortex-A76 / A72     -> rpi5 / rpi4
  5. aarch64 / arm64                                       -> aarch64
  6. x86_64 / AMD64                                        -> x86
  7. anything else (32-bit ARM, riscv64, ...)              -> aarch64, flagged as a fallback:
     int8 TFLite on LiteRT's CPU kernels is the most portable profile, and `--device` overrides it.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from fnx.devices.profiles import PROFILES, DeviceProfile

CPU_PARTS = {"0xd08": "Cortex-A72", "0xd0b": "Cortex-A76"}
_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "x64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}


def cpu_count() -> int:
    """Return how many CPUs this process may run on (honours taskset / cgroup cpusets)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def onnxruntime_providers() -> list[str]:
    """Return ONNX Runtime's available execution providers, or [] when it is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return []
    return list(onnxruntime.get_available_providers())


def _read(path: Path) -> str:
    try:
        return path.read_bytes().replace(b"\x00", b"").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _cpuinfo(text: str) -> tuple[dict[str, str], list[str]]:
    """Return the first value of each cpuinfo key and the per-core 'CPU part' values."""
    fields: dict[str, str] = {}
    parts: list[str] = []
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        fields.setdefault(key, value)
        if key == "CPU part":
            parts.append(value.lower())
    return fields, parts


def cpu_name(root: str | Path = "/") -> str:
    """Return the CPU's name from /proc/cpuinfo: x86's "model name", ARM's "Model"/"Hardware" ("" if unknown)."""
    fields, _ = _cpuinfo(_read(Path(root) / "proc/cpuinfo"))
    return next((fields[k] for k in ("model name", "Model", "Hardware") if fields.get(k)), "")


def _normalize_arch(machine: str) -> str:
    m = machine.lower()
    return _ARCH.get(m) or ("armv7l" if m.startswith("arm") else m)


def _probe(root: str | Path, machine: str | None, providers: list[str] | None) -> dict[str, Any]:
    root = Path(root)
    model, source = "", None
    for rel in ("proc/device-tree/model", "sys/firmware/devicetree/base/model"):
        if model := _read(root / rel):
            source = "/" + rel
            break
    fields, parts = _cpuinfo(_read(root / "proc/cpuinfo"))
    for key in ("Model", "Hardware"):  # case-sensitive: x86 cpuinfo has an unrelated lowercase "model"
        if not model and fields.get(key):
            model, source = fields[key], f"/proc/cpuinfo {key}"
    machine = machine if machine is not None else platform.machine()
    return {
        "model": model or None,
        "model_source": source,
        "cpu_parts": sorted(set(parts)),
        "cpu_part_names": sorted({CPU_PARTS.get(p, p) for p in parts}),
        "machine": machine,
        "arch": _normalize_arch(machine),
        "providers": list(providers) if providers is not None else onnxruntime_providers(),
        "cores": cpu_count(),
    }


def _choose(f: dict[str, Any]) -> tuple[str, str]:
    """Return (profile name, reason) following the rules in the module docstring."""
    model, arch, parts = (f["model"] or "").lower(), f["arch"], set(f["cpu_parts"])
    if "jetson" in model:
        return "jetson-orin", f"model {f['model']!r} is an NVIDIA Jetson"
    for name, tag in (("rpi5", "raspberry pi 5"), ("rpi4", "raspberry pi 4"), ("rpi4", "compute module 4")):
        if tag in model:
            return name, f"model {f['model']!r} is a {PROFILES[name].description}"
    if arch == "x86_64" and "CUDAExecutionProvider" in f["providers"]:
        return "cuda", "x86_64 with ONNX Runtime's CUDAExecutionProvider available"
    if not model and arch in ("aarch64", "armv7l") and len(parts) == 1 and (part := parts.pop()) in CPU_PARTS:
        name = "rpi5" if part == "0xd0b" else "rpi4"
        return name, f"no model string; every core is a {CPU_PARTS[part]} ({part}), as on the {name}"
    if arch == "aarch64":
        return "aarch64", f"generic ARM64 machine ({f['machine']})"
    if arch == "x86_64":
        return "x86", f"x86_64 machine ({f['machine']}) without a CUDA provider"
    return "aarch64", (
        f"fallback: no profile for {f['machine']!r}; using portable int8 TFLite (override with --device)"
    )


def detection_report(
    root: str | Path = "/", machine: str | None = None, providers: list[str] | None = None
) -> dict[str, Any]:
    """Return what was read (model, CPU parts, machine, providers, cores) plus the chosen profile and why."""
    facts = _probe(root, machine, providers)
    name, reason = _choose(facts)
    return {**facts, "profile": name, "reason": reason, "fallback": reason.startswith("fallback")}


def detect(
    root: str | Path = "/", machine: str | None = None, providers: list[str] | None = None
) -> DeviceProfile:
    """Return the profile that best fits this machine (or the system image under `root`)."""
    return PROFILES[detection_report(root, machine, providers)["profile"]]
