"""Many parallel transfers through gunicorn (2 workers), then the ledger's invariants."""

from __future__ import annotations

import random
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.support.process import ServiceProcess

ACCOUNTS = 4
OPENING = 1_000
TRANSFERS = 400


def test_parallel_transfers_keep_every_invariant(
    gunicorn: ServiceProcess, auth, owner_engine: Engine
) -> None:
    headers = auth()
    base = gunicorn.base_url
    session = requests.Session()
    currency = "CHF"
    ids = []
    for _ in range(ACCOUNTS):
        acct = session.post(
            f"{base}/v1/accounts", json={"owner": "conc", "currency": currency}, headers=headers
        ).json()
        assert (
            session.post(
                f"{base}/v1/accounts/{acct['id']}/deposits",
                json={"amount": OPENING},
                headers=headers,
            ).status_code
            == 201
        )
        ids.append(acct["id"])
    rng = random.Random(7)
    plan = []
    for _ in range(TRANSFERS):
        src, dst = rng.sample(ids, 2)
        plan.append((src, dst, rng.randint(1, 400)))

    def send(item: tuple[str, str, int]) -> int:
        src, dst, amount = item
        with requests.Session() as s:
            return s.post(
                f"{base}/v1/transfers",
                json={
                    "from_account": src,
                    "to_account": dst,
                    "amount": amount,
                    "currency": currency,
                },
                headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                timeout=30,
            ).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(send, plan))
    # 503 is allowed (a lock wait past the statement timeout on a starved machine rolls the
    # transfer back); what matters is that only acknowledged transfers moved money (below).
    assert set(statuses) <= {201, 409, 503}, sorted(set(statuses))
    assert statuses.count(201) > TRANSFERS // 4  # enough money moved to make this meaningful

    with owner_engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id::text, balance FROM accounts WHERE id = ANY(CAST(:ids AS uuid[]))"),
            {"ids": ids},
        ).all()
        balances = dict(rows)
        assert all(b >= 0 for b in balances.values())
        assert sum(balances.values()) == ACCOUNTS * OPENING
        for account_id, balance in balances.items():
            entries = conn.execute(
                text("SELECT coalesce(sum(amount), 0) FROM entries WHERE account_id = :a"),
                {"a": account_id},
            ).scalar_one()
            assert entries == balance, account_id
        # Every transfer in the whole ledger has exactly one debit and one credit.
        bad = conn.execute(
            text(
                "SELECT t.id FROM transfers t LEFT JOIN entries e ON e.transfer_id = t.id "
                "GROUP BY t.id HAVING count(e.id) <> 2 OR sum(e.amount) <> 0 "
                "OR min(e.amount) <> -max(e.amount)"
            )
        ).all()
        assert bad == []
        # Only this test's transfers: others in the module (any order) move CHF too.
        moved = conn.execute(
            text(
                "SELECT count(*) FROM transfers WHERE kind = 'transfer' "
                "AND from_account = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": ids},
        ).scalar_one()
        assert moved == statuses.count(201)
        # Customer balances plus the external account are constant (zero-sum ledger).
        total = conn.execute(
            text("SELECT sum(balance) FROM accounts WHERE currency = :c"), {"c": currency}
        ).scalar_one()
        assert total == 0


def test_concurrent_duplicates_through_gunicorn_move_money_once(
    gunicorn: ServiceProcess, auth
) -> None:
    headers = auth()
    base = gunicorn.base_url
    a = requests.post(
        f"{base}/v1/accounts", json={"owner": "dup", "currency": "CHF"}, headers=headers
    ).json()
    b = requests.post(
        f"{base}/v1/accounts", json={"owner": "dup", "currency": "CHF"}, headers=headers
    ).json()
    requests.post(f"{base}/v1/accounts/{a['id']}/deposits", json={"amount": 500}, headers=headers)
    key = uuid.uuid4().hex
    body = {"from_account": a["id"], "to_account": b["id"], "amount": 100, "currency": "CHF"}

    def send(_: int) -> tuple[int, str]:
        response = requests.post(
            f"{base}/v1/transfers",
            json=body,
            headers={**headers, "Idempotency-Key": key},
            timeout=30,
        )
        return response.status_code, response.json()["id"]

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(send, range(24)))
    assert {status for status, _ in results} == {201}
    assert len({tid for _, tid in results}) == 1
    balance = requests.get(f"{base}/v1/accounts/{a['id']}", headers=headers).json()["balance"]
    assert balance == 400
