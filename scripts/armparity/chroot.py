"""The ARM side: qemu binfmt, the chroots (scripts/arm_env.sh: aarch64; scripts/armv7_env.sh: 32-bit armv7l),
fnx's wheel installed in them, and the jobs run there."""

from __future__ import annotations

import concurrent.futures as cf
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from rich.console import Console

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("FNX_ARM_CACHE") or Path.home() / ".cache/fnx/arm")
PLATFORMS = ["manylinux_2_34_aarch64", "manylinux_2_28_aarch64", "manylinux_2_27_aarch64", "manylinux_2_17_aarch64",
             "manylinux2014_aarch64"]
# pip takes only the manylinux tags it is given: BASE's CUDA wheels are also tagged 2_25 (cupti) and 2_18 (nccl)
NO_DEPS_PLATFORMS = [*PLATFORMS[:3], "manylinux_2_25_aarch64", "manylinux_2_18_aarch64", *PLATFORMS[3:]]
SETS = {  # what a Pi user installs next to the fnx wheel, per engine set
    "litert": ["fnx-edge[runtime,onnx-runtime,serve] @ file://{wheel}", "numpy>=2,<2.3", "ai-edge-litert==2.3.0", "onnxruntime==1.32.0"],
    "tflite-runtime": ["fnx-edge @ file://{wheel}", "numpy<2", "tflite-runtime==2.14.0", "pillow"],
    "ncnn": ["fnx-edge[ncnn] @ file://{wheel}", "numpy>=2,<2.3", "ncnn==1.0.20261020"],
    "executorch": ["fnx-edge @ file://{wheel}", "numpy>=2,<2.3"],  # + BASE: torch and ExecuTorch as on the host
}
# The executorch set's BASE layer (installed without dependencies): PyPI's only aarch64 torch wheel is a CUDA 13
# build (427 MB) whose libraries need CUDA's at load time (readelf -d: libtorch_cpu.so needs libcudart and libcupti,
# libtorch_python.so cudnn, nccl and cufile, libtorch_cuda.so the rest), so the ExecuTorch set holds torch, the
# CUDA 13 runtime wheels its libraries load (the versions torch 2.13.0's metadata pins; cusolver, nvtx and triton
# are never loaded and stay out) and the one Python module `import torch` needs (typing_extensions). ~2.4 GB
# download, 3.7 GB installed. torch and ExecuTorch pinned to the host's versions: a .pte runs only on the
# ExecuTorch version that wrote it.
TORCH_CUDA_LIBS = {"2.13.0": [
    "nvidia-cuda-runtime==13.0.96", "nvidia-cuda-cupti==13.0.85", "nvidia-cudnn-cu13==9.20.0.48",
    "nvidia-nccl-cu13==2.29.7", "nvidia-cufile==1.15.1.6", "nvidia-cublas==13.1.1.3", "nvidia-cufft==12.0.0.61",
    "nvidia-cusparse==12.6.3.3", "nvidia-cusparselt-cu13==0.8.1", "nvidia-curand==10.4.0.35",
    "nvidia-cuda-nvrtc==13.0.88", "nvidia-nvjitlink==13.0.88", "nvidia-nvshmem-cu13==3.4.5"]}
# Sets whose jobs see a /proc and a minimal /sys/devices/system/cpu (arm_run.sh --cpu-sysfs): ExecuTorch's XNNPACK
# refuses to start (status 5, unsupported hardware) when cpuinfo cannot read them; LiteRT and ONNX Runtime crash
# in their CPU detection with the host's /sys, so the other sets run without.
CPU_SYSFS = {"executorch"}
# The CPU qemu emulates for a set (default: qemu's `max`). ExecuTorch on the Raspberry Pi 5's core: under qemu 7.2's
# `max` (SME on), XNNPACK's SME int8 kernels gave cosine 0.52-0.64 against x86 (T0 224, 4 images); with `max,sme=off`,
# cortex-a76, cortex-a72, neoverse-n1 or a64fx its int8 and fp32 outputs equal x86's bit for bit (measured 2026-12-05).
QEMU_CPU = {"executorch": "cortex-a76"}
# Modules a set's runner may import (every other set must not import torch or TensorFlow).
ALLOWED_IMPORTS = {"executorch": ["torch"]}
# Which engine each set must run each format on (and that engine's forced name for the Session runner).
EXPECT_ENGINE = {("litert", "tflite"): "litert", ("litert", "onnx"): "onnxruntime",
                 ("tflite-runtime", "tflite"): "tflite-runtime", ("armv7l", "tflite"): "tflite-runtime",
                 ("ncnn", "ncnn"): "ncnn", ("executorch", "executorch"): "executorch"}
FORCED_ENGINE = {"litert": None, "tflite-runtime": "tflite-runtime", "armv7l": "tflite-runtime", "ncnn": None,
                 "executorch": None}
# 32-bit Raspberry Pi OS: Debian's numpy and Pillow (armv7_env.sh), tflite-runtime, fnx and its pure-Python deps.
ARMV7_SET = "armv7l"
ARMV7_PLATFORMS = ["manylinux_2_34_armv7l", "manylinux_2_28_armv7l", "manylinux_2_17_armv7l", "manylinux2014_armv7l"]
ARCH = {**{s: "aarch64" for s in SETS}, ARMV7_SET: "armv7l"}
# "serve": `fnx serve` on the first artifact, answering one infer request over HTTP (its outputs judged like the rest).
RUNNERS = {"litert": ("session", "classify", "serve"), "tflite-runtime": ("session", "classify"), "ncnn": ("session",),
           "executorch": ("session",), ARMV7_SET: ("session", "classify", "cli")}
console = Console(highlight=False, width=max(150, Console().width))


def loud(lines: list[str], style: str) -> None:
    bar = "#" * 78
    console.print(f"[{style}]{bar}\n" + "\n".join(f"# {line}" for line in lines) + f"\n{bar}[/]")


def cannot_emulate(reason: str) -> int:
    """Say loudly that aarch64 cannot run here; exit code 3, or 0 with FNX_SKIP_ARM=1."""
    if os.environ.get("FNX_SKIP_ARM") == "1":
        loud([f"ARM PARITY SKIPPED (FNX_SKIP_ARM=1): {reason}", "nothing was checked on aarch64"], "bold yellow")
        return 0
    loud([f"ARM PARITY CANNOT RUN: {reason}", "needs root, qemu-user-static and binfmt_misc (scripts/arm_env.sh --help);",
          "set FNX_SKIP_ARM=1 to skip this check explicitly"], "bold red")
    return 3


def binfmt_ok() -> bool:
    try:
        text = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").read_text()
    except OSError:
        return False
    lines = text.splitlines()
    return "enabled" in lines and any(line.startswith("flags:") and "F" in line for line in lines)


def start_env() -> subprocess.Popen:
    """Start scripts/arm_env.sh (builds or reuses the chroot); returns the process, once binfmt is up or it ended."""
    log = open(CACHE / "arm_env.log", "w")
    proc = subprocess.Popen([str(REPO / "scripts/arm_env.sh")], stdout=subprocess.PIPE, stderr=log, text=True)
    while proc.poll() is None and not binfmt_ok():
        time.sleep(0.2)
    return proc


def env_error() -> str:
    errs = [line for line in (CACHE / "arm_env.log").read_text().splitlines() if "ERROR" in line]
    return errs[0].split("ERROR: ", 1)[-1] if errs else "qemu-aarch64 binfmt (flag F) is not registered"


def build_wheel(work: Path) -> Path:
    """Build a wheel of the checkout (from a copy: building in the checkout would leave build/ behind)."""
    src = work / "wheel-src"  # a copy: building in the checkout would leave build/ behind
    src.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "fnx", src / "fnx", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    r = subprocess.run(pip + ["wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(work / "dist"), str(src)],
                       capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"pip wheel of {REPO} failed:\n{r.stdout}{r.stderr}")
    return next((work / "dist").glob("fnx_edge-*.whl"))


def wheel_key(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as z:  # RECORD holds every file's sha256: a content key, free of timestamps
        record = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/RECORD")))
    return hashlib.sha256(record).hexdigest()[:16]


def install_fnx(root: Path, wheel: Path) -> dict[str, str]:
    """pip-install the fnx wheel (+ each set's engines) for aarch64 into ROOT/opt/fnx-<set>, and a set's BASE layer
    (kept while its requirements stay the same, whatever the wheel) into ROOT/opt/base-<set>."""
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    wheel_hash = wheel_key(wheel)
    keys = {}
    with open(CACHE / ".fnx-layers.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for s, reqs in SETS.items():
            key = hashlib.sha256((wheel_hash + " ".join(reqs) + " ".join(PLATFORMS)).encode()).hexdigest()[:16]
            keys[s] = key
            layers = [(f"fnx-{s}", key, [r.format(wheel=wheel) for r in reqs], PLATFORMS, True,
                       f"fnx wheel ({wheel_hash}) + {' '.join(reqs[1:])}")]
            if s in BASE:
                base = BASE[s]()
                base_key = hashlib.sha256((" ".join(base + NO_DEPS_PLATFORMS)).encode()).hexdigest()[:16]
                layers.append((f"base-{s}", base_key, base, NO_DEPS_PLATFORMS, False, " ".join(base) + " (no deps)"))
            for name, k, want, plats, deps, label in layers:
                dst = root / "opt" / name
                if (dst / ".fnx-key").is_file() and (dst / ".fnx-key").read_text().strip() == k:
                    continue
                t = time.time()
                _pip_target(pip, want, root / "opt" / f".fnx-tmp-{name}-{os.getpid()}", dst, k, plats, deps)
                console.print(f"  installed {label} -> {dst} in {time.time() - t:.0f} s")
    return keys


def executorch_base() -> list[str]:
    """Return the executorch set's BASE layer: torch, ExecuTorch and typing_extensions at the host's versions, and the
    CUDA libraries aarch64 torch loads."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        torch, et, te = (version(n) for n in ("torch", "executorch", "typing_extensions"))
    except PackageNotFoundError as e:
        raise SystemExit(f"the executorch set pins the host's versions, and the host has no {e.name}: "
                         f"pip install -e '.[dev]' (make setup)") from e
    torch = torch.split("+")[0]  # the host's CPU build (2.13.0+cpu); PyPI's aarch64 wheel has no local version
    if torch not in TORCH_CUDA_LIBS:
        raise SystemExit(f"TORCH_CUDA_LIBS in {__file__} lists the CUDA wheels of aarch64 torch "
                         f"{', '.join(TORCH_CUDA_LIBS)}, not of the host's torch {torch}: add them "
                         f"(readelf -d torch/lib/*.so of its aarch64 wheel, the versions its metadata pins)")
    return [f"torch=={torch}", f"executorch=={et}", f"typing-extensions=={te}", *TORCH_CUDA_LIBS[torch]]


# Sets with a layer of their own below the fnx wheel's (on PYTHONPATH after it), installed without dependencies.
BASE = {"executorch": executorch_base}


def pure_closure(names: list[str], exclude: set[str]) -> list[str]:
    """Return name==version of names and everything they require, as installed here."""
    from importlib import metadata

    from packaging.requirements import Requirement

    seen: dict[str, str] = {}
    todo = list(names)
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen or name in exclude:
            continue
        dist = metadata.distribution(name)
        seen[name] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return [f"{n}=={v}" for n, v in sorted(seen.items())]


def install_fnx_armv7(root: Path, wheel: Path) -> str:
    """Install the fnx wheel, tflite-runtime and the CLI's deps (typer, rich and theirs, as installed here; pydantic-core
    has an armv7l wheel) into the armv7l ROOT/opt/fnx-armv7l; numpy and Pillow are Debian's (PyPI has no armv7l numpy)."""
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    reqs = [str(wheel), "tflite-runtime==2.14.0", *pure_closure(["typer", "rich"], {"numpy", "pillow"})]
    key = hashlib.sha256((wheel_key(wheel) + " ".join(reqs[1:])).encode()).hexdigest()[:16]
    dst = root / "opt" / f"fnx-{ARMV7_SET}"
    if (dst / ".fnx-key").is_file() and (dst / ".fnx-key").read_text().strip() == key:
        return key
    with open(CACHE / ".fnx-layers.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _pip_target(pip, reqs, root / "opt" / f".fnx-tmp-armv7-{os.getpid()}", dst, key, ARMV7_PLATFORMS, deps=False)
    console.print(f"  installed fnx wheel + tflite-runtime 2.14 + the CLI's deps ({', '.join(reqs[2:])}) -> {dst}")
    return key


def start_armv7_env() -> tuple[Path | None, str]:
    """Build or reuse the armv7l root (scripts/armv7_env.sh); returns (root, "") or (None, why not)."""
    log = CACHE / "armv7_env.log"
    with open(log, "w") as err:
        r = subprocess.run([str(REPO / "scripts/armv7_env.sh")], stdout=subprocess.PIPE, stderr=err, text=True)
    if r.returncode:
        lines = [line for line in log.read_text().splitlines() if "ERROR" in line] or log.read_text().splitlines()[-1:]
        return None, f"scripts/armv7_env.sh exit {r.returncode}: {(lines or ['?'])[0]}"
    return Path(r.stdout.strip().splitlines()[-1]), ""


def _pip_target(pip: list[str], reqs: list[str], tmp: Path, dst: Path, key: str, platforms: list[str] = PLATFORMS,
                deps: bool = True) -> None:
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = pip + ["install", "-q", "--no-warn-conflicts", "--no-warn-script-location", "--only-binary=:all:",
                 "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", "--target", str(tmp)]
    cmd += [] if deps else ["--no-deps"]
    for p in platforms:
        cmd += ["--platform", p]
    r = subprocess.run(cmd + reqs, capture_output=True, text=True)
    if r.returncode:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SystemExit(f"pip could not install fnx for {' '.join(platforms)} ({dst.name}):\n{r.stderr[-2000:]}")
    (tmp / ".fnx-key").write_text(key + "\n")
    old = dst.with_name(f".fnx-old-{dst.name}-{os.getpid()}")
    if dst.exists():
        dst.rename(old)
    tmp.rename(dst)
    shutil.rmtree(old, ignore_errors=True)


def run_jobs(jobs: list[dict], roots: dict[str, Path], nproc: int) -> list[dict]:
    """Run each job's arm_job.py in its arch's chroot (nproc at a time); returns results with rc, time and log tail."""

    def one(job: dict) -> dict:
        root = roots[job["arch"]]
        host_dir = root / job["dir"].lstrip("/")
        (host_dir / f"job-{job['id']}.json").write_text(json.dumps(job))
        fnx_runner = job["runner"] in ("session", "cli", "serve")  # the fnx wheel's set, not arm_env.sh's env
        env_path = f"/opt/fnx-{job['set']}" if fnx_runner else f"/opt/env-{job['set']}"
        env_path += f":/opt/base-{job['set']}" if job["set"] in BASE else ""
        qemu = ["-e", f"QEMU_CPU={job['qemu_cpu']}"] if job["qemu_cpu"] else []
        cmd = [str(REPO / "scripts/arm_run.sh"), *(["--cpu-sysfs"] if job["set"] in CPU_SYSFS else []), *qemu,
               "-e", f"PYTHONPATH={env_path}", str(root),
               "none" if fnx_runner else job["set"], "--",
               f"{job['dir']}/arm_job.py", f"{job['dir']}/job-{job['id']}.json"]
        t = time.time()
        log_path = host_dir / f"log-{job['id']}.txt"
        with open(log_path, "w") as log:
            rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode
        res_path = root / job["result"].lstrip("/")
        res = json.loads(res_path.read_text()) if res_path.is_file() else {"items": []}
        res.update(job=job, rc=rc, seconds=time.time() - t, log=log_path.read_text()[-1500:])
        console.print(f"  [dim]{job['arch']:<7} {job['set']:<14} {job['runner']:<8} {len(job['artifacts'])} artifact(s): "
                      f"rc {rc}, {res['seconds']:.0f} s (emulated)[/]")
        return res

    with cf.ThreadPoolExecutor(max_workers=nproc) as ex:
        return list(ex.map(one, jobs))


def jobs_for(artifacts: list, tag: str, cdir: str, images: dict | None, sets=(*SETS, ARMV7_SET)) -> list[dict]:
    """Return the jobs (engine set x runner) for artifacts (objects with id, name, format, path), biggest first."""
    jobs = []
    for s in sets:
        sel_all = [a for a in artifacts if (s, a.format) in EXPECT_ENGINE]
        for runner in [r for r in RUNNERS[s] if (images or r != "cli") and (tag == "p1" or r != "serve")] if sel_all else ():
            sel = sel_all[:1] if runner == "serve" else sel_all  # the server starts once: one artifact shows it
            jid = f"{tag}-{s}-{runner}"
            job = {"id": jid, "set": s, "arch": ARCH[s], "runner": runner, "dir": cdir, "classify": f"{cdir}/classify.py",
                   "engine": FORCED_ENGINE[s], "result": f"{cdir}/res-{jid}.json",
                   "allowed": ALLOWED_IMPORTS.get(s, []), "qemu_cpu": QEMU_CPU.get(s),
                   "artifacts": [{"name": a.name, "id": a.id, "format": a.format, "model": f"{cdir}/{a.id}{a.path.suffix}",
                                  "x": f"{cdir}/{a.id}-x.npy", "out": f"{cdir}/{a.id}-{s}-{runner}.npy"} for a in sel]}
            if runner == "classify" and images:
                job.update(images=images["files"], spec=images["spec"], pre_out=f"{cdir}/pre-{s}.npy")
            if runner == "cli":  # `fnx run --json` on the image files, judged against x86's top-1
                job.update(images=images["files"] if images else [])
            jobs.append(job)
    return sorted(jobs, key=lambda j: -len(j["artifacts"]))
