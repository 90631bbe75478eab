"""The proofs of issue 13 (PostgreSQL high availability with Patroni), run after proofs.py's.

proofs.py calls :func:`steps` with its ``Proofs`` object; everything here goes through that
object's helpers (``Cluster`` for kubectl/helm, ``Api`` for HTTP to the node's NodePorts,
``check``/``CheckFailed``/``log``) and its cluster adapter (the node's address, whether
NetworkPolicies are enforced), so it runs unchanged wherever proofs.py runs.

  members      each tier: 1 leader, the expected streaming replicas, the primary Service on
               the leader, the read-only Service on the replicas
  failover     transfers (each with its own Idempotency-Key, retried with the same key after
               a failure) and reads while the critical leader pod is deleted; then again while
               the leader's postmaster is SIGKILLed
  dead tl      the history file of a timeline that never led (a promotion that lost the
               leader race) in the WAL archive: a restarted replica still streams
  switchover   the same load through `patronictl switchover`
  rolling      a PostgreSQL setting changed by `helm upgrade` under load: replicas restart
               first, one switchover, the setting is live on every member
  upgrade      the previous chart version (one PostgreSQL per tier) with data, then
               `helm upgrade` to this chart: every row kept, 3 members, writes work

After every load round: each acknowledged (201) transfer exists exactly once, the sum of all
balances is conserved, every balance equals the sum of its entries, writes came back within
30 s. The figures (failover time, failed requests, acknowledged-but-lost) are printed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import netpol

CRITICAL = "postgresql-critical"
ML = "postgresql-ml"
RECOVERY_LIMIT = 30.0  # writes must succeed again within this many seconds
PATRONI_CONF = "/etc/patroni/patroni.yaml"


def _h(p: Any) -> ModuleType:
    """The proofs module (``__main__`` when run as a script) that owns the helpers."""
    return sys.modules[type(p).__module__]


# ---------------------------------------------------------------------------------------
# Patroni and PostgreSQL, seen through kubectl


def members(p: Any, component: str, c: Any = None) -> dict[str, Any]:
    """Patroni's view of a tier (GET /cluster on a running member)."""
    c = c or p.c
    last = ""
    for pod in sorted(c.ready_pod_names(component)) or [
        x["metadata"]["name"] for x in c.pods(component)
    ]:
        out = c.k(
            "exec", pod, "-c", "postgresql", "--", "python3", "-c",
            "import urllib.request as u;"
            "print(u.urlopen('http://127.0.0.1:8008/cluster', timeout=5).read().decode())",
            check_rc=False, timeout=30,
        )  # fmt: skip
        try:
            return dict(json.loads(out))
        except ValueError:
            last = out[-300:]
    raise _h(p).CheckFailed(f"no member of {component} answered /cluster: {last}")


def leader_of(cluster: dict[str, Any]) -> str | None:
    leaders = [m["name"] for m in cluster.get("members", []) if m.get("role") in ("leader",)]
    return leaders[0] if len(leaders) == 1 else None


def psql(p: Any, pod: str, database: str, sql: str, c: Any = None) -> str:
    """Run SQL as the superuser inside a PostgreSQL pod (the new or the previous image)."""
    c = c or p.c
    # The Patroni image reads the password from its mounted file (STRATA_PG_*_FILE); the
    # previous chart's image had it in POSTGRES_PASSWORD.
    script = (
        'PGPASSWORD="${POSTGRES_PASSWORD:-$(cat "$STRATA_PG_SUPERUSER_PASSWORD_FILE")}" '
        'exec psql -h 127.0.0.1 -U "${PATRONI_SUPERUSER_USERNAME:-$POSTGRES_USER}" '
        '-d "$1" -X -v ON_ERROR_STOP=1 -Atc "$2"'
    )
    return c.k(
        "exec", pod, "-c", "postgresql", "--", "sh", "-c", script, "sh", database, sql, timeout=60
    ).strip()  # fmt: skip


QUORUM_ROLES = ("quorum_standby", "sync_standby")


def wait_members(
    p: Any,
    component: str,
    expected: int,
    timeout: float = 240,
    c: Any = None,
    *,
    quorum: bool = False,
) -> dict[str, Any]:
    """Wait until the tier has a leader and ``expected - 1`` streaming replicas (``quorum``:
    and Patroni has named a synchronous/quorum standby, which it does on its next HA loop
    after a replica starts streaming, up to ``loop_wait`` later)."""
    end = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < end:
        try:
            last = members(p, component, c)
            ms = last.get("members", [])
            streaming = [
                m for m in ms if m.get("role") != "leader" and m.get("state") == "streaming"
            ]
            named = not quorum or any(m.get("role") in QUORUM_ROLES for m in ms)
            if leader_of(last) and len(ms) == expected and len(streaming) == expected - 1 and named:
                return last
        except (_h(p).CheckFailed, subprocess.TimeoutExpired):
            pass
        time.sleep(2)
    laggards = [
        m["name"]
        for m in (last or {}).get("members", [])
        if m.get("role") != "leader" and m.get("state") != "streaming"
    ]
    raise _h(p).CheckFailed(
        f"{component}: not 1 leader + {expected - 1} streaming"
        + (" with a synchronous/quorum standby" if quorum else "")
        + f": {last}"
        + "".join(member_log(p, name, c) for name in laggards)
    )


def member_log(p: Any, pod: str, c: Any = None, lines: int = 60) -> str:
    """The tail of a member's Patroni and PostgreSQL log, to explain why it is not streaming."""
    c = c or p.c
    out = c.k("logs", pod, "-c", "postgresql", f"--tail={lines}", check_rc=False, timeout=30)
    return f"\n--- last {lines} log lines of {pod} ---\n{out}"


def describe(cluster: dict[str, Any]) -> str:
    return ", ".join(
        f"{m['name'].rsplit('-', 1)[-1]}={m.get('role')}/{m.get('state')}"
        f"/tl{m.get('timeline', '?')}/lag{m.get('lag', 0)}"
        for m in sorted(cluster.get("members", []), key=lambda m: m["name"])
    )


def expected_replicas(p: Any, tier: str) -> int:
    sts = p.c.kj("get", "statefulset", f"{p.c.release}-{tier}")
    return int(sts["spec"]["replicas"])


def p_members(p: Any) -> str:
    h = _h(p)
    out = []
    for tier in (CRITICAL, ML):
        n = expected_replicas(p, tier)
        # After a reinstall (proof 6) the replicas stream before Patroni names the quorum.
        cluster = wait_members(p, tier, n, quorum=tier == CRITICAL and n > 1)
        leader = leader_of(cluster)
        scope = f"{p.c.release}-{tier}"
        pods = {x["metadata"]["name"]: x["status"].get("podIP") for x in p.c.pods(tier)}
        ep = p.c.kj("get", "endpoints", scope)
        ips = [a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []]
        h.check(ips == [pods[leader]], f"{scope} Endpoints {ips}, leader {leader}={pods[leader]}")
        h.check(
            (ep["metadata"].get("annotations") or {}).get("leader") == leader,
            f"leader lock {ep['metadata'].get('annotations')} vs {leader}",
        )
        ro = p.c.kj("get", "endpoints", f"{scope}-ro")
        ro_ips = sorted(a["ip"] for s in ro.get("subsets") or [] for a in s.get("addresses") or [])
        want = sorted(ip for name, ip in pods.items() if name != leader)
        h.check(ro_ips == want, f"{scope}-ro Endpoints {ro_ips}, replicas {want}")
        quorum = [m for m in cluster["members"] if m.get("role") in QUORUM_ROLES]
        if tier == CRITICAL and n > 1:
            h.check(bool(quorum), f"{tier}: no synchronous/quorum standby: {describe(cluster)}")
        out.append(f"{tier}: leader {leader}, {n - 1} streaming [{describe(cluster)}]")
    return "; ".join(out) + "; primary Service = leader, -ro Service = replicas"


# ---------------------------------------------------------------------------------------
# Load: transfers retried with their own key, and reads


@dataclass
class Load:
    """A stream of A<->B transfers (retried with the same key until 201) and account reads."""

    p: Any
    tag: str
    accounts: tuple[str, str]
    requests: int = 0
    failed: int = 0
    acked: dict[str, str] = field(default_factory=dict)  # reference -> transfer id
    retried: int = 0  # transfers acknowledged only after a failed attempt
    replayed: int = 0  # ... whose failed attempt had committed (the retry replayed it)
    reads: int = 0
    failed_reads: int = 0
    events: list[tuple[float, bool, str]] = field(default_factory=list)  # (t, ok, kind)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        for target in (self._writer, self._reader):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def _note(self, ok: bool, kind: str, detail: str) -> None:
        self.events.append((time.monotonic(), ok, kind))
        if not ok and len(self.errors) < 12:
            self.errors.append(f"t={time.monotonic() - _h(self.p).T0:.1f}s {kind}: {detail[:160]}")

    def _writer(self) -> None:
        api = self.p.api["critical"]
        end = time.monotonic() + 600
        i = 0
        while not self.stop.is_set() and time.monotonic() < end and i < 5000:
            i += 1
            ref = f"{self.tag}-{i}"
            key = f"{ref}-{uuid.uuid4().hex[:8]}"
            a, b = self.accounts if i % 2 else self.accounts[::-1]
            body = {"from_account": a, "to_account": b, "amount": 1 + i % 7, "currency": "EUR",
                    "reference": ref}  # fmt: skip
            give_up = time.monotonic() + 90
            attempts = 0
            while time.monotonic() < give_up:
                self.requests += 1
                try:
                    r = api.req(
                        "POST", "/v1/transfers", json=body, headers={"Idempotency-Key": key}
                    )
                    ok, detail = r.status_code == 201, f"{r.status_code} {r.text[:120]}"
                    if r.status_code not in (201, 503):
                        detail = "UNEXPECTED " + detail
                except Exception as e:
                    ok, detail = False, f"{type(e).__name__}: {e}"
                self._note(ok, "transfer", detail)
                if ok:
                    self.acked[ref] = r.json()["id"]
                    if attempts:
                        self.retried += 1
                        self.replayed += r.headers.get("Idempotent-Replayed") == "true"
                    break
                attempts += 1
                self.failed += 1
                time.sleep(0.2)
            else:
                self.errors.append(f"{ref}: gave up after 90 s of retries")
            time.sleep(0.02)

    def _reader(self) -> None:
        api = self.p.api["critical"]
        end = time.monotonic() + 600
        while not self.stop.is_set() and time.monotonic() < end:
            self.reads += 1
            try:
                r = api.req("GET", f"/v1/accounts/{self.accounts[0]}")
                ok, detail = r.status_code == 200, f"{r.status_code} {r.text[:120]}"
            except Exception as e:
                ok, detail = False, f"{type(e).__name__}: {e}"
            if not ok:
                self.failed_reads += 1
            self._note(ok, "read", detail)
            time.sleep(0.05)

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=120)

    def recovery_after(self, t0: float) -> tuple[float | None, float | None, int]:
        """(first failed write after t0, first 201 after the last failure, failures after t0)."""
        writes = [(t, ok) for t, ok, kind in self.events if kind == "transfer" and t >= t0]
        fails = [t for t, ok in writes if not ok]
        if not fails:
            first_ok = next((t for t, ok in writes if ok), None)
            return None, (first_ok - t0) if first_ok else None, 0
        back = next((t for t, ok in writes if ok and t > fails[-1]), None)
        return fails[0] - t0, (back - t0) if back else None, len(fails)


def seed_accounts(p: Any, tag: str) -> tuple[str, str]:
    h = _h(p)
    api = p.api["critical"]
    ids = []
    for side in ("a", "b"):
        r = api.req("POST", "/v1/accounts", json={"owner": f"ha-{tag}-{side}", "currency": "EUR"})
        h.check(r.status_code == 201, f"create account -> {r.status_code} {r.text[:200]}")
        ids.append(r.json()["id"])
        r = api.req(
            "POST",
            f"/v1/accounts/{ids[-1]}/deposits",
            json={"amount": 1_000_000, "reference": f"ha-{tag}-seed"},
        )
        h.check(r.status_code == 201, f"deposit -> {r.status_code} {r.text[:200]}")
    return ids[0], ids[1]


def leader_pod(p: Any, tier: str = CRITICAL) -> str:
    leader = leader_of(members(p, tier))
    _h(p).check(leader is not None, f"{tier} has no leader")
    return str(leader)


def ledger_totals(p: Any) -> tuple[int, int]:
    """(sum of all balances, accounts whose balance differs from the sum of their entries)."""
    pod = leader_pod(p)
    out = psql(
        p, pod, "strata_critical",
        "SELECT (SELECT coalesce(sum(balance),0) FROM accounts), "
        "(SELECT count(*) FROM accounts a WHERE a.balance <> "
        "(SELECT coalesce(sum(e.amount),0) FROM entries e WHERE e.account_id = a.id))",
    )  # fmt: skip
    total, bad = out.split("|")
    return int(total), int(bad)


def verify_round(p: Any, load: Load, total_before: int) -> str:
    """Every 201 exactly once, money conserved, balances explained by entries."""
    h = _h(p)
    pod = leader_pod(p)
    rows = psql(
        p, pod, "strata_critical",
        f"SELECT reference, count(*), min(id::text) FROM transfers "
        f"WHERE reference LIKE '{load.tag}-%' GROUP BY reference",
    )  # fmt: skip
    seen = {}
    for line in filter(None, rows.splitlines()):
        ref, n, tid = line.split("|")
        seen[ref] = (int(n), tid)
    lost = [ref for ref in load.acked if ref not in seen]
    wrong_id = [ref for ref, tid in load.acked.items() if ref in seen and seen[ref][1] != tid]
    dupes = [ref for ref, (n, _) in seen.items() if n != 1]
    total, bad = ledger_totals(p)
    h.check(not lost, f"{len(lost)} acknowledged transfers lost: {lost[:5]}")
    h.check(not wrong_id, f"acknowledged ids differ from the stored ones: {wrong_id[:5]}")
    h.check(not dupes, f"transfers stored more than once: {dupes[:5]}")
    h.check(total == total_before, f"sum of balances {total} != {total_before} before the round")
    h.check(bad == 0, f"{bad} accounts whose balance is not the sum of their entries")
    return (
        f"{len(load.acked)} transfers acknowledged, 0 lost, 0 duplicated ({load.retried} "
        f"acknowledged on a retry with the same key, {load.replayed} of them replays of an "
        f"attempt that had committed but answered an error); sum of all balances {total} "
        f"unchanged; every balance = sum of its entries"
    )


def under_load(p: Any, tag: str, action: Any, settle: float = 5.0) -> tuple[Load, str, float]:
    """Run ``action`` (returns a detail string) during the load; returns (load, detail, t0)."""
    total_before, bad = ledger_totals(p)
    _h(p).check(bad == 0, f"{bad} accounts already inconsistent before {tag}")
    load = Load(p, tag, seed_accounts(p, tag))
    total_before, _ = ledger_totals(p)
    load.start()
    time.sleep(3)
    t0 = time.monotonic()
    try:
        detail = action()
        time.sleep(settle)
    finally:
        load.finish()
    p.state.setdefault("ha_rounds", []).append(load)
    return load, detail + "; " + verify_round(p, load, total_before), t0


def figures(p: Any, load: Load, t0: float, since_event: bool = True) -> str:
    """The round's figures; writes must work again within 30 s of the event (``since_event``)
    or, for a long operation such as a rollout, within 30 s of their first failure."""
    h = _h(p)
    first_fail, back, fails = load.recovery_after(t0)
    h.check(back is not None, f"writes never succeeded again: {load.errors[:5]}")
    assert back is not None
    window = back - first_fail if first_fail is not None else 0.0
    measured = back if since_event else window
    h.check(
        measured <= RECOVERY_LIMIT,
        f"writes came back after {measured:.1f}s (> {RECOVERY_LIMIT:.0f}s); {fails} failed "
        f"writes, first errors: {load.errors[:10]}",
    )
    unexpected = [e for e in load.errors if "UNEXPECTED" in e]
    h.check(not unexpected, f"answers other than 201/503: {unexpected[:3]}")
    when = f"writes OK again {back:.1f}s after the event, " if since_event else ""
    return (
        f"{when}failure window {window:.1f}s; failed: {fails} transfer attempts, "
        f"{load.failed_reads} of {load.reads} reads; {load.requests} transfer requests in all"
    )


def _round_failover(p: Any, tag: str, kill: str) -> str:
    h = _h(p)
    n = expected_replicas(p, CRITICAL)
    before = wait_members(p, CRITICAL, n)
    old = leader_of(before)
    assert old is not None

    def act() -> str:
        t = time.monotonic()
        if kill == "delete":
            p.c.k("delete", "pod", old, "--wait=false")
        else:
            p.c.k(
                "exec", old, "-c", "postgresql", "--", "sh", "-c",
                "kill -KILL $(head -n1 /var/lib/postgresql/data/pgdata/postmaster.pid)",
            )  # fmt: skip
        # Patroni's view: when is there a leader again (maybe the same member, restarted)?
        end = time.monotonic() + 120
        new, down = None, False
        while time.monotonic() < end:
            try:
                cl = members(p, CRITICAL)
                lead = leader_of(cl)
                state = {m["name"]: m.get("state") for m in cl.get("members", [])}
                running = bool(lead) and state.get(lead) == "running"
                down = down or not running or lead != old
                if running and down:
                    new = lead
                    break
            except (h.CheckFailed, subprocess.TimeoutExpired):
                down = True
            time.sleep(0.5)
        h.check(new is not None, f"no running leader 120 s after {kill}")
        took = time.monotonic() - t
        return f"{kill} of leader {old}: Patroni leader {new} running after {took:.1f}s"

    load, detail, t0 = under_load(p, tag, act)
    after = wait_members(p, CRITICAL, n)
    return f"{detail}; {figures(p, load, t0)}; members now [{describe(after)}]"


def p_failover_delete(p: Any) -> str:
    return _round_failover(p, f"ha-del-{uuid.uuid4().hex[:4]}", "delete")


def p_failover_kill(p: Any) -> str:
    return _round_failover(p, f"ha-kill-{uuid.uuid4().hex[:4]}", "sigkill")


def wait_log(p: Any, pod: str, old_uid: str, needle: str, timeout: float) -> str:
    """The postgresql log of ``pod``'s next incarnation (not ``old_uid``) once it shows
    ``needle``; CheckFailed with the last log seen after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    log = ""
    while time.monotonic() < end:
        uid = p.c.k("get", "pod", pod, "-o", "jsonpath={.metadata.uid}", check_rc=False)
        if uid.strip() not in ("", old_uid):
            log = p.c.k("logs", pod, "-c", "postgresql", check_rc=False, timeout=30)
            if needle in log:
                return log
        time.sleep(2)
    raise _h(p).CheckFailed(f"{pod}: no {needle!r} in its new log: {log[-2000:]}")


def p_dead_timeline(p: Any) -> str:
    """A promotion that lost the leader race leaves its timeline's history file in the WAL
    archive (seen on this 2-core machine); a replica that restarts afterwards must still
    stream from the leader instead of waiting forever on that dead timeline."""
    h = _h(p)
    n = expected_replicas(p, CRITICAL)
    before = wait_members(p, CRITICAL, n)
    leader = leader_of(before)
    assert leader is not None
    timeline = int(next(m["timeline"] for m in before["members"] if m["name"] == leader))
    replica = sorted(m["name"] for m in before["members"] if m["name"] != leader)[0]
    lsn = psql(p, leader, "postgres", "SELECT pg_current_wal_lsn()")
    dead = f"{timeline + 1:08X}.history"
    # The dead branch's history: the leader's own, plus a fork from its current position.
    script = (
        'd=$(mktemp -d) && f="$d/$1" && '
        '{ cat "/var/lib/postgresql/data/pgdata/pg_wal/$2.history" 2>/dev/null || :; } >"$f" && '
        'printf "%s\\t%s\\tdead branch (e2e)\\n" "$3" "$4" >>"$f" && '
        'pgbackrest --stanza="$5" archive-push "$f" 2>&1; rc=$?; rm -rf "$d"; exit $rc'
    )
    out = p.c.k(
        "exec", leader, "-c", "postgresql", "--", "sh", "-c", script, "sh",
        dead, f"{timeline:08X}", str(timeline), lsn, f"{p.c.release}-{CRITICAL}",
        check_rc=False, timeout=60,
    )  # fmt: skip
    h.check("ERROR" not in out or "already exists" in out, f"archive-push {dead}: {out[-500:]}")
    old_uid = p.c.k("get", "pod", replica, "-o", "jsonpath={.metadata.uid}").strip()
    t = time.monotonic()
    p.c.k("delete", "pod", replica, "--wait=true", "--timeout=120s", timeout=150)
    # The leader's view of the members can still show the deleted replica streaming for a
    # moment, so the new pod's own log says when it has looked at the archive.
    declined = wait_log(p, replica, old_uid, f'"file": "{dead}"', timeout=240)
    h.check(
        "declined the history file" in declined,
        f"{replica} restarted but did not decline {dead}: {declined[-2000:]}",
    )
    after = wait_members(p, CRITICAL, n)
    took = time.monotonic() - t
    return (
        f"{dead} (timeline {timeline + 1}, never a leader) pushed to the archive; replica "
        f"{replica} deleted, streaming from {leader_of(after)} on timeline {timeline} again "
        f"after {took:.1f}s, having declined {dead}; members now [{describe(after)}]"
    )


def p_switchover(p: Any) -> str:
    h = _h(p)
    n = expected_replicas(p, CRITICAL)
    before = wait_members(p, CRITICAL, n)
    old = leader_of(before)
    assert old is not None
    target = sorted(m["name"] for m in before["members"] if m["name"] != old)[0]

    def act() -> str:
        t = time.monotonic()
        out = p.c.k(
            "exec", old, "-c", "postgresql", "--", "strata-patroni", "patronictl", "-c",
            PATRONI_CONF,
            "switchover", "--leader", old, "--candidate", target, "--force", timeout=120,
        )  # fmt: skip
        h.check("Successfully switched over" in out, f"patronictl switchover: {out[-400:]}")
        return f"patronictl switchover {old} -> {target} in {time.monotonic() - t:.1f}s"

    load, detail, t0 = under_load(p, f"ha-sw-{uuid.uuid4().hex[:4]}", act)
    after = wait_members(p, CRITICAL, n)
    h.check(leader_of(after) == target, f"leader is {leader_of(after)}, expected {target}")
    return f"{detail}; {figures(p, load, t0)}"


def p_rolling(p: Any) -> str:
    h = _h(p)
    n = expected_replicas(p, CRITICAL)
    before = wait_members(p, CRITICAL, n)
    old_leader = leader_of(before)
    uids = {x["metadata"]["name"]: x["metadata"]["uid"] for x in p.c.pods(CRITICAL)}
    timeline: list[tuple[float, str, str]] = []  # (t, event, detail)
    stop = threading.Event()

    def watch() -> None:
        leader, seen = old_leader, dict(uids)
        while not stop.is_set():
            try:
                ep = p.c.kj("get", "endpoints", f"{p.c.release}-{CRITICAL}")
                now = (ep["metadata"].get("annotations") or {}).get("leader")
                if now and now != leader:
                    timeline.append((time.monotonic(), "leader", f"{leader}->{now}"))
                    leader = now
                for x in p.c.pods(CRITICAL):
                    name, uid = x["metadata"]["name"], x["metadata"]["uid"]
                    if seen.get(name) != uid:
                        seen[name] = uid
                        timeline.append((time.monotonic(), "restart", f"{name} (leader {leader})"))
            except (h.CheckFailed, subprocess.TimeoutExpired, KeyError):
                pass
            stop.wait(0.5)

    def act() -> str:
        t = time.monotonic()
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            p.c.h(
                "upgrade", p.c.release, p.c.chart, *p.values_args(),
                "--set", "postgresqlCritical.parameters.work_mem=8MB",
                "--wait", "--timeout", "10m",
            )  # fmt: skip
            wait_members(p, CRITICAL, n)
        finally:
            stop.set()
            watcher.join(timeout=10)
        return f"helm upgrade (work_mem=8MB) and members back in {time.monotonic() - t:.1f}s"

    load, detail, t0 = under_load(p, f"ha-roll-{uuid.uuid4().hex[:4]}", act)
    log = _h(p).log
    for t, event, what in timeline:
        log(f"rolling: t={t - t0:+.1f}s {event} {what}")
    for t, ok, kind in load.events:
        if not ok:
            log(f"rolling: t={t - t0:+.1f}s failed {kind}")
    changes = [d for _, e, d in timeline if e == "leader"]
    restarts = [(d, i) for i, (_, e, d) in enumerate(timeline) if e == "restart"]
    h.check(len(restarts) == n, f"expected {n} member restarts, saw {timeline}")
    h.check(len(changes) == 1, f"expected exactly one leader change, saw {changes}: {timeline}")
    change_at = next(i for i, (_, e, _) in enumerate(timeline) if e == "leader")
    # Every member restarted before the switchover was a replica at that time.
    early = [d for d, i in restarts if i < change_at]
    h.check(
        all(f"(leader {old_leader})" in d and not d.startswith(f"{old_leader} ") for d in early),
        f"a leader restarted before the switchover: {timeline}",
    )
    settings = {
        x["metadata"]["name"]: psql(p, x["metadata"]["name"], "postgres", "SHOW work_mem")
        for x in p.c.pods(CRITICAL)
    }
    h.check(set(settings.values()) == {"8MB"}, f"work_mem not applied everywhere: {settings}")
    order = ", ".join(d for _, e, d in timeline)
    return (
        f"{detail}; {figures(p, load, t0, since_event=False)}; order: {order}; "
        f"work_mem=8MB on {n} members"
    )


# ---------------------------------------------------------------------------------------
# Upgrade from the previous chart version (one plain PostgreSQL per tier)


def previous_chart(p: Any, workdir: Path) -> tuple[str, str, str]:
    """Extract the repository as it was just before Patroni came into the chart.

    Returns (chart dir, its e2e values file, commit): the parent of the oldest commit that
    added "patroni" to the PostgreSQL templates.
    """
    repo = Path(p.c.chart).resolve().parents[1]

    def git(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, timeout=120, check=True
        )

    commits = git(
        "log", "--format=%H", "--reverse", "-S", "patroni", "--",
        "charts/strata/templates/postgresql/_postgresql.tpl",
    ).stdout.decode().split()  # fmt: skip
    _h(p).check(bool(commits), "no commit introduced Patroni into the chart (git history?)")
    previous = git("rev-parse", f"{commits[0]}^").stdout.decode().strip()
    archive = git("archive", previous, "charts/strata", "tests/e2e/cluster/values-e2e.yaml").stdout
    subprocess.run(["tar", "-x", "-C", str(workdir)], input=archive, check=True, timeout=60)
    return (
        str(workdir / "charts" / "strata"),
        str(workdir / "tests" / "e2e" / "cluster" / "values-e2e.yaml"),
        previous[:12],
    )


def fingerprint(p: Any, c: Any, tier: str, pod: str) -> str:
    if tier == CRITICAL:
        sql = (
            "SELECT (SELECT count(*) FROM accounts) || ' accounts ' || "
            "(SELECT count(*) FROM transfers) || ' transfers ' || "
            "(SELECT count(*) FROM entries) || ' entries ' || "
            "(SELECT count(*) FROM audit_log) || ' audit ' || "
            "(SELECT sum(balance) FROM accounts) || ' ' || "
            "(SELECT md5(string_agg(id::text || amount, ',' ORDER BY id)) FROM transfers)"
        )
        return psql(p, pod, "strata_critical", sql, c)
    sql = (
        "SELECT count(*) || ' documents ' || coalesce(md5(string_agg(id::text || data::text, "
        "',' ORDER BY id)), '-') FROM ml_documents"
    )
    return psql(p, pod, "strata_ml", sql, c)


def p_upgrade_from_previous(p: Any) -> str:
    h = _h(p)
    ns_args = argparse.Namespace(**vars(p.args))
    ns_args.namespace = f"{p.c.ns}-upgrade"
    c = h.Cluster(ns_args)
    small = [f"{s}.replicaCount=1" for s in ("critical", "ml", "cache")]
    # Free the node first: the main release has proven what it had to.
    p.c.k("delete", "svc", "-l", "strata-e2e=nodeport", "--wait=true", check_rc=False)
    p.c.run(
        [p.c.helm, "-n", p.c.ns, "uninstall", p.c.release, "--wait", "--timeout", "5m"],
        timeout=600, check_rc=False,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        chart, values, commit = previous_chart(p, Path(tmp))
        t = time.monotonic()
        c.h("install", c.release, chart, "--create-namespace", "-f", values,
            *[a for s in small for a in ("--set", s)], "--wait", "--timeout", "8m")  # fmt: skip
        old_install = time.monotonic() - t
    # Data through the previous release's API.
    saved = dict(p.api)
    try:
        if p.adapter.enforces_network_policy:  # the chart's policies let only known pods in
            harness = netpol.harness_policy(c, ("critical", "ml"), p.adapter.harness_cidr())
            c.k("apply", "-f", "-", input=json.dumps(harness))
        node = p.adapter.node_address()
        for comp in ("critical", "ml"):
            svc = c.service(comp)
            port = svc["spec"]["ports"][0]
            np_svc = {
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": f"e2e-{comp}-np", "labels": {"strata-e2e": "nodeport"}},
                "spec": {"type": "NodePort", "selector": svc["spec"]["selector"],
                         "ports": [{"name": "http", "port": port["port"],
                                    "targetPort": port["targetPort"]}]},
            }  # fmt: skip
            c.k("apply", "-f", "-", input=json.dumps(np_svc))
            node_port = c.kj("get", "svc", f"e2e-{comp}-np")["spec"]["ports"][0]["nodePort"]
            p.api[comp] = h.Api(comp, f"http://{node}:{node_port}", p.tokens[comp])
            p.wait_ready(p.api[comp])
        r = p.api["ml"].req("PUT", "/v1/collections/upg")
        h.check(r.status_code in (200, 201), f"collection on the previous chart -> {r.status_code}")
        docs = "".join(json.dumps({"i": i, "tag": "upgrade"}) + "\n" for i in range(300))
        r = p.api["ml"].req(
            "POST", "/v1/collections/upg/documents:bulk", content=docs.encode(),
            headers={"Content-Type": "application/x-ndjson"},
        )  # fmt: skip
        h.check(
            r.status_code == 201, f"bulk on the previous chart -> {r.status_code} {r.text[:200]}"
        )
        a, b = seed_accounts(p, "upg")
        for i in range(40):
            r = p.api["critical"].req(
                "POST", "/v1/transfers", headers={"Idempotency-Key": f"upg-{i}"},
                json={"from_account": a, "to_account": b, "amount": 10 + i, "currency": "EUR",
                      "reference": f"upg-{i}"},
            )  # fmt: skip
            h.check(r.status_code == 201, f"transfer on the previous chart -> {r.status_code}")
        crit_pod = f"{c.release}-{CRITICAL}-0"
        ml_pod = f"{c.release}-{ML}-0"
        psql(p, ml_pod, "strata_ml", "SELECT 1", c)  # the ml schema exists (migrate ran)
        before = {
            CRITICAL: fingerprint(p, c, CRITICAL, crit_pod),
            ML: fingerprint(p, c, ML, ml_pod),
        }
        # The upgrade, exactly as a user runs it: no extra step.
        t = time.monotonic()
        c.h("upgrade", c.release, p.c.chart, *p.values_args(),
            *[a for s in small for a in ("--set", s)], "--set", "postgresqlMl.replicas=1",
            "--wait", "--timeout", "12m")  # fmt: skip
        upgrade_s = time.monotonic() - t
        cluster = wait_members(p, CRITICAL, 3, timeout=300, c=c)
        leader = leader_of(cluster)
        after = {
            CRITICAL: fingerprint(p, c, CRITICAL, str(leader)),
            ML: fingerprint(p, c, ML, ml_pod),
        }
        h.check(after == before, f"rows changed across the upgrade: {before} -> {after}")
        replica = sorted(m["name"] for m in cluster["members"] if m["name"] != leader)[0]
        time.sleep(2)
        h.check(
            fingerprint(p, c, CRITICAL, replica) == before[CRITICAL],
            f"replica {replica} does not hold the same rows",
        )
        # Right after the upgrade the leader may still wait for Patroni to name its quorum
        # standbys (strict mode): a 503 then, retried with the same key as a client would.
        t = time.monotonic()
        while True:
            r = p.api["critical"].req(
                "POST", "/v1/transfers", headers={"Idempotency-Key": "upg-after"},
                json={"from_account": a, "to_account": b, "amount": 1, "currency": "EUR",
                      "reference": "upg-after"},
            )  # fmt: skip
            if r.status_code != 503 or time.monotonic() - t > RECOVERY_LIMIT:
                break
            time.sleep(1)
        first_write = time.monotonic() - t
        h.check(
            r.status_code == 201, f"transfer after the upgrade -> {r.status_code} {r.text[:200]}"
        )
        r = p.api["ml"].req("GET", "/v1/collections/upg/documents:count")
        h.check(
            r.status_code == 200 and r.json().get("count") == 300,
            f"ml count after the upgrade -> {r.status_code} {r.text[:200]}",
        )
    finally:
        for comp in ("critical", "ml"):
            if p.api.get(comp) is not saved.get(comp):
                p.api[comp].close()
        p.api.update(saved)
        c.k("delete", "svc", "-l", "strata-e2e=nodeport", check_rc=False)
        c.k("delete", "networkpolicy", "-l", "strata-e2e=harness", check_rc=False)
        c.h("uninstall", c.release, "--wait", "--timeout", "5m")
    return (
        f"previous chart {commit} installed in {old_install:.0f}s; helm upgrade --wait in "
        f"{upgrade_s:.0f}s with no extra step; critical [{describe(cluster)}]; rows identical "
        f"on the leader and a replica ({before[CRITICAL]}; ml {before[ML]}); first write "
        f"acknowledged {first_write:.1f}s after the upgrade returned; ml count 300"
    )


def _with_api(p: Any, fn: Any) -> Any:
    """Run ``fn(p)``, exposing the services first when proof 2 did not (``--only 7,8``).

    A failed git or tar command is a failed check, not the end of the whole run.
    """

    def run() -> str:
        if "critical" not in p.api:
            p.expose()
        try:
            return str(fn(p))
        except (subprocess.CalledProcessError, ValueError, OSError) as e:
            raise _h(p).CheckFailed(f"{type(e).__name__}: {e}") from e

    return run


def steps(p: Any) -> list[tuple[str, Any, bool]]:
    """(name, function, essential) of each proof, for proofs.py's runner."""
    return [
        ("proof 7: Patroni members and Services", _with_api(p, p_members), False),
        ("proof 8: failover, leader pod deleted", _with_api(p, p_failover_delete), False),
        ("proof 8: failover, postgres SIGKILLed", _with_api(p, p_failover_kill), False),
        ("proof 8: a dead timeline in the WAL archive", _with_api(p, p_dead_timeline), False),
        ("proof 9: planned switchover", _with_api(p, p_switchover), False),
        ("proof 10: rolling change under load", _with_api(p, p_rolling), False),
        ("proof 11: upgrade from the previous chart", _with_api(p, p_upgrade_from_previous), False),
    ]
