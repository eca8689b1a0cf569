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

LIMITED = ("import resource, runpy, sys; n = int(sys.argv.pop(1)); resource.setrlimit(resource.RLIMIT_NOFILE, (n, n)); "
           "runpy.run_module('fnx', run_name='__main__', alter_sys=True)")
# `python -m fnx` under an open-file limit, set by the child itself (a preexec_fn would run Python between fork and
# exec, which can deadlock a threaded parent such as pytest after JAX started)


class ServerProcess:
    """`python -m fnx serve ARGS --port 0`; `.url` once ready; `stop()` sends SIGTERM and returns the exit code.
    nofile: the server's open-file limit (soft and hard), to test it under a low one."""

    def __init__(self, *args: str, ready_timeout: float = 60.0, omp_threads: int = 1, nofile: int | None = None):
        env = {**os.environ, "OMP_NUM_THREADS": str(omp_threads), "PYTHONUNBUFFERED": "1"}
        start = ["-m", "fnx"] if nofile is None else ["-c", LIMITED, str(nofile)]
        self.proc = subprocess.Popen([sys.executable, *start, "serve", *args, "--host", "127.0.0.1", "--port", "0"],
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

    def descriptors(self) -> int:
        """The server's open descriptors now (Linux: /proc)."""
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.kill()
