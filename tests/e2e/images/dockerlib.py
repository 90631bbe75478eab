"""A thin wrapper over the Docker CLI for the container tests (no SDK dependency)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[3]
IMAGES_SH = ROOT / "tests" / "e2e" / "images.sh"
DOCKERD_SH = ROOT / "tests" / "e2e" / "docker" / "dockerd.sh"
LABEL = "strata.e2e"  # every container and network the tests make carries it
VERSION = "0.1.0"
# images.sh tags the service images with $STRATA_IMAGE_TAG (default: the version), so that
# parallel work on one Docker engine does not test another branch's images.
TAG = os.environ.get("STRATA_IMAGE_TAG") or VERSION
SERVICE_IMAGES = {svc: f"strata-{svc}:{TAG}" for svc in ("critical", "ml", "cache")}
POSTGRES_IMAGE = "strata-test/postgres:15"
#: The chart's PostgreSQL image (k8s/postgres), named as images.sh names it.
PATRONI_VERSION = next(
    line.split("==", 1)[1].strip()
    for line in (ROOT / "k8s" / "postgres" / "requirements.txt").read_text().splitlines()
    if line.startswith("patroni[kubernetes]==")
)
POSTGRESQL_IMAGE = os.environ.get("STRATA_POSTGRESQL_IMAGE") or (
    f"strata-postgresql:15-patroni{PATRONI_VERSION}"
    + (f"-{os.environ['STRATA_IMAGE_TAG']}" if os.environ.get("STRATA_IMAGE_TAG") else "")
)
REDIS_IMAGE = "strata-test/redis:7"

# How the Helm chart runs every service container.
HARDENED = (
    "--user", "10001:10001",
    "--read-only",
    "--tmpfs", "/tmp:rw,nosuid,nodev,size=64m",
    "--cap-drop", "ALL",
    "--security-opt", "no-new-privileges",
)  # fmt: skip


def docker_binary() -> str | None:
    """Debian's client (it has BuildKit) if installed, else whatever ``docker`` is on PATH."""
    explicit = os.environ.get("DOCKER")
    if explicit:
        return explicit
    if Path("/usr/bin/docker").exists():
        return "/usr/bin/docker"
    return shutil.which("docker")


class DockerError(RuntimeError):
    """A docker command failed; the message carries its output."""


class ContainerExitedError(AssertionError):
    """A container that should be running has exited (polling stops at once)."""


def docker(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run one docker CLI command and capture its output."""
    binary = docker_binary()
    if binary is None:
        raise DockerError("no docker client")
    proc = subprocess.run(
        [binary, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise DockerError(
            f"docker {' '.join(args[:6])} ... exited {proc.returncode}:\n"
            f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        )
    return proc


def wait_for(
    what: str, probe: Callable[[], Any], *, deadline: float = 60, interval: float = 0.2
) -> Any:
    """Poll ``probe`` until it returns a truthy value, or fail after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    last: Any = None
    while True:
        try:
            last = probe()
        except ContainerExitedError:
            raise
        except Exception as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() >= end:
            raise AssertionError(f"timed out after {deadline}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


@dataclass
class Container:
    """A container the tests started."""

    name: str
    image: str
    port: int | None = None  # the loopback port 8000 is published on
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        assert self.port is not None, f"{self.name} publishes no port"
        return f"http://127.0.0.1:{self.port}"

    def inspect(self) -> dict[str, Any]:
        return json.loads(docker("inspect", self.name).stdout)[0]

    def state(self) -> dict[str, Any]:
        return self.inspect()["State"]

    def logs(self, tail: int = 80) -> str:
        proc = docker("logs", "--tail", str(tail), self.name, check=False)
        return proc.stdout + proc.stderr

    def exec(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return docker("exec", self.name, *cmd, check=check)

    def ip(self, network: str) -> str:
        return str(self.inspect()["NetworkSettings"]["Networks"][network]["IPAddress"])

    def assert_running(self) -> None:
        state = self.state()
        if not state["Running"]:
            raise ContainerExitedError(
                f"container {self.name} exited with {state['ExitCode']}:\n{self.logs()}"
            )


class Stack:
    """Containers and one user-defined network, all labelled with this run's id."""

    def __init__(self) -> None:
        self.run_id = uuid.uuid4().hex[:8]
        self.network = f"strata-e2e-{self.run_id}"
        self.labels = ("--label", f"{LABEL}=images", "--label", f"{LABEL}.run={self.run_id}")
        self.containers: list[Container] = []

    def create_network(self) -> None:
        docker("network", "create", *self.labels, self.network)

    def name(self, role: str) -> str:
        return f"strata-e2e-{self.run_id}-{role}"

    def run(
        self,
        role: str,
        image: str,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        options: Iterable[str] = (),
        publish: bool = False,
        alias: str | None = None,
    ) -> Container:
        """``docker run -d`` on the network; ``publish`` maps 8000 to a free loopback port."""
        name = self.name(role)
        env = dict(env or {})
        cmd = ["run", "-d", "--name", name, *self.labels, "--network", self.network]
        if alias:
            cmd += ["--network-alias", alias]
        if publish:
            cmd += ["--publish", "127.0.0.1::8000"]
        for key, value in env.items():
            cmd += ["--env", f"{key}={value}"]
        cmd += [*options, image, *args]
        docker(*cmd)
        container = Container(name, image, env=env)
        self.containers.append(container)
        if publish:
            mapping = docker("port", name, "8000/tcp").stdout.split()[0]
            container.port = int(mapping.rsplit(":", 1)[1])
        return container

    def run_to_completion(
        self,
        role: str,
        image: str,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        options: Iterable[str] = (),
        timeout: float = 180,
    ) -> tuple[int, str]:
        """Run a one-shot container (e.g. a migration); return its exit code and logs."""
        container = self.run(role, image, args, env=env, options=options)
        code = int(docker("wait", container.name, timeout=timeout).stdout.strip())
        return code, container.logs(tail=200)

    def remove(self, container: Container) -> None:
        docker("rm", "-f", "-v", container.name, check=False)
        if container in self.containers:
            self.containers.remove(container)

    def cleanup(self) -> list[str]:
        """Remove every container and the network of this run; return what was left over."""
        for container in list(self.containers):
            self.remove(container)
        ids = docker(
            "ps", "-aq", "--filter", f"label={LABEL}.run={self.run_id}", check=False
        ).stdout.split()
        if ids:
            docker("rm", "-f", "-v", *ids, check=False)
        docker("network", "rm", self.network, check=False)
        left = docker(
            "ps", "-aq", "--filter", f"label={LABEL}.run={self.run_id}", check=False
        ).stdout.split()
        nets = docker(
            "network", "ls", "-q", "--filter", f"label={LABEL}.run={self.run_id}", check=False
        ).stdout.split()
        return left + nets


def remove_stale() -> None:
    """Remove containers and networks left by an earlier, interrupted run of these tests."""
    ids = docker("ps", "-aq", "--filter", f"label={LABEL}=images", check=False).stdout.split()
    if ids:
        docker("rm", "-f", "-v", *ids, check=False)
    nets = docker(
        "network", "ls", "-q", "--filter", f"label={LABEL}=images", check=False
    ).stdout.split()
    for net in nets:
        docker("network", "rm", net, check=False)


def wait_ready(container: Container, *, deadline: float = 90) -> None:
    """Poll ``/readyz`` until 200; fail early with the logs if the container exits."""

    def probe() -> bool:
        container.assert_running()
        return requests.get(f"{container.url}/readyz", timeout=2).status_code == 200

    try:
        wait_for(f"{container.name} /readyz", probe, deadline=deadline)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\n--- logs of {container.name} ---\n{container.logs()}"
        ) from None
