"""Transfers: the happy path, every error slug, and idempotency keys."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.integration.critical.conftest import sql_statements

RowLock = Callable[[str], AbstractContextManager[None]]


def _transfer(client: FlaskClient, headers: dict[str, str], key: str | None = None, **body):
    extra = {"Idempotency-Key": key or uuid.uuid4().hex} if key != "" else {}
    return client.post("/v1/transfers", json=body, headers={**headers, **extra})


def test_transfer_moves_money_and_writes_two_entries(client: FlaskClient, auth, account) -> None:
    a, b = account(balance=100), account()
    response = _transfer(
        client,
        auth("transfers:write"),
        from_account=a["id"],
        to_account=b["id"],
        amount=30,
        currency="EUR",
        reference="rent",
    )
    assert response.status_code == 201
    transfer = response.json
    assert set(transfer) == {
        "id",
        "from_account",
        "to_account",
        "amount",
        "currency",
        "reference",
        "created_at",
    }
    assert {k: v for k, v in transfer.items() if k not in ("id", "created_at")} == {
        "from_account": a["id"],
        "to_account": b["id"],
        "amount": 30,
        "currency": "EUR",
        "reference": "rent",
    }
    assert client.get(f"/v1/accounts/{a['id']}", headers=auth()).json["balance"] == 70
    assert client.get(f"/v1/accounts/{b['id']}", headers=auth()).json["balance"] == 30
    fetched = client.get(f"/v1/transfers/{transfer['id']}", headers=auth("accounts:read"))
    assert fetched.status_code == 200
    assert fetched.json == transfer
    debit = client.get(f"/v1/accounts/{a['id']}/entries?limit=1", headers=auth()).json["items"][0]
    credit = client.get(f"/v1/accounts/{b['id']}/entries?limit=1", headers=auth()).json["items"][0]
    assert (debit["transfer_id"], debit["amount"]) == (transfer["id"], -30)
    assert (credit["transfer_id"], credit["amount"]) == (transfer["id"], 30)


def test_unknown_transfer_is_404(client: FlaskClient, auth) -> None:
    unknown = uuid.uuid4()
    response = client.get(f"/v1/transfers/{unknown}", headers=auth())
    assert response.status_code == 404
    assert response.json["type"] == "urn:strata:problem:transfer-not-found"
    assert response.json["detail"] == f"transfer {unknown} does not exist"


def test_error_slugs(client: FlaskClient, auth, account) -> None:
    rich, poor, dollars = account(balance=10), account(), account(currency="USD")
    frozen = account(balance=10)
    client.patch(f"/v1/accounts/{frozen['id']}", json={"status": "frozen"}, headers=auth())
    h = auth("transfers:write")
    unknown = str(uuid.uuid4())

    def body(source: dict, target: str, amount: int = 1, currency: str = "EUR") -> dict:
        return {
            "from_account": source["id"],
            "to_account": target,
            "amount": amount,
            "currency": currency,
        }

    # (request, status, slug, detail): the detail is what the client reads.
    cases = [
        (
            body(rich, poor["id"], 11),
            409,
            "insufficient-funds",
            f"account {rich['id']} has insufficient funds",
        ),
        (
            body(frozen, poor["id"]),
            409,
            "account-not-active",
            f"account {frozen['id']} is frozen",
        ),
        (
            body(poor, frozen["id"]),
            409,
            "account-not-active",
            f"account {frozen['id']} is frozen",
        ),
        (
            body(rich, dollars["id"]),
            422,
            "currency-mismatch",
            "transfer currency EUR does not match both accounts (EUR, USD)",
        ),
        (
            body(rich, poor["id"], currency="USD"),
            422,
            "currency-mismatch",
            "transfer currency USD does not match both accounts (EUR, EUR)",
        ),
        (
            body(rich, rich["id"]),
            422,
            "same-account",
            "from_account and to_account must differ",
        ),
        (
            body(rich, unknown),
            404,
            "account-not-found",
            f"account {unknown} does not exist",
        ),
    ]
    for request, status, slug, detail in cases:
        response = _transfer(client, h, **request)
        assert (response.status_code, response.json["type"], response.json["detail"]) == (
            status,
            f"urn:strata:problem:{slug}",
            detail,
        ), request
    assert client.get(f"/v1/accounts/{rich['id']}", headers=auth()).json["balance"] == 10
    # The whole balance, to the last unit, may go.
    assert _transfer(client, h, **body(rich, poor["id"], 10)).status_code == 201
    assert client.get(f"/v1/accounts/{rich['id']}", headers=auth()).json["balance"] == 0


def test_missing_idempotency_key_is_400(client: FlaskClient, auth, account) -> None:
    a, b = account(balance=5), account()
    response = _transfer(
        client, auth(), key="", from_account=a["id"], to_account=b["id"], amount=1, currency="EUR"
    )
    assert response.status_code == 400
    assert response.json["type"] == "urn:strata:problem:idempotency-key-missing"
    assert response.json["detail"] == "the Idempotency-Key header is required"


def test_overlong_idempotency_key_is_422(client: FlaskClient, auth, account) -> None:
    a, b = account(balance=5), account()
    response = _transfer(
        client,
        auth(),
        key="k" * 256,
        from_account=a["id"],
        to_account=b["id"],
        amount=1,
        currency="EUR",
    )
    assert response.status_code == 422
    assert response.json["type"] == "urn:strata:problem:validation-failed"
    assert response.json["detail"] == "invalid Idempotency-Key"
    assert response.json["errors"] == [
        {"loc": ["header", "Idempotency-Key"], "msg": "must be 1..255 printable characters"}
    ]


@pytest.mark.parametrize("length", [1, 255])
def test_keys_of_1_to_255_characters_are_accepted(
    client: FlaskClient, auth, account, length: int
) -> None:
    a, b = account(balance=5), account()
    # A subject of its own: keys are per subject, so even a 1-character key is fresh.
    headers = auth(subject=f"len-{uuid.uuid4()}")
    key = uuid.uuid4().hex.ljust(length, "k")[:length]
    body = {"from_account": a["id"], "to_account": b["id"], "amount": 1, "currency": "EUR"}
    first = _transfer(client, headers, key=key, **body)
    again = _transfer(client, headers, key=key, **body)
    assert (first.status_code, again.status_code) == (201, 201), first.json
    assert again.headers["Idempotent-Replayed"] == "true"


def test_replay_returns_the_original_and_moves_nothing(client: FlaskClient, auth, account) -> None:
    a, b = account(balance=50), account()
    body = {
        "from_account": a["id"],
        "to_account": b["id"],
        "amount": 20,
        "currency": "EUR",
        "reference": "x",
    }
    key = f"replay-{uuid.uuid4()}"  # fresh: a key from an earlier run would replay that run
    first = _transfer(client, auth(), key=key, **body)
    second = _transfer(client, auth(), key=key, **body)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json == second.json
    assert client.get(f"/v1/accounts/{a['id']}", headers=auth()).json["balance"] == 30


def test_replay_of_a_refusal_returns_the_same_refusal(client: FlaskClient, auth, account) -> None:
    a, b = account(balance=1), account()
    body = {"from_account": a["id"], "to_account": b["id"], "amount": 2, "currency": "EUR"}
    key = f"refused-{uuid.uuid4()}"
    first = _transfer(client, auth(), key=key, **body)
    client.post(f"/v1/accounts/{a['id']}/deposits", json={"amount": 10}, headers=auth())
    second = _transfer(client, auth(), key=key, **body)
    assert first.status_code == second.status_code == 409
    assert first.json == second.json
    assert client.get(f"/v1/accounts/{a['id']}", headers=auth()).json["balance"] == 11


def test_same_key_different_body_is_422_reuse(client: FlaskClient, auth, account) -> None:
    a, b = account(balance=50), account()
    key = f"reuse-{uuid.uuid4()}"
    _transfer(
        client,
        auth(),
        key=key,
        from_account=a["id"],
        to_account=b["id"],
        amount=1,
        currency="EUR",
    )
    response = _transfer(
        client,
        auth(),
        key=key,
        from_account=a["id"],
        to_account=b["id"],
        amount=2,
        currency="EUR",
    )
    assert response.status_code == 422
    assert response.json["type"] == "urn:strata:problem:idempotency-key-reuse"
    assert response.json["detail"] == (
        "this Idempotency-Key was already used with a different request"
    )
    assert client.get(f"/v1/accounts/{a['id']}", headers=auth()).json["balance"] == 49


def test_a_replay_may_order_the_body_differently(client: FlaskClient, auth, account) -> None:
    """The same request re-serialised by another client library is still the same request."""
    a, b = account(balance=50), account()
    key = f"order-{uuid.uuid4()}"
    fields = [
        ("from_account", a["id"]),
        ("to_account", b["id"]),
        ("amount", 5),
        ("currency", "EUR"),
        ("reference", "ordered"),
    ]
    headers = auth(**{"Idempotency-Key": key, "Content-Type": "application/json"})
    first = client.post("/v1/transfers", data=json.dumps(dict(fields)), headers=headers)
    again = client.post("/v1/transfers", data=json.dumps(dict(fields[::-1])), headers=headers)
    assert (first.status_code, again.status_code) == (201, 201), again.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json
    assert client.get(f"/v1/accounts/{a['id']}", headers=auth()).json["balance"] == 45


def test_keys_are_scoped_to_the_token_subject(client: FlaskClient, auth, account) -> None:
    a, b = account(balance=50), account()
    body = {"from_account": a["id"], "to_account": b["id"], "amount": 5, "currency": "EUR"}
    key = f"shared-{uuid.uuid4()}"
    one = _transfer(client, auth(subject="alice"), key=key, **body)
    two = _transfer(client, auth(subject="bob"), key=key, **body)
    assert (one.status_code, two.status_code) == (201, 201)
    assert one.json["id"] != two.json["id"]
    # Each subject's replay finds its own outcome, not the other's.
    for subject, original in (("alice", one), ("bob", two)):
        replay = _transfer(client, auth(subject=subject), key=key, **body)
        assert replay.status_code == 201, replay.json
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.json == original.json
    assert client.get(f"/v1/accounts/{a['id']}", headers=auth()).json["balance"] == 40


def test_concurrent_duplicates_move_money_once(app: Flask, auth, account) -> None:
    a, b = account(balance=1000), account()
    body = {"from_account": a["id"], "to_account": b["id"], "amount": 100, "currency": "EUR"}
    headers = auth()
    key = f"dup-{uuid.uuid4()}"

    def send(_: int):
        response = app.test_client().post(
            "/v1/transfers", json=body, headers={**headers, "Idempotency-Key": key}
        )
        return response.status_code, response.json["id"]

    with ThreadPoolExecutor(max_workers=5) as pool:
        results = list(pool.map(send, range(10)))
    assert {status for status, _ in results} == {201}
    assert len({transfer_id for _, transfer_id in results}) == 1
    client = app.test_client()
    assert client.get(f"/v1/accounts/{a['id']}", headers=auth()).json["balance"] == 900
    assert client.get(f"/v1/accounts/{b['id']}", headers=auth()).json["balance"] == 100


def test_empty_idempotency_key_is_422_not_missing(client: FlaskClient, auth, account) -> None:
    a, b = account(balance=5), account()
    body = {"from_account": a["id"], "to_account": b["id"], "amount": 1, "currency": "EUR"}
    for url, payload in (
        ("/v1/transfers", body),
        (f"/v1/accounts/{a['id']}/deposits", {"amount": 1}),
        (f"/v1/accounts/{a['id']}/withdrawals", {"amount": 1}),
    ):
        response = client.post(url, json=payload, headers=auth(**{"Idempotency-Key": ""}))
        assert response.status_code == 422, url
        assert response.json["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert client.get(f"/v1/accounts/{a['id']}", headers=auth()).json["balance"] == 5


@pytest.fixture
def row_lock(owner_engine: Engine) -> RowLock:
    """Hold an account's row lock in another transaction, as a concurrent write would."""

    @contextmanager
    def hold(account_id: str) -> Iterator[None]:
        with owner_engine.connect() as conn, conn.begin():
            conn.execute(
                text("SELECT 1 FROM accounts WHERE id = :id FOR UPDATE"), {"id": account_id}
            )
            yield

    return hold


def test_a_transfer_locks_only_its_own_two_accounts(
    client: FlaskClient, auth, account, row_lock: RowLock
) -> None:
    """A write on an unrelated account does not hold it up (it would wait out lock_timeout)."""
    a, b, busy = account(balance=10), account(), account()
    with row_lock(busy["id"]):
        response = _transfer(
            client, auth(), from_account=a["id"], to_account=b["id"], amount=3, currency="EUR"
        )
    assert response.status_code == 201, response.json


def test_naming_the_external_account_never_waits_on_its_lock(
    client: FlaskClient, auth, account, row_lock: RowLock
) -> None:
    """The external account is a hot row (every deposit locks it): a transfer that names
    it is refused without queueing behind those deposits."""
    customer = account(balance=10)
    deposit = client.post(
        f"/v1/accounts/{customer['id']}/deposits", json={"amount": 1}, headers=auth()
    )
    external = deposit.json["from_account"]
    with row_lock(external):
        response = _transfer(
            client,
            auth(),
            from_account=customer["id"],
            to_account=external,
            amount=1,
            currency="EUR",
        )
    assert response.status_code == 404, response.json
    assert response.json["type"] == "urn:strata:problem:account-not-found"


def test_both_accounts_are_locked_in_one_statement_in_id_order(
    app: Flask, client: FlaskClient, auth, account, owner_engine: Engine
) -> None:
    """Two movements in opposite directions lock A and B in the same order, so neither can
    hold one lock while waiting for the other (no deadlock): the order is the SQL's, on both
    paths (the one-call function of a transfer, the ORM of the general path)."""
    a, b = account(), account(balance=10)
    with sql_statements(app) as seen:
        moved = _transfer(
            client, auth(), from_account=b["id"], to_account=a["id"], amount=1, currency="EUR"
        )
        general = seen[:]
        seen.clear()
        # A refusal runs the general path: its lock statement is the ORM's.
        refused = _transfer(
            client, auth(), from_account=a["id"], to_account=b["id"], amount=99, currency="EUR"
        )
    assert moved.status_code == 201, moved.json
    assert refused.status_code == 409, refused.json
    assert [s.split(" FROM ")[1].split("(")[0] for s in general] == ["ledger_transfer"], general
    locking = [s for s in seen if "FROM accounts" in s and "FOR UPDATE" in s]
    assert len(locking) == 1, seen
    assert locking[0].endswith("ORDER BY accounts.id FOR UPDATE"), locking[0]
    with owner_engine.connect() as conn:
        source = " ".join(
            conn.execute(text("SELECT prosrc FROM pg_proc WHERE proname = 'ledger_transfer'"))
            .scalar_one()
            .split()
        )
    assert source.count("FOR UPDATE") == 1, source
    assert "WHERE id IN (p_from, p_to) AND kind = 'customer' ORDER BY id FOR UPDATE" in source


def test_every_movement_is_audited_with_what_moved(
    client: FlaskClient, auth, account, owner_engine: Engine
) -> None:
    a, b = account(balance=50), account()
    request_ids = {kind: f"audit-{kind}-{uuid.uuid4().hex}" for kind in ("t", "d", "w")}

    def headers(kind: str) -> dict[str, str]:
        return auth(subject="auditor", **{"X-Request-ID": request_ids[kind]})

    moved = _transfer(
        client, headers("t"), from_account=a["id"], to_account=b["id"], amount=20, currency="EUR"
    ).json
    deposit = client.post(
        f"/v1/accounts/{b['id']}/deposits", json={"amount": 5}, headers=headers("d")
    ).json
    withdrawal = client.post(
        f"/v1/accounts/{a['id']}/withdrawals", json={"amount": 3}, headers=headers("w")
    ).json
    with owner_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT request_id, actor, action, resource, details FROM audit_log "
                "WHERE request_id = ANY(:ids)"
            ),
            {"ids": list(request_ids.values())},
        ).all()
    audited = {row.request_id: tuple(row)[1:] for row in rows}
    assert len(rows) == 3
    assert audited == {
        request_ids[kind]: (
            "auditor",
            action,
            f"transfers/{record['id']}",
            {
                "from_account": record["from_account"],
                "to_account": record["to_account"],
                "amount": record["amount"],
                "currency": "EUR",
            },
        )
        for kind, action, record in (
            ("t", "transfer.create", moved),
            ("d", "deposit.create", deposit),
            ("w", "withdrawal.create", withdrawal),
        )
    }
    assert (deposit["to_account"], withdrawal["from_account"]) == (b["id"], a["id"])
    assert (deposit["amount"], withdrawal["amount"], moved["amount"]) == (5, 3, 20)
