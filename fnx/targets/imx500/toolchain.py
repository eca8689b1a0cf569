"""The IMX500 toolchain's isolated environment: Sony's model-compression-toolkit (MCT) and imx500-converter, whose
pins (onnx 1.17, onnxruntime 1.21, protobuf 4.25, numpy, an old networkx) conflict with fnx's; and the Java >= 17
its converter's back end runs on, which no package index provides.

MCT 2.5.1 is the newest that installs beside imx500-converter 3.19.2 (MCT 2.6.1 needs mct-quantizers 1.7, the
converter's uni-pytorch 1.6). torch is this machine's CPU build (fnx.toolchains). MCT's PyTorch front end imports
torchvision (edge-mdt-cl's NMS layers), which it does not declare: torchvision 0.28.0 is the release built for torch
2.13, and the package index has only its CUDA build, whose compiled ops cannot load beside a CPU torch; its Python
modules can, installed without its dependencies (no CUDA torch pulled), and MCT never runs an NMS on a classifier
(in_toolkit declares the two ops torchvision registers unconditionally)."""

from __future__ import annotations

import re
import shutil
import subprocess

from fnx.errors import FnxError
from fnx.toolchains import Toolchain, register_toolchain

MCT = "model-compression-toolkit==2.5.1"
CONVERTER = "imx500-converter[pt]==3.19.2"
JAVA_MIN = 17
JAVA_INSTALL = "Debian/Ubuntu: apt-get install openjdk-17-jre-headless"

IMX500 = register_toolchain(Toolchain(
    "imx500", "Sony MCT + imx500-converter: PyTorch -> IMX500 packerOut.zip (needs Java >= 17)",
    requirements=("torch", MCT, CONVERTER),
    no_deps=("torchvision==0.28.0",)))


def java_version() -> int | None:
    """The major version of the `java` on PATH (the converter runs that one); None if there is none."""
    java = shutil.which("java")
    if java is None:
        return None
    try:
        said = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', said)
    if m is None:
        return None
    major = int(m[1])
    return int(m[2] or 0) if major == 1 else major  # "1.8.0" is Java 8


def check_java() -> None:
    """FnxError in one line unless a Java >= JAVA_MIN is on PATH (imxconv-pt's back end runs on it)."""
    found = java_version()
    if found is None:
        raise FnxError(f"--format imx500 needs Java >= {JAVA_MIN} for Sony's converter (imxconv-pt), and no java is "
                       f"on PATH: install one ({JAVA_INSTALL})")
    if found < JAVA_MIN:
        raise FnxError(f"--format imx500 needs Java >= {JAVA_MIN} for Sony's converter (imxconv-pt); the java on "
                       f"PATH is Java {found}: install a newer one ({JAVA_INSTALL})")
