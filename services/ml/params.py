"""Parsing and validating what clients put in paths, query strings and headers.

Pure functions (no I/O): each raises a 422 ``validation-failed`` problem naming the
parameter, so routes stay thin and the rules are unit-tested in isolation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from services.common import problems
from services.common.cursor import decode_cursor, encode_cursor, invalid_cursor
from services.common.etag import if_match_version
from services.common.jsonbody import (
    MAX_DEPTH,
    JsonValueError,
    dumps_value,
    explain,
    loads,
    too_deep,
)
from services.common.problems import Problem

COLLECTION_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
DOCUMENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_FIELD_SEGMENT = re.compile(r"^[^.,\s\x00]{1,128}$")  # JSONB keys never hold NUL
MAX_FIELDS = 64
MAX_FIELD_DEPTH = 16

#: A projection: each key maps to None (take the whole value) or to a nested projection.
FieldTree = dict[str, "FieldTree | None"]


def invalid(loc: list[str | int], msg: str) -> Problem:
    """422 naming one parameter."""
    return problems.validation_failed([{"loc": loc, "msg": msg}])


def collection_name(name: str) -> str:
    """A collection name as the contract allows it."""
    if not COLLECTION_NAME.fullmatch(name):
        raise invalid(["path", "name"], "must match ^[a-z][a-z0-9_-]{0,62}$")
    return name


def document_id(value: str, loc: tuple[str, str] = ("path", "id")) -> str:
    """A document id: 1..128 of letters, digits, ``.``, ``_``, ``:``, ``-``."""
    if not DOCUMENT_ID.fullmatch(value):
        raise invalid(list(loc), "must match ^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
    return value


def json_filter(raw: str | None) -> dict[str, Any] | None:
    """``?filter=``: a JSON object used for containment (``data @> filter``).

    Its integers stay exact, so a filter on a large integer matches exactly.
    """
    if raw is None or raw == "":
        return None
    loc: list[str | int] = ["query", "filter"]
    try:
        value = loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid(loc, f"is not valid JSON: {explain(exc)}") from None
    except JsonValueError as exc:
        raise invalid(loc, f"cannot be read: {exc}") from None
    if not isinstance(value, dict):
        raise invalid(loc, "must be a JSON object")
    encoded = dumps_value(value)
    if has_nul(encoded):
        raise invalid(loc, "must not contain NUL characters")
    if too_deep(value, encoded):
        raise invalid(loc, f"must not nest deeper than {MAX_DEPTH} levels")
    return value


_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def has_nul(encoded: bytes) -> bool:
    """Whether serialised JSON holds a NUL character (``\\u0000``), which JSONB refuses.

    An escaped backslash followed by ``u0000`` is plain text, not a NUL: the escape must
    be preceded by an even number of backslashes.
    """
    return b"\\u0000" in encoded and _NUL.search(encoded) is not None


def timestamp(raw: str | None, name: str) -> datetime | None:
    """An ISO 8601 timestamp with a UTC offset (``Z`` allowed), as UTC.

    Within years 1..9999 once converted to UTC: an offset that moves it outside (e.g.
    ``9999-12-31T23:59:59-23:59``) is refused like any other bad timestamp.
    """
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise invalid(["query", name], "must be an ISO 8601 timestamp") from None
    if value.tzinfo is None:
        raise invalid(["query", name], "must carry a UTC offset")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise invalid(["query", name], "must be within years 1..9999 in UTC") from None


def fields(raw: str | None) -> FieldTree | None:
    """``?fields=a,b.c`` as a tree; a whole key wins over its sub-paths."""
    if raw is None or raw == "":
        return None
    paths = [p.strip() for p in raw.split(",")]
    if len(paths) > MAX_FIELDS:
        raise invalid(["query", "fields"], f"at most {MAX_FIELDS} fields")
    tree: FieldTree = {}
    for path in paths:
        segments = path.split(".")
        if len(segments) > MAX_FIELD_DEPTH or not all(_FIELD_SEGMENT.match(s) for s in segments):
            raise invalid(["query", "fields"], "must be comma-separated dotted paths")
        node = tree
        for segment in segments[:-1]:
            child = node.setdefault(segment, {})
            if child is None:  # the whole parent is already selected
                break
            node = child
        else:
            node[segments[-1]] = None
    return tree


def if_match(raw: str | None) -> int | None:
    """``If-Match: <version>`` (a quoted or weak ETag form is accepted too)."""
    if raw is None:
        return None
    version = if_match_version(raw, max_digits=18)
    if version is None:
        raise invalid(["header", "If-Match"], "must be a document version (integer)")
    return version


def positive_int(raw: str | None, name: str, default: int, maximum: int) -> int:
    """An integer query parameter in 1..maximum (ASCII digits only: ``²`` is not 2)."""
    if raw is None or raw == "":
        return default
    digits = raw.isascii() and raw.isdigit() and len(raw) <= 18  # int() of 5,000 digits raises
    if not digits or not 1 <= int(raw) <= maximum:
        raise invalid(["query", name], f"must be an integer in 1..{maximum}")
    return int(raw)


@dataclass(frozen=True)
class DocumentQuery:
    """What selects and shapes documents in a listing or an export."""

    filter: dict[str, Any] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    fields: FieldTree | None = None
    after: tuple[datetime, str] | None = None  # keyset position (created_at, id)
    shard: tuple[int, int] | None = None  # (i, n): the documents whose id hashes to i mod n


EXPORT_FORMATS = ("ndjson", "parquet")
MAX_SHARDS = 1024


def export_format(raw: str | None) -> str:
    """``?format=``: ``ndjson`` (the default) or ``parquet``."""
    if raw is None or raw == "":
        return "ndjson"
    if raw not in EXPORT_FORMATS:
        raise invalid(["query", "format"], "must be one of: " + ", ".join(EXPORT_FORMATS))
    return raw


def shard(raw_shard: str | None, raw_shards: str | None, snapshot: bool) -> tuple[int, int] | None:
    """``?shard=i&shards=n``: both or neither, ``0 <= i < n <= 1024``, with a snapshot.

    Without a held snapshot each shard would read its own snapshot and a document
    written meanwhile could be read twice or never: refused.
    """
    if not raw_shard and not raw_shards:
        return None
    if not raw_shard or not raw_shards:
        missing = "shard" if not raw_shard else "shards"
        raise invalid(["query", missing], "shard and shards go together")
    n = positive_int(raw_shards, "shards", 1, MAX_SHARDS)
    digits = raw_shard.isascii() and raw_shard.isdigit() and len(raw_shard) <= 4
    if not digits or int(raw_shard) >= n:
        raise invalid(["query", "shard"], f"must be an integer in 0..{n - 1}")
    if not snapshot:
        raise invalid(["query", "snapshot"], "a sharded export needs a snapshot token")
    return int(raw_shard), n


def document_cursor(raw: str | None) -> tuple[datetime, str] | None:
    """Decode a listing cursor into its (created_at, id) keyset position.

    The cursor is opaque but comes from the client: its parts are checked like any input
    (an aware timestamp within range, a valid document id), else 400 ``invalid-cursor``.
    """
    if raw is None or raw == "":
        return None
    key = decode_cursor(raw, ("t", "i"))
    t, i = key["t"], key["i"]
    try:
        if not isinstance(t, str) or not isinstance(i, str) or not DOCUMENT_ID.fullmatch(i):
            raise ValueError(raw)
        at = datetime.fromisoformat(t)
        if at.tzinfo is None:
            raise ValueError(raw)
        return at.astimezone(UTC), i
    except (ValueError, OverflowError):
        raise invalid_cursor() from None


def next_document_cursor(created_at: datetime, doc_id: str) -> str:
    """The cursor that continues after this row."""
    return encode_cursor({"t": created_at.isoformat(), "i": doc_id})


_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class SampleCursor:
    """Where a sample continues: its seed, the last ``(rank, id)`` sent, how many so far."""

    seed: str
    rank: str
    id: str
    served: int


def sample_cursor(raw: str, seed: str | None, n: int) -> SampleCursor:
    """Decode a sample's cursor; 400 ``invalid-cursor`` unless it continues this sample.

    It must carry a seed (the same as ``seed`` when one is given), a rank and a document
    id as the service makes them, and a count of documents already served below ``n``.
    """
    key = decode_cursor(raw, ("s", "r", "i", "k"))
    s, r, i, k = key["s"], key["r"], key["i"], key["k"]
    valid = (
        isinstance(s, str)
        and 0 < len(s) <= 128
        and s.isprintable()
        and (not seed or seed == s)
        and isinstance(r, str)
        and _MD5_HEX.fullmatch(r) is not None
        and isinstance(i, str)
        and DOCUMENT_ID.fullmatch(i) is not None
        and type(k) is int
        and 0 < k < n
    )
    if not valid:
        raise invalid_cursor("cursor is not valid for this sample")
    return SampleCursor(s, r, i, k)


def next_sample_cursor(seed: str, rank: str, doc_id: str, served: int) -> str:
    """The cursor that continues a sample after this document."""
    return encode_cursor({"s": seed, "r": rank, "i": doc_id, "k": served})


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge recursively, ``null`` deletes a key."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
