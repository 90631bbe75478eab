"""Accounts: open, read, list with keyset pagination, status changes with If-Match."""

from __future__ import annotations

import uuid

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from services.critical import ledger
from services.critical.errors import VersionMismatchError

PROBLEM = "application/problem+json"


def test_open_account_returns_201_with_the_full_shape(
    client: FlaskClient, auth, owner_engine: Engine
) -> None:
    request_id = f"open-{uuid.uuid4().hex}"
    response = client.post(
        "/v1/accounts",
        json={"owner": "alice", "currency": "EUR"},
        headers=auth("accounts:write", subject="opener", **{"X-Request-ID": request_id}),
    )
    assert response.status_code == 201
    body = response.json
    assert set(body) == {
        "id",
        "owner",
        "currency",
        "balance",
        "status",
        "version",
        "created_at",
        "updated_at",
    }
    assert (body["owner"], body["currency"], body["balance"], body["status"], body["version"]) == (
        "alice",
        "EUR",
        0,
        "active",
        1,
    )
    assert response.headers["Location"] == f"/v1/accounts/{body['id']}"
    assert response.headers["X-Request-ID"] == request_id
    with owner_engine.connect() as conn:
        audited = conn.execute(
            text("SELECT actor, action, resource, details FROM audit_log WHERE request_id = :r"),
            {"r": request_id},
        ).all()
    assert [tuple(row) for row in audited] == [
        ("opener", "account.create", f"accounts/{body['id']}", {"currency": "EUR"})
    ]


def test_get_account_and_etag(client: FlaskClient, auth, account) -> None:
    created = account()
    response = client.get(f"/v1/accounts/{created['id']}", headers=auth("accounts:read"))
    assert response.status_code == 200
    assert response.json == created
    assert response.headers["ETag"] == '"1"'


def test_unknown_account_is_404_account_not_found(client: FlaskClient, auth) -> None:
    unknown = uuid.uuid4()
    response = client.get(f"/v1/accounts/{unknown}", headers=auth())
    assert response.status_code == 404
    assert response.content_type == PROBLEM
    assert response.json["type"] == "urn:strata:problem:account-not-found"
    assert response.json["detail"] == f"account {unknown} does not exist"


def test_list_pages_through_an_owner_s_accounts_in_creation_order(
    client: FlaskClient, auth, account
) -> None:
    owner = f"pager-{uuid.uuid4().hex[:6]}"
    made, others = [], []
    for _ in range(5):  # another owner's accounts in between: the filter must drop them
        made.append(account(owner=owner)["id"])
        others.append(account(owner=f"other-{uuid.uuid4().hex[:6]}")["id"])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = f"/v1/accounts?owner={owner}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(query, headers=auth("accounts:read")).json
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made
    assert pages == 3
    everyone = client.get("/v1/accounts?limit=1000", headers=auth("accounts:read")).json
    listed = [item["id"] for item in everyone["items"]]
    assert [i for i in listed if i in made or i in others] == [
        i for pair in zip(made, others, strict=True) for i in pair
    ]


def test_accounts_opened_in_one_transaction_page_in_id_order(
    client: FlaskClient, auth, ledger_session: Session
) -> None:
    """Accounts opened in one transaction share created_at (now() is the transaction's
    start): the keyset falls back to the id, so paging neither skips nor repeats any."""
    owner = f"batch-{uuid.uuid4().hex[:6]}"
    actor = ledger.Actor("batch-import", None)
    made = [ledger.create_account(ledger_session, actor, owner, "EUR") for _ in range(8)]
    ledger_session.commit()
    assert len({a.created_at for a in made}) == 1  # the tie this test is about
    in_id_order = sorted(str(a.id) for a in made)  # PostgreSQL orders uuids as Python does
    seen: list[str] = []
    cursor = None
    while True:
        query = f"/v1/accounts?owner={owner}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(query, headers=auth("accounts:read")).json
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == in_id_order
    # The limit is the query's, not only the page's: the ledger reads no more rows.
    rows = ledger.list_accounts(ledger_session, owner, None, 2)
    assert [str(a.id) for a in rows] == in_id_order[:2]
    # The id order must come from ORDER BY, not from the index the planner happens to walk
    # ((owner, created_at, id) gives it for free): without index scans, rows tied on
    # created_at come back in whatever order the sort leaves them unless id is a sort key.
    ledger_session.rollback()
    for scan in ("indexscan", "indexonlyscan", "bitmapscan"):
        ledger_session.execute(text(f"SET LOCAL enable_{scan} = off"))
    rows = ledger.list_accounts(ledger_session, owner, None, 8)
    assert [str(a.id) for a in rows] == in_id_order
    ledger_session.rollback()


def test_list_rejects_bad_limit_and_cursor(client: FlaskClient, auth) -> None:
    for limit in ("0", "1001", "abc"):
        response = client.get(f"/v1/accounts?limit={limit}", headers=auth())
        assert response.status_code == 422, limit
        assert response.json["errors"][0]["loc"] == ["query", "limit"]
    response = client.get("/v1/accounts?cursor=not-a-cursor!", headers=auth())
    assert response.status_code == 400
    assert response.json["type"] == "urn:strata:problem:invalid-cursor"


def test_patch_status_with_if_match(
    client: FlaskClient, auth, account, owner_engine: Engine
) -> None:
    created = account()
    url = f"/v1/accounts/{created['id']}"
    admin = auth("ledger:admin")
    stale = client.patch(url, json={"status": "frozen"}, headers={**admin, "If-Match": '"7"'})
    assert stale.status_code == 412
    assert stale.json["type"] == "urn:strata:problem:version-mismatch"
    assert stale.json["detail"] == "account is at version 1, not 7"
    assert client.get(url, headers=auth()).json["status"] == "active"

    ok = client.patch(url, json={"status": "frozen"}, headers={**admin, "If-Match": '"1"'})
    assert ok.status_code == 200
    assert (ok.json["status"], ok.json["version"]) == ("frozen", 2)
    assert ok.headers["ETag"] == '"2"'
    # Without If-Match the change is unconditional.
    again = client.patch(url, json={"status": "active"}, headers=admin)
    assert (again.status_code, again.json["version"]) == (200, 3)
    # Each change is audited with the status before and after (the refused one is not).
    with owner_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT action, details FROM audit_log WHERE resource = :r "
                "AND action = 'account.status' ORDER BY id"
            ),
            {"r": f"accounts/{created['id']}"},
        ).all()
    assert [tuple(row) for row in rows] == [
        ("account.status", {"before": "active", "after": "frozen"}),
        ("account.status", {"before": "frozen", "after": "active"}),
    ]


def test_a_status_change_rereads_the_account_under_its_lock(
    client: FlaskClient, auth, account, ledger_session: Session
) -> None:
    """A session that read the account before another request changed it still checks
    If-Match against the committed version, not the copy it holds."""
    created = account()
    account_id = uuid.UUID(created["id"])
    held = ledger.get_account(ledger_session, account_id)  # a reference keeps it in the session
    assert held.version == 1
    ledger_session.commit()  # the copy stays loaded (expire_on_commit=False)
    url = f"/v1/accounts/{created['id']}"
    assert client.patch(url, json={"status": "frozen"}, headers=auth()).json["version"] == 2
    actor = ledger.Actor("tester", None)
    changed = ledger.set_status(ledger_session, actor, account_id, "active", if_match=2)
    assert changed is held
    assert (changed.status, changed.version) == ("active", 3)
    ledger_session.commit()
    with pytest.raises(VersionMismatchError, match="at version 3, not 2"):
        ledger.set_status(ledger_session, actor, account_id, "frozen", if_match=2)
    ledger_session.rollback()
    assert client.get(url, headers=auth()).json["version"] == 3


def test_patch_requires_a_known_status(client: FlaskClient, auth, account) -> None:
    created = account()
    response = client.patch(
        f"/v1/accounts/{created['id']}", json={"status": "deleted"}, headers=auth("ledger:admin")
    )
    assert response.status_code == 422
    assert response.json["errors"][0]["loc"] == ["body", "status"]


@pytest.mark.parametrize("balance", [1, 5])
def test_an_account_with_money_cannot_close(
    client: FlaskClient, auth, account, balance: int
) -> None:
    funded = account(balance=balance)
    response = client.patch(
        f"/v1/accounts/{funded['id']}", json={"status": "closed"}, headers=auth("ledger:admin")
    )
    assert response.status_code == 409
    assert response.json["type"] == "urn:strata:problem:account-not-empty"
    assert response.json["detail"] == "only an account with a zero balance can close"


def test_an_empty_account_closes(client: FlaskClient, auth, account) -> None:
    empty = account()
    response = client.patch(
        f"/v1/accounts/{empty['id']}", json={"status": "closed"}, headers=auth("ledger:admin")
    )
    assert response.status_code == 200, response.json
    assert (response.json["status"], response.json["version"]) == ("closed", 2)


def test_patch_unknown_account_is_404(client: FlaskClient, auth) -> None:
    unknown = uuid.uuid4()
    response = client.patch(
        f"/v1/accounts/{unknown}", json={"status": "frozen"}, headers=auth("ledger:admin")
    )
    assert response.status_code == 404
    assert response.json["type"] == "urn:strata:problem:account-not-found"
    assert response.json["detail"] == f"account {unknown} does not exist"
