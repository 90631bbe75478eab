"""Numbers and nesting: every write path keeps integers exact and refuses what cannot be
served back; every read path answers the same text for the same document."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.integration.ml.conftest import connect, slug

pytestmark = pytest.mark.integration
MERGE = {"content-type": "application/merge-patch+json"}
JSON = {"content-type": "application/json"}
NDJSON = {"content-type": "application/x-ndjson"}
# Beyond 2**53 (JavaScript), beyond int64, beyond uint64, and negative beyond int64.
BIG = {"a": 2**53 + 1, "b": 2**63, "c": 2**64 + 1, "d": -(2**63) - 1, "e": 10**40}


def docs(name: str) -> str:
    return f"/v1/collections/{name}/documents"


def body(value: object) -> bytes:
    """JSON text with exact integers (the standard library writes them as digits)."""
    return json.dumps(value).encode()


def every_read(client: httpx.Client, name: str, doc_id: str) -> list[object]:
    """``data`` of one document as each read endpoint answers it."""
    one = client.get(f"{docs(name)}/{doc_id}").json()["data"]
    page = client.get(docs(name), params={"filter": json.dumps({"k": doc_id})}).json()
    sample = client.get(f"{docs(name)}:sample", params={"filter": json.dumps({"k": doc_id})})
    export = client.get(
        f"/v1/collections/{name}/export", params={"filter": json.dumps({"k": doc_id})}
    )
    exported = [json.loads(line)["data"] for line in export.text.splitlines()]
    return [one, page["items"][0]["data"], sample.json()["items"][0]["data"], *exported]


def test_integers_beyond_64_bits_are_exact_on_every_path(
    client: httpx.Client, collection: str
) -> None:
    bulk = f"{docs(collection)}:bulk"
    writes = {
        "create": client.post(
            docs(collection), content=body({"id": "c", "data": {**BIG, "k": "c"}}), headers=JSON
        ),
        "bulk-ndjson": client.post(bulk, content=body({**BIG, "k": "n"}), headers=NDJSON),
        "bulk-array": client.post(bulk, content=body([{**BIG, "k": "a"}]), headers=JSON),
    }
    assert {k: r.status_code for k, r in writes.items()} == dict.fromkeys(writes, 201)
    assert writes["create"].json()["data"] == {**BIG, "k": "c"}
    ids = {
        "c": "c",
        "n": writes["bulk-ndjson"].json()["ids"][0],
        "a": writes["bulk-array"].json()["ids"][0],
    }
    for k, doc_id in ids.items():
        # Documents are found by their k; give the bulk ones the id-based filter key too.
        if doc_id != k:
            patched = client.patch(
                f"{docs(collection)}/{doc_id}", content=body({"k": doc_id}), headers=MERGE
            )
            assert patched.json()["data"] == {**BIG, "k": doc_id}
        assert every_read(client, collection, doc_id) == [{**BIG, "k": doc_id}] * 4
    replaced = client.put(
        f"{docs(collection)}/c", content=body({"data": {**BIG, "k": "c", "f": 2**70}}), headers=JSON
    )
    assert replaced.json()["data"] == {**BIG, "k": "c", "f": 2**70}
    patched = client.patch(f"{docs(collection)}/c", content=body({"g": -(2**90)}), headers=MERGE)
    assert patched.json()["data"] == {**BIG, "k": "c", "f": 2**70, "g": -(2**90)}
    assert every_read(client, collection, "c") == [patched.json()["data"]] * 4
    # Filters and counts compare the exact value, not a rounded one.
    for value, found in ((2**64 + 1, 3), (2**64, 0), (2**64 + 2, 0)):
        flt = json.dumps({"c": value})
        assert client.get(f"{docs(collection)}:count", params={"filter": flt}).json() == {
            "count": found
        }


def test_every_endpoint_answers_the_same_text(client: httpx.Client, collection: str) -> None:
    """A double with an exponent reads back in plain decimal, identically everywhere."""
    data = {"k": "t", "f": 1e20, "x": 1.5, "tiny": 5e-324, "i": 7}
    assert client.post(docs(collection), json={"id": "t", "data": data}).status_code == 201
    texts = {
        client.get(f"{docs(collection)}/t").text.split('"data":')[1].split(',"version"')[0],
        client.get(docs(collection)).text.split('"data":')[1].split(',"version"')[0],
        client.get(f"{docs(collection)}:sample").text.split('"data":')[1].split(',"version"')[0],
        client.get(f"/v1/collections/{collection}/export").text.split('"data":')[1].split(',"version"')[0],
    }  # fmt: skip
    assert len(texts) == 1, texts
    assert '"f": 100000000000000000000' in texts.pop()


@pytest.mark.parametrize("number", [b"1e400", b"-1e309", b"9" * 310])
def test_numbers_beyond_a_double_are_refused_everywhere(
    client: httpx.Client, collection: str, number: bytes
) -> None:
    data = b'{"n": ' + number + b"}"
    assert (
        client.post(docs(collection), content=b'{"data": ' + data + b"}", headers=JSON).status_code
        == 400
    )
    ndjson = client.post(f"{docs(collection)}:bulk", content=b'{"ok": 1}\n' + data, headers=NDJSON)
    assert ndjson.status_code == 422
    assert ndjson.json()["errors"][0]["loc"] == ["body", "line", 2]
    assert "range of a double" in ndjson.json()["errors"][0]["msg"]
    assert (
        client.post(
            f"{docs(collection)}:bulk", content=b"[" + data + b"]", headers=JSON
        ).status_code
        == 400
    )
    filtered = client.get(docs(collection), params={"filter": data.decode()})
    assert filtered.status_code == 422
    assert client.get(f"{docs(collection)}:count").json() == {"count": 0}


def deep(levels: int) -> bytes:
    """A data object whose arrays and objects nest ``levels`` deep (the object included)."""
    return b'{"a": ' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}"


@pytest.mark.parametrize("levels", [129, 255, 600, 1023])
def test_documents_too_deep_to_serve_are_refused_on_every_write_path(
    client: httpx.Client, collection: str, levels: int
) -> None:
    assert client.post(docs(collection), json={"id": "p", "data": {"k": 1}}).status_code == 201
    data, url, bulk = deep(levels), f"{docs(collection)}/p", f"{docs(collection)}:bulk"
    wrapped = b'{"data": ' + data + b"}"
    outcomes = {
        "create": client.post(docs(collection), content=wrapped, headers=JSON),
        "replace": client.put(url, content=wrapped, headers=JSON),
        "patch": client.patch(url, content=data, headers=MERGE),
        "bulk-ndjson": client.post(bulk, content=data, headers=NDJSON),
        "bulk-array": client.post(bulk, content=b"[" + data + b"]", headers=JSON),
    }
    for path, response in outcomes.items():
        # 1023 levels plus the body's own object is beyond what JSON parsers read: 400.
        assert response.status_code in ((400, 422) if levels == 1023 else (422,)), path
        assert response.headers["content-type"].startswith("application/problem+json")
    assert client.get(f"{docs(collection)}:count").json() == {"count": 1}
    assert client.get(f"{docs(collection)}/p").json()["data"] == {"k": 1}


def test_128_levels_are_stored_and_served(client: httpx.Client, collection: str) -> None:
    data = deep(128)
    assert client.post(f"{docs(collection)}:bulk", content=data, headers=NDJSON).status_code == 201
    for url in (
        docs(collection),
        f"{docs(collection)}:sample",
        f"/v1/collections/{collection}/export",
    ):
        assert client.get(url).status_code == 200, url


def test_documents_stored_before_the_limit_are_still_served(
    client: httpx.Client, collection: str, ml_db: dict[str, str]
) -> None:
    """A 600-deep document already in the table (ingested before the limit) is served by
    every read path, and a patch that keeps it too deep is a 422, never a 500."""
    asyncio.run(_insert_raw(ml_db, collection, "legacy", deep(600).decode()))
    url = f"{docs(collection)}/legacy"
    for response in (
        client.get(url),
        client.get(docs(collection)),
        client.get(f"{docs(collection)}:sample"),
        client.get(f"/v1/collections/{collection}/export"),
    ):
        assert response.status_code == 200
    assert client.get(url).content.count(b"[") == 599
    kept = client.patch(url, content=b'{"b": 1}', headers=MERGE)
    assert kept.status_code == 422
    assert slug(kept) == "validation-failed"
    repaired = client.patch(url, content=b'{"a": null, "b": 1}', headers=MERGE)
    assert repaired.status_code == 200
    assert repaired.json()["data"] == {"b": 1}


async def _insert_raw(env: dict[str, str], name: str, doc_id: str, data: str) -> None:
    conn = await connect(env)
    try:
        await conn.execute(
            "INSERT INTO ml_documents (collection_id, id, data) "
            "SELECT id, $2, $3::jsonb FROM ml_collections WHERE name = $1",
            name,
            doc_id,
            data,
        )
    finally:
        await conn.close()
