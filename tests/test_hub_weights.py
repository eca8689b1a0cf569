"""`--weights hf-hub:...` and the official release's Hub mirror, against a stand-in Hub on 127.0.0.1; ImageNet labels."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from fnx.errors import FnxError
from fnx.labels import imagenet_1k
from fnx.models import create_model, get_variant
from fnx.models.checkpoint import to_timm_layout
from hub_standin import HubStandIn

REPO = "timm/fasternet_t0.in1k"


@pytest.fixture
def hub(tmp_path, monkeypatch):
    standin = HubStandIn()
    monkeypatch.setenv("HF_ENDPOINT", standin.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("FNX_CACHE_DIR", str(tmp_path / "fnx-cache"))
    monkeypatch.setenv("FNX_OFFICIAL_URL_BASE", "http://127.0.0.1:9/none")  # the release is unreachable
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield standin
    standin.stop()


def _timm_safetensors(seed: int, num_classes: int = 1000) -> bytes:
    """A T0 state dict in timm's key layout, as timm's Hub repos hold it."""
    from fnx.models.init import randomize_bn
    import tempfile

    torch.manual_seed(seed)
    sd = randomize_bn(create_model("t0", num_classes=num_classes)).state_dict()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.safetensors"
        save_file({k: v.contiguous() for k, v in to_timm_layout(sd).items()}, str(path))
        return path.read_bytes()


def _graph_bytes(path: Path) -> bytes:
    """The ONNX model without its embedded manifest (which names the weights' source)."""
    model = onnx.load(str(path))
    del model.metadata_props[:]
    return model.SerializeToString()


def test_hub_export_equals_path_export_and_shows_imagenet_names(hub, tmp_path, cli):
    data = _timm_safetensors(1)
    commit = hub.repo(REPO).commit({"model.safetensors": data})
    local = tmp_path / "model.safetensors"
    local.write_bytes(data)
    r = cli("export", "t0", "--weights", f"hf-hub:{REPO}", "--format", "onnx", "--img-size", "64", "--out", tmp_path / "hub")
    assert r.exit_code == 0, r.output
    r = cli("export", "t0", "--weights", local, "--format", "onnx", "--img-size", "64", "--out", tmp_path / "path")
    assert r.exit_code == 0, r.output
    (from_hub,), (from_path,) = (list((tmp_path / d).glob("*.onnx")) for d in ("hub", "path"))
    assert _graph_bytes(from_hub) == _graph_bytes(from_path)
    manifest = json.loads(from_hub.with_suffix(".json").read_text())
    assert manifest["weights"]["kind"] == "hf-hub"
    assert manifest["weights"]["url"] == f"hf-hub:{REPO}@{commit}"
    assert manifest["weights"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["labels"] == list(imagenet_1k().names) and manifest["class_ids"][0] == "n01440764"
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (80, 90, 3), np.uint8)).save(photos / "a.jpg")
    r = cli("run", from_hub, photos, "--json")
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.stdout)["predictions"]
    top = row["top"]
    assert top and all(t["label"] in imagenet_1k().names and not t["label"].isdigit() for t in top)


def test_revision_tag_and_commit(hub):
    repo = hub.repo(REPO)
    old = repo.commit({"model.safetensors": _timm_safetensors(1)}, ref="v1")
    new = repo.commit({"model.safetensors": _timm_safetensors(2)}, ref="main")
    x = torch.randn(1, 3, 64, 64)
    outs = {}
    for spec in (f"hf-hub:{REPO}", f"hf-hub:{REPO}@v1", f"hf-hub:{REPO}@{old}"):
        info: dict = {}
        with torch.no_grad():
            outs[spec] = create_model("t0", weights=spec, source_out=info)(x)
        outs[spec + " url"] = info["weights"].url
    assert outs[f"hf-hub:{REPO} url"] == f"hf-hub:{REPO}@{new}"
    assert outs[f"hf-hub:{REPO}@v1 url"] == outs[f"hf-hub:{REPO}@{old} url"] == f"hf-hub:{REPO}@{old}"
    assert torch.equal(outs[f"hf-hub:{REPO}@v1"], outs[f"hf-hub:{REPO}@{old}"])
    assert not torch.equal(outs[f"hf-hub:{REPO}"], outs[f"hf-hub:{REPO}@v1"])


@pytest.mark.parametrize("spec, message", [
    ("hf-hub:timm/no_such_repo", "no such Hub repo, or it is private (set HF_TOKEN"),
    (f"hf-hub:{REPO}@v9", "the repo has no revision 'v9'"),
    (f"hf-hub:{REPO}/other.safetensors", "the repo has no file 'other.safetensors'"),
    (f"hf-hub:{REPO}/pytorch_model.bin", "safetensors only"),
    ("hf-hub:timm", "is not a Hub weights reference"),
    (f"hf-hub:{REPO}@", "is not a Hub weights reference"),
])
def test_bad_hub_references_say_what_to_do_and_write_nothing(hub, tmp_path, cli, spec, message):
    hub.repo(REPO).commit({"model.safetensors": _timm_safetensors(1)})
    r = cli("export", "t0", "--weights", spec, "--format", "onnx", "--img-size", "64", "--out", tmp_path / "o")
    assert r.exit_code == 1 and message in " ".join(r.output.split()) and "Traceback" not in r.output
    assert not (tmp_path / "o").exists()


def test_truncated_download_resumes_or_fails_clean(hub):
    data = _timm_safetensors(1)
    hub.repo(REPO).commit({"model.safetensors": data})
    hub.truncate["model.safetensors"] = 1  # one broken GET: resumed with a Range request
    info: dict = {}
    create_model("t0", weights=f"hf-hub:{REPO}", source_out=info)
    assert info["weights"].path.read_bytes() == data
    assert any(method == "GET" for method, _ in hub.requests)

    other = "timm/fasternet_t1.in1k"
    hub.repo(other).commit({"model.safetensors": data})
    hub.truncate["model.safetensors"] = 100  # breaks every time: an error, and no file in the cache
    with pytest.raises(FnxError, match="try again|could not"):
        create_model("t0", weights=f"hf-hub:{other}")
    assert not list(Path(hub_cache := __import__("os").environ["HF_HUB_CACHE"]).glob(
        "models--timm--fasternet_t1.in1k/snapshots/*/model.safetensors")), hub_cache


def test_offline_uses_the_warm_cache_without_a_request(hub, monkeypatch):
    hub.repo(REPO).commit({"model.safetensors": _timm_safetensors(1)})
    create_model("t0", weights=f"hf-hub:{REPO}")
    before = len(hub.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    info: dict = {}
    create_model("t0", weights=f"hf-hub:{REPO}", source_out=info)
    assert len(hub.requests) == before and info["weights"].url.startswith(f"hf-hub:{REPO}@")
    with pytest.raises(FnxError, match="not in the local Hugging Face cache and HF_HUB_OFFLINE is set"):
        create_model("t1", weights="hf-hub:timm/fasternet_t1.in1k")


def test_official_falls_back_to_the_timm_mirror_and_says_so(hub, cli):
    data = _timm_safetensors(3)
    commit = hub.repo(REPO).commit({"model.safetensors": data})
    assert get_variant("t0").hub_mirror == f"hf-hub:{REPO}"
    with pytest.warns(UserWarning, match="using its mirror hf-hub:timm/fasternet_t0.in1k@"):
        info: dict = {}
        create_model("t0", weights="official", source_out=info)
    assert info["weights"].kind == "official" and info["weights"].url == f"hf-hub:{REPO}@{commit}"
    r = cli("models", "--json")
    cached = {row["name"]: row["weights"]["cached"] for row in json.loads(r.stdout)}
    assert cached["fasternet_t0"] == "mirror" and cached["fasternet_t1"] is None


def test_a_users_repo_names_its_classes_in_timm_config(hub, tmp_path, cli):
    names = ["cat", "dog", "fox"]
    hub.repo("me/pets").commit({"model.safetensors": _timm_safetensors(4, num_classes=3),
                                "config.json": json.dumps({"architecture": "fasternet_t0", "num_classes": 3,
                                                           "label_names": names}).encode()})
    r = cli("export", "t0", "--weights", "hf-hub:me/pets", "--format", "onnx", "--img-size", "64", "--out", tmp_path)
    assert r.exit_code == 0, r.output
    manifest = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert manifest["labels"] == names and manifest["class_ids"] is None and manifest["model"]["num_classes"] == 3


def test_random_and_small_heads_get_no_imagenet_names(tmp_path):
    from fnx.exporter.build import class_names
    from fnx.models.weights import WeightSource

    assert class_names(WeightSource("random"), None, 1000) == (None, None)
    assert class_names(WeightSource("path", path=tmp_path), None, 10) == (None, None)
    names, ids = class_names(WeightSource("path", path=tmp_path), None, 1000)
    assert names[281] == "tabby" and ids[281] == "n02123045" and len(set(names)) == 1000


def test_imagenet_eval_matches_wordnet_id_folders(hub, tmp_path, cli):
    hub.repo(REPO).commit({"model.safetensors": _timm_safetensors(1)})
    r = cli("export", "t0", "--weights", f"hf-hub:{REPO}", "--format", "onnx", "--img-size", "64", "--out", tmp_path / "a")
    assert r.exit_code == 0, r.output
    data = tmp_path / "val"
    rng = np.random.default_rng(1)
    for wnid in ("n01440764", "n02123045"):
        (data / wnid).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (70, 70, 3), np.uint8)).save(data / wnid / f"{i}.png")
    r = cli("eval", next((tmp_path / "a").glob("*.onnx")), "--data", data, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["n"] == 4
    (data / "not_a_class").mkdir()
    Image.fromarray(rng.integers(0, 255, (70, 70, 3), np.uint8)).save(data / "not_a_class" / "x.png")
    r = cli("eval", next((tmp_path / "a").glob("*.onnx")), "--data", data)
    assert r.exit_code == 1 and "'not_a_class' is not among the model's classes" in " ".join(r.output.split())
