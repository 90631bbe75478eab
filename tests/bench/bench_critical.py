"""Benchmark (not a test): transfers through gunicorn next to pgbench running the same SQL.

Run with ``make bench-critical``. Starts its own PostgreSQL and gunicorn (2 workers x 4
threads), funds a set of accounts, then measures in one run:

* ``wrk`` POSTing transfers (unique Idempotency-Key each) through the service;
* ``pgbench`` running the same transaction in SQL (idempotency row, ordered row locks,
  transfer, two entries whose insert applies the balances, audit row) with the same
  client count;
* ``wrk`` on ``/livez`` (the HTTP stack alone, no database).

Figures are reported as ratios against pgbench measured in the same run, since absolute
numbers drift on shared machines.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import requests

from services.critical.migrate import migrate
from services.devstack.postgres import PostgresServer
from tests.integration.critical.conftest import create_database, critical_settings, service_env
from tests.support.process import ServiceProcess

ACCOUNTS = 100
CLIENTS = 16
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))

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


def wrk(url: str, script: Path | None, headers: dict[str, str]) -> float:
    """Requests per second reported by wrk."""
    args = ["wrk", "-t2", f"-c{CLIENTS}", f"-d{SECONDS}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    if script:
        args += ["-s", str(script)]
    out = subprocess.run([*args, url], check=True, capture_output=True, text=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        print(f"  ({errors.group(1)} non-2xx responses)")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


def main() -> int:
    """Run the benchmark and print the ratios."""
    if not shutil.which("wrk"):
        print("wrk is missing: apt-get install -y wrk", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="strata-bench-"))
    pg = PostgresServer().start()
    try:
        create_database(pg, "strata_critical")
        settings = critical_settings(pg, "strata_critical")
        migrate(settings)
        server = ServiceProcess(
            "critical",
            {
                **service_env(settings),
                "STRATA_CRITICAL_LOG_LEVEL": "WARNING",
                "STRATA_CRITICAL_POOL_SIZE": "4",
            },
            tmp,
        ).start()
        try:
            from services.common.auth import mint_token
            from services.common.settings import DEV_JWT_SECRET

            token = mint_token(
                key=DEV_JWT_SECRET,
                audience="strata-critical",
                scopes=["accounts:write", "ledger:admin", "transfers:write"],
                ttl=3600,
            )
            auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            ids = []
            with requests.Session() as s:
                for i in range(ACCOUNTS):
                    acct = s.post(
                        f"{server.base_url}/v1/accounts",
                        json={"owner": f"b{i}", "currency": "EUR"},
                        headers=auth,
                    ).json()
                    s.post(
                        f"{server.base_url}/v1/accounts/{acct['id']}/deposits",
                        json={"amount": 10**12},
                        headers=auth,
                    )
                    ids.append(acct["id"])
            pg.psql(
                "CREATE TABLE bench_ids (n int PRIMARY KEY, id uuid);"
                "CREATE UNLOGGED TABLE bench_last (id uuid);"
                "CREATE EXTENSION IF NOT EXISTS pgcrypto",
                database="strata_critical",
            )
            values = ",".join(f"({i + 1}, '{x}')" for i, x in enumerate(ids))
            pg.psql(f"INSERT INTO bench_ids VALUES {values}", database="strata_critical")

            lua = tmp / "transfer.lua"
            lua.write_text(WRK_TRANSFER % {"ids": ",".join(json.dumps(i) for i in ids)})
            sql = tmp / "transfer.sql"
            sql.write_text(PGBENCH_TRANSFER % {"n": ACCOUNTS})

            print(f"benchmark: {SECONDS}s each, {CLIENTS} connections, gunicorn 2x4 threads")
            service_tps = wrk(f"{server.base_url}/v1/transfers", lua, auth)
            livez = wrk(f"{server.base_url}/livez", None, {})
            env = {**os.environ, "PGPASSWORD": pg.password}
            out = subprocess.run(
                [
                    "pgbench",
                    "-n",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(pg.port),
                    "-U",
                    "strata_admin",
                    "-c",
                    str(CLIENTS),
                    "-j",
                    "2",
                    "-T",
                    str(SECONDS),
                    "-f",
                    str(sql),
                    "strata_critical",
                ],
                check=False,
                capture_output=True,
                text=True,
                env=env,
            )
            if out.returncode != 0:
                raise RuntimeError(f"pgbench failed: {out.stderr[-2000:]}")
            pgbench_tps = float(re.search(r"tps = ([\d.]+)", out.stdout).group(1))  # type: ignore[union-attr]
        finally:
            server.stop()
    finally:
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"pgbench, same transaction in SQL : {pgbench_tps:10.1f} tx/s  (baseline 1.00)")
    print(
        f"service POST /v1/transfers       : {service_tps:10.1f} req/s "
        f"(ratio {service_tps / pgbench_tps:.2f})"
    )
    print(
        f"service GET /livez (no database) : {livez:10.1f} req/s (ratio {livez / pgbench_tps:.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
