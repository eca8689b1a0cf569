"""A live `fnx serve` in a subprocess on 127.0.0.1 (a free port), for tests and benchmarks: started, waited for,
stopped (the standard library only)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request


class ServerProcess:
    """`python -m fnx serve ARGS --port 0`; `.url` once ready; `stop()` sends SIGTERM and returns the exit code."""

    def __init__(self, *args: str, ready_timeout: float = 60.0, omp_threads: int = 1):
        env = {**os.environ, "OMP_NUM_THREADS": str(omp_threads), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "fnx", "serve", *args, "--host", "127.0.0.1", "--port", "0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.lines: list[str] = []
        self._found = threading.Event()
        self.port: int | None = None
        threading.Thread(target=self._read, daemon=True).start()
        if not self._found.wait(ready_timeout) or self.port is None:
            self.kill()
            raise AssertionError("fnx serve did not start:\n" + self.log)
        self.url = f"127.0.0.1:{self.port}"
        self.polls = 0  # requests this helper made that the server answered (they count in its total)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://{self.url}/v2/health/ready", timeout=2):
                    self.polls += 1
                    return
            except urllib.error.HTTPError:  # answered, not ready yet
                self.polls += 1
            except OSError:
                pass
            time.sleep(0.05)
        self.kill()
        raise AssertionError("fnx serve never became ready:\n" + self.log)

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                self._found.set()
        self._found.set()  # the process ended (an error before listening): stop waiting

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def http(self, path: str) -> str:
        return f"http://{self.url}{path}"

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.kill()
