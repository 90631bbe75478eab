"""Run a service as a real server process (gunicorn or Sanic) for tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import requests

from services.devstack.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


class ServiceProcess:
    """``python -m services.<name> serve`` on a free port with the given environment.

    ``env`` holds the service's own variables (``STRATA_<NAME>_...``); the port, host,
    development environment and a private metrics directory are filled in.
    """

    def __init__(self, name: str, env: Mapping[str, str], tmp: Path, workers: int = 2) -> None:
        self.name = name
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        prefix = f"STRATA_{name.upper()}_"
        self.log_path = tmp / f"{name}-{self.port}.log"
        self.env = {
            **os.environ,
            f"{prefix}PORT": str(self.port),
            f"{prefix}HOST": "127.0.0.1",
            f"{prefix}ENVIRONMENT": "development",
            f"{prefix}WORKERS": str(workers),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp / f"prom-{name}-{self.port}"),
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> ServiceProcess:
        """Start and wait until ``/livez`` answers 200."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.name}", "serve"],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_live(timeout)
        return self

    def wait_live(self, timeout: float = 60.0) -> None:
        """Poll ``/livez`` until it answers 200 or the deadline passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log()}")
            try:
                if requests.get(f"{self.base_url}/livez", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not live after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        """What the server printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, sig: int) -> None:
        """Send a signal to the server's main process."""
        assert self.process is not None
        self.process.send_signal(sig)

    def __enter__(self) -> ServiceProcess:
        """``with ServiceProcess(...).start() as service:`` stops it on the way out."""
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait; SIGKILL the whole process group if it lingers. Returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        code = self.process.returncode
        # Leave no worker behind even if the master died first.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None
        return code
