"""End to end, JPEG file -> top-5 label: where the time goes, per preprocessing mode, sequential and pipelined, and
`fnx run` on a folder against a plain loop (benchmarks.run_folder).

Uses fnx.runtime.e2e (what `fnx bench e2e` runs) on JPEGs it writes (fnx.dev.images): 1080p and 12 MP, q90.
"""

from __future__ import annotations

from benchmarks.context import Ctx, artifacts
from benchmarks.report import Section, Table, f, short_error

NAME = "e2e"
TITLE = "End to end: JPEG file -> label (T0 int8 TFLite; fnx run on a folder: T2 int8 TFLite)"


def run(ctx: Ctx) -> Section:
    from fnx.dev.images import SIZES, write_jpegs
    from fnx.runtime import load
    from fnx.runtime.e2e import e2e

    sec = Section(NAME, TITLE)
    art = artifacts(ctx, "fasternet_t0", "int8", ("tflite",))["tflite"]
    if isinstance(art, Exception):
        sec.skipped = f"the int8 TFLite export failed: {short_error(art)}"
        return sec
    rows, head = [], {}
    counts = {"1080p": 60 if ctx.quick else 200, "12mp": 12 if ctx.quick else 40}
    for label, n in counts.items():
        folder = ctx.work / f"jpegs_{label}"
        write_jpegs(folder, n, SIZES[label])
        for threads in (1, 2):
            rep = e2e(load(art, device="cpu", threads=threads), folder, batch_size=8)
            for r in rep["rows"]:
                head[(label, threads, r["mode"])] = r["pipelined_ips"]
                rows.append([label, str(threads), r["mode"], f(r["decode_ms"], 2), f(r["preprocess_ms"], 2),
                             f(r["invoke_ms"], 2), f(r["post_ms"], 3), f(r["sequential_ips"], 1), str(r["workers"]),
                             f(r["pipelined_ips"], 1), f(r["bound_ips"], 1), f(100 * r["fraction"], 0, "%"),
                             f(rep["invoke_only_ips"], 0)])
            ctx.log(f"    {label}, engine threads {threads}: " + ", ".join(
                f"{r['mode']} {r['sequential_ips']:.1f} -> {r['pipelined_ips']:.1f} img/s ({r['fraction']:.0%} of "
                f"bound)" for r in rep["rows"]))
    sec.tables.append(Table(
        "File -> top-5, per image (median ms) and throughput (img/s): sequential, and pipelined (batch 8, decode "
        "workers sized around the engine threads as `fnx run` sizes them)",
        ["JPEG", "engine thr", "mode", "decode", "resize+crop+norm", "invoke", "post", "img/s seq", "workers",
         "img/s pipelined", "bound img/s", "of bound", "engine alone img/s"], rows,
        "exact: full decode + bicubic resize (the evaluation transform). fast: DCT-domain reduced decode keeping >= 2x "
        "the resize target, then the same bicubic resize and crop, resampling only the crop's pixels. bound: the "
        "cores over one image's CPU time (every stage, the whole process), measured in the sequential pass; of bound: "
        "pipelined / bound. The engine and the decode threads share the same cores."))
    folder_table(ctx, sec, write_jpegs)
    sec.intro = ("What a user's `fnx run photos/` costs beyond the model: decoding and resizing a 2 MP or 12 MP JPEG "
                 "takes many times the T0 int8 invoke. `fnx bench e2e ART FOLDER` prints the first table, with its "
                 "bound and fraction, for any folder.")
    sec.headline = {"pipelined_ips": head}
    return sec


def folder_table(ctx: Ctx, sec: Section, write_jpegs) -> None:
    """Add `fnx run` on a folder of 1080p JPEGs (T2 int8) against a plain loop, sized and at alternatives."""
    from benchmarks.run_folder import compare

    art = artifacts(ctx, "fasternet_t2", "int8", ("tflite",))["tflite"]
    if isinstance(art, Exception):
        sec.notes.append(f"`fnx run` on a folder: not measured, the T2 int8 TFLite export failed: {short_error(art)}")
        return
    folder = ctx.work / "jpegs_1080p_run"
    n = 60 if ctx.quick else 600
    write_jpegs(folder, n)
    rows = []
    for r in compare(art, folder, log=ctx.log):
        plain = r["what"] == "plain loop"
        rows.append([r["mode"], r["what"], str(r["threads"]), "—" if plain else str(r["workers"]), f(r["ips"], 1),
                     "—" if plain else f(r["process_ips"], 1), "1.00x" if plain else f(r["vs_plain"], 2, "x"),
                     f(r["bound_ips"], 1) if plain else f(100 * r["fraction"], 0, "%"),
                     f(r["cpu_ms"], 1) if plain else "—", f(100 * (r["other_load"] or 0), 0, "%")])
    sec.tables.append(Table(
        f"`fnx run FOLDER` on {n} 1080p q90 JPEGs, T2 int8 TFLite (LiteRT), whole process: against a plain loop over "
        "the same Session, at the sized engine threads + decode workers and at alternatives",
        ["mode", "run", "engine thr", "workers", "img/s", "img/s incl. start-up", "x plain", "bound img/s / of bound",
         "CPU ms/img", "others' CPU"], rows,
        "plain loop: for each file Image.open, preprocess, Session.run, top-5 (fast: the path, so the JPEG is decoded "
        "at reduced size). Its CPU per image (whole process) is one image's work; bound = cores / that. fnx run: "
        "`python -m fnx run ART FOLDER --preprocess MODE --json` in its own process; img/s is its own figure (the "
        "stream), incl. start-up: images over the process's wall time. others' CPU: the machine's CPU other "
        "processes used meanwhile."))
