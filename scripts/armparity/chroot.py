"""The aarch64 side: qemu binfmt, the chroot (scripts/arm_env.sh), fnx's wheel installed in it, and the jobs run there."""

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
SETS = {  # what a Pi user installs next to the fnx wheel, per engine set
    "litert": ["fnx[runtime,onnx-runtime] @ file://{wheel}", "numpy>=2,<2.3", "ai-edge-litert==2.3.0", "onnxruntime==1.32.0"],
    "tflite-runtime": ["fnx @ file://{wheel}", "numpy<2", "tflite-runtime==2.14.0", "pillow"],
}
# Which engine each set must run each format on (and that engine's forced name for the Session runner).
EXPECT_ENGINE = {("litert", "tflite"): "litert", ("litert", "onnx"): "onnxruntime",
                 ("tflite-runtime", "tflite"): "tflite-runtime"}
FORCED_ENGINE = {"litert": None, "tflite-runtime": "tflite-runtime"}
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


def install_fnx(root: Path, work: Path) -> dict[str, str]:
    """Build a wheel of the checkout and pip-install it (+ each set's engines) for aarch64 into ROOT/opt/fnx-<set>."""
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
    wheel = next((work / "dist").glob("fnx-*.whl"))
    with zipfile.ZipFile(wheel) as z:  # RECORD holds every file's sha256: a content key, free of timestamps
        record = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/RECORD")))
    wheel_hash = hashlib.sha256(record).hexdigest()[:16]
    keys = {}
    with open(CACHE / ".fnx-layers.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for s, reqs in SETS.items():
            key = hashlib.sha256((wheel_hash + " ".join(reqs) + " ".join(PLATFORMS)).encode()).hexdigest()[:16]
            keys[s] = key
            dst = root / "opt" / f"fnx-{s}"
            if (dst / ".fnx-key").is_file() and (dst / ".fnx-key").read_text().strip() == key:
                continue
            _pip_target(pip, [r.format(wheel=wheel) for r in reqs], root / "opt" / f".fnx-tmp-{s}-{os.getpid()}", dst, key)
            console.print(f"  installed fnx wheel ({wheel_hash}) + {' '.join(reqs[1:])} -> {dst}")
    return keys


def _pip_target(pip: list[str], reqs: list[str], tmp: Path, dst: Path, key: str) -> None:
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = pip + ["install", "-q", "--no-warn-conflicts", "--no-warn-script-location", "--only-binary=:all:",
                 "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", "--target", str(tmp)]
    for p in PLATFORMS:
        cmd += ["--platform", p]
    r = subprocess.run(cmd + reqs, capture_output=True, text=True)
    if r.returncode:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SystemExit(f"pip could not install fnx for aarch64 ({dst.name}):\n{r.stderr[-2000:]}")
    (tmp / ".fnx-key").write_text(key + "\n")
    old = dst.with_name(f".fnx-old-{dst.name}-{os.getpid()}")
    if dst.exists():
        dst.rename(old)
    tmp.rename(dst)
    shutil.rmtree(old, ignore_errors=True)


def run_jobs(jobs: list[dict], root: Path, nproc: int) -> list[dict]:
    """Run each job's arm_job.py in the chroot (nproc at a time); returns their results with rc, time and log tail."""

    def one(job: dict) -> dict:
        host_dir = root / job["dir"].lstrip("/")
        (host_dir / f"job-{job['id']}.json").write_text(json.dumps(job))
        env_path = f"/opt/fnx-{job['set']}" if job["runner"] == "session" else f"/opt/env-{job['set']}"
        cmd = [str(REPO / "scripts/arm_run.sh"), "-e", f"PYTHONPATH={env_path}", str(root), job["set"], "--",
               f"{job['dir']}/arm_job.py", f"{job['dir']}/job-{job['id']}.json"]
        t = time.time()
        log_path = host_dir / f"log-{job['id']}.txt"
        with open(log_path, "w") as log:
            rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode
        res_path = root / job["result"].lstrip("/")
        res = json.loads(res_path.read_text()) if res_path.is_file() else {"items": []}
        res.update(job=job, rc=rc, seconds=time.time() - t, log=log_path.read_text()[-1500:])
        console.print(f"  [dim]aarch64 {job['set']:<14} {job['runner']:<8} {len(job['artifacts'])} artifact(s): "
                      f"rc {rc}, {res['seconds']:.0f} s (emulated)[/]")
        return res

    with cf.ThreadPoolExecutor(max_workers=nproc) as ex:
        return list(ex.map(one, jobs))


def jobs_for(artifacts: list, tag: str, cdir: str, images: dict | None) -> list[dict]:
    """Return the jobs (engine set x runner) for artifacts (objects with id, name, format, path), biggest first."""
    jobs = []
    for s in SETS:
        sel = [a for a in artifacts if (s, a.format) in EXPECT_ENGINE]
        for runner in ("session", "classify") if sel else ():
            jid = f"{tag}-{s}-{runner}"
            job = {"id": jid, "set": s, "runner": runner, "dir": cdir, "classify": f"{cdir}/classify.py",
                   "engine": FORCED_ENGINE[s], "result": f"{cdir}/res-{jid}.json",
                   "artifacts": [{"name": a.name, "id": a.id, "format": a.format, "model": f"{cdir}/{a.id}{a.path.suffix}",
                                  "x": f"{cdir}/{a.id}-x.npy", "out": f"{cdir}/{a.id}-{s}-{runner}.npy"} for a in sel]}
            if runner == "classify" and images:
                job.update(images=images["files"], spec=images["spec"], pre_out=f"{cdir}/pre-{s}.npy")
            jobs.append(job)
    return sorted(jobs, key=lambda j: -len(j["artifacts"]))
