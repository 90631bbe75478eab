"""An unexpected database error is logged without the values it quotes, and answered blank.

The errors are provoked for real, in a database of this module's own: a unique index the
ledger does not expect (PostgreSQL's DETAIL quotes the key), and a trigger whose error
message and DETAIL quote the row (as a CHECK constraint's "Failing row contains" does).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator

import pytest
import requests

from services.critical.settings import CriticalSettings
from services.devstack.postgres import PostgresServer
from tests.integration.critical.conftest import service_env
from tests.support.process import ServiceProcess


@pytest.fixture(scope="module")
def server(
    postgres_server: PostgresServer,
    critical_settings_migrated: CriticalSettings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServiceProcess]:
    settings = critical_settings_migrated
    for statement in (
        "CREATE UNIQUE INDEX surprise_one_account_per_owner ON accounts (owner)",
        """CREATE FUNCTION surprise_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             RAISE EXCEPTION 'refusing reference %', NEW.reference
               USING DETAIL = 'Failing row contains (' || NEW.reference || ')';
           END $$""",
        """CREATE TRIGGER surprise_refuse BEFORE INSERT ON transfers FOR EACH ROW
           WHEN (NEW.reference LIKE 'refuse-%') EXECUTE FUNCTION surprise_refuse()""",
    ):
        postgres_server.psql(statement, database=settings.database_name)
    process = ServiceProcess(
        "critical", service_env(settings), tmp_path_factory.mktemp("logs"), workers=1
    )
    yield process.start()
    process.stop()


def _log_records(server: ServiceProcess) -> list[dict]:
    return [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]


def _unexpected(server: ServiceProcess, request_id: str) -> dict:
    records = [
        r
        for r in _log_records(server)
        if r.get("request_id") == request_id and r["msg"] == "unhandled error"
    ]
    assert len(records) == 1, server.log()[-3000:]
    return records[0]


def _check_answer(answer: requests.Response, secret: str) -> None:
    assert answer.status_code == 500
    assert answer.json()["type"] == "urn:strata:problem:internal-error"
    assert secret not in answer.text


def test_a_unique_violation_is_logged_without_the_key(
    server: ServiceProcess, make_token: Callable[..., str]
) -> None:
    headers = {"Authorization": f"Bearer {make_token('critical', 'accounts:write')}"}
    secret = f"owner-secret-{uuid.uuid4().hex}"
    body = {"owner": secret, "currency": "EUR"}
    first = requests.post(f"{server.base_url}/v1/accounts", json=body, headers=headers, timeout=10)
    assert first.status_code == 201
    body["currency"] = "USD"
    second = requests.post(f"{server.base_url}/v1/accounts", json=body, headers=headers, timeout=10)
    _check_answer(second, secret)

    record = _unexpected(server, second.headers["X-Request-ID"])
    assert record["sqlstate"] == "23505"
    assert record["constraint"] == "surprise_one_account_per_owner"
    assert record["table"] == "accounts"
    assert "services/critical/ledger.py" in record["exc"]  # where it happened is kept
    assert secret not in server.log()


def test_a_raised_error_quoting_the_row_is_logged_without_it(
    server: ServiceProcess, make_token: Callable[..., str]
) -> None:
    token = make_token("critical", "accounts:write", "ledger:admin")
    headers = {"Authorization": f"Bearer {token}"}
    made = requests.post(
        f"{server.base_url}/v1/accounts",
        json={"owner": f"o-{uuid.uuid4().hex[:8]}", "currency": "EUR"},
        headers=headers,
        timeout=10,
    )
    secret = f"refuse-{uuid.uuid4().hex}"
    answer = requests.post(
        f"{server.base_url}/v1/accounts/{made.json()['id']}/deposits",
        json={"amount": 5, "reference": secret},
        headers=headers,
        timeout=10,
    )
    _check_answer(answer, secret)
    record = _unexpected(server, answer.headers["X-Request-ID"])
    assert record["sqlstate"] == "P0001"
    assert "SQLSTATE P0001" in record["exc"]
    assert secret not in server.log()
