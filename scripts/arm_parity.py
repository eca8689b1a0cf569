#!/usr/bin/env python3
"""ARM parity: fnx artifacts on emulated aarch64 and armv7l (qemu chroots) give the same outputs as on x86.

Run as root from the repo venv:   .venv/bin/python scripts/arm_parity.py [--corrupt] [--extra-artifact PATH]...

1. exports (cached; scripts/armparity/exports.py): FasterNet-T0 224 fp32/int8 x TFLite/ONNX/ExecuTorch, ncnn
   fp32/fp16 (lively random weights) and the trained demo int8 TFLite; the slow ones (int8 TFLite, ExecuTorch) run in
   the background, each one's jobs starting when it is written;
2. fixed inputs (4 synthetic images per manifest); x86 outputs from fnx.runtime (1 thread); PyTorch fp32 for int8;
3. the aarch64 chroot (scripts/arm_env.sh) with this checkout's wheel pip-installed per engine set, as a Pi user would:
     litert          ai-edge-litert 2.3 + onnxruntime 1.32 + numpy 2   (all artifacts)
     tflite-runtime  tflite-runtime 2.14 + numpy 1.x                    (TFLite artifacts, engine forced)
     ncnn            ncnn 1.0.20261020 + numpy 2 (fnx[ncnn], no torch)  (ncnn artifacts; Session)
     executorch      executorch + torch at the host's versions, numpy 2  (.pte artifacts; Session; cpuinfo's /proc and
                     /sys; PyPI's aarch64 torch is a CUDA build: its CUDA libraries come too, ~2.4 GB once)
     armv7l          32-bit Raspberry Pi OS: Debian armhf python3.11 with Debian's numpy 1.24 and Pillow, tflite-runtime
                     2.14 (scripts/armv7_env.sh; TFLite artifacts)
   each set runs fnx.runtime.Session and examples/classify.py (no fnx on its path); armv7l also `fnx run --json`;
4. verdicts with the bounds of fnx.parity.CROSS_ARCH_BOUNDS (int8 also against PyTorch at the artifact's own bound).

Exit: 0 all bounds hold; 1 a bound broke or a run failed; 3 aarch64 cannot be run here (no root or no qemu
binfmt) -- with FNX_SKIP_ARM=1 that case prints SKIPPED and exits 0. --corrupt perturbs one x86 output on
purpose: the run must turn red. Emulated timings say nothing about a Raspberry Pi.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from armparity import chroot, exports  # noqa: E402
from armparity.chroot import CACHE, REPO, console  # noqa: E402
from armparity.compare import Artifact, judge, judge_preprocessing, prepare  # noqa: E402
from armparity.report import Report  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--extra-artifact", action="append", type=Path, default=[], help="also check this artifact (X.json beside it)")
    ap.add_argument("--corrupt", action="store_true", help="perturb one x86 output on purpose: the check must fail")
    ap.add_argument("--fresh-exports", action="store_true", help="re-export even if cached exports match")
    ap.add_argument("--no-int8", action="store_true", help="fp32 artifacts only")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="emulated processes at once")
    ap.add_argument("--keep", action="store_true", help="keep the work dir inside the chroot")
    ap.add_argument("--_export", nargs="+", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def make_exports(args, skipped: list[str]) -> tuple[list[Artifact], subprocess.Popen | None]:
    """Return the artifacts ready now, and the background process exporting the slow int8 ones one after the other
    (exports.BACKGROUND; None if cached or not wanted)."""
    if args.fresh_exports:
        shutil.rmtree(CACHE / "exports", ignore_errors=True)
    arts, later = [], []
    for fmt, prec in exports.WANTED:
        if prec == "int8" and args.no_int8:
            continue
        recipe = exports.t0_recipe(fmt, prec)
        if (fmt, prec) in exports.BACKGROUND and not exports.is_cached(recipe, CACHE):
            later += [f"{fmt}:{prec}"]
            continue
        try:
            arts.append(Artifact(exports.export(recipe, CACHE)))
        except Exception as e:  # an artifact that cannot be made is a failure, reported below
            skipped.append(f"t0 {fmt} {prec}: export failed ({str(e).splitlines()[0][:160]})")
    if not args.no_int8:
        try:
            arts.append(Artifact(exports.export(exports.demo_recipe(CACHE), CACHE)))
        except Exception as e:
            skipped.append(f"demo int8 tflite: export failed ({str(e).splitlines()[0][:160]})")
    for p in args.extra_artifact:
        if not p.is_file():
            raise SystemExit(f"--extra-artifact {p} does not exist")
        arts.append(Artifact(p.resolve()))
    with open(CACHE / "background_exports.log", "w") as log:  # stderr to a file: only stdout is read as it comes
        bg = subprocess.Popen([sys.executable, __file__, "--_export", *later], stdout=subprocess.PIPE, stderr=log,
                              text=True) if later else None
    return arts, bg


def main(argv=None) -> int:
    args = parse_args(argv)
    if args._export:  # background worker: export FMT:PRECISION ..., print each one's path or why it failed
        for fmt, prec in (x.split(":") for x in args._export):
            try:
                print(exports.export(exports.t0_recipe(fmt, prec), CACHE), flush=True)
            except Exception as e:  # the next one still runs; the parent counts this one as a failure
                print(f"FAILED {fmt} {prec}: {(str(e).splitlines() or [type(e).__name__])[0][:160]}", flush=True)
        return 0
    t_start = time.time()
    console.print("[bold]ARM parity[/] (emulated aarch64 and armv7l vs x86_64; emulated timings say nothing about a Pi)")
    if platform.machine() != "x86_64":
        console.print(f"[yellow]host is {platform.machine()}, not x86_64: the reference side is that arch[/]")
    if os.geteuid() != 0:
        return chroot.cannot_emulate("not root (chroot and binfmt need root)")
    CACHE.mkdir(parents=True, exist_ok=True)
    env = chroot.start_env()
    if env.poll() == 3 or not chroot.binfmt_ok():
        env.wait()
        return chroot.cannot_emulate(chroot.env_error())
    skipped: list[str] = []
    artifacts, bg = make_exports(args, skipped)
    console.print(f"exports ready in {time.time() - t_start:.0f} s"
                  f"{'; exporting in the background: ' + ' '.join(bg.args[3:]) if bg else ''}")
    env_out, _ = env.communicate()
    if env.returncode == 3:
        return chroot.cannot_emulate("scripts/arm_env.sh could not set up aarch64 emulation")
    if env.returncode:
        console.print((CACHE / "arm_env.log").read_text()[-3000:])
        raise SystemExit(f"scripts/arm_env.sh failed (exit {env.returncode}); log: {CACHE / 'arm_env.log'}")
    root = Path(env_out.strip().splitlines()[-1])
    work = Path(tempfile.mkdtemp(prefix="fnx-parity-", dir=root / "work"))
    cdir = "/work/" + work.name
    shutil.copy2(Path(__file__).parent / "armparity" / "arm_job.py", work / "arm_job.py")
    shutil.copy2(REPO / "examples/classify.py", work / "classify.py")
    root7, why = chroot.start_armv7_env()  # without it aarch64 is still checked; armv7l counts as not checked
    with tempfile.TemporaryDirectory() as wt:
        wheel = chroot.build_wheel(Path(wt))
        chroot.install_fnx(root, wheel)
        if root7 is not None:
            chroot.install_fnx_armv7(root7, wheel)
    console.print(f"aarch64 root and fnx ready at {time.time() - t_start:.0f} s: {root}")
    roots = {"aarch64": root}
    sets = list(chroot.SETS)
    if root7 is not None:
        roots["armv7l"] = root7
        sets.append(chroot.ARMV7_SET)
        console.print(f"armv7l root and fnx ready: {root7}")
    else:
        skipped.append(f"armv7l: no root ({why}; log: {CACHE / 'armv7_env.log'})")
    for i, a in enumerate(artifacts):
        prepare(a, i, work)
    images = pngs(artifacts, work, cdir)
    mirror(work, roots)
    results = chroot.run_jobs(chroot.jobs_for(artifacts, "p1", cdir, images, sets), roots, args.jobs)
    if bg:  # each artifact's jobs as soon as it is exported, while the next one exports
        done, todo = 0, len(bg.args) - 3
        for line in bg.stdout:
            line, done = line.strip(), done + 1
            console.print(f"background export {done} of {todo} finished at {time.time() - t_start:.0f} s")
            if line.startswith("FAILED "):
                skipped.append(f"t0 {line[7:]}")
                continue
            a = Artifact(Path(line))
            prepare(a, len(artifacts), work)
            x86_top1([a], work, images)
            artifacts.append(a)
            mirror(work, roots)
            results += chroot.run_jobs(chroot.jobs_for([a], f"p{1 + done}", cdir, images, sets), roots, args.jobs)
        if bg.wait() or done < todo:
            err = (CACHE / "background_exports.log").read_text().strip().splitlines() or ["?"]
            skipped.append(f"background exports: exit {bg.returncode} after {done} of {todo} ({err[-1][:160]})")
    if args.corrupt:
        a = artifacts[0]
        a.ref = a.ref.copy()
        a.ref.flat[0] += 100 * max(1.0, float(np.abs(a.ref).max()))
        console.print(f"[bold magenta]--corrupt: x86 output [0] of {a.name} perturbed far beyond its bound[/]")
    report = Report({a.id: a for a in artifacts})
    for res in results:
        report.add_result(res, roots[res["job"]["arch"]], judge, judge_preprocessing, images["ref"])
    failures = report.finish(skipped)
    if args.keep:
        console.print(f"work dir kept: {work}")
    else:
        for r in roots.values():
            shutil.rmtree(r / "work" / work.name, ignore_errors=True)
    verdict = "[bold red]ARM PARITY FAILED[/]" if failures else "[bold green]ARM PARITY OK[/]"
    console.print(f"{verdict}: {failures} failure(s); {len(artifacts)} artifact(s); wall {time.time() - t_start:.0f} s")
    return 1 if failures else 0


def mirror(work: Path, roots: dict[str, Path]) -> None:
    """Give every other root the same /work/<name> files as the aarch64 one (hard links where possible)."""
    def link(src: str, dst: str) -> None:
        if os.path.exists(dst):
            return  # mirrored earlier: the files of a work dir are written once
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    for r in roots.values():
        dst = r / "work" / work.name
        if dst != work:
            shutil.copytree(work, dst, copy_function=link, dirs_exist_ok=True)


def x86_top1(artifacts: list[Artifact], work: Path, images: dict) -> None:
    """Record each artifact's x86 top-1 class of the PNGs (what `fnx run --json` on ARM is judged against)."""
    from fnx.runtime import load

    files = [str(work / Path(f).name) for f in images["files"]]
    for a in artifacts:
        a.extra["x86_top1"] = [p.indices[0] for p in load(a.path, device="cpu", threads=1).predict(files, topk=1, mode="exact")]


def pngs(artifacts: list[Artifact], work: Path, cdir: str) -> dict:
    """Write 4 PNGs for classify.py's own preprocessing on ARM; returns their chroot paths, spec and x86 result."""
    first = artifacts[0]
    from PIL import Image

    from fnx.calibration.synthetic import synthetic_images
    from fnx.manifest import Preprocessing
    from fnx.runtime.preprocess import preprocess

    spec = first.manifest.preprocessing if first.manifest else Preprocessing()
    files = []
    for i, im in enumerate(synthetic_images(4, size=int(spec.resize_short), seed=0)):
        Image.fromarray(im).save(work / f"img{i}.png")
        files.append(work / f"img{i}.png")
    images = {"files": [f"{cdir}/{p.name}" for p in files], "spec": spec.to_dict(),
              "ref": np.stack([preprocess(p, spec) for p in files])}
    x86_top1(artifacts, work, images)
    return images


if __name__ == "__main__":
    sys.exit(main())
