"""Proof 7 (issue 17): the cache tier survives the loss of its Redis master on the cluster.

The release is upgraded in place to ``redis.mode=sentinel`` (values-sentinel.yaml on top of
the run's values): three Redis pods with a Sentinel each. Then, under a steady read/write
load on the cache service, the master pod is deleted. Checked: Sentinel promotes a replica
(the deleted master's preStop hook hands over: charts/strata/files/redis-handover.sh); no
acknowledged write is lost; writes sent later than 10 s after the promotion all succeed;
the cache held no request longer than its Redis timeouts allow (its own request log, by
X-Request-ID) and every request it received reached the client within that bound (plus
slack for this 2-core machine); no request answers 500. Reported: failover times (from
Sentinel's log), failed requests (refused while no cache pod was ready, or never delivered by
kube-proxy), acknowledged writes missing afterwards.

Uses only what proofs.py's ``Proofs`` object offers (``c.h``/``c.k``/``c.kj``,
``c.ready_pod_names``, ``c.values``, ``values_args``, ``api``, ``expose``, ``wait_ready``), so
it runs unchanged on any cluster adapter that provides them. Failures raise AssertionError
(a failed proof step).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
SENTINEL_VALUES = HERE / "values-sentinel.yaml"
MASTER_NAME = "mymaster"
REDIS_PODS = 3
CHART_VALUES = HERE.parents[2] / "charts" / "strata" / "values.yaml"
# Beyond the cache's Redis timeouts: HTTP through kube-proxy on a busy 2-core machine.
SLACK = 2.0
RECOVERY = 10.0
# Beyond the bound, the load's own deadline per request (the harness client's is 10 s): a
# connection that kube-proxy accepts but never delivers must not blind a load thread for 10 s.
CLIENT_EXTRA = 2.5
# redis-cli to the pod's own Sentinel, with its password when it has one. Every query runs
# in the pod's redis container (which mounts both passwords and reaches the Sentinel on the
# pod's loopback), never the sentinel container: an exec's processes are charged to the
# container it runs in, and on this saturated 2-core node a container of a 10m CPU request
# that has just spent CPU can wait seconds for its turn (a Sentinel whose timer stalls over
# 2 s goes into TILT for 30 s; not the only cause: docs/cluster-e2e.md, proof 12). The
# sentinel container keeps only its own probe.
SENTINEL_CLI = (
    "spw=$(cat /var/run/secrets/strata/sentinel-password 2>/dev/null || true); "
    'if [ -n "$spw" ]; then export REDISCLI_AUTH="$spw"; fi; '
    "redis-cli --no-auth-warning --raw -h 127.0.0.1 -p 26379 "
)
WHO_IS_MASTER = SENTINEL_CLI + f"SENTINEL get-master-addr-by-name {MASTER_NAME} | head -n 1"
IN_TILT = (
    SENTINEL_CLI + "INFO sentinel | tr -d '\\r' | awk -F: '$1 == \"sentinel_tilt\" { print $2 }'"
)
REPLICATION = (
    "pw=$(cat /var/run/secrets/strata/redis-password 2>/dev/null || true); "
    'if [ -n "$pw" ]; then export REDISCLI_AUTH="$pw"; fi; '
    "redis-cli --no-auth-warning -h 127.0.0.1 -p 6379 INFO replication"
)
# What settled() needs of one pod, in one exec: its Sentinel's master and TILT flag, then
# its Redis's replication section.
POD_STATE = (
    f'echo "master=$({WHO_IS_MASTER})"; echo "tilt=$({IN_TILT})"; ' + REPLICATION + " | tr -d '\\r'"
)
T0 = time.monotonic()


def request_bound(values_files: list[str]) -> float:
    """How long a cache request may take: queue (socket) + connect + socket timeout + slack.

    The timeouts are the cache's ``redisClient`` settings the release runs with: the chart's
    defaults, overridden by the run's values files in order (kind.sh widens them).
    """
    import yaml

    client: dict[str, Any] = {}
    for f in [str(CHART_VALUES), *values_files]:
        values = yaml.safe_load(Path(f).read_text()) or {}
        client.update((values.get("cache") or {}).get("redisClient") or {})
    socket, connect = float(client["socketTimeout"]), float(client["connectTimeout"])
    return socket + connect + socket + SLACK


def say(msg: str) -> None:
    print(f"[{time.monotonic() - T0:7.1f}s] sentinel: {msg}", file=sys.stderr, flush=True)


def require(cond: bool, msg: str) -> None:
    if not cond:
        raise AssertionError(msg)


def wait_for(what: str, check: Any, timeout: float, every: float = 1.0) -> Any:
    """Poll ``check()`` until it returns something truthy (bounded); AssertionError otherwise."""
    end = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = check()
            if value:
                return value
            last = value
        except Exception as exc:  # kubectl hiccups while pods move: keep polling
            last = f"{type(exc).__name__}: {exc}"
        require(time.monotonic() < end, f"{what} not within {timeout:.0f}s (last: {last!r})")
        time.sleep(every)


@dataclass(frozen=True)
class Rec:
    kind: str
    started: float
    ended: float
    status: int
    key: str = ""
    value: int = 0
    rid: str = ""  # X-Request-ID sent: the cache logs it with the request's status and duration
    error: str = ""  # the client's exception when no response came (status 0)

    @property
    def ok(self) -> bool:
        return self.status in (200, 404) if self.kind == "get" else self.status == 200


class Load:
    """Two client threads: PUT unique keys, GET them back, increment one counter."""

    def __init__(
        self,
        api: Any,
        tag: str,
        client_timeout: float,
        seconds: float = 300,
        max_requests: int = 50_000,
    ):
        self.client_timeout = client_timeout
        self.api, self.tag = api, tag
        self.seconds, self.max_requests = seconds, max_requests
        self.records: list[Rec] = []
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in (0, 1)]

    def start(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(30)

    def one(
        self, kind: str, method: str, path: str, body: Any, rid: str, key: str = "", n: int = 0
    ) -> None:
        started = time.monotonic()
        error = ""
        try:
            status = self.api.req(
                method,
                path,
                json=body,
                headers={"X-Request-ID": rid},
                timeout=httpx.Timeout(self.client_timeout, connect=3.0),
            ).status_code
        except Exception as exc:  # connection refused/reset, client timeout
            status, error = 0, f"{type(exc).__name__}: {exc}"[:200]
        with self.lock:
            self.records.append(Rec(kind, started, time.monotonic(), status, key, n, rid, error))

    def run(self, index: int) -> None:
        end = time.monotonic() + self.seconds
        for n in range(self.max_requests):
            if self.stop_event.is_set() or time.monotonic() > end:
                return
            rid = f"{self.tag}-{index}-{n}"
            if n % 3 == 2:
                self.one("incr", "POST", f"/v1/counters/{self.tag}:incr", None, rid)
            else:
                self.one("put", "PUT", f"/v1/kv/{rid}", {"value": n}, rid, rid, n)
            self.stop_event.wait(0.02)

    def snapshot(self) -> list[Rec]:
        with self.lock:
            return list(self.records)


def master_pod(p: Any, via: str) -> str:
    """The master's pod name as the Sentinel in pod ``via`` reports it."""
    out = p.c.k("exec", via, "-c", "redis", "--", "sh", "-c", WHO_IS_MASTER, timeout=20)
    host = out.strip().splitlines()[0] if out.strip() else ""
    require(bool(host), f"the Sentinel of {via} names no master")
    return host.split(".", 1)[0]


@dataclass
class PodState:
    """One Redis pod as settled() sees it."""

    master: str  # the master's pod, as this pod's Sentinel names it ("" if none)
    tilt: bool
    replication: str  # INFO replication of this pod's Redis


def pod_state(p: Any, pod: str) -> PodState:
    """Sentinel's view and Redis's replication of ``pod``, in one kubectl exec."""
    out = p.c.k("exec", pod, "-c", "redis", "--", "sh", "-c", POD_STATE, timeout=20)
    lines = out.splitlines()
    fields = dict(ln.split("=", 1) for ln in lines[:2] if "=" in ln)
    return PodState(
        master=fields.get("master", "").split(".", 1)[0],
        tilt=fields.get("tilt", "").strip() != "0",
        replication="\n".join(lines[2:]),
    )


def settled(p: Any, pods: list[str]) -> str:
    """The master's pod when every Sentinel names it, none is in TILT and all its replicas are
    online; otherwise an AssertionError saying what is not so (wait_for reports the last)."""
    states = {pod: pod_state(p, pod) for pod in pods}
    named = {state.master for state in states.values()}
    require(len(named) == 1 and "" not in named, f"the Sentinels name {named or '-'}")
    tilted = [pod for pod, state in states.items() if state.tilt]
    require(not tilted, f"the Sentinel of {', '.join(tilted)} is in TILT")
    master = named.pop()
    require(master in states, f"the Sentinels name {master}, not one of {pods}")
    info = states[master].replication
    online = [ln for ln in info.splitlines() if ln.startswith("slave") and "state=online" in ln]
    require("role:master" in info, f"{master} is not serving as master")
    require(len(online) == len(pods) - 1, f"{len(online)} of {len(pods) - 1} replicas online")
    return master


def switch_to_sentinel(p: Any) -> str:
    t = time.monotonic()
    p.c.h(
        "upgrade", p.c.release, p.c.chart, *p.values_args(), "-f", str(SENTINEL_VALUES),
        "--wait", "--timeout", "8m",
    )  # fmt: skip
    upgrade = time.monotonic() - t
    wait_for(
        f"{REDIS_PODS} ready Redis pods",
        lambda: len(p.c.ready_pod_names("redis")) == REDIS_PODS,
        timeout=300,
    )
    if "cache" not in p.api:
        p.expose()
    p.wait_ready(p.api["cache"], timeout=180)
    return f"upgrade to sentinel mode {upgrade:.1f}s"


def p_sentinel(p: Any) -> str:
    """Proof 7: delete the master pod under load; report failover time, failures, losses."""
    details = [switch_to_sentinel(p)]
    cache = p.api["cache"]
    r = cache.req("GET", "/v1/kv/e2e-persist")
    if r.status_code == 200:  # written by proof 2 before the switch
        details.append("standalone data kept across the switch")
    pods = sorted(p.c.ready_pod_names("redis"))
    # Settled first: the switch to sentinel mode restarts the pods and Sentinel may still be
    # failing over (seen once 3.5 s before the deletion), a replica still syncing, or a
    # Sentinel in TILT: one whose timer stalled for over 2 s (seen shortly after the switch)
    # acts on nothing for 30 s, so a failover asked for then waits that long (seen:
    # +try-failover at +0.6 s, -tilt at +23.9 s).
    t = time.monotonic()
    try:
        old = wait_for("the Sentinel set settled", lambda: settled(p, pods), timeout=180, every=3)
    except AssertionError:
        for pod in pods:  # what kept it from settling, as each Sentinel logged it
            logged = sentinel_events(p, pod, time.monotonic(), before=time.monotonic() - t + 60)
            say(
                f"Sentinel log ({pod}): "
                + ("; ".join(f"{e} {at:+.1f}s" for e, at in logged) or "-")
            )
        raise
    details.append(f"set settled in {time.monotonic() - t:.1f}s")
    others = [name for name in pods if name != old]
    say(f"master is {old}; watching through {others[0]}")
    tag = f"sentinel-{uuid.uuid4().hex[:6]}"
    restarts_before = cache_restarts(p)
    bound = request_bound(p.c.values)
    load = Load(cache, tag, bound + CLIENT_EXTRA).start()
    try:
        warm = time.monotonic()
        wait_for(
            "a steady load",
            lambda: sum(1 for x in load.snapshot() if x.ok and x.started > warm) >= 50,
            timeout=60,
        )
        # The stopping master's own log: its preStop handover writes there (the chart sends
        # the hook's stderr to the container's), and the pod's log goes with the pod.
        handover_log = follow_log(p, old)
        deleted = time.monotonic()
        p.c.k("delete", "pod", old, "--wait=false")
        say(f"deleted {old}")
        try:
            promoted_to = wait_for(
                "Sentinel's promotion",
                lambda: (m := master_pod(p, others[0])) != old and m,
                timeout=120,
                every=1.0,  # each poll is a kubectl exec: CPU this 2-core machine needs
            )
        except AssertionError:
            # What each surviving Sentinel saw, and where the pods are: the first thing to read.
            for pod in others:
                seen = sentinel_events(p, pod, deleted)
                events = "; ".join(f"{e} {t:+.2f}s" for e, t in seen) or "-"
                say(f"Sentinel log ({pod}): {events}")
            say(p.c.k("get", "pods", "-l", p.c.sel("redis"), "-o", "wide", check_rc=False))
            raise
        promoted = time.monotonic()
        say(f"{promoted_to} promoted {promoted - deleted:.1f}s after the deletion")

        def recovered() -> bool:
            now = time.monotonic()
            fails = [x.ended for x in load.snapshot() if x.kind != "get" and not x.ok]
            return now - max(fails, default=deleted) >= 3 and now - promoted >= 3

        wait_for("writes succeeding again", recovered, timeout=RECOVERY + 50, every=0.5)
    finally:
        load.stop()
    handover = handover_lines(handover_log)
    say(f"{old}'s handover: " + ("; ".join(handover) or "nothing logged"))
    records = load.snapshot()
    # When Sentinel switched, from its own log: the kubectl exec poll above notices it up to
    # a second or two late on this machine, which would flatter the recovery time.
    events = sentinel_events(p, others[0], deleted)
    switched = [t for e, t in events if e == "+switch-master" and t > 0]  # not the install's
    if switched:
        promoted = deleted + switched[0]
    wait_for(
        f"{old} back and all {REDIS_PODS} Redis pods ready",
        lambda: len(p.c.ready_pod_names("redis")) == REDIS_PODS,
        timeout=240,
        every=2,
    )
    p.wait_ready(cache, timeout=120)
    say(f"{old} restarted: " + start_choice(p, old))
    # The release stays in sentinel mode for the proofs after this one: they start on a set
    # whose Sentinels agree and whose replicas are online again (a Sentinel that came back
    # with a stale view once demoted the new master here, and proof 15 met the refusals).
    wait_for("the Sentinel set settled again", lambda: settled(p, pods), timeout=180, every=3)

    failed = [x for x in records if not x.ok]
    failed_writes = [x for x in failed if x.kind != "get"]
    # Recovery: every write sent after this succeeded (a request's send time, so a timed-out
    # one counts from when it was sent, not from when the client gave up on it).
    last_failure = max((x.started for x in failed_writes), default=promoted)
    worst = max(records, key=lambda x: x.ended - x.started)
    slowest = worst.ended - worst.started
    statuses = sorted({x.status for x in failed})
    acked = [x for x in records if x.kind == "put" and x.ok]
    missing = missing_writes(cache, acked)
    acked_incr = sum(1 for x in records if x.kind == "incr" and x.ok)
    counted = cache.req("GET", f"/v1/counters/{tag}")
    counter = counted.json()["value"] if counted.status_code == 200 else 0
    report = (
        f"master {old} deleted, {promoted_to} promoted {promoted - deleted:.1f}s later; "
        + (
            f"the last failed write was sent {last_failure - deleted:.1f}s after the deletion "
            f"({last_failure - promoted:+.1f}s from the promotion); "
            if failed_writes
            else "no write failed; "
        )
        + f"{len(records)} requests, {len(failed)} failed (statuses {statuses}); slowest "
        f"{slowest:.2f}s ({worst.kind} sent {worst.started - deleted:+.1f}s from the deletion, "
        f"status {worst.status}); acknowledged PUTs missing {len(missing)}/{len(acked)}; counter "
        f"{counter} for {acked_incr} acknowledged increments"
    )
    say(report)
    say(f"Sentinel's log ({others[0]}): " + ("; ".join(f"{e} {t:+.2f}s" for e, t in events) or "-"))
    restarts_after = cache_restarts(p)
    if restarts_after != restarts_before:
        say(f"cache containers restarted: {restarts_before} -> {restarts_after}")
    # The service's own account of every request (by X-Request-ID): the time it held each one,
    # apart from the time the request spent reaching it and coming back on this busy machine.
    seen = cache_log(p, tag)
    held = [(ms, rid) for rid, lines in seen.items() if (ms := served_ms(lines)) is not None]
    say(
        f"the cache logged {len(held)} of {len(records)} requests; longest held "
        + (f"{max(held)[0]:.0f} ms ({max(held)[1]})" if held else "-")
    )
    refused = [x for x in records if x.status == 0 and x.error.startswith("ConnectError")]
    slow = [x for x in records if x.ended - x.started > bound]
    # A slow request no cache pod logged never reached one: while kube-proxy rewrites the
    # rules of a Service whose endpoints come back (every cache pod is unready while no master
    # answers), a connection can land on the socket it holds open on the NodePort, which
    # accepts and never answers. That is this harness's way in, not the service.
    unrouted = [x for x in slow if x.rid not in seen]
    served_late = [x for x in slow if x.rid in seen]
    longest_held = max((ms for ms, _ in held), default=0.0) / 1000
    path = (
        f"{len(refused)} refused while no cache pod was ready; {len(unrouted)} connected but "
        f"never reached a cache pod (timed out after {load.client_timeout:.0f}s); the cache held "
        f"none longer than {longest_held:.2f}s"
    )
    say(path)
    # Who listens on the NodePort of this host (the node): kube-proxy holds it open.
    port = cache.base.rsplit(":", 1)[1]
    listeners = subprocess.run(
        ["ss", "-Htlnp", f"sport = :{port}"], capture_output=True, text=True, timeout=10
    )
    say(f"listening on NodePort {port}: {listeners.stdout.strip() or listeners.stderr.strip()}")
    skip = {x.rid for x in refused}
    odd = [x for x in records if x.rid not in skip and (not x.ok or x.ended - x.started > bound)]
    if odd:
        # Each slow or failed request as the cache pods logged it: tells a request the service
        # held from one that never reached it.
        say("requests without a timely answer:\n" + "\n".join(server_view(seen, odd, deleted)))
    if last_failure - promoted > RECOVERY or served_late or longest_held > bound or 500 in statuses:
        # What the cache pods logged (warnings only): the first thing to read on a failure.
        logs = p.c.k("logs", "-l", p.c.sel("cache"), "--tail=40", "--prefix", check_rc=False)
        say("cache logs:\n" + "\n".join(ln for ln in logs.splitlines() if "warning" in ln))
    require(last_failure - promoted <= RECOVERY, f"writes not back within {RECOVERY}s: {report}")
    require(500 not in statuses, f"a request answered 500: {report}")
    require(longest_held <= bound, f"the cache held a request {longest_held:.2f}s: {report}")
    require(
        not served_late,
        f"{len(served_late)} requests the cache received took > {bound}s for the client: "
        f"{served_late[:3]}; {report}",
    )
    report += f"; {path}"
    early = [x for x in missing if x.ended < deleted - 1]
    late = [x for x in missing if x.started > promoted + 2]
    require(not early, f"writes acknowledged before the deletion lost: {early[:3]}")
    require(not late, f"writes acknowledged after the failover lost: {late[:3]}")
    # A deleted master hands over with writes paused (redis-handover.sh): nothing acknowledged
    # may be missing, not even around the switch.
    require(not missing, f"{len(missing)} acknowledged writes lost: {missing[:3]}")
    return "; ".join([*details, report])


def follow_log(p: Any, pod: str) -> subprocess.Popen[str]:
    """``kubectl logs -f`` of the redis container of ``pod`` from now on; it ends when the
    container stops."""
    cmd = [p.c.kubectl, "-n", p.c.ns, "logs", "-f", pod, "-c", "redis", "--since=1s"]
    env = {**os.environ, "KUBECONFIG": p.c.kubeconfig}
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )


def handover_lines(proc: subprocess.Popen[str], timeout: float = 15) -> list[str]:
    """The ``redis handover:`` lines the followed log showed (the stream is cut after
    ``timeout`` seconds if the old container has not stopped by then)."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return [ln.strip() for ln in out.splitlines() if "redis handover:" in ln]


def missing_writes(cache: Any, acked: list[Rec]) -> list[Rec]:
    """Acknowledged PUTs not readable with their value (kv:mget in batches)."""
    missing: list[Rec] = []
    for at in range(0, len(acked), 500):
        batch = acked[at : at + 500]
        r = cache.req("POST", "/v1/kv:mget", json={"keys": [x.key for x in batch]})
        require(r.status_code == 200, f"kv:mget -> {r.status_code} {r.text[:200]}")
        values = r.json()["values"]
        missing += [x for x in batch if values.get(x.key) != x.value]
    return missing


def cache_restarts(p: Any) -> dict[str, int]:
    """Restart count of each cache pod's containers (a restart would drop requests)."""
    return {
        pod["metadata"]["name"]: sum(
            c.get("restartCount", 0) for c in pod.get("status", {}).get("containerStatuses", [])
        )
        for pod in p.c.pods("cache")
    }


def cache_log(p: Any, tag: str) -> dict[str, list[str]]:
    """What the cache pods (and their previous containers) logged per request id of ``tag``."""
    seen: dict[str, list[str]] = {}
    for pod in sorted(cache_restarts(p)):
        for previous in ([], ["--previous"]):
            out = p.c.k(
                "logs", pod, "--all-containers", "--tail=-1", *previous, check_rc=False, timeout=60
            )  # fmt: skip
            for line in out.splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                rid = entry.get("request_id") if isinstance(entry, dict) else None
                if not isinstance(rid, str) or not rid.startswith(tag):
                    continue
                what = (
                    f"{entry.get('status')} in {entry.get('duration_ms')} ms"
                    if entry.get("msg") == "request"
                    else f"{entry.get('level')}: {str(entry.get('msg'))[:160]}"
                )
                where = f"{pod}{' (previous)' if previous else ''} at {entry.get('ts')}"
                seen.setdefault(rid, []).append(f"{where}: {what}")
    return seen


def served_ms(lines: list[str]) -> float | None:
    """The duration the cache logged for a request (None when it logged none)."""
    for line in lines:
        _, sep, tail = line.rpartition(" in ")
        if sep and tail.endswith(" ms"):
            try:
                return float(tail.removesuffix(" ms"))
            except ValueError:
                continue
    return None


def server_view(seen: dict[str, list[str]], recs: list[Rec], deleted: float) -> list[str]:
    """One line per request: what the client saw, and what the cache pods logged for it."""
    lines = []
    for x in sorted(recs, key=lambda r: r.started):
        client = f"status {x.status}" if x.status else x.error or "no response"
        server = "; ".join(seen.get(x.rid, [])) or "in no cache pod's log"
        lines.append(
            f"  {x.kind} {x.rid} sent {x.started - deleted:+.2f}s, {x.ended - x.started:.2f}s, "
            f"{client} | cache: {server}"
        )
    return lines


def start_choice(p: Any, pod: str) -> str:
    """What the start script of ``pod``'s redis container said about the master it chose
    (files/redis-find-master.sh: ``redis: ...`` lines; one per second while it waits)."""
    out = p.c.k("logs", pod, "-c", "redis", "--tail=500", check_rc=False, timeout=60)
    said = [ln for ln in out.splitlines() if ln.startswith("redis: ")]
    waits = [ln for ln in said if "not starting as master yet" in ln]
    other = [ln for ln in said if ln not in waits]
    shown = ([f"{len(waits)} waits, the first: {waits[0]}"] if waits else []) + other
    return "; ".join(shown) or "-"


def sentinel_events(
    p: Any, pod: str, deleted: float, before: float = 35.0
) -> list[tuple[str, float]]:
    """Failover events from a Sentinel's log, in seconds from the deletion (same clock),
    from ``before`` seconds ahead of it (a TILT entered before the deletion lasts 30 s)."""
    out = p.c.k("logs", pod, "-c", "sentinel", "--tail=200", check_rc=False, timeout=60)
    offset = time.time() - time.monotonic()
    events = []
    for line in out.splitlines():
        # "1:X 01 Dec 2026 19:20:01.123 # +switch-master mymaster old 6379 new 6379"
        parts = line.split(" ", 6)
        if len(parts) < 7 or not parts[6].lstrip("#* ").startswith(("+", "-")):
            continue
        event = parts[6].lstrip("#* ").split(" ", 1)[0]
        if event not in ("+sdown", "+odown", "+try-failover", "+elected-leader",
                         "+selected-slave", "+promoted-slave", "+switch-master", "-odown",
                         "+tilt", "-tilt") and not event.startswith("-failover-abort"):  # fmt: skip
            continue
        try:
            wall = datetime.strptime(" ".join(parts[1:5]), "%d %b %Y %H:%M:%S.%f")
        except ValueError:
            continue
        at = wall.replace(tzinfo=UTC).timestamp() - offset - deleted
        if at > -before:
            events.append((event, at))
    return events
