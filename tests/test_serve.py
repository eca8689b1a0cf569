"""`fnx serve` live on 127.0.0.1, spoken to by clients nobody here wrote: NVIDIA's tritonclient[http] (the Open
Inference Protocol v2) and requests (fnx's image route). Load and fault tests are bounded in count and time."""

from __future__ import annotations

import gzip
import json
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

from fnx.dev.serve_process import ServerProcess

tritonhttp = pytest.importorskip("tritonclient.http")
RUN = ("--threads", "1", "--engine", "onnxruntime")


@pytest.fixture(scope="module")
def session(t0_dynamic):
    from fnx.runtime import load

    return load(t0_dynamic, device="cpu", threads=1, engine="onnxruntime")


@pytest.fixture(scope="module")
def server(t0_dynamic, t0_exports):
    tflite = t0_exports["tflite"].artifact
    with ServerProcess(f"t0={t0_dynamic}", f"t0fixed={tflite}", *RUN, "--max-batch", "8", "--max-delay-ms", "5",
                       "--queue", "64", "--max-body-mb", "2") as s:
        yield s
        assert s.stop() == 0, s.log
        assert "Traceback" not in s.log, s.log


def inputs(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, 64, 64)).astype(np.float32)


def infer(client, model: str, x: np.ndarray, binary: bool = True, **kw):
    inp = tritonhttp.InferInput("input", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=binary)
    return client.infer(model, [inp], **kw)


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_gets_the_sessions_own_outputs(server, session, binary):
    client = tritonhttp.InferenceServerClient(server.url)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("t0")
    meta = client.get_model_metadata("t0")
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 3, 64, 64]}]
    assert meta["outputs"] == [{"name": "logits", "datatype": "FP32", "shape": [-1, 10]}]
    assert client.get_model_config("t0")["max_batch_size"] == 8
    assert "classification" in client.get_server_metadata()["extensions"]
    x = inputs(3, 0)
    out = tritonhttp.InferRequestedOutput("logits", binary_data=binary)
    got = infer(client, "t0", x, binary, outputs=[out], request_id="req-7")
    np.testing.assert_array_equal(got.as_numpy("logits"), session.run(x)[0])  # exactly: same engine, same batch
    assert got.get_response()["id"] == "req-7"
    top = infer(client, "t0", x, binary, outputs=[tritonhttp.InferRequestedOutput("logits", binary, class_count=3)])
    for row, logits in zip(top.as_numpy("logits"), session.run(x)[0]):
        want = session.top(logits, 3, "x")
        assert [int(c.decode().split(":")[1]) if binary else int(c.split(":")[1]) for c in row] == want.indices


def test_a_fixed_batch_artifact_takes_any_batch_and_says_how_it_batches(server, t0_exports):
    from fnx.runtime import load

    client = tritonhttp.InferenceServerClient(server.url)
    assert client.get_model_config("t0fixed")["max_batch_size"] == 1
    batching = client.get_model_config("t0fixed")["parameters"]["batching"]
    assert "fixed batch 1" in batching and "export with --dynamic-batch" not in batching  # a TFLite export cannot
    assert "a tflite export keeps the batch it was exported with" in batching
    ref = load(t0_exports["tflite"].artifact, device="cpu", threads=1)
    x = np.ascontiguousarray(inputs(3, 1).transpose(0, 2, 3, 1))  # the TFLite export is NHWC
    name = client.get_model_metadata("t0fixed")["inputs"][0]["name"]
    inp = tritonhttp.InferInput(name, list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    got = client.infer("t0fixed", [inp]).as_numpy(client.get_model_metadata("t0fixed")["outputs"][0]["name"])
    np.testing.assert_array_equal(got, ref.run(x)[0])


def test_the_image_route_answers_as_fnx_run_does(server, session, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(3)
    paths = [tmp_path / "a.jpg", tmp_path / "b.png"]
    Image.fromarray(rng.integers(0, 255, (150, 200, 3), dtype=np.uint8)).save(paths[0], quality=90)
    Image.fromarray(rng.integers(0, 255, (90, 70, 3), dtype=np.uint8)).save(paths[1])
    for mode in ("fast", "exact"):
        want = [p.to_dict() for p in session.predict(paths, topk=3, mode=mode)]
        r = requests.post(server.http(f"/v2/models/t0/classify?topk=3&preprocess={mode}"), timeout=30,
                          files=[("image", (p.name, p.read_bytes())) for p in paths])
        assert r.status_code == 200, r.text
        got = r.json()["predictions"]
        assert [g["source"] for g in got] == ["a.jpg", "b.png"] and r.json()["preprocess"] == mode
        for g, w in zip(got, want):
            assert [t["index"] for t in g["top"]] == [t["index"] for t in w["top"]]
            np.testing.assert_allclose([t["score"] for t in g["top"]], [t["score"] for t in w["top"]], rtol=1e-5)
    raw = requests.post(server.http("/v2/models/t0/classify"), data=paths[0].read_bytes(),
                        headers={"Content-Type": "image/jpeg"}, timeout=30)
    assert raw.status_code == 200 and raw.json()["predictions"][0]["source"] == "body"
    assert raw.json()["preprocess"] == "fast"  # fnx run's default


@pytest.mark.parametrize("method, path, kw, status, match", [
    ("post", "/v2/models/nope/infer", {"json": {"inputs": []}}, 404, "not served here"),
    ("get", "/v2/models/t0/versions/2", {}, 404, "version '2'"),
    ("post", "/v2/models/t0/infer", {"data": b"{not json"}, 400, "not valid JSON"),
    ("post", "/v2/models/t0/infer", {"json": {"inputs": [{"name": "input", "shape": [1, 3, 64, 64],
                                                          "datatype": "FP16", "data": [0]}]}}, 400, "is FP32"),
    ("post", "/v2/models/t0/infer", {"json": {"inputs": [{"name": "input", "shape": [1, 3, 32, 32],
                                                          "datatype": "FP32", "data": [0] * 3072}]}}, 400, "takes shape"),
    ("post", "/v2/models/t0/infer", {"data": b"\0" * (3 * 2**20)}, 413, "over the server's limit"),
    ("post", "/v2/models/t0/infer", {"data": gzip.compress(b" " * (3 * 2**20)),
                                     "headers": {"Content-Encoding": "gzip"}}, 413, "decompressed body"),
    ("post", "/v2/models/t0/classify", {"data": b"\xff\xd8\xffnot a jpeg",
                                        "headers": {"Content-Type": "image/jpeg"}}, 400, "cannot decode image body"),
    ("post", "/v2/models/t0/classify", {"json": {"x": 1}}, 415, "not an image"),
    ("post", "/v2/models/t0/classify?topk=0", {"data": b"x", "headers": {"Content-Type": "image/png"}}, 400, "topk"),
    ("get", "/v3/models", {}, 404, "Open Inference Protocol"),
])
def test_bad_requests_get_the_protocols_error_json(server, method, path, kw, status, match):
    r = getattr(requests, method)(server.http(path), timeout=30, **kw)
    assert r.status_code == status, r.text
    assert match in r.json()["error"]


def test_a_gzip_request_from_tritonclient_is_read(server, session):
    client = tritonhttp.InferenceServerClient(server.url)
    x = inputs(2, 4)
    got = infer(client, "t0", x, request_compression_algorithm="gzip").as_numpy("logits")
    np.testing.assert_array_equal(got, session.run(x)[0])


def test_load_8_clients_x_200_requests_no_error_no_mix_up(server, session):
    xs = inputs(1600, 5)
    want = np.concatenate([session.run(xs[i:i + 100])[0] for i in range(0, 1600, 100)])
    gaps = np.abs(want[:, None, :] - want[None, :200, :]).max(-1) + np.eye(1600, 200) * 1e9
    assert gaps.min() > 1e-3  # any two requests' answers differ far more than the tolerance: a mix-up would show

    def client_run(c: int) -> list[tuple[int, np.ndarray]]:
        client = tritonhttp.InferenceServerClient(server.url, network_timeout=60)
        return [(i, infer(client, "t0", xs[i:i + 1]).as_numpy("logits")[0]) for i in range(c * 200, c * 200 + 200)]

    before = metric(server, "fnx_batch_size_count", 't0')
    with ThreadPoolExecutor(8) as pool:
        results = [r for part in pool.map(client_run, range(8)) for r in part]
    assert sorted(i for i, _ in results) == list(range(1600))
    for i, logits in results:
        np.testing.assert_allclose(logits, want[i], rtol=1e-5, atol=1e-5, err_msg=f"request {i}")
    calls = metric(server, "fnx_batch_size_count", 't0') - before
    assert calls < 1600, "no request was batched with another"


def metric(server, name: str, model: str) -> float:
    text = requests.get(server.http("/metrics"), timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and f'model="{model}"' in line)


def test_clients_that_leave_mid_request_leave_the_server_answering(server, session):
    body = json.dumps({"inputs": [{"name": "input", "shape": [16, 3, 64, 64], "datatype": "FP32",
                                   "parameters": {"binary_data_size": 16 * 3 * 64 * 64 * 4}}]}).encode()
    for cut in (len(body) // 2, len(body) + 1000, None):  # in the JSON, in the tensor, after the whole request
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            full = body + inputs(16, 6).tobytes()
            s.sendall(b"POST /v2/models/t0/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                      + f"Inference-Header-Content-Length: {len(body)}\r\nContent-Length: {len(full)}\r\n\r\n".encode()
                      + full[:cut])
    x = inputs(1, 7)
    got = infer(tritonhttp.InferenceServerClient(server.url), "t0", x).as_numpy("logits")
    np.testing.assert_array_equal(got, session.run(x)[0])


def test_a_burst_past_the_queue_gets_503_with_retry_after_then_service(t0_dynamic, session):
    with ServerProcess(f"t0={t0_dynamic}", *RUN, "--max-batch", "1", "--max-delay-ms", "0", "--queue", "2") as s:
        x = inputs(32, 8)
        head = json.dumps({"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32",
                                       "parameters": {"binary_data_size": x.nbytes}}]}).encode()

        def post(_):
            return requests.post(s.http("/v2/models/t0/infer"), data=head + x.tobytes(), timeout=60,
                                 headers={"Inference-Header-Content-Length": str(len(head))})

        with ThreadPoolExecutor(24) as pool:
            answers = list(pool.map(post, range(24)))
        codes = sorted(r.status_code for r in answers)
        assert set(codes) == {200, 503}, codes
        refused = [r for r in answers if r.status_code == 503]
        assert all(r.headers["Retry-After"] == "1" and "fnx serve --queue" in r.json()["error"] for r in refused)
        assert metric(s, "fnx_rejected_total", "t0") == len(refused)
        one = inputs(1, 9)
        np.testing.assert_array_equal(infer(tritonhttp.InferenceServerClient(s.url), "t0", one).as_numpy("logits"),
                                      session.run(one)[0])
        assert s.stop() == 0


def test_sigterm_during_load_finishes_what_was_in_flight_and_exits_cleanly(t0_dynamic, session):
    s = ServerProcess(f"t0={t0_dynamic}", *RUN, "--max-batch", "4", "--max-body-mb", "64")
    xs, big = inputs(400, 10), inputs(384, 11)  # the big request takes a few hundred ms on the engine
    want, want_big = session.run(xs)[0], session.run(big)[0]
    answered, failed, started, result = [], [], threading.Event(), {}

    def client_run(c: int) -> None:
        client = tritonhttp.InferenceServerClient(s.url, network_timeout=30)
        for i in range(c, 400, 3):
            try:
                answered.append((i, infer(client, "t0", xs[i:i + 1]).as_numpy("logits")[0]))
            except Exception as e:  # refused or closed once the server stops: never a wrong answer
                failed.append(e)
                return
            if len(answered) >= 40:
                started.set()

    def in_flight() -> None:
        result["big"] = infer(tritonhttp.InferenceServerClient(s.url, network_timeout=60), "t0", big).as_numpy("logits")

    with s, ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(client_run, c) for c in range(3)]
        assert started.wait(60), s.log
        futures.append(pool.submit(in_flight))
        time.sleep(0.3)  # the big request is sent and on the engine when the signal comes
        rc = s.stop()
        for f in futures:
            f.result(60)
    assert rc == 0 and "stopped by SIGTERM" in s.log and "Traceback" not in s.log, s.log
    np.testing.assert_allclose(result["big"], want_big, rtol=1e-5, atol=1e-5)  # in flight at SIGTERM: finished
    for i, logits in answered:
        np.testing.assert_allclose(logits, want[i], rtol=1e-5, atol=1e-5)
    total = int(re.search(r"after (\d+) request", s.log).group(1))
    assert total == len(answered) + 1 + s.polls  # every answer the server made reached its client


def test_a_token_guards_everything_but_the_health_probes(t0_dynamic, tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    with ServerProcess(f"t0={t0_dynamic}", *RUN, "--token-file", str(token)) as s:
        assert requests.get(s.http("/v2/health/ready"), timeout=10).status_code == 200
        plain = requests.get(s.http("/v2/models/t0"), timeout=10)
        wrong = requests.get(s.http("/v2/models/t0"), headers={"Authorization": "Bearer nope"}, timeout=10)
        assert plain.status_code == wrong.status_code == 401 and plain.headers["WWW-Authenticate"] == "Bearer"
        assert "no Authorization header" in plain.json()["error"] and "not the server's" in wrong.json()["error"]
        client = tritonhttp.InferenceServerClient(s.url)
        meta = client.get_model_metadata("t0", headers={"Authorization": "Bearer s3cret-token"})
        assert meta["name"] == "t0"
        assert requests.get(s.http("/metrics"), timeout=10).status_code == 401
        assert s.stop() == 0
