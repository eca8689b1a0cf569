"""`--int8-form` (issue #38): the choice among a target's int8 forms as a pure function of the candidates' figures
(fastest within the bound, ties, none within the bound, a forced form), on both x86 kinds through the machine switch,
and the measuring flow with a stand-in quantizer (the winner is quantized once, the candidates' files are removed,
none within the bound ends in the guard's usual failure). Nothing here times anything: latencies are given."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fnx.calibration.data import CalibrationSet
from fnx.calibration.form_search import Candidate, FormPlan, guarded_forms
from fnx.calibration.forms import choose_form
from fnx.errors import FnxError
from fnx.manifest import GuardBounds, LayerError
from fnx.manifest_forms import Int8FormTrial
from fnx.progress import Steps


def trial(form, ms, cosine, passed=True, rounds=None, why=None) -> Int8FormTrial:
    return Int8FormTrial(form, f"{form}'s graph", ms, rounds or [ms] * 10, cosine, None, None, passed,
                         why if why or passed else "cosine below the bound")


def test_the_fastest_within_the_bound_wins_and_the_reason_names_every_other():
    trials = [trial("mixed", 3.35, 0.9985), trial("performance", 2.69, 0.9961), trial("slow", 5.0, 0.9990)]
    d = choose_form(trials)
    assert d.chosen == "performance" and d.fallback is None
    assert "the fastest that held the bound (2.69 ms)" in d.reason and "mixed 3.35 ms (1.25x)" in d.reason
    assert "slow 5.00 ms (1.86x)" in d.reason


def test_a_faster_form_that_breaks_the_bound_loses_and_is_said():
    d = choose_form([trial("mixed", 3.35, 0.9985), trial("performance", 2.69, 0.98798, passed=False)])
    assert d.chosen == "mixed" and "performance 2.69 ms (0.80x), broke the bound: cosine below the bound" in d.reason


def test_none_within_the_bound_chooses_nothing_and_names_the_most_accurate_for_the_guard():
    d = choose_form([trial("a", 1.0, 0.97, passed=False), trial("b", 1.2, 0.98, passed=False),
                     Int8FormTrial("c", "c's graph", why_not="RuntimeError: no kernel")])
    assert d.chosen is None and d.fallback == "b"
    assert d.reason.startswith("no form held the bound all-int8") and "c: RuntimeError: no kernel" in d.reason
    assert choose_form([Int8FormTrial("c", "c's graph", why_not="failed")]).fallback is None


def test_ties_go_to_the_more_accurate_then_to_the_declared_order():
    d = choose_form([trial("u8s8r", 1.00, 0.9978), trial("u8s8", 1.02, 0.9987)])  # within 3%
    assert d.chosen == "u8s8" and "within the timing noise" in d.reason and "more accurate" in d.reason
    assert choose_form([trial("first", 1.00, 0.999), trial("second", 1.00, 0.999)]).chosen == "first"


def test_paired_rounds_tell_noise_from_a_real_difference():
    """10% apart in the medians: a tie when the rounds disagree (load moved between them), a difference when the
    slower was slower in (nearly) every round."""
    fast = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    noisy = [1.3, 0.9, 1.3, 0.95, 1.25, 0.9, 1.2, 0.95, 1.3, 1.1]
    sure = [1.1] * 9 + [0.95]
    assert choose_form([trial("fast", 1.0, 0.990, rounds=fast), trial("other", 1.1, 0.995, rounds=noisy)]).chosen == "other"
    assert choose_form([trial("fast", 1.0, 0.990, rounds=fast), trial("other", 1.1, 0.995, rounds=sure)]).chosen == "fast"


@pytest.mark.parametrize("switch", ["+vnni", "-vnni"])
def test_on_both_x86_kinds_the_measured_choice_agrees_with_the_kinds_rule(monkeypatch, switch):
    """Figures of each kind (docs/BENCHMARKS.md, shared FINDINGS): with VNNI, 8-bit weights run as fast as 7-bit and
    are more accurate; without, u8 x s8 pairs saturate in 16 bits and 8-bit weights lose accuracy. The measured choice
    lands where ONNX's rule for that kind (the machine switch) does; qdq-s8s8 is slower on both."""
    from fnx.targets.onnx.int8_form import choose_onnx_int8_form

    monkeypatch.setenv("FNX_CPU_FEATURES", switch)
    u8s8_cosine = 0.99873 if switch == "+vnni" else 0.99610
    trials = [trial("qdq-u8s8r", 7.00, 0.99779), trial("qdq-u8s8", 7.05, u8s8_cosine), trial("qdq-s8s8", 12.2, 0.99877)]
    assert choose_form(trials).chosen == choose_onnx_int8_form().form == ("qdq-u8s8" if switch == "+vnni" else "qdq-u8s8r")


class StandIn:
    """A quantizer whose forms differ in accuracy (the files' contents say which form wrote them)."""

    scheme, io, notes = "minmax", "float", []

    def __init__(self):
        self.form, self.calls = "a", []

    @property
    def description(self):
        return f"{self.form}'s graph"

    def quantize(self, out: Path, keep_float: list[str]) -> None:
        self.calls.append((self.form, tuple(keep_float)))
        out.write_text(f"{self.form} {len(keep_float)}")

    def layer_errors(self, out, probe):
        return [LayerError(f"layer{i}", 0.1 / (i + 1), 20.0) for i in range(12)]

    def float_ops(self, out):
        return {}


NOISE = {"a": 0.02, "b": 0.6, "c": 0.5}  # output noise per form: b and c break a 0.99 bound, a holds it


def _flow(tmp_path, monkeypatch, noise, times, min_cosine=0.99):
    from fnx.calibration import form_search, guard
    from fnx.manifest import FallbackCost

    rng = np.random.default_rng(0)
    monkeypatch.setattr(guard, "_speed_cost", lambda all_int8, final: FallbackCost(1.0, 1.1, 1.1))  # no engine here
    refs = [rng.standard_normal((8, 10)).astype(np.float32)]

    def outputs_of(path: Path):
        form, kept = path.read_text().split()
        return [refs[0] + noise[form] / (1 + int(kept)) * rng.standard_normal(refs[0].shape).astype(np.float32)]

    monkeypatch.setattr(form_search, "time_artifacts", lambda files, feed: {n: (times[n], [times[n]] * 10) for n in files})
    data = CalibrationSet(np.zeros((4, 8, 8, 3), np.float32), np.zeros((8, 8, 8, 3), np.float32), [None] * 8, "test", 12)
    q = StandIn()
    plan = FormPlan([Candidate(f, f"{f}'s graph", q, f) for f in times], "auto", "measured")
    art = tmp_path / "model.onnx"
    rec = guarded_forms(plan, art, outputs_of, np.zeros((1, 3, 8, 8)), refs, data, GuardBounds(min_cosine), Steps(quiet=True),
                        "test", ["logits"])
    return rec, q, art


def test_the_flow_keeps_the_winners_file_and_records_every_candidate(tmp_path, monkeypatch):
    rec, q, art = _flow(tmp_path, monkeypatch, NOISE, {"a": 3.0, "b": 1.0, "c": 2.0})
    assert rec.forms.chosen == "a" and rec.forms.how == "measured" and rec.scheme == "a's graph"
    assert [t.form for t in rec.forms.candidates] == ["a", "b", "c"] and [t.passed for t in rec.forms.candidates] == [
        True, False, False]
    assert q.calls == [("a", ()), ("b", ()), ("c", ())]  # the winner's measured file is the guard's first attempt
    assert art.read_text() == "a 0" and sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_none_within_the_bound_goes_through_the_guards_fallback_on_the_most_accurate(tmp_path, monkeypatch):
    rec, q, _ = _flow(tmp_path, monkeypatch, {"b": 0.6, "c": 0.15}, {"b": 1.0, "c": 2.0}, min_cosine=0.995)
    assert rec.forms.chosen == "c" and rec.forms.how == "fallback" and rec.kept_float  # layers back to float
    assert q.calls[2:] and all(form == "c" and kept for form, kept in q.calls[2:])


def test_none_within_the_bound_ends_in_the_guards_usual_failure(tmp_path, monkeypatch):
    with pytest.raises(FnxError, match="int8 accuracy guard failed after 12 layers were returned to float"):
        _flow(tmp_path, monkeypatch, {"b": 5.0, "c": 5.0}, {"b": 1.0, "c": 2.0})
    assert not [p for p in tmp_path.iterdir() if ".form" in p.name]  # no candidate's file is left behind


def _onnx():
    from fnx.exporter.formats import get_format

    return get_format("onnx"), get_format("tflite"), get_format("openvino")


def test_a_forced_form_is_kept_and_one_no_format_has_is_refused():
    from fnx.calibration.options import Int8Options
    from fnx.exporter.int8_forms import check_form_options, pick_forms
    from fnx.exporter.options import ExportOptions

    onnx, tflite, openvino = _onnx()
    pick = pick_forms(onnx, Int8Options("synthetic", form="qdq-s8s8"))
    assert [o.name for o in pick.options] == ["qdq-s8s8"] and pick.how == "asked"
    other = pick_forms(tflite, Int8Options("synthetic", form="qdq-s8s8"), ("exact", "sigmoid"))
    assert other.how == "measured" and other.asked == "auto"  # not a TFLite form: TFLite measures its own
    sig = pick_forms(openvino, Int8Options("synthetic", form="performance+sigmoid-gelu"), ("exact", "sigmoid"))
    assert [(o.name, o.gelu) for o in sig.options] == [("performance+sigmoid-gelu", "sigmoid")]
    with pytest.raises(FnxError, match="this model has no GELU"):
        pick_forms(openvino, Int8Options("synthetic", form="performance+sigmoid-gelu"))
    opts = ExportOptions(formats=("onnx", "tflite"), precision="int8", int8=Int8Options("synthetic", form="mixed"))
    with pytest.raises(FnxError, match="no format of this export has the int8 form 'mixed'.*onnx: qdq-u8s8r"):
        check_form_options(opts, [onnx, tflite], int8=True)
    with pytest.raises(FnxError, match="this export makes no int8 artifact"):
        check_form_options(opts, [onnx, tflite], int8=False)


def test_default_takes_each_targets_first_form_unmeasured_even_for_a_gelu_model_or_a_target():
    from fnx.calibration.options import DEFAULT_FORM, Int8Options
    from fnx.exporter.formats import FORMATS
    from fnx.exporter.int8_forms import check_form_options, pick_forms
    from fnx.exporter.options import ExportOptions

    makers = [f for f in FORMATS.values() if f.int8_quantizer is not None]
    assert len(makers) >= 3
    for fmt in makers:
        for gelus in (("exact",), ("exact", "sigmoid")):
            for target in (None, "rpi5"):
                pick = pick_forms(fmt, Int8Options("synthetic", form=DEFAULT_FORM, target=target), gelus)
                assert [(o.form.name, o.gelu) for o in pick.options] == [(fmt.int8_forms[0].name, "exact")], fmt.name
                assert (pick.how, pick.asked, pick.left_out) == ("default", DEFAULT_FORM, [])
                assert "not measured" in pick.reason and fmt.name in pick.reason
    opts = ExportOptions(formats=tuple(f.name for f in makers), precision="int8",
                         int8=Int8Options("synthetic", form=DEFAULT_FORM))
    check_form_options(opts, makers, int8=True)  # every format has a default: nothing to refuse
    with pytest.raises(FnxError, match="this export makes no int8 artifact"):
        check_form_options(opts, makers, int8=False)


def test_auto_measures_the_sigmoid_gelu_forms_where_the_target_says_and_leaves_out_what_it_marks(monkeypatch):
    from fnx.calibration.options import Int8Options
    from fnx.exporter.int8_forms import pick_forms

    onnx, tflite, _ = _onnx()
    pick = pick_forms(tflite, Int8Options("synthetic"), ("exact", "sigmoid"))
    assert [o.name for o in pick.options] == ["per-channel", "per-channel+sigmoid-gelu"] and pick.how == "measured"
    assert [t.form for t in pick.left_out] == ["per-tensor", "per-tensor+sigmoid-gelu"]
    assert all("not measured by auto" in t.why_not for t in pick.left_out)
    assert pick_forms(tflite, Int8Options("synthetic")).how == "only"  # T2: no GELU, per-tensor left out
    monkeypatch.setenv("FNX_CPU_FEATURES", "+vnni")  # the build machine can check 8-bit weights (test_onnx_form)
    rule = pick_forms(onnx, Int8Options("synthetic", target="rpi5"))
    assert rule.how == "rule" and [o.name for o in rule.options] == ["qdq-u8s8"] and "--target rpi5" in rule.reason
