"""fnx benchmarks: `python -m benchmarks [--quick] [--only NAME,...] [--out docs/BENCHMARKS.md]`.

Each module measures one question side by side in one run (ratios, never pass/fail timings):

- operators         the paper's Table 1: Conv / GConv / DWConv / PConv FLOPS per engine
- models            the paper's Table 3 CPU column: FasterNet latency per engine and precision
- pconv_forms       split+concat vs slicing PConv deploy forms (fnx's export choice)
- session_overhead  fnx Session.run against the bare engine call
- mobilevit         FasterNet-T0 vs MobileViT-XXS (timm, in a separate venv)
- peers             ONNX -> onnx2tf TFLite against fnx's TFLite (separate venv, if it can be set up)
- e2e               JPEG file -> label: decode, preprocess, invoke, post-process; exact vs fast; pipelined
- engines           LiteRT, ONNX Runtime (int8 forms), OpenVINO (f32/bf16/NNCF int8), ncnn (fp32/fp16 weights) and
                    ExecuTorch (fp32, int8 forms) side by side, with fidelity: every row an fnx artifact on its engine
- scale             fnx eval on a local Ray cluster vs one process (2,000 images), and a full-sweep projection
- serve             fnx serve (HTTP, tritonclient) at concurrency 1/4/16, with and without batching, vs in process
- qat               int8 top-1 of PTQ against quantization-aware training (fnx train --qat), TFLite and ONNX
- gelu_forms        T0/T1 int8 TFLite: exact GELU against --gelu-form sigmoid (XNNPACK partitions, GOPS vs dense int8)
- int8_peers        fnx's int8 form chosen by measurement per target beside each peer's default recipe (ORT, NNCF,
                    litert-torch, AI Edge Quantizer, ExecuTorch), and what auto costs in export time
- stem_forms        the stem as conv or space-to-depth + 1x1, per CPU engine (fp32, int8) and in Vela's Ethos-U estimates

`--only NAME,... --update` re-measures those sections and replaces just them in the existing report.
"""

BENCHMARKS = ("operators", "models", "pconv_forms", "session_overhead", "mobilevit", "peers", "e2e", "engines", "scale",
              "serve", "qat", "gelu_forms", "int8_peers", "stem_forms")
