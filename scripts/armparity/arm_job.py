"""Runs inside an ARM chroot (aarch64 or armv7l; python 3.11, numpy 1 or 2): one process, every artifact of its job.

argv[1] is the job's JSON. runner "session" uses fnx.runtime (the fnx wheel); runner "classify" imports
examples/classify.py with no fnx on the path; runner "cli" runs `fnx run --json` on image files (fnx's CLI); runner
"serve" starts `fnx serve` on 127.0.0.1 and sends one infer request (binary tensors) with the standard library.
Writes each artifact's raw outputs (or the CLI's JSON) and a result JSON.
"""

import contextlib
import importlib.util
import io
import json
import platform
import sys
import time

import numpy as np



def serve_once(model, x, engine, it):
    """Start `fnx serve MODEL` on a free loopback port, infer x over HTTP, stop it with SIGTERM; return the outputs."""
    import re
    import signal
    import subprocess
    import urllib.request

    cmd = [sys.executable, "-m", "fnx", "serve", "m=" + model, "--port", "0", "--threads", "1", "--device", "cpu"]
    proc = subprocess.Popen(cmd + (["--engine", engine] if engine else []), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    log = []
    try:
        for line in proc.stdout:
            log.append(line)
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                break
        else:
            raise RuntimeError("fnx serve did not start: " + "".join(log)[-800:])
        url = f"http://127.0.0.1:{m.group(1)}/v2/models/m"
        for _ in range(600):  # ready once the batcher runs (the socket is bound before the model opens)
            try:
                with urllib.request.urlopen(url + "/ready", timeout=10) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        with urllib.request.urlopen(url, timeout=30) as r:
            meta = json.load(r)
        head = json.dumps({"inputs": [{"name": meta["inputs"][0]["name"], "shape": list(x.shape), "datatype": "FP32",
                                       "parameters": {"binary_data_size": x.nbytes}}],
                           "parameters": {"binary_data_output": True}}).encode()
        req = urllib.request.Request(url + "/infer", data=head + x.astype(np.float32).tobytes(), method="POST",
                                     headers={"Inference-Header-Content-Length": str(len(head)),
                                              "Content-Type": "application/octet-stream"})
        with urllib.request.urlopen(req, timeout=600) as r:
            n, body = int(r.headers["Inference-Header-Content-Length"]), r.read()
        out = json.loads(body[:n])["outputs"][0]
        it["engine"] = meta["parameters"]["engine"]
        return np.frombuffer(body[n:], np.float32).reshape(out["shape"])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = "killed"
        if rc != 0:
            raise RuntimeError(f"fnx serve exited {rc} after SIGTERM: " + "".join(log + [proc.stdout.read()])[-800:])


job = json.load(open(sys.argv[1]))
res = {"machine": platform.machine(), "numpy": np.__version__, "items": []}
if job["runner"] in ("session", "cli", "serve"):
    import fnx
    import fnx.runtime

    res["fnx"] = fnx.__file__
else:
    res["fnx_on_path"] = importlib.util.find_spec("fnx") is not None
    spec = importlib.util.spec_from_file_location("classify", job["classify"])
    classify = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(classify)
for a in job["artifacts"]:
    it, t = {"name": a["name"]}, time.time()
    try:
        if job["runner"] == "session":
            s = fnx.runtime.load(a["model"], device="cpu", threads=1, engine=job.get("engine"))
            np.save(a["out"], s.run(np.load(a["x"]))[0])
            it["engine"] = s.engine_label
        elif job["runner"] == "serve":
            np.save(a["out"], serve_once(a["model"], np.load(a["x"]), job.get("engine"), it))
        elif job["runner"] == "cli":
            from fnx.cli import app

            buf = io.StringIO()
            argv = ["run", a["model"], *job["images"], "--json", "--threads", "1", "--preprocess", "exact"]
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
                try:
                    rc = app(argv + (["--engine", job["engine"]] if job.get("engine") else []), standalone_mode=False)
                except SystemExit as e:
                    rc = e.code
            if rc:
                raise RuntimeError(f"fnx run exited {rc}")
            out = json.loads(buf.getvalue())
            it["top1"] = [p["top"][0]["index"] for p in out["predictions"]]
            it["engine"] = out["engine"]
        else:
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                rc = classify.main([a["model"], "--input-npy", a["x"], "--raw-out", a["out"], "--threads", "1"])
            text = buf.getvalue()
            if rc:
                raise RuntimeError(f"classify.py exited {rc}: {text.strip()[-400:]}")
            it["engine"] = text.split(" on ", 1)[1].split(",", 1)[0]
        it["ok"] = True
    except BaseException as e:
        it.update(ok=False, error=f"{type(e).__name__}: {e}"[:600])
    it["seconds"] = round(time.time() - t, 1)
    res["items"].append(it)
if job.get("pre_out"):  # classify.py's own preprocessing of image files, on aarch64 Pillow
    x = np.stack([classify.preprocess(p, job["spec"]) for p in job["images"]])
    np.save(job["pre_out"], x)
leaked = {m.split(".")[0] for m in sys.modules} & {"torch", "tensorflow"} - set(job.get("allowed", []))
if job["runner"] == "classify" and "fnx" in sys.modules:
    leaked.add("fnx")
res["leaked"] = sorted(leaked)
json.dump(res, open(job["result"], "w"))
