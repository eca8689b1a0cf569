"""ONNX's rule for its int8 form (issue #27), which `--target` uses where the form cannot be timed here (and the
quantizer starts from): on both x86 kinds through the machine switch (FNX_CPU_FEATURES=+vnni / -vnni), for a
--target profile, recorded in the manifest with why. `--int8-form auto` measures instead: tests/test_int8_forms.py."""

from __future__ import annotations

import platform

import pytest

from fnx.targets.onnx.int8_form import choose_onnx_int8_form
from fnx.errors import FnxError

x86_only = pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="an x86 machine's choice")


@x86_only
@pytest.mark.parametrize("switch, form", [("+vnni", "qdq-u8s8"), ("-vnni", "qdq-u8s8r")])
def test_auto_follows_vnni_on_this_machine(monkeypatch, switch, form):
    monkeypatch.setenv("FNX_CPU_FEATURES", switch)
    choice = choose_onnx_int8_form()
    assert choice.form == form and "for this machine" in choice.reason
    assert ("VNNI" in choice.reason) and ("saturate" in choice.reason) == (switch == "-vnni")


@pytest.mark.parametrize("target, form, why", [("rpi4", "qdq-u8s8", "ARM64"), ("rpi5", "qdq-u8s8", "ARM64"),
                                               ("aarch64", "qdq-u8s8", "ARM64"), ("x86", "qdq-u8s8r", "unknown")])
def test_auto_decides_for_the_target_not_the_build_machine(monkeypatch, target, form, why):
    monkeypatch.setenv("FNX_CPU_FEATURES", "+vnni")  # the build machine's VNNI must not leak into the target's form
    choice = choose_onnx_int8_form("auto", target)
    assert choice.form == form and why in choice.reason and f"--target {target}" in choice.reason


@x86_only
def test_an_arm_target_built_on_x86_without_vnni_keeps_weights_the_guard_can_check(monkeypatch):
    """The guard runs the int8 file on the build machine: 8-bit weights would saturate there and the guard would
    judge numbers the Pi never computes, so 7-bit weights, identical on both."""
    monkeypatch.setenv("FNX_CPU_FEATURES", "-vnni")
    choice = choose_onnx_int8_form("auto", "rpi5")
    assert choice.form == "qdq-u8s8r" and "could not check what ships" in choice.reason


def test_a_named_form_is_kept_and_bad_names_are_refused():
    from fnx.calibration.options import Int8Options

    assert choose_onnx_int8_form("qdq-s8s8", "rpi4").form == "qdq-s8s8"
    with pytest.raises(FnxError, match="unknown --target 'pi9': use a device profile"):
        Int8Options("synthetic", target="pi9")
    with pytest.raises(FnxError, match="use auto or one of"):
        choose_onnx_int8_form("qdq-u4")


def test_vnni_is_read_from_the_cpu_flags_and_the_switch_overrides_it(tmp_path, monkeypatch):
    from fnx.cpu_features import has_vnni

    monkeypatch.delenv("FNX_CPU_FEATURES", raising=False)
    vnni, plain = tmp_path / "vnni", tmp_path / "plain"
    vnni.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni amx_int8\n")
    plain.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 fma\n")
    assert has_vnni(str(vnni)) and not has_vnni(str(plain))
    monkeypatch.setenv("FNX_CPU_FEATURES", "-vnni")
    assert not has_vnni(str(vnni))
    monkeypatch.setenv("FNX_CPU_FEATURES", "+vnni")
    assert has_vnni(str(plain))


def test_the_switch_for_vnni_leaves_openvinos_precisions_alone(monkeypatch):
    from fnx.cpu_features import apply

    monkeypatch.setenv("FNX_CPU_FEATURES", "+vnni,+bf16")
    assert apply([], among=("bf16", "f16")) == ["bf16"]


def weight_range(path) -> tuple[int, int]:
    """The smallest and largest int8 weight of the QDQ graph's quantized initializers."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    q = [numpy_helper.to_array(t) for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    return min(int(a.min()) for a in q), max(int(a.max()) for a in q)


@pytest.fixture(scope="module")
def target_export(t0_ckpt, tmp_path_factory):
    """T0 64 px int8 ONNX for --target x86 (whether that CPU has VNNI is unknown here), from the lively checkpoint."""
    from fnx.exporter import ExportOptions, Int8Options, export_model

    (res,) = export_model("t0", ExportOptions(formats=("onnx",), precision="int8", weights=str(t0_ckpt), img_size=64,
                                              out_dir=tmp_path_factory.mktemp("target-x86"),
                                              int8=Int8Options("synthetic", 48, min_cosine=0.9, target="x86")))
    return res


def test_the_target_rule_writes_its_form_and_says_why(target_export):
    """No timing for another machine: the rule's form (7-bit weights, which cannot saturate on any x86), in the
    manifest's form record with the rule's reason."""
    cal = target_export.manifest.calibration
    assert cal.scheme.startswith("qdq-u8s8r:") and cal.forms.how == "rule" and cal.forms.chosen == "qdq-u8s8r"
    assert "--target x86" in cal.forms.reason and "unknown" in cal.forms.reason and not cal.forms.candidates
    low, high = weight_range(target_export.artifact)
    assert -64 <= low and high <= 64  # 7-bit weights (reduce_range, symmetric) stay in [-64, 64]
