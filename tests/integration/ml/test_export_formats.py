"""Export formats and delivery: Parquet read back with pyarrow, gzip, resume, refusals.

The module's server writes Parquet row groups of 7 rows and cuts NDJSON chunks at 1 KiB,
so a few dozen documents make several row groups and many gzip flushes.
"""

from __future__ import annotations

import base64
import gzip
import io
import zlib
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.devstack.postgres import PostgresServer
from tests.integration.ml.conftest import ml_env, slug

pytestmark = pytest.mark.integration
ROW_GROUP = 7
PARQUET = "application/vnd.apache.parquet"


@pytest.fixture(scope="module")
def ml_db(postgres_server: PostgresServer, ml_database: str) -> dict[str, str]:
    """Small row groups and export chunks, so that a few documents make many."""
    return ml_env(
        postgres_server,
        ml_database,
        STRATA_ML_EXPORT_PARQUET_ROW_GROUP_ROWS=str(ROW_GROUP),
        STRATA_ML_EXPORT_BATCH_BYTES="1024",
        STRATA_ML_EXPORT_BATCH_SIZE="8",
        # Tests here hold a few snapshots each, for the default lifetime.
        STRATA_ML_EXPORT_SNAPSHOTS_MAX="8",
    )


def _doc(i: int) -> dict[str, Any]:
    """Documents whose fields have every kind of column, some missing or null."""
    data: dict[str, Any] = {
        "text": f"row {i} é",
        "label": i * 1_000_000_007,
        "score": i / 4,
        "ok": i % 2 == 0,
        "tags": ["a", i],
        "mixed": i if i % 3 else f"s{i}",
        "nested": {"a": {"b": i}, "c": "x"},
        "big": 10**30 + i,
    }
    if i % 5 == 0:
        del data["score"]  # missing: null
    if i % 7 == 0:
        data["text"] = None  # null: null
    return data


@pytest.fixture
def typed_collection(client: httpx.Client, collection: str) -> str:
    """30 documents ``t00`` .. ``t29`` of :func:`_doc`."""
    for i in range(30):
        r = client.post(
            f"/v1/collections/{collection}/documents", json={"id": f"t{i:02d}", "data": _doc(i)}
        )
        assert r.status_code == 201, r.text
    return collection


def _parquet(client: httpx.Client, name: str, **params: str) -> pq.ParquetFile:
    response = client.get(f"/v1/collections/{name}/export", params={"format": "parquet", **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == PARQUET
    return pq.ParquetFile(io.BytesIO(response.content))


def test_parquet_has_typed_columns_in_row_groups(
    client: httpx.Client, typed_collection: str
) -> None:
    fields = "text,label,score,ok,tags,mixed,nested.a.b,big,absent"
    file = _parquet(client, typed_collection, fields=fields)
    assert file.metadata.num_row_groups == 5  # 30 rows, 7 per group
    schema = file.schema_arrow
    expected = {
        "id": pa.string(),
        "version": pa.int64(),
        "created_at": pa.timestamp("us", tz="UTC"),
        "updated_at": pa.timestamp("us", tz="UTC"),
        "data.text": pa.string(),
        "data.label": pa.int64(),
        "data.score": pa.float64(),
        "data.ok": pa.bool_(),
        "data.tags": pa.string(),
        "data.mixed": pa.string(),
        "data.nested.a.b": pa.int64(),
        "data.big": pa.string(),
        "data.absent": pa.string(),
    }
    assert {f.name: f.type for f in schema} == expected
    assert schema.field("data.tags").metadata == {b"strata.encoding": b"json"}
    assert schema.metadata[b"strata.collection"] == typed_collection.encode()
    rows = file.read().to_pylist()
    assert [r["id"] for r in rows] == [f"t{i:02d}" for i in range(30)]
    for i, row in enumerate(rows):
        doc = _doc(i)
        assert row["data.text"] == doc["text"]
        assert row["data.label"] == doc["label"]
        assert row["data.score"] == doc.get("score")
        assert row["data.ok"] is doc["ok"]
        assert orjson.loads(row["data.tags"]) == doc["tags"]
        assert orjson.loads(row["data.mixed"]) == doc["mixed"]  # a mix of types: JSON text
        assert row["data.nested.a.b"] == i
        assert int(row["data.big"]) == doc["big"]  # beyond int64: its exact JSON text
        assert row["data.absent"] is None
        assert row["version"] == 1
    assert rows == sorted(rows, key=lambda r: (r["created_at"], r["id"]))


def test_parquet_without_fields_carries_the_document_as_json(
    client: httpx.Client, typed_collection: str
) -> None:
    table = _parquet(client, typed_collection, filter='{"ok": true}').read()
    assert table.column_names == ["id", "version", "created_at", "updated_at", "data"]
    rows = table.to_pylist()
    assert [r["id"] for r in rows] == [f"t{i:02d}" for i in range(0, 30, 2)]
    ndjson = client.get(
        f"/v1/collections/{typed_collection}/export", params={"filter": '{"ok": true}'}
    )
    lines = [orjson.loads(line) for line in ndjson.content.splitlines()]
    assert [orjson.loads(r["data"]) for r in rows] == [line["data"] for line in lines]


def test_parquet_of_nothing_is_a_valid_empty_file(client: httpx.Client, collection: str) -> None:
    file = _parquet(client, collection, fields="a")
    assert file.metadata.num_rows == 0
    assert file.schema_arrow.names == ["id", "version", "created_at", "updated_at", "data.a"]


def test_gzip_when_accepted(client: httpx.Client, typed_collection: str) -> None:
    path = f"/v1/collections/{typed_collection}/export"
    plain = client.get(path, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.headers["vary"] == "Accept-Encoding"
    assert len(plain.content.splitlines()) == 30
    for accept in ("gzip", "br;q=1, gzip;q=0.5", "deflate, *;q=0.1"):
        with client.stream("GET", path, headers={"Accept-Encoding": accept}) as response:
            assert response.headers["content-encoding"] == "gzip", accept
            assert response.headers["vary"] == "Accept-Encoding"
            raw = b"".join(response.iter_raw())
        assert gzip.decompress(raw) == plain.content, accept
        assert len(raw) < len(plain.content)
    for refused in ("gzip;q=0", "br", "identity, gzip;q=0, *;q=1"):
        response = client.get(path, headers={"Accept-Encoding": refused})
        assert "content-encoding" not in response.headers, refused
        assert response.content == plain.content


def test_gzip_is_flushed_chunk_by_chunk(client: httpx.Client, typed_collection: str) -> None:
    """Every 1 KiB chunk is flushed: what arrived first already decodes into whole lines."""
    path = f"/v1/collections/{typed_collection}/export"
    with client.stream("GET", path, headers={"Accept-Encoding": "gzip"}) as response:
        decoder = zlib.decompressobj(31)
        pieces = response.iter_raw()
        first = decoder.decompress(next(pieces))
        assert first.count(b"\n") >= 1
        rest = first + b"".join(decoder.decompress(p) for p in pieces) + decoder.flush()
    assert decoder.eof
    assert len(rest.splitlines()) == 30


def test_resume_after_the_last_document_received(
    client: httpx.Client, typed_collection: str
) -> None:
    path = f"/v1/collections/{typed_collection}/export"
    full = client.get(path).content.splitlines()
    with client.stream("GET", path) as response:  # a proxy cuts the response after 11 lines
        lines = response.iter_lines()
        got = [next(lines) for _ in range(11)]
    last = orjson.loads(got[-1])["id"]
    rest = client.get(path, params={"after": last}).content.splitlines()
    assert [*got, *(line.decode() for line in rest)] == [line.decode() for line in full]
    parquet = _parquet(client, typed_collection, fields="label", after=last).read()
    assert parquet.column("id").to_pylist() == [f"t{i:02d}" for i in range(11, 30)]
    # The document resumed after is gone: without a held snapshot, nowhere to continue.
    assert client.delete(f"/v1/collections/{typed_collection}/documents/{last}").status_code == 204
    gone = client.get(path, params={"after": last})
    assert gone.status_code == 409
    assert slug(gone) == "resume-point-gone"


def test_resume_within_a_held_snapshot(client: httpx.Client, typed_collection: str) -> None:
    """Within a held snapshot a resumed export continues that snapshot, writes or not."""
    path = f"/v1/collections/{typed_collection}/export"
    taken = client.post(f"/v1/collections/{typed_collection}/export:snapshot")
    assert taken.status_code == 201, taken.text
    token = taken.json()["snapshot"]
    assert client.delete(f"/v1/collections/{typed_collection}/documents/t05").status_code == 204
    assert (
        client.put(
            f"/v1/collections/{typed_collection}/documents/t06", json={"data": {}}
        ).status_code
        == 200
    )
    rest = client.get(path, params={"after": "t05", "snapshot": token})
    assert rest.status_code == 200, rest.text
    lines = [orjson.loads(line) for line in rest.content.splitlines()]
    assert [line["id"] for line in lines] == [f"t{i:02d}" for i in range(6, 30)]
    assert lines[0]["version"] == 1  # as it was, before the replace
    assert lines[0]["data"]["label"] == _doc(6)["label"]


def _forged(token: str, **changes: Any) -> str:
    body = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    body.update(changes)
    return base64.urlsafe_b64encode(orjson.dumps(body)).rstrip(b"=").decode()


def test_refusals(client: httpx.Client, typed_collection: str) -> None:
    path = f"/v1/collections/{typed_collection}/export"
    token = client.post(f"/v1/collections/{typed_collection}/export:snapshot").json()["snapshot"]
    cases: list[tuple[dict[str, str], int, str, list[str] | None]] = [
        ({"format": "csv"}, 422, "validation-failed", ["query", "format"]),
        ({"shard": "0"}, 422, "validation-failed", ["query", "shards"]),
        ({"shards": "2"}, 422, "validation-failed", ["query", "shard"]),
        ({"shard": "0", "shards": "2"}, 422, "validation-failed", ["query", "snapshot"]),
        (
            {"shard": "2", "shards": "2", "snapshot": token},
            422,
            "validation-failed",
            ["query", "shard"],
        ),
        (
            {"shard": "0", "shards": "0", "snapshot": token},
            422,
            "validation-failed",
            ["query", "shards"],
        ),
        ({"after": "not an id"}, 422, "validation-failed", ["query", "after"]),
        ({"snapshot": "garbage"}, 400, "invalid-snapshot", None),
        ({"snapshot": _forged(token, x=1)}, 400, "invalid-snapshot", None),
        # Well formed but not issued (another nonce, or another snapshot id): no holder.
        ({"snapshot": _forged(token, n="0" * 32)}, 410, "snapshot-expired", None),
        ({"snapshot": _forged(token, s="00000003-00000099-1")}, 410, "snapshot-expired", None),
        ({"snapshot": _forged(token, e=1)}, 410, "snapshot-expired", None),
    ]
    for params, status, problem, loc in cases:
        response = client.get(path, params=params)
        assert response.status_code == status, (params, response.text)
        assert slug(response) == problem, params
        if loc is not None:
            assert [e["loc"] for e in response.json()["errors"]] == [loc], params
    # A token names its collection: it reads no other.
    assert client.put("/v1/collections/other-one").status_code == 201
    other = client.get("/v1/collections/other-one/export", params={"snapshot": token})
    assert other.status_code == 400
    assert slug(other) == "invalid-snapshot"
    missing = client.post("/v1/collections/no-such-collection/export:snapshot")
    assert missing.status_code == 404
    assert slug(missing) == "collection-not-found"


def test_parquet_shards_share_one_schema(client: httpx.Client, typed_collection: str) -> None:
    """Each shard's file has the whole selection's types; together they hold every row once."""
    token = client.post(f"/v1/collections/{typed_collection}/export:snapshot").json()["snapshot"]
    fields = "score,mixed,label"
    parts = [
        _parquet(client, typed_collection, fields=fields, snapshot=token, shard=str(i), shards="3")
        for i in range(3)
    ]
    whole = _parquet(client, typed_collection, fields=fields)
    assert all(p.schema_arrow == whole.schema_arrow for p in parts)
    ids = [i for p in parts for i in p.read(columns=["id"]).column("id").to_pylist()]
    assert sorted(ids) == [f"t{i:02d}" for i in range(30)]
    assert all(p.metadata.num_rows for p in parts)


def test_head_sends_the_head_only(client: httpx.Client, typed_collection: str) -> None:
    """HEAD of any export variant: its headers, no body, and the connection stays usable."""
    path = f"/v1/collections/{typed_collection}/export"
    for headers, params in (
        ({"Accept-Encoding": "gzip"}, {}),
        ({"Accept-Encoding": "identity"}, {}),
        ({}, {"format": "parquet", "fields": "label"}),
    ):
        for _ in range(2):  # twice on one keep-alive connection
            head = client.head(path, headers=headers, params=params)
            assert head.status_code == 200, head.text
            assert head.content == b""
            get = client.get(path, headers=headers, params=params)
            assert head.headers["content-type"] == get.headers["content-type"]
            assert head.headers.get("content-encoding") == get.headers.get("content-encoding")
    assert client.head("/v1/collections/no-such-one/export").status_code == 404
