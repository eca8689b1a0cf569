"""fnx serve's parts without a server: the batcher, the protocol reader (fuzzed) and the CLI's refusals."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import threading

import numpy as np
import pytest

from fnx.install import pip_install
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fnx.serve.batcher import Batcher, Overloaded
from fnx.serve.protocol import (ProtocolError, ProtocolTensor, decompress, encode_infer_response, parse_infer_request)

INPUTS = [ProtocolTensor("input", (-1, 3, 4, 4))]
OUTPUTS = [ProtocolTensor("logits", (-1, 5))]


class FakeSession:
    """Doubles each sample's sum into 5 logits; records every batch it is given."""

    def __init__(self, fail_on: float | None = None, gate: threading.Event | None = None):
        self.batches: list[int] = []
        self.fail_on, self.gate = fail_on, gate

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail_on is not None and (x == self.fail_on).any():
            raise RuntimeError("engine failed")
        self.batches.append(len(x))
        s = x.reshape(len(x), -1).sum(1, keepdims=True)
        return [np.repeat(2 * s, 5, axis=1)]


def sample(value: float, n: int = 1) -> np.ndarray:
    return np.full((n, 3, 4, 4), value, np.float32)


def run(coro):
    return asyncio.run(coro)


def test_batcher_groups_concurrent_requests_and_gives_each_its_own_rows():
    session = FakeSession()

    async def main():
        b = Batcher("m", session, max_batch=4, max_delay_s=0.05, queue_size=64)
        await b.start()
        outs = await asyncio.gather(*(b.submit(sample(i, 1 + i % 2)) for i in range(12)))
        await b.stop()
        return outs

    outs = run(main())
    for i, (logits,) in enumerate(outs):
        assert logits.shape == (1 + i % 2, 5)
        np.testing.assert_array_equal(logits, np.full_like(logits, 2 * 48 * i))
    assert max(session.batches) <= 4 and sum(session.batches) == 18
    assert len(session.batches) < 12  # batched, not one call per request


def test_batcher_runs_an_oversized_request_alone_and_a_lone_request_after_the_delay():
    session = FakeSession()

    async def main():
        b = Batcher("m", session, max_batch=2, max_delay_s=0.01, queue_size=4)
        await b.start()
        (big,) = await b.submit(sample(1.0, 5))
        (one,) = await b.submit(sample(2.0))
        await b.stop()
        return big, one

    big, one = run(main())
    assert big.shape == (5, 5) and one.shape == (1, 5)
    assert session.batches == [5, 1]


def test_batcher_refuses_past_its_queue_and_drops_cancelled_requests():
    gate = threading.Event()
    session = FakeSession(gate=gate)

    async def main():
        b = Batcher("m", session, max_batch=1, max_delay_s=0, queue_size=2)
        await b.start()
        first = asyncio.create_task(b.submit(sample(1.0)))  # taken by the loop: the engine blocks on the gate
        await asyncio.sleep(0.05)
        queued = [asyncio.create_task(b.submit(sample(v))) for v in (2.0, 3.0)]
        await asyncio.sleep(0.05)
        with pytest.raises(Overloaded, match="retry after"):
            await b.submit(sample(4.0))
        assert b.depth == 2
        queued[0].cancel()  # its client left
        gate.set()
        results = await asyncio.gather(first, queued[1])
        await b.stop()
        return results

    results = run(main())
    assert [float(r[0][0, 0]) for r in results] == [2 * 48 * 1.0, 2 * 48 * 3.0]
    assert session.batches == [1, 1]  # the cancelled request never reached the engine


def test_batcher_passes_an_engine_failure_to_its_batch_and_keeps_serving():
    session = FakeSession(fail_on=7.0)

    async def main():
        b = Batcher("m", session, max_batch=1, max_delay_s=0, queue_size=4)
        await b.start()
        with pytest.raises(RuntimeError, match="engine failed"):
            await b.submit(sample(7.0))
        (after,) = await b.submit(sample(1.0))
        await b.stop()
        return after

    assert float(run(main())[0, 0]) == 96.0


def request_body(x: np.ndarray, binary: bool, **extra) -> tuple[bytes, str | None]:
    tensor = {"name": "input", "shape": list(x.shape), "datatype": "FP32"}
    if binary:
        tensor["parameters"] = {"binary_data_size": x.nbytes}
        head = json.dumps({"inputs": [tensor], **extra}).encode()
        return head + x.tobytes(), str(len(head))
    tensor["data"] = x.ravel().tolist()
    return json.dumps({"inputs": [tensor], **extra}).encode(), None


@pytest.mark.parametrize("binary", [True, False])
def test_protocol_reads_what_it_is_sent_and_writes_it_back(binary):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)
    body, header = request_body(x, binary, id="r1",
                                outputs=[{"name": "logits", "parameters": {"binary_data": binary, "classification": 2}}])
    req = parse_infer_request(body, header, INPUTS, OUTPUTS)
    np.testing.assert_array_equal(req.array, x)
    assert req.id == "r1" and req.outputs[0].class_count == 2
    logits = np.array([[0.1, 0.9, 0.5, 0.0, 0.2], [3.0, 1.0, 2.0, 0.0, 0.0]], np.float32)
    content, headers = encode_infer_response("m", req, {"logits": logits}, labels=list("abcde"))
    if binary:
        n = int(headers["inference-header-content-length"])
        head, raw = json.loads(content[:n]), content[n:]
        assert head["outputs"][0]["parameters"]["binary_data_size"] == len(raw)
        assert raw[4:4 + len("0.900000:1:b")] == b"0.900000:1:b"
    else:
        head = json.loads(content)
        assert head["outputs"][0]["data"] == ["0.900000:1:b", "0.500000:2:c", "3.000000:0:a", "2.000000:2:c"]
    assert head["id"] == "r1" and head["outputs"][0]["shape"] == [2, 2] and head["outputs"][0]["datatype"] == "BYTES"


@pytest.mark.parametrize("change, match", [
    (lambda r: r["inputs"][0].update(shape=[1, 3, 4, 5]), "takes shape"),
    (lambda r: r["inputs"][0].update(shape=[0, 3, 4, 4], data=[]), "takes shape"),
    (lambda r: r["inputs"][0].update(datatype="FP64"), "is FP32"),
    (lambda r: r["inputs"][0].update(name="image"), "takes the input"),
    (lambda r: r["inputs"].append(dict(r["inputs"][0])), "takes the input"),
    (lambda r: r["inputs"][0].update(data=[1.0] * 47), "needs 48 values"),
    (lambda r: r["inputs"][0].update(data=["a"] * 48), "not a list of numbers"),
    (lambda r: r["inputs"][0].update(data=[float("nan")] * 48), "NaN or infinity"),
    (lambda r: r["inputs"][0].pop("data"), "neither 'data'"),
    (lambda r: r["inputs"][0].update(parameters={"shared_memory_region": "x"}), "shared memory is not supported"),
    (lambda r: r.update(outputs=[{"name": "probs"}]), "no output 'probs'"),
    (lambda r: r.update(outputs=[{"name": "logits", "parameters": {"classification": -1}}]), "whole number"),
    (lambda r: r.pop("inputs"), "'inputs' list"),
])
def test_protocol_refuses_what_does_not_fit_the_model(change, match):
    body, _ = request_body(sample(1.0), binary=False)
    req = json.loads(body)
    change(req)
    with pytest.raises(ProtocolError, match=match) as e:
        parse_infer_request(json.dumps(req).encode(), None, INPUTS, OUTPUTS)
    assert e.value.status == 400


def test_protocol_refuses_binary_data_that_does_not_add_up():
    body, header = request_body(sample(1.0), binary=True)
    with pytest.raises(ProtocolError, match="no input claims"):
        parse_infer_request(body + b"\0" * 4, header, INPUTS, OUTPUTS)
    with pytest.raises(ProtocolError, match="binary_data_size"):
        parse_infer_request(body[:-4], header, INPUTS, OUTPUTS)
    with pytest.raises(ProtocolError, match="not a length"):
        parse_infer_request(body, str(len(body) + 1), INPUTS, OUTPUTS)


def test_decompress_bounds_what_a_small_body_can_become():
    assert decompress(gzip.compress(b"abc"), "gzip", 10) == b"abc"
    with pytest.raises(ProtocolError, match="over the server's limit") as e:
        decompress(gzip.compress(b"\0" * 10_000_000), "gzip", 1_000_000)  # 10 KB that inflate to 10 MB
    assert e.value.status == 413
    with pytest.raises(ProtocolError, match="not supported"):
        decompress(b"x", "br", 10)
    with pytest.raises(ProtocolError, match="cannot be decompressed"):
        decompress(b"not gzip", "gzip", 10)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=300),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                              lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
                                  st.sampled_from(["inputs", "outputs", "name", "shape", "datatype", "data",
                                                   "parameters", "binary_data_size", "classification", "id"]),
                                  kids, max_size=5), max_leaves=30).map(lambda v: json.dumps(v).encode())),
       st.one_of(st.none(), st.integers(-5, 400).map(str), st.text(max_size=4)))
def test_protocol_reader_fuzz_only_ever_answers_a_protocol_error(body, header):
    try:
        req = parse_infer_request(body, header, INPUTS, OUTPUTS)
    except ProtocolError as e:
        assert 400 <= e.status < 500 and str(e)
    else:
        assert req.array.shape[1:] == (3, 4, 4) and np.isfinite(req.array).all()


def test_protocol_refuses_a_batch_too_big_to_count_and_a_size_that_is_not_a_whole_number():
    body, header = request_body(sample(1.0), binary=True)
    req = json.loads(body[: int(header)])
    req["inputs"][0]["parameters"]["binary_data_size"] = 192.0
    head = json.dumps(req).encode()
    with pytest.raises(ProtocolError, match="binary_data_size"):
        parse_infer_request(head + sample(1.0).tobytes(), str(len(head)), INPUTS, OUTPUTS)
    req["inputs"][0].update(shape=[10**30, 3, 4, 4], parameters={"binary_data_size": 192})
    head = json.dumps(req).encode()
    with pytest.raises(ProtocolError, match="binary_data_size"):
        parse_infer_request(head + sample(1.0).tobytes(), str(len(head)), INPUTS, OUTPUTS)


def test_serve_refuses_bad_arguments_before_opening_anything(cli, tmp_path, t0_exports, monkeypatch):
    onnx = str(t0_exports["onnx"].artifact)
    cases = [
        ((str(tmp_path / "missing.onnx"),), "does not exist"),
        ((f"bad name={onnx}",), "not usable in a URL"),
        ((onnx, onnx), "name them apart"),
        ((onnx, "--engine", "litert"), "none of these is one"),
        ((onnx, "--token-file", str(tmp_path / "none")), "cannot read the token file"),
    ]
    (tmp_path / "empty").write_text("\n")
    cases.append(((onnx, "--token-file", str(tmp_path / "empty")), "it is empty"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        cases.append(((onnx, "--port", str(taken.getsockname()[1])), "cannot listen on 127.0.0.1"))
        for args, match in cases:
            r = cli("serve", *args)
            assert r.exit_code == 1 and match in r.output, (args, r.output)
            assert "Traceback" not in r.output
    for args, match in [(("--header-timeout", "0"), "--header-timeout must be more than 0 seconds"),
                        (("--body-timeout", "-1"), "--body-timeout must be more than 0 seconds"),
                        (("--keep-alive", "0"), "--keep-alive must be more than 0 seconds"),
                        (("--max-connections", "0"), "--max-connections must be at least 1"),
                        (("--max-connections", "100000000"), "over this process's limit")]:
        r = cli("serve", onnx, *args)
        assert r.exit_code == 1 and match in r.output and "Traceback" not in r.output, (args, r.output)
    monkeypatch.setattr("fnx.serve.server.NEEDS", ("starlette", "fnx_no_such_module"))
    r = cli("serve", onnx)
    assert r.exit_code == 1 and pip_install("serve") in r.output


def test_the_batching_note_suggests_dynamic_batch_only_where_the_exporter_makes_it():
    from fnx.serve.models import ServeConfig, batch_note

    config = ServeConfig(max_batch=8, max_delay_ms=2)
    for fmt in ("onnx", "openvino"):
        assert batch_note(fmt, 1, config).endswith("export with --dynamic-batch to batch more")
    note = batch_note("tflite", 1, config)
    assert "export with --dynamic-batch" not in note and "a tflite export keeps the batch it was exported with" in note
    assert note.endswith("makes ONNX and OpenVINO artifacts that batch more)")
    assert batch_note("tflite", 4, config) == "fixed batch 4 in the graph: requests are batched up to 4"
    assert batch_note("onnx", None, config) == "dynamic: up to 8 samples or 2 ms"


def test_the_dynamic_batch_formats_are_the_ones_the_exporter_accepts_it_for():
    from fnx.errors import FnxError
    from fnx.exporter import ExportOptions
    from fnx.exporter.formats import FORMATS
    from fnx.formats import file_formats

    accepts = set()
    for name, fmt in FORMATS.items():
        precision = next(p for p in ("fp32", "fp16", "int8") if fmt.makes(p))  # ethos-u makes int8 only
        try:
            fmt.check(ExportOptions(formats=(name,), precision=precision, dynamic_batch=True))
            accepts.add(name)
        except FnxError as e:
            assert "--dynamic-batch" in str(e), (name, e)
    assert accepts == {name for name, f in file_formats().items() if f.dynamic_batch} >= {"onnx", "openvino"}


class FakeLimits:
    """resource.getrlimit/setrlimit for RLIMIT_NOFILE with a given (soft, hard); setrlimit may refuse."""

    def __init__(self, soft: int, hard: int, refuse: bool = False):
        self.limits, self.refuse = (soft, hard), refuse

    def getrlimit(self, which):
        return self.limits

    def setrlimit(self, which, limits):
        if self.refuse:
            raise ValueError("not allowed")
        self.limits = limits


@pytest.mark.parametrize("soft, hard, refuse, requested, want", [
    (1024, 4096, False, None, (1024, 4096, 1024)),  # raised to the hard limit; DEFAULT_MAX
    (1024, 4096, True, None, (1024 - 144, 1024, None)),  # not allowed to raise: below the soft limit
    (256, 256, False, None, (112, 256, None)),
    (256, 256, False, 50, (50, 256, None)),
])
def test_the_connection_budget_stays_below_the_descriptor_limit(monkeypatch, soft, hard, refuse, requested, want):
    import resource

    from fnx.serve.budget import HEALTH_LANE, RESERVE, connection_budget

    fake = FakeLimits(soft, hard, refuse)
    monkeypatch.setattr(resource, "getrlimit", fake.getrlimit)
    monkeypatch.setattr(resource, "setrlimit", fake.setrlimit)
    b = connection_budget(requested)
    assert (b.max_connections, b.descriptor_limit, b.raised_from) == want
    assert b.max_connections + RESERVE + HEALTH_LANE <= b.descriptor_limit
    assert f"up to {want[0]} connections; descriptor limit {want[1]}" in b.describe()


def test_the_connection_budget_refuses_what_the_limit_cannot_hold(monkeypatch):
    import resource

    from fnx.errors import FnxError
    from fnx.serve.budget import connection_budget

    monkeypatch.setattr(resource, "getrlimit", FakeLimits(256, 256).getrlimit)
    with pytest.raises(FnxError, match="pass --max-connections 112 or less"):
        connection_budget(113)
    monkeypatch.setattr(resource, "getrlimit", FakeLimits(100, 100).getrlimit)
    with pytest.raises(FnxError, match=r"open-file limit is 100 .*ulimit -n"):
        connection_budget(None)


def test_log_throttle_lets_the_first_through_and_summarizes_repeats_once_per_interval():
    import logging

    from fnx.serve.logs import Throttle, install

    now = [0.0]
    throttle = Throttle(interval_s=60, clock=lambda: now[0])
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logger = logging.getLogger("fnx.test.throttle")
    logger.addHandler(handler)
    logger.propagate = False
    remove = install(throttle, ["fnx.test.throttle"])
    try:
        for fd in range(1000):  # one kind: numbers (a descriptor, an address) are not part of it
            try:
                raise OSError(24, "Too many open files")
            except OSError:
                logger.error("socket.accept() out of system resource\nsocket: <fd=%d>", fd, exc_info=True)
        logger.warning("Invalid HTTP request received.")
        assert seen == ["socket.accept() out of system resource\nsocket: <fd=0>", "Invalid HTTP request received."]
        now[0] = 30.0
        throttle.flush()
        assert len(seen) == 2  # the interval is not over
        now[0] = 61.0
        throttle.flush()
        assert len(seen) == 3 and seen[2].startswith("socket.accept() out of system resource (repeated 999 more times")
        throttle.flush()
        now[0] = 200.0
        throttle.flush()
        assert len(seen) == 3  # nothing more repeated: no more summaries
        logger.warning("Invalid HTTP request received.")  # quiet for an interval: logged in full again
        logger.warning("Invalid HTTP request received.")
        assert seen[3:] == ["Invalid HTTP request received."]
    finally:
        remove()  # flushes what is left, whatever the interval
        logger.removeHandler(handler)
    assert seen[4:] == ["Invalid HTTP request received. (repeated 1 more time in 0 s; fnx serve logs a repeated "
                        "message once per 60 s)"]
    assert throttle not in logger.filters
