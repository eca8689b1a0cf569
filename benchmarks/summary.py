"""The prose at the top of docs/BENCHMARKS.md, composed from the numbers measured in the same run.

Every sentence is conditional on what was measured: if a number flips, the wording flips with it.
"""

from __future__ import annotations

from benchmarks.report import PAPER_CPU_MS, act_name, pretty


def _x(v, d: int = 1) -> str:
    return "—" if v is None else f"{v:.{d}f}x"


def summary_lines(sections, ctx) -> list[str]:
    by = {s.name: s for s in sections if not s.skipped and s.headline}
    out: list[str] = []
    if "operators" in by:
        h = by["operators"].headline
        r = h["pconv_dwconv"]
        holds = all(v and v > 1 for v in r.values())
        out.append(
            f"- **PConv's premise (Table 1).** PConv runs at {_x(r.get('PyTorch eager'))} DWConv's FLOPS in PyTorch eager, "
            f"{_x(r.get('ONNX Runtime'))} in ONNX Runtime, {_x(r.get('LiteRT fp32'))} in LiteRT fp32 and "
            f"{_x(r.get('LiteRT int8'))} in LiteRT int8, against the paper's {h['paper_ratio']:.1f}x. "
            + ("The direction holds on every engine." if holds else "The direction does not hold on every engine.")
            + _why_ops(r, h.get("avg", {})))
    if "models" in by:
        h = by["models"].headline
        med, sp = h["median"], h["speedup"]
        eager = ", ".join(f"{pretty(n).split('-')[1]} {d['eager, BN folded']:.1f}" for n, d in med.items() if "eager, BN folded" in d)
        paper = ", ".join(f"{pretty(n).split('-')[1]} {PAPER_CPU_MS[n]}" for n in med)
        out.append(f"- **The paper's protocol on this CPU** (eager, BN folded, 1 thread): {eager} ms, against the paper's "
                   f"i9-9900X {paper} ms. Another CPU and another PyTorch: the paper's latencies are a reference, not a target.")
        lite = [(n, d["eager, BN folded"] / d["LiteRT fp32"]) for n, d in med.items() if "LiteRT fp32" in d and "eager, BN folded" in d]
        if lite:
            out.append("- **fnx's fp32 artifacts** run " + ", ".join(f"{pretty(n)} {v:.1f}x" for n, v in lite)
                       + " faster in LiteRT than the paper's protocol (eager) on the same cores. " + _best_pct(h))
        t2 = sp.get("fasternet_t2", {})
        if t2.get("LiteRT"):
            met = "meets" if t2["LiteRT"] >= 2 else "misses"
            out.append(f"- **int8.** FasterNet-T2 int8 is {t2['LiteRT']:.2f}x faster than fp32 on LiteRT ({met} fnx's "
                       f">= 2x goal) and {_x(t2.get('ORT'), 2)} on ONNX Runtime. Against the paper's protocol (eager fp32) "
                       "fnx's int8 LiteRT artifacts are "
                       + ", ".join(f"{pretty(n)} {v['vs_eager']:.1f}x" for n, v in sp.items() if v.get("vs_eager"))
                       + " faster.")
        elif "fasternet_t2" in med:
            out.append("- **int8.** The FasterNet-T2 int8 artifacts were not produced in this run (see `models`).")
        ort = [(n, v["ORT"]) for n, v in sp.items() if v.get("ORT")]
        if ort:
            line = "- **int8 on ONNX Runtime** (QDQ) against its own fp32: " + ", ".join(
                f"{pretty(n)} ({act_name(n)}) {v:.2f}x" for n, v in ort) + "."
            fb = [n for n in med if n in (h.get("ort_int8_fallback") or [])]
            if fb:
                line += (f" fnx's own ONNX int8 export failed for {', '.join(pretty(n) for n in fb)} in this run (see "
                         "`models`); the ORT int8 figures for them come from a QDQ model quantized directly with ONNX Runtime.")
            both = [v for v in sp.values() if v.get("LiteRT") and v.get("ORT")]
            if both and all(v["LiteRT"] >= v["ORT"] for v in both):
                line += " LiteRT's int8 gains more than ORT's for every model measured with both."
            out.append(line)
    if "pconv_forms" in by:
        h = by["pconv_forms"].headline
        parts = []
        for n, v in h["ratio"].items():
            parts.append(f"{pretty(n)}: slicing/split_cat {_x(v.get('ort'), 2)} in ORT, {_x(v.get('litert'), 2)} in LiteRT, "
                         f"{_x(v.get('eager'), 2)} in eager")
        vals = [v.get(k) for v in h["ratio"].values() for k in ("ort", "litert") if v.get(k)]
        lo, hi = (min(vals), max(vals)) if vals else (None, None)
        if lo is None:
            verdict = "No deployment engine measured both forms"
        elif lo >= 1.0:
            verdict = (f"On the deployment engines slicing is nowhere faster and up to {100 * (hi - 1):.0f}% slower than "
                       "split_cat: fnx's choice of split_cat for both formats stands")
        elif lo >= 0.97:
            verdict = (f"On the deployment engines slicing is never more than {100 * (1 / lo - 1):.0f}% faster and up "
                       f"to {100 * (hi - 1):.0f}% slower than split_cat: fnx's choice of split_cat for both formats stands")
        else:
            verdict = (f"Slicing was {100 * (1 - lo):.0f}% faster somewhere: fnx's split_cat choice deserves a second look")
        ops = h.get("ops", {}).get("fasternet_t0/slicing") or {}
        graph = []
        if ops.get("onnx") and ops["onnx"].get("ScatterND"):
            graph.append(f"{ops['onnx']['ScatterND']} ScatterND ops in ONNX")
        if ops.get("tflite") and ops["tflite"].get("TRANSPOSE"):
            graph.append(f"{ops['tflite']['TRANSPOSE']} TRANSPOSE ops in TFLite")
        how = f" (in FasterNet-T0, slicing costs {' and '.join(graph)})" if graph else ""
        out.append(f"- **PConv form.** {'; '.join(parts)}. {verdict}{how}.")
    if "session_overhead" in by:
        o = by["session_overhead"].headline["overhead"]
        if o:
            worst = max(o.items(), key=lambda kv: kv[1])
            ok = "within" if worst[1] <= 5 else "above"
            out.append(f"- **Runtime overhead.** fnx's Session.run costs {min(o.values()):+.2f}% to {worst[1]:+.2f}% over "
                       f"the bare engine call (worst: {pretty(worst[0][0])} {worst[0][1]}), {ok} the 5% goal.")
    if "mobilevit" in by:
        h = by["mobilevit"].headline
        r = h["ratio"]
        dep = h.get("deploy", {})
        eager_key = "eager, BN folded" if r.get("eager, BN folded") else "eager, unfolded"
        out.append(f"- **MobileViT-XXS / FasterNet-T0** in the same engine: {_x(r.get(eager_key), 2)} in eager "
                   f"({'both BN folded' if eager_key == 'eager, BN folded' else 'both unfolded'}), "
                   f"{_x(r.get('ORT fp32'), 2)} in ONNX Runtime, against the paper's {h['paper']:.2f}x."
                   + _mvit_verdict(r, h["paper"])
                   + (f" Deployed with fnx (LiteRT int8), T0 runs {dep['LiteRT int8']:.1f}x faster than MobileViT-XXS's best "
                      "measured engine — a deployment gain, not an architecture ratio." if dep.get("LiteRT int8") else ""))
    elif any(s.name == "mobilevit" for s in sections):
        s = next(s for s in sections if s.name == "mobilevit")
        out.append(f"- **MobileViT-XXS** was not measured: {s.skipped}.")
    if "peers" in by:
        ms = by["peers"].headline["ms"]
        parts = []
        for key, v in ms.items():
            n, prec, who = key.split("/")
            if who == "ratio":
                parts.append(f"{pretty(n)} {prec} {v:.2f}x")
        if parts:
            out.append("- **Against a peer converter** (ONNX -> onnx2tf, what Ultralytics uses; same LiteRT engine, same "
                       "weights and calibration images), onnx2tf's TFLite takes " + ", ".join(parts) + " fnx's latency: "
                       + _peer_verdict([v for k, v in ms.items() if k.endswith("/ratio")])
                       + " fnx's litert-torch graphs carry no TRANSPOSE ops and need no TensorFlow; onnx2tf needs "
                         "TensorFlow 2.19 with numpy < 2 and fetches a sample file from GitHub at conversion time "
                         "(see `peers` for op counts, fidelity and conversion times).")
    elif any(s.name == "peers" for s in sections):
        s = next(s for s in sections if s.name == "peers")
        out.append(f"- **Peer converter (onnx2tf)** was not measured: {s.skipped}.")
    return out or ["(no benchmark produced numbers in this run)"]


def _best_pct(h: dict) -> str:
    best = []
    for n, d in h["median"].items():
        g = [h["flops"][n] / (d[e] / 1e3) / 1e9 for e in ("eager, BN folded", "ORT fp32", "LiteRT fp32") if e in d]
        if g:
            best.append(max(g))
    if not best:
        return ""
    lo, hi = min(best), max(best)
    text = (f"The best fp32 engine achieves {lo:.0f}–{hi:.0f} GMAC/s across the models: "
            f"{100 * lo / h['mm_peak']:.0f}–{100 * hi / h['mm_peak']:.0f}% of the torch.mm 2048² rate")
    if h.get("conv_peak"):
        text += (f" and {100 * lo / h['conv_peak']:.0f}–{100 * hi / h['conv_peak']:.0f}% of a dense 3x3 conv in "
                 "XNNPACK (MKL's SGEMM is not this CPU's ceiling; the smaller models are further from it)")
    return text + "."


def _why_ops(r: dict, avg: dict) -> str:
    eager, ort, lite, q = (r.get(k) for k in ("PyTorch eager", "ONNX Runtime", "LiteRT fp32", "LiteRT int8"))
    bits = []
    if eager and ort and lite and max(ort, lite) < eager:
        bits.append(" The deployment runtimes run DWConv much closer to its memory bound than eager PyTorch does, "
                    "which narrows the gap in float.")
    if q and lite and q > lite:
        a, b = avg.get("LiteRT int8", {}), avg.get("LiteRT fp32", {})
        try:
            gain = f" {a['PConv'] / b['PConv']:.1f}x" + f" against {a['DWConv'] / b['DWConv']:.1f}x for DWConv"
        except (KeyError, TypeError, ZeroDivisionError):
            gain = ""
        bits.append(f" In LiteRT, int8 speeds up PConv's dense conv{gain}, which widens the gap again.")
    return "".join(bits)


def _mvit_verdict(r: dict, paper: float) -> str:
    vals = [v for v in r.values() if v]
    if not vals:
        return ""
    if min(vals) > 1:
        return (" FasterNet-T0 is the faster of the two on every engine measured"
                + (", by less than the paper reports." if max(vals) < paper else "."))
    return " FasterNet-T0 is not faster on every engine measured here."


def _peer_verdict(ratios: list[float]) -> str:
    if not ratios:
        return ""
    lo, hi = min(ratios), max(ratios)
    if lo >= 0.97 and hi <= 1.03:
        return "the two converters' graphs run at the same speed (within 3%)."
    if lo >= 1.0:
        return f"fnx's graphs are as fast or faster (onnx2tf's take up to {100 * (hi - 1):.0f}% longer)."
    if lo >= 0.97:
        return (f"fnx's graphs are never more than {max(0.0, 100 * (1 / lo - 1)):.0f}% slower, and onnx2tf's take up "
                f"to {100 * (hi - 1):.0f}% longer.")
    return f"mixed: onnx2tf's graph is up to {100 * (1 / lo - 1):.0f}% faster somewhere."
