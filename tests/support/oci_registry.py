"""A real OCI registry for tests: Debian's ``docker-registry`` (distribution 2.8) on loopback.

``docker-registry serve CONFIG`` runs with a config of ours: a free 127.0.0.1 port, storage
in a temp directory, no auth, plain HTTP. The package's own service is never started
(tests/e2e/packages.sh installs it with services kept stopped). ``OciRegistry`` starts the
process, waits until ``GET /v2/`` answers 200, and stops it (by its pid) on ``stop()``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

import pytest
import requests
import yaml

from services.devstack.ports import free_port

BINARY = "/usr/bin/docker-registry"
#: Where the binary comes from, for skip and failure messages.
PACKAGE_HINT = "Debian package `docker-registry`: bash tests/e2e/packages.sh docker-registry"


def registry_for_test(work: Path) -> OciRegistry:
    """A registry (not yet started: use it as a context manager) storing in ``work``.

    Skips the calling test without docker-registry, unless CI requires it
    (``STRATA_REQUIRE_DOCKER_REGISTRY=1``: then it fails).
    """
    binary = registry_binary()
    if binary is None:
        why = f"docker-registry is not installed ({PACKAGE_HINT})"
        if os.environ.get("STRATA_REQUIRE_DOCKER_REGISTRY") == "1":
            pytest.fail(why)
        pytest.skip(why)
    work.mkdir(parents=True, exist_ok=True)
    return OciRegistry(binary, work)


def registry_binary() -> str | None:
    """Path of docker-registry ($STRATA_DOCKER_REGISTRY, /usr/bin, PATH), or None."""
    for candidate in (os.environ.get("STRATA_DOCKER_REGISTRY"), BINARY):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("docker-registry")


class OciRegistry:
    """``docker-registry serve`` on ``127.0.0.1:<free port>`` with storage under ``workdir``.

    ``addr`` (``ip:port``) listens elsewhere, and ``storage`` shares another instance's
    storage: the kind proof serves one storage on loopback (pushes: the Docker engine speaks
    plain HTTP to 127.0.0.0/8 only) and on the kind network's gateway (the node's pulls).
    """

    def __init__(
        self,
        binary: str,
        workdir: Path,
        addr: str | None = None,
        storage: Path | None = None,
        read_only: bool = False,
    ) -> None:
        self.binary = binary
        self.workdir = workdir
        self.host = addr or f"127.0.0.1:{free_port()}"
        self.port = int(self.host.rsplit(":", 1)[1])
        self.storage = storage or workdir / "storage"
        self.read_only = read_only
        self.log_path = workdir / "registry.log"
        self.process: subprocess.Popen[bytes] | None = None

    def _config(self) -> Path:
        config = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage)},
                "delete": {"enabled": True},
            },
            "http": {"addr": self.host, "headers": {"X-Content-Type-Options": ["nosniff"]}},
        }
        if self.read_only:  # pulls only (distribution's maintenance mode)
            config["storage"]["maintenance"] = {"readonly": {"enabled": True}}
        path = self.workdir / "config.yml"
        path.write_text(yaml.safe_dump(config))
        return path

    def start(self, timeout: float = 30.0) -> OciRegistry:
        """Start the registry and wait until its API answers."""
        config = self._config()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "serve", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"docker-registry exited ({self.process.returncode}):\n{self.log()}"
                )
            try:
                if requests.get(f"http://{self.host}/v2/", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"docker-registry did not answer in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        """What the registry printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tags(self, repository: str) -> list[str]:
        """The tags the registry holds for ``repository`` (its ``/v2/<repo>/tags/list``)."""
        resp = requests.get(f"http://{self.host}/v2/{repository}/tags/list", timeout=5)
        resp.raise_for_status()
        return sorted(resp.json().get("tags") or [])

    def stop(self) -> None:
        """SIGTERM the process this object started; SIGKILL it after 10 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> OciRegistry:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
