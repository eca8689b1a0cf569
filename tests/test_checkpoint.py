"""Checkpoints: official and timm layouts, wrappers, safetensors, refusal of code, clear errors."""

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from fnx.errors import FnxError
from fnx.models import create_model
from fnx.models.checkpoint import read_state_dict, to_timm_layout

GOLDEN = Path(__file__).parent / "golden" / "fasternet_t0_official_keys.txt"


def test_official_t0_keys_are_pinned():
    model = create_model("t0")
    assert list(model.state_dict()) == GOLDEN.read_text().split()


def _save(sd, path):
    torch.save(sd, path)
    return str(path)


def _out(model, x):
    with torch.no_grad():
        return model(x)


def test_official_and_timm_layouts_give_identical_outputs(t0, tmp_path):
    sd = t0.state_dict()
    timm_sd = to_timm_layout(sd)
    assert "stages.1.downsample.reduction.weight" in timm_sd and "classifier.weight" in timm_sd
    assert "conv_head.weight" in timm_sd and "stages.3.blocks.1.mlp.0.weight" in timm_sd
    x = torch.randn(2, 3, 64, 64)
    ref = _out(t0, x)
    for i, (name, obj) in enumerate([
        ("official.pth", sd),
        ("timm.pth", timm_sd),
        ("wrapped.pth", {"state_dict": {"module." + k: v for k, v in sd.items()}, "epoch": 3}),
        ("model_key.pt", {"model": timm_sd, "optimizer": {}}),
    ]):
        path = _save(obj, tmp_path / name)
        m = create_model("t0", weights=path)
        assert m.num_classes == 10  # taken from the checkpoint
        assert torch.equal(_out(m, x), ref), name


def test_safetensors(t0, tmp_path):
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in to_timm_layout(t0.state_dict()).items()}, str(path))
    x = torch.randn(1, 3, 64, 64)
    assert torch.equal(_out(create_model("t0", weights=str(path)), x), _out(t0, x))


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['FNX_EVIL_MARK']}",))


def test_pickle_that_runs_code_is_refused(tmp_path, monkeypatch):
    mark = tmp_path / "pwned"
    monkeypatch.setenv("FNX_EVIL_MARK", str(mark))
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "payload": _Evil()}, path)
    with pytest.raises(FnxError, match="refused.*pickled"):
        read_state_dict(path)
    assert not mark.exists()


def test_truncated_checkpoint_is_a_clear_error(t0, tmp_path):
    path = tmp_path / "t.pth"
    torch.save(t0.state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FnxError, match="truncated or corrupt"):
        create_model("t0", weights=str(path))
    st = tmp_path / "t.safetensors"
    save_file({"a": torch.zeros(100)}, str(st))
    st.write_bytes(st.read_bytes()[:50])
    with pytest.raises(FnxError, match="truncated or corrupt"):
        read_state_dict(st)


def test_wrong_variant_names_key_and_suggests_variant(t0, tmp_path):
    path = _save(t0.state_dict(), tmp_path / "t0.pth")
    with pytest.raises(FnxError) as e:
        create_model("fasternet-t2", weights=path)
    msg = str(e.value)
    assert "patch_embed.proj.weight" in msg and "fasternet-t0" in msg


def test_wrong_head_size_suggests_num_classes(t0, tmp_path):
    path = _save(t0.state_dict(), tmp_path / "t0.pth")
    with pytest.raises(FnxError, match=r"'head.weight'.*--num-classes 10"):
        create_model("t0", weights=path, num_classes=1000)


def test_missing_file_and_non_checkpoint(tmp_path):
    with pytest.raises(FnxError, match="does not exist"):
        create_model("t0", weights=str(tmp_path / "nope.pth"))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(FnxError, match="truncated or corrupt"):
        create_model("t0", weights=str(junk))


def test_backbone_loads_classifier_checkpoint(t0, tmp_path):
    path = _save(t0.state_dict(), tmp_path / "t0.pth")
    with pytest.warns(UserWarning, match="output norms"):
        m = create_model("t0", weights=path, features_only=True)
    assert torch.equal(m.stages[0].blocks[0].mlp[0].weight, t0.stages[0].blocks[0].mlp[0].weight)
