"""Benchmark (not a test): pgBackRest backup and restore durations of a 100,000-transfer ledger.

Run with ``make bench-backup``. Starts its own PostgreSQL with WAL archiving to a pgBackRest
repository in a temporary directory (the chart's settings: lz4, asynchronous archiving,
process-max 2), opens accounts through the critical service's app, then writes the
transfers with ``pgbench`` running the service's own transfer transaction (the same SQL as
``make bench-critical``: idempotency row, row locks, transfer, two balance updates, two
entries, audit row), and measures:

* a full backup of the ledger, the repository's size (backup and WAL archive) next to the
  database's size;
* ``BENCH_EXTRA`` more transfers, half before a time T, then a differential backup;
* a restore to the latest state, and a restore to T (which replays the archived WAL after
  the full backup), each until the restored server accepts writes, with the transfers
  counted in each copy.

``BENCH_TRANSFERS`` (default 100000) and ``BENCH_EXTRA`` (default 20000) change the sizes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from services.critical.app import create_app
from services.critical.migrate import migrate
from services.devstack.postgres import SUPERUSER, PostgresServer
from tests.bench.bench_critical import PGBENCH_TRANSFER
from tests.integration.critical.conftest import create_database, critical_settings
from tests.support.pgbackrest import MISSING, PgBackRest

ACCOUNTS = 100
CLIENTS = 8
TRANSFERS = int(os.environ.get("BENCH_TRANSFERS", "100000"))
EXTRA = int(os.environ.get("BENCH_EXTRA", "20000"))


def pgbench(pg: PostgresServer, script: Path, transactions: int) -> float:
    """Run ``transactions`` transfers with pgbench; returns the seconds it took."""
    started = time.monotonic()
    out = subprocess.run(
        ["pgbench", "-n", "-h", "127.0.0.1", "-p", str(pg.port), "-U", SUPERUSER,
         "-c", str(CLIENTS), "-j", "2", "-t", str(transactions // CLIENTS), "-f", str(script),
         "strata_critical"],
        check=False, capture_output=True, text=True, env={**os.environ, "PGPASSWORD": pg.password},
    )  # fmt: skip
    if out.returncode != 0 or "number of failed transactions: 0" not in out.stdout:
        raise RuntimeError(f"pgbench failed: {out.stdout[-1000:]} {out.stderr[-2000:]}")
    return time.monotonic() - started


def du(path: Path) -> int:
    """Bytes of the files under ``path``."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def count(pg: PostgresServer) -> int:
    return int(pg.psql("SELECT count(*) FROM transfers", "strata_critical"))


def timed(fn: object, *args: object) -> float:
    started = time.monotonic()
    fn(*args)  # type: ignore[operator]
    return time.monotonic() - started


def main() -> int:
    """Build the ledger, back it up, restore it twice, print the figures."""
    if MISSING:
        print(MISSING, file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="strata-bench-backup-"))
    pg = PostgresServer().start()
    repo = PgBackRest(pg)
    copies: list[PostgresServer] = []
    try:
        repo.enable_archiving()
        create_database(pg, "strata_critical")
        settings = critical_settings(pg, "strata_critical", log_level="WARNING")
        migrate(settings)
        app = create_app(settings)
        try:
            client = app.test_client()
            from services.common.auth import mint_token
            from services.common.settings import DEV_JWT_SECRET

            token = mint_token(
                key=DEV_JWT_SECRET, audience="strata-critical", scopes=["accounts:write",
                "ledger:admin"], ttl=3600,
            )  # fmt: skip
            auth = {"Authorization": f"Bearer {token}"}
            ids = []
            for i in range(ACCOUNTS):
                acct = client.post(
                    "/v1/accounts", json={"owner": f"b{i}", "currency": "EUR"}, headers=auth
                ).json
                assert acct is not None
                deposit = client.post(f"/v1/accounts/{acct['id']}/deposits",
                                      json={"amount": 10**12}, headers=auth)  # fmt: skip
                assert deposit.status_code == 201, deposit.json
                ids.append(acct["id"])
        finally:
            app.extensions["strata.engine"].dispose()
        pg.psql(
            "CREATE TABLE bench_ids (n int PRIMARY KEY, id uuid);"
            "CREATE UNLOGGED TABLE bench_last (id uuid);"
            "CREATE EXTENSION IF NOT EXISTS pgcrypto",
            database="strata_critical",
        )
        values = ",".join(f"({i + 1}, '{x}')" for i, x in enumerate(ids))
        pg.psql(f"INSERT INTO bench_ids VALUES {values}", database="strata_critical")
        script = tmp / "transfer.sql"
        script.write_text(PGBENCH_TRANSFER % {"n": ACCOUNTS})

        write_s = pgbench(pg, script, TRANSFERS)
        transfers = count(pg)
        db_bytes = int(pg.psql("SELECT pg_database_size('strata_critical')"))
        full_s = timed(repo.run, "--type=full", "backup")
        repo_full = du(repo.base / "repo" / "backup")
        pgbench(pg, script, EXTRA // 2)
        target = pg.psql("SELECT clock_timestamp()").strip()
        at_target = count(pg)
        pgbench(pg, script, EXTRA - EXTRA // 2)
        diff_s = timed(repo.run, "--type=diff", "backup")
        repo.run("check")  # everything written is in the archive
        total = count(pg)
        backup_bytes = du(repo.base / "repo" / "backup")
        archive_bytes = du(repo.base / "repo" / "archive")

        latest = PostgresServer()
        copies.append(latest)
        latest_s = repo.restore(latest)
        latest_count = count(latest)
        latest.stop()
        at_t = PostgresServer()
        copies.append(at_t)
        pitr_s = repo.restore(at_t, target)
        pitr_count = count(at_t)
    finally:
        for copy in copies:
            copy.stop()
        pg.stop()
        repo.remove()
        shutil.rmtree(tmp, ignore_errors=True)

    assert latest_count == total, (latest_count, total)
    assert pitr_count == at_target, (pitr_count, at_target)
    mb = 1e6
    print(
        f"ledger: {transfers} transfers ({TRANSFERS} by pgbench in {write_s:.0f}s, "
        f"{TRANSFERS / write_s:.0f}/s with archiving), database {db_bytes / mb:.0f} MB"
    )
    print(
        f"full backup (lz4, process-max 2)      : {full_s:6.1f} s, {repo_full / mb:6.1f} MB stored"
    )
    print(f"differential after {EXTRA:6d} transfers: {diff_s:6.1f} s")
    print(
        f"repository: backups {backup_bytes / mb:.1f} MB, WAL archive {archive_bytes / mb:.1f} MB"
    )
    print(f"restore to the latest state          : {latest_s:6.1f} s ({latest_count} transfers)")
    print(f"restore to T (replays WAL after full): {pitr_s:6.1f} s ({pitr_count} transfers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
