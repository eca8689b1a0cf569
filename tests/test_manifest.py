"""The manifest contract: typed, strict, versioned; every manifest fnx writes reads back equal."""

from __future__ import annotations

import copy
import json

import pytest

from fnx.errors import FnxError
from fnx.manifest import SCHEMA, Manifest, Preprocessing, read_manifest
from fnx.models import VARIANTS, get_variant


def _written(t0_exports) -> list[dict]:
    return [json.loads(r.artifact.with_suffix(".json").read_text()) for r in t0_exports.values()]


def test_written_manifests_round_trip(t0_exports):
    for d in _written(t0_exports):
        assert d["schema"] == SCHEMA
        assert Manifest.from_dict(d).to_dict() == d


def test_typed_fields(t0_exports):
    m = read_manifest(t0_exports["tflite"].artifact)
    assert isinstance(m.preprocessing, Preprocessing) and m.preprocessing.crop == 64
    assert m.input.layout == "NHWC" and m.outputs[0].kind == "logits" and m.outputs[0].shape == [1, 10]
    assert m.parity.passed and m.parity.bounds == {"max_abs_rel": 1e-4, "min_cosine": 0.99999}


def _write(tmp_path, data):
    art = tmp_path / "model.tflite"
    art.write_bytes(b"....TFL3")
    art.with_suffix(".json").write_text(json.dumps(data))
    return art


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(schema="fnx.manifest/1"), "written by fnx 0.1"),
    (lambda d: d.update(schema="fnx.manifest/9"), "upgrade fnx"),
    (lambda d: d.pop("schema"), "not an fnx manifest"),
    (lambda d: d.pop("preprocessing"), "required field 'preprocessing' is missing"),
    (lambda d: d["inputs"][0].pop("shape"), r"manifest.inputs\[0\]: required field 'shape'"),
    (lambda d: d["preprocessing"].update(crop="big"), "manifest.preprocessing.crop: expected int"),
    (lambda d: d["artifact"].update(colour="red"), "unknown field 'colour'"),
])
def test_bad_manifests_are_refused_with_what_to_do(t0_exports, tmp_path, edit, message):
    d = copy.deepcopy(_written(t0_exports)[0])
    edit(d)
    with pytest.raises(FnxError, match=message):
        read_manifest(_write(tmp_path, d))


def test_not_json_is_refused(tmp_path):
    art = tmp_path / "m.onnx"
    art.write_bytes(b"x")
    art.with_suffix(".json").write_text("{not json")
    with pytest.raises(FnxError, match="not valid JSON"):
        read_manifest(art)


def test_preprocessing_is_defined_once_and_carried_by_the_variant():
    for v in VARIANTS.values():
        assert v.preprocessing() == Preprocessing()  # 224: resize 248 bicubic, crop 224, ImageNet mean/std
    p = get_variant("t2").preprocessing(64)
    assert (p.resize_short, p.crop, p.crop_pct) == (71, 64, 0.9)
    assert Preprocessing().resized(96) == Preprocessing.for_size(96)


def test_feature_outputs_come_from_the_model(t0_ckpt, tmp_path):
    from fnx.exporter import ExportOptions, export_model
    from fnx.models import create_model

    model = create_model("t0", features_only=True)
    (res,) = export_model("t0", ExportOptions(formats=("onnx",), weights=str(t0_ckpt), img_size=64, out_dir=tmp_path,
                                              features=True))
    info = model.feature_info
    assert [o.name for o in res.manifest.outputs] == [f["name"] for f in info]
    assert [o.reduction for o in res.manifest.outputs] == [4, 8, 16, 32]
    assert [o.shape for o in res.manifest.outputs] == [[1, f["num_chs"], 64 // f["reduction"], 64 // f["reduction"]]
                                                       for f in info]
    import onnx

    assert [o.name for o in onnx.load(str(res.artifact)).graph.output] == [f["name"] for f in info]
    d = json.loads(res.artifact.with_suffix(".json").read_text())
    assert Manifest.from_dict(d).to_dict() == d
