"""End to end, JPEG file -> top-5 label: where the time goes, per preprocessing mode, sequential and pipelined.

Uses fnx.runtime.e2e (what `fnx bench e2e` runs) on JPEGs it writes (fnx.dev.images): 1080p and 12 MP, q90.
"""

from __future__ import annotations

from benchmarks.context import Ctx, artifacts
from benchmarks.report import Section, Table, f, short_error

NAME = "e2e"
TITLE = "End to end: JPEG file -> label (T0 int8 TFLite)"


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
            rep = e2e(load(art, device="cpu", threads=threads), folder, workers=2, batch_size=8)
            for r in rep["rows"]:
                head[(label, threads, r["mode"])] = r["pipelined_ips"]
                rows.append([label, str(threads), r["mode"], f(r["decode_ms"], 2), f(r["preprocess_ms"], 2),
                             f(r["invoke_ms"], 2), f(r["post_ms"], 3), f(r["sequential_ips"], 1),
                             f(r["pipelined_ips"], 1), f(rep["invoke_only_ips"], 0)])
            ctx.log(f"    {label}, engine threads {threads}: " + ", ".join(
                f"{r['mode']} {r['sequential_ips']:.1f} -> {r['pipelined_ips']:.1f} img/s" for r in rep["rows"]))
    sec.tables.append(Table(
        "File -> top-5, per image (median ms) and throughput (img/s): sequential, and pipelined (2 decode threads, "
        "batch 8)", ["JPEG", "engine thr", "mode", "decode", "resize+crop+norm", "invoke", "post", "img/s seq",
                     "img/s pipelined", "engine alone img/s"], rows,
        "exact: full decode + bicubic resize (the evaluation transform). fast: DCT-domain reduced decode keeping >= 2x "
        "the resize target, then the same bicubic resize and crop, resampling only the crop's pixels. The engine and "
        "the decode threads share the same 2 cores."))
    sec.intro = ("What a user's `fnx run photos/` costs beyond the model: decoding and resizing a 2 MP or 12 MP JPEG "
                 "takes many times the T0 int8 invoke. `fnx bench e2e ART FOLDER` prints this table for any folder.")
    sec.headline = {"pipelined_ips": head}
    return sec
