"""A stand-in for the Hugging Face Hub's file endpoints on 127.0.0.1 (what `hf_hub_download` calls).

`HEAD|GET /{org}/{repo}/resolve/{revision}/{path}` with the Hub's headers (X-Repo-Commit, X-Linked-Etag,
X-Linked-Size) and error codes (RepoNotFound, RevisionNotFound, EntryNotFound); `Range` requests; a
file can be set to break off after a third of its bytes, a given number of times. Point HF_ENDPOINT at `url`.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
from dataclasses import dataclass, field


@dataclass
class Repo:
    """Commits (commit hash -> {path: bytes}) and refs (branch or tag -> commit hash)."""

    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)

    def commit(self, files: dict[str, bytes], ref: str = "main") -> str:
        """Add a commit holding files; point ref at it; return its hash."""
        sha = hashlib.sha1(repr(sorted((k, hashlib.sha256(v).hexdigest()) for k, v in files.items())).encode()
                           + str(len(self.commits)).encode()).hexdigest()
        self.commits[sha] = dict(files)
        self.refs[ref] = sha
        return sha


class HubStandIn:
    """Serves repos on 127.0.0.1 until stop(); `requests` logs (method, path); `truncate` maps a path to how many
    more GETs of it break off."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.truncate: dict[str, int] = {}
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def repo(self, repo_id: str) -> Repo:
        return self.repos.setdefault(repo_id, Repo())

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self):
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_HEAD(self):  # noqa: N802
                self._serve(body=False)

            def do_GET(self):  # noqa: N802
                self._serve(body=True)

            def _fail(self, status: int, code: str, commit: str | None = None) -> None:
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                if commit:
                    self.send_header("X-Repo-Commit", commit)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _serve(self, body: bool) -> None:
                hub.requests.append((self.command, self.path))
                parts = self.path.split("?")[0].strip("/").split("/")
                if len(parts) < 5 or parts[2] != "resolve":
                    return self._fail(404, "RepoNotFound")
                repo = hub.repos.get("/".join(parts[:2]))
                if repo is None:
                    return self._fail(401, "RepoNotFound")
                rev, path = parts[3], "/".join(parts[4:])
                commit = repo.refs.get(rev, rev if rev in repo.commits else None)
                if commit is None:
                    return self._fail(404, "RevisionNotFound")
                data = repo.commits[commit].get(path)
                if data is None:
                    return self._fail(404, "EntryNotFound", commit)
                start = 0
                if (rng := self.headers.get("Range", "")).startswith("bytes="):
                    start = int(rng[6:].split("-")[0] or 0)
                self.send_response(206 if start else 200)
                self.send_header("X-Repo-Commit", commit)
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("X-Linked-Etag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("Content-Length", str(len(data) - start))
                self.send_header("Connection", "close")
                self.end_headers()
                if body:
                    chunk = data[start:]
                    if hub.truncate.get(path, 0) > 0:  # breaks off, as a flaky network does
                        hub.truncate[path] -= 1
                        chunk = chunk[: len(chunk) // 3]
                    self.wfile.write(chunk)
                self.close_connection = True

            def log_message(self, *args) -> None:
                pass

        return Handler
