"""``ledger_transfer()`` (migration 0003) called directly, as the runtime role.

The service calls it for every ``POST /v1/transfers``; whoever holds the runtime role can
call it with anything. Every call the ledger refuses must be declined with nothing written
(no key, no transfer, no entry, no audit row, no balance change); every malformed call must
fail; only the right call moves money, once per key.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from flask.testing import FlaskClient
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from services.common.limits import INT64_MAX
from services.critical.migrate import TRANSFER_FUNCTION
from tests.integration.critical.conftest import ledger_counts
from tests.integration.critical.test_runtime_role import assert_explained, balances

CALL = (
    "SELECT outcome, status_code, response FROM ledger_transfer("
    ":subject, :key, :hash, :src, :dst, :amount, :currency, :reference, :request_id)"
)


@dataclass
class Ledger:
    """Accounts made through the API: funded ``a``, empty ``b``, frozen ``f``, USD ``d``,
    the EUR external account, and ``big`` a CHF account one unit short of 2^63 - 1, with
    ``small`` the CHF account that could push it over."""

    a: str
    b: str
    f: str
    d: str
    external: str
    big: str
    small: str


@pytest.fixture(scope="module")
def ledger(app: Any, make_token: Callable[..., str]) -> Ledger:
    client: FlaskClient = app.test_client()
    token = make_token(
        "critical", "accounts:read", "accounts:write", "ledger:admin", "transfers:write"
    )
    headers = {"Authorization": f"Bearer {token}"}

    def opened(currency: str = "EUR", deposit: int = 0) -> dict[str, Any]:
        body = client.post(
            "/v1/accounts", json={"owner": "fn", "currency": currency}, headers=headers
        ).json
        assert body is not None
        if deposit:
            moved = client.post(
                f"/v1/accounts/{body['id']}/deposits", json={"amount": deposit}, headers=headers
            )
            assert moved.status_code == 201, moved.json
            body["deposit"] = moved.json
        return body

    a, b, f, d = opened(deposit=100), opened(), opened(deposit=5), opened("USD", 5)
    frozen = client.patch(f"/v1/accounts/{f['id']}", json={"status": "frozen"}, headers=headers)
    assert frozen.status_code == 200
    # The CHF external account can owe at most 2^63: big holds 2^63 - 7, small 7.
    big, small = opened("CHF", INT64_MAX - 6), opened("CHF", 7)
    return Ledger(
        a["id"], b["id"], f["id"], d["id"], a["deposit"]["from_account"], big["id"], small["id"]
    )


def params(ledger: Ledger, **overrides: Any) -> dict[str, Any]:
    """A valid call (a to b, 10 EUR) under a fresh key, with ``overrides``."""
    base = {
        "subject": "fn-tester",
        "key": f"fn-{uuid.uuid4()}",
        "hash": "h" * 64,
        "src": ledger.a,
        "dst": ledger.b,
        "amount": 10,
        "currency": "EUR",
        "reference": "direct",
        "request_id": None,
    }
    return {**base, **overrides}


def call(engine: Engine, values: dict[str, Any]) -> tuple[str, int | None, Any]:
    """One call in its own transaction, committed: (outcome, status_code, response)."""
    with engine.connect() as conn:
        row = conn.execute(text(CALL), values).one()
        conn.commit()
    return row[0], row[1], row[2]


DECLINED: list[tuple[str, Callable[[Ledger], dict[str, Any]]]] = [
    ("from-the-external-account", lambda x: params(x, src=x.external, amount=1_000_000)),
    ("into-the-external-account", lambda x: params(x, dst=x.external)),
    ("unknown-source", lambda x: params(x, src=str(uuid.uuid4()))),
    ("unknown-target", lambda x: params(x, dst=str(uuid.uuid4()))),
    ("same-account", lambda x: params(x, dst=x.a)),
    ("currency-of-neither", lambda x: params(x, currency="USD")),
    ("accounts-of-two-currencies", lambda x: params(x, dst=x.d)),
    ("frozen-source", lambda x: params(x, src=x.f, amount=1)),
    ("frozen-target", lambda x: params(x, dst=x.f)),
    ("insufficient-funds", lambda x: params(x, amount=101)),
    (
        "past-2^63-1",
        lambda x: params(x, src=x.small, dst=x.big, amount=7, currency="CHF"),
    ),
]


@pytest.mark.parametrize("values", [c[1] for c in DECLINED], ids=[c[0] for c in DECLINED])
def test_a_refused_call_is_declined_and_writes_nothing(
    runtime_engine: Engine, owner_engine: Engine, ledger: Ledger, values
) -> None:
    before, counted = balances(owner_engine), ledger_counts(owner_engine)
    outcome, status, response = call(runtime_engine, values(ledger))
    assert (outcome, status) == ("declined", None), response
    assert ledger_counts(owner_engine) == counted
    assert balances(owner_engine) == before


FAILED: list[tuple[str, Callable[[Ledger], dict[str, Any]], str]] = [
    ("zero-amount", lambda x: params(x, amount=0), "23514"),
    ("negative-amount", lambda x: params(x, amount=-10), "23514"),
    ("no-subject", lambda x: params(x, subject=None), "23502"),
    ("no-reference", lambda x: params(x, reference=None), "23502"),
    ("overlong-key", lambda x: params(x, key="k" * 256), "22001"),
]


@pytest.mark.parametrize(
    ("values", "sqlstate"), [c[1:] for c in FAILED], ids=[c[0] for c in FAILED]
)
def test_a_malformed_call_fails_and_writes_nothing(
    runtime_engine: Engine, owner_engine: Engine, ledger: Ledger, values, sqlstate: str
) -> None:
    before, counted = balances(owner_engine), ledger_counts(owner_engine)
    with pytest.raises(DBAPIError) as info:
        call(runtime_engine, values(ledger))
    assert info.value.orig.pgcode == sqlstate  # type: ignore[union-attr]
    assert ledger_counts(owner_engine) == counted
    assert balances(owner_engine) == before


def test_the_right_call_moves_money_once_per_key(
    runtime_engine: Engine,
    owner_engine: Engine,
    ledger: Ledger,
    client: FlaskClient,
    auth: Callable[..., dict[str, str]],
) -> None:
    values = params(ledger, request_id="req-fn-1")
    before = balances(owner_engine)
    outcome, status, body = call(runtime_engine, values)
    assert (outcome, status) == ("created", 201)
    after = balances(owner_engine)
    assert after[ledger.a][0] == before[ledger.a][0] - 10
    assert after[ledger.b][0] == before[ledger.b][0] + 10
    assert_explained(after)
    # The stored answer is the API's own view of the transfer, to the byte.
    assert client.get(f"/v1/transfers/{body['id']}", headers=auth()).json == body
    with owner_engine.connect() as conn:
        audit = conn.execute(
            text("SELECT actor, action, request_id, details FROM audit_log WHERE resource = :r"),
            {"r": f"transfers/{body['id']}"},
        ).one()
    assert tuple(audit) == (
        "fn-tester",
        "transfer.create",
        "req-fn-1",
        {"from_account": ledger.a, "to_account": ledger.b, "amount": 10, "currency": "EUR"},
    )

    counted = ledger_counts(owner_engine)
    assert call(runtime_engine, values) == ("replay", 201, body)
    # The key is bound to the request's fingerprint (the service hashes the body): another
    # fingerprint is refused, the same one replays whatever the other arguments say.
    assert call(runtime_engine, {**values, "hash": "g" * 64})[:2] == ("reuse", None)
    assert call(runtime_engine, {**values, "amount": 11}) == ("replay", 201, body)
    assert ledger_counts(owner_engine) == counted
    assert balances(owner_engine) == after


def test_only_the_runtime_role_may_call_it_and_with_its_own_rights(
    owner_engine: Engine, critical_settings_migrated: Any
) -> None:
    role = critical_settings_migrated.database_user
    with owner_engine.connect() as conn:
        may = conn.execute(
            text(
                "SELECT has_function_privilege(:r, :f, 'EXECUTE'), "
                "has_function_privilege('public', :f, 'EXECUTE'), prosecdef "
                "FROM pg_proc WHERE proname = 'ledger_transfer'"
            ),
            {"r": role, "f": TRANSFER_FUNCTION},
        ).one()
    # SECURITY INVOKER: the call can do nothing the role's own statements could not.
    assert tuple(may) == (True, False, False)


class _At(BaseModel):
    at: datetime


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 12, 2, 4, 5, 6, tzinfo=UTC),
        datetime(2026, 12, 2, 4, 5, 6, 120000, tzinfo=UTC),
        datetime(2026, 12, 2, 4, 5, 6, 7, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_created_at_is_rendered_as_the_api_renders_datetimes(
    runtime_engine: Engine, at: datetime
) -> None:
    with runtime_engine.connect() as conn:
        rendered = conn.execute(text("SELECT ledger_api_time(:at)"), {"at": at}).scalar_one()
    expected = _At(at=at.astimezone(UTC)).model_dump(mode="json")["at"]
    assert rendered == expected
