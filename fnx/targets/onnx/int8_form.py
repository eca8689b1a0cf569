"""The ONNX int8 graph forms (ONNX Runtime's quantize_static), and the rule that picks one without measuring: for
`--target` (a device profile this machine cannot time), and as the quantizer's starting form. `--int8-form auto`
measures all three here instead (fnx.calibration.form_search).

ONNX Runtime's x86 int8 kernels multiply uint8 activations by int8 weights. Without VNNI they add pairs of products
in 16 bits (VPMADDUBSW), which saturates with full 8-bit weights; 7-bit weights (reduce_range, qdq-u8s8r) cannot.
With VNNI (AVX512_VNNI, AVX_VNNI, AMX-INT8) the products accumulate in 32 bits, so full 8-bit weights (qdq-u8s8)
keep more precision at the same speed: measured on the Intel Xeon kind, FasterNet-T2 cosine 0.99873 vs 0.99779
and T0 0.99657 vs 0.99514 at 18.8 vs 19.0 and 28.4 vs 28.9 ms (docs/BENCHMARKS.md, shared FINDINGS). ARM64's
kernels widen to 32 bits (SDOT/UDOT, or widening multiplies and pairwise adds into 32 bits), so they do not saturate
either: qdq-u8s8 there too, unless the export runs on an x86 without VNNI, whose guard could not check 8-bit weights
(it runs the file here): then qdq-u8s8r, which computes the same everywhere. qdq-s8s8 was never faster than qdq-u8s8r on x86 where measured (T2 1.3-1.7x slower, T0
from equal to 1.65x; ORT turns int8 activations back into uint8): never the automatic choice. Torch-free.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass

from fnx.calibration.forms import Int8Form
from fnx.calibration.options import AUTO_FORM
from fnx.errors import FnxError

# Activation x weight types; "r" = weights in 7 bits (reduce_range), which x86 CPUs without VNNI need for u8 x s8 not
# to saturate. All three share one calibration (ONNX Runtime's range cache): they differ in how ranges become types.
FORMS = (
    Int8Form("qdq-u8s8r", "QDQ; activations uint8 asymmetric; weights int8 per-channel symmetric in 7 bits (reduce_range)"),
    Int8Form("qdq-u8s8", "QDQ; activations uint8 asymmetric; weights int8 per-channel symmetric"),
    Int8Form("qdq-s8s8", "QDQ; activations int8 asymmetric; weights int8 per-channel symmetric"),
)
ONNX_INT8_FORMS = {f.name: f.description for f in FORMS}


@dataclass(frozen=True)
class FormChoice:
    """The form to write and why (recorded in the manifest's calibration notes)."""

    form: str
    reason: str

    @property
    def note(self) -> str:
        return f"ONNX int8 form {self.form}: {self.reason}"


def choose_onnx_int8_form(asked: str = AUTO_FORM, target: str | None = None) -> FormChoice:
    """Return the form for `asked` (a form name is kept as asked; "auto" decides for the target device profile, or
    for this machine when target is None)."""
    if asked != AUTO_FORM:
        if asked not in ONNX_INT8_FORMS:
            raise FnxError(f"unknown ONNX int8 form {asked!r}; use auto or one of {', '.join(ONNX_INT8_FORMS)}")
        return FormChoice(asked, "as asked (--int8-form)")
    if target is not None:
        from fnx.devices.profiles import get_profile

        profile = get_profile(target)
        where = f"for --target {profile.name} ({profile.description})"
        if profile.arch == "aarch64" and _this_arch() == "x86_64" and not _this_vnni():
            # the guard runs the int8 file here: 8-bit weights would saturate in this machine's kernels, so what it
            # measured would not be what the target computes
            return FormChoice("qdq-u8s8r", f"auto {where}: ARM64 takes 8-bit weights without saturating, but this "
                                           f"build machine (x86 without VNNI) saturates on them, so the accuracy guard "
                                           f"could not check what ships; 7-bit weights compute the same on both "
                                           f"(export on an ARM64 or VNNI machine for 8-bit weights)")
        return _for_arch(profile.arch, None, where)
    return _for_arch(_this_arch(), _this_vnni(), "for this machine")


def _this_arch() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


def _this_vnni() -> bool:
    from fnx.cpu_features import has_vnni

    return has_vnni()


def _for_arch(arch: str, vnni: bool | None, where: str) -> FormChoice:
    """vnni: whether the x86 CPU has it; None when it is another machine's and unknown."""
    if arch == "aarch64":
        return FormChoice("qdq-u8s8", f"auto {where}: ARM64 int8 kernels accumulate in 32 bits without saturating, "
                                      f"so full 8-bit weights")
    if arch != "x86_64":
        return FormChoice("qdq-u8s8r", f"auto {where}: no measured form for {arch} (ONNX Runtime publishes no wheel "
                                       f"for it); 7-bit weights, exact on any int8 kernel")
    if vnni:
        return FormChoice("qdq-u8s8", f"auto {where}: the CPU has VNNI (int8 dot products in 32 bits), so full 8-bit "
                                      f"weights: more accurate than 7-bit at the same speed")
    if vnni is None:
        return FormChoice("qdq-u8s8r", f"auto {where}: whether that x86 CPU has VNNI is unknown here; 7-bit weights "
                                       f"cannot saturate on any x86 (pass --int8-form qdq-u8s8 for a VNNI CPU)")
    return FormChoice("qdq-u8s8r", f"auto {where}: no VNNI on this x86 CPU, so u8 x s8 pairs would saturate in 16 "
                                   f"bits with 8-bit weights; 7-bit weights (reduce_range) cannot")
