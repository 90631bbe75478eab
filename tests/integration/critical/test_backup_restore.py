"""Point-in-time recovery of the ledger with pgBackRest (issue 14), end to end on this machine.

A real PostgreSQL archives its WAL with pgBackRest into a repository in a temporary directory;
transfers go through the real critical service (gunicorn). After a time T more transfers are
acknowledged and an operator drops the entries table. A restore to T into a new data
directory must hold exactly the rows of accounts, entries, transfers and audit_log that
existed at T, with the ledger's invariants intact and the service working on it; a restore
to the latest state must hold the last acknowledged transfer (and the mistake).
"""

from __future__ import annotations

import importlib.util
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from services.critical.app import create_app
from services.critical.migrate import migrate
from services.critical.settings import CriticalSettings
from services.devstack.postgres import SUPERUSER, PostgresServer
from tests.integration.critical.conftest import create_database, critical_settings, service_env
from tests.support.pgbackrest import MISSING, PgBackRest
from tests.support.process import ServiceProcess

pytestmark = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")
SIDECAR = Path(__file__).resolve().parents[3] / "k8s" / "postgres" / "strata_pgbackrest.py"

#: Tables whose full content must be exactly what it was at T (primary keys order them).
TABLES = {
    "accounts": "id",
    "entries": "id",
    "transfers": "id",
    "audit_log": "id",
}


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the ledger tables, in primary-key order."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                table: [
                    tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY {pk}"))
                ]
                for table, pk in TABLES.items()
            }
    finally:
        engine.dispose()


class Ledger:
    """The critical service over HTTP with a token holding every scope."""

    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    def account(self, deposit: int) -> str:
        r = self.http.post("/v1/accounts", json={"owner": "pitr", "currency": "EUR"})
        assert r.status_code == 201, r.text
        account_id: str = r.json()["id"]
        r = self.http.post(
            f"/v1/accounts/{account_id}/deposits", json={"amount": deposit, "reference": "seed"}
        )
        assert r.status_code == 201, r.text
        return account_id

    def transfer(self, a: str, b: str, amount: int, reference: str, key: str | None = None) -> Any:
        r = self.http.post(
            "/v1/transfers",
            headers={"Idempotency-Key": key or str(uuid.uuid4())},
            json={"from_account": a, "to_account": b, "amount": amount, "currency": "EUR",
                  "reference": reference},
        )  # fmt: skip
        assert r.status_code == 201, r.text
        return r.json()

    def balance(self, account_id: str) -> int:
        r = self.http.get(f"/v1/accounts/{account_id}")
        assert r.status_code == 200, r.text
        return int(r.json()["balance"])

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def archived() -> Iterator[tuple[PostgresServer, PgBackRest, CriticalSettings]]:
    """A migrated ledger on a server that archives to a pgBackRest repository."""
    pg = PostgresServer().start()
    repo = PgBackRest(pg)
    try:
        repo.enable_archiving()
        create_database(pg, "strata_critical")
        settings = critical_settings(pg, "strata_critical")
        migrate(settings)
        yield pg, repo, settings
    finally:
        pg.stop()
        repo.remove()


@pytest.fixture
def restored() -> Iterator[Callable[[], PostgresServer]]:
    """Servers for restored data directories (stopped and removed at the end)."""
    made: list[PostgresServer] = []

    def make() -> PostgresServer:
        server = PostgresServer()  # a new temporary directory, its data directory not yet made
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


def sidecar() -> ModuleType:
    """The PostgreSQL image's pgbackrest sidecar (k8s/postgres/strata_pgbackrest.py)."""
    spec = importlib.util.spec_from_file_location("strata_pgbackrest", SIDECAR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_sidecar_metrics(
    pg: PostgresServer, repo: PgBackRest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One collection of the sidecar against this server and repository (its metrics)."""
    monkeypatch.setenv("PGBACKREST_CONFIG", str(repo.config))
    monkeypatch.setenv("PGHOST", str(pg.base))
    monkeypatch.setenv("PGPORT", str(pg.port))
    monkeypatch.setenv("PGUSER", SUPERUSER)
    collector = sidecar().Collector(repo.stanza, str(pg.data), 60.0)
    collector.collect()
    got = collector.samples
    lab = f'stanza="{repo.stanza}"'
    assert got[f"strata_pgbackrest_up{{{lab}}}"] == 1
    assert got[f"strata_pgbackrest_postgresql_primary{{{lab}}}"] == 1
    assert got[f"strata_pgbackrest_stanza_status{{{lab}}}"] == 0
    assert got[f'strata_pgbackrest_backups{{{lab},type="full"}}'] == 1
    ended = got[f'strata_pgbackrest_backup_last_completion_timestamp_seconds{{{lab},type="full"}}']
    assert 0 < time.time() - ended < 600
    assert got[f"strata_pgbackrest_archiver_archived_total{{{lab}}}"] > 0
    assert got[f"strata_pgbackrest_archiver_failed_total{{{lab}}}"] == 0
    assert got[f"strata_pgbackrest_archive_ready_wal_files{{{lab}}}"] == 0
    assert got[f'strata_pgbackrest_repository_bytes{{{lab},kind="backup"}}'] > 0
    assert got[f'strata_pgbackrest_repository_bytes{{{lab},kind="archive"}}'] > 0
    assert f'strata_pgbackrest_backups{{{lab},type="full"}} 1.0' in collector.text().decode()


def time_after_the_last_backup(pg: PostgresServer, repo: PgBackRest) -> str:
    """The database's clock_timestamp() once it is in a later whole second than the end of the
    newest backup. pgBackRest chooses the backup set for a time target by whole seconds (the
    newest with stop < target, its stop stored in seconds): a T in the backup's last second
    would find no set. Usually true at once (the transfers after the backup take longer)."""
    (stanza,) = json.loads(repo.run("info", "--output=json").stdout)
    stop = int(stanza["backup"][-1]["timestamp"]["stop"])
    query = "SELECT t, floor(extract(epoch FROM t))::bigint FROM (SELECT clock_timestamp() t) s"
    deadline = time.monotonic() + 10
    while True:
        target, second = pg.psql(query).strip().split("|")
        if int(second) > stop:
            return target
        if time.monotonic() > deadline:
            raise TimeoutError(f"the database clock stays at or before {stop} (backup stop)")
        time.sleep(0.05)  # polls the condition; at most the rest of one second


def owner_url(settings: CriticalSettings, port: int) -> str:
    return settings.model_copy(update={"database_port": port}).url(migration=True)


def test_restore_to_a_point_in_time_and_to_the_latest_state(
    archived: tuple[PostgresServer, PgBackRest, CriticalSettings],
    restored: Callable[[], PostgresServer],
    make_token: Callable[..., str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pg, repo, settings = archived
    token = make_token(
        "critical", "accounts:read", "accounts:write", "transfers:write", "ledger:admin"
    )
    service = ServiceProcess("critical", service_env(settings), tmp_path).start()
    ledger = Ledger(service.base_url, token)
    try:
        a, b, c = (ledger.account(10_000) for _ in range(3))
        for i in range(30):
            ledger.transfer(a, b, 10 + i, f"before-backup-{i}")
        repo.run("--type=full", "backup")  # recovery to T replays the WAL written after this
        kept_key = str(uuid.uuid4())
        kept = ledger.transfer(b, c, 77, "kept", key=kept_key)
        for i in range(20):
            ledger.transfer(b, c, 5 + i, f"before-t-{i}")
        # T: after every transfer above was acknowledged (committed), before any below.
        target = time_after_the_last_backup(pg, repo)
        at_t = snapshot(settings.url(migration=True))
        balances_at_t = [ledger.balance(x) for x in (a, b, c)]
        for i in range(20):
            last = ledger.transfer(c, a, 3 + i, f"after-t-{i}")
        pg.psql("DROP TABLE entries", "strata_critical")  # the operator's mistake
        repo.run("check")  # switches WAL and waits until that segment is in the repository
    finally:
        ledger.close()
        service.stop()
    assert len(at_t["transfers"]) == 3 + 30 + 1 + 20
    check_sidecar_metrics(pg, repo, monkeypatch)
    assert at_t["audit_log"], "the service audits what it does"

    # 1. Restore to T into a new data directory.
    copy = restored()
    seconds = repo.restore(copy, target)
    url = owner_url(settings, copy.port)
    assert snapshot(url) == at_t, "the restored tables differ from what they were at T"
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            unexplained = conn.execute(
                text(
                    "SELECT count(*) FROM accounts a WHERE a.balance <> "
                    "(SELECT coalesce(sum(amount), 0) FROM entries e WHERE e.account_id = a.id)"
                )
            ).scalar_one()
            assert unexplained == 0, "balances not explained by their entries"
        # The invariants are enforced, not just satisfied: the audit log stays append-only...
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text("UPDATE audit_log SET actor = 'tampered'"))
        # ... and a transfer without its two entries is refused at COMMIT (deferred trigger).
        with pytest.raises(DBAPIError, match="one debit and one credit"), engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO transfers (id, from_account, to_account, amount, currency) "
                    "VALUES (:id, :a, :b, 1, 'EUR')"
                ),
                {"id": uuid.uuid4(), "a": a, "b": b},
            )
    finally:
        engine.dispose()
    # The service runs on the restored ledger (in process: the same app as under gunicorn):
    # balances at T, replays of keys stored before T, new transfers.
    app = create_app(settings.model_copy(update={"database_port": copy.port}))
    try:
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}

        def balance(account_id: str) -> int:
            answer: Any = client.get(f"/v1/accounts/{account_id}", headers=headers).json
            return int(answer["balance"])

        assert [balance(x) for x in (a, b, c)] == balances_at_t
        body = {"from_account": b, "to_account": c, "amount": 77, "currency": "EUR",
                "reference": "kept"}  # fmt: skip
        replay = client.post(
            "/v1/transfers", json=body, headers={**headers, "Idempotency-Key": kept_key}
        )
        assert replay.status_code == 201 and replay.json["id"] == kept["id"]  # type: ignore[index]
        assert replay.headers["Idempotent-Replayed"] == "true"
        body = {**body, "amount": 1, "reference": "after-restore"}
        created = client.post(
            "/v1/transfers", json=body, headers={**headers, "Idempotency-Key": str(uuid.uuid4())}
        )
        assert created.status_code == 201, created.json
        assert balance(c) == balances_at_t[2] + 1
    finally:
        app.extensions["strata.engine"].dispose()

    # 2. Restore to the latest state: the last acknowledged transfer is there, and so is the
    # mistake (the entries table is gone): PITR is what undoes it.
    latest = restored()
    repo.restore(latest)
    engine = create_engine(owner_url(settings, latest.port))
    try:
        with engine.connect() as conn:
            found = conn.execute(
                text("SELECT amount, reference FROM transfers WHERE id = :id"), {"id": last["id"]}
            ).one()
            assert tuple(found) == (last["amount"], "after-t-19")
            assert conn.execute(text("SELECT to_regclass('entries')")).scalar_one() is None
    finally:
        engine.dispose()
    assert seconds < 120
