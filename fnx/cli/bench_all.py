"""`fnx bench all MODEL`: every format x precision x engine here, one table sorted by latency."""

from __future__ import annotations

from pathlib import Path

from fnx.cli.common import console, err_console, print_json
from fnx.cli.tables import compact_table


def bench_all_cmd(model: str, threads: int, runs: int, warmup: int, weights: str | None, img_size: int | None,
                  calib_data: str | None, calib_size: int, data: Path | None, out: Path | None, precisions: str,
                  as_json: bool, min_cosine: float | None = None, int8_form: str = "auto") -> None:
    """Export model everywhere it can go here, time and check each combination, and print the ranking."""
    from fnx.calibration.options import Int8Options
    from fnx.exporter import ExportOptions
    from fnx.errors import FnxError
    from fnx.ranking import bench_all
    from fnx.formats import PRECISIONS
    from fnx.progress import Steps

    from fnx.devices.measured import check_record_writable

    check_record_writable()  # before any export: the ranking must be keepable
    chosen = tuple(p.strip() for p in precisions.split(",") if p.strip())
    if not chosen or any(p not in PRECISIONS for p in chosen):
        raise FnxError(f"--precisions takes a comma-separated list of {', '.join(PRECISIONS)}; got {precisions!r}")

    opts = ExportOptions(weights=weights, img_size=img_size, data=data, out_dir=out or Path("fnx-bench-all"),
                         int8=Int8Options(data=calib_data, size=calib_size, min_cosine=min_cosine, form=int8_form))
    rows = bench_all(model, opts, threads=threads, runs=runs, warmup=warmup, data=data, precisions=chosen,
                     steps=Steps(console=err_console, quiet=as_json))
    from fnx.devices.measured import save_ranking
    from fnx.manifest import read_manifest
    from fnx.models import get_variant

    estimates, rows = [r for r in rows if r.get("estimate")], [r for r in rows if not r.get("estimate")]
    first = next((r for r in rows if "error" not in r), None)
    if first is not None:  # estimates alone time nothing: there is no ranking to keep
        m = read_manifest(opts.out_dir / first["artifact"])
        saved = save_ranking(get_variant(model).name, m.model.img_size, threads, rows)
        if not as_json:
            err_console.print(f"ranking kept for this machine in {saved} (fnx devices shows the fastest)",
                              highlight=False)
    if as_json:
        print_json(rows + estimates)
        return
    table = compact_table(f"fnx bench all {model} ({threads} thread(s), batch 1, {runs} runs; ms)",
                          "parity: min cosine vs PyTorch fp32 on the same images, within its bounds (fnx.parity); "
                          "* fastest within bounds. All figures: --json",
                          ("", "format", "prec", "engine", "compute", "MB", "cosine", "top-1", "p50", "img/s"),
                          left=("", "format", "prec", "engine", "compute"))
    for r in rows:
        if "error" in r:
            what = f"[red]not on {r['device']}[/]" if r.get("device") else "[red]not exported[/]"
            table.add_row("", r["format"], r["precision"], what, "", "", "", "", "", "")
            continue
        cos = f"{r['cosine']:.5f}" + ("" if r["parity_passed"] else " [red]fail[/]")
        top1 = "-" if r["top1"] is None else f"{100 * r['top1']:.1f}"
        engine = r["engine"] + (f" {r['device']}" if r.get("device", "cpu") != "cpu" else "")
        compute = r["inference_precision"]
        if r.get("computed_precision") not in (None, "native", compute):  # the engine ignored the hint
            compute += f" (ran {r['computed_precision']})"
        table.add_row("*" if r["fastest_within_bounds"] else "", r["format"], r["precision"], engine,
                      compute, f"{r['file_mb']:.1f}", cos, top1, f"{r['p50_ms']:.2f}",
                      f"{r['throughput_ips']:.0f}")
    console.print(table)
    if estimates:
        from fnx.cli.tables import estimates_table

        console.print(estimates_table(estimates))
    for r in rows:
        if "error" in r:
            what = f"not run on {r['engine']} {r['device']}" if r.get("device") else "not exported"
            err_console.print(f"[yellow]{r['format']} {r['precision']} {what}:[/] {r['error']}", highlight=False,
                              soft_wrap=True)
