"""Pages, samples and exports are bounded in bytes: worker memory stays flat with ~1 MB documents.

Two parts. With 120 documents of ~0.9 MB (~108 MB) on the shared server (4 MiB budgets),
every read path is complete and no worker grows by more than ``RSS_GROWTH_LIMIT`` (an
unbounded page, sample or export of this collection holds it whole: several hundred
MiB). With a server whose budgets are tiny (1 KiB), the cut rule is checked exactly on
documents whose stored size is known, and the export's two paths (small documents from
the cursor, large ones rendered by id) interleave in order.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from services.devstack.postgres import PostgresServer
from tests.integration.ml.conftest import LARGE_ROWS, RssSampler, slug
from tests.support.process import ServiceProcess

pytestmark = pytest.mark.integration
MIB = 1024 * 1024
BUDGET = 4 * MIB  # the default PAGE_MAX_BYTES and EXPORT_BATCH_BYTES
RSS_GROWTH_LIMIT = 64 * MIB


def pages(client: httpx.Client, path: str, **params: Any) -> Iterator[dict[str, Any]]:
    """Every response of a listing or sample, following next_cursor."""
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get(path, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        yield body
        cursor = body["next_cursor"]
        if cursor is None:
            return


def warm(service: ServiceProcess, client: httpx.Client, name: str) -> None:
    """Both workers have served each path once (imports, caches), so growth is the read's own."""
    for _ in range(4):
        client.get(f"/v1/collections/{name}/documents", params={"limit": 1})
        client.get(f"/v1/collections/{name}/export", params={"filter": '{"i": 1}'})
        client.get(f"/v1/collections/{name}/documents:sample", params={"n": 1})


def test_pages_of_large_documents_stop_at_the_budget(
    ml_service: ServiceProcess, client: httpx.Client, large_collection: str
) -> None:
    warm(ml_service, client, large_collection)
    path = f"/v1/collections/{large_collection}/documents"
    with RssSampler(ml_service) as rss:
        seen = [
            (len(body["items"]), [item["data"]["i"] for item in body["items"]])
            for body in pages(client, path, limit=1000)
        ]
    sizes = [n for n, _ in seen]
    assert [i for _, ids in seen for i in ids] == list(range(LARGE_ROWS)), "all, once, in order"
    # ~0.9 MB each: four fit under 4 MiB, the fifth crosses it and is the page's last.
    assert sizes[:-1] == [5] * (len(sizes) - 1) and 1 <= sizes[-1] <= 5, sizes
    assert rss.growth() < RSS_GROWTH_LIMIT, f"worker RSS grew by {rss.growth() / MIB:.0f} MiB"


def test_samples_of_large_documents_continue_with_a_cursor(
    ml_service: ServiceProcess, client: httpx.Client, large_collection: str
) -> None:
    warm(ml_service, client, large_collection)
    path = f"/v1/collections/{large_collection}/documents:sample"
    # Projected to one small field the whole sample fits in one answer: the reference order.
    small = client.get(path, params={"n": 100, "seed": "s1", "fields": "i"}).json()
    assert small["next_cursor"] is None
    expected = [item["id"] for item in small["items"]]
    with RssSampler(ml_service) as rss:
        bodies = list(pages(client, path, n=100, seed="s1"))
    assert [item["id"] for body in bodies for item in body["items"]] == expected
    assert all(len(body["items"]) <= 5 for body in bodies)
    assert {body["seed"] for body in bodies} == {"s1"}
    assert rss.growth() < RSS_GROWTH_LIMIT, f"worker RSS grew by {rss.growth() / MIB:.0f} MiB"
    # The cursor carries the seed: without one it continues the same sample.
    second = client.get(path, params={"n": 100, "cursor": bodies[0]["next_cursor"]}).json()
    assert second["items"] == bodies[1]["items"]
    other = client.get(path, params={"n": 100, "seed": "s2", "cursor": bodies[0]["next_cursor"]})
    assert other.status_code == 400
    assert slug(other) == "invalid-cursor"


def test_export_of_large_documents_keeps_worker_memory_flat(
    ml_service: ServiceProcess, client: httpx.Client, large_collection: str
) -> None:
    warm(ml_service, client, large_collection)
    with RssSampler(ml_service) as rss:
        count = 0
        with client.stream("GET", f"/v1/collections/{large_collection}/export") as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                doc = orjson.loads(line)
                assert doc["data"]["i"] == count
                assert len(doc["data"]["blob"]) == 900_000 // 32 * 32
                count += 1
    assert count == LARGE_ROWS
    assert rss.growth() < RSS_GROWTH_LIMIT, f"worker RSS grew by {rss.growth() / MIB:.0f} MiB"


# --- the exact rule, with tiny budgets --------------------------------------------------

TINY = 1024
MIXED_ROWS = 400


@pytest.fixture(scope="module")
def tiny_service(
    ml_db: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    env = {
        **ml_db,
        "STRATA_ML_PAGE_MAX_BYTES": str(TINY),
        # 50 rows per fetch, lines up to 600 bytes inline: the documents below mix small
        # ones (streamed by the cursor) and large ones (rendered by id), in runs.
        "STRATA_ML_EXPORT_BATCH_BYTES": "30000",
        "STRATA_ML_EXPORT_BATCH_SIZE": "50",
    }
    tmp: Path = tmp_path_factory.mktemp("ml-tiny")
    service = ServiceProcess("ml", env, tmp, workers=2).start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def mixed(
    tiny_service: ServiceProcess, postgres_server: PostgresServer, ml_database: str, token: str
) -> tuple[httpx.Client, str, dict[str, int], list[str]]:
    """Documents of 30 B .. 3 KB in random order; their sizes as PostgreSQL prints them."""
    client = httpx.Client(
        base_url=tiny_service.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )
    name = f"m-{uuid.uuid4().hex[:12]}"
    assert client.put(f"/v1/collections/{name}").status_code == 201
    rng = random.Random(11)
    lines = [
        orjson.dumps({"i": i, "pad": "x" * rng.choice([1, 20, 200, 900, 1100, 3000])})
        for i in range(MIXED_ROWS)
    ]
    bulk = client.post(f"/v1/collections/{name}/documents:bulk", content=b"\n".join(lines))
    assert bulk.status_code == 201
    ids: list[str] = bulk.json()["ids"]
    out = postgres_server.psql(
        "SELECT d.id || ' ' || octet_length(d.data::text) FROM ml_documents d "
        f"JOIN ml_collections c ON c.id = d.collection_id WHERE c.name = '{name}'",
        ml_database,
    )
    sizes = {doc_id: int(size) for doc_id, size in (row.split() for row in out.splitlines())}
    return client, name, sizes, ids


def check_cut(items: list[dict[str, Any]], more: bool, limit: int, sizes: dict[str, int]) -> None:
    """Every document but the last started under the budget; a short page had to stop."""
    lengths = [sizes[item["id"]] for item in items]
    assert items, "a page always makes progress"
    assert sum(lengths[:-1]) < TINY
    if more and len(items) < limit:
        assert sum(lengths) >= TINY, "stopped early without reaching the budget"


@pytest.mark.parametrize("limit", [1, 3, 1000])
def test_page_cut_rule_is_exact(
    mixed: tuple[httpx.Client, str, dict[str, int], list[str]], limit: int
) -> None:
    client, name, sizes, ids = mixed
    listed: list[str] = []
    for body in pages(client, f"/v1/collections/{name}/documents", limit=limit):
        check_cut(body["items"], body["next_cursor"] is not None, limit, sizes)
        assert len(body["items"]) <= limit
        listed += [item["id"] for item in body["items"]]
    assert listed == ids


def test_sample_cut_rule_is_exact(
    mixed: tuple[httpx.Client, str, dict[str, int], list[str]],
) -> None:
    client, name, sizes, _ = mixed
    path = f"/v1/collections/{name}/documents:sample"
    sampled: list[str] = []
    for body in pages(client, path, n=150, seed="cut"):
        remaining = 150 - len(sampled)
        check_cut(body["items"], body["next_cursor"] is not None, remaining, sizes)
        sampled += [item["id"] for item in body["items"]]
    assert len(sampled) == len(set(sampled)) == 150
    # Filters and fields apply as everywhere: the projected sample is the same documents.
    projected = list(pages(client, path, n=150, seed="cut", fields="i"))
    assert [item["id"] for body in projected for item in body["items"]] == sampled


def test_export_in_tiny_batches_is_complete_and_ordered(
    mixed: tuple[httpx.Client, str, dict[str, int], list[str]],
) -> None:
    client, name, _, ids = mixed
    response = client.get(f"/v1/collections/{name}/export")
    assert response.status_code == 200
    lines = [orjson.loads(line) for line in response.content.splitlines()]
    assert [line["id"] for line in lines] == ids
    # Both paths write the same document shape as the API reads.
    listed = [
        item
        for body in pages(client, f"/v1/collections/{name}/documents", limit=1000)
        for item in body["items"]
    ]
    shape = ("id", "collection", "data", "version")
    assert [{k: line[k] for k in shape} for line in lines] == [
        {k: item[k] for k in shape} for item in listed
    ]
    filtered = client.get(f"/v1/collections/{name}/export", params={"fields": "i"})
    assert [orjson.loads(line)["data"]["i"] for line in filtered.content.splitlines()] == list(
        range(MIXED_ROWS)
    )
