"""`python -m benchmarks [--quick] [--only NAME,...] [--out docs/BENCHMARKS.md]`: run, print, write the report."""

from __future__ import annotations

import argparse
import importlib
import os
import pickle
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from benchmarks import BENCHMARKS
from benchmarks.context import REPO, Ctx
from benchmarks.machine import dense_conv_peak, gemm_peak, machine_lines, machine_load, own_cpu_seconds, wait_quiet
from benchmarks.report import Section, keep_pasted, markdown_table, print_table
from benchmarks.summary import summary_lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer runs, FasterNet-T0 and T2 only (a few minutes)")
    ap.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "BENCHMARKS.md", help="the Markdown report to write")
    ap.add_argument("--keep", action="store_true", help="keep the work folder of exported artifacts")
    ap.add_argument("--update", action="store_true",
                    help="with --only: replace just those sections in the existing --out report, keep the rest")
    ap.add_argument("--results", type=Path, help="also pickle this run's measurements to this file")
    ap.add_argument("--render-from", type=Path, metavar="RESULTS",
                    help="measure nothing: rewrite --out from a --results file of an earlier run")
    args = ap.parse_args(argv)
    if args.render_from:
        saved = pickle.loads(args.render_from.read_bytes())
        out = args.out.resolve()
        ctx = Ctx(quick=saved["quick"], work=Path(tempfile.gettempdir()), img_dir=out.parent / "img", doc_dir=out.parent,
                  cache={"other_load": saved["other_load"]})
        old = out.read_text() if out.is_file() else None
        out.write_text(keep_pasted(render(saved["sections"], ctx, saved["total"], saved["names"], *saved["peaks"],
                                          saved["machine"]), old))
        print(f"wrote {out} from {args.render_from} (measured {saved['machine'][-1]})")
        return 0
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")

    import torch

    torch.set_num_threads(1)  # every measurement sets its own count; this is the default for the rest
    out = args.out.resolve()
    img_dir = out.parent / "img"
    img_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fnx-bench-"))
    sys.path.insert(0, str(REPO))
    os.chdir(work)  # converters drop scratch files (augmented_model.onnx, ...) in the working directory
    ctx = Ctx(quick=args.quick, work=work, img_dir=img_dir, doc_dir=out.parent,
              log=lambda s: print(s, flush=True))
    started = time.perf_counter()
    machine = machine_lines()
    print(f"fnx benchmarks ({'quick' if args.quick else 'full'}): {', '.join(names)}; work folder {work}", flush=True)
    for line in machine:
        print(line)
    wait_quiet(ctx)
    load0 = Load()
    peak1, peak2, conv = gemm_peak(ctx, 1), gemm_peak(ctx, 2), dense_conv_peak(ctx)
    print(f"- fp32 roofline: torch.mm 2048² {peak1:.1f} GMAC/s on 1 thread, {peak2:.1f} on 2; "
          f"dense 3x3 conv in LiteRT {conv or float('nan'):.1f} on 1\n", flush=True)

    sections: list[Section] = []
    try:
        for name in names:
            print(f"== {name}", flush=True)
            wait_quiet(ctx)
            t0, load = time.perf_counter(), Load()
            mod = importlib.import_module(f"benchmarks.{name}")
            try:
                sec = mod.run(ctx)
            except Exception as e:  # noqa: BLE001 - one benchmark's failure must not lose the others
                traceback.print_exc()
                sec = Section(name, getattr(mod, "TITLE", name), skipped=f"failed: {type(e).__name__}: {e}")
            sec.seconds = time.perf_counter() - t0
            sec.other_load = load.other()
            sections.append(sec)
            ctx.cache.setdefault("sections", {})[name] = sec
            _print_section(sec)
    finally:
        os.chdir(REPO)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    total = time.perf_counter() - started
    ctx.cache["other_load"] = load0.other()
    if args.results:
        args.results.write_bytes(pickle.dumps({"sections": sections, "quick": ctx.quick, "total": total, "names": names,
                                               "peaks": (peak1, peak2, conv), "other_load": ctx.cache["other_load"],
                                               "machine": machine}))
    if args.update and out.is_file():
        out.write_text(update(out.read_text(), sections, names, machine))
    else:
        old = out.read_text() if out.is_file() else None  # its pasted sections (GPU, the other CPU kind) stay
        out.write_text(keep_pasted(render(sections, ctx, total, names, peak1, peak2, conv, machine), old))
    print(f"wrote {out} ({total / 60:.1f} min in all)")
    return 0


class Load:
    """How busy the machine was with other processes since this object was made (share of all cores)."""

    def __init__(self):
        self.t, self.busy, self.own = time.perf_counter(), machine_load()[0], own_cpu_seconds()

    def other(self) -> float | None:
        wall = time.perf_counter() - self.t
        busy = (machine_load()[0] - self.busy) / os.sysconf("SC_CLK_TCK")
        own = own_cpu_seconds() - self.own
        if wall <= 0 or not busy:
            return None
        return max(0.0, (busy - own) / (wall * (os.cpu_count() or 1)))


def _load_text(x: float | None) -> str:
    return "unknown" if x is None else f"{100 * x:.0f}%"


def _print_section(sec: Section) -> None:
    print(f"\n## {sec.title}  ({sec.seconds:.0f} s; other processes used {_load_text(sec.other_load)} of the CPUs)")
    if sec.skipped:
        print(f"not measured: {sec.skipped}")
    for t in sec.tables:
        print_table(t)
    for n in sec.notes:
        print(f"- {n}")
    print(flush=True)


def render(sections: list[Section], ctx: Ctx, total: float, names: list[str], peak1: float, peak2: float,
           conv: float | None, machine: list[str]) -> str:
    mode = "quick" if ctx.quick else "full"
    cmd = "python -m benchmarks" + (" --quick" if ctx.quick else "") + (
        f" --only {','.join(names)}" if len(names) < len(BENCHMARKS) else "")
    lines = [
        "# fnx benchmarks",
        "",
        f"Written by `{cmd}` ({mode} run, {total / 60:.1f} min). Every figure below is a ratio or a side-by-side "
        "measured in this one run on this one machine; nothing here is a pass/fail threshold. Re-run the command "
        "to regenerate this file and the plots in `docs/img/`.",
        "",
        "## Machine",
        "",
        *machine,
        f"- **fp32 references**: torch.mm 2048x2048 (MKL SGEMM) {peak1:.1f} GMAC/s on 1 thread, {peak2:.1f} on 2; "
        f"a dense 3x3 conv stack (192x28², 10 layers) in LiteRT/XNNPACK {conv or float('nan'):.1f} GMAC/s on 1 thread",
        f"- **Other load**: processes other than this benchmark used {_load_text(ctx.cache.get('other_load'))} of "
        "the CPUs during the run (from /proc/stat; each section gives its own figure). Latencies taken under load "
        "are inflated; ratios measured side by side suffer less.",
        "",
        "Protocol unless a section says otherwise: batch 1, threads set explicitly (1 unless stated), warm-up runs "
        "then timed runs, **median** latency in ms; FLOPs are multiply-accumulates (the paper's and fvcore's "
        "convention), so GFLOPS = GMAC/s. Weights are random, re-initialized so activations are O(1) (speed does "
        "not depend on training; int8 calibration needs sane ranges).",
        "",
        "## Where fnx stands",
        "",
        *summary_lines(sections, ctx),
        "",
    ]
    for sec in sections:
        lines += section_lines(sec)
    return "\n".join(lines).rstrip() + "\n"


def update(text: str, sections: list[Section], names: list[str], machine: list[str]) -> str:
    """Return the report text with each measured section replaced (or appended), saying when and where it was run."""
    for sec in sections:
        where = f"_Re-measured alone by `python -m benchmarks --only {','.join(names)} --update`: " + "; ".join(
            line.lstrip("- ").replace("**", "") for line in machine if "CPU" in line or "Date" in line) + "._"
        block = "\n".join(section_lines(sec, where)).rstrip() + "\n\n"
        head = f"## {sec.title}\n"
        if head in text:
            start = text.index(head)
            end = text.find("\n## ", start + len(head))
            text = text[:start] + block + (text[end + 1:] if end >= 0 else "")
        else:
            text = text.rstrip() + "\n\n" + block
    return text.rstrip() + "\n"


def section_lines(sec: Section, note: str = "") -> list[str]:
    """Return one section of the report as Markdown lines."""
    lines = [f"## {sec.title}", "", *([note, ""] if note else []), f"_{sec.seconds:.0f} s in this run; other "
             f"processes used {_load_text(sec.other_load)} of the CPUs meanwhile._", ""]
    if sec.skipped:
        lines += [f"**Not measured:** {sec.skipped}", ""]
    if sec.intro:
        lines += [sec.intro, ""]
    for t in sec.tables:
        lines += [markdown_table(t), ""]
    for rel, caption in sec.figures:
        lines += [f"![{caption}]({rel})", "", f"_{caption}_", ""]
    if sec.notes:
        lines += [*(f"- {n}" for n in sec.notes), ""]
    return lines


if __name__ == "__main__":
    sys.exit(main())
