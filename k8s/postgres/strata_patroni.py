#!/usr/bin/python3
"""Entry point and preStop hook of the Strata PostgreSQL image (Patroni, Kubernetes DCS).

    strata-patroni start     adopt, wait if needed, then exec `patroni /etc/patroni/patroni.yaml`
    strata-patroni prestop   on the leader only: hand leadership to a healthy replica first
    strata-patroni ready     readiness probe: Patroni's /readiness, or "no leader yet" (below)
    strata-patroni apply-config   push the chart's cluster-wide settings (dynamic.json) to Patroni
    strata-patroni post-bootstrap CONNSTR   (Patroni's post_bootstrap) create the database
                             and the metrics exporter's login role
    strata-patroni callback ACTION ROLE SCOPE   (Patroni's on_start / on_role_change) on the
                             primary: create or update the exporter's login role
    strata-patroni CMD ...   anything else runs as given (patronictl, psql, pgbackrest)

Every sub-command first reads the secrets the chart mounts as files (SECRET_FILES below) into
variables of this process: Patroni's PATRONI_*_PASSWORD, which Patroni, patronictl and the
REST calls here inherit, and pgBackRest's PGBACKREST_REPO1_* options (passphrase, object
store keys) and libpq's PGPASSWORD for the pgBackRest containers (sidecar, repository host,
backup Jobs), which run their commands through this entrypoint. PostgreSQL, started by
Patroni, inherits the PGBACKREST_* options for archive_command and restore_command. The
Secrets never appear in the pod's environment.

No failover logic lives here: leader election, promotion, demotion, rewinds and replica
creation are Patroni's. This script only covers three things Patroni cannot know:

* adoption: the previous chart version ran PostgreSQL behind a Service with a selector, whose
  Endpoints (same name as the Patroni scope) Kubernetes created without Patroni's labels.
  Patroni only sees objects carrying its labels, so it would try to create the leader
  Endpoints and fail on "already exists" forever. `start` adds the labels once.
* which member may create a cluster: only member 0 (`<statefulset>-0`). Another member with
  an empty data directory waits until the cluster exists (the `initialize` annotation of
  `<scope>-config`), then Patroni clones it from the leader. Without this, member 1 of an
  upgraded release (empty volume) could run initdb before member 0 adopted the old data.
  While it waits it answers 200 on Patroni's port so that the StatefulSet controller, which
  needs every member Ready before it replaces member 0, is not deadlocked; such a member has
  no role label, so no Service routes to it.
* planned shutdown of the leader (rollouts, drains, `kubectl delete pod`): `prestop` asks
  Patroni for a switchover to a healthy replica, preferring one with a higher ordinal (a
  StatefulSet rolls from the highest ordinal down, so those already run the new revision),
  so a rollout restarts the replicas first and switches over once.

* readiness while the cluster has no leader at all (a reinstall over kept volumes, every
  member restarted at once): the StatefulSet (OrderedReady, which cannot be changed on an
  existing release) starts member N+1 only once member N is Ready, but with synchronous
  replication Patroni rightly promotes no member before it has seen the others, so member 0
  alone would wait forever. `ready` reports a member whose PostgreSQL runs as Ready while
  no leader exists, so that every member starts and Patroni can elect the most advanced one.

and two small duties of a starting member: `apply-config` (postStart) patches Patroni's
dynamic configuration with what the chart renders, since Patroni reads `bootstrap.dcs` only
when it creates a cluster; `post-bootstrap` creates the application database after initdb
(a cluster restored from a backup already has it).

Standard library only (it runs with Debian's python3, beside Patroni's virtualenv).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import MutableMapping
from typing import Any

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
CONFIG = os.environ.get("STRATA_PATRONI_CONFIG", "/etc/patroni/patroni.yaml")
REST = os.environ.get("STRATA_PATRONI_REST", "http://127.0.0.1:8008")
REPLICA_ROLES = ("replica", "sync_standby", "quorum_standby")
SYNC_ROLES = ("sync_standby", "quorum_standby")
#: How long a stopping leader waits for an already rolled replica (higher ordinal) to become
#: a candidate before it settles for another one (within the pod's grace period).
PRESTOP_WAIT_SECONDS = 20.0
WAITING = "waiting for the cluster to be initialised by member 0"
#: The variable a program reads <- the variable naming the file that holds it (the chart's
#: read-only secrets volume). Not PATRONI_* or PGBACKREST_* names: Patroni and pgBackRest
#: parse their own prefixes. Each container is given only the pointers it needs.
SECRET_FILES = {
    "PATRONI_SUPERUSER_PASSWORD": "STRATA_PG_SUPERUSER_PASSWORD_FILE",
    "PATRONI_REPLICATION_PASSWORD": "STRATA_PG_REPLICATION_PASSWORD_FILE",
    "PATRONI_RESTAPI_PASSWORD": "STRATA_PG_RESTAPI_PASSWORD_FILE",
    # pgBackRest options (issue 14): repository encryption and object store credentials.
    "PGBACKREST_REPO1_CIPHER_PASS": "STRATA_PGBACKREST_REPO1_CIPHER_PASS_FILE",
    "PGBACKREST_REPO1_S3_KEY": "STRATA_PGBACKREST_REPO1_S3_KEY_FILE",
    "PGBACKREST_REPO1_S3_KEY_SECRET": "STRATA_PGBACKREST_REPO1_S3_KEY_SECRET_FILE",
    "PGBACKREST_REPO1_AZURE_KEY": "STRATA_PGBACKREST_REPO1_AZURE_KEY_FILE",
    # libpq: the pgbackrest sidecar's psql and what its `pgbackrest server` runs.
    "PGPASSWORD": "STRATA_PGPASSWORD_FILE",
    # The metrics exporter's login role (chart: metrics.postgresExporter).
    "STRATA_PG_MONITOR_PASSWORD": "STRATA_PG_MONITOR_PASSWORD_FILE",
}
WAITING_BODY = json.dumps({"strata": WAITING}).encode()


def log(msg: str, **fields: Any) -> None:
    """One JSON line on stdout (the container log)."""
    print(json.dumps({"logger": "strata-patroni", "msg": msg, **fields}), flush=True)


def ordinal(name: str) -> int:
    """The StatefulSet ordinal at the end of a pod name (-1 when there is none)."""
    tail = name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


class Kube:
    """The few Kubernetes API calls this script makes, with the pod's ServiceAccount."""

    def __init__(self) -> None:
        host = os.environ["KUBERNETES_SERVICE_HOST"]
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        self.base = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
        self.ctx = ssl.create_default_context(cafile=f"{SA_DIR}/ca.crt")
        self.namespace = os.environ.get("PATRONI_KUBERNETES_NAMESPACE") or _read(
            f"{SA_DIR}/namespace"
        )

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, decoded JSON) of one request; HTTP errors are returned, not raised."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        # Re-read the token on every call: projected tokens are rotated by the kubelet.
        req.add_header("Authorization", "Bearer " + _read(f"{SA_DIR}/token"))
        if body is not None:
            req.add_header("Content-Type", "application/merge-patch+json")
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, None

    def endpoints(self, name: str) -> tuple[int, Any]:
        """GET one Endpoints object of this namespace."""
        return self.call("GET", f"/api/v1/namespaces/{self.namespace}/endpoints/{name}")


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as fh:
        return fh.read().strip()


def load_secret_files(environ: MutableMapping[str, str] = os.environ) -> list[str]:
    """Set each SECRET_FILES variable from the file its STRATA_*_FILE names (once).

    A variable already set wins (an operator's override, or a parent that loaded it). Returns
    the variables set; a named file that cannot be read ends the command with its path.
    """
    loaded = []
    for target, pointer in SECRET_FILES.items():
        path = environ.get(pointer)
        if not path or environ.get(target):
            continue
        try:
            with open(path, encoding="utf-8") as fh:
                # Stripped as the services strip the same Secret keys (the owner password).
                environ[target] = fh.read().strip()
        except OSError as exc:
            sys.exit(f"strata-patroni: cannot read {pointer}={path}: {exc.strerror}")
        loaded.append(target)
    return loaded


def patroni_labels() -> dict[str, str]:
    """The labels Patroni puts on (and selects) its objects: its `labels` plus the scope label."""
    labels = json.loads(os.environ.get("PATRONI_KUBERNETES_LABELS") or "{}")
    scope_label = os.environ.get("PATRONI_KUBERNETES_SCOPE_LABEL", "cluster-name")
    labels[scope_label] = os.environ["PATRONI_SCOPE"]
    return {str(k): str(v) for k, v in labels.items()}


def adopt(kube: Kube, scope: str) -> None:
    """Give a pre-Patroni leader Endpoints object Patroni's labels (once; idempotent)."""
    status, endpoints = kube.endpoints(scope)
    if status == 404:
        return
    if status != 200:
        log("cannot read the leader Endpoints; not adopting", status=status, name=scope)
        return
    labels = patroni_labels()
    have = endpoints["metadata"].get("labels") or {}
    if all(have.get(k) == v for k, v in labels.items()):
        return
    status, _ = kube.call(
        "PATCH",
        f"/api/v1/namespaces/{kube.namespace}/endpoints/{scope}",
        {"metadata": {"labels": labels}},
    )
    log("adopted the previous release's Endpoints for Patroni", name=scope, status=status)
    if status != 200:
        sys.exit(f"could not label Endpoints {scope}: HTTP {status}")


class _Waiting(http.server.BaseHTTPRequestHandler):
    """Answers Patroni's probe paths with 200 while the member waits for its cluster."""

    def do_GET(self) -> None:
        body = WAITING_BODY
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Probes every few seconds would flood the log."""


def wait_for_cluster(kube: Kube, scope: str) -> None:
    """Block until `<scope>-config` carries Patroni's `initialize` annotation."""
    server = http.server.ThreadingHTTPServer(("", 8008), _Waiting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    log("member with an empty data directory waits until member 0 created the cluster")
    last = 0.0
    try:
        while True:
            status, config = kube.endpoints(f"{scope}-config")
            annotations = ((config or {}).get("metadata") or {}).get("annotations") or {}
            if status == 200 and annotations.get("initialize"):
                log("cluster exists; starting Patroni", initialize=annotations["initialize"])
                return
            if time.monotonic() - last > 30:
                log("still waiting for the cluster", config_status=status)
                last = time.monotonic()
            time.sleep(2)
    finally:
        server.shutdown()
        server.server_close()


def start() -> None:
    """Adopt, wait when this member must not create the cluster, then become Patroni."""
    name = os.environ["PATRONI_NAME"]
    scope = os.environ["PATRONI_SCOPE"]
    data_dir = os.environ.get("PATRONI_POSTGRESQL_DATA_DIR") or os.environ["PGDATA"]
    kube = Kube()
    adopt(kube, scope)
    empty = not os.path.exists(os.path.join(data_dir, "PG_VERSION"))
    if empty and ordinal(name) != 0:
        wait_for_cluster(kube, scope)
    os.execvp("patroni", ["patroni", CONFIG])


def _rest(method: str, path: str, body: Any = None, timeout: float = 10) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(REST + path, data=data, method=method)
    user, password = (
        os.environ.get("PATRONI_RESTAPI_USERNAME"),
        os.environ.get("PATRONI_RESTAPI_PASSWORD"),
    )
    if user and password:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        req.add_header("Authorization", "Basic " + token)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, raw.decode(errors="replace")


def choose_candidate(me: str, members: list[dict[str, Any]]) -> str | None:
    """A healthy replica to hand over to: higher ordinals first, then the least lag."""
    mine = ordinal(me)
    # In synchronous mode Patroni switches over to a synchronous standby only: a replica that
    # just restarted is not one yet, and asking for it fails the switchover.
    synchronous = any(m.get("role") in SYNC_ROLES for m in members)
    roles = SYNC_ROLES if synchronous else REPLICA_ROLES
    healthy = [
        m
        for m in members
        if m.get("name") != me
        and m.get("role") in roles
        and m.get("state") in ("streaming", "running")
        and not (m.get("tags") or {}).get("nofailover")
    ]
    if not healthy:
        return None

    def key(m: dict[str, Any]) -> tuple[int, float, str]:
        lag = m.get("lag")
        lag_bytes = float(lag) if isinstance(lag, int) else float("inf")
        return (0 if ordinal(m["name"]) > mine else 1, lag_bytes, m["name"])

    return str(sorted(healthy, key=key)[0]["name"])


def prestop() -> int:
    """If this member leads, switch over before Kubernetes sends SIGTERM. Never fails the stop."""
    me = os.environ.get("PATRONI_NAME", "")
    try:
        status, state = _rest("GET", "/patroni", timeout=5)
        if status != 200 or (state or {}).get("role") not in ("primary", "master"):
            return 0
        deadline = time.monotonic() + PRESTOP_WAIT_SECONDS
        while True:
            _, cluster = _rest("GET", "/cluster", timeout=5)
            members = (cluster or {}).get("members") or []
            candidate = choose_candidate(me, members)
            rolled = [m for m in members if ordinal(str(m.get("name"))) > ordinal(me)]
            # A rollout restarts higher ordinals first: wait for one of them to be eligible
            # rather than hand over to a member that is restarted next (two leader changes).
            if not rolled or (candidate and ordinal(candidate) > ordinal(me)):
                break
            if time.monotonic() > deadline:
                break
            time.sleep(1)
        if candidate is None:
            log("leader stopping without a healthy replica: no switchover")
            return 0
        started = time.monotonic()
        status, answer = _rest(
            "POST", "/switchover", {"leader": me, "candidate": candidate}, timeout=30
        )
        log(
            "switchover before shutdown",
            candidate=candidate,
            status=status,
            answer=str(answer)[:300],
            seconds=round(time.monotonic() - started, 1),
        )
    except (OSError, ValueError) as exc:
        log("prestop switchover skipped", error=repr(exc))
    return 0


#: States of a member whose PostgreSQL runs as a replica. With a restore_command (pgBackRest's
#: archive-get, issue 14) a replica that streams from nobody reports "in archive recovery".
RUNNING_STATES = ("running", "streaming", "in archive recovery")


def ready_without_leader(cluster: Any, me: str | None) -> bool:
    """Whether ``me`` counts as ready in Patroni's ``/cluster`` answer because no leader exists
    and its PostgreSQL runs. A member that cannot win the leader race alone (quorum commit:
    it needs the other members' votes) must still become Ready, or the StatefulSet
    (OrderedReady) never starts the members it waits for."""
    if not isinstance(cluster, dict):
        return False
    members = cluster.get("members") or []
    if any(m.get("role") in ("leader", "standby_leader") for m in members):
        return False
    mine = [m for m in members if m.get("name") == me]
    return bool(mine) and mine[0].get("state") in RUNNING_STATES


def ready() -> int:
    """0 when Patroni's /readiness says so, or when no leader exists and PostgreSQL runs here."""
    try:
        status, _ = _rest("GET", "/readiness", timeout=2)
        if status == 200:
            return 0
        status, cluster = _rest("GET", "/cluster", timeout=2)
        if status != 200:
            return 1
        return 0 if ready_without_leader(cluster, os.environ.get("PATRONI_NAME")) else 1
    except (OSError, ValueError):
        return 1


def config_patch(desired: Any, current: Any) -> Any:
    """The part of ``desired`` that ``current`` lacks (values compared as JSON text)."""
    if isinstance(desired, dict) and isinstance(current, dict):
        out = {}
        for key, value in desired.items():
            sub = config_patch(value, current.get(key))
            if sub is not None:
                out[key] = sub
        return out or None
    return None if json.dumps(desired) == json.dumps(current) else desired


def apply_config() -> int:
    """Patch Patroni's dynamic configuration to the chart's; never fails the container."""
    path = os.path.join(os.path.dirname(CONFIG), "dynamic.json")
    try:
        with open(path, encoding="utf-8") as fh:
            desired = json.load(fh)
    except (OSError, ValueError) as exc:
        log("no dynamic configuration to apply", error=repr(exc))
        return 0
    deadline = time.monotonic() + 60
    current: Any = None
    while time.monotonic() < deadline:
        try:
            status, current = _rest("GET", "/config", timeout=3)
            if isinstance(current, dict) and current.get("strata") == WAITING:
                return 0  # not Patroni yet: the member 0 that creates the cluster applies it
            if status == 200 and isinstance(current, dict) and "ttl" in current:
                break
        except OSError:
            pass
        time.sleep(2)
    else:
        log("Patroni's configuration not readable within 60 s; not applied")
        return 0
    patch = config_patch(desired, current)
    if patch:
        try:
            status, _ = _rest("PATCH", "/config", patch, timeout=10)
            log("applied the chart's cluster settings", status=status, patch=patch)
        except OSError as exc:
            log("could not apply the chart's cluster settings", error=repr(exc))
    return 0


#: CREATE DATABASE unless it exists: a cluster restored from a backup already has it.
CREATE_DATABASE = (
    "SELECT format('CREATE DATABASE %I', :'db') "
    "WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\\gexec\n"
)


def post_bootstrap(connstr: str) -> int:
    """Create the application database once, right after initdb or a restore (Patroni
    passes CONNSTR), and the exporter's role."""
    database = os.environ.get("STRATA_PG_DATABASE", "")
    if database and database != "postgres":
        subprocess.run(
            ["psql", connstr, "-v", "ON_ERROR_STOP=1", "-v", f"db={database}", "-X", "-q"],
            input=CREATE_DATABASE,
            text=True,
            check=True,
            timeout=120,
        )
        log("the database exists", database=database)
    ensure_monitor_role(connstr)
    return 0


#: The exporter's role: a login member of pg_monitor and nothing more (no superuser, no
#: replication, a few connections), its password from the Secret each time (so a rotated
#: Secret takes effect on the next start or promotion). The password travels as a SCRAM
#: verifier on psql's stdin: never on a command line, never in the server log in clear.
MONITOR_ROLE_SQL = (
    "SELECT format('CREATE ROLE %I', :'user') "
    "WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user')\\gexec\n"
    "SELECT format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
    "NOREPLICATION NOBYPASSRLS INHERIT CONNECTION LIMIT 5 PASSWORD %L', :'user', :'verifier')"
    "\\gexec\n"
    "SELECT format('GRANT pg_monitor TO %I', :'user')\\gexec\n"
)
PRIMARY_ROLES = ("primary", "master")


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = 4096) -> str:
    """PostgreSQL's SCRAM-SHA-256 verifier of a password (RFC 5802/7677, as libpq's
    PQencryptPasswordConn builds it)."""
    salt = os.urandom(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    stored = hashlib.sha256(client_key).digest()
    salt64, stored64, server64 = (base64.b64encode(b).decode() for b in (salt, stored, server_key))
    return f"SCRAM-SHA-256${iterations}:{salt64}${stored64}:{server64}"


def ensure_monitor_role(connstr: str) -> bool:
    """Create or update the exporter's role (STRATA_PG_MONITOR_USERNAME, password
    STRATA_PG_MONITOR_PASSWORD) on the primary CONNSTR reaches; False when not configured or
    psql failed (logged: the exporter reports pg_up 0 until a later start or promotion)."""
    user = os.environ.get("STRATA_PG_MONITOR_USERNAME", "")
    password = os.environ.get("STRATA_PG_MONITOR_PASSWORD", "")
    if not user or not password:
        return False
    script = f"\\set verifier '{scram_verifier(password)}'\n" + MONITOR_ROLE_SQL
    proc = subprocess.run(
        ["psql", connstr, "-v", "ON_ERROR_STOP=1", "-v", f"user={user}", "-X", "-q"],
        input=script,
        text=True,
        capture_output=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        log("could not create the exporter's role", user=user, error=proc.stderr.strip())
        return False
    log("the exporter's role exists", user=user)
    return True


def callback(action: str, role: str) -> int:
    """Patroni's on_start / on_role_change: on the primary, keep the exporter's role (Patroni
    runs callbacks in the background: retry while PostgreSQL finishes starting or promoting)."""
    if role not in PRIMARY_ROLES:
        return 0
    # Patroni takes the PATRONI_* variables out of the environment it hands its callbacks:
    # the chart repeats the superuser's name as STRATA_PG_SUPERUSER_USERNAME, and its password
    # is back as PATRONI_SUPERUSER_PASSWORD because this process read the secret files again.
    user = os.environ.get("STRATA_PG_SUPERUSER_USERNAME", "postgres")
    os.environ["PGPASSWORD"] = os.environ.get("PATRONI_SUPERUSER_PASSWORD", "")
    connstr = f"host=/var/run/postgresql port=5432 dbname=postgres user={user} connect_timeout=5"
    for _ in range(12):
        if ensure_monitor_role(connstr):
            return 0
        time.sleep(5)
    log("gave up creating the exporter's role", action=action)
    return 1


def main(argv: list[str]) -> int:
    """Dispatch the sub-command (default: start)."""
    command = argv[1] if len(argv) > 1 else "start"
    load_secret_files()
    if command == "start":
        start()
        return 0  # not reached: exec
    if command == "prestop":
        return prestop()
    if command == "ready":
        return ready()
    if command == "apply-config":
        return apply_config()
    if command == "post-bootstrap":
        return post_bootstrap(argv[2] if len(argv) > 2 else "")
    if command == "callback":
        action, role = [*argv[2:4], "", ""][:2]
        return callback(action, role)
    os.execvp(command, argv[1:])
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv))
