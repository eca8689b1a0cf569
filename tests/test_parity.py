"""fnx.parity: the one table of bounds, and the checks that apply them."""

from __future__ import annotations

import numpy as np
import pytest

from fnx.parity import BOUNDS, CROSS_ARCH_BOUNDS, bounds_for, check, cross_arch_failures


def test_min_cosine_overrides_only_the_int8_bound():
    assert bounds_for("int8", 0.95) == {"min_cosine": 0.95}
    assert bounds_for("int8") == BOUNDS["int8"]
    assert bounds_for("fp32", 0.5) == BOUNDS["fp32"]  # a user's int8 bound never loosens fp32


def test_check_reports_each_broken_bound():
    ref = np.random.default_rng(0).standard_normal((8, 10))
    assert check([ref], [ref.copy()], "fp32").passed
    rep = check([ref], [ref + 0.5], "fp32", ["logits"])
    assert not rep.passed and any("max abs diff" in f for f in rep.failures)
    assert check([ref], [-ref], "int8").failures[0].startswith("output_0: cosine")


@pytest.mark.parametrize("precision, got, ok", [
    ("fp32", lambda r: r * (1 + 1e-7), True),
    ("fp32", lambda r: r + 1e-3, False),
    ("int8", lambda r: r + 0.02 * np.random.default_rng(1).standard_normal(r.shape), True),  # rounding noise
    ("int8", lambda r: r * 1.5, False),  # a wrong output scale: cosine 1.0, but far off
    ("int8", lambda r: r[:, ::-1], False),  # a wrong layout
])
def test_cross_arch_bounds(precision, got, ok):
    ref = np.random.default_rng(0).standard_normal((4, 1000))
    failures, figures = cross_arch_failures(ref, got(ref), precision)
    assert (not failures) is ok, (failures, figures)


def test_cross_arch_int8_bound_is_the_int8_cosine_as_a_distance():
    # two equally long vectors at cosine c are sqrt(2 (1 - c)) apart (relative): the int8 bound is BOUNDS' cosine
    assert CROSS_ARCH_BOUNDS["int8"]["rel_l2"] == pytest.approx(np.sqrt(2 * (1 - BOUNDS["int8"]["min_cosine"])))
    assert cross_arch_failures(np.ones((1, 3)), np.ones((1, 4)), "int8")[0][0].startswith("shape")
