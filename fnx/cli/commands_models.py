"""`fnx models` and `fnx devices`: what fnx can export, and where it can run."""

from __future__ import annotations

from rich import box
from rich.table import Table

from fnx.cli.app import app
from fnx.cli.common import AsJson, command, console, print_json
from fnx.cli.tables import compact_table

import typer


@command(app, "models")
def models_cmd(
    img_size: int = typer.Option(224, "--img-size", help="Input size for the FLOPs figure (multiple of 32)."),
    as_json: AsJson = False,
) -> None:
    """List the FasterNet variants: params, GFLOPs, activation, the paper's ImageNet top-1, and whether the
    official weights are cached here (from the release, or from its Hub mirror)."""
    from fnx.models import VARIANTS, check_img_size, describe
    from fnx.models.weights import official_cache_state, official_url

    check_img_size(img_size)
    rows = []
    for name, variant in VARIANTS.items():
        cached = official_cache_state(variant)
        rows.append({**describe(name, img_size), "weights": {"release": official_url(variant),
                                                               "mirror": variant.hub_mirror, "cached": cached}})
    if as_json:
        print_json(rows)
        return
    table = compact_table(f"FasterNet variants (GFLOPs: multiply-accumulates at {img_size}x{img_size})",
                          "weights: the official release, else timm's mirror hf-hub:timm/NAME.in1k; 'cached': "
                          "which is here (else downloaded on first use)",
                          ("model", "params M", "GFLOPs", "act", "depths", "top-1", "cached"),
                          left=("model", "act", "depths", "cached"))
    for r in rows:
        cached = r["weights"]["cached"]
        table.add_row(r["name"].replace("_", "-"), f"{r['params'] / 1e6:.3f}", f"{r['flops'] / 1e9:.3f}",
                      r["act"].upper(), "-".join(map(str, r["depths"])), f"{r['paper_top1']:.1f}",
                      f"[green]{cached}[/]" if cached else "[dim]no[/]")
    console.print(table)


@command(app, "devices")
def devices_cmd(as_json: AsJson = False) -> None:
    """List the device profiles and the engines installed here, and mark the profile detected on this machine."""
    from fnx.devices import PROFILES, detection_report
    from fnx.runtime.engines import ENGINES

    from fnx.devices.measured import measured_here

    det = detection_report()
    measured = measured_here()
    engines = [{"name": e.name, "formats": list(e.formats), "devices": list(e.devices), "installed": e.available(),
                "version": e.version() if e.available() else None, "needs_torch": e.needs_torch}
               for e in ENGINES.values()]
    from fnx.formats import file_formats

    elsewhere = {f.name: f.runs_on for f in file_formats().values()  # formats fnx makes but no engine here runs
                 if f.runs_on and not any(f.name in e.formats for e in ENGINES.values())}
    if as_json:
        print_json({"detected": det, "profiles": [p.to_dict() for p in PROFILES.values()], "engines": engines,
                    "no_engine": elsewhere, "measured_here": measured})
        return
    table = Table(title="Device profiles", caption=f"* detected here: {det['profile']} ({det['reason']})",
                  box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0))
    # Every column may wrap: rich crops (not wraps) a cell when no_wrap columns overflow a narrow terminal.
    table.add_column("", no_wrap=True)
    for col in ("profile", "arch", "export", "engine on", "thr"):
        table.add_column(col, overflow="fold")
    table.add_column("description", min_width=16, ratio=1, overflow="fold")
    for p in PROFILES.values():
        table.add_row("*" if p.name == det["profile"] else "", p.name, p.arch, f"{p.format} {p.precision}",
                      f"{p.engine} {p.accelerator}", str(p.threads or "all"), p.description)
    console.print(table)
    et = Table(title="Engines, in order of preference", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0))
    for col in ("engine", "formats", "devices", "installed"):
        et.add_column(col)
    for e in engines:
        et.add_row(e["name"], ", ".join(e["formats"]), ", ".join(e["devices"]),
                   f"[green]{e['version']}[/]" if e["installed"] else "[dim]no[/]")
    console.print(et)
    torch_engines = [e["name"] for e in engines if e["needs_torch"]]
    if torch_engines:
        console.print(f"{', '.join(torch_engines)} needs torch on the device (its runtime takes torch tensors); the "
                      f"other engines run without torch.", highlight=False)
    considered: dict[tuple, list[str]] = {}  # profiles that consider the same other paths share a line
    for p in PROFILES.values():
        if p.consider:
            considered.setdefault(p.consider, []).append(p.name)
    for paths, names in considered.items():
        also = "; ".join(f"{f} {pr} on {e}" for f, pr, e in paths)
        console.print(f"{', '.join(names)}: also consider {also} (fnx bench all on the device ranks them)",
                      highlight=False)
    for name, where in elsewhere.items():
        console.print(f"{name} artifacts: no engine in fnx; they run on {where}", highlight=False)
    _print_measured(measured, PROFILES.get(det["profile"]))


def _print_measured(measured: list[dict], profile) -> None:
    """The fastest path within bounds that `fnx bench all` measured here, beside the detected profile's choice."""
    from fnx.devices.measured import profile_row

    if not measured:
        console.print("Not measured on this machine yet: `fnx bench all MODEL` ranks every format x precision x "
                      "engine here; fnx devices then shows the fastest within its parity bounds.", highlight=False)
        return
    mt = Table(title="Measured here (fnx bench all): fastest within parity bounds", box=box.SIMPLE_HEAD,
               pad_edge=False, padding=(0, 1, 0, 0))
    for col in ("model", "size", "thr", "fastest path", "p50 ms", "cosine", f"profile {profile.name if profile else '-'}",
                "when"):  # at 80 columns cells wrap; nothing is cut
        mt.add_column(col, overflow="fold", ratio=2 if col == "fastest path" else None,
                      min_width=12 if col == "model" else None)
    for run in measured:
        best = run.get("fastest")
        own = profile_row(run, profile.format, profile.precision, profile.engine, profile.accelerator) \
            if profile else None
        path = (f"{best['format']} {best['precision']} on {best['engine']}"
                + (f" {best['device']}" if best.get("device") not in (None, "cpu") else "")
                + (f" ({best['inference_precision']})" if best["inference_precision"] not in (None, "native") else "")) \
            if best else "none within bounds"
        vs = "-" if not (own and best) else f"{own['p50_ms']:.2f} ms ({own['p50_ms'] / best['p50_ms']:.2f}x)"
        mt.add_row(run["model"].replace("_", "-"), str(run["img_size"]), str(run["threads"]), path,
                   f"{best['p50_ms']:.2f}" if best else "-", f"{best['cosine']:.5f}" if best else "-", vs, run["date"])
    console.print(mt)
    if profile is None or profile.accelerator == "cpu":
        console.print("--device auto runs an artifact on the fastest installed engine measured here for its model, "
                      "format and precision (--engine overrides it).", highlight=False)
