"""The pure parts of export options: formats, shards, Accept-Encoding, gzip, tokens, kinds."""

from __future__ import annotations

import base64
import gzip
import zlib

import orjson
import pytest

from services.common.compression import GzipStream, accepts_gzip
from services.common.problems import Problem
from services.ml import params, snapshots
from services.ml.errors import SnapshotGoneError
from services.ml.store.columns import Column, _kind, columns_of


@pytest.mark.parametrize(
    ("header", "gzip_ok"),
    [
        (None, False),
        ("", False),
        ("gzip", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("gzip;q=0", False),
        ("gzip; q=0.0", False),
        ("gzip;q=0.001", True),
        ("br, gzip;q=0.5", True),
        ("br", False),
        ("identity", False),
        ("*", True),
        ("*;q=0", False),
        ("gzip;q=0, *", False),  # named explicitly: the wildcard does not override it
        ("deflate, *;q=0.1", True),
        ("gzip;q=2", False),  # malformed q: not acceptable
        ("gzip;q=abc", False),
    ],
)
def test_accepts_gzip(header: str | None, gzip_ok: bool) -> None:
    assert accepts_gzip(header) is gzip_ok


def test_gzip_stream_flushes_every_chunk() -> None:
    stream = GzipStream()
    decoder = zlib.decompressobj(31)
    parts = [b'{"a":1}\n' * 100, b'{"b":2}\n' * 50]
    out = b""
    for part in parts:
        compressed = stream.chunk(part)
        assert decoder.decompress(compressed) == part  # decodable at once: flushed
        out += compressed
    out += stream.finish()
    assert gzip.decompress(out) == b"".join(parts)


def test_export_format() -> None:
    assert params.export_format(None) == "ndjson"
    assert params.export_format("parquet") == "parquet"
    with pytest.raises(Problem) as refused:
        params.export_format("csv")
    assert refused.value.status == 422


@pytest.mark.parametrize(
    ("shard", "shards", "snapshot", "expected"),
    [
        (None, None, False, None),
        ("0", "4", True, (0, 4)),
        ("3", "4", True, (3, 4)),
        ("0", "1", True, (0, 1)),
    ],
)
def test_shard(shard: str | None, shards: str | None, snapshot: bool, expected: object) -> None:
    assert params.shard(shard, shards, snapshot) == expected


@pytest.mark.parametrize(
    ("shard", "shards", "snapshot", "loc"),
    [
        ("0", None, True, "shards"),
        (None, "2", True, "shard"),
        ("4", "4", True, "shard"),
        ("-1", "4", True, "shard"),
        ("1", "0", True, "shards"),
        ("1", "1025", True, "shards"),
        ("٣", "4", True, "shard"),
        ("0", "4", False, "snapshot"),
    ],
)
def test_shard_refusals(shard: str | None, shards: str | None, snapshot: bool, loc: str) -> None:
    with pytest.raises(Problem) as refused:
        params.shard(shard, shards, snapshot)
    assert refused.value.status == 422
    assert refused.value.errors is not None
    assert refused.value.errors[0]["loc"] == ["query", loc]


def _token(**body: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(body)).rstrip(b"=").decode()


def test_token_round_trip_and_label() -> None:
    raw = snapshots.encode("00000003-0000001B-1", "docs", 2_000_000_000)
    token = snapshots.decode(raw, "docs", now=1_000)
    assert (token.snapshot, token.collection, token.expires) == (
        "00000003-0000001B-1",
        "docs",
        2_000_000_000,
    )
    label = snapshots.label(raw)
    assert len(label.encode()) <= 63  # PostgreSQL's application_name limit
    assert token.imported(raw).label == label
    # Two tokens of the same snapshot differ (the nonce), and so do their labels.
    again = snapshots.encode("00000003-0000001B-1", "docs", 2_000_000_000)
    assert again != raw and snapshots.label(again) != label


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "!!!",
        base64.urlsafe_b64encode(b"[1]").decode(),
        _token(s="00000003-0000001B-1", c="docs", e=2_000_000_000),  # no nonce
        _token(s="'; DROP TABLE x; --", c="docs", e=2_000_000_000, n="0" * 32),
        _token(s="00000003-0000001B-1", c="other", e=2_000_000_000, n="0" * 32),
        _token(s="00000003-0000001B-1", c="docs", e="soon", n="0" * 32),
        _token(s="00000003-0000001B-1", c="docs", e=2_000_000_000, n="0" * 32, x=1),
        "a" * 600,
    ],
)
def test_token_refusals(raw: str) -> None:
    with pytest.raises(Problem) as refused:
        snapshots.decode(raw, "docs", now=1_000)
    assert refused.value.status == 400


def test_expired_token_is_gone() -> None:
    raw = _token(s="00000003-0000001B-1", c="docs", e=1_000, n="0" * 32)
    with pytest.raises(SnapshotGoneError):
        snapshots.decode(raw, "docs", now=1_000)


@pytest.mark.parametrize(
    ("seen", "kind"),
    [
        ((False, False, False, False, True, True, True), "string"),  # no values at all
        ((True, False, False, False, True, True, True), "string"),
        ((False, True, False, False, True, True, True), "bool"),
        ((False, False, True, False, True, True, True), "int64"),
        ((False, False, True, False, True, False, True), "json"),  # integers beyond int64
        ((False, False, True, False, False, False, True), "float64"),
        ((False, False, True, False, False, False, False), "json"),  # beyond a double
        ((True, False, True, False, True, True, True), "json"),  # strings and numbers
        ((False, False, False, True, True, True, True), "json"),  # objects or arrays
    ],
)
def test_column_kind(seen: tuple[bool, ...], kind: str) -> None:
    assert _kind(*seen) == kind


def test_columns_of_fields() -> None:
    assert columns_of(None) == [Column("data", None, "json")]
    tree = params.fields("a,b.c,b.d,e")
    assert [(c.name, c.path) for c in columns_of(tree)] == [
        ("data.a", ("a",)),
        ("data.b.c", ("b", "c")),
        ("data.b.d", ("b", "d")),
        ("data.e", ("e",)),
    ]
