#!/usr/bin/python3
"""pgBackRest beside Patroni in the Strata PostgreSQL image (issue 14: backups and PITR).

    strata-pgbackrest sidecar   the `pgbackrest` container of a PostgreSQL member: runs
                                `pgbackrest server` (TLS, for the backup Jobs), serves backup
                                and archiving metrics on :9854, and creates the stanza once
                                this member is the primary and the repository has none
    strata-pgbackrest restore   Patroni's bootstrap method `pgbackrest`: restore the source
                                repository's backup into the empty data directory, to the
                                latest state or to STRATA_RESTORE_TARGET_TIME
    strata-pgbackrest archive-get STANZA FILE DEST
                                a member's restore_command: `pgbackrest archive-get`, except
                                that a replica declines the history file of a timeline beyond
                                its leader's (a promotion that lost the race; see below)

Backups themselves are plain `pgbackrest backup` commands run by the chart's CronJobs where
the repository is local; nothing here schedules or decides anything Patroni decides. The chart
runs the sidecar as `strata-patroni strata-pgbackrest sidecar` (the image's entrypoint), so
the secrets mounted as files are in the environment before this starts.

Environment (set by the chart):
  STRATA_PGBACKREST_STANZA         this tier's stanza
  STRATA_PGBACKREST_METRICS_PORT   metrics port (9854)
  STRATA_PGBACKREST_REFRESH        seconds between collections (60)
  PGDATA, PGHOST, PGUSER, PGPASSWORD   the member's data directory and superuser (libpq;
                                       PGPASSWORD set by the image's entrypoint, strata-patroni,
                                       from the file STRATA_PGPASSWORD_FILE names)
  STRATA_RESTORE_CONFIG, STRATA_RESTORE_STANZA, STRATA_RESTORE_TARGET_TIME,
  STRATA_RESTORE_SET                   the restore source (bootstrap only)

Standard library only (it runs with Debian's python3, beside Patroni's virtualenv).
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

BACKUP_TYPES = ("full", "diff", "incr")
#: `pgbackrest info` status codes for which the stanza must be created (1: missing stanza
#: path, 3: missing stanza data); any other code is left to the operator (e.g. 5: the
#: repository holds another database system for this stanza).
CREATE_STANZA_CODES = (1, 3)
ARCHIVER_SQL = (
    "SELECT pg_is_in_recovery()::int, archived_count, failed_count, "
    "coalesce(extract(epoch FROM last_archived_time), 0), "
    "coalesce(extract(epoch FROM last_failed_time), 0) FROM pg_stat_archiver"
)


def log(msg: str, **fields: Any) -> None:
    """One JSON line on stdout (the container log)."""
    print(json.dumps({"logger": "strata-pgbackrest", "msg": msg, **fields}), flush=True)


# ---------------------------------------------------------------------------------------
# Metrics: pure functions of what pgbackrest and PostgreSQL report


def info_metrics(stanza: str, info: list[dict[str, Any]]) -> dict[str, float]:
    """Samples from `pgbackrest info --output=json` for one stanza (keys are series)."""
    out: dict[str, float] = {}
    mine = [s for s in info if s.get("name") == stanza]
    if not mine:
        return {f'strata_pgbackrest_stanza_status{{stanza="{stanza}"}}': 99}
    entry = mine[0]
    lab = f'stanza="{stanza}"'
    out[f"strata_pgbackrest_stanza_status{{{lab}}}"] = float(entry["status"]["code"])
    backups = [b for b in entry.get("backup") or [] if not b.get("error")]
    for kind in BACKUP_TYPES:
        of_kind = [b for b in backups if b.get("type") == kind]
        series = f'{lab},type="{kind}"'
        out[f"strata_pgbackrest_backups{{{series}}}"] = float(len(of_kind))
        if not of_kind:
            continue
        last = max(of_kind, key=lambda b: b["timestamp"]["stop"])
        stop, start = last["timestamp"]["stop"], last["timestamp"]["start"]
        out[f"strata_pgbackrest_backup_last_completion_timestamp_seconds{{{series}}}"] = stop
        out[f"strata_pgbackrest_backup_last_duration_seconds{{{series}}}"] = stop - start
        out[f"strata_pgbackrest_backup_last_size_bytes{{{series}}}"] = last["info"]["size"]
        out[f"strata_pgbackrest_backup_last_repository_bytes{{{series}}}"] = last["info"][
            "repository"
        ]["delta"]
    return out


def listing_bytes(listing: dict[str, Any]) -> int:
    """Total size of the files in a `pgbackrest repo-ls --recurse --output=json` answer."""
    return sum(int(e.get("size") or 0) for e in listing.values() if e.get("type") == "file")


def archiver_metrics(stanza: str, row: str, ready: int) -> dict[str, float]:
    """Samples from one ARCHIVER_SQL row (psql -At output) and the .ready file count."""
    in_recovery, archived, failed, last_ok, last_failed = row.strip().split("|")
    lab = f'stanza="{stanza}"'
    return {
        f"strata_pgbackrest_postgresql_primary{{{lab}}}": 0.0 if in_recovery == "1" else 1.0,
        f"strata_pgbackrest_archiver_archived_total{{{lab}}}": float(archived),
        f"strata_pgbackrest_archiver_failed_total{{{lab}}}": float(failed),
        f"strata_pgbackrest_archiver_last_archived_timestamp_seconds{{{lab}}}": float(last_ok),
        f"strata_pgbackrest_archiver_last_failed_timestamp_seconds{{{lab}}}": float(last_failed),
        f"strata_pgbackrest_archive_ready_wal_files{{{lab}}}": float(ready),
    }


HELP = {
    "strata_pgbackrest_up": "1 when the last `pgbackrest info` reached the repository",
    "strata_pgbackrest_stanza_status": "pgBackRest stanza status (0 ok, 1 missing, 2 no backup)",
    "strata_pgbackrest_backups": "Valid backups of each type in the repository",
    "strata_pgbackrest_backup_last_completion_timestamp_seconds": "End of the newest backup",
    "strata_pgbackrest_backup_last_duration_seconds": "Duration of the newest backup",
    "strata_pgbackrest_backup_last_size_bytes": "Database size of the newest backup",
    "strata_pgbackrest_backup_last_repository_bytes": "Bytes the newest backup added",
    "strata_pgbackrest_repository_bytes": "Bytes of this stanza in the repository",
    "strata_pgbackrest_postgresql_up": "1 when this member's PostgreSQL answered",
    "strata_pgbackrest_postgresql_primary": "1 on the member that archives (the primary)",
    "strata_pgbackrest_archiver_archived_total": "WAL files archived (pg_stat_archiver)",
    "strata_pgbackrest_archiver_failed_total": "Failed archive_command runs (pg_stat_archiver)",
    "strata_pgbackrest_archiver_last_archived_timestamp_seconds": "Last successful archiving",
    "strata_pgbackrest_archiver_last_failed_timestamp_seconds": "Last failed archiving",
    "strata_pgbackrest_archive_ready_wal_files": "WAL files waiting to be archived (.ready)",
    "strata_pgbackrest_collect_timestamp_seconds": "When these samples were collected",
}


def render(samples: dict[str, float]) -> str:
    """Prometheus text format, with HELP/TYPE lines once per metric."""
    lines: list[str] = []
    seen: set[str] = set()
    for series in sorted(samples):
        name = series.split("{", 1)[0]
        if name not in seen:
            seen.add(name)
            kind = "counter" if name.endswith("_total") else "gauge"
            lines += [f"# HELP {name} {HELP.get(name, name)}", f"# TYPE {name} {kind}"]
        lines.append(f"{series} {float(samples[series])!r}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# The sidecar


def pgbackrest(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run pgbackrest with the mounted configuration."""
    return subprocess.run(
        ["pgbackrest", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


class Collector:
    """Collects this member's samples every `refresh` seconds; serves the latest ones."""

    def __init__(self, stanza: str, pgdata: str, refresh: float) -> None:
        self.stanza = stanza
        self.ready_dir = Path(pgdata) / "pg_wal" / "archive_status"
        self.refresh = refresh
        self.samples: dict[str, float] = {}
        self.sizes: dict[str, float] = {}
        self.sizes_at = 0.0
        self.lock = threading.Lock()

    def collect(self) -> None:
        """One round: PostgreSQL's archiver, the repository, and the stanza if missing."""
        lab = f'stanza="{self.stanza}"'
        samples: dict[str, float] = {}
        primary = False
        try:
            row = subprocess.run(
                ["psql", "-X", "-At", "-d", "postgres", "-c", ARCHIVER_SQL],
                capture_output=True, text=True, timeout=10, check=True,
            ).stdout  # fmt: skip
            ready = sum(1 for p in self.ready_dir.glob("*.ready"))
            samples.update(archiver_metrics(self.stanza, row, ready))
            primary = samples[f"strata_pgbackrest_postgresql_primary{{{lab}}}"] == 1.0
            samples[f"strata_pgbackrest_postgresql_up{{{lab}}}"] = 1.0
        except (subprocess.SubprocessError, OSError, ValueError):
            samples[f"strata_pgbackrest_postgresql_up{{{lab}}}"] = 0.0
        info = pgbackrest(f"--stanza={self.stanza}", "info", "--output=json", timeout=60)
        try:
            parsed = json.loads(info.stdout) if info.returncode == 0 else None
        except ValueError:
            parsed = None
        samples[f"strata_pgbackrest_up{{{lab}}}"] = 0.0 if parsed is None else 1.0
        if parsed is not None:
            samples.update(info_metrics(self.stanza, parsed))
            code = samples.get(f"strata_pgbackrest_stanza_status{{{lab}}}")
            if primary and code in CREATE_STANZA_CODES:
                self.create_stanza()
            elif time.monotonic() - self.sizes_at > 5 * self.refresh:
                self.sizes = self.repository_sizes()
                self.sizes_at = time.monotonic()
        samples.update(self.sizes)
        samples["strata_pgbackrest_collect_timestamp_seconds"] = time.time()
        with self.lock:
            self.samples = samples

    def create_stanza(self) -> None:
        """The primary of a new cluster (or of a restored one) creates its stanza."""
        done = pgbackrest(f"--stanza={self.stanza}", "--log-level-console=info", "stanza-create")
        log("stanza-create", stanza=self.stanza, rc=done.returncode,
            output=(done.stdout + done.stderr)[-600:])  # fmt: skip

    def repository_sizes(self) -> dict[str, float]:
        """Bytes of this stanza's backups and WAL archive (listed, not estimated)."""
        sizes: dict[str, float] = {}
        for kind in ("backup", "archive"):
            listed = pgbackrest(
                f"--stanza={self.stanza}", "repo-ls", "--recurse", "--output=json",
                f"{kind}/{self.stanza}", timeout=300,
            )  # fmt: skip
            try:
                total = listing_bytes(json.loads(listed.stdout))
            except (ValueError, AttributeError):
                continue
            sizes[f'strata_pgbackrest_repository_bytes{{stanza="{self.stanza}",kind="{kind}"}}'] = (
                total
            )
        return sizes

    def loop(self, stop: threading.Event) -> None:
        """Collect until stopped; quickly while the stanza is still missing."""
        while not stop.is_set():
            try:
                self.collect()
            except Exception as exc:  # keep serving the last samples, say why
                log("collection failed", error=repr(exc))
            code = self.samples.get(f'strata_pgbackrest_stanza_status{{stanza="{self.stanza}"}}')
            stop.wait(10 if code in CREATE_STANZA_CODES else self.refresh)

    def text(self) -> bytes:
        """The latest samples in the Prometheus text format."""
        with self.lock:
            return render(self.samples).encode()


def serve_metrics(collector: Collector, port: int) -> http.server.ThreadingHTTPServer:
    """GET /metrics on `port` in a background thread."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path.split("?", 1)[0] == "/metrics"
            body = collector.text() if ok else b"not found\n"
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Scrapes every few seconds would flood the log."""

    server = http.server.ThreadingHTTPServer(("", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def sidecar() -> int:
    """`pgbackrest server` as a child, metrics and the stanza keeper beside it."""
    stanza = os.environ["STRATA_PGBACKREST_STANZA"]
    collector = Collector(
        stanza,
        os.environ.get("PGDATA", "/var/lib/postgresql/data/pgdata"),
        float(os.environ.get("STRATA_PGBACKREST_REFRESH", "60")),
    )
    server = subprocess.Popen(["pgbackrest", "server"])
    stop = threading.Event()

    def on_term(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    metrics = serve_metrics(
        collector, int(os.environ.get("STRATA_PGBACKREST_METRICS_PORT", "9854"))
    )
    worker = threading.Thread(target=collector.loop, args=(stop,), daemon=True)
    worker.start()
    log("pgbackrest server and metrics started", stanza=stanza, pid=server.pid)
    # The TLS server is what the backup Jobs need: if it dies, the container must restart.
    while not stop.wait(1):
        if server.poll() is not None:
            log("pgbackrest server exited", rc=server.returncode)
            metrics.shutdown()
            return 1
    server.terminate()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
    metrics.shutdown()
    return 0


# ---------------------------------------------------------------------------------------
# Patroni's bootstrap method


def restore_command(env: dict[str, str], data_dir: str) -> list[str]:
    """The pgbackrest restore that fills `data_dir` from the source repository."""
    cmd = [
        "pgbackrest",
        f"--config={env.get('STRATA_RESTORE_CONFIG', '/etc/pgbackrest-restore/pgbackrest.conf')}",
        f"--stanza={env['STRATA_RESTORE_STANZA']}",
        f"--pg1-path={data_dir}",
        "--log-level-console=info",
    ]
    if env.get("STRATA_RESTORE_SET"):
        cmd.append(f"--set={env['STRATA_RESTORE_SET']}")
    target = env.get("STRATA_RESTORE_TARGET_TIME", "")
    if target:
        # Recovery stops at the target and the restored cluster is promoted; pgBackRest
        # picks the newest backup that ended before the target.
        cmd += ["--type=time", f"--target={target}", "--target-action=promote"]
    # Without a target, recovery replays the whole archive, then PostgreSQL promotes.
    return [*cmd, "restore"]


def restore() -> int:
    """Restore into PGDATA; Patroni then starts PostgreSQL, which recovers and promotes."""
    data_dir = os.environ["PGDATA"]
    cmd = restore_command(dict(os.environ), data_dir)
    log("restoring from the repository", command=cmd)
    started = time.monotonic()
    rc = subprocess.run(cmd, check=False).returncode
    # The source cluster's cached Patroni configuration is not this cluster's.
    Path(data_dir, "patroni.dynamic.json").unlink(missing_ok=True)
    log("restore finished", rc=rc, seconds=round(time.monotonic() - started, 1))
    return rc


# ---------------------------------------------------------------------------------------
# restore_command
#
# Under load two members can both win Patroni's leader race for a moment; the loser's
# PostgreSQL may act on its promote request seconds later, select a new timeline, archive
# that timeline's history file and be demoted at once (seen on a 2-core kind node: member 0
# promoted to timeline 12 after member 2 had become leader on 11). With
# recovery_target_timeline=latest every replica that later restarts finds 0000000C.history
# in the archive, takes the dead timeline 12 as its target and never streams again from the
# leader on 11 ("highest timeline 11 of the primary is behind recovery timeline 12").
# A replica therefore declines history files of timelines beyond its leader's; it still learns
# every real timeline switch from the leader, which sends history files over the streaming
# connection. The leader itself (a member promoting: Patroni takes the lock first) and any
# member that cannot tell (no leader, Patroni not answering) see the whole archive, so a
# promotion still skips timeline IDs the archive has used.

PATRONI_CLUSTER_URL = "http://127.0.0.1:8008/cluster"


def history_timeline(name: str) -> int | None:
    """The timeline of a history file's name (``0000000C.history`` -> 12), else None."""
    stem, dot, ext = name.partition(".")
    if dot and ext == "history" and len(stem) == 8:
        try:
            return int(stem, 16)
        except ValueError:
            return None
    return None


def declines(name: str, me: str, cluster: dict[str, Any] | None) -> bool:
    """Whether member `me` should answer "not in the archive" for file `name`."""
    timeline = history_timeline(name)
    if timeline is None or not cluster:
        return False
    leaders = [m for m in cluster.get("members", []) if m.get("role") == "leader"]
    if len(leaders) != 1 or leaders[0].get("name") == me:
        return False
    leader_timeline = leaders[0].get("timeline")
    return isinstance(leader_timeline, int) and timeline > leader_timeline


def patroni_cluster(url: str = PATRONI_CLUSTER_URL, timeout: float = 2.0) -> dict[str, Any] | None:
    """The local Patroni's view of the cluster, or None when it does not answer in time."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return dict(json.loads(answer.read()))
    except (OSError, ValueError):
        return None


def archive_get(stanza: str, name: str, dest: str) -> int:
    """PostgreSQL's restore_command: 0 when `name` was written to `dest`, 1 when absent."""
    if history_timeline(name) is not None:
        cluster = patroni_cluster()
        # Patroni keeps its PATRONI_* variables from PostgreSQL; a StatefulSet pod's host
        # name is its member name.
        if declines(name, os.environ.get("PATRONI_NAME") or socket.gethostname(), cluster):
            log("declined the history file of a timeline beyond the leader's", file=name)
            return 1
    return subprocess.run(
        ["pgbackrest", f"--stanza={stanza}", "archive-get", name, dest], check=False
    ).returncode


def main(argv: list[str]) -> int:
    """Dispatch the sub-command."""
    command = argv[1] if len(argv) > 1 else ""
    if command == "sidecar":
        return sidecar()
    if command == "restore":
        return restore()
    if command == "archive-get" and len(argv) == 5:
        return archive_get(argv[2], argv[3], argv[4])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
