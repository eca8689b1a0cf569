"""The paper's Table 1: Conv / GConv / DWConv / PConv 3x3, 10 stacked layers, batch 1, one thread.

FLOPs are multiply-accumulates (the paper's convention); GFLOPS = MACs / latency. Each stack is run
in PyTorch eager, ONNX Runtime (opset 20, 1 intra-op thread) and LiteRT (litert-torch, NHWC I/O,
1 thread, fp32 and PT2E int8).
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.context import Ctx
from benchmarks.report import PAPER_TABLE1_GFLOPS, Section, Table, f, plt, short_error
from benchmarks.timing import stats, time_engine, time_torch
from fnx.quiet import silenced

NAME = "operators"
TITLE = "Operators (paper Table 1)"
SIZES = [(96, 56), (192, 28), (384, 14), (768, 7)]
OPS = ["Conv", "GConv", "DWConv", "PConv"]
LAYERS = 10
ENGINES = ["PyTorch eager", "ONNX Runtime", "LiteRT fp32", "LiteRT int8"]


def make_stack(op: str, c: int):
    import torch
    from torch import nn

    class PConv(nn.Module):
        """Partial conv, r = 1/4, split + concat (FasterNet's deploy form)."""

        def __init__(self, dim: int):
            super().__init__()
            self.dc = dim // 4
            self.conv = nn.Conv2d(self.dc, self.dc, 3, 1, 1, bias=False)

        def forward(self, x):
            x1, x2 = torch.split(x, [self.dc, x.shape[1] - self.dc], dim=1)
            return torch.cat((self.conv(x1), x2), 1)

    def layer():
        if op == "PConv":
            return PConv(c)
        groups = {"Conv": 1, "GConv": 16, "DWConv": c}[op]
        return nn.Conv2d(c, c, 3, 1, 1, groups=groups, bias=False)

    g = torch.Generator().manual_seed(0)
    m = nn.Sequential(*[layer() for _ in range(LAYERS)]).eval()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.Conv2d):
                fan_in = mod.in_channels // mod.groups * 9
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * (1.0 / fan_in) ** 0.5)
    return m


def macs(op: str, c: int, hw: int) -> int:
    per_pixel = {"Conv": c * c * 9, "GConv": c * (c // 16) * 9, "DWConv": c * 9, "PConv": (c // 4) ** 2 * 9}[op]
    return LAYERS * hw * hw * per_pixel


def to_onnx(m, x, path) -> None:
    import torch

    with silenced():
        torch.onnx.export(m, (x,), str(path), dynamo=False, opset_version=20, input_names=["input"],
                          output_names=["output"], do_constant_folding=True)


def to_tflite(m, x_nhwc, path, int8: bool) -> None:
    import litert_torch
    import torch

    wrapped = litert_torch.to_channel_last_io(m, args=[0], outputs=[0]).eval()
    with silenced():
        if not int8:
            litert_torch.convert(wrapped, (x_nhwc,)).export(str(path))
            return
        from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
        from litert_torch.quantize.quant_config import QuantConfig
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        q = PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
        pm = prepare_pt2e(torch.export.export(wrapped, (x_nhwc,)).module(), q)
        g = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for _ in range(4):
                pm(torch.randn(x_nhwc.shape, generator=g))
        pm = convert_pt2e(pm, fold_quantize=False)
        litert_torch.convert(pm, (x_nhwc,), quant_config=QuantConfig(pt2e_quantizer=q)).export(str(path))


def run(ctx: Ctx) -> Section:
    import torch

    warmup, runs = (2, 10) if ctx.quick else (5, 40)
    sec = Section(NAME, TITLE)
    rows, gflops = [], {e: {op: [] for op in OPS} for e in ENGINES}
    errors: list[str] = []
    convert_s = 0.0
    for op in OPS:
        for c, hw in SIZES:
            m = make_stack(op, c)
            x = torch.randn(1, c, hw, hw, generator=torch.Generator().manual_seed(0))
            x_nhwc = x.permute(0, 2, 3, 1).contiguous()
            n = macs(op, c, hw)
            ms = {}
            ms["PyTorch eager"] = stats(time_torch(m, x, warmup, runs))["median_ms"]
            base = ctx.work / f"op_{op}_{c}"
            t0 = time.perf_counter()
            try:
                to_onnx(m, x, base.with_suffix(".onnx"))
                ms["ONNX Runtime"] = stats(time_engine(base.with_suffix(".onnx"), x.numpy(), warmup, runs, engine="onnxruntime"))["median_ms"]
            except Exception as e:  # noqa: BLE001
                errors.append(f"ONNX Runtime {op} {c}x{hw}²: {short_error(e)}")
            for eng, int8 in (("LiteRT fp32", False), ("LiteRT int8", True)):
                path = ctx.work / f"op_{op}_{c}_{'int8' if int8 else 'fp32'}.tflite"
                try:
                    to_tflite(m, x_nhwc, path, int8)
                    ms[eng] = stats(time_engine(path, x_nhwc.numpy(), warmup, runs, engine="litert"))["median_ms"]
                except Exception as e:  # noqa: BLE001
                    errors.append(f"{eng} {op} {c}x{hw}²: {short_error(e)}")
            convert_s += time.perf_counter() - t0
            row = [f"{op} {c}x{hw}²", f(n / 1e6, 0)]
            for eng in ENGINES:
                g = n / (ms[eng] / 1e3) / 1e9 if eng in ms else None
                if g is not None:
                    gflops[eng][op].append(g)
                row += [f(ms.get(eng), 2), f(g, 1)]
            rows.append(row)
            ctx.log(f"    {row[0]:<18} " + "  ".join(f"{e}: {f(ms.get(e), 2)} ms" for e in ENGINES))
    headers = ["op, C x H x W", "MMACs (10 layers)"]
    for eng in ENGINES:
        headers += [f"{eng} ms", "GFLOPS" if "int8" not in eng else "GOPS*"]
    sec.tables.append(Table("Latency (median ms, 10 stacked layers, batch 1, 1 thread) and achieved GFLOPS", headers, rows,
                            "*int8 'GOPS' counts the same MACs per second; it is not bounded by the fp32 roofline."))

    avg = {e: {op: (float(np.mean(v)) if len(v) == len(SIZES) else None) for op, v in gflops[e].items()} for e in ENGINES}
    srows = []
    for op in OPS:
        srows.append([op, f(PAPER_TABLE1_GFLOPS[op])] + [f(avg[e][op]) for e in ENGINES])
    ratios = {e: (avg[e]["PConv"] / avg[e]["DWConv"] if avg[e]["PConv"] and avg[e]["DWConv"] else None) for e in ENGINES}
    paper_ratio = PAPER_TABLE1_GFLOPS["PConv"] / PAPER_TABLE1_GFLOPS["DWConv"]
    srows.append(["**PConv / DWConv**", f"**{paper_ratio:.1f}x**"] + [f"**{r:.1f}x**" if r else "—" for r in ratios.values()])
    conv_ratio = {e: (avg[e]["PConv"] / avg[e]["Conv"] if avg[e]["PConv"] and avg[e]["Conv"] else None) for e in ENGINES}
    srows.append(["PConv / Conv", f"{PAPER_TABLE1_GFLOPS['PConv'] / PAPER_TABLE1_GFLOPS['Conv']:.2f}x"]
                 + [f"{r:.2f}x" if r else "—" for r in conv_ratio.values()])
    sec.tables.insert(0, Table("Average achieved GFLOPS over the four feature maps (1 thread)",
                               ["operator", "paper CPU (i9-9900X, eager)"] + ENGINES, srows,
                               "PConv does 1/16 of Conv's MACs (as GConv with 16 groups does); DWConv 1/C of them."))
    sec.headline = {"pconv_dwconv": ratios, "paper_ratio": paper_ratio, "avg": avg, "convert_s": convert_s}
    sec.intro = (f"Ten stacked 3x3 layers of each operator on four FasterNet-like feature maps, batch 1, one thread, "
                 f"{runs} timed runs after {warmup} warm-ups (median). MACs counted as the paper counts FLOPs.")
    sec.notes = errors
    _plot(ctx, sec, avg)
    return sec


def _plot(ctx: Ctx, sec: Section, avg: dict) -> None:
    pyplot = plt()
    if pyplot is None:
        return
    series = {"paper CPU (i9-9900X)": [PAPER_TABLE1_GFLOPS[o] for o in OPS]}
    series.update({e: [avg[e][o] or 0 for o in OPS] for e in ENGINES})
    fig, ax = pyplot.subplots(figsize=(8, 4))
    width = 0.8 / len(series)
    for i, (label, vals) in enumerate(series.items()):
        xs = np.arange(len(OPS)) + (i - (len(series) - 1) / 2) * width
        ax.bar(xs, vals, width, label=label, hatch="//" if label.startswith("paper") else None,
               color="lightgray" if label.startswith("paper") else None, edgecolor="black", linewidth=0.4)
    ax.set_xticks(np.arange(len(OPS)), OPS)
    ax.set_ylabel("achieved GFLOPS (MAC/s), 1 thread")
    ax.set_title("Table 1 re-measured: average over 4 feature maps")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path, rel = ctx.img("operators_gflops.png")
    fig.savefig(path, dpi=110)
    pyplot.close(fig)
    sec.figures.append((rel, "Average achieved GFLOPS per operator and engine, beside the paper's CPU column."))
