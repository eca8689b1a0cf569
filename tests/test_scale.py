"""Beyond one process: `fnx eval` on a Ray cluster (head + second node on 127.0.0.1) and `fnx train` with
torch.distributed (gloo, 2 processes), each giving the single-process figures, and cleaning up after itself."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fnx.install import pip_install

from fnx.calibration.options import Int8Options
from fnx.runtime.placement import RunOptions
from fnx.demo.train_demo import DEMO_CHECKPOINT
from fnx.dev import ExportRecipe, cached_export
from fnx.errors import FnxError
from fnx.evaluation import evaluate, evaluate_many

FNX = [sys.executable, "-m", "fnx"]
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "COLUMNS": "200"}


@pytest.fixture(scope="module")
def eval_data(digits, tmp_path_factory):
    """The digits test split plus one unreadable image, which every path must report and leave out."""
    root = tmp_path_factory.mktemp("eval") / "test"
    shutil.copytree(digits / "test", root)
    (root / "3" / "broken.png").write_bytes(b"not a png")
    return root


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    cache = tmp_path_factory.mktemp("exports")
    recipe = dict(fmt="onnx", img_size=64, num_classes=10, weights=str(DEMO_CHECKPOINT), verify=False,
                  int8=Int8Options("synthetic", 32))
    return [cached_export(ExportRecipe(precision=p, **recipe), cache) for p in ("fp32", "int8")]


def test_eval_many_gives_each_single_figure_per_class_and_reference_agreement(artifacts, eval_data):
    fp32, int8 = artifacts
    r = evaluate_many([fp32, int8], eval_data, reference=fp32)
    assert r["images"] == 361 and r["runner"] == "local" and r["classes"] == [str(i) for i in range(10)]
    for one, art in zip(r["results"], (fp32, int8)):
        single = evaluate(art, eval_data)
        assert one["top1"] == single["top1"] and one["top5"] == single["top5"] and one["n"] == single["n"] == 360
        assert [e["source"] for e in one["errors"]] == [str(eval_data / "3" / "broken.png")]
        per_class = one["per_class"]
        assert sum(c["n"] for c in per_class.values()) == 360
        assert sum(c["n"] * c["top1"] for c in per_class.values()) == pytest.approx(one["top1"] * 360)
    assert r["results"][0]["reference_agreement"] == 1.0  # the reference agrees with itself
    assert 0.95 < r["results"][1]["reference_agreement"] <= 1.0
    assert r["results"][0]["top1"] > 0.95  # the trained demo model on real digits


def test_eval_cli_table_json_and_per_class(artifacts, eval_data, cli):
    fp32, int8 = artifacts
    r = cli("eval", fp32, int8, "--data", eval_data, "--reference", fp32, "--per-class", env={"COLUMNS": "200"})
    assert r.exit_code == 1  # the broken image is reported after the others are scored
    assert "agrees with ref" in r.stdout and "top-1 per class" in r.stdout and "broken.png" in r.output
    r = cli("eval", fp32, int8, "--data", eval_data, "--limit", "50", "--json")
    data = json.loads(r.stdout)
    assert [Path(x["target"]).name for x in data["results"]] == [fp32.name, int8.name] and data["images"] == 50
    r = cli("eval", fp32, "--data", eval_data, "--workers", "2")
    assert r.exit_code == 1 and "use it with --ray" in r.output


def _ray_processes() -> set[int]:
    out = subprocess.run(["pgrep", "-f", "raylet|gcs_server"], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


@pytest.fixture(scope="module")
def ray_cluster():
    """A Ray head and a second node on 127.0.0.1, one CPU each; stopped, with every process, at the end."""
    pytest.importorskip("ray", reason="Ray Data is fnx[scale]: pip install 'fnx[scale]'")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from ray.cluster_utils import Cluster

    before = _ray_processes()
    store = 80 * 1024 * 1024
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": store,
                                                            "include_dashboard": False})
    cluster.add_node(num_cpus=1, object_store_memory=store)
    try:
        yield cluster
    finally:
        cluster.shutdown()
    assert _ray_processes() <= before, "the test's Ray processes outlived it"


def test_ray_eval_on_two_nodes_matches_single_process(artifacts, eval_data, ray_cluster):
    fp32, int8 = artifacts
    r = subprocess.run([*FNX, "eval", fp32, int8, "--data", eval_data, "--reference", fp32, "--ray",
                        ray_cluster.address, "--json"], capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 1, r.stderr  # exit 1: the broken image, reported
    on_ray = json.loads(r.stdout)
    local = evaluate_many([fp32, int8], eval_data, reference=fp32)
    assert on_ray["runner"] == "ray" and on_ray["images"] == local["images"]
    for a, b in zip(on_ray["results"], local["results"]):
        for key in ("n", "top1", "top5", "per_class", "reference_agreement", "errors", "kind"):
            assert a[key] == b[key], key
    assert "broken.png" in r.stderr


def test_ray_eval_both_preprocessing_modes_in_process(artifacts, eval_data, ray_cluster):
    import ray

    ray.init(address=ray_cluster.address)  # a caller's own connection is used and left open
    try:
        alive = [n for n in ray.nodes() if n["Alive"]]
        assert len(alive) == 2 and int(ray.cluster_resources()["CPU"]) == 2
        r = evaluate_many([artifacts[1]], eval_data, mode="fast", limit=60, ray="auto", workers=2)
        assert ray.is_initialized()
        with pytest.raises(FnxError, match="largest node has 1 CPU"):  # an actor no node can host: refused, no hang
            evaluate_many([artifacts[1]], eval_data, limit=10, ray="auto", run=RunOptions("cpu", threads=2))
    finally:
        ray.shutdown()
    local = evaluate_many([artifacts[1]], eval_data, mode="fast", limit=60)
    assert r["results"][0]["modes"] == local["results"][0]["modes"]
    assert r["results"][0]["agreement"] == local["results"][0]["agreement"]


def test_reference_agreement_between_a_labelled_and_an_unlabelled_model(artifacts, eval_data, tmp_path):
    """Folders named d0..d9: the labelled twin's labels are those names, the unlabelled twin's classes are indices;
    agreement compares the folder classes both stand for (comparing label text with index text gave 0%)."""
    data = tmp_path / "named"
    for c in eval_data.iterdir():
        shutil.copytree(c, data / f"d{c.name}")
    twins = {}
    for name, labels in (("labelled", [f"d{i}" for i in range(10)]), ("bare", None)):
        twins[name] = tmp_path / name / artifacts[0].name
        twins[name].parent.mkdir()
        shutil.copy(artifacts[0], twins[name])
        m = json.loads(artifacts[0].with_suffix(".json").read_text())
        m["labels"] = labels
        twins[name].with_suffix(".json").write_text(json.dumps(m))
    r = evaluate_many([twins["bare"]], data, reference=twins["labelled"], limit=40)
    assert r["results"][0]["reference_agreement"] == 1.0


def test_eval_refuses_a_backbone(eval_data, tmp_path, cli):
    from fnx.exporter import ExportOptions, export_model

    (res,) = export_model("t0", ExportOptions(formats=("onnx",), weights=str(DEMO_CHECKPOINT), out_dir=tmp_path,
                                              features=True, verify=False))
    r = cli("eval", res.artifact, "--data", eval_data)
    assert r.exit_code == 1 and "--features backbone" in r.output


def test_ray_errors_are_one_line(artifacts, eval_data):
    r = subprocess.run([*FNX, "eval", artifacts[0], "--data", eval_data, "--ray", "127.0.0.1:9"],
                       capture_output=True, text=True, env=ENV, timeout=120)
    assert r.returncode == 1 and "cannot reach a Ray cluster at 127.0.0.1:9" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = subprocess.run([*FNX, "eval", artifacts[0], "--data", eval_data, "--ray", "nonsense"],
                       capture_output=True, text=True, env=ENV, timeout=120)
    assert r.returncode == 1 and "expected auto, HOST:PORT" in r.stderr
    code = ("import sys; sys.modules['ray'] = None\n"
            "from fnx.cli import app\n"
            f"app(['eval', {str(artifacts[0])!r}, '--data', {str(eval_data)!r}, '--ray', 'auto'])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=120)
    assert r.returncode == 1 and pip_install("scale") in r.stderr


def test_eval_without_ray_never_imports_it(artifacts, eval_data):
    code = ("import sys\nfrom fnx.evaluation import evaluate_many\n"
            f"evaluate_many([{str(artifacts[0])!r}], {str(eval_data)!r}, limit=20)\n"
            "assert not any(m == 'ray' or m.startswith('ray.') for m in sys.modules), 'ray imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, env=ENV, timeout=120)
