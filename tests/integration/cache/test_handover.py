"""The chart's handover of a stopping Redis master, run against a real Sentinel set.

``charts/strata/files/redis-handover.sh`` is the preStop hook of every Redis pod in sentinel
mode. It runs here as the pod runs it (``sh``, ``redis-cli``), against loopback servers
(tests/support/sentinel.py): three Sentinels, a master and two replicas. What the pod's
wrapper derives from the chart (this node's name, the other Sentinels, the passwords) is
given through the same environment variables.

Checked: a master hands over to a replica with writers running and no acknowledged write is
lost, also when Redis and the Sentinels serve TLS only (redis.tls.server: HANDOVER_TLS_CA);
a replica, or a master whose replicas cannot catch up in time, stops without a failover and
leaves no write paused.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from redis.sentinel import Sentinel

from tests.integration.cache.conftest import FAILOVER_REPORT
from tests.support.sentinel import MASTER_NAME, SentinelSet, wait_until
from tests.support.testca import TestCa

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[3] / "charts" / "strata" / "files" / "redis-handover.sh"
# Long enough that Sentinel never fails over on its own during a test on a busy machine: any
# switch seen here is the handover's.
DOWN_AFTER_MS = 10_000


@pytest.fixture
def sentinel_set() -> Iterator[SentinelSet]:
    """A fresh set per test: a handover changes the master for good."""
    servers = SentinelSet(down_after_ms=DOWN_AFTER_MS).start()
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture
def open_sentinel_set() -> Iterator[SentinelSet]:
    """Redis and Sentinels without passwords (the chart with auth disabled)."""
    servers = SentinelSet(password="", sentinel_password="", down_after_ms=DOWN_AFTER_MS).start()
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture
def tls_sentinel_set(test_ca: TestCa) -> Iterator[SentinelSet]:
    """Redis and Sentinels serving TLS only, as the chart's sentinel mode with redis.tls.server."""
    servers = SentinelSet(
        down_after_ms=DOWN_AFTER_MS, tls=test_ca.issue("handover"), sentinel_tls=True
    ).start()
    try:
        yield servers
    finally:
        servers.stop()


def handover(
    servers: SentinelSet, port: int, timeout: int = 10, master: str = MASTER_NAME
) -> subprocess.CompletedProcess[str]:
    """Run the hook for the node on ``port`` as its pod would (``sh`` from the chart's file)."""
    env = {
        **os.environ,
        "HANDOVER_SELF": f"127.0.0.1 {port}",
        "HANDOVER_SENTINELS": " ".join(f"127.0.0.1:{p}" for p in servers.sentinel_ports),
        "HANDOVER_MASTER": master,
        "HANDOVER_PORT": str(port),
        "HANDOVER_TIMEOUT": str(timeout),
        "REDISCLI_AUTH": servers.password,
        "HANDOVER_SENTINEL_AUTH": servers.sentinel_password,
        # What the chart exports with redis.tls.server (the CA beside the key pair).
        "HANDOVER_TLS_CA": servers.tls.ca_file if servers.tls else "",
    }
    return subprocess.run(
        ["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=timeout + 20
    )


@dataclass
class Writers:
    """Two threads SETting unique keys through Sentinel discovery, as the cache service does."""

    servers: SentinelSet
    acked: dict[str, str] = field(default_factory=dict)
    failed: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(2)]

    def run(self) -> None:
        sentinel = Sentinel(
            [("127.0.0.1", p) for p in self.servers.sentinel_ports],
            sentinel_kwargs=self.servers.sentinel_kwargs(),
            **self.servers.node_kwargs(),
        )
        client = sentinel.master_for(MASTER_NAME)
        while not self.stop.is_set():
            key = f"ho-{uuid.uuid4().hex}"
            try:
                ok = client.set(key, key)
            except redis.RedisError:
                ok = False
            with self.lock:
                if ok:
                    self.acked[key] = key
                else:
                    self.failed += 1

    def __enter__(self) -> Writers:
        for t in self.threads:
            t.start()
        wait_until("writes acknowledged", lambda: len(self.acked) >= 200, timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(10)


@pytest.mark.parametrize("servers", ["sentinel_set", "open_sentinel_set", "tls_sentinel_set"])
def test_a_stopping_master_hands_over_and_loses_no_acknowledged_write(
    servers: str, request: pytest.FixtureRequest
) -> None:
    sentinel_set: SentinelSet = request.getfixturevalue(servers)
    old = sentinel_set.master_port()
    with Writers(sentinel_set) as writers:
        before = len(writers.acked)
        started = time.monotonic()
        done = handover(sentinel_set, old)
        took = time.monotonic() - started
        assert done.returncode == 0, done.stderr
        assert "handed over to 127.0.0.1" in done.stderr, done.stderr
        new = sentinel_set.master_port()
        assert new != old
        # The service side: writes reach the new master again.
        wait_until("writes after the handover", lambda: len(writers.acked) > before + 200, 30)
    sentinel_set.wait_settled(new, timeout=60)
    with sentinel_set.node_at(old).client() as client:
        assert client.info("replication")["role"] == "slave"
    with sentinel_set.node_at(new).client() as client:
        keys = list(writers.acked)
        stored: list[bytes | None] = []
        for at in range(0, len(keys), 1000):
            stored += client.mget(keys[at : at + 1000])
    missing = [k for k, v in zip(keys, stored, strict=True) if v != k.encode()]
    auth = "with" if sentinel_set.password else "without"
    tls = ", TLS only" if sentinel_set.tls else ""
    FAILOVER_REPORT.append(
        f"handover ({auth} passwords{tls}): {took:.2f}s; {len(keys)} writes acknowledged, "
        f"{writers.failed} failed (never acknowledged), {len(missing)} acknowledged missing"
    )
    assert missing == []


def test_a_replica_stops_without_a_failover(sentinel_set: SentinelSet) -> None:
    master = sentinel_set.master_port()
    replica = next(n.port for n in sentinel_set.nodes if n.port != master)
    done = handover(sentinel_set, replica)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert sentinel_set.master_port() == master
    with sentinel_set.node_at(master).client() as client:
        # Not paused: a write answers at once (the client's timeout is 2 s).
        assert client.set("after-replica-handover", "1")


def test_replicas_that_cannot_catch_up_mean_no_failover_and_no_paused_write(
    sentinel_set: SentinelSet,
) -> None:
    master = sentinel_set.master_port()
    node = sentinel_set.node_at(master)
    with node.client() as client:
        client.set("before", "1")
    # A frozen replica stays "online" to its master but never acknowledges another offset.
    frozen = next(n for n in sentinel_set.nodes if n.port != master)
    frozen.freeze()
    try:
        with node.client() as client:
            client.set("behind", "1")  # an offset the frozen replica never acknowledges
        done = handover(sentinel_set, master, timeout=2)
        assert done.returncode == 0, done.stderr
        assert "did not catch up" in done.stderr, done.stderr
        assert sentinel_set.master_port() == master
        with node.client() as client:
            # The pause was set for 12 s (timeout + 10): only the script's UNPAUSE lets this
            # write through within the client's 2 s.
            assert client.set("after-refused-handover", "1")
    finally:
        frozen.kill()


def test_a_wrong_master_name_means_no_pause(sentinel_set: SentinelSet) -> None:
    master = sentinel_set.master_port()
    done = handover(sentinel_set, master, master="not-monitored")
    assert done.returncode == 0, done.stderr
    assert "no other Sentinel names this node as master" in done.stderr
    assert sentinel_set.master_port() == master
    with sentinel_set.node_at(master).client() as client:
        assert client.set("after-no-handover", "1")
