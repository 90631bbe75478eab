"""Benchmark (not a test): the critical service beside its same-run references.

Run with ``make bench-critical``. Starts its own PostgreSQL, the service as its image runs
it (gunicorn 2 workers x 4 threads, JWT auth on) and a bare Flask/gunicorn peer of the same
shape (tests/bench/bare_flask.py), funds a set of accounts, then measures in one run, with
``wrk -t1 -c64`` for every HTTP target:

* POST /v1/transfers (unique Idempotency-Key each) through the service, through the bare
  Flask handler doing the same transaction, and ``pgbench`` (16 clients) running it in SQL
  (idempotency row, ordered row locks, transfer, two entries whose insert applies the
  balances, audit row);
* GET /v1/accounts/{id} through the service and through the bare Flask + SQLAlchemy Core
  handler (one SELECT by key);
* GET /livez (the HTTP stack alone, no database), for scale.

Every figure is the median of ``BENCH_ROUNDS`` (3) interleaved rounds. Prints one table
(tests/bench/report.py): figures drift between runs on a shared machine, the same-run
ratios are what the goals of issue 15 are about.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import requests

from services.critical.migrate import migrate
from services.devstack.postgres import PostgresServer
from tests.bench import load, peers
from tests.bench.report import Comparison, table
from tests.integration.critical.conftest import create_database, critical_settings, service_env
from tests.support.process import ServiceProcess

ACCOUNTS = 100
PGBENCH_CLIENTS = 16
POOL_SIZE = 4
SECONDS = load.SECONDS
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))

WRK_TRANSFER = """
local ids = {%(ids)s}
local n = 0
math.randomseed(os.time())
request = function()
  n = n + 1
  local a = math.random(#ids)
  local b = math.random(#ids - 1)
  if b >= a then b = b + 1 end
  local body = string.format(
    '{"from_account":"%%s","to_account":"%%s","amount":1,"currency":"EUR"}', ids[a], ids[b])
  wrk.headers["Idempotency-Key"] =
    string.format("bench-%%d-%%d-%%d", os.time(), n, math.random(1e9))
  return wrk.format("POST", "/v1/transfers", nil, body)
end
"""

PGBENCH_TRANSFER = """
\\set a random(1, %(n)d)
\\set b random(1, %(n)d - 1)
\\set b case when :b >= :a then :b + 1 else :b end
BEGIN;
INSERT INTO idempotency_keys (subject, key, request_hash, status_code, response)
  VALUES ('bench', md5(random()::text || clock_timestamp()::text), 'h', 0, '{}');
SELECT id FROM accounts WHERE id IN ((SELECT id FROM bench_ids WHERE n = :a),
  (SELECT id FROM bench_ids WHERE n = :b)) ORDER BY id FOR UPDATE;
WITH t AS (INSERT INTO transfers (id, from_account, to_account, amount, currency)
  SELECT gen_random_uuid(), (SELECT id FROM bench_ids WHERE n = :a),
         (SELECT id FROM bench_ids WHERE n = :b), 1, 'EUR' RETURNING id)
INSERT INTO bench_last SELECT id FROM t;
INSERT INTO entries (account_id, transfer_id, amount, balance_after)
  SELECT a.id, l.id, d.delta, a.balance + d.delta
    FROM bench_last l,
         (VALUES ((SELECT id FROM bench_ids WHERE n = :a), -1),
                 ((SELECT id FROM bench_ids WHERE n = :b), 1)) AS d (account, delta)
    JOIN accounts a ON a.id = d.account;
DELETE FROM bench_last;
INSERT INTO audit_log (actor, action, resource) VALUES ('bench', 'transfer.create', 'x');
COMMIT;
"""


def pgbench(pg: PostgresServer, script: Path) -> float:
    """Transactions per second of ``script`` run by pgbench with 16 clients."""
    env = {**os.environ, "PGPASSWORD": pg.password}
    out = subprocess.run(
        ["pgbench", "-n", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "strata_admin",
         "-c", str(PGBENCH_CLIENTS), "-j", "1", "-T", str(SECONDS), "-f", str(script),
         "strata_critical"],
        check=False, capture_output=True, text=True, env=env,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"pgbench failed: {out.stderr[-2000:]}")
    return float(re.search(r"tps = ([\d.]+)", out.stdout).group(1))  # type: ignore[union-attr]


def fund(base_url: str, auth: dict[str, str]) -> list[str]:
    """Open and fund the benchmark's accounts through the service."""
    ids = []
    with requests.Session() as s:
        for i in range(ACCOUNTS):
            acct = s.post(
                f"{base_url}/v1/accounts", json={"owner": f"b{i}", "currency": "EUR"}, headers=auth
            ).json()
            s.post(
                f"{base_url}/v1/accounts/{acct['id']}/deposits",
                json={"amount": 10**12},
                headers=auth,
            ).raise_for_status()
            ids.append(acct["id"])
    return ids


def measure(pg: PostgresServer, tmp: Path) -> list[Comparison]:
    """Every figure of the run, as comparisons."""
    create_database(pg, "strata_critical")
    settings = critical_settings(pg, "strata_critical")
    migrate(settings)
    env = {
        **service_env(settings),
        "STRATA_CRITICAL_POOL_SIZE": str(POOL_SIZE),
        "STRATA_CRITICAL_THREADS": "4",
    }
    server = ServiceProcess("critical", env, tmp).start()
    try:
        from services.common.auth import mint_token
        from services.common.settings import DEV_JWT_SECRET

        token = mint_token(
            key=DEV_JWT_SECRET,
            audience="strata-critical",
            scopes=["accounts:read", "accounts:write", "ledger:admin", "transfers:write"],
            ttl=3600,
        )
        auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        ids = fund(server.base_url, auth)
        pg.psql(
            "CREATE TABLE bench_ids (n int PRIMARY KEY, id uuid);"
            "CREATE UNLOGGED TABLE bench_last (id uuid);"
            "CREATE EXTENSION IF NOT EXISTS pgcrypto",
            database="strata_critical",
        )
        values = ",".join(f"({i + 1}, '{x}')" for i, x in enumerate(ids))
        pg.psql(f"INSERT INTO bench_ids VALUES {values}", database="strata_critical")
        transfer_lua = tmp / "transfer.lua"
        transfer_lua.write_text(WRK_TRANSFER % {"ids": ",".join(json.dumps(i) for i in ids)})
        transfer_sql = tmp / "transfer.sql"
        transfer_sql.write_text(PGBENCH_TRANSFER % {"n": ACCOUNTS})
        account_lua = load.random_path_script("/v1/accounts/%s", ids, tmp)

        print(
            f"critical: {SECONDS}s each, median of {ROUNDS} interleaved rounds, "
            f"wrk -t{load.THREADS} -c{load.CONNECTIONS}, "
            f"pgbench {PGBENCH_CLIENTS} clients, gunicorn 2 workers x 4 threads (both)"
        )
        url = settings.url().render_as_string(hide_password=False)
        # Interleaved rounds, the median of each figure: a burst of other work on the shared
        # machine (or autovacuum after a round of transfers) then weighs on every target
        # alike instead of on whichever ran during it.
        runs: dict[str, list[float]] = {}
        with peers.bare_flask(url, tmp, POOL_SIZE) as bare:
            targets: dict[str, Callable[[], float]] = {
                "get_strata": lambda: load.wrk(server.base_url, auth, account_lua),
                "get_bare": lambda: load.wrk(bare, auth, account_lua),
                "livez": lambda: load.wrk(f"{server.base_url}/livez"),
                "post_strata": lambda: load.wrk(
                    f"{server.base_url}/v1/transfers", auth, transfer_lua
                ),
                "post_bare": lambda: load.wrk(f"{bare}/v1/transfers", auth, transfer_lua),
                "post_pgbench": lambda: pgbench(pg, transfer_sql),
            }
            for _ in range(ROUNDS):
                for name, run in targets.items():
                    runs.setdefault(name, []).append(run())
        median = {name: statistics.median(figures) for name, figures in runs.items()}
        get_strata, get_bare, livez = median["get_strata"], median["get_bare"], median["livez"]
        post_strata, post_bare = median["post_strata"], median["post_bare"]
        post_pgbench = median["post_pgbench"]
    finally:
        server.stop()
    transfers = "POST /v1/transfers"
    return [
        Comparison(
            transfers,
            post_strata,
            "pgbench, same transaction",
            post_pgbench,
            goal=0.45,
            reference_unit="tx/s",
        ),
        Comparison(transfers, post_strata, "bare Flask/gunicorn", post_bare),
        Comparison("GET /v1/accounts/{id}", get_strata, "bare Flask + Core", get_bare, goal=1.0),
        Comparison("GET /livez (no database)", livez, "bare Flask GET account", get_bare),
    ]


def main() -> int:
    """Run the benchmark and print the table."""
    load.require_wrk()
    if not shutil.which("pgbench"):
        print("pgbench is missing: apt-get install -y postgresql-client", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="strata-bench-"))
    pg = PostgresServer().start()
    try:
        rows = measure(pg, tmp)
    finally:
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
