"""The torch-free runtime: Session vs raw engines, int8 I/O, CLI commands, bad inputs."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from fnx.calibration.synthetic import synthetic_images
from fnx.errors import FnxError
from fnx.runtime import load


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("imgs")
    paths = []
    for i, im in enumerate(synthetic_images(3, size=90, seed=7)):
        p = d / f"img{i}.{['png', 'jpg', 'bmp'][i]}"
        Image.fromarray(im).save(p)
        paths.append(p)
    return paths


def test_session_equals_raw_engine(t0_exports):
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    x = np.random.default_rng(1).standard_normal((1, 64, 64, 3)).astype(np.float32)
    it = Interpreter(model_path=str(t0_exports["tflite"].artifact))
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    raw = it.get_tensor(it.get_output_details()[0]["index"])
    assert np.array_equal(load(t0_exports["tflite"].artifact).run(x)[0], raw)
    xc = x.transpose(0, 3, 1, 2).copy()
    raw = ort.InferenceSession(str(t0_exports["onnx"].artifact)).run(None, {"input": xc})[0]
    assert np.array_equal(load(t0_exports["onnx"].artifact, device="cpu").run(xc)[0], raw)


def test_batch_larger_than_model_batch(t0_exports):
    s = load(t0_exports["tflite"].artifact)
    x = np.random.default_rng(2).standard_normal((3, 64, 64, 3)).astype(np.float32)
    batched = s.run(x)[0]
    assert batched.shape == (3, 10)
    assert np.array_equal(batched[1], s.run(x[1:2])[0][0])


def test_int8_io_quantized_inside(t0_tflite_int8):
    from ai_edge_litert.interpreter import Interpreter

    res = t0_tflite_int8
    x = np.random.default_rng(3).standard_normal((1, 64, 64, 3)).astype(np.float32)
    it = Interpreter(model_path=str(res.artifact))
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    (si, zi), (so, zo) = i["quantization"], o["quantization"]
    it.set_tensor(i["index"], np.clip(np.round(x / si) + zi, -128, 127).astype(np.int8))
    it.invoke()
    expected = (it.get_tensor(o["index"]).astype(np.float32) - zo) * so
    assert np.array_equal(load(res.artifact).run(x)[0], expected)


def test_runtime_is_torch_free(t0_exports):
    code = (
        "import sys, numpy as np; import fnx.runtime as r; import fnx.devices;"
        f"s = r.load({str(t0_exports['tflite'].artifact)!r}); s.run(np.zeros((1,64,64,3), np.float32));"
        f"o = r.load({str(t0_exports['onnx'].artifact)!r}); o.run(np.zeros((1,3,64,64), np.float32));"
        "bad = [m for m in ('torch', 'tensorflow', 'litert_torch') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_predict_uses_manifest_preprocessing_and_labels(t0_exports, image_files):
    s = load(t0_exports["onnx"].artifact)
    preds = s.predict(image_files, topk=3)
    assert len(preds) == 3 and all(len(p.labels) == 3 for p in preds)
    assert abs(sum(load(t0_exports["tflite"].artifact).predict(image_files[0], topk=10)[0].scores) - 1) < 1e-4
    # the same image through both formats gives the same ranking
    assert preds[0].indices == load(t0_exports["tflite"].artifact).predict(image_files[0], topk=3)[0].indices


def test_cli_run_bench_verify_devices(cli, t0_exports, t0_ckpt, image_files):
    art = t0_exports["tflite"].artifact
    r = cli("run", art, *image_files, "--json", "--topk", "2")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert len(out["predictions"]) == 3 and len(out["predictions"][0]["top"]) == 2
    assert cli("run", art, image_files[0]).exit_code == 0
    r = cli("bench", art, t0_exports["onnx"].artifact, "--threads", "1,2", "--runs", "5", "--warmup", "1", "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert len(rows) == 4 and all(row["p50_ms"] > 0 and row["gflops"] > 0 for row in rows)
    assert {row["threads"] for row in rows} == {1, 2}
    r = cli("verify", art, "--weights", t0_ckpt, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["passed"]
    r = cli("devices", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["detected"]["profile"] in ("x86", "cuda", "aarch64", "rpi4", "rpi5")


def test_cli_labels_file(cli, t0_exports, image_files, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"class-{i}" for i in range(10)))
    r = cli("run", t0_exports["onnx"].artifact, image_files[0], "--labels", labels, "--json")
    assert json.loads(r.stdout)["predictions"][0]["top"][0]["label"].startswith("class-")


def test_bad_model_files(tmp_path, t0_exports):
    data = t0_exports["tflite"].artifact.read_bytes()
    trunc = tmp_path / "trunc.tflite"
    trunc.write_bytes(data[: len(data) // 3])
    with pytest.raises(FnxError, match="corrupt|truncated"):
        load(trunc)
    junk = tmp_path / "junk.tflite"
    junk.write_text("hello")
    with pytest.raises(FnxError, match="not a TFLite model"):
        load(junk)
    bad_onnx = tmp_path / "bad.onnx"
    bad_onnx.write_bytes(t0_exports["onnx"].artifact.read_bytes()[:5000])
    with pytest.raises(FnxError, match="onnxruntime cannot load"):
        load(bad_onnx)
    txt = tmp_path / "model.txt"
    txt.write_text("x")
    with pytest.raises(FnxError, match="not a model fnx can run: expected a ") as e:
        load(txt)
    assert all(s in str(e.value) for s in (".tflite", ".onnx", ".xml")), e.value  # every runnable suffix named
    with pytest.raises(FnxError, match="does not exist"):
        load(tmp_path / "none.tflite")


def test_bad_images_and_shapes(t0_exports, tmp_path, cli):
    s = load(t0_exports["tflite"].artifact)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(FnxError, match="cannot decode image"):
        s.predict([bad])
    with pytest.raises(FnxError, match=r"does not fit this model: it takes \(N, 64, 64, 3\)"):
        s.run(np.zeros((1, 3, 64, 64), np.float32))
    r = cli("run", t0_exports["tflite"].artifact, bad)
    assert r.exit_code == 1 and "cannot decode image" in r.output and "Traceback" not in r.output


def test_missing_engine_is_a_clear_error(monkeypatch, t0_exports):
    import sys

    for name in ("ai_edge_litert", "ai_edge_litert.interpreter", "tflite_runtime", "tflite_runtime.interpreter",
                 "tensorflow"):
        monkeypatch.setitem(sys.modules, name, None)  # import of it raises ImportError, as when not installed
    with pytest.raises(FnxError, match="pip install ai-edge-litert"):
        load(t0_exports["tflite"].artifact)


def test_cuda_without_gpu_runtime_says_what_to_install(t0_exports):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("a CUDA provider is present: tests/test_gpu.py runs it")
    with pytest.raises(FnxError, match="onnxruntime-gpu"):
        load(t0_exports["onnx"].artifact, device="cuda")


@pytest.mark.filterwarnings("ignore:Specified provider:UserWarning")
def test_cuda_fallback_is_an_error_not_a_silent_cpu_run(t0_exports, monkeypatch):
    """ONNX Runtime that lists CUDA but cannot start it runs on the CPU; an explicit --device cuda refuses that."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("a CUDA provider is present: tests/test_gpu.py runs it")
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    with pytest.raises(FnxError, match="could not start it here.*CUDA and cuDNN"):
        load(t0_exports["onnx"].artifact, device="cuda")
    from fnx.runtime import Placement
    from fnx.runtime.engines import open_engine

    auto = open_engine(t0_exports["onnx"].artifact, Placement("cuda", strict=False))  # --device auto: the CPU will do
    assert auto.providers == ["CPUExecutionProvider"]


def test_a_provider_that_fails_to_start(t0_exports, tmp_path, monkeypatch):
    """As on the H100 without TensorRT's libraries: creating the session on the accelerator raises. An explicit
    device says so; auto falls back to the next provider itself, keeping fnx's CUDA options (ONNX Runtime's own
    fall-back drops them); a bad file is still reported as a bad file."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("a CUDA provider is present: tests/test_gpu.py runs it")
    real, tried = ort.InferenceSession, []

    def fake(path, opts, providers, provider_options, **kwargs):
        tried.append((list(providers), provider_options, kwargs))
        if providers[0] != "CPUExecutionProvider":
            raise RuntimeError("Failed to load library libonnxruntime_providers_cuda.so")
        return real(path, opts, providers=providers, provider_options=provider_options, **kwargs)

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", fake)
    with pytest.raises(FnxError, match="could not start it here: install the CUDA and cuDNN"):
        load(t0_exports["onnx"].artifact, device="cuda")
    assert tried[0][1][0] == {"use_tf32": "0"}  # fnx's CUDA options on the try (fp32: no NHWC)
    assert all(kw == {"enable_fallback": 0} for _, _, kw in tried)  # ONNX Runtime's own fall-back is never used
    from fnx.runtime import Placement
    from fnx.runtime.engines import open_engine

    tried.clear()
    auto = open_engine(t0_exports["onnx"].artifact, Placement("cuda", strict=False))
    assert auto.providers == ["CPUExecutionProvider"] and [t[0][0] for t in tried] == ["CUDAExecutionProvider",
                                                                                      "CPUExecutionProvider"]
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(t0_exports["onnx"].artifact.read_bytes()[:4000])
    with pytest.raises(FnxError, match="cannot load"):
        load(bad, device="cuda", check_manifest=False)


def test_onnxruntime_banners_stay_off_stdout(t0_exports, monkeypatch, capsys):
    """ONNX Runtime prints its provider fall-back banner (seen on an H100 without TensorRT) with print(): fnx sends
    it to stderr, so `--json` output on stdout stays JSON."""
    import onnxruntime as ort

    real = ort.InferenceSession

    def chatty(*args, **kwargs):
        print("*************** EP Error ***************")
        return real(*args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", chatty)
    load(t0_exports["onnx"].artifact, device="cpu")
    out = capsys.readouterr()
    assert "EP Error" not in out.out and "EP Error" in out.err


def test_cuda_options_follow_the_artifact_precision(t0_exports, tmp_path):
    """TF32 off always; NHWC convolutions for fp16 artifacts only (faster for fp16, slower for fp32 on an H100)."""
    from fnx.targets.onnx.engine import _cuda_options, _precision

    assert _precision(t0_exports["onnx"].artifact) == "fp32"
    assert _cuda_options("1.31.1", nhwc=False) == {"use_tf32": "0"}
    assert _cuda_options("1.31.1", nhwc=True) == {"use_tf32": "0", "prefer_nhwc": "1"}
    assert _cuda_options("1.17.3", nhwc=True) == {}  # options this old ONNX Runtime does not know are not sent
    import onnx

    alone = tmp_path / "alone.onnx"  # no .json beside it: the copy embedded in the file says fp32
    alone.write_bytes(t0_exports["onnx"].artifact.read_bytes())
    assert _precision(alone) == "fp32"
    model = onnx.load(str(alone))
    del model.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(model, str(bare))
    assert _precision(bare) is None  # no manifest at all: fp32 defaults


def test_device_resolves_to_a_neutral_placement(t0_exports):
    from fnx.runtime import Placement, resolve_placement
    from fnx.targets.onnx.engine import PROVIDERS

    assert resolve_placement("rpi4", None) == Placement("cpu", 4, strict=True)
    assert resolve_placement("rpi4", 2).threads == 2
    assert resolve_placement("cpu", None) == Placement("cpu", None)
    assert resolve_placement("cuda", None) == Placement("cuda", None)
    assert PROVIDERS["cuda"][0] == "CUDAExecutionProvider"  # ONNX Runtime's own mapping of the kind
    auto = resolve_placement("auto", None)
    assert auto.strict is False and auto.kind in ("cpu", "cuda", "tensorrt")
    with pytest.raises(FnxError, match="unknown device 'tpu'"):
        resolve_placement("tpu", None)
    with pytest.raises(FnxError, match="at least 1"):
        resolve_placement("cpu", 0)
    with pytest.raises(FnxError, match="no engine runs tflite artifacts on cuda"):
        load(t0_exports["tflite"].artifact, device="cuda")
    s = load(t0_exports["tflite"].artifact, device="rpi5")
    assert s.threads == 4


def test_run_options_travel_as_one_record(t0_exports):
    """fnx's stages pass one RunOptions (device, threads, engine, inference precision) down to the Session."""
    from fnx.runtime import RunOptions

    art = t0_exports["onnx"].artifact
    s = load(art, run=RunOptions("cpu", threads=1, engine="onnxruntime"))
    assert (s.engine_name, s.threads, s.placement.kind) == ("onnxruntime", 1, "cpu")
    with pytest.raises(TypeError, match="not both"):
        load(art, threads=2, run=RunOptions("cpu"))


def test_bench_names_int8_throughput_gops_and_float_gflops(cli, t0_exports, t0_tflite_int8):
    """One word for one thing: int8 multiply-adds per second are GOPS, float ones GFLOPS (JSON key `gflops` kept)."""
    arts = [t0_exports["tflite"].artifact, t0_tflite_int8.artifact]
    r = cli("bench", *arts, "--runs", "2", "--warmup", "0", "--json")
    assert r.exit_code == 0, r.output
    assert [(row["ops_unit"], row["gflops"] > 0) for row in json.loads(r.stdout)] == [("GFLOPS", True), ("GOPS", True)]
    r = cli("bench", *arts, "--runs", "2", "--warmup", "0", env={"COLUMNS": "200"})
    lines = r.output.splitlines()
    assert any("_int8.tflite" in line and " GOPS " in line for line in lines), r.output
    assert any("_fp32.tflite" in line and " GFLOPS " in line for line in lines), r.output
