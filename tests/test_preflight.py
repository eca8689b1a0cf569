"""Every command refuses a bad input before its expensive part (issue #28): the step that would build, export,
calibrate, train or time is replaced by a sentinel that fails the test if reached, and the one-line error must come
first. "No expensive step was started" is what is measured, not a time."""

from __future__ import annotations

import pytest

SENTINEL = "EXPENSIVE STEP STARTED"


def sentinel(*args, **kwargs):
    raise AssertionError(SENTINEL)


@pytest.fixture
def dirs(tmp_path):
    """A file standing where a folder is wanted, an empty folder, a flat image folder, a class folder set."""
    from PIL import Image

    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "empty").mkdir()
    (tmp_path / "flat").mkdir()
    for i in range(3):
        Image.new("RGB", (64, 64), (30 * i, 90, 160)).save(tmp_path / "flat" / f"{i}.png")
    for cls in ("bird", "cat"):
        (tmp_path / "classes" / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (64, 64), (30 * i, 60, 90)).save(tmp_path / "classes" / cls / f"{i}.png")
    return tmp_path


EXPORT = ("export", "t0", "--weights", "random", "--img-size", "64", "--format", "onnx")
INT8 = (*EXPORT, "--precision", "int8")
BENCH_ALL = ("bench", "all", "t0", "--weights", "random", "--img-size", "64", "--precisions", "fp32,int8")


@pytest.mark.parametrize("argv, patch, match", [
    ((*INT8, "--calib-data", "{d}/nowhere"), "fnx.exporter.pipeline.build", "does not exist"),
    ((*INT8, "--calib-data", "{d}/empty"), "fnx.exporter.pipeline.build", "holds no images"),
    ((*INT8, "--calib-data", "synthetic", "--max-top1-drop", "1"), "fnx.exporter.pipeline.build", "has no labels"),
    ((*INT8, "--calib-data", "{d}/flat", "--max-top1-drop", "1"), "fnx.exporter.pipeline.build", "no class subfolders"),
    ((*EXPORT, "--out", "{d}/afile/sub"), "fnx.exporter.pipeline.build", "is a file, not a directory"),
    ((*EXPORT, "--img-size", "65"), "fnx.exporter.pipeline.build", "not a multiple of 32"),
    (("export", "t0", "--weights", "random", "--format", "tflite", "--target", "rpi4"), "fnx.exporter.pipeline.build",
     "--target chooses an int8 form, and this export makes no int8 artifact"),
    ((*BENCH_ALL, "--calib-data", "{d}/nowhere"), "fnx.exporter.pipeline.build", "does not exist"),
    ((*BENCH_ALL, "--calib-data", "synthetic", "--out", "{d}/afile"), "fnx.exporter.pipeline.build", "is a file"),
    (("train", "t0", "--data", "{d}/classes", "--img-size", "64", "--out", "{d}/afile/x.pth"), "fnx.training.fit._train", "is a file, not a directory"),
    (("train", "t0", "--data", "{d}/classes", "--img-size", "64", "--out", "{d}/empty"), "fnx.training.fit._train", "is a directory"),
    (("quantize", "{onnx}", "--calib-data", "{d}/flat", "--max-top1-drop", "1"),
     "fnx.exporter.quantize.read_calibration", "no class subfolders"),
    (("quantize", "{onnx}", "--calib-data", "synthetic", "--out", "{d}/afile/x.onnx"),
     "fnx.exporter.quantize.read_calibration", "is a file, not a directory"),
    (("eval", "{onnx}", "{tflite}", "--data", "{d}/classes", "--engine", "onnxruntime"), "fnx.evaluation._predict_here",
     "runs onnx artifacts, not tflite"),
    (("bench", "{onnx}", "{d}/missing.onnx"), "fnx.runtime.bench.bench", "does not exist"),
    (("bench", "e2e", "{onnx}", "{tflite}", "{d}/flat", "--engine", "onnxruntime"), "fnx.runtime.e2e.e2e",
     "runs onnx artifacts, not tflite"),
    (("run", "{onnx}", "{d}/flat", "--jsonl", "--out", "{d}/afile/x.jsonl"), "fnx.runtime.load", "is a file"),
    (("verify", "{onnx}", "--weights", "{ckpt}", "--data", "{d}/empty"), "fnx.exporter.verify.create_model",
     "holds no images"),
])
def test_bad_input_is_refused_before_the_expensive_step(cli, dirs, t0_exports, t0_ckpt, monkeypatch, argv, patch, match):
    fill = {"d": dirs, "onnx": t0_exports["onnx"].artifact, "tflite": t0_exports["tflite"].artifact, "ckpt": t0_ckpt}
    monkeypatch.setattr(patch, sentinel)
    r = cli(*(a.format(**fill) for a in argv), env={"COLUMNS": "250"})
    assert SENTINEL not in repr(r.exception) and SENTINEL not in r.output, (argv, r.output)
    assert r.exit_code == 1 and match in r.output, (argv, r.output)
    assert "Traceback" not in r.output


def test_max_top1_drop_class_folders_are_matched_after_the_build_before_any_export(cli, dirs, monkeypatch):
    """Class folders of --max-top1-drop that are not the model's classes (the digits demo's): refused once the model
    is built, before the first artifact is exported."""
    from fnx.demo.train_demo import DEMO_CHECKPOINT

    monkeypatch.setattr("fnx.exporter.pipeline.export_artifact", sentinel)
    r = cli("export", "t0", "--weights", DEMO_CHECKPOINT, "--img-size", "64", "--format", "onnx", "--precision", "int8",
            "--calib-data", dirs / "classes", "--max-top1-drop", "1", "--out", dirs / "out", env={"COLUMNS": "250"})
    assert r.exit_code == 1 and "class folder 'bird' is not among the model's classes" in r.output, r.output
    assert SENTINEL not in r.output and not (dirs / "out").exists()


def test_calibration_labels_follow_the_models_classes_not_the_folder_order(dirs):
    """A folder set that is a subset of the model's classes, in another order, labels each image with the model's
    index of its class (was: the position among the sorted folder names)."""
    from fnx.calibration.data import load_calibration
    from fnx.manifest import Preprocessing

    data = load_calibration(dirs / "classes", Preprocessing.for_size(64), size=2, held_out=4,
                            labels=["dog", "cat", "horse", "bird"])
    assert sorted(set(data.held_out_labels)) == [1, 3]  # cat -> 1, bird -> 3 (folder order would say 1 and 0)
    unknown = load_calibration(dirs / "classes", Preprocessing.for_size(64), size=2, held_out=4, labels=["dog", "cat"])
    assert set(unknown.held_out_labels) == {None}  # not the model's classes: unlabelled, no top-1 claimed
