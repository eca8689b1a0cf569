"""--format imx500 on a model that passes fnx's own weights check but not the converter's memory report: the real
converter's refusal, with its figures. A file of its own so that `make test-targets`' two workers (--dist loadfile)
run it beside tests/test_imx500.py's T0 export instead of after it (each takes 1.5-2 minutes)."""

from __future__ import annotations

import pytest


@pytest.mark.toolchain
def test_t1_at_224_with_imagenet_classes_does_not_fit_and_is_refused_with_the_converters_figures(tmp_path, cli):
    """The real converter on FasterNet-T1 at 224 px with 1000 classes: its conv weights pass fnx's own check (5.38 MiB),
    but weights and runtime memory take 104% of the sensor's 8 MiB by the converter's memory report, so the export is
    refused with its figures, and nothing is written."""
    r = cli("export", "t1", "--weights", "random", "--format", "imx500", "--precision", "int8", "--calib-data",
            "synthetic", "--calib-size", "8", "--out", tmp_path / "out", env={"COLUMNS": "400"})
    (said,) = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert r.exit_code == 1, r.output
    assert ("the model does not fit the IMX500: it takes 8.28 MiB of the sensor's 8.00 MiB (104%): weights 7.37 MiB, "
            "runtime 0.91 MiB, by imx500-converter's memory report") in said
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
