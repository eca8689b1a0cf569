"""`--weights official` and URLs, against a local HTTP server on 127.0.0.1."""

import http.server
import threading
from pathlib import Path

import pytest
import torch

from fnx.errors import FnxError
from fnx.models import create_model, get_variant
from fnx.models.weights import cache_dir


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict = {}
    truncate: set = set()

    def do_GET(self):  # noqa: N802
        name = self.path.rsplit("/", 1)[-1]
        if name not in self.files:
            self.send_error(404)
            return
        data = self.files[name]
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 3] if name in self.truncate else data)

    def log_message(self, *a):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv("FNX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FNX_OFFICIAL_URL_BASE", f"http://127.0.0.1:{httpd.server_address[1]}/releases/v1.0")
    _Handler.files, _Handler.truncate = {}, set()
    yield _Handler, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _checkpoint_bytes(tmp_path: Path) -> tuple[bytes, torch.nn.Module]:
    torch.manual_seed(3)
    model = create_model("t0")
    p = tmp_path / "src.pth"
    torch.save(model.state_dict(), p)
    return p.read_bytes(), model


def test_official_download_is_cached_with_sha256(server, tmp_path):
    handler, _ = server
    data, ref = _checkpoint_bytes(tmp_path)
    fname = get_variant("t0").official_file
    handler.files[fname] = data
    info: dict = {}
    m = create_model("fasternet-t0", weights="official", source_out=info)
    cached = info["weights"].path
    assert cached.read_bytes() == data and cached.name == fname and cached.is_relative_to(cache_dir())
    import hashlib

    digest = hashlib.sha256(data).hexdigest()
    assert cached.with_name(fname + ".sha256").read_text().split()[0] == digest
    assert info["weights"].sha256 == digest and info["weights"].kind == "official"
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(m(x), ref(x))
    # the second call is served from the cache, even with the server gone
    handler.files.clear()
    create_model("fasternet-t0", weights="official")


def test_truncated_download_leaves_nothing_in_cache(server, tmp_path):
    handler, _ = server
    data, _ = _checkpoint_bytes(tmp_path)
    fname = get_variant("t0").official_file
    handler.files[fname] = data
    handler.truncate.add(fname)
    with pytest.raises(FnxError, match="truncated|broke off"):
        create_model("t0", weights="official")
    assert not [p for p in cache_dir().rglob("*") if p.is_file()]
    handler.truncate.clear()  # the server recovers: the next call downloads it (nothing bad was kept)
    create_model("t0", weights="official")


def test_url_weights_and_404(server, tmp_path):
    handler, base = server
    data, _ = _checkpoint_bytes(tmp_path)
    handler.files["mine.pth"] = data
    create_model("t0", weights=f"{base}/files/mine.pth")
    with pytest.raises(FnxError, match="could not download"):
        create_model("t0", weights=f"{base}/files/missing.pth")


def test_offline_names_weights_path(monkeypatch, tmp_path):
    monkeypatch.setenv("FNX_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("FNX_OFFICIAL_URL_BASE", "http://127.0.0.1:9/none")  # discard port: refused
    with pytest.raises(FnxError, match="--weights PATH"):
        create_model("t0", weights="official")


def test_no_weights_offline_is_an_error_with_the_fix_and_writes_nothing(monkeypatch, tmp_path, cli):
    """The default-weights policy (official, else an error) is the same for the CLI and the Python API."""
    from fnx.exporter import ExportOptions, export_model

    monkeypatch.setenv("FNX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FNX_OFFICIAL_URL_BASE", "http://127.0.0.1:9/none")  # discard port: refused
    r = cli("export", "fasternet-t2", "--format", "tflite", "--out", tmp_path / "o")
    assert r.exit_code == 1 and "Traceback" not in r.output
    text = " ".join(r.output.split())
    assert "--weights random" in text and "--weights PATH|URL|hf-hub:ORG/REPO|official" in text
    assert "mirror hf-hub:timm/fasternet_t2.in1k" in text  # the release, then its Hub mirror, were tried
    assert not (tmp_path / "o").exists()
    with pytest.raises(FnxError, match="--weights random"):
        export_model("t2", ExportOptions(out_dir=tmp_path / "api"))
    assert not (tmp_path / "api").exists()


def test_no_weights_uses_the_official_ones_when_they_can_be_had(server, tmp_path):
    from fnx.exporter import ExportOptions, export_model

    sd = create_model("t0", num_classes=1000).state_dict()
    buf = tmp_path / "w.pth"
    torch.save(sd, buf)
    _Handler.files[get_variant("t0").official_file] = buf.read_bytes()
    (res,) = export_model("t0", ExportOptions(formats=("onnx",), img_size=64, out_dir=tmp_path / "o"))
    assert res.manifest.weights.kind == "official" and res.manifest.weights.url.startswith("http://127.0.0.1")


def test_same_file_name_under_two_urls_is_two_cache_entries(server, tmp_path):
    handler, base = server
    a, model_a = _checkpoint_bytes(tmp_path)
    torch.manual_seed(4)
    b_model = create_model("t0")
    torch.save(b_model.state_dict(), tmp_path / "b.pth")
    handler.files["w.pth"] = a
    ia, ib = {}, {}
    create_model("t0", weights=f"{base}/a/w.pth", source_out=ia)
    handler.files["w.pth"] = (tmp_path / "b.pth").read_bytes()
    mb = create_model("t0", weights=f"{base}/b/w.pth", source_out=ib)
    assert ia["weights"].path != ib["weights"].path and ia["weights"].sha256 != ib["weights"].sha256
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(mb(x), b_model(x))


def test_corrupt_cached_download_is_detected_and_fetched_again(server, tmp_path):
    handler, base = server
    good, _ = _checkpoint_bytes(tmp_path)
    handler.files["w.pth"] = good[: len(good) // 2]  # served whole, but the file itself is damaged
    handler.truncate.clear()
    with pytest.raises(FnxError, match="removed from the cache: run again"):
        create_model("t0", weights=f"{base}/w.pth")
    handler.files["w.pth"] = good
    create_model("t0", weights=f"{base}/w.pth")  # fetched afresh, not the damaged copy


def test_pinned_sha256(server, tmp_path):
    import hashlib

    handler, base = server
    data, _ = _checkpoint_bytes(tmp_path)
    handler.files["w.pth"] = data
    digest = hashlib.sha256(data).hexdigest()
    info = {}
    create_model("t0", weights=f"{base}/w.pth#sha256={digest}", source_out=info)
    assert info["weights"].sha256 == digest
    before = sorted(cache_dir().rglob("*"))
    with pytest.raises(FnxError, match="not the pinned"):
        create_model("t0", weights=f"{base}/other/w.pth#sha256={'0' * 64}")
    assert {p for p in cache_dir().rglob("*") if p.is_file()} == {p for p in before if p.is_file()}
    with pytest.raises(FnxError, match="#sha256="):
        create_model("t0", weights=f"{base}/w.pth#md5=abc")
