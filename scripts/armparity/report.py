"""The ARM parity table: one row per artifact x engine set x runner, the x86 references, and the failure count."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Callable

import numpy as np
from rich.markup import escape
from rich.table import Table

from armparity.chroot import EXPECT_ENGINE, console


def judge_cli(a, top1: list[int]) -> tuple[bool, str, str, str]:
    """`fnx run --json` on ARM: every image predicted; fp32 top-1 must equal x86's (int8: shown, within its bounds
    by the Session rows of the same engine)."""
    want = a.extra.get("x86_top1") or []
    same = sum(int(x == y) for x, y in zip(top1, want))
    text, agree = f"{len(top1)} images predicted", f"{same}/{len(want)}"
    if len(top1) != len(want):
        return False, f"FAIL: {len(top1)} predictions for {len(want)} images", text, agree
    if a.precision != "int8" and same != len(want):
        return False, "FAIL: top-1 differs from x86", text, agree
    return True, "ok", text, agree


class Report:
    """Collects verdicts into a rich table; `finish` prints it and returns the number of failures."""

    def __init__(self, artifacts: dict):
        self.artifacts = artifacts
        self.failures = 0
        self.logs: list[str] = []
        self.table = Table(title="ARM parity: emulated aarch64 and armv7l vs x86_64 (fnx.runtime, 1 thread)")
        for c in ("artifact", "engine set", "runner", "engine", "arch", "difference", "bound", "top-1 =", "verdict"):
            self.table.add_column(c, overflow="fold")

    def row(self, ok: bool, *cells: str) -> None:
        self.failures += not ok
        *rest, verdict = cells
        self.table.add_row(*rest, f"[green]{escape(verdict)}[/]" if ok else f"[red]{escape(verdict)}[/]")

    def add_result(self, res: dict, root: Path, judge: Callable, judge_pre: Callable, pre_ref: np.ndarray) -> None:
        """Judge one job's results (each artifact's output, the process, classify.py's preprocessing)."""
        job, machine = res["job"], res.get("machine", "?")
        items = res["items"] + [None] * (len(job["artifacts"]) - len(res["items"]))
        for spec, it in zip(job["artifacts"], items):
            a = self.artifacts[spec["id"]]
            engine = (it or {}).get("engine", "?")
            ok, verdict, text, top1 = False, "", "-", "-"
            if it is None or not it.get("ok"):
                verdict = f"FAIL: {(it or {}).get('error') or 'no result (rc %s), see log' % res['rc']}"
            elif job["runner"] == "cli":
                ok, verdict, text, top1 = judge_cli(a, it.get("top1") or [])
            else:
                ok, verdict, text, top1 = judge(a, np.load(root / spec["out"].lstrip("/")))
                want = EXPECT_ENGINE[(job["set"], a.format)]
                if not (engine.startswith(want) or engine.startswith("ai-edge-" + want)):
                    ok, verdict = False, f"FAIL: ran on {engine}, expected {want}"
            for bad, why in ((job["runner"] == "classify" and res.get("fnx_on_path"), "fnx importable next to classify.py"),
                             (res.get("leaked"), f"imported {', '.join(res.get('leaked') or [])}"),
                             (machine != job.get("arch", "aarch64"), f"machine {machine!r}")):
                if bad:
                    ok, verdict = False, f"FAIL: {why}"
            runner = {"session": "fnx Session", "classify": "classify.py", "cli": "fnx run --json",
                      "serve": "fnx serve (HTTP)"}[job["runner"]]
            bound = "top-1 = x86 (fp32)" if job["runner"] == "cli" else a.bound_text()
            arch = f"{machine} ({job['qemu_cpu']})" if job.get("qemu_cpu") else machine
            self.row(ok, a.name, job["set"], runner, engine, arch, text, bound, top1, verdict)
        if res["rc"] and all(i.get("ok") for i in res["items"]):
            self.row(False, "(process)", job["set"], job["runner"], "", machine, "-", "-", "-", f"FAIL: exit {res['rc']}")
        if res["rc"] or not all(i.get("ok") for i in res["items"]):
            self.logs.append(f"log of {job['id']}:\n{res['log']}")
        if job.get("pre_out") and (root / job["pre_out"].lstrip("/")).is_file():
            ok, text = judge_pre(np.load(root / job["pre_out"].lstrip("/")), pre_ref)
            self.row(ok, "4 PNG images", job["set"], "classify.preprocess", "Pillow", machine, text, "max abs 1e-05", "-",
                     "ok" if ok else "FAIL: preprocessing differs")

    def finish(self, skipped: list[str]) -> int:
        """Print the table, the failed jobs' logs and what could not be checked; returns the failure count."""
        for a in self.artifacts.values():
            self.table.add_row(a.name, "x86 reference", "fnx Session", a.x86_engine, platform.machine(), "-",
                               a.bound_text(), "-", "ref")
        console.print(self.table)
        for log in self.logs:
            console.print(f"[red]{escape(log)}[/]")
        for s in skipped:  # an artifact that could not be made is a failure, not a silent skip
            console.print(f"[bold red]NOT CHECKED (counted as a failure): {escape(s)}[/]")
        return self.failures + len(skipped)
