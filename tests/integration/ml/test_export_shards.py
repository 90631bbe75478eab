"""Four shards of one held snapshot read every document exactly once while writes go on.

A writer keeps inserting, replacing and deleting documents through the API before, while
and after the snapshot is taken. Four shard exports (``shard=i&shards=4``, one token) are
opened and paused mid-stream, with all four export transactions open in PostgreSQL, while
the writer lands more writes; then they are read to the end. The union of the shards must
be exactly the documents (ids and versions) of the snapshot, each once: checked against
PostgreSQL itself (the test imports the same snapshot) and against the writer's log.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import pytest

from services.devstack.postgres import PostgresServer
from tests.integration.ml.conftest import connect, copy_documents, ml_env, open_transactions
from tests.support.process import ServiceProcess

pytestmark = pytest.mark.integration
SHARDS = 4
SEED_ROWS = 20_000
# ~4 KB documents: each shard (~20 MB) is far more than the socket buffers hold, so a
# paused reader keeps its export's transaction open.
PAD = 4000
NAME = "sharded"


@pytest.fixture(scope="module")
def ml_db(postgres_server: PostgresServer, ml_database: str) -> dict[str, str]:
    """Room for four exports on one worker (shards land on either of the two), and export
    chunks of 64 KiB, so that what a paused reader leaves unread stays in PostgreSQL."""
    return ml_env(
        postgres_server,
        ml_database,
        STRATA_ML_EXPORT_MAX_CONCURRENT="4",
        STRATA_ML_EXPORT_BATCH_BYTES="65536",
    )


@dataclass
class Op:
    """One write: what, on which document, the version it left, when sent and answered."""

    kind: str
    id: str
    version: int | None
    sent: float
    acked: float


@dataclass
class Writer:
    """Writes one at a time until stopped; every write is logged."""

    client: httpx.AsyncClient
    ops: list[Op] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    progress: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def run(self) -> None:
        """Insert a new document, replace one, delete one; again until told to stop."""
        docs = f"/v1/collections/{NAME}/documents"
        for n in itertools.count():
            if self.stop.is_set():
                return
            kind = ("insert", "replace", "delete")[n % 3]
            target = f"w{n:06d}" if kind == "insert" else f"d{(n * 7919) % SEED_ROWS:07d}"
            sent = time.monotonic()
            if kind == "insert":
                r = await self.client.post(docs, json={"id": target, "data": {"w": n}})
                assert r.status_code == 201, r.text
            elif kind == "replace":
                r = await self.client.put(f"{docs}/{target}", json={"data": {"w": n}})
                assert r.status_code in (200, 404), r.text  # 404: deleted before
            else:
                r = await self.client.delete(f"{docs}/{target}")
                assert r.status_code in (204, 404), r.text
            version = r.json()["version"] if r.status_code in (200, 201) else None
            self.ops.append(Op(kind, target, version, sent, time.monotonic()))
            async with self.progress:
                self.progress.notify_all()

    async def wait_for(self, more: int) -> None:
        """Until ``more`` writes beyond the ones done now have been answered."""
        goal = len(self.ops) + more
        async with self.progress:
            await asyncio.wait_for(self.progress.wait_for(lambda: len(self.ops) >= goal), 60)


async def _snapshot_truth(env: dict[str, str], snapshot_id: str) -> dict[str, int]:
    """The collection's documents in that snapshot, read by PostgreSQL directly."""
    conn = await connect(env)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            await conn.execute(f"SET TRANSACTION SNAPSHOT '{snapshot_id}'")
            rows = await conn.fetch(
                "SELECT d.id, d.version FROM ml_documents d JOIN ml_collections c "
                "ON c.id = d.collection_id WHERE c.name = $1",
                NAME,
            )
    finally:
        await conn.close()
    return {r["id"]: r["version"] for r in rows}


def _expected(ops: list[Op], taken_from: float, taken_to: float) -> tuple[dict[str, int], set[str]]:
    """What the writer's log says the snapshot holds, and the documents it cannot tell.

    A write answered before the snapshot was asked for is in it; one sent after the
    snapshot was answered is not; one in flight meanwhile could be either.
    """
    state = {f"d{i:07d}": 1 for i in range(SEED_ROWS)}
    unsure: set[str] = set()
    for op in ops:
        if op.acked < taken_from:
            if op.kind == "delete":
                state.pop(op.id, None)
            elif op.version is not None:
                state[op.id] = op.version
        elif op.sent <= taken_to:
            unsure.add(op.id)
    return state, unsure


async def _read_shard(
    base_url: str,
    token: str,
    snapshot: str,
    shard: int,
    paused: asyncio.Event,
    resume: asyncio.Event,
) -> list[dict[str, Any]]:
    """One shard's NDJSON over a plain asyncio stream, pausing after the first line.

    Not httpx: its socket layer reads ahead into memory without bound, so a paused
    httpx reader does not hold the server back. An asyncio stream stops reading from the
    socket once it buffers 128 KiB, as a slow consumer would.
    """
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    query = urlencode({"snapshot": snapshot, "shard": shard, "shards": SHARDS})
    writer.write(
        f"GET /v1/collections/{NAME}/export?{query} HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {token}\r\nConnection: close\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert b"transfer-encoding: chunked" in head.lower(), head
    body = b""
    lines: list[dict[str, Any]] = []
    while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
        body += (await reader.readexactly(size + 2))[:-2]
        *complete, body = body.split(b"\n")
        lines += [orjson.loads(line) for line in complete]
        if lines and not paused.is_set():
            paused.set()
            await resume.wait()
    writer.close()
    assert body == b""
    return lines


async def _scenario(
    service: ServiceProcess, token: str, env: dict[str, str], server: PostgresServer
) -> None:
    database = env["STRATA_ML_DATABASE_NAME"]
    async with httpx.AsyncClient(
        base_url=service.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=120
    ) as client:
        writer = Writer(client)
        writing = asyncio.create_task(writer.run())
        await writer.wait_for(30)  # writes are going on when the snapshot is taken
        taken_from = time.monotonic()
        taken = await client.post(f"/v1/collections/{NAME}/export:snapshot")
        taken_to = time.monotonic()
        assert taken.status_code == 201, taken.text
        snapshot = taken.json()["snapshot"]
        await writer.wait_for(30)  # and after it, before any shard starts

        paused = [asyncio.Event() for _ in range(SHARDS)]
        resume = asyncio.Event()
        readers = [
            asyncio.create_task(
                _read_shard(service.base_url, token, snapshot, i, paused[i], resume)
            )
            for i in range(SHARDS)
        ]
        await asyncio.wait_for(asyncio.gather(*(p.wait() for p in paused)), 60)
        # Every shard is mid-stream: its export transaction is open in PostgreSQL ...
        open_now = await asyncio.to_thread(open_transactions, server, database)
        assert open_now == SHARDS
        await writer.wait_for(60)  # ... while these writes land
        assert await asyncio.to_thread(open_transactions, server, database) == SHARDS
        resume.set()
        shards = await asyncio.wait_for(asyncio.gather(*readers), 120)
        writer.stop.set()
        await writing

        body = orjson.loads(base64.urlsafe_b64decode(snapshot + "=" * (-len(snapshot) % 4)))
        truth = await _snapshot_truth(env, body["s"])

    ids = [line["id"] for shard in shards for line in shard]
    exported = {line["id"]: line["version"] for shard in shards for line in shard}
    assert len(ids) == len(set(ids)), "a document was exported twice"
    assert all(shards), "every shard has documents"
    assert exported == truth  # exactly the snapshot's documents and versions, each once
    expected, unsure = _expected(writer.ops, taken_from, taken_to)
    wrong = {
        doc_id: (exported.get(doc_id), expected.get(doc_id))
        for doc_id in (set(expected) | set(exported)) - unsure
        if exported.get(doc_id) != expected.get(doc_id)
    }
    assert not wrong, f"exported vs the writer's log: {list(wrong.items())[:5]}"
    after = [op for op in writer.ops if op.sent > taken_to]
    assert {op.kind for op in after} == {"insert", "replace", "delete"}
    before = [op for op in writer.ops if op.acked < taken_from]
    assert {op.kind for op in before} == {"insert", "replace", "delete"}
    inserted_after = {op.id for op in after if op.kind == "insert"}
    assert not inserted_after & set(exported)


def test_four_shards_read_one_snapshot_once_while_writes_go_on(
    postgres_server: PostgresServer, ml_db: dict[str, str], ml_service: ServiceProcess, token: str
) -> None:
    asyncio.run(copy_documents(ml_db, NAME, SEED_ROWS, pad=PAD))
    asyncio.run(_scenario(ml_service, token, ml_db, postgres_server))
