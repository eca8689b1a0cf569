"""The guard with a quantizer that brings its own accuracy lever (fnx.calibration.quantizer.RestoringQuantizer):
restore() is called once in place of the layer loop, fnx's held-out report judges what it wrote, and a lever that
falls short is refused in one line that names it. A stand-in quantizer whose outputs are the references plus noise;
the real lever (NNCF's accuracy control) is tests/test_openvino.py's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fnx.calibration.data import CalibrationSet
from fnx.calibration.guard import GUARD_MAX_STEPS, GUARD_STEP, GuardFailed, run_guarded
from fnx.manifest import GuardBounds, LayerError
from fnx.progress import Steps

RNG = np.random.default_rng(0)
REFS = [RNG.standard_normal((6, 10)).astype(np.float32)]
NOISE = RNG.standard_normal((6, 10)).astype(np.float32)


class StandInRestorer:
    """Writes "all-int8" (noise 0.3: cosine ~0.95 to REFS) or, restored, noise `restored_noise`."""

    restorer = "stand-in accuracy control"
    scheme, description, io, form = "minmax", "stand-in int8", "float", "default"

    def __init__(self, restored_noise: float):
        self.restored_noise, self.calls, self.notes = restored_noise, [], []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def quantize(self, out: Path, keep_float: list[str]) -> None:
        self.calls.append(("quantize", list(keep_float)))
        out.write_text("0.3")

    def restore(self, out: Path, probe_nhwc, refs, min_cosine: float, max_steps: int) -> list[str]:
        assert out.read_text() == "0.3"  # it starts from the all-int8 file the guard judged
        self.calls.append(("restore", len(probe_nhwc), min_cosine, max_steps))
        out.write_text(str(self.restored_noise))
        return ["stages.0.blocks.0 (add)", "head"]

    def layer_errors(self, out: Path, probe_nhwc) -> list[LayerError]:
        return [LayerError("head", 0.3, 10.0)]

    def float_ops(self, out: Path) -> dict[str, int]:
        return {}


def guard(quantizer: StandInRestorer, artifact: Path, min_cosine: float = 0.99):
    data = CalibrationSet(np.zeros((4, 8, 8, 3), np.float32), np.zeros((6, 8, 8, 3), np.float32), [None] * 6,
                          "stand-in", 10)
    outputs = lambda: [REFS[0] + float(artifact.read_text()) * NOISE]  # noqa: E731
    return run_guarded(quantizer, artifact, outputs, REFS, data, GuardBounds(min_cosine), Steps(quiet=True), "stand-in")


def test_a_restoring_quantizer_is_called_once_instead_of_the_layer_loop(tmp_path, monkeypatch):
    import fnx.calibration.guard as guard_module
    from fnx.manifest import FallbackCost

    timed = []  # the latency cost compares the all-int8 file (kept aside before restore) with the restored one
    monkeypatch.setattr(guard_module, "_speed_cost", lambda a, b: timed.append((a.read_text(), b.read_text()))
                        or FallbackCost(1.0, 1.1, 1.1))
    q = StandInRestorer(restored_noise=0.01)
    report, keep, ranking = guard(q, tmp_path / "m.bin")
    assert timed == [("0.3", "0.01")] and report.float_fallback_cost.slowdown == 1.1
    assert q.calls == [("quantize", []), ("restore", 6, 0.99, GUARD_STEP * GUARD_MAX_STEPS)]
    assert report.passed and report.cosine_min > 0.99 and report.guard_steps == 1
    assert keep == ["stages.0.blocks.0 (add)", "head"] and [r.layer for r in ranking] == ["head"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin"]  # the all-int8 copy (for the speed cost) is gone


def test_a_restoring_quantizer_that_falls_short_is_refused_in_one_line_naming_it(tmp_path):
    q = StandInRestorer(restored_noise=0.2)
    with pytest.raises(GuardFailed, match=r"after stand-in accuracy control returned 2 ops to float: logits: cosine "
                                          r"0\.9\d+ is below 0\.99") as e:
        guard(q, tmp_path / "m.bin")
    assert [c[0] for c in q.calls] == ["quantize", "restore"] and e.value.failures
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin"]


def test_an_all_int8_file_within_the_bound_never_calls_the_lever(tmp_path):
    q = StandInRestorer(restored_noise=0.0)
    report, keep, _ = guard(q, tmp_path / "m.bin", min_cosine=0.5)
    assert q.calls == [("quantize", [])] and report.passed and report.guard_steps == 0 and keep == []
