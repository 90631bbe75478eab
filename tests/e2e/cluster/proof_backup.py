"""The proofs of issue 14 (pgBackRest backups and point-in-time recovery), run after the others.

proofs.py calls :func:`steps` with its ``Proofs`` object; everything here goes through that
object's helpers (``Cluster`` for kubectl/helm, ``Api`` for HTTP to 127.0.0.1 NodePorts,
``check``/``CheckFailed``/``log``), so it runs unchanged wherever proofs.py runs.

  backup    the main release (installed again over its kept volumes if it is gone):
            each tier's stanza exists; a Job made from each tier's backup CronJob template
            runs and succeeds; pg_stat_archiver on the current primary (Patroni moved it in
            proofs 8-10) shows WAL archived and no failure since; `helm test` of the
            archiving check passes; the sidecar's metrics show the backups
  restore   accounts, transfers and documents written, a time T, more written after T;
            a second release installed with restore values from the first one's repository
            (to T, one member per tier) answers the API with exactly the balances and the
            document count of T, not the transfers after it, accepts new transfers, and
            archives into its own stanza
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from types import ModuleType
from typing import Any

CRITICAL = "postgresql-critical"
ML = "postgresql-ml"
#: The PostgreSQL image's entrypoint: secrets come as files, which it hands to what it runs.
ENTRYPOINT = "/usr/local/bin/strata-patroni"
RESTORED = "strata-pitr"  # the second release (a name containing "strata": fullname = name)
#: Requests of the restored release: it shares one small node with the main release.
SMALL = [
    "critical.replicaCount=1", "ml.replicaCount=1", "cache.replicaCount=1",
    "postgresqlCritical.replicas=1", "postgresqlMl.replicas=1", "tests.enabled=false",
    *(f"{c}.resources.requests.cpu=10m" for c in ("critical", "ml", "cache", "postgresqlCritical",
                                                   "postgresqlMl", "redis")),
    "backup.repoHost.resources.requests.cpu=5m", "backup.sidecar.resources.requests.cpu=5m",
]  # fmt: skip


def _h(p: Any) -> ModuleType:
    """The proofs module (``__main__`` when run as a script) that owns the helpers."""
    return sys.modules[type(p).__module__]


def stanza(c: Any, tier: str) -> str:
    return f"{c.release}-{tier}"


def primary(p: Any, tier: str, c: Any = None) -> str:
    """The tier's leader: the pod Patroni labelled role=primary/master."""
    c = c or p.c
    for role in ("primary", "master"):
        names = c.k("get", "pods", "-l", f"{c.sel(tier)},role={role}", "-o", "name").split()
        if names:
            return str(names[0].split("/", 1)[1])
    raise _h(p).CheckFailed(f"{tier}: no pod labelled as the primary")


def sh(p: Any, pod: str, container: str, script: str, c: Any = None, timeout: float = 120) -> str:
    """Run a shell script in a container of the PostgreSQL image, through its entrypoint (which
    reads the secret files into PGPASSWORD and the PGBACKREST_* options first)."""
    c = c or p.c
    return str(c.k("exec", pod, "-c", container, "--", ENTRYPOINT, "sh", "-c", script,
                   timeout=timeout))  # fmt: skip


def sql(p: Any, pod: str, database: str, query: str, c: Any = None) -> str:
    """SQL as the tier's superuser in its pgbackrest sidecar (PGHOST/PGUSER set; PGPASSWORD
    from the password file, through the image's entrypoint)."""
    c = c or p.c
    out = c.k(
        "exec", pod, "-c", "pgbackrest", "--", ENTRYPOINT, "psql", "-X", "-At",
        "-v", "ON_ERROR_STOP=1", "-d", database, "-c", query, timeout=60,
    )  # fmt: skip
    return str(out).strip()


def info(p: Any, tier: str, c: Any = None) -> dict[str, Any]:
    """`pgbackrest info` of the tier's stanza, read from its primary's sidecar."""
    c = c or p.c
    out = sh(p, primary(p, tier, c), "pgbackrest",
             f"pgbackrest --stanza={stanza(c, tier)} info --output=json", c)  # fmt: skip
    (entry,) = json.loads(out)
    return dict(entry)


def wait_stanza(p: Any, tier: str, c: Any = None, timeout: float = 240) -> dict[str, Any]:
    """Until the sidecar of the primary created the stanza (status 0 ok or 2 no backup yet)."""
    end = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < end:
        try:
            last = info(p, tier, c)
            if last["status"]["code"] in (0, 2):
                return last
        except (_h(p).CheckFailed, subprocess.TimeoutExpired, ValueError) as e:
            last = repr(e)
        time.sleep(3)
    raise _h(p).CheckFailed(f"{tier}: stanza not created within {timeout:.0f}s: {last}")


def run_backup_job(p: Any, tier: str, kind: str) -> tuple[str, float]:
    """A Job made from the tier's CronJob template (what the schedule runs), until it ends."""
    h = _h(p)
    c = p.c
    cron = c.kj("get", "cronjob", f"{c.release}-{tier}-backup-{kind}")
    template = cron["spec"]["jobTemplate"]
    name = f"{c.release}-{tier}-backup-{kind}-e2e-{uuid.uuid4().hex[:5]}"[:63]
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "labels": dict((template.get("metadata") or {}).get("labels") or {}),
            "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
        },
        "spec": template["spec"],
    }
    t = time.monotonic()
    c.k("apply", "-f", "-", input=json.dumps(job))
    end = time.monotonic() + 900
    while time.monotonic() < end:
        status = c.kj("get", "job", name).get("status", {})
        if status.get("succeeded"):
            return name, time.monotonic() - t
        if status.get("failed", 0) > int(template["spec"].get("backoffLimit", 6)):
            break
        time.sleep(2)
    logs = c.k("logs", "-l", f"job-name={name}", "--tail=40", check_rc=False)
    raise h.CheckFailed(f"backup Job {name} did not succeed: {logs[-2000:]}")


def archiver(p: Any, tier: str, c: Any = None) -> dict[str, Any]:
    """pg_stat_archiver of the tier's primary."""
    pod = primary(p, tier, c)
    row = sql(p, pod, "postgres",
              "SELECT archived_count, failed_count, coalesce(last_archived_wal, ''), "
              "coalesce(extract(epoch FROM last_archived_time), 0), "
              "coalesce(extract(epoch FROM last_failed_time), 0) FROM pg_stat_archiver",
              c)  # fmt: skip
    archived, failed, wal, ok_at, failed_at = row.split("|")
    return {"pod": pod, "archived": int(archived), "failed": int(failed), "wal": wal,
            "ok_at": float(ok_at), "failed_at": float(failed_at)}  # fmt: skip


def sidecar_metrics(p: Any, pod: str, c: Any = None) -> dict[str, float]:
    """The pgbackrest sidecar's /metrics, from inside its container."""
    text = sh(
        p, pod, "pgbackrest",
        "python3 -c \"import urllib.request as u; "
        "print(u.urlopen('http://127.0.0.1:9854/metrics', timeout=5).read().decode())\"", c,
    )  # fmt: skip
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            out[series] = float(value)
    return out


def p_backup(p: Any) -> str:
    h = _h(p)
    c = p.c
    out = [p.ensure_main_release()]
    for tier, kind in ((CRITICAL, "full"), (ML, "diff")):
        wait_stanza(p, tier)
        before = {b["label"] for b in info(p, tier)["backup"]}
        job, took = run_backup_job(p, tier, kind)
        backups = info(p, tier)["backup"]
        new = [b for b in backups if b["label"] not in before]
        h.check(len(new) == 1, f"{tier}: expected one new backup, got {new}")
        # pgBackRest makes a differential backup full when there is no full one yet.
        h.check(new[0]["type"] in (kind, "full"), f"{tier}: backup type {new[0]['type']}")
        size = new[0]["info"]["repository"]["delta"]
        out.append(f"{tier}: Job {job} ({new[0]['type']} {new[0]['label']}, "
                   f"{size / 1e6:.1f} MB stored) in {took:.0f}s")  # fmt: skip
        # Archiving is healthy on the current primary (Patroni moved it in proofs 8-10).
        arch = archiver(p, tier)
        h.check(arch["archived"] > 0, f"{tier}: nothing archived: {arch}")
        h.check(arch["failed_at"] <= arch["ok_at"], f"{tier}: the last archiving failed: {arch}")
        out.append(f"{tier} primary {arch['pod']}: {arch['archived']} WAL archived, "
                   f"last {arch['wal']}, {arch['failed']} failed attempts, none since")  # fmt: skip
    # The chart's own archiving check (helm test: pgbackrest check per tier).
    t = time.monotonic()
    for tier in (CRITICAL, ML):
        test = f"{c.release}-test-archiving-{tier}"
        try:
            c.h("test", c.release, "--filter", f"name={test}", "--timeout", "5m")
        except h.CheckFailed as e:
            logs = c.k("logs", test, "--tail=30", check_rc=False)
            raise h.CheckFailed(f"{e}; {test}: {logs[-1500:]}") from None
    out.append(f"helm test archiving checks passed ({time.monotonic() - t:.0f}s)")
    # The sidecar reports the backup (it collects every refreshSeconds: 60 by default).
    pod = primary(p, CRITICAL)
    series = f'strata_pgbackrest_backups{{stanza="{stanza(c, CRITICAL)}",type="full"}}'
    end = time.monotonic() + 150
    metrics: dict[str, float] = {}
    while time.monotonic() < end:
        metrics = sidecar_metrics(p, pod)
        if metrics.get(series, 0) >= 1:
            break
        time.sleep(5)
    h.check(metrics.get(series, 0) >= 1, f"sidecar metrics lack the backup: {sorted(metrics)[:20]}")
    lab = f'stanza="{stanza(c, CRITICAL)}"'
    h.check(metrics.get(f"strata_pgbackrest_up{{{lab}}}") == 1, "sidecar: repository unreachable")
    repo = metrics.get(f'strata_pgbackrest_repository_bytes{{{lab},kind="archive"}}', 0)
    out.append(f"sidecar metrics on {pod}: backups reported, archive {repo / 1e6:.1f} MB")
    return "; ".join(out)


# ---------------------------------------------------------------------------------------
# A second release restored to a point in time


def seed(p: Any, tag: str, n: int) -> tuple[list[str], list[str]]:
    """Two funded accounts and ``n`` transfers between them; returns (accounts, transfer ids)."""
    h = _h(p)
    api = p.api["critical"]
    ids = []
    for side in ("a", "b"):
        r = api.req("POST", "/v1/accounts", json={"owner": f"pitr-{tag}-{side}", "currency": "EUR"})
        h.check(r.status_code == 201, f"create account -> {r.status_code} {r.text[:200]}")
        ids.append(r.json()["id"])
        r = api.req("POST", f"/v1/accounts/{ids[-1]}/deposits",
                    json={"amount": 100_000, "reference": f"pitr-{tag}"})  # fmt: skip
        h.check(r.status_code == 201, f"deposit -> {r.status_code} {r.text[:200]}")
    return ids, transfers(p, ids, tag, n)


def transfers(p: Any, ids: list[str], tag: str, n: int) -> list[str]:
    h = _h(p)
    out = []
    for i in range(n):
        a, b = ids if i % 2 else ids[::-1]
        key = f"{tag}-{i}-{uuid.uuid4().hex[:6]}"
        r = p.api["critical"].req(
            "POST", "/v1/transfers", headers={"Idempotency-Key": key},
            json={"from_account": a, "to_account": b, "amount": 7 + i, "currency": "EUR",
                  "reference": f"{tag}-{i}"},
        )  # fmt: skip
        h.check(r.status_code == 201, f"transfer -> {r.status_code} {r.text[:200]}")
        out.append(r.json()["id"])
    return out


def documents(p: Any, collection: str, n: int, tag: str) -> int:
    h = _h(p)
    ml = p.api["ml"]
    r = ml.req("PUT", f"/v1/collections/{collection}")
    h.check(r.status_code in (200, 201), f"collection -> {r.status_code} {r.text[:200]}")
    body = "".join(json.dumps({"tag": tag, "i": i}) + "\n" for i in range(n))
    r = ml.req("POST", f"/v1/collections/{collection}/documents:bulk", content=body.encode(),
               headers={"Content-Type": "application/x-ndjson"})  # fmt: skip
    h.check(r.status_code == 201, f"bulk -> {r.status_code} {r.text[:200]}")
    r = ml.req("GET", f"/v1/collections/{collection}/documents:count")
    h.check(r.status_code == 200, f"count -> {r.status_code} {r.text[:200]}")
    return int(r.json()["count"])


def archived_past(p: Any, tier: str) -> str:
    """Switch WAL on the primary and wait until that segment is in the repository."""
    h = _h(p)
    pod = primary(p, tier)
    wal = sql(p, pod, "postgres", "SELECT pg_walfile_name(pg_switch_wal())")
    end = time.monotonic() + 180
    while time.monotonic() < end:
        if archiver(p, tier)["wal"] >= wal:
            return wal
        time.sleep(1)
    raise h.CheckFailed(f"{tier}: {wal} not archived within 180s: {archiver(p, tier)}")


def expose_restored(p: Any, c: Any) -> dict[str, Any]:
    """NodePort twins of the restored release's services (names apart from the main ones)."""
    h = _h(p)
    apis = {}
    node = p.adapter.node_address()  # where NodePorts answer: 127.0.0.1 or the kind node
    if p.adapter.enforces_network_policy:  # the chart lets only its ingress controller in
        policy = h.netpol.harness_policy(c, ("critical", "ml"), p.adapter.harness_cidr())
        policy["metadata"] = {"name": "e2e-allow-harness-pitr", "labels": {"strata-e2e": "pitr"}}
        c.k("apply", "-f", "-", input=json.dumps(policy))
    for comp in ("critical", "ml"):
        svc = c.service(comp)
        port = svc["spec"]["ports"][0]
        twin = {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": f"e2e-pitr-{comp}-np", "labels": {"strata-e2e": "nodeport-pitr"}},
            "spec": {"type": "NodePort", "selector": svc["spec"]["selector"],
                     "ports": [{"name": "http", "port": port["port"],
                                "targetPort": port["targetPort"]}]},
        }  # fmt: skip
        c.k("apply", "-f", "-", input=json.dumps(twin))
        node_port = c.kj("get", "svc", f"e2e-pitr-{comp}-np")["spec"]["ports"][0]["nodePort"]
        apis[comp] = h.Api(comp, f"http://{node}:{node_port}", p.tokens[comp])
        p.wait_ready(apis[comp], timeout=180)
    return apis


def p_restore(p: Any) -> str:
    h = _h(p)
    c = p.c
    if "critical" not in p.api:
        p.ensure_main_release()
    for tier in (CRITICAL, ML):
        if not [b for b in info(p, tier)["backup"] if not b.get("error")]:
            run_backup_job(p, tier, "full")  # a restore starts from a backup taken before T
    accounts, before = seed(p, "pitr", 12)
    count_at_t = documents(p, "pitr", 300, "before")
    balances_at_t = p.balances(*accounts)
    # T on the database's clock, after every write above was acknowledged.
    target = sql(p, primary(p, CRITICAL), "postgres",
                 "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', "
                 "'YYYY-MM-DD HH24:MI:SS.US') || '+00'")  # fmt: skip
    time.sleep(1)
    after = transfers(p, accounts, "pitr-after", 8)
    count_after = documents(p, "pitr", 200, "after")
    h.check(count_after == count_at_t + 200, f"ml count {count_after}")
    h.check(p.balances(*accounts) != balances_at_t, "the writes after T changed no balance")
    wal = {tier: archived_past(p, tier) for tier in (CRITICAL, ML)}

    ns_args = argparse.Namespace(**vars(p.args))
    ns_args.release = RESTORED
    c2 = h.Cluster(ns_args)
    tiers = ("postgresqlCritical", "postgresqlMl")
    # enabled is a boolean (--set); the release name and the time are strings (--set-string).
    restore = [f"{key}.restore.{k}={v}" for key in tiers
               for k, v in (("fromRelease", c.release), ("targetTime", target))]  # fmt: skip
    sets = [a for s in [*SMALL, *(f"{k}.restore.enabled=true" for k in tiers)]
            for a in ("--set", s)]  # fmt: skip
    sets += [a for s in restore for a in ("--set-string", s)]
    t = time.monotonic()
    try:
        files = [a for v in c2.values for a in ("-f", v)]
        c2.h("install", RESTORED, c2.chart, *files, *sets, "--wait", "--timeout", "12m",
             timeout=900)  # fmt: skip
    except h.CheckFailed as e:
        logs = c2.k("logs", f"{RESTORED}-{CRITICAL}-0", "-c", "postgresql", "--tail=40",
                    check_rc=False)  # fmt: skip
        raise h.CheckFailed(f"{e}; restored member log: {logs[-2500:]}") from None
    installed = time.monotonic() - t
    apis = expose_restored(p, c2)
    saved = dict(p.api)
    try:
        p.api.update(apis)
        got = p.balances(*accounts)
        h.check(got == balances_at_t, f"restored balances {got} != {balances_at_t} at T")
        for tid in after:
            r = apis["critical"].req("GET", f"/v1/transfers/{tid}")
            h.check(r.status_code == 404, f"transfer {tid} made after T -> {r.status_code}")
        for tid in before[-3:]:
            r = apis["critical"].req("GET", f"/v1/transfers/{tid}")
            h.check(r.status_code == 200, f"transfer {tid} made before T -> {r.status_code}")
        r = apis["ml"].req("GET", "/v1/collections/pitr/documents:count")
        h.check(r.status_code == 200 and r.json()["count"] == count_at_t,
                f"restored ml count {r.text[:200]} != {count_at_t} at T")  # fmt: skip
        transfers(p, accounts, "pitr-restored", 2)  # the restored ledger takes writes
        # The invariants on the restored leader: balances = entries, the audit append-only.
        pod = primary(p, CRITICAL, c2)
        bad = sql(p, pod, "strata_critical",
                  "SELECT count(*) FROM accounts a WHERE a.balance <> (SELECT "
                  "coalesce(sum(amount), 0) FROM entries e WHERE e.account_id = a.id)",
                  c2)  # fmt: skip
        h.check(bad == "0", f"{bad} restored accounts not explained by their entries")
        tampered = sh(p, pod, "pgbackrest",
                      "psql -X -At -d strata_critical -c \"UPDATE audit_log SET actor = 'x'\" "
                      "2>&1 || true", c2)  # fmt: skip
        h.check("append-only" in tampered, f"audit_log UPDATE on the restored ledger: {tampered}")
        timeline = int(sql(p, pod, "postgres",
                           "SELECT timeline_id FROM pg_control_checkpoint()", c2))  # fmt: skip
        own = {tier: wait_stanza(p, tier, c2) for tier in (CRITICAL, ML)}
    finally:
        for a in apis.values():
            a.close()
        p.api.clear()
        p.api.update(saved)
    return (
        f"T={target}; WAL archived through {wal}; release {RESTORED} restored (helm install "
        f"--wait {installed:.0f}s, 1 member per tier, timeline {timeline}): balances "
        f"{balances_at_t} as at T, {len(after)} transfers after T absent, ml count "
        f"{count_at_t} as at T; new writes accepted; archives into its own stanzas "
        f"{sorted(e['name'] for e in own.values())}"
    )


def p_restore_cleanup(p: Any) -> str:
    """Remove the restored release and what it kept (volumes, Secrets)."""
    c = p.c
    c.k("delete", "svc", "-l", "strata-e2e=nodeport-pitr", "--wait=true", check_rc=False)
    c.k("delete", "networkpolicy", "-l", "strata-e2e=pitr", check_rc=False)
    t = time.monotonic()
    c.run([c.helm, "-n", c.ns, "uninstall", RESTORED, "--wait", "--timeout", "5m"],
          timeout=400, check_rc=False)  # fmt: skip
    c.k("delete", "pvc,secret", "-l", f"app.kubernetes.io/instance={RESTORED}", "--wait=false",
        check_rc=False)  # fmt: skip
    return f"release {RESTORED} uninstalled in {time.monotonic() - t:.0f}s; its volumes released"


def _guard(p: Any, fn: Any) -> Any:
    """A failed command or unexpected answer is a failed check, not the end of the run."""

    def run() -> str:
        try:
            return str(fn(p))
        except (subprocess.CalledProcessError, ValueError, OSError, TypeError) as e:
            raise _h(p).CheckFailed(f"{type(e).__name__}: {e}") from e

    return run


def steps(p: Any) -> list[tuple[str, Any, bool]]:
    """(name, function, essential) of each proof, for proofs.py's runner."""
    return [
        ("proof 13: backup Jobs from the CronJobs, archiving", _guard(p, p_backup), False),
        ("proof 14: second release restored to a time T", _guard(p, p_restore), False),
        ("proof 14: restored release removed", _guard(p, p_restore_cleanup), False),
    ]
