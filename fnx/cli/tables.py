"""Presentation of `fnx export`, `fnx quantize` and `fnx verify`: parity, summary and quantization tables."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from fnx.manifest import Manifest
from fnx.parity import ParityReport


def compact_table(title: str, caption: str, columns: tuple[str, ...], left: tuple[str, ...]) -> Table:
    """Return an 80-column-friendly table (no outer box) with columns; those in `left` left-aligned, others right."""
    from rich import box

    table = Table(title=title, caption=caption, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0))
    for col in columns:
        table.add_column(col, justify="left" if col in left else "right", no_wrap=True)
    return table


def parity_table(rows: list[tuple[str, ParityReport]], title: str = "Parity against PyTorch fp32") -> Table:
    """Return a rich table with one row per artifact output: max abs, max rel, cosine, top-1, verdict."""
    bounds = {", ".join(f"{k}={v:g}" for k, v in rep.bounds.items()) + f" ({rep.precision})" for _, rep in rows}
    table = Table(title=title, caption="bounds: " + "; ".join(sorted(bounds)))
    for col in ("artifact", "output", "n", "max abs", "max rel", "cosine", "top-1", "verdict"):
        table.add_column(col, justify="left" if col in ("artifact", "output", "verdict") else "right",
                         no_wrap=col != "artifact", overflow="fold")
    for name, rep in rows:
        for o in rep.outputs:
            top1 = "-" if o.top1_agreement is None else f"{100 * o.top1_agreement:5.1f}%"  # one width: 98.4% and 100.0% wrap alike
            table.add_row(name, o.name, str(o.n), f"{o.max_abs:.1e}", f"{o.max_rel:.1e}", f"{o.cosine:.6f}", top1,
                          "[green]pass[/]" if rep.passed else "[red]FAIL[/]")
    return table


def summary_table(results, total_s: float) -> Table:
    """Return the end-of-export table: artifact, input, size, sha256, verdict."""
    out_dirs = sorted({str(Path(r.artifact).parent) for r in results})
    table = Table(title=f"Exported to {', '.join(out_dirs)} in {total_s:.1f} s")
    for col in ("artifact", "input", "size", "sha256", "parity"):
        table.add_column(col, no_wrap=col != "artifact", overflow="fold")
    for r in results:
        m = r.manifest
        inp = m.input
        shape = "x".join("N" if d is None else str(d) for d in inp.shape)
        verdict = "skipped" if r.parity is None else ("[green]pass[/]" if r.parity.passed else "[red]FAIL[/]")
        table.add_row(Path(r.artifact).name, f"{shape} {inp.layout} {inp.dtype}", _size(m.artifact.size_bytes),
                      m.artifact.sha256[:12], verdict)
    return table


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def print_results(console: Console, results, total_s: float) -> None:
    rows = [(Path(r.artifact).name, r.parity) for r in results if r.parity is not None]
    if rows:
        console.print(parity_table(rows))
    console.print(summary_table(results, total_s))
    from fnx.runtime.bench import estimate_row

    compiled = [estimate_row(Path(r.artifact).name, r.manifest) for r in results if r.manifest.compilation is not None]
    if compiled:
        console.print(estimates_table(compiled))


def estimates_table(rows: list[dict]) -> Table:
    """Return the compiler estimates of artifacts compiled for an NPU (rows from fnx.runtime.bench.estimate_row),
    kept apart from measured latencies: nothing here ran them."""
    table = compact_table("Compiler estimates (not measured: no such NPU ran them here)",
                          "per inference, batch 1. parity: min cosine vs PyTorch fp32 of the file each was compiled "
                          "from, or of the compiler's simulator (its manifest's compilation.parity says which); "
                          "SRAM: on-chip memory used (IMX500: weights and runtime, by the converter's report); "
                          "off-chip: weights, in flash or DRAM",
                          ("artifact / target", "est. ms", "NPU ops", "CPU ops", "SRAM KiB", "off-chip KiB", "parity"),
                          left=("artifact / target",))
    first = table.columns[0]
    first.no_wrap, first.overflow, first.ratio = False, "fold", 1  # long names fold rather than crop
    fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    for r in rows:
        table.add_row(f"{r['artifact']}\n[dim]{r['target']}, {r['compiler']}[/]", fmt(r["estimated_ms"], ".2f"),
                      fmt(r["ops_on_npu"], "d"), fmt(r["ops_on_cpu"], "d"),
                      fmt(r["sram_kib"] if r["sram_kib"] is not None else r["on_chip_kib"], ".0f"),
                      fmt(r["off_chip_kib"], ".0f"), fmt(r["source_cosine"], ".5f"))
    return table


def quant_report_table(rows: list[tuple[str, Manifest]]) -> Table:
    """Return the int8 quantization report, one block of lines per artifact (fits 80 columns)."""
    table = Table(title="int8 quantization report (held-out images, int8 vs fp32)", show_header=False)
    table.add_column("what", no_wrap=True, style="bold")
    table.add_column("value", overflow="fold", ratio=1)
    for i, (name, m) in enumerate(rows):
        c = m.calibration
        r = c.report
        drop = "-" if r.top1_drop_points is None else f"{r.top1_drop_points:.2f} points"
        agree = "-" if r.top1_agreement is None else f"{100 * r.top1_agreement:.1f}%"
        cost = r.float_fallback_cost
        kept = (f"{len(c.kept_float)} layer(s): {', '.join(c.kept_float)}" + (f" ({cost.slowdown:.2f}x the all-int8 "
                f"latency)" if cost else "")) if c.kept_float else "none"
        for what, value in (("artifact", name), ("calibration", f"{c.calibration_images} images from {c.source}, "
                            f"{c.method}, {c.held_out_images} held out"),
                            ("cosine (min)", f"{r.cosine_min:.5f} (bound {c.guard.min_cosine:g})" + (
                                " weakest of: " + ", ".join(f"{o.name} {o.cosine:.5f}" for o in r.per_output)
                                if r.per_output else "")),
                            ("top-1 agreement", agree), ("top-1 drop", drop), ("max abs", f"{r.max_abs:.3g}"),
                            *_form_rows(c.forms), ("kept in float", kept),
                            ("float ops", ", ".join(f"{k} x{v}" for k, v in r.float_ops.items()) or "none"),
                            ("worst layers", ", ".join(f"{e.layer} ({e.rel_error:.3f})" for e in r.layer_errors[:3]))):
            table.add_row(what, value)
        if i < len(rows) - 1:
            table.add_section()
    return table


def _form_rows(forms) -> list[tuple[str, str]]:
    """The report's lines on the int8 form: which and why, and each measured candidate's figures."""
    if forms is None:
        return []
    rows = [("int8 form", f"{forms.chosen} ({forms.how}" + (f" in {forms.seconds:.1f} s" if forms.seconds else "")
             + f"): {forms.reason}")]
    for t in forms.candidates:
        if t.latency_ms is None and t.cosine_min is None:
            continue  # left out of auto (the manifest says why)
        ms = "-" if t.latency_ms is None else f"{t.latency_ms:.2f} ms"
        cos = "-" if t.cosine_min is None else f"cosine {t.cosine_min:.5f}"
        rows.append((f"  {t.form}", f"{ms}, {cos}, " + ("within the bound" if t.passed else f"out: {t.why_not}")))
    return rows


def layers_table(rows, top: int) -> Table:
    """Return the worst `top` layers of `fnx verify --layers`: error in the file beside the guard's record."""
    flagged = sum(r.disagrees for r in rows)
    table = Table(title=f"Layer error in the file itself, worst {min(top, len(rows))} of {len(rows)}",
                  caption="SQNR of each layer's output vs the PyTorch module's, on the same images; recorded: what the "
                          f"export's guard measured (int8: its 10 worst layers). {flagged} layer(s) differ by > 6 dB.")
    for col in ("layer", "cosine", "SQNR dB", "recorded dB"):
        table.add_column(col, justify="left" if col == "layer" else "right", overflow="fold")
    for r in rows[:top]:
        recorded = "-" if r.recorded_snr_db is None else f"{r.recorded_snr_db:.1f}" + (" [yellow]≠[/]" if r.disagrees else "")
        table.add_row(r.layer, f"{r.cosine:.5f}", f"{r.sqnr_db:.1f}", recorded)
    return table
