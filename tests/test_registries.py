"""Formats and engines are registries: a toy format and a toy engine plug in with a few lines, and Session,
`fnx bench`, `fnx run`, export and its parity check all run through them with no other file changed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fnx.exporter.formats import ArtifactFormat
from fnx.formats import FILE_FORMATS, FileFormat, register_file_format
from fnx.runtime.engines.base import Engine


class TorchScriptFormat(ArtifactFormat):
    """Toy format: the deploy-form model traced to TorchScript (a .pt zip)."""

    name, converters = "torchscript", ("torch",)
    file = FileFormat("torchscript", ".pt", "NCHW", "TorchScript module", sniff=lambda head: head[:2] == b"PK")

    def export_float(self, model, path, built, opts):
        import torch

        x = torch.zeros(opts.batch, built.model.in_chans, built.img_size, built.img_size)
        torch.jit.save(torch.jit.trace(model, x), str(path))


class TorchScriptEngine(Engine):
    """Toy engine: torch.jit.load on the CPU."""

    name, formats, devices, aliases, install = "torchscript", ("torchscript",), ("cpu",), (), "pip install torch"

    @classmethod
    def available(cls):
        return True

    @classmethod
    def version(cls):
        import torch

        return torch.__version__

    def __init__(self, path, placement):
        import torch

        from fnx.runtime import TensorInfo

        self.module = torch.jit.load(str(path))
        self.inputs = [TensorInfo("input", (1, 3, 64, 64), np.dtype(np.float32))]
        self.outputs = [TensorInfo("logits", (1, 10), np.dtype(np.float32))]

    def run(self, feeds):
        import torch

        with torch.no_grad():
            return [self.module(torch.from_numpy(feeds[0])).numpy()]

    def describe(self):
        return f"{self.name} {self.version()}"


@pytest.fixture
def toys():
    from fnx.exporter import FORMATS, register_format
    from fnx.runtime import ENGINES, register_engine

    register_file_format(TorchScriptFormat.file)
    register_format(TorchScriptFormat)
    register_engine(TorchScriptEngine)
    yield
    FORMATS.pop("torchscript"), ENGINES.pop("torchscript"), FILE_FORMATS.pop("torchscript")


def test_toy_format_and_engine_run_export_parity_session_and_cli(toys, t0_ckpt, tmp_path, cli):
    from fnx.exporter import ExportOptions, export_model
    from fnx.runtime import load

    (res,) = export_model("t0", ExportOptions(formats=("torchscript",), weights=str(t0_ckpt), img_size=64, out_dir=tmp_path))
    assert res.artifact.name == "fasternet_t0_64_torchscript_fp32.pt"
    assert res.parity.passed and res.parity.outputs[0].max_abs < 1e-4  # parity against PyTorch, through the toy engine
    session = load(res.artifact, device="cpu")
    assert session.engine_name == "torchscript" and session.layout == "NCHW"
    assert session.predict(np.zeros((80, 80, 3), np.uint8), topk=3)[0].indices
    r = cli("bench", res.artifact, "--runs", "3", "--warmup", "1", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)[0]["engine"].startswith("torchscript")
    r = cli("run", res.artifact, "--json", "--device", "cpu", str(_image(tmp_path)))
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["engine"].startswith("torchscript")


def test_unknown_engine_and_format_say_what_exists(toys):
    from fnx.errors import FnxError
    from fnx.exporter.formats import get_format
    from fnx.runtime.engines import get_engine

    with pytest.raises(FnxError, match="onnx, openvino, tflite, ethos-u, ncnn, executorch, rknn, imx500, torchscript"):
        get_format("coreml")
    with pytest.raises(FnxError, match="onnxruntime, openvino, litert, tflite-runtime, tf.lite, ncnn, executorch, torchscript"):
        get_engine("mnn")


def _image(tmp_path):
    from PIL import Image

    p = tmp_path / "x.png"
    Image.fromarray(np.full((80, 80, 3), 128, np.uint8)).save(p)
    return p


def test_export_cache_key_follows_the_formats_own_converters(monkeypatch):
    """A cached export (fnx.dev) is keyed by the versions of its format's converters, as the format registry lists
    them: an upgraded OpenVINO or NNCF makes a new OpenVINO export, an unrelated upgrade does not."""
    from fnx.dev import exports
    from fnx.dev.exports import ExportRecipe
    from fnx.exporter.formats import FORMATS, get_format

    real = exports.versions
    seen: list[tuple[str, ...]] = []

    def upgraded(dist):
        def fake(dists, missing=None):
            seen.append(tuple(dists))
            return {**real(dists, missing), **({dist: "999.0"} if dist in dists else {})}
        return fake

    get_format("onnx")  # loads the built-in formats
    for name, fmt in FORMATS.items():
        recipe = ExportRecipe(fmt=name)
        before = recipe.key()
        for dist in fmt.converters:
            monkeypatch.setattr(exports, "versions", upgraded(dist))
            assert recipe.key() != before, (name, dist)
        monkeypatch.setattr(exports, "versions", upgraded("some-unrelated-dist"))
        assert recipe.key() == before
        monkeypatch.setattr(exports, "versions", real)
    assert {"openvino", "nncf"} <= set(FORMATS["openvino"].converters) and "torchao" in FORMATS["tflite"].converters
    assert all(tuple(d) in {tuple(f.converters) for f in FORMATS.values()} for d in seen)


def test_a_plugin_missing_a_member_or_its_base_class_is_refused_at_registration():
    from fnx.exporter import register_format
    from fnx.runtime import register_engine

    class NoRun(Engine):
        name, formats, install = "norun", ("onnx",), "nothing"
        available = version = describe = classmethod(lambda cls: True)

        def __init__(self, path, placement):
            pass

    with pytest.raises(TypeError, match="'NoRun' lacks run "):
        register_engine(NoRun)

    class NotAnEngine:
        name, formats, devices, install = "loose", ("onnx",), ("cpu",), "nothing"

    with pytest.raises(TypeError, match="not an Engine subclass"):
        register_engine(NotAnEngine)

    class NoExport(ArtifactFormat):
        name, file = "noexport", TorchScriptFormat.file

    with pytest.raises(TypeError, match="'NoExport' lacks converters, export_float "):
        register_format(NoExport)
    with pytest.raises(TypeError, match="not an ArtifactFormat subclass"):
        register_format(NotAnEngine)
    assert "norun" not in __import__("fnx.runtime").runtime.ENGINES


def test_the_base_class_refuses_int8_for_a_format_without_an_int8_path(toys):
    """What a format does not offer is refused in one place (ArtifactFormat.check), naming the formats that do."""
    from fnx.errors import FnxError
    from fnx.exporter import ExportOptions
    from fnx.exporter.formats import get_format

    with pytest.raises(FnxError, match=r"torchscript has no int8 export in fnx: export int8 as onnx, openvino, tflite, ethos-u, executorch, rknn, imx500, or torchscript at fp32/fp16"):
        get_format("torchscript").check(ExportOptions(formats=("torchscript",), precision="int8"))


def _registered_pairs() -> list[tuple[str, str]]:
    from fnx.exporter.formats import FORMATS
    from fnx.runtime.engines import ENGINES

    return [(f, e.name) for f in FORMATS for e in ENGINES.values() if f in e.formats and "cpu" in e.devices]


@pytest.fixture(scope="module")
def one_artifact_per_format(request, t0_ckpt, tmp_path_factory):
    """format -> an fp32 export of t0_ckpt at 64 px, made when first asked (ONNX, TFLite, ncnn: shared with other tests);
    None where the format's converters are not installed here."""
    from fnx.exporter import ExportOptions, export_model
    from fnx.exporter.formats import installed_formats

    made: dict = {}

    def artifact(fmt: str):
        if fmt not in made:
            if fmt not in installed_formats():
                made[fmt] = None
            elif fmt in ("onnx", "tflite"):
                made[fmt] = request.getfixturevalue("t0_exports")[fmt].artifact
            elif fmt == "ncnn":
                made[fmt] = request.getfixturevalue("t0_ncnn")["fp32"].artifact
            elif fmt == "executorch":
                made[fmt] = request.getfixturevalue("t0_executorch").artifact
            else:
                opts = ExportOptions(formats=(fmt,), weights=str(t0_ckpt), img_size=64, out_dir=tmp_path_factory.mktemp(fmt))
                made[fmt] = export_model("t0", opts)[0].artifact
        return made[fmt]

    return artifact


def test_every_registered_format_has_an_engine_here_and_every_pair_is_covered():
    from fnx.exporter.formats import installed_formats

    from fnx.formats import get_file_format

    pairs = _registered_pairs()
    without = set(installed_formats()) - {f for f, _ in pairs}  # an NPU's compiled file: it says where it runs instead
    assert all(get_file_format(f).runs_on for f in without), without
    assert {("onnx", "onnxruntime"), ("onnx", "openvino"), ("tflite", "litert"), ("openvino", "openvino"),
            ("ncnn", "ncnn")} <= set(pairs)


@pytest.mark.parametrize("fmt, engine", _registered_pairs())
def test_format_engine_conformance(fmt, engine, one_artifact_per_format, t0_ckpt):
    """Every registered (format, engine) pair: export (shared), open, parity with PyTorch within the format's fp32
    bounds, and the manifest's round trip. A pair whose engine is not installed here says which engine."""
    from fnx.exporter import ExportOptions
    from fnx.exporter.build import build
    from fnx.exporter.checks import as_nchw, reference_outputs, verification_images
    from fnx.manifest import Manifest, manifest_path, read_manifest
    from fnx.parity import bounds_for, check
    from fnx.runtime import load
    from fnx.runtime.engines import get_engine
    from fnx.runtime.preprocess import to_layout

    if not get_engine(engine).available():
        pytest.skip(f"engine {engine} is not installed here ({get_engine(engine).install})")
    art = one_artifact_per_format(fmt)
    if art is None:
        pytest.skip(f"format {fmt}'s converters are not installed here")
    session = load(art, device="cpu", engine=engine)
    assert session.engine_name == engine
    built = build("t0", ExportOptions(weights=str(t0_ckpt), img_size=64))
    batch, source = verification_images(None, built.preprocessing)
    refs = reference_outputs(built.model, batch)
    m = read_manifest(art)
    outs = as_nchw(session.run(to_layout(batch, m.input.layout)), m.outputs)
    report = check(refs, outs, "fp32", [o.name for o in m.outputs], logits=True, bounds=bounds_for("fp32"),
                   inputs=source)
    assert report.passed, report.failures
    on_disk = json.loads(manifest_path(art).read_text())
    assert Manifest.from_dict(on_disk).to_dict() == on_disk == m.to_dict()


def test_install_hints_come_from_the_registries():
    """A missing module's hint is the format's or engine's own (no side list of their modules)."""
    from fnx.cli.common import OTHER_EXTRAS, install_hint
    from fnx.exporter.formats import FORMATS
    from fnx.runtime.engines import ENGINES

    for fmt in FORMATS.values():
        assert fmt.requires and all(install_hint(m) for m in fmt.requires), fmt.name
    for engine in ENGINES.values():
        assert engine.modules and install_hint(engine.modules[0]) in {engine.install} | {f.install for f in FORMATS.values()}
    assert install_hint("ai_edge_litert") == ENGINES["litert"].install and install_hint("nosuchmodule") is None
    declared = {m for f in FORMATS.values() for m in f.requires} | {m for e in ENGINES.values() for m in e.modules}
    assert not declared & set(OTHER_EXTRAS)  # one place each


def test_several_formats_leave_out_the_precisions_one_does_not_make_and_say_so(toys):
    """--format all / bench all: a format without int8 is left out of the int8 exports (and said); asked alone, its
    check refuses (above)."""
    from fnx.exporter import ExportOptions
    from fnx.exporter.pipeline import made_pairs
    from fnx.progress import Steps

    said = []
    steps = Steps(quiet=True)
    steps.info = said.append
    opts = ExportOptions(formats=("onnx", "torchscript"))
    pairs = [(p, f.name) for p, f in made_pairs(opts, ("fp32", "int8"), steps)]
    assert pairs == [("fp32", "onnx"), ("fp32", "torchscript"), ("int8", "onnx")]
    assert said and "torchscript int8" in said[0]
    assert [(p, f.name) for p, f in made_pairs(ExportOptions(formats=("torchscript",)), ("int8",))] == [("int8", "torchscript")]


def test_several_formats_leave_out_one_that_refuses_an_option_and_say_why():
    """--format all --features: ncnn cannot write the backbone's four outputs (pnnx folds them into one op), so it is
    left out with its reason and the rest export; when every format refuses, one error gives each reason."""
    from fnx.errors import FnxError
    from fnx.exporter import ExportOptions
    from fnx.exporter.pipeline import made_pairs
    from fnx.progress import Steps

    said = []
    steps = Steps(quiet=True)
    steps.info = said.append
    pairs = made_pairs(ExportOptions(formats=("onnx", "ncnn"), features=True), ("fp32",), steps)
    assert [(p, f.name) for p, f in pairs] == [("fp32", "onnx")]
    assert len(said) == 1 and "ncnn fp32" in said[0] and "--features" in said[0]
    with pytest.raises(FnxError, match="none of the formats asked for") as e:
        made_pairs(ExportOptions(formats=("tflite", "ncnn"), dynamic_batch=True), ("fp32",))
    assert "tflite fp32" in str(e.value) and "ncnn fp32" in str(e.value)
