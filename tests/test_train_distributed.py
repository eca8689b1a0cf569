"""`fnx train` with torch.distributed: 2 gloo processes (--nproc and torchrun), resume from the per-epoch state,
and the result a normal fnx checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fnx.demo.digits import build_digits, digits_subset
from fnx.models import create_model
from fnx.training.fit import TrainOptions, train
from fnx.training.state import load_state, state_path

ENV = {**os.environ, "COLUMNS": "200"}
OPTS = TrainOptions(epochs=2, batch_size=16, lr=3e-3, img_size=32)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """30 digit scans per class (24 train, 6 val): enough to learn something in 2 short epochs."""
    return digits_subset(build_digits(tmp_path_factory.mktemp("digits")), tmp_path_factory.mktemp("small"),
                         {"train": 24, "val": 6})


def _weights(path: Path) -> dict:
    return create_model("fasternet_t0", weights=str(path)).state_dict()


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)


def test_resume_after_an_interruption_ends_where_the_uninterrupted_run_ends(small, tmp_path, stop_after_first_epoch):
    whole = train("fasternet_t0", small, tmp_path / "whole" / "m.pth", OPTS)
    assert [h["epoch"] for h in whole.history] == [1, 2]
    cut = tmp_path / "cut" / "m.pth"
    stop_after_first_epoch(train, "fasternet_t0", small, cut, OPTS)
    assert load_state(state_path(cut)).epoch == 1
    resumed = train("fasternet_t0", small, cut, OPTS, resume=state_path(cut))
    assert resumed.history == whole.history  # same losses and accuracies, epoch by epoch
    assert _same(_weights(cut), _weights(tmp_path / "whole" / "m.pth"))
    assert load_state(state_path(cut)).epoch == 2


def test_two_gloo_processes_then_resume_on_two(small, tmp_path):
    out = tmp_path / "ddp" / "m.pth"
    r = subprocess.run([sys.executable, "-m", "fnx", "train", "fasternet-t0", "--data", small, "--epochs", "1",
                        "--batch-size", "16", "--img-size", "32", "--out", out, "--nproc", "2", "--device", "cpu"],
                       capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "2 processes on cpu" in r.stderr and r.stdout.count("saved ") == 1  # rank 0 alone reports
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["options"]["nproc"] == 2 and side["epoch"] == 1 and side["labels"] == [str(i) for i in range(10)]
    model = create_model("fasternet_t0", weights=str(out))  # a normal checkpoint: no DDP "module." prefixes
    assert model.num_classes == 10
    state = load_state(state_path(out))
    assert state.epoch == 1 and state.history[0]["loss"] > 0
    # a 2-epoch run cut after epoch 1, resumed on 2 processes: only epoch 2 is trained
    cut = tmp_path / "cut" / "m.pth"
    cut.parent.mkdir()
    shutil.copy(state_path(out), state_path(cut))
    st = load_state(state_path(cut))
    st.options["epochs"], st.out = 2, str(cut)
    st.save(state_path(cut))
    r = subprocess.run([sys.executable, "-m", "fnx", "train", "--resume", state_path(cut), "--nproc", "2",
                        "--device", "cpu"], capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "resumed after epoch 1 of 2" in r.stderr and "epoch 1/2" not in r.stderr
    assert [h["epoch"] for h in json.loads(cut.with_suffix(".json").read_text())["history"]] == [1, 2]


def test_under_torchrun(small, tmp_path):
    out = tmp_path / "m.pth"
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                        "-m", "fnx", "train", "fasternet-t0", "--data", small, "--epochs", "1", "--batch-size", "16",
                        "--img-size", "32", "--out", out], capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("saved ") == 1 and "2 processes on cpu" in r.stderr
    assert json.loads(out.with_suffix(".json").read_text())["epoch"] == 1


@pytest.mark.parametrize("args, message", [
    (["--nproc", "2", "--sync-bn", "--device", "cpu"], "--sync-bn needs GPUs"),
    (["--nproc", "3", "--batch-size", "16"], "does not split evenly across 3 processes"),
])
def test_bad_distributed_options(small, tmp_path, cli, args, message):
    r = cli("train", "fasternet-t0", "--data", small, "--epochs", "1", "--img-size", "32",
            "--out", tmp_path / "m.pth", *args)
    assert r.exit_code == 1 and message in r.output
    assert not (tmp_path / "m.pth").exists() and not state_path(tmp_path / "m.pth").exists()


def test_resume_refuses_a_checkpoint_and_another_model(small, tmp_path, cli):
    out = tmp_path / "m.pth"
    train("fasternet_t0", small, out, TrainOptions(epochs=1, batch_size=16, img_size=32))
    r = cli("train", "--resume", out)
    assert r.exit_code == 1 and "not a fnx training state" in r.output
    r = cli("train", "--resume", tmp_path / "missing.last.pt")
    assert r.exit_code == 1 and "no such file" in r.output
    r = cli("train", "fasternet-t1", "--resume", state_path(out))
    assert r.exit_code == 1 and "is a fasternet_t0 run, not fasternet-t1" in r.output
    r = cli("train", "--resume", state_path(out), "--epochs", "30", "--lr", "0.1")
    assert r.exit_code == 1 and "leave out --epochs, --lr" in r.output
    assert load_state(state_path(out)).options["epochs"] == 1 and Path(load_state(state_path(out)).out).is_absolute()
