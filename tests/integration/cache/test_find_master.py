"""Who a starting Redis pod of sentinel mode takes for master, against a real Sentinel set.

``charts/strata/files/redis-find-master.sh`` runs in both containers of every Redis pod in
sentinel mode before they write their config. It runs here as the pod runs it (``sh``,
``redis-cli``) against loopback servers (tests/support/sentinel.py), with what the chart's
wrapper derives (this node's name, the other pods' Sentinels, the passwords) in the same
environment variables.

The point of it is the restart of a master that is being failed over: starting as master
then means acknowledging writes that the promotion of a replica discards. Checked: a node
the Sentinels agree on starts as master, any other as its replica, at once; a node that a
Sentinel counts down waits for the promotion and starts as the new master's replica; a
stalled Sentinel, one in TILT, or one that has not heard from the node for half of
down-after makes a node they name wait (for the bound at most), but never holds back a
replica; with no Sentinel running, the recorded master, else the first pod (a silent one
holds back a recorded master that is this node, for the bound).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.devstack.ports import free_ports
from tests.support.sentinel import MASTER_NAME, SentinelSet, wait_until
from tests.support.testca import TestCa

pytestmark = pytest.mark.integration

SCRIPT = (
    Path(__file__).resolve().parents[3] / "charts" / "strata" / "files" / "redis-find-master.sh"
)


@pytest.fixture
def sentinel_set() -> Iterator[SentinelSet]:
    """A fresh set per test: these tests stop Sentinels and fail the master over."""
    servers = SentinelSet().start()
    try:
        yield servers
    finally:
        for process in servers.sentinels:  # a test that failed while one was stopped
            process.send_signal(signal.SIGCONT)
        servers.stop()


def environment(
    servers: SentinelSet | None,
    port: int,
    wait: int,
    sentinel_ports: list[int] | None = None,
    conf: Path | None = None,
) -> dict[str, str]:
    """What the chart exports for the node on ``port`` (every Sentinel is another pod's)."""
    ports = sentinel_ports if sentinel_ports is not None else servers.sentinel_ports  # type: ignore[union-attr]
    tls = servers.tls if servers and servers.sentinel_tls else None
    return {
        **os.environ,
        "FIND_SELF": f"127.0.0.1 {port}",
        "FIND_FIRST": "127.0.0.1 1",
        "FIND_SENTINELS": " ".join(f"127.0.0.1:{p}" for p in ports),
        "FIND_MASTER": MASTER_NAME,
        "FIND_WAIT": str(wait),
        "FIND_SENTINEL_CONF": str(conf or "/nonexistent/sentinel.conf"),
        "FIND_SENTINEL_AUTH": servers.sentinel_password if servers else "",
        "FIND_TLS_CA": tls.ca_file if tls else "",
    }


def find_master(env: dict[str, str], timeout: float = 60) -> tuple[str, str]:
    """Run the script as the pod does; its answer ("<host> <port>") and what it said."""
    done = subprocess.run(
        ["sh", "-eu", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip(), done.stderr


def start_find_master(env: dict[str, str]) -> subprocess.Popen[str]:
    """The script in the background, its stderr readable line by line."""
    return subprocess.Popen(
        ["sh", "-eu", str(SCRIPT)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def first_line_with(process: subprocess.Popen[str], text: str) -> str:
    """Read the script's stderr until a line contains ``text`` (bounded by the script's own
    pace: it writes a line per second while it waits)."""
    assert process.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        assert line, f"the script ended without saying {text!r}"
        if text in line:
            return line
    raise AssertionError(f"the script did not say {text!r} within 60s")


def finish(process: subprocess.Popen[str]) -> tuple[str, str]:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return out.strip(), err


def flags(servers: SentinelSet, index: int) -> str:
    """The master's flags according to one Sentinel ("master,s_down", ...)."""
    with servers.sentinel_client(index) as client:
        return str(client.sentinel_master(MASTER_NAME)["flags"])


def test_the_master_the_sentinels_agree_on(sentinel_set: SentinelSet) -> None:
    master = sentinel_set.master_port()
    replica = next(n.port for n in sentinel_set.nodes if n.port != master)
    # The master itself, restarted while every Sentinel vouches for it, stays master.
    named, said = find_master(environment(sentinel_set, master, wait=60))
    assert named == f"127.0.0.1 {master}"
    assert "name this node as master" in said and "waiting" not in said
    # Any other node starts as its replica.
    named, said = find_master(environment(sentinel_set, replica, wait=60))
    assert named == f"127.0.0.1 {master}"
    assert f"names 127.0.0.1 {master} via" in said and "waiting" not in said


def test_over_tls_with_the_pods_ca_only(test_ca: TestCa, wrong_ca: TestCa) -> None:
    servers = SentinelSet(tls=test_ca.issue("find-master"), sentinel_tls=True).start()
    try:
        master = servers.master_port()
        env = environment(servers, master, wait=60)
        named, said = find_master(env)
        assert named == f"127.0.0.1 {master}", said
        assert "waiting" not in said
        # Another CA, or plain text: no Sentinel answers (as if none ran).
        for ca in (wrong_ca.ca_file, ""):
            named, said = find_master({**env, "FIND_TLS_CA": ca})
            assert named == "127.0.0.1 1", said
            assert "first start" in said
    finally:
        servers.stop()


def test_a_master_being_failed_over_waits_and_follows_the_new_one(
    sentinel_set: SentinelSet,
) -> None:
    old = sentinel_set.master_port()
    # The master stops answering (its host lost): the Sentinels count it down, then fail
    # it over. A restart of it now must not start as master.
    sentinel_set.node_at(old).freeze()
    wait_until(
        "a Sentinel counting the master down",
        lambda: "s_down" in flags(sentinel_set, 0),
        timeout=30,
    )
    named, said = find_master(environment(sentinel_set, old, wait=60))
    new = sentinel_set.master_port()
    sentinel_set.node_at(old).kill()
    assert new != old
    assert named == f"127.0.0.1 {new}", said
    assert "not starting as master yet" in said


def test_a_master_silent_for_half_of_down_after_waits_too() -> None:
    # Long down-after: the Sentinels have not counted the master down yet, but it has been
    # silent long enough that they may before a restart of it answers a PING.
    servers = SentinelSet(down_after_ms=8000).start()
    try:
        old = servers.master_port()
        servers.node_at(old).freeze()

        def silent_not_down() -> bool:
            with servers.sentinel_client(0) as client:
                state = client.sentinel_master(MASTER_NAME)
            assert "s_down" not in str(state["flags"]), "counted down before the check"
            return int(state["last-ok-ping-reply"]) > 4500

        wait_until("the master silent for over half of down-after", silent_not_down, 10)
        named, said = find_master(environment(servers, old, wait=60))
        new = servers.master_port()
        servers.node_at(old).kill()
        assert "no PING reply for" in said
        assert new != old
        assert named == f"127.0.0.1 {new}", said
    finally:
        servers.stop()


def test_a_stalled_sentinel_makes_the_named_master_wait(sentinel_set: SentinelSet) -> None:
    master = sentinel_set.master_port()
    stalled = sentinel_set.sentinels[1]
    # SIGSTOP: its port still accepts connections, nothing answers (a Sentinel blocked on a
    # slow lookup, or its node starved). It may be the one failing this node over.
    stalled.send_signal(signal.SIGSTOP)
    finding = start_find_master(environment(sentinel_set, master, wait=120))
    try:
        line = first_line_with(finding, "not starting as master yet")
        assert f"127.0.0.1:{sentinel_set.sentinel_ports[1]}: no answer in 3 s" in line
        # Still undecided: nothing on stdout, and still running.
        assert finding.poll() is None
    finally:
        finding.kill()
        out, _ = finding.communicate(timeout=10)
        stalled.send_signal(signal.SIGCONT)
    assert out == ""
    # Once it answers again it is in TILT (stalled over 2 s), which the next test covers;
    # that it goes on once every Sentinel vouches, test_the_master_the_sentinels_agree_on.


def test_a_sentinel_in_tilt_makes_the_named_master_wait_for_the_bound(
    sentinel_set: SentinelSet,
) -> None:
    master = sentinel_set.master_port()
    # A Sentinel whose timer stalls for over 2 s enters TILT for 30 s: it acts on nothing,
    # so what it says is stale. Stall one for that long (the fault, not a wait for a state).
    frozen = sentinel_set.sentinels[2]
    frozen.send_signal(signal.SIGSTOP)
    time.sleep(2.5)
    frozen.send_signal(signal.SIGCONT)

    def in_tilt() -> bool:
        with sentinel_set.sentinel_client(2) as client:
            return int(client.info("sentinel")["sentinel_tilt"]) == 1

    wait_until("the stalled Sentinel in TILT", in_tilt, timeout=10)
    named, said = find_master(environment(sentinel_set, master, wait=3))
    assert f"127.0.0.1:{sentinel_set.sentinel_ports[2]}: in TILT" in said
    # Bounded: then the node the Sentinels name, as before.
    assert "waited 3s; still:" in said
    assert named == f"127.0.0.1 {master}"


def test_a_silent_sentinel_holds_back_a_recorded_master_only(
    sentinel_set: SentinelSet, tmp_path: Path
) -> None:
    # The only Sentinel there is accepts and never answers (stalled): it may be failing
    # over the master this pod's own Sentinel recorded, so that one waits (bounded) ...
    silent = sentinel_set.sentinels[0]
    conf = tmp_path / "sentinel.conf"
    conf.write_text(f"sentinel monitor {MASTER_NAME} 127.0.0.1 7000 2\n")
    only = [sentinel_set.sentinel_ports[0]]
    silent.send_signal(signal.SIGSTOP)
    try:
        named, said = find_master(
            environment(sentinel_set, 7000, 4, sentinel_ports=only, conf=conf)
        )
        assert named == "127.0.0.1 7000"
        assert "no answer in 3 s" in said and "waited 4s" in said
        # ... and a node that would start as a replica does not.
        named, said = find_master(
            environment(sentinel_set, 7001, 4, sentinel_ports=only, conf=conf)
        )
        assert named == "127.0.0.1 7000"
        assert "waiting" not in said
    finally:
        silent.send_signal(signal.SIGCONT)


def test_without_running_sentinels_the_recorded_master_then_the_first_pod(
    tmp_path: Path,
) -> None:
    nobody = free_ports(2)  # nothing listens: refused at once, as a pod that is not running
    named, said = find_master(environment(None, 7000, wait=60, sentinel_ports=nobody))
    assert named == "127.0.0.1 1"
    assert "first start" in said and "waiting" not in said
    conf = tmp_path / "sentinel.conf"
    conf.write_text(f"port 26379\nsentinel monitor {MASTER_NAME} 10.0.0.7 6380 2\n")
    named, said = find_master(environment(None, 7000, wait=60, sentinel_ports=nobody, conf=conf))
    assert named == "10.0.0.7 6380"
    assert "last knew 10.0.0.7 6380" in said


def test_a_replica_is_never_held_back(sentinel_set: SentinelSet) -> None:
    master = sentinel_set.master_port()
    replica = next(n.port for n in sentinel_set.nodes if n.port != master)
    # With one Sentinel stalled, a node the others name as a replica starts at once: a
    # replica of the wrong master costs no acknowledged write.
    sentinel_set.sentinels[1].send_signal(signal.SIGSTOP)
    try:
        named, said = find_master(environment(sentinel_set, replica, wait=120), timeout=30)
    finally:
        sentinel_set.sentinels[1].send_signal(signal.SIGCONT)
    assert named == f"127.0.0.1 {master}"
    assert "waiting" not in said
